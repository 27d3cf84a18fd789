"""``protocol.codec.applicable_errors``: every error section 4 allows, in any order."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import Error, RemoteProtocolError
from protocol.codec import applicable_errors, decode_request, unrecognised
from protocol.strategies import malformed_lines, request_lines

MALFORMED = Error("Malformed request")
UTF8 = Error("Invalid UTF-8")
TOO_LONG = Error("Request too long")


@pytest.mark.parametrize(
    ("line", "allowed"),
    [
        (b"fnd:alice", set()),
        (b"add:a,b:c,d", set()),
        (b"", {MALFORMED}),
        (b"no colon", {MALFORMED}),
        (b"ADD:x", {unrecognised("ADD")}),
        (b"fnd:", {MALFORMED}),
        (b"add:,x", {MALFORMED}),
        # a NUL and invalid UTF-8: the false alarm of issue 9, either is conforming
        (b"fnd:\xf4\x86\x00\xb7\x82", {MALFORMED, UTF8}),
        # an unknown command with an empty name: either check may come first
        (b"xyz:", {unrecognised("xyz"), MALFORMED}),
        (b":", {unrecognised(""), MALFORMED}),
        (b"xyz:,x", {unrecognised("xyz")}),
        (b"xyz:\x00", {unrecognised("xyz"), MALFORMED}),
        (b"a" * 4097, {TOO_LONG, MALFORMED}),
        (b"fnd:" + b"a" * 4093, {TOO_LONG}),
        (b"fnd:" + b"a" * 4092, set()),
        (b"\xff:x", {UTF8}),
        (b"fnd:a\rb", {MALFORMED}),
    ],
)
def test_every_applicable_error_is_listed(line: bytes, allowed: set[Error]) -> None:
    assert applicable_errors(line) == allowed


@given(st.one_of(malformed_lines(), request_lines(), st.binary(max_size=64)))
def test_the_reference_answer_is_always_allowed_and_valid_lines_allow_none(line: bytes) -> None:
    line = line.rstrip(b"\n")
    errors = applicable_errors(line)
    reference: Error | None = None
    try:
        decode_request(line)
    except RemoteProtocolError as exc:
        reference = exc.reply
    if reference is None:
        assert errors == frozenset()
    else:
        assert reference in errors
