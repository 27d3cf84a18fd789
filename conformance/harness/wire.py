"""The suite's side of the wire: blocking connections that keep a transcript.

Every byte the suite sends or receives goes through a ``Wire`` (or a
``Crowd``) so that a failure can show the conversation that led to it. A
``Wire`` moves bytes only: lines are read by ``conformance.harness.lines``,
answers decoded by the protocol package. It never blocks past its timeout: a
silent server is a ``WireTimeout``.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from dataclasses import dataclass, field

from conformance.harness.timing import TIMEOUT
from protocol.escape import escape


class WireError(Exception):
    """The conversation could not go on; the transcript says how far it got."""


class WireTimeout(WireError, TimeoutError):
    """Nothing (or not enough) arrived before the deadline."""


class WireClosed(WireError):
    """The server closed the connection before the expected answer."""


@dataclass(frozen=True, slots=True)
class Record:
    at: float  # seconds since the transcript started
    channel: str  # which connection, e.g. "c1"
    direction: str  # ">>" sent, "<<" received, "--" an event (connect, close, note)
    data: bytes = b""
    note: str = ""

    def render(self) -> str:
        head = f"+{self.at:8.4f}s {self.channel:>4} {self.direction}"
        if self.direction == "--":
            return f"{head} {self.note}"
        return f'{head} "{escape(self.data)}"' + (f"  ({self.note})" if self.note else "")


@dataclass
class Transcript:
    """What happened on the wire, across all connections of one test."""

    records: list[Record] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    limit: int = 400  # records kept; a flood test must not make a 1 GB report
    dropped: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, channel: str, direction: str, data: bytes = b"", note: str = "") -> None:
        with self._lock:
            if len(self.records) >= self.limit:
                self.dropped += 1
                return
            shown = data if len(data) <= 512 else data[:512]
            if len(data) > 512:
                note = (note + "; " if note else "") + f"{len(data)} bytes, first 512 shown"
            self.records.append(
                Record(time.monotonic() - self.started, channel, direction, shown, note)
            )

    def note(self, channel: str, text: str) -> None:
        self.add(channel, "--", note=text)

    def render(self) -> str:
        lines = [record.render() for record in self.records]
        if self.dropped:
            lines.append(f"... {self.dropped} more records not kept")
        return "\n".join(lines)

    def as_json(self) -> list[dict[str, object]]:
        return [
            {
                "t": round(r.at, 6),
                "conn": r.channel,
                "dir": r.direction,
                "data": escape(r.data),
                "note": r.note,
            }
            for r in self.records
        ]


class Wire:
    """One TCP connection to the implementation under test; every byte sent
    and received, and every event, goes into the transcript."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        name: str,
        timeout: float = TIMEOUT,
        transcript: Transcript | None = None,
    ) -> None:
        self.name = name
        self.host, self.port = host, port
        self.timeout = timeout
        self.transcript = transcript if transcript is not None else Transcript()
        self.sock: socket.socket | None = None

    # -- connection
    def connect(self) -> Wire:
        try:
            self.sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        except OSError as exc:
            self.transcript.note(self.name, f"connect to {self.host}:{self.port} failed: {exc}")
            raise WireError(f"cannot connect to {self.host}:{self.port}: {exc}") from None
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.transcript.note(self.name, f"connected to {self.host}:{self.port}")
        return self

    def __enter__(self) -> Wire:
        return self.connect() if self.sock is None else self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()
            self.sock = None
            self.transcript.note(self.name, "closed")

    def reset(self) -> None:
        """Close with RST (SO_LINGER 0): an abrupt client (ABP-CONN-6)."""
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.sock.close()
            self.sock = None
            self.transcript.note(self.name, "reset (RST)")

    def shutdown_write(self) -> None:
        """Half-close: the legacy end-of-request signal (ABP-FRAME-5)."""
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_WR)
        self.transcript.note(self.name, "half-closed (FIN sent)")

    @property
    def _sock(self) -> socket.socket:
        if self.sock is None:
            raise WireError("not connected")
        return self.sock

    # -- bytes
    def send(self, data: bytes, note: str = "") -> None:
        """Raw bytes, exactly as given."""
        self.transcript.add(self.name, ">>", data, note)
        try:
            self._sock.sendall(data)
        except OSError as exc:
            self.transcript.note(self.name, f"send failed: {exc}")
            raise WireClosed(f"send failed: {exc}") from None

    def recv_chunk(self, timeout: float | None = None) -> bytes:
        """One read: b"" at end of stream; WireTimeout if nothing arrives."""
        sock = self._sock
        sock.settimeout(self.timeout if timeout is None else timeout)
        try:
            data = sock.recv(65536)
        except TimeoutError:
            raise WireTimeout("no data before the deadline") from None
        except OSError as exc:
            self.transcript.note(self.name, f"receive failed: {exc}")
            raise WireClosed(f"connection broken: {exc}") from None
        if data:
            self.transcript.add(self.name, "<<", data)
        else:
            self.transcript.note(self.name, "end of stream from server")
        return data
