"""The raw codec: one line in, one message out, and back; the line reader.

Most programs need only the connections of ``protocol`` (``ServerConnection``,
``ClientConnection``), which use all of this. This module is for the few that
work below them: a suite that judges raw bytes, a proxy that decodes what it
forwards, a benchmark that frames its own reads. Every wire format is still
built and parsed by the construct schemas of ``protocol._schema`` only.
"""

from __future__ import annotations

from protocol._codec import (
    MEMO_MAX_BYTES,
    MEMO_SIZE,
    applicable_errors,
    check_request,
    decode_counter_reply,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
    line_content,
)
from protocol._events import (
    INVALID_UTF8,
    MALFORMED_REQUEST,
    NO_ENTRY_FOR,
    REQUEST_TOO_LONG,
    SERVER_BUSY,
    UNRECOGNISED_COMMAND,
    no_entry,
    unrecognised,
)
from protocol._framing import Frame, LineFrame, LineReader, OverlongFrame
from protocol._schema import ENTRY_FORBIDDEN, NAME_FORBIDDEN

__all__ = [
    "ENTRY_FORBIDDEN",
    "INVALID_UTF8",
    "MALFORMED_REQUEST",
    "MEMO_MAX_BYTES",
    "MEMO_SIZE",
    "NAME_FORBIDDEN",
    "NO_ENTRY_FOR",
    "REQUEST_TOO_LONG",
    "SERVER_BUSY",
    "UNRECOGNISED_COMMAND",
    "Frame",
    "LineFrame",
    "LineReader",
    "OverlongFrame",
    "applicable_errors",
    "check_request",
    "decode_counter_reply",
    "decode_request",
    "decode_response",
    "encode_request",
    "encode_response",
    "line_content",
    "no_entry",
    "unrecognised",
]
