"""Text from the server under test, made safe to print, embed in XML or HTML.

Transcripts are escaped already (``protocol.escape``), but a failure message
may quote anything an exception held: control characters, bidi overrides,
lone surrogates that cannot even be written as UTF-8. ``printable`` keeps LF
and TAB and turns every other such character into a visible escape.
"""

from __future__ import annotations

import unicodedata

_KEEP = {"\n", "\t"}
_HIDDEN = {"Cc", "Cf", "Cs", "Co", "Cn"}  # control, format (bidi), surrogate, private, unassigned


def _visible(char: str) -> str:
    if char in _KEEP or unicodedata.category(char) not in _HIDDEN:
        return char
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    if text.isprintable():
        return text
    return "".join(map(_visible, text))
