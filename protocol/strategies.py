"""Hypothesis strategies derived from the schemas' own constraints.

Names and entries draw from every Unicode plane but the characters
``protocol._schema`` forbids; messages are built with the schemas, so a
strategy can never drift from the wire format. Imported only by tests and the
conformance suite's fuzzing (hypothesis is not needed to speak ABP/1).
"""

from __future__ import annotations

from hypothesis import strategies as st

from protocol import _codec
from protocol._events import Add, Find, Remove, Request
from protocol._schema import COMMANDS, ENTRY_FORBIDDEN, MAX_REQUEST_LINE, NAME_FORBIDDEN

#: Code points that random drawing rarely reaches but that break servers: the
#: ends of each UTF-8 length and of the BMP, noncharacters, the BOM, and what
#: ``str.splitlines`` (but not ABP/1) treats as a line break.
_EDGE_CHARS = (
    "\x7f\x80\u07ff\u0800\ud7ff\ue000\ufeff\ufffd\ufffe\uffff"
    "\U00010000\U0001f600\U000e0001\U0010fffd\U0010ffff"
    "\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029\t :,"
)


def _chars(forbidden: frozenset[str]) -> st.SearchStrategy[str]:
    """Any code point UTF-8 can carry (no surrogates), minus the forbidden ones."""
    return st.one_of(
        st.characters(exclude_categories=["Cs"], exclude_characters=forbidden),
        st.sampled_from([c for c in _EDGE_CHARS if c not in forbidden]),
    )


_name_chars = _chars(NAME_FORBIDDEN)
_entry_chars = _chars(ENTRY_FORBIDDEN)

#: Keep generated requests under the line limit (4 bytes a character at most).
_MAX_CHARS = (MAX_REQUEST_LINE - 8) // 8


def _text(chars: st.SearchStrategy[str], min_size: int, max_size: int) -> st.SearchStrategy[str]:
    # Not st.text: it merges the alphabet's branches into one uniform range, and
    # the edge characters would then (almost) never be drawn.
    return st.lists(chars, min_size=min_size, max_size=max_size).map("".join)


def names(max_size: int = 40) -> st.SearchStrategy[str]:
    """Valid NAMEs: non-empty, no ',', CR, LF or NUL; ':' and any plane allowed."""
    return _text(_name_chars, 1, min(max_size, _MAX_CHARS))


def entries(max_size: int = 80) -> st.SearchStrategy[str]:
    """Valid ENTRYs: no CR, LF or NUL; ',' ':' and any plane allowed; may be empty."""
    return _text(_entry_chars, 0, min(max_size, _MAX_CHARS))


def requests() -> st.SearchStrategy[Request]:
    return st.one_of(
        st.builds(Add, names(), entries()),
        st.builds(Remove, names()),
        st.builds(Find, names()),
    )


def request_lines() -> st.SearchStrategy[bytes]:
    """Valid request lines, LF included, as the schema builds them."""
    return requests().map(_codec.encode_request)


def malformed_lines() -> st.SearchStrategy[bytes]:
    """Lines (LF included) a server must refuse, each with a known reason."""
    word = st.text(
        st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters=":"),
        min_size=1,
        max_size=8,
    )
    unknown_command = word.filter(lambda w: w not in COMMANDS).map(lambda w: f"{w}:x".encode())
    no_colon = _text(_entry_chars.filter(lambda c: c != ":"), 0, 40).map(str.encode)
    empty_name = st.sampled_from([b"add:", b"rem:", b"fnd:", b"add:,x"])
    with_nul = st.tuples(request_lines(), st.integers(min_value=0)).map(
        lambda pair: pair[0][: pair[1] % len(pair[0])] + b"\x00" + pair[0][pair[1] % len(pair[0]) :]
    )
    bad_utf8 = st.sampled_from(
        [b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80"]
    ).map(lambda junk: b"fnd:" + junk)
    lines = st.one_of(unknown_command, no_colon, empty_name, bad_utf8)
    return st.one_of(
        lines.map(lambda line: line + b"\n"), with_nul.filter(lambda b: b.endswith(b"\n"))
    )


def byte_streams() -> st.SearchStrategy[bytes]:
    """Arbitrary bytes, biased towards the protocol's own separators."""
    chunks = st.one_of(
        st.binary(max_size=64),
        st.sampled_from([b"\n", b"\r\n", b":", b",", b"\x00", b"add:", b"fnd:", b"rem:"]),
        request_lines(),
    )
    return st.lists(chunks, max_size=20).map(b"".join)
