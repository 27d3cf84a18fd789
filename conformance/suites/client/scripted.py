"""The server the client suite plays: it judges every request and answers by script.

Each accepted connection gets a thread that feeds what it reads to a
``protocol.ServerConnection`` (so every request is checked against the
schemas), writes down what the client sent, and answers each request with the
actions a ``Scenario`` plans for it: send bytes, pause, close, reset, or hold
the request forever. Nothing here builds or splits wire text: answers come
from ``ServerConnection.send``; a scenario only cuts those bytes up.

A request counts as LF-terminated when it came out of ``receive_data`` with
data; one that came out of ``expire`` (the quiet period) or out of the end of
the stream had no LF, which ABP-FRAME-2 forbids a client. The suite answers it
anyway, so that one broken rule does not hide how the client does on the rest.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from types import TracebackType

from conformance.harness.timing import (
    CLIENT_CLOSE,
    LEGACY_QUIET,
    PROCESS_EXIT,
    SETTLE,
    TIMEOUT,
    budget,
)
from conformance.harness.timing import POLL as TICK
from conformance.harness.wire import Record, Transcript
from conformance.suites.client.listen import listen, peer_text
from conformance.suites.client.observed import ConnectionLog, Received, Violation
from conformance.suites.client.scenarios import (
    SPEC,
    Action,
    Book,
    Hold,
    Pause,
    Scenario,
    Send,
    Shut,
)
from protocol import ConnectionClosed, InvalidRequest, Request, ServerConnection, ServerEvent

#: The suite's legacy quiet period: bytes with no LF, followed by this much
#: silence, are taken as a request (and an ABP-FRAME-2 violation).
QUIET_PERIOD = LEGACY_QUIET
#: How often blocked threads look at the stop flag, in seconds.
POLL = SETTLE


class ScriptedServer:
    """A loopback ABP/1 server that answers as its scenario says.

    ``hosts`` are the addresses to listen on, all on the same port (``port=0``
    picks a free one). ``log`` receives every transcript line as it happens
    (``conformance serve`` prints them live).
    """

    def __init__(
        self,
        *,
        hosts: Sequence[str] = ("127.0.0.1",),
        port: int = 0,
        scenario: Scenario = SPEC,
        book: Book | None = None,
        transcript: Transcript | None = None,
        log: Callable[[str], None] | None = None,
        timeout: float = TIMEOUT,
    ) -> None:
        if not hosts:
            raise ValueError("a scripted server needs at least one host")
        self.hosts = tuple(hosts)
        self.requested_port = port
        self.scenario = scenario
        self.book = book if book is not None else Book()
        self.transcript = transcript if transcript is not None else Transcript()
        self._log = log
        self.timeout = timeout  # --timeout: bounds each send to the client
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._listeners: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._connections: list[ConnectionLog] = []
        self._violations: list[Violation] = []
        self._open: set[socket.socket] = set()  # connection sockets, woken up by stop()
        self._wake_r, self._wake_w = socket.socketpair()  # wakes the accept loop
        self.port = port
        self.started = time.monotonic()

    # ------------------------------------------------------------ lifecycle
    def start(self) -> ScriptedServer:
        self._listeners = self._bind()
        self.port = int(self._listeners[0].getsockname()[1])
        self.started = time.monotonic()
        where = ", ".join(peer_text((host, self.port)) for host in self.hosts)
        self._note("--", f"scripted server listening on {where} (scenario {self.scenario.name})")
        accept = threading.Thread(target=self._accept_loop, name="abp-scripted-accept")
        accept.daemon = True
        accept.start()
        self._threads.append(accept)
        return self

    def _bind(self) -> list[socket.socket]:
        """Sockets on every host, one port; with ``port=0``, retried until a
        port is free on all of them."""
        attempts = 20 if self.requested_port == 0 else 1
        last: OSError | None = None
        for _ in range(attempts):
            bound: list[socket.socket] = []
            port = self.requested_port
            try:
                for host in self.hosts:
                    bound.append(listen(host, port))
                    port = int(bound[0].getsockname()[1])
            except OSError as exc:
                last = exc
                for sock in bound:
                    sock.close()
                continue
            return bound
        assert last is not None
        raise last

    def stop(self) -> None:
        """Close every socket and join every thread (each checks the flag every POLL s)."""
        self._stopping.set()
        with contextlib.suppress(OSError):
            self._wake_w.send(b"!")
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        for thread in list(self._threads):
            thread.join(timeout=PROCESS_EXIT)
        for sock in (*self._listeners, self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                sock.close()

    def __enter__(self) -> ScriptedServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------- results
    @property
    def host(self) -> str:
        """The first address listened on: the one to give the client."""
        return self.hosts[0]

    @property
    def connections(self) -> list[ConnectionLog]:
        with self._lock:
            return list(self._connections)

    @property
    def requests(self) -> list[Received]:
        return [received for log in self.connections for received in log.requests]

    @property
    def violations(self) -> list[Violation]:
        with self._lock:
            return list(self._violations)

    def bytes_received(self) -> int:
        return sum(len(log.received) for log in self.connections)

    @property
    def closing(self) -> float:
        """How long a client's connections may take to show closed after it exited."""
        return budget(CLIENT_CLOSE, self.timeout)

    def wait_all_closed(self, timeout: float | None = None) -> bool:
        """True once every connection so far has been closed by the client
        (waits ``closing`` seconds at most, unless told otherwise)."""
        deadline = time.monotonic() + (self.closing if timeout is None else timeout)
        while time.monotonic() < deadline:
            if all(log.ended is not None for log in self.connections):
                return True
            self._stopping.wait(TICK)
        return all(log.ended is not None for log in self.connections)

    # ------------------------------------------------------------ internals
    def _note(self, channel: str, text: str) -> None:
        self._record(channel, "--", b"", text)

    def _record(self, channel: str, direction: str, data: bytes, note: str = "") -> None:
        self.transcript.add(channel, direction, data, note)
        if self._log is not None:
            at = time.monotonic() - self.transcript.started
            self._log(Record(at, channel, direction, data, note).render())

    def _violation(self, log: ConnectionLog, requirement: str, message: str) -> None:
        with self._lock:
            self._violations.append(Violation(requirement, message, log.index))
        self._note(log.channel, f"VIOLATION {requirement}: {message}")

    def _accept_loop(self) -> None:
        selector = selectors.DefaultSelector()
        for sock in self._listeners:
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ)
        selector.register(self._wake_r, selectors.EVENT_READ)
        try:
            while not self._stopping.is_set():
                for key, _ in selector.select(POLL):
                    listener = key.fileobj
                    assert isinstance(listener, socket.socket)
                    if listener is self._wake_r:
                        return
                    with contextlib.suppress(BlockingIOError, OSError):
                        sock, address = listener.accept()
                        self._start_connection(sock, address)
        except (OSError, ValueError):
            return  # a listener was closed under us: stopping
        finally:
            selector.close()

    def _start_connection(self, sock: socket.socket, address: tuple[object, ...]) -> None:
        sock.setblocking(True)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            log = ConnectionLog(len(self._connections) + 1, peer_text(address), time.monotonic())
            self._connections.append(log)
            self._open.add(sock)
        self._note(log.channel, f"client connected from {log.peer}")
        thread = threading.Thread(target=self._serve, args=(sock, log), name=f"abp-{log.channel}")
        thread.daemon = True
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _serve(self, sock: socket.socket, log: ConnectionLog) -> None:
        conn = ServerConnection(quiet_period=QUIET_PERIOD)
        holding = False
        try:
            while not self._stopping.is_set():
                events, terminated, at_eof = self._read(sock, log, conn)
                if events is None:
                    return  # reset or broken: already noted
                for event in events:
                    if isinstance(event, ConnectionClosed):
                        continue
                    self._judge(log, event, terminated)
                    if holding:
                        continue
                    outcome = self._answer(sock, log, conn, event)
                    if outcome == "closed":
                        return
                    holding = holding or outcome == "hold"
                if at_eof:
                    return
        finally:
            log.ended = time.monotonic()
            with self._lock:
                self._open.discard(sock)
            with contextlib.suppress(OSError):
                sock.close()

    def _read(
        self, sock: socket.socket, log: ConnectionLog, conn: ServerConnection
    ) -> tuple[list[ServerEvent] | None, bool, bool]:
        """(events, whether they were LF-terminated, whether the client closed)."""
        now = time.monotonic()
        deadline = conn.deadline()
        wait = POLL if deadline is None else max(0.001, min(POLL, deadline - now))
        sock.settimeout(wait)
        try:
            data = sock.recv(65536)
        except TimeoutError:
            events = conn.expire(time.monotonic())
            if events:
                self._note(log.channel, f"no LF and {QUIET_PERIOD:g}s of quiet: taken as a request")
            return events, False, False
        except OSError as exc:
            self._note(log.channel, f"connection broken: {exc}")
            return None, False, True
        if not data:
            if self._stopping.is_set():
                return None, False, True  # our own shutdown in stop()
            log.client_eof = time.monotonic()
            self._note(log.channel, "client closed its side (end of stream)")
            return conn.receive_data(b""), False, True
        log.received += data
        self._record(log.channel, "<<", data)
        return conn.receive_data(data, time.monotonic()), True, False

    def _judge(self, log: ConnectionLog, event: ServerEvent, terminated: bool) -> None:
        at = time.monotonic() - self.started
        if isinstance(event, InvalidRequest):
            error = event.error
            if error.requirement in ("ABP-REQ-10", "ABP-FRAME-13"):
                # an empty NAME, or CR/NUL inside the line: input it had to refuse
                problem = f"a request it had to refuse ({error.message})"
                self._violation(log, "ABP-REQ-13", f"the client sent {problem}")
            else:
                problem = f"not an ABP/1 request ({error.message})"
                self._violation(log, "ABP-FRAME-2", f"the client sent a line that is {problem}")
            log.requests.append(Received(log.index, None, problem, terminated, at))
            return
        if not isinstance(event, Request):
            return  # a counter line or the end of the stream: not a request
        if not terminated:
            self._violation(log, "ABP-FRAME-2", f"request {event!r} was not terminated by LF")
        log.requests.append(Received(log.index, event, "", terminated, at))

    def _answer(
        self, sock: socket.socket, log: ConnectionLog, conn: ServerConnection, event: ServerEvent
    ) -> str:
        if isinstance(event, InvalidRequest):
            data = conn.send(event.reply)
        elif isinstance(event, Request):
            data = conn.send(self.scenario.respond(event, self.book))
        else:
            return "ok"  # a counter line cannot come from this connection
        return self._perform(sock, log, self.scenario.deliver(data))

    def _perform(self, sock: socket.socket, log: ConnectionLog, actions: Iterable[Action]) -> str:
        """Carry out a delivery plan: "ok", "hold" (never answer) or "closed"."""
        for action in actions:
            if isinstance(action, Send):
                if not self._send(sock, log, action):
                    return "closed"
            elif isinstance(action, Pause):
                if self._stopping.wait(action.seconds):
                    return "closed"
            elif isinstance(action, Hold):
                self._note(log.channel, "holding the request: no answer will come")
                return "hold"
            elif isinstance(action, Shut):
                self._shut(sock, log, reset=action.reset)
                return "closed"
        log.answered += 1
        return "ok"

    def _send(self, sock: socket.socket, log: ConnectionLog, action: Send) -> bool:
        self._record(log.channel, ">>", action.data, action.note)
        sock.settimeout(self.timeout)
        try:
            sock.sendall(action.data)
        except OSError as exc:
            self._note(log.channel, f"send failed: {exc}")
            self._violation(
                log, "ABP-CONN-9", "the client closed the connection before reading its answer"
            )
            return False
        return True

    def _shut(self, sock: socket.socket, log: ConnectionLog, *, reset: bool) -> None:
        if reset:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.close()
            self._note(log.channel, "suite reset the connection (RST)")
            return
        # FIN first, then read until the client closes: closing with unread
        # bytes would turn our FIN into an RST and lose what we sent.
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_WR)
        self._note(log.channel, "suite closed its side (FIN)")
        deadline = time.monotonic() + 2 * self.timeout  # the client's own deadline
        while not self._stopping.is_set() and time.monotonic() < deadline:
            sock.settimeout(POLL)
            try:
                data = sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                if not self._stopping.is_set():
                    log.client_eof = time.monotonic()
                    self._note(log.channel, "client closed its side (end of stream)")
                return
            log.received += data
            self._record(log.channel, "<<", data, "after the suite closed")
