"""What actually arrived, said in one line: for a person watching a wait fail.

A client that gives up should say what it got, not only what it did not get:
a tutorial-style server answers ``Entry for bob added`` with no LF and keeps
the connection open, and "no answer within 5s" hides that the answer came.
``describe_unterminated`` is shared by ``abp-client`` and anything else that
has the bytes a peer sent after its last LF (the interop matrix, the proxy).
"""

from __future__ import annotations

from protocol.escape import escape

#: Bytes of the unterminated text shown; the count is always the whole.
SHOWN = 80

#: What a person can try when the bytes are not an ABP/1 answer at all.
LEGACY_HINT = "a tutorial-style server? try --legacy"


def looks_like_abp_answer(data: bytes) -> bool:
    """Whether ``data`` is, or could grow into, one of section 4's forms
    (``OK``, ``OK: TEXT``, ``ERROR: TEXT``)."""
    data = data.removesuffix(b"\r")
    if b"OK: ".startswith(data) or b"ERROR:".startswith(data):
        return True  # a prefix of a form: "O", "OK", "ERR"...
    return data.startswith((b"OK: ", b"ERROR:"))


def legacy_hint(data: bytes) -> str:
    """`` (a tutorial-style server? try --legacy)`` when ``data`` is free text, else ``""``."""
    return "" if looks_like_abp_answer(data) else f" ({LEGACY_HINT})"


def describe_unterminated(data: bytes, total: int | None = None) -> str:
    """``got 19 bytes with no LF: 'Entry for bob added' (a tutorial-style server? try --legacy)``.

    ``data`` is what arrived after the last LF (or its first bytes, with
    ``total`` the whole count); an empty ``data`` says nothing arrived.
    """
    count = len(data) if total is None else total
    if count == 0:
        return "got nothing"
    shown = escape(data[:SHOWN]) + ("..." if count > SHOWN else "")
    unit = "byte" if count == 1 else "bytes"
    return f"got {count} {unit} with no LF: '{shown}'{legacy_hint(data)}"


__all__ = ["LEGACY_HINT", "describe_unterminated", "legacy_hint", "looks_like_abp_answer"]
