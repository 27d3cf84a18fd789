"""The suite's side of the wire: blocking connections that keep a transcript.

Every byte the suite sends or receives goes through a ``Wire`` (or a
``Crowd``) so that a failure can show the conversation that led to it. A
``Wire`` moves bytes only: lines are read by ``conformance.harness.lines``,
answers decoded by the protocol package. It never blocks past its timeout: a
silent server is a ``WireTimeout``. Given ``tls`` (a ``TlsSettings``), a
``Wire`` makes the TLS handshake on connecting and then moves the bytes inside
the session (ABP over TLS, docs/spec.md section 9).
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from dataclasses import dataclass, field

from conformance.harness import tls as tls_
from conformance.harness.timing import TIMEOUT
from protocol.escape import escape


class WireError(Exception):
    """The conversation could not go on; the transcript says how far it got."""


class WireTimeout(WireError, TimeoutError):
    """Nothing (or not enough) arrived before the deadline."""


class WireClosed(WireError):
    """The server closed the connection before the expected answer.
    ``sending``: found while the suite was sending; ``reset``: by an error
    (a reset) rather than an end of stream."""

    def __init__(self, message: str, *, sending: bool = False, reset: bool = False) -> None:
        super().__init__(message)
        self.sending = sending
        self.reset = reset


#: How much of a long byte string a transcript record or a verdict shows.
SHOWN_BYTES = 512


def shown(data: bytes) -> tuple[bytes, str]:
    """The first ``SHOWN_BYTES`` of ``data``, and a note saying how long it was
    when that is not all of it ("" otherwise)."""
    if len(data) <= SHOWN_BYTES:
        return data, ""
    return data[:SHOWN_BYTES], f"{len(data)} bytes, first {SHOWN_BYTES} shown"


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
            part, cut = shown(data)
            if cut:
                note = (note + "; " if note else "") + cut
            self.records.append(
                Record(time.monotonic() - self.started, channel, direction, part, note)
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
        tls: tls_.TlsSettings | None = None,
    ) -> None:
        self.name = name
        self.tls = tls
        self.host, self.port = host, port
        self.timeout = timeout
        self.transcript = transcript if transcript is not None else Transcript()
        self.sock: socket.socket | None = None
        #: SO_RCVBUF set before connecting (None: the system's): a small one
        #: keeps the window offered to the server small for the whole
        #: connection, as the window scale is chosen from it in the SYN.
        self.recv_buffer: int | None = None

    # -- connection
    def connect(self) -> Wire:
        try:
            self.sock = self._open()
        except OSError as exc:
            self.transcript.note(self.name, f"connect to {self.host}:{self.port} failed: {exc}")
            raise WireError(f"cannot connect to {self.host}:{self.port}: {exc}") from None
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.transcript.note(self.name, f"connected to {self.host}:{self.port}")
        if self.tls is not None:
            self._handshake(self.tls)
        return self

    def _open(self) -> socket.socket:
        """A connected TCP socket (``socket.create_connection``, with
        ``recv_buffer`` set before the SYN when given)."""
        if self.recv_buffer is None:
            return socket.create_connection((self.host, self.port), timeout=self.timeout)
        error: OSError = OSError(f"no address for {self.host}")
        for family, kind, proto, _, address in socket.getaddrinfo(
            self.host, self.port, type=socket.SOCK_STREAM
        ):
            sock = socket.socket(family, kind, proto)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.recv_buffer)
                sock.settimeout(self.timeout)
                sock.connect(address)
            except OSError as exc:
                sock.close()
                error = exc
                continue
            return sock
        raise error

    def _handshake(self, settings: tls_.TlsSettings) -> None:
        try:
            self.sock = settings.wrap(self._sock, self.host)
        except (OSError, tls_.TlsSetupError) as exc:  # ssl.SSLError is an OSError
            why = tls_.describe(exc)
            self.transcript.note(self.name, f"TLS handshake failed: {why}")
            self.close()
            raise WireError(f"TLS handshake with {self.host}:{self.port} failed: {why}") from None
        self.transcript.note(self.name, tls_.session_note(self.sock))

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
        """Half-close: the legacy end-of-request signal (ABP-FRAME-5). TLS has
        none (a ``close_notify`` ends the session): over TLS a ``WireError``."""
        if self.tls is not None:
            raise WireError("TLS has no half-close (docs/spec.md section 9)")
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
            raise WireClosed(f"send failed: {exc}", sending=True) from None

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
            raise WireClosed(f"connection broken: {exc}", reset=True) from None
        if data:
            self.transcript.add(self.name, "<<", data)
        else:
            self.transcript.note(self.name, "end of stream from server")
        return data
