"""Showing bytes to people and reading them back: ``\\n``, ``\\r``, ``\\x00``, ``\\\\``.

Used by transcripts, ``--trace`` and ``abp-client raw``. ``escape`` is
injective and ``unescape(escape(b)) == b`` for all bytes.
"""

from __future__ import annotations

_NAMED = {0x5C: "\\\\", 0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t"}


def escape(data: bytes) -> str:
    """Printable ASCII as is, UTF-8 text as is, everything else as an escape."""
    out: list[str] = []
    text = data.decode("utf-8", "surrogateescape")
    for char in text:
        code = ord(char)
        if code in _NAMED:
            out.append(_NAMED[code])
        elif 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8
            out.append(f"\\x{code - 0xDC00:02x}")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif not char.isprintable():
            out.append("".join(f"\\x{b:02x}" for b in char.encode("utf-8")))
        else:
            out.append(char)
    return "".join(out)


class EscapeError(ValueError):
    """A malformed escape in text given by a person."""


def unescape(text: str) -> bytes:
    """Turn ``\\n \\r \\t \\0 \\\\ \\xHH`` into bytes; other text is UTF-8."""
    out = bytearray()
    i = 0
    while i < len(text):
        char = text[i]
        if char != "\\":
            try:  # surrogateescape: undecodable command-line bytes stand for themselves
                out += char.encode("utf-8", "surrogateescape")
            except UnicodeEncodeError:
                raise EscapeError(f"not a character at position {i} of {text!r}") from None
            i += 1
            continue
        if i + 1 >= len(text):
            raise EscapeError(f"a lone '\\' at the end of {text!r}")
        code = text[i + 1]
        simple = {"n": b"\n", "r": b"\r", "t": b"\t", "0": b"\x00", "\\": b"\\"}
        if code in simple:
            out += simple[code]
            i += 2
        elif code == "x":
            digits = text[i + 2 : i + 4]
            if len(digits) != 2 or any(c not in "0123456789abcdefABCDEF" for c in digits):
                raise EscapeError(f"'\\x' needs two hex digits at position {i} of {text!r}")
            out.append(int(digits, 16))
            i += 4
        else:
            raise EscapeError(f"unknown escape '\\{code}' at position {i} of {text!r}")
    return bytes(out)
