"""What the scripted server saw: requests, violations, and each connection's story.

Filled in by ``scripted.ScriptedServer`` as it serves; read by the checks of
the client suite and by ``conformance serve``'s verdict.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from protocol import Request


@dataclass(frozen=True)
class Received:
    """One request line as the suite read it from the client."""

    connection: int  # 1-based index of the connection
    request: Request | None  # None: the line was not a valid request
    problem: str  # why it was not (empty for a valid request)
    terminated: bool  # ended by LF (or CRLF)
    at: float  # seconds since the server started


@dataclass(frozen=True)
class Violation:
    """A client requirement the suite saw broken on the wire."""

    requirement: str
    message: str
    connection: int


@dataclass
class ConnectionLog:
    """What happened on one accepted connection."""

    index: int
    peer: str
    opened: float
    received: bytearray = field(default_factory=bytearray)
    requests: list[Received] = field(default_factory=list)
    answered: int = 0  # answers whose last byte was sent
    client_eof: float | None = None  # when the client closed its side
    ended: float | None = None  # when the suite stopped serving it

    @property
    def channel(self) -> str:
        return f"c{self.index}"
