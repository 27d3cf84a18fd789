"""Line <-> message conversion through the schemas: the only place that does it.

``decode_*`` take one line (no terminator) and return a message or raise
``RemoteProtocolError``; ``encode_*`` take a message and return the line's
bytes *with* its LF.

A server sees the same short lines and sends the same short answers over and
over, and a load generator the converse, so every ``encode_*``/``decode_*``
of requests and responses keeps a bounded memo of
what the schemas produced: only for valid input (an exception is never
stored), only for exact ``bytes``/``str`` of at most ``MEMO_MAX_BYTES``, and
only of immutable results (frozen events, ``bytes``). A miss costs the
schemas plus a dictionary look-up; the wire is still parsed and built by the
schemas alone.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any

from construct import ConstructError, SelectError

from protocol import _schema as schema
from protocol._errors import LocalProtocolError, RemoteProtocolError
from protocol._events import (
    INVALID_UTF8,
    MALFORMED_REQUEST,
    REQUEST_TOO_LONG,
    SERVER_BUSY,
    Add,
    CounterReply,
    Error,
    Find,
    LegacyReply,
    Ok,
    Remove,
    Request,
    Response,
    ServerBusy,
    unrecognised,
)

# The schemas, compiled once (construct generates Python code for them: 3-10x
# faster than interpreting them). ``Select`` does not compile, so the response
# union's alternatives are compiled one by one and tried in their declared
# order, exactly as ``Select`` would.
_request_parser = schema.Request.compile()
_response_alternatives = tuple(alt.compile() for alt in schema.Response.subcons)
_ok_text = schema.OkTextResponse.compile()
_ok_bare = schema.OkResponse.compile()
_error = schema.ErrorResponse.compile()
_counter = schema.CounterReply.compile()
_line = schema.Line.compile()


#: Distinct lines (and answer texts) each memo keeps: least recently used go first.
MEMO_SIZE = 8192
#: Longer lines and texts bypass the memo: full of 256-byte lines, one holds ~6 MiB.
MEMO_MAX_BYTES = 256


def _malformed(why: str, requirement: str, raw: bytes) -> RemoteProtocolError:
    return RemoteProtocolError(f"{why}: {raw[:80]!r}", requirement, Error(MALFORMED_REQUEST))


def decode_request(line: bytes) -> Request:
    """Parse one request line, or raise with the error answer attached."""
    if type(line) is bytes and len(line) <= MEMO_MAX_BYTES:
        return _decode_request_memo(line)
    return _decode_request(line)


def _decode_request(line: bytes) -> Request:
    if b"\x00" in line:  # ABP-FRAME-13
        raise _malformed("NUL in request", "ABP-FRAME-13", line)
    if b"\r" in line:  # ABP-FRAME-13: no NAME or ENTRY holds a CR (section 3)
        raise _malformed("CR inside a request", "ABP-FRAME-13", line)
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:  # ABP-FRAME-12
        raise RemoteProtocolError(
            f"request is not UTF-8: {line[:80]!r}", "ABP-FRAME-12", Error(INVALID_UTF8)
        ) from None
    try:
        parsed = _request_parser.parse(line)
    except ConstructError:  # no ":" at all
        raise _malformed("no ':' in request", "ABP-REQ-9", line) from None
    command, argument = parsed.command, parsed.argument
    if command not in schema.COMMANDS:  # ABP-REQ-8, ABP-REQ-11
        raise RemoteProtocolError(
            f"unknown command {command!r}", "ABP-REQ-11", unrecognised(command)
        )
    if not argument.name:  # ABP-REQ-10
        raise _malformed("empty name", "ABP-REQ-10", line)
    if command == "add":
        return Add(argument.name, argument.entry)
    if command == "rem":
        return Remove(argument.name)
    return Find(argument.name)


#: Only a valid line's event is stored: an exception passes through uncached.
_decode_request_memo = functools.lru_cache(maxsize=MEMO_SIZE)(_decode_request)


def check_request(request: Request) -> None:
    """ABP-REQ-13: what a client must refuse to send, over what the wire can
    carry; and what it should refuse (ABP-REQ-14: a ',' in a rem/fnd NAME)."""
    if not isinstance(request, (Add, Remove, Find)):
        raise LocalProtocolError(f"not a request: {request!r}", "ABP-FRAME-2")
    name = request.name
    if not name or schema.NAME_FORBIDDEN.difference(",").intersection(name):
        raise LocalProtocolError(
            f"a name must be non-empty and hold no CR, LF or NUL: {name!r}", "ABP-REQ-13"
        )
    if "," in name:  # an add NAME cannot even be built with one (Add checks it)
        raise LocalProtocolError(f"no add can store a name with ',': {name!r}", "ABP-REQ-14")
    entry = getattr(request, "entry", "")
    if schema.ENTRY_FORBIDDEN.intersection(entry):
        raise LocalProtocolError(f"an entry cannot hold CR, LF or NUL: {entry!r}", "ABP-REQ-13")


def encode_request(request: Request) -> bytes:
    """Raises ``LocalProtocolError`` for what ABP-REQ-13 forbids: a CR at the end
    of the line would be read back as part of the terminator."""
    if type(request) in (Add, Remove, Find):
        size = len(request.name) + len(getattr(request, "entry", ""))
        if type(request.name) is str and size <= MEMO_MAX_BYTES:
            return _encode_request_memo(request)
    return _encode_request(request)


def _encode_request(request: Request) -> bytes:
    if isinstance(request, Add):
        fields = {"command": "add", "argument": {"name": request.name, "entry": request.entry}}
    elif isinstance(request, Remove):
        fields = {"command": "rem", "argument": {"name": request.name}}
    elif isinstance(request, Find):
        fields = {"command": "fnd", "argument": {"name": request.name}}
    else:
        raise LocalProtocolError(f"not a request: {request!r}", "ABP-FRAME-2")
    check_request(request)
    return bytes(_line.build(_request_parser.build(fields)))


#: Keyed by the frozen request; a refused request raises and is not stored.
_encode_request_memo = functools.lru_cache(maxsize=MEMO_SIZE)(_encode_request)


def encode_response(response: Response) -> bytes:
    kind = type(response)
    if kind is ServerBusy:
        return _BUSY
    if kind is Ok or kind is Error:
        text = response.text  # type: ignore[union-attr]
        if text is None:
            return _OK_BARE
        if type(text) is str and len(text) <= MEMO_MAX_BYTES:
            return _encode_text_memo(kind is Ok, text)
    return _encode_response(response)


def _encode_response(response: Response) -> bytes:
    if isinstance(response, Ok):
        if response.text is None:
            body = _ok_bare.build({"status": b"OK", "text": None})
        else:
            body = _ok_text.build({"status": b"OK: ", "text": response.text})
    elif isinstance(response, Error):
        body = _error.build({"status": b"ERROR:", "text": response.text})
    elif isinstance(response, CounterReply):
        body = _counter.build({"number": response.number})
    else:
        raise LocalProtocolError(f"not a server response: {response!r}", "ABP-FRAME-1")
    return bytes(_line.build(body))


@functools.lru_cache(maxsize=MEMO_SIZE)
def _encode_text_memo(ok: bool, text: str) -> bytes:
    """``OK: TEXT`` or ``ERROR: TEXT`` for a text already checked by its event."""
    return _encode_response(Ok(text) if ok else Error(text))


#: The bare ``OK``, the answer to every ``add``: built once, by the schema.
_OK_BARE = _encode_response(Ok())
_BUSY = _encode_response(Error(SERVER_BUSY))


def _parse_response(line: bytes) -> Any:
    """``schema.Response.parse``, through the compiled alternatives."""
    for alternative in _response_alternatives:
        try:
            return alternative.parse(line)
        except ConstructError:
            continue
    raise SelectError("no alternative matched")


def decode_response(line: bytes, *, legacy: bool = False) -> Ok | Error | LegacyReply:
    # ServerBusy is an Error: "ERROR: Server busy" decodes to it (ABP-CONN-8).
    """Parse one response line. In legacy mode free text becomes ``LegacyReply``."""
    if type(line) is bytes and len(line) <= MEMO_MAX_BYTES:
        return _decode_response_memo(line, legacy)
    return _decode_response(line, legacy)


def _decode_response(line: bytes, legacy: bool) -> Ok | Error | LegacyReply:
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        if not legacy:
            raise RemoteProtocolError(
                f"response is not UTF-8: {line[:80]!r}", "ABP-FRAME-1"
            ) from None
        text = line.decode("utf-8", "replace")
    try:
        parsed = _parse_response(line)
    except ConstructError:
        if legacy:
            return LegacyReply(text)
        raise RemoteProtocolError(
            f"response is neither 'OK' nor 'ERROR: ...': {line[:80]!r}", "ABP-RESP-1"
        ) from None
    try:
        if parsed.status == b"ERROR:":
            return ServerBusy() if parsed.text == SERVER_BUSY else Error(parsed.text)
        return Ok(parsed.text)
    except LocalProtocolError as exc:  # a NUL inside the line
        raise RemoteProtocolError(exc.message, "ABP-FRAME-1") from None


#: Only a valid line's event is stored: an exception passes through uncached.
_decode_response_memo = functools.lru_cache(maxsize=MEMO_SIZE)(_decode_response)


def line_content(line: bytes) -> bytes:
    """A line without its terminator: the LF, and one CR right before it (section 2)."""
    if line.endswith(b"\n"):
        line = line[:-1]
        if line.endswith(b"\r"):
            line = line[:-1]
    return line


def applicable_errors(line: bytes) -> frozenset[Error]:
    """Every error a conforming server may answer to the request ``line``
    (terminator removed); the empty set for a valid request.

    Section 4: "When a line breaks more than one rule ..., any of the errors
    that apply is a conforming answer." ``decode_request`` stops at the first
    rule the reference order finds broken; this checks every rule, in no
    order, so that a server that checks in another order is judged fairly.
    """
    errors: set[Error] = set()
    if len(line) > schema.MAX_REQUEST_LINE:  # ABP-FRAME-10
        errors.add(Error(REQUEST_TOO_LONG))
    if b"\x00" in line or b"\r" in line:  # ABP-FRAME-13
        errors.add(Error(MALFORMED_REQUEST))
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:  # ABP-FRAME-12
        errors.add(Error(INVALID_UTF8))
    command, colon, argument = line.partition(b":")
    if not colon:  # ABP-REQ-9
        errors.add(Error(MALFORMED_REQUEST))
        return frozenset(errors)
    if command.decode("ascii", "replace") not in schema.COMMANDS:  # ABP-REQ-8, ABP-REQ-11
        # The command is repeated byte for byte; a command that is not UTF-8
        # cannot be, so only the line's other errors apply to it.
        with contextlib.suppress(UnicodeDecodeError, LocalProtocolError):
            errors.add(unrecognised(command.decode("utf-8")))
    # ABP-REQ-10; an unknown command's NAME is its whole ARGUMENT (section 4)
    name = argument.partition(b",")[0] if command == b"add" else argument
    if not name:
        errors.add(Error(MALFORMED_REQUEST))
    if len(line) <= schema.MAX_REQUEST_LINE:
        try:  # the reference's own answer is always among them
            decode_request(line)
        except RemoteProtocolError as exc:
            if exc.reply is not None:  # every request error carries its answer
                errors.add(exc.reply)
    return frozenset(errors)


def decode_counter_reply(line: bytes) -> CounterReply:
    try:
        return CounterReply(_counter.parse(line).number)
    except (ConstructError, ValueError, LocalProtocolError):
        raise RemoteProtocolError(f"not a counter answer: {line[:80]!r}", "ABP-COUNTER-1") from None
