"""What an answer line says, and whether it is the one a test expects.

Tests of the form of answers (sections 2, 4 and 7 of the spec) compare bytes
(``line_matches``). Other tests judge what an answer means
(``same_meaning``), so that a server whose answers are free text, like the
tutorial's, still gets the semantics of its requests judged, and fails only
the form requirements for its form.
"""

from __future__ import annotations

from collections.abc import Collection

from protocol import Error, LegacyReply, Ok, RemoteProtocolError
from protocol.codec import NO_ENTRY_FOR, decode_response, encode_response

RawAnswer = Ok | Error | LegacyReply
#: Requirements about the form of answers: judged byte for byte, always.
FORM_SECTIONS = ("ABP-RESP-", "ABP-FRAME-", "ABP-COUNTER-")


def content(line: bytes) -> bytes:
    """A line without its terminator (LF, and one CR before it)."""
    if line.endswith(b"\n"):
        line = line[:-1]
        if line.endswith(b"\r"):
            line = line[:-1]
    return line


def decode(line: bytes, *, legacy: bool = False) -> RawAnswer | None:
    """The answer a raw line holds, or None when it is not an ABP/1 answer."""
    try:
        return decode_response(content(line), legacy=legacy)
    except RemoteProtocolError:
        return None


class AnyOk:
    """Expected answer ``OK`` or ``OK: TEXT`` (ABP-RESP-1): add and rem."""

    def __repr__(self) -> str:
        return "OK or OK: TEXT"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Ok | AnyOk)

    def __hash__(self) -> int:
        return hash(AnyOk)


ANY_OK = AnyOk()
Expected = Ok | Error | AnyOk


def wire_form(answer: object) -> object:
    """How an answer is shown in a failure: its bytes on the wire when it has them."""
    if isinstance(answer, Ok | Error):
        return encode_response(answer)
    if isinstance(answer, LegacyReply):
        return answer.text.encode("utf-8", "surrogateescape")
    return answer


def form_requirement(expected: object) -> str:
    """The section-4 requirement that fixes the form of an expected answer."""
    if isinstance(expected, AnyOk):
        return "ABP-RESP-1"
    if isinstance(expected, Ok):
        return "ABP-RESP-2"
    if isinstance(expected, Error) and expected.text.startswith(NO_ENTRY_FOR):
        return "ABP-RESP-4"
    return "ABP-RESP-3"


def line_matches(expected: Expected, line: bytes) -> bool:
    """A raw answer line against its expected answer: exact bytes for a given
    answer; any ``OK`` form for ``ANY_OK``."""
    if isinstance(expected, AnyOk):
        return isinstance(decode(line), Ok)
    return line.endswith(b"\n") and content(line) == content(encode_response(expected))


def same_meaning(expected: object, actual: object, stored: Collection[str] = ()) -> bool:
    """Whether ``actual`` says what ``expected`` says, its form aside: the
    entry found (as ``OK: ENTRY`` or as the bare text, as the tutorial's
    server answers), a success, or "no entry" (any error, or free text
    that is none of the ``stored`` entries). Malformed-request and unknown-
    command errors have no other form: they never match loosely."""
    if isinstance(expected, AnyOk):
        return isinstance(actual, Ok | LegacyReply)
    if isinstance(expected, Ok):
        return isinstance(actual, Ok | LegacyReply) and actual.text == expected.text
    if isinstance(expected, Error) and expected.text.startswith(NO_ENTRY_FOR):
        if isinstance(actual, LegacyReply):
            return actual.text not in stored
        return isinstance(actual, Error)
    return False
