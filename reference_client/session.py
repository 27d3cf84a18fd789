"""The I/O shell: a blocking socket around ``protocol.ClientConnection``.

One connection per request, as the tutorial's client does (ABP-CONN-9: the
answer is read before the socket is closed). Every wait is bounded: connect and
each read by ``timeout``; in legacy mode the quiet period ends an answer that
has no LF (ABP-FRAME-8). Failures become ``NetworkError`` with a one-line
message for people; nothing here prints except the tracer.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

from protocol import (
    ClientConnection,
    ClientEvent,
    ConnectionClosed,
    Error,
    LegacyReply,
    Ok,
    RemoteProtocolError,
    Request,
)
from protocol.address import format_address
from reference_client.address import Address
from reference_client.trace import RECEIVED, SENT, RawDecoder, Tracer

Answer = Ok | Error | LegacyReply

#: Bytes asked of one ``recv``; any segmentation works (ABP-FRAME-7).
CHUNK = 65536
#: ``raw`` stops reading past this many bytes, so a firehose cannot hang it.
RAW_LIMIT = 16 << 20


class NetworkError(Exception):
    """The exchange failed on the network or the server broke the protocol."""


def _reason(exc: OSError) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "connection reset by peer"
    if isinstance(exc, BrokenPipeError):
        return "connection closed by peer (broken pipe)"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve host ({exc.strerror})"
    return (exc.strerror or str(exc) or type(exc).__name__).lower()


def connect(address: Address, timeout: float, tracer: Tracer) -> socket.socket:
    """A connected socket, or ``NetworkError`` naming the address and why."""
    tracer.note(f"connecting to {address} (timeout {timeout:g}s)")
    try:
        sock = socket.create_connection((address.host, address.port), timeout=timeout)
    except TimeoutError:
        raise NetworkError(f"cannot connect to {address}: timed out after {timeout:g}s") from None
    except OSError as exc:
        raise NetworkError(f"cannot connect to {address}: {_reason(exc)}") from None
    tracer.note(f"connected to {address} from {_peer(sock.getsockname())}")
    return sock


def _peer(sockname: tuple[object, ...]) -> str:
    return format_address(sockname[0], sockname[1])


def _close(sock: socket.socket, tracer: Tracer) -> None:
    sock.close()
    tracer.note("closed")


@dataclass(frozen=True, slots=True)
class RawResult:
    """What ``raw`` got back and how the conversation ended."""

    received: bytes
    ending: str  # for people: "the server closed the connection", ...
    error: str | None = None  # set when the ending was a failure (reset, ...)


class Session:
    """Talks to one server; each call opens and closes its own connection."""

    def __init__(
        self,
        address: Address,
        *,
        timeout: float = 5.0,
        legacy: bool = False,
        quiet_period: float = 0.3,
        tracer: Tracer | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.address = address
        self.timeout = timeout
        self.legacy = legacy
        self.quiet_period = quiet_period
        self.tracer = tracer if tracer is not None else Tracer(None)
        self.clock = clock

    def request(self, request: Request) -> Answer:
        """Send one request and return its answer.

        ``LocalProtocolError`` (an invalid name or entry, ABP-REQ-13) is raised
        before any connection is made; network trouble raises ``NetworkError``.
        """
        conn = ClientConnection(legacy=self.legacy, quiet_period=self.quiet_period)
        data = conn.send(request)  # validates first: nothing is sent on error
        sock = connect(self.address, self.timeout, self.tracer)
        try:
            self.tracer.frame(SENT, data)
            self.tracer.decoded(SENT, request)
            try:
                sock.sendall(data)
            except OSError as exc:
                raise NetworkError(f"cannot send to {self.address}: {_reason(exc)}") from None
            return self._read_answer(sock, conn)
        finally:
            _close(sock, self.tracer)

    def _read_answer(self, sock: socket.socket, conn: ClientConnection) -> Answer:
        last_activity = self.clock()
        while True:
            now = self.clock()
            give_up = last_activity + self.timeout
            quiet = conn.deadline()  # legacy mode: silence ends an unterminated answer
            wake = give_up if quiet is None else min(give_up, quiet)
            if now >= wake:
                if quiet is not None and now >= quiet:
                    self.tracer.note(f"quiet for {self.quiet_period:g}s: the answer ends here")
                    answer = self._decode(conn, partial(conn.expire, now))
                    if answer is not None:
                        return answer
                    continue
                self.tracer.note(f"no byte for {self.timeout:g}s")
                raise NetworkError(f"no answer from {self.address} within {self.timeout:g}s")
            sock.settimeout(wake - now)
            try:
                chunk = sock.recv(CHUNK)
            except TimeoutError:
                continue  # the top of the loop decides: quiet period or give up
            except OSError as exc:
                self.tracer.note(f"receive failed: {_reason(exc)}")
                raise NetworkError(
                    f"connection to {self.address} failed before an answer: {_reason(exc)}"
                ) from None
            last_activity = self.clock()
            if chunk:
                self.tracer.frame(RECEIVED, chunk)
            answer = self._decode(conn, partial(conn.receive_data, chunk, last_activity))
            if answer is not None:
                return answer

    def _decode(
        self, conn: ClientConnection, produce: Callable[[], Sequence[ClientEvent]]
    ) -> Answer | None:
        """Run one step of the connection; the answer once it is complete."""
        try:
            events = produce()
        except RemoteProtocolError as exc:
            self.tracer.decoded(RECEIVED, exc)
            raise NetworkError(f"malformed answer from {self.address}: {exc}") from None
        return self._handle(events, conn)

    def _handle(self, events: Sequence[object], conn: ClientConnection) -> Answer | None:
        for event in events:
            self.tracer.decoded(RECEIVED, event)
            if isinstance(event, ConnectionClosed):
                raise NetworkError(f"{self.address} closed the connection before answering")
            if isinstance(event, Ok | Error | LegacyReply) and conn.outstanding == 0:
                return event
        return None

    def raw(self, data: bytes, *, wait: float, half_close: bool = False) -> RawResult:
        """Send ``data`` as is; collect bytes until EOF or ``wait`` seconds of silence."""
        decoder = RawDecoder()
        sock = connect(self.address, self.timeout, self.tracer)
        received = bytearray()
        try:
            self.tracer.frame(SENT, data)
            for event in decoder.sent(data):
                self.tracer.decoded(SENT, event)
            try:
                sock.sendall(data)
                if half_close:
                    sock.shutdown(socket.SHUT_WR)
                    self.tracer.note("half-closed: shut down our sending side")
            except OSError as exc:
                return RawResult(b"", "sending failed", f"cannot send: {_reason(exc)}")
            sock.settimeout(wait)
            while len(received) < RAW_LIMIT:
                try:
                    chunk = sock.recv(CHUNK)
                except TimeoutError:
                    self.tracer.note(f"no byte for {wait:g}s")
                    for event in decoder.received(b""):  # what a legacy reader makes of it
                        self.tracer.decoded(RECEIVED, event)
                    return RawResult(bytes(received), f"no byte for {wait:g}s")
                except OSError as exc:
                    self.tracer.note(f"receive failed: {_reason(exc)}")
                    return RawResult(bytes(received), "receive failed", _reason(exc))
                if chunk:
                    self.tracer.frame(RECEIVED, chunk)
                for event in decoder.received(chunk):
                    self.tracer.decoded(RECEIVED, event)
                if not chunk:
                    self.tracer.decoded(RECEIVED, ConnectionClosed())
                    return RawResult(bytes(received), "the server closed the connection")
                received += chunk
            return RawResult(bytes(received), f"stopped reading after {RAW_LIMIT} bytes")
        finally:
            _close(sock, self.tracer)
