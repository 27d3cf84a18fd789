"""Request lines built by the protocol package, then changed on purpose.

Shared by the framing tests of section 2 (``test_framing``,
``test_framing_limits``): the same request with another terminator, or none.
"""

from __future__ import annotations


def crlf(line: bytes) -> bytes:
    """The same request terminated by CRLF."""
    return line[:-1] + b"\r\n"


def unterminated(line: bytes) -> bytes:
    """The same request with no terminator, as the tutorial's client sends it."""
    return line[:-1]
