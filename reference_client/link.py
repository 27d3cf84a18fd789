"""The I/O shell: blocking sockets around ``protocol.ClientConnection``.

``Session.request`` opens one connection per request, as the tutorial's client
does (ABP-CONN-9: the answer is read before the socket is closed);
``Session(keep_open=True)`` keeps one connection for the interactive shell and
opens a new one when the server has closed it. ``timeout`` bounds the whole
exchange, connecting included, however slowly the bytes arrive (ABP-CONN-10);
in legacy mode the quiet period ends an answer that has no LF (ABP-FRAME-8).
Failures become ``NetworkError`` with a one-line message for people, which
says what did arrive; nothing here prints except the tracer.
"""

from __future__ import annotations

import select
import socket
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

from protocol import (
    ClientConnection,
    ClientEvent,
    ConnectionClosed,
    CounterReply,
    Error,
    LegacyReply,
    Ok,
    RemoteProtocolError,
    Request,
    Response,
)
from protocol.address import format_address
from protocol.escape import escape
from reference_client.arrival import describe_unterminated, legacy_hint
from reference_client.endpoint import Address
from reference_client.trace import RECEIVED, SENT, RawDecoder, Tracer

#: Bytes asked of one ``recv``; any segmentation works (ABP-FRAME-7).
CHUNK = 65536
#: ``raw`` stops reading past this many bytes, so a firehose cannot fill memory.
RAW_LIMIT = 1 << 20
#: Bytes of an unterminated tail kept to show in a message (the count is whole).
TAIL_KEPT = 256
#: Bytes of an answer line kept for ``--json`` (ABP-FRAME-14's limit, CRLF included).
LINE_KEPT = 8194

#: How an answer ended: at its LF, by the server closing (ABP-FRAME-8), or by
#: the legacy quiet period.
BY_LF, BY_CLOSE, BY_QUIET = "lf", "close", "quiet"


class NetworkError(Exception):
    """The exchange failed on the network or the server broke the protocol.

    ``unanswered`` is set when the connection was closed or reset before a
    single byte of an answer came back: on a kept connection that the server
    closed while it was idle, the request can be sent again on a new one.
    """

    def __init__(self, message: str, *, unanswered: bool = False) -> None:
        super().__init__(message)
        self.unanswered = unanswered


_REASONS: tuple[tuple[type[OSError], str], ...] = (
    (ConnectionRefusedError, "connection refused"),
    (ConnectionResetError, "connection reset by peer"),
    (BrokenPipeError, "connection closed by peer (broken pipe)"),
)


def _reason(exc: OSError) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate not accepted: {exc.verify_message or exc.reason}"
    if isinstance(exc, ssl.SSLError):
        what = (exc.reason or "").replace("_", " ").lower()
        if not what:
            what = str(exc.args[1] if len(exc.args) > 1 else exc).split(" (_ssl.c")[0]
        if isinstance(exc, ssl.SSLEOFError) or "certificate" in what:
            what += " (does the server want a client certificate? --cert, --key)"
        return f"TLS failed: {what}"
    for kind, words in _REASONS:
        if isinstance(exc, kind):
            return words
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve host ({exc.strerror})"
    return (exc.strerror or str(exc) or type(exc).__name__).lower()


def connect(
    address: Address, timeout: float, tracer: Tracer, tls: ssl.SSLContext | None = None
) -> socket.socket:
    """A connected socket (TLS-wrapped if ``tls``), or ``NetworkError`` naming
    the address and why. ``timeout`` bounds the TCP connect and the handshake."""
    tracer.note(f"connecting to {address} (timeout {timeout:g}s)")
    started = time.monotonic()
    try:
        sock = socket.create_connection((address.host, address.port), timeout=timeout)
    except TimeoutError:
        raise NetworkError(f"cannot connect to {address}: timed out after {timeout:g}s") from None
    except OSError as exc:
        raise NetworkError(f"cannot connect to {address}: {_reason(exc)}") from None
    tracer.note(f"connected to {address} from {_peer(sock.getsockname())}")
    if tls is None:
        return sock
    sock.settimeout(max(0.001, timeout - (time.monotonic() - started)))
    try:
        wrapped = tls.wrap_socket(sock, server_hostname=address.host)
    except TimeoutError:
        sock.close()
        raise NetworkError(f"TLS handshake with {address} timed out") from None
    except OSError as exc:
        sock.close()
        raise NetworkError(f"TLS handshake with {address} failed: {_reason(exc)}") from None
    tracer.note(f"TLS {wrapped.version()} established, cipher {_cipher(wrapped)}")
    return wrapped


def _cipher(sock: ssl.SSLSocket) -> str:
    cipher = sock.cipher()
    return cipher[0] if cipher else "?"


def _peer(sockname: tuple[object, ...]) -> str:
    return format_address(sockname[0], sockname[1])


@dataclass(frozen=True, slots=True)
class Exchange:
    """One request and its answer, as ``--json`` reports them."""

    request: Request
    answer: Response
    line: bytes  # the answer's bytes as received, terminator included if any
    ending: str  # BY_LF, BY_CLOSE or BY_QUIET
    latency: float  # seconds from sending the request to the complete answer
    sent: int  # bytes sent
    received: int  # bytes received for this answer


@dataclass(frozen=True, slots=True)
class RawResult:
    """What ``raw`` got back and how the conversation ended."""

    received: bytes
    ending: str  # for people: "the server closed the connection", ...
    error: str | None = None  # set when the ending was a failure (reset, ...)
    latency: float = 0.0  # seconds from sending to the end


class _Tail:
    """The bytes received after the last LF: what a message shows when a wait fails."""

    __slots__ = ("head", "total")

    def __init__(self) -> None:
        self.head = b""
        self.total = 0

    def add(self, chunk: bytes) -> None:
        lf = chunk.rfind(b"\n")
        if lf >= 0:
            chunk = chunk[lf + 1 :]
            self.head, self.total = b"", 0
        if len(self.head) < TAIL_KEPT:
            self.head += chunk[: TAIL_KEPT - len(self.head)]
        self.total += len(chunk)

    def clear(self) -> None:
        self.head, self.total = b"", 0


class Link:
    """One open connection: a socket, its ``ClientConnection``, what arrived."""

    def __init__(
        self,
        session: Session,
        sock: socket.socket,
    ) -> None:
        self.session = session
        self.sock = sock
        self.conn = ClientConnection(legacy=session.legacy, quiet_period=session.quiet_period)
        self.tail = _Tail()
        self.closed = False
        self.received_count = 0  # bytes received for the current exchange

    @property
    def address(self) -> Address:
        return self.session.address

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.sock.close()
            self.session.tracer.note("closed")

    def still_open(self) -> bool:
        """False when the server closed its side or sent what nobody asked for."""
        if self.closed or self.conn.peer_closed:
            return False
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return False
        if not readable:
            return True
        self.sock.settimeout(0)
        try:
            data = self.sock.recv(CHUNK)
        except (BlockingIOError, ssl.SSLWantReadError):
            return True  # a TLS record that carried no data (a session ticket)
        except OSError:
            return False
        if data:
            self.session.tracer.frame(RECEIVED, data)
            self.session.tracer.note("bytes that answer no request: the connection is dropped")
            self.session.notices.append(
                f"{self.address} sent {len(data)} bytes that answer no request "
                f"('{escape(data[:80])}', ABP-FRAME-1): opening a new connection"
            )
        else:
            self.session.tracer.decoded(RECEIVED, ConnectionClosed())
        return False

    def exchange(self, request: Request, deadline: float) -> Exchange:
        """Send ``request``, read its answer; ``NetworkError`` on any failure."""
        tracer, clock = self.session.tracer, self.session.clock
        data = self.conn.send(request)  # validated already: LocalProtocolError is a bug here
        tracer.frame(SENT, data)
        tracer.decoded(SENT, request)
        started = clock()
        self.sock.settimeout(max(0.001, deadline - started))
        try:
            self.sock.sendall(data)
        except TimeoutError:
            raise NetworkError(f"cannot send to {self.address}: timed out") from None
        except OSError as exc:
            raise NetworkError(
                f"cannot send to {self.address}: {_reason(exc)}", unanswered=True
            ) from None
        received = bytearray()
        self.received_count = 0
        answer, ending = self._read_answer(deadline, received)
        lf = received.find(b"\n")
        line = bytes(received[: lf + 1] if lf >= 0 else received)
        if lf >= 0 and len(received) > lf + 1:  # more than the answer: never reuse this
            extra = bytes(received[lf + 1 :])
            self.session.notices.append(
                f"{self.address} sent {len(extra)} bytes after the answer, answering no "
                f"request ('{escape(extra[:80])}', ABP-FRAME-1): the connection is dropped"
            )
            self.close()
        return Exchange(
            request, answer, line, ending, clock() - started, len(data), self.received_count
        )

    def _read_answer(self, deadline: float, received: bytearray) -> tuple[Response, str]:
        session, conn, clock = self.session, self.conn, self.session.clock
        while True:
            now = clock()
            quiet = conn.deadline()  # legacy mode: silence ends an unterminated answer
            wake = deadline if quiet is None else min(deadline, quiet)
            if now >= wake:
                if quiet is not None and now >= quiet:
                    session.tracer.note(f"quiet for {session.quiet_period:g}s: the answer ends")
                    found = self._decode(partial(conn.expire, now), BY_QUIET)
                    self.tail.clear()
                    if found is not None:
                        return found
                    continue
                raise NetworkError(self._timed_out())
            self.sock.settimeout(wake - now)
            try:
                chunk = self.sock.recv(CHUNK)
            except TimeoutError:
                continue  # the top of the loop decides: quiet period or give up
            except OSError as exc:
                session.tracer.note(f"receive failed: {_reason(exc)}")
                raise NetworkError(
                    f"connection to {self.address} failed before an answer: {_reason(exc)}"
                    + self._so_far(),
                    unanswered=not received,
                ) from None
            if chunk:
                session.tracer.frame(RECEIVED, chunk)
                self.received_count += len(chunk)
                if len(received) < LINE_KEPT:
                    received += chunk[: LINE_KEPT - len(received)]
                self.tail.add(chunk)
                found = self._decode(partial(conn.receive_data, chunk, clock()), BY_LF)
            else:
                found = self._decode(partial(conn.receive_data, b""), BY_CLOSE)
            if found is not None:
                return found

    def _timed_out(self) -> str:
        timeout = self.session.timeout
        self.session.tracer.note(f"--timeout {timeout:g}s ran out")
        if self.tail.total:
            return (
                f"no complete answer from {self.address} within {timeout:g}s: "
                + describe_unterminated(self.tail.head, self.tail.total)
            )
        return f"no answer from {self.address} within {timeout:g}s"

    def _so_far(self) -> str:
        if not self.tail.total:
            return ""
        return "; " + describe_unterminated(self.tail.head, self.tail.total)

    def _decode(
        self, produce: Callable[[], Sequence[ClientEvent]], ending: str
    ) -> tuple[Response, str] | None:
        """Run one step of the connection; the answer once it is complete."""
        try:
            events = produce()
        except RemoteProtocolError as exc:
            self.session.tracer.decoded(RECEIVED, exc)
            raise NetworkError(
                f"malformed answer from {self.address}: {exc}{legacy_hint(self.tail.head)}"
            ) from None
        for event in events:
            self.session.tracer.decoded(RECEIVED, event)
            if isinstance(event, ConnectionClosed):
                self.closed = True
                hint = self._so_far()
                if not hint and self.session.tls is not None and not self.session.client_cert:
                    hint = " (over TLS: does the server want a client certificate? --cert, --key)"
                raise NetworkError(
                    f"{self.address} closed the connection before answering" + hint,
                    unanswered=self.tail.total == 0,
                )
            # A busy refusal (ABP-CONN-8) arriving after our request is its answer.
            answered = self.conn.outstanding == 0
            if answered and isinstance(event, Ok | Error | LegacyReply | CounterReply):
                return event, ending  # BY_CLOSE: the close ended a line with no LF
        return None


class Session:
    """Talks to one server: a connection per request, or one kept open."""

    def __init__(
        self,
        address: Address,
        *,
        timeout: float = 5.0,
        legacy: bool = False,
        quiet_period: float = 0.3,
        tracer: Tracer | None = None,
        clock: Callable[[], float] = time.monotonic,
        tls: ssl.SSLContext | None = None,
        client_cert: bool = False,
        keep_open: bool = False,
    ) -> None:
        self.address = address
        self.timeout = timeout
        self.legacy = legacy
        self.quiet_period = quiet_period
        self.tracer = tracer if tracer is not None else Tracer(None)
        self.clock = clock
        self.tls = tls
        self.client_cert = client_cert  # a TLS client certificate is presented
        self.keep_open = keep_open
        self._link: Link | None = None
        #: What a person should hear about the kept connection (the shell shows them).
        self.notices: list[str] = []

    def open(self, deadline: float) -> Link:
        timeout = max(0.001, deadline - self.clock())
        return Link(self, connect(self.address, timeout, self.tracer, self.tls))

    def request(self, request: Request) -> Exchange:
        """Send one request and return its answer.

        ``LocalProtocolError`` (an invalid name or entry, ABP-REQ-13) is raised
        before any connection is made; network trouble raises ``NetworkError``.
        ``timeout`` bounds the whole exchange, connecting included.
        """
        ClientConnection(legacy=self.legacy).send(request)  # validates: nothing sent on error
        deadline = self.clock() + self.timeout
        link = self._link
        if link is not None and not link.still_open():
            self.tracer.note("the server closed the kept connection: opening a new one")
            link.close()
            link = self._link = None
        reused = link is not None
        if link is None:
            link = self.open(deadline)
        try:
            exchange = link.exchange(request, deadline)
        except NetworkError as exc:
            link.close()
            self._link = None
            if not (reused and exc.unanswered):
                raise
            # The server closed the kept connection while it was idle (its idle
            # timeout) and our request met the close: send it on a new one.
            self.tracer.note("the kept connection was closed: sending again on a new one")
            link = self.open(deadline)
            try:
                exchange = link.exchange(request, deadline)
            except BaseException:
                link.close()
                raise
        except BaseException:
            link.close()
            self._link = None
            raise
        if self.keep_open and not link.closed and not link.conn.peer_closed:
            self._link = link
        else:
            link.close()
            self._link = None
        return exchange

    def close(self) -> None:
        if self._link is not None:
            self._link.close()
            self._link = None

    def raw(self, data: bytes, *, wait: float, half_close: bool = False) -> RawResult:
        """Send ``data`` as is on a new connection; collect bytes until end of
        stream, ``wait`` seconds of silence, or ``timeout`` in all."""
        decoder = RawDecoder()
        deadline = self.clock() + self.timeout
        sock = self.open(deadline).sock
        started = self.clock()
        try:
            self.tracer.frame(SENT, data)
            for event in decoder.sent(data):
                self.tracer.decoded(SENT, event)
            try:
                sock.settimeout(max(0.001, deadline - self.clock()))
                sock.sendall(data)
                if half_close:
                    sock.shutdown(socket.SHUT_WR)
                    self.tracer.note("half-closed: shut down our sending side")
            except OSError as exc:
                return RawResult(b"", "sending failed", f"cannot send: {_reason(exc)}")
            received = bytearray()
            ending, error = self._collect(sock, decoder, received, wait=wait, deadline=deadline)
            return RawResult(bytes(received), ending, error, self.clock() - started)
        finally:
            sock.close()
            self.tracer.note("closed")

    def _collect(
        self,
        sock: socket.socket,
        decoder: RawDecoder,
        received: bytearray,
        *,
        wait: float,
        deadline: float,
    ) -> tuple[str, str | None]:
        """Read into ``received``; how it ended, and the failure if it was one."""
        while len(received) < RAW_LIMIT:
            left = deadline - self.clock()
            if left <= 0:
                self.tracer.note(f"--timeout {self.timeout:g}s ran out")
                return f"stopped at --timeout {self.timeout:g}s, still receiving", None
            sock.settimeout(min(wait, left))
            try:
                chunk = sock.recv(min(CHUNK, RAW_LIMIT - len(received)))
            except TimeoutError:
                if wait > left:
                    continue  # the top of the loop reports the timeout
                self.tracer.note(f"no byte for {wait:g}s")
                for event in decoder.received(b""):  # what a legacy reader makes of it
                    self.tracer.decoded(RECEIVED, event)
                return f"no byte for {wait:g}s", None
            except OSError as exc:
                self.tracer.note(f"receive failed: {_reason(exc)}")
                return "receive failed", _reason(exc)
            if chunk:
                self.tracer.frame(RECEIVED, chunk)
            for event in decoder.received(chunk):
                self.tracer.decoded(RECEIVED, event)
            if not chunk:
                self.tracer.decoded(RECEIVED, ConnectionClosed())
                return "the server closed the connection", None
            received += chunk
        return f"stopped reading after {RAW_LIMIT} bytes", None


__all__ = [
    "BY_CLOSE",
    "BY_LF",
    "BY_QUIET",
    "Exchange",
    "Link",
    "NetworkError",
    "RawResult",
    "Session",
    "connect",
]
