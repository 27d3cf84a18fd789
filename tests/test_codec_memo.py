"""The codec's memo gives exactly what the schemas give, hit or miss."""

from __future__ import annotations

import functools
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import Error, Ok, RemoteProtocolError, Request, _codec, strategies


def _outcome(decode: Callable[[bytes], object], body: bytes) -> object:
    """The event, or (requirement, reply) of the refusal."""
    try:
        return decode(body)
    except RemoteProtocolError as exc:
        return (exc.requirement, exc.reply)


TEXTS = st.one_of(strategies.entries(max_size=20), strategies.entries(max_size=400))


@settings(max_examples=150, deadline=None)
@given(line=st.one_of(strategies.request_lines(), strategies.malformed_lines()))
def test_decode_request_memo_agrees_with_the_schemas_twice(line: bytes) -> None:
    body = line[:-1]  # no LF: decode_request takes a line without its terminator
    for _ in range(2):  # the second call may be a memo hit
        assert _outcome(_codec.decode_request, body) == _outcome(_codec._decode_request, body)


@settings(max_examples=150, deadline=None)
@given(text=st.one_of(st.none(), TEXTS), ok=st.booleans())
def test_encode_response_memo_agrees_with_the_schemas_twice(text: str | None, ok: bool) -> None:
    response = Ok(text) if ok or text is None else Error(text)
    for _ in range(2):
        assert _codec.encode_response(response) == _codec._encode_response(response)


@settings(max_examples=150, deadline=None)
@given(request=strategies.requests())
def test_encode_request_memo_agrees_with_the_schemas_twice(request: Request) -> None:
    for _ in range(2):
        assert _codec.encode_request(request) == _codec._encode_request(request)


@settings(max_examples=150, deadline=None)
@given(
    line=st.one_of(st.builds(_codec._encode_response, st.builds(Ok, TEXTS)), st.binary()),
    legacy=st.booleans(),
)
def test_decode_response_memo_agrees_with_the_schemas_twice(line: bytes, legacy: bool) -> None:
    body = line.rstrip(b"\n")
    for _ in range(2):
        decode = functools.partial(_codec.decode_response, legacy=legacy)
        assert _outcome(decode, body) == _outcome(
            lambda b: _codec._decode_response(b, legacy), body
        )


def test_a_refused_line_is_refused_again_not_remembered() -> None:
    for _ in range(3):
        with pytest.raises(RemoteProtocolError):
            _codec.decode_request(b"no colon")
