"""The wire formats of ``protocol._schema``, through ``protocol._codec``.

Construct's own test style: one table of (bytes, message) pairs per message
kind, each row checked both ways, ``decode(data) == message`` and
``encode(message) == data``. Rows that only parse (a form that builds back
differently) live in their own tables.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from construct import ConstructError
from hypothesis import given, settings
from hypothesis import strategies as st

import protocol
from protocol import (
    Add,
    CounterReply,
    Error,
    Find,
    LegacyReply,
    LocalProtocolError,
    Ok,
    RemoteProtocolError,
    Remove,
    ServerBusy,
    ServerConnection,
    _codec,
)
from protocol import _schema as schema
from protocol import strategies as abp_st
from protocol.codec import (
    INVALID_UTF8,
    MALFORMED_REQUEST,
    REQUEST_TOO_LONG,
    decode_counter_reply,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
    no_entry,
    unrecognised,
)

SPEC = Path(__file__).resolve().parent.parent / "docs" / "spec.md"

# ------------------------------------------------------------------ requests

#: (line without LF, request): parses to the request and builds back exactly.
REQUESTS = [
    (b"add:alice,12 High St, Leeds", Add("alice", "12 High St, Leeds")),
    (b"add:a:b,c:d,e:f", Add("a:b", "c:d,e:f")),  # ":" in both, "," in the entry
    (b"add:alice,", Add("alice", "")),
    (b"add: alice ,\t x \t", Add(" alice ", "\t x \t")),  # no trimming (ABP-REQ-7)
    (b"add:\xf0\x9f\x98\x80,\xe2\x82\xac\xf4\x8f\xbf\xbf", Add("\U0001f600", "\u20ac\U0010ffff")),
    (b"add:x,,", Add("x", ",")),
    (b"add:x,::", Add("x", "::")),
    (b"rem:alice", Remove("alice")),
    (b"rem:a:b", Remove("a:b")),
    (b"fnd:alice", Find("alice")),
    (b"fnd::", Find(":")),
    (b"fnd:a:b:c", Find("a:b:c")),  # split at the first ":" only (ABP-REQ-1)
    (b"fnd:Alice", Find("Alice")),
    (b"fnd:\xef\xbf\xbf", Find("\uffff")),
]

#: (line, request) that parse but build back in another form.
REQUESTS_PARSE_ONLY = [
    (b"add:alice", Add("alice", "")),  # ABP-REQ-3: no comma, empty entry
    (b"add:a:b", Add("a:b", "")),
    (b"fnd:a,b", Find("a,b")),  # the server looks it up; no client may send it
    (b"rem:a,b", Remove("a,b")),
]


@pytest.mark.parametrize(("line", "request_"), REQUESTS)
def test_request_both_ways(line: bytes, request_: protocol.Request) -> None:
    assert decode_request(line) == request_
    assert encode_request(request_) == line + b"\n"


@pytest.mark.parametrize(("line", "request_"), REQUESTS_PARSE_ONLY)
def test_request_parse_only(line: bytes, request_: protocol.Request) -> None:
    assert decode_request(line) == request_


def test_add_without_comma_builds_back_with_comma() -> None:
    """ABP-REQ-3: ``add:NAME`` is ``add:NAME,``; the builder always writes the comma."""
    assert encode_request(decode_request(b"add:alice")) == b"add:alice,\n"


def test_request_schema_both_ways() -> None:
    """The schema itself, below the codec: dicts in, bytes out, and back."""
    fields = {"command": "add", "argument": {"name": "a:b", "entry": "c,d"}}
    assert schema.Request.build(fields) == b"add:a:b,c,d"
    assert schema.Request.parse(b"add:a:b,c,d") == fields
    assert schema.Request.parse(b"fnd:a:b") == {"command": "fnd", "argument": {"name": "a:b"}}
    assert schema.Request.parse(b"add:x") == {
        "command": "add",
        "argument": {"name": "x", "entry": ""},
    }
    # An unknown command keeps its argument as text, for the error answer.
    assert schema.Request.parse(b"ADD:x,y") == {"command": "ADD", "argument": "x,y"}
    assert schema.Line.build(b"fnd:x") == b"fnd:x\n"


def test_request_schema_refuses_a_line_without_colon() -> None:
    with pytest.raises(ConstructError):
        schema.Request.parse(b"no colon here")


@settings(deadline=None)
@given(st.binary(max_size=60) | abp_st.request_lines().map(lambda line: line[:-1]))
def test_compiled_request_parser_agrees_with_the_schema(line: bytes) -> None:
    """``_codec`` parses with ``Request.compile()``; it must read what the schema reads."""
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return
    try:
        expected = schema.Request.parse(line)
    except ConstructError:
        with pytest.raises(ConstructError):
            _codec._request_parser.parse(line)
        return
    assert _codec._request_parser.parse(line) == expected


# ------------------------------------------------------------ decoding errors

#: (line, requirement, exact error answer) for every way a request line is bad.
BAD_REQUESTS = [
    (b"", "ABP-REQ-9", b"ERROR: Malformed request\n"),
    (b"alice", "ABP-REQ-9", b"ERROR: Malformed request\n"),
    (b"add alice,x", "ABP-REQ-9", b"ERROR: Malformed request\n"),
    (b"add:", "ABP-REQ-10", b"ERROR: Malformed request\n"),
    (b"add:,x", "ABP-REQ-10", b"ERROR: Malformed request\n"),
    (b"fnd:", "ABP-REQ-10", b"ERROR: Malformed request\n"),
    (b"rem:", "ABP-REQ-10", b"ERROR: Malformed request\n"),
    (b"fnd:a\x00b", "ABP-FRAME-13", b"ERROR: Malformed request\n"),
    (b"\x00", "ABP-FRAME-13", b"ERROR: Malformed request\n"),
    (b"add:a,\x00", "ABP-FRAME-13", b"ERROR: Malformed request\n"),
    (b"fnd:\xff", "ABP-FRAME-12", b"ERROR: Invalid UTF-8\n"),
    (b"fnd:\xc3\x28", "ABP-FRAME-12", b"ERROR: Invalid UTF-8\n"),
    (b"fnd:\xed\xa0\x80", "ABP-FRAME-12", b"ERROR: Invalid UTF-8\n"),  # a surrogate
    (b"\xff:x", "ABP-FRAME-12", b"ERROR: Invalid UTF-8\n"),
    (b"ADD:x", "ABP-REQ-11", b"ERROR: Unrecognised command: ADD\n"),
    (b"Fnd:x", "ABP-REQ-11", b"ERROR: Unrecognised command: Fnd\n"),
    (b"del:x", "ABP-REQ-11", b"ERROR: Unrecognised command: del\n"),
    (b" add:x", "ABP-REQ-11", b"ERROR: Unrecognised command:  add\n"),
    (b":x", "ABP-REQ-11", b"ERROR: Unrecognised command: \n"),
    (b"\xc3\xa9:x", "ABP-REQ-11", b"ERROR: Unrecognised command: \xc3\xa9\n"),
]


@pytest.mark.parametrize(("line", "requirement", "answer"), BAD_REQUESTS)
def test_bad_request(line: bytes, requirement: str, answer: bytes) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        decode_request(line)
    assert info.value.requirement == requirement
    assert info.value.reply is not None
    assert encode_response(info.value.reply) == answer


def test_nul_wins_over_invalid_utf8() -> None:
    with pytest.raises(RemoteProtocolError) as info:
        decode_request(b"fnd:\xff\x00")
    assert info.value.reply == Error(MALFORMED_REQUEST)


def test_request_too_long_comes_from_the_framing() -> None:
    server = ServerConnection()
    (event,) = server.receive_data(b"fnd:" + b"x" * 4093 + b"\n")
    assert isinstance(event, protocol.InvalidRequest)
    assert event.error.requirement == "ABP-FRAME-10"
    assert server.send(event.reply) == b"ERROR: Request too long\n"


def test_encode_request_refuses_what_is_not_a_request() -> None:
    with pytest.raises(LocalProtocolError):
        encode_request(Ok("x"))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("request_", "requirement"),
    [
        (Find("a,b"), "ABP-REQ-14"),
        (Remove("x,"), "ABP-REQ-14"),
        (Add("a", "b\r"), "ABP-REQ-13"),
        (Find("a\r"), "ABP-REQ-13"),
        (Add("a\rb", "c"), "ABP-REQ-13"),
    ],
)
def test_encode_request_refuses_what_abp_req_13_forbids(
    request_: protocol.Request, requirement: str
) -> None:
    """A trailing CR would be read back as part of the terminator: refuse, send
    nothing; a ',' in a rem/fnd name is refused too (the SHOULD of ABP-REQ-14)."""
    with pytest.raises(LocalProtocolError) as info:
        encode_request(request_)
    assert info.value.requirement == requirement


# ----------------------------------------------------------------- responses

RESPONSES: list[tuple[bytes, Ok | Error]] = [
    (b"OK", Ok()),
    (b"OK: ", Ok("")),  # fnd of an empty entry
    (b"OK: x", Ok("x")),
    (b"OK: 12 High St, Leeds: x", Ok("12 High St, Leeds: x")),
    (b"OK:  padded ", Ok(" padded ")),
    (b"OK: \xf0\x9f\x98\x80", Ok("\U0001f600")),
    (b"ERROR: x", Error("x")),
    (b"ERROR: ", Error("")),
    (b"ERROR:  two spaces", Error(" two spaces")),
    (b"ERROR: No entry for a:b, c", no_entry("a:b, c")),
]

#: (line, response) that parse but build back with the one space after ":".
RESPONSES_PARSE_ONLY: list[tuple[bytes, Ok | Error]] = [
    (b"ERROR:x", Error("x")),  # ABP-RESP-5: anything starting "ERROR:"
    (b"ERROR:", Error("")),
]


@pytest.mark.parametrize(("line", "response"), RESPONSES)
def test_response_both_ways(line: bytes, response: Ok | Error) -> None:
    assert decode_response(line) == response
    assert decode_response(line, legacy=True) == response
    assert encode_response(response) == line + b"\n"


@pytest.mark.parametrize(("line", "response"), RESPONSES_PARSE_ONLY)
def test_response_parse_only(line: bytes, response: Ok | Error) -> None:
    assert decode_response(line) == response


def test_response_schema_both_ways() -> None:
    cases = [
        (b"OK", {"status": b"OK", "text": None}),
        (b"OK: x", {"status": b"OK: ", "text": "x"}),
        (b"ERROR: x", {"status": b"ERROR:", "text": "x"}),
    ]
    for data, fields in cases:
        assert schema.Response.parse(data) == fields
        assert schema.Response.build(fields) == data


@pytest.mark.parametrize(
    "line",
    [
        b"hello",
        b"OK:x",  # neither "OK" nor "OK: "
        b"OK ",
        b"ok",
        b"Ok: x",
        b"error: x",
        b"ERROR x",
        b"",
        b"\xff",
        b"OK: \xff",
        b"OK: a\x00b",
        b"ERROR: a\x00b",
        b"Thankyou!, processed connection number 1",
    ],
)
def test_bad_response(line: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        decode_response(line)


@pytest.mark.parametrize(
    ("line", "text"),
    [
        (b"hello", "hello"),
        (b"OK:x", "OK:x"),
        (b"", ""),
        (b"Thankyou!, processed connection number 1", "Thankyou!, processed connection number 1"),
        (b"caf\xe9", "caf\ufffd"),  # shown, not refused: free text from an old server
    ],
)
def test_legacy_response(line: bytes, text: str) -> None:
    assert decode_response(line, legacy=True) == LegacyReply(text)


def test_encode_response_refuses_what_a_server_cannot_send() -> None:
    with pytest.raises(LocalProtocolError):
        encode_response(LegacyReply("x"))
    with pytest.raises(LocalProtocolError):
        encode_response(Find("x"))  # type: ignore[arg-type]


# ------------------------------------------------------ standard error texts


def _spec_error_texts() -> list[str]:
    """The ``ERROR: ...`` texts of the response table of docs/spec.md section 4."""
    section = SPEC.read_text(encoding="utf-8").split("## 4. Responses")[1].split("\n## ")[0]
    return re.findall(r"^\| `ERROR: ([^`]+)`", section, flags=re.MULTILINE)


#: The spec's placeholder text -> the message the package builds for it.
STANDARD_ERRORS = {
    "Unrecognised command: COMMAND": unrecognised("COMMAND"),
    "Malformed request": Error(MALFORMED_REQUEST),
    "No entry for NAME": no_entry("NAME"),
    "Request too long": Error(REQUEST_TOO_LONG),
    "Invalid UTF-8": Error(INVALID_UTF8),
    "Server busy": ServerBusy(),
}


def test_every_standard_error_of_the_spec_is_known() -> None:
    assert sorted(_spec_error_texts()) == sorted(STANDARD_ERRORS)


@pytest.mark.parametrize(("text", "error"), sorted(STANDARD_ERRORS.items()))
def test_standard_error_both_ways(text: str, error: Error) -> None:
    line = b"ERROR: " + text.encode()
    assert encode_response(error) == line + b"\n"
    assert decode_response(line) == error


# --------------------------------------------------------------- counter reply

COUNTER_REPLIES = [
    (b"Thankyou!, processed connection number 1", CounterReply(1)),
    (b"Thankyou!, processed connection number 42", CounterReply(42)),
    (b"Thankyou!, processed connection number 1000000007", CounterReply(1000000007)),
]


@pytest.mark.parametrize(("line", "reply"), COUNTER_REPLIES)
def test_counter_reply_both_ways(line: bytes, reply: CounterReply) -> None:
    assert decode_counter_reply(line) == reply
    assert encode_response(reply) == line + b"\n"
    assert schema.CounterReply.parse(line) == {"number": reply.number}
    assert schema.CounterReply.build({"number": reply.number}) == line


@pytest.mark.parametrize(
    "line",
    [
        b"Thankyou!, processed connection number 0",  # 1-based (ABP-COUNTER-2)
        b"Thankyou!, processed connection number ",
        b"Thankyou!, processed connection number -1",
        b"Thankyou!, processed connection number +1",
        b"Thankyou!, processed connection number 1 ",
        b"Thankyou!, processed connection number \xd9\xa3",  # an Arabic-Indic 3
        b"Thankyou!, processed connection number \xff",
        b"Thankyou, processed connection number 1",
        b"thankyou!, processed connection number 1",
        b"OK: 1",
    ],
)
def test_bad_counter_reply(line: bytes) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        decode_counter_reply(line)
    assert info.value.requirement == "ABP-COUNTER-1"
