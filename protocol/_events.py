"""The messages and events of ABP/1: small, immutable, validated on creation.

Constructors check only what the wire needs to carry a value unambiguously
(a line holds no LF or NUL; an ``add`` name holds no comma). Stricter client
rules (ABP-REQ-13) are checked by ``ClientConnection.send``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from protocol._errors import LocalProtocolError, RemoteProtocolError

#: ABP-CONN-8: the text of a busy refusal (``ServerBusy``).
SERVER_BUSY = "Server busy"

#: Characters no message text can hold: LF ends a line, NUL is refused (ABP-FRAME-13).
LINE_BREAKERS = frozenset("\n\x00")


def _check_text(value: str, what: str, requirement: str) -> None:
    if not isinstance(value, str):
        raise LocalProtocolError(f"{what} must be str, not {type(value).__name__}", requirement)
    bad = LINE_BREAKERS.intersection(value)
    if bad:
        shown = ", ".join(sorted(repr(c) for c in bad))
        raise LocalProtocolError(f"{what} cannot hold {shown}", requirement)


def _check_name(name: str) -> None:
    _check_text(name, "name", "ABP-REQ-13")
    if not name:
        raise LocalProtocolError("name must not be empty", "ABP-REQ-13")


# ---------------------------------------------------------------- requests


@dataclass(frozen=True, slots=True)
class Add:
    """``add:NAME,ENTRY``: store ENTRY under NAME (ABP-REQ-2)."""

    name: str
    entry: str = ""

    def __post_init__(self) -> None:
        _check_name(self.name)
        if "," in self.name:
            # "NAME is the text before the first ','" (ABP-REQ-2)
            raise LocalProtocolError("an add name cannot hold ','", "ABP-REQ-13")
        _check_text(self.entry, "entry", "ABP-REQ-13")


@dataclass(frozen=True, slots=True)
class Remove:
    """``rem:NAME`` (ABP-REQ-5)."""

    name: str

    def __post_init__(self) -> None:
        _check_name(self.name)


@dataclass(frozen=True, slots=True)
class Find:
    """``fnd:NAME`` (ABP-REQ-6)."""

    name: str

    def __post_init__(self) -> None:
        _check_name(self.name)


@dataclass(frozen=True, slots=True)
class CounterRequest:
    """Any line sent to the counter service (ABP-COUNTER-1); kept as raw bytes."""

    line: bytes


Request: TypeAlias = Add | Remove | Find

# --------------------------------------------------------------- responses


@dataclass(frozen=True, slots=True)
class Ok:
    """``OK`` (text is None) or ``OK: TEXT`` (ABP-RESP-1, ABP-RESP-2)."""

    text: str | None = None

    def __post_init__(self) -> None:
        if self.text is not None:
            _check_text(self.text, "OK text", "ABP-FRAME-1")


@dataclass(frozen=True, slots=True)
class Error:
    """``ERROR: TEXT`` (ABP-RESP-3)."""

    text: str

    def __post_init__(self) -> None:
        _check_text(self.text, "error text", "ABP-FRAME-1")


@dataclass(frozen=True, slots=True)
class CounterReply:
    """``Thankyou!, processed connection number N`` (ABP-COUNTER-1)."""

    number: int

    def __post_init__(self) -> None:
        if isinstance(self.number, bool) or not isinstance(self.number, int) or self.number < 1:
            raise LocalProtocolError("a connection number is an int >= 1", "ABP-COUNTER-2")


@dataclass(frozen=True, slots=True)
class LegacyReply:
    """A line from a tutorial-era server that is neither ``OK`` nor ``ERROR:``.

    Produced only by a client connection in legacy mode; such servers answer
    with free human text.
    """

    text: str


@dataclass(frozen=True, slots=True)
class ServerBusy(Error):
    """``ERROR: Server busy``: the server refuses this connection and closes it
    (ABP-CONN-8). An ``Error`` like any other, typed so that nobody recognises a
    refusal by comparing text."""

    text: str = "Server busy"

    def __post_init__(self) -> None:
        if self.text != SERVER_BUSY:
            raise LocalProtocolError(f"a busy refusal says {SERVER_BUSY!r}", "ABP-CONN-8")


#: Every answer a server sends, as the client side decodes it: THE answer type.
Response: TypeAlias = Ok | Error | CounterReply | LegacyReply

# ------------------------------------------------------------------ events


@dataclass(frozen=True, slots=True)
class InvalidRequest:
    """A request line the server must refuse; ``error.reply`` is the answer.

    An event rather than an exception so that a bad line in a pipeline keeps
    its place in the order of answers (ABP-CONN-2, ABP-CONN-3).
    """

    error: RemoteProtocolError
    raw: bytes

    @property
    def reply(self) -> Error:
        assert self.error.reply is not None  # every server-side error carries one
        return self.error.reply


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The peer closed its sending side; nothing more will arrive."""


# ------------------------------------------------------- standard error texts

#: ABP-REQ-11: "ERROR: Unrecognised command: COMMAND", the tutorial's wording.
UNRECOGNISED_COMMAND = "Unrecognised command: "
MALFORMED_REQUEST = "Malformed request"
NO_ENTRY_FOR = "No entry for "
REQUEST_TOO_LONG = "Request too long"
INVALID_UTF8 = "Invalid UTF-8"


def no_entry(name: str) -> Error:
    """``ERROR: No entry for NAME`` (ABP-RESP-4)."""
    return Error(NO_ENTRY_FOR + name)


def unrecognised(command: str) -> Error:
    """``ERROR: Unrecognised command: COMMAND`` (ABP-REQ-11)."""
    return Error(UNRECOGNISED_COMMAND + command)
