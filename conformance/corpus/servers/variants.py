"""The acquittal corpus: correct servers that each make one choice the reference does not.

Each is ``base.Server`` with one step overridden (or only started with other
options), registered with ``@variant(...)``: the choice it makes, the words of
docs/spec.md that allow it, and what the suite must be told (``--idle-timeout``,
``--service counter``). The conformance suite must pass every one of them:
exit 0, no FAIL, no WARN (``tests/test_corpus_acquittal.py``). A false alarm
here is the suite's fault or the spec's, never the variant's. Run one with
``python -m conformance.corpus.servers --variant NAME --port P --data DIR``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Sequence

from conformance.corpus.servers.base import READ_SIZE, Peer, Server
from conformance.corpus.servers.registry import VARIANTS, Variant, malformed, variant
from protocol import (
    MAX_REQUEST_LINE,
    Add,
    ConnectionClosed,
    CounterRequest,
    Error,
    Ok,
    RemoteProtocolError,
    Remove,
    Request,
    Response,
    ServerEvent,
)
from protocol.codec import INVALID_UTF8, REQUEST_TOO_LONG

# ------------------------------------------------------ the order of checks


@variant(
    "utf8-before-nul",
    "checks UTF-8 before NUL and CR: a line with both answers `ERROR: Invalid UTF-8`",
    "When a line breaks more than one rule (say, it holds a NUL and is not UTF-8), "
    "any of the errors that apply is a conforming answer.",
    "section 4",
    "ABP-FRAME-12",
    "ABP-FRAME-13",
)
class Utf8BeforeNul(Server):
    def decode(self, line: bytes) -> Request:
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            raise RemoteProtocolError(
                "not UTF-8 (checked first)", "ABP-FRAME-12", Error(INVALID_UTF8)
            ) from None
        return super().decode(line)


@variant(
    "name-before-command",
    "checks for an empty NAME before the command: `XYZ:` answers `ERROR: Malformed request`",
    "When a line breaks more than one rule (say, it holds a NUL and is not UTF-8), "
    "any of the errors that apply is a conforming answer.",
    "section 4",
    "ABP-REQ-10",
    "ABP-REQ-11",
)
class NameBeforeCommand(Server):
    def decode(self, line: bytes) -> Request:
        command, colon, argument = line.partition(b":")
        name = argument.split(b",", 1)[0] if command == b"add" else argument
        if colon and not name:
            raise malformed("empty NAME (checked before the command)", "ABP-REQ-10")
        return super().decode(line)


# ------------------------------------------------------------ answer forms


@variant(
    "ok-free-text",
    "answers a successful add `OK: stored` and a successful rem `OK: removed`",
    "A server MUST answer a successful `add` or `rem` with `OK` or with `OK: ` "
    "followed by free text.",
    "ABP-RESP-1",
)
class OkFreeText(Server):
    async def execute(self, peer: Peer, request: Request) -> Response:
        response = await super().execute(peer, request)
        if response == Ok() and isinstance(request, Add):
            return Ok("stored")
        if response == Ok() and isinstance(request, Remove):
            return Ok("removed")
        return response


@variant(
    "crlf-answers",
    "ends every answer with CR LF",
    "a *line* is the bytes before an LF (0x0A), with one CR (0x0D) right before the LF removed.",
    "terms",
    "ABP-FRAME-1",
)
class CrlfAnswers(Server):
    def encode(self, peer: Peer, response: Response) -> bytes:
        return super().encode(peer, response)[:-1] + b"\r\n"


variant(
    "counter-crlf-answers",
    "counter service: ends every answer with CR LF",
    "a *line* is the bytes before an LF (0x0A), with one CR (0x0D) right before the LF removed.",
    "terms",
    "ABP-COUNTER-4",
    service="counter",
)(CrlfAnswers)


# --------------------------------------------------------- over-long lines


@variant(
    "closes-after-too-long",
    "closes the connection after `ERROR: Request too long`",
    "After `ERROR: Request too long` a server MAY close the connection",
    "ABP-FRAME-11",
    "ABP-CONN-3",
)
class ClosesAfterTooLong(Server):
    def closes_after(self, peer: Peer, response: Response) -> bool:
        return response == Error(REQUEST_TOO_LONG)


#: How much of an over-long line ``too-long-at-lf`` holds while it waits for
#: the LF (its memory bound); a longer line is answered when this is passed.
LATE_LIMIT = 65536


@variant(
    "too-long-at-lf",
    f"answers `ERROR: Request too long` when the long line's LF arrives (lines up to "
    f"{LATE_LIMIT} bytes), not as soon as byte 4097 is past",
    "A server MUST answer a request line longer than 4096 bytes with "
    "`ERROR: Request too long`, once per such line.",
    "ABP-FRAME-10",
)
class TooLongAtLF(Server):
    max_line = LATE_LIMIT

    async def respond(self, peer: Peer, event: ServerEvent) -> Response | None:
        if isinstance(event, CounterRequest) and len(event.line) > MAX_REQUEST_LINE:
            return Error(REQUEST_TOO_LONG)
        return await super().respond(peer, event)


# ---------------------------------------------------------------- writing


class OneByteWriter:
    """Holds what is written and, at ``drain``, sends it one byte per send()."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.pending = bytearray()

    def write(self, data: bytes) -> None:
        self.pending += data

    def unsent(self) -> int:
        """Bytes not handed to the socket yet, and the socket's own backlog."""
        return len(self.pending) + self.writer.transport.get_write_buffer_size()

    async def drain(self) -> None:
        while self.pending:
            self.writer.write(bytes(self.pending[:1]))
            del self.pending[:1]
            await self.writer.drain()
            await asyncio.sleep(0)  # let the byte leave on its own


@variant(
    "one-byte-writes",
    "writes every answer one byte at a time (TCP_NODELAY: a segment per byte)",
    "A client MUST read a response up to its LF, whatever the segmentation: "
    "one `recv()` is not one message.",
    "ABP-FRAME-7",
)
class OneByteWrites(Server):
    def connected(self, peer: Peer) -> None:
        assert isinstance(peer.writer, asyncio.StreamWriter)
        sock = peer.writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peer.writer = OneByteWriter(peer.writer)


# ------------------------------------------------------------ timing knobs

__all__ = ["VARIANTS", "Variant"]

QUIET_PERIOD = "no further byte arrives within the quiet period (default 100 ms; configurable)"

variant(
    "quiet-30ms",
    "a quiet period of 30 ms (the suite is told: --quiet-period 0.03)",
    QUIET_PERIOD,
    "ABP-FRAME-6",
    server_args=("--quiet-period", "0.03"),
    suite_args=("--quiet-period", "0.03"),
)(Server)

variant(
    "quiet-500ms",
    "a quiet period of 500 ms (the suite is told: --quiet-period 0.5)",
    QUIET_PERIOD,
    "ABP-FRAME-6",
    server_args=("--quiet-period", "0.5"),
    suite_args=("--quiet-period", "0.5"),
)(Server)

variant(
    "short-idle-timeout",
    "closes a connection idle for 0.3 s (the suite is told: --idle-timeout 0.3)",
    "A server SHOULD close a connection that has been idle for longer than its idle "
    "timeout (configurable).",
    "ABP-CONN-7",
    server_args=("--idle-timeout", "0.3"),
    suite_args=("--idle-timeout", "0.3"),
)(Server)

#: How late ``counter-late-first`` answers the first request of a connection.
LATE_FIRST = 0.5


@variant(
    "counter-late-first",
    f"counter service: answers the first request of each connection {LATE_FIRST:g} s late",
    "A counter server MUST answer every request line, whatever it holds, with "
    "`Thankyou!, processed connection number N`",
    "ABP-COUNTER-1",
    service="counter",
)
class CounterLateFirst(Server):
    async def respond(self, peer: Peer, event: ServerEvent) -> Response | None:
        if peer.answers == 0:
            await asyncio.sleep(LATE_FIRST)
        return await super().respond(peer, event)


# ------------------------------------------------------------ concurrency


class SocketWriter:
    """A blocking socket as a peer's writer: ``write`` sends it all at once.

    Nagle's algorithm stays on, as in most blocking servers written by hand:
    a second small answer waits for the ACK of the first, which the suite's
    side delays up to 40 ms. Correct, and slow where answers follow each
    other one by one: ABP-CONN-2's 400 add-then-fnd rounds take about 17 s
    here instead of a fraction of one (what the acquittal run costs for it)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def write(self, data: bytes) -> None:
        self.sock.sendall(data)

    async def drain(self) -> None:
        """Nothing held: ``write`` already sent everything."""


@variant(
    "thread-per-connection",
    "blocking sockets, one thread per connection (the book is changed on one thread)",
    "No client MUST be able to hold up another",
    "ABP-CONN-5",
    "ABP-CONN-4",
)
class ThreadPerConnection(Server):
    """Accepts and converses in threads with blocking sockets; only the
    book's changes (``respond``) run on the event loop, one at a time."""

    async def serve(self, host: str, port: int, ready: asyncio.Event | None = None) -> None:
        loop = asyncio.get_running_loop()
        listener = socket.create_server((host, port), backlog=1024)
        accepting = threading.Thread(target=self._accept, args=(listener, loop), daemon=True)
        try:
            bound = listener.getsockname()
            print(f"listening on {bound[0]}:{bound[1]}", flush=True)
            accepting.start()
            if ready is not None:
                ready.set()
            await asyncio.Event().wait()
        finally:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
            listener.close()
            self.book.close()

    def _accept(self, listener: socket.socket, loop: asyncio.AbstractEventLoop) -> None:
        lock = threading.Lock()
        while True:
            try:
                sock, _ = listener.accept()
            except OSError:
                return  # the listener was closed
            with lock:
                self.accepted += 1
                number = self.accepted
            threading.Thread(
                target=self._connection, args=(sock, number, loop), daemon=True
            ).start()

    def _connection(
        self, sock: socket.socket, number: int, loop: asyncio.AbstractEventLoop
    ) -> None:
        peer = Peer(number, self.framer(), SocketWriter(sock))
        # a reset client, or the loop gone at exit, harms nobody else (ABP-CONN-6)
        with sock, contextlib.suppress(ConnectionError, OSError, RuntimeError):
            self.connected(peer)
            self._converse(peer, sock, loop)

    def _converse(self, peer: Peer, sock: socket.socket, loop: asyncio.AbstractEventLoop) -> None:
        framer = peer.framer
        while True:
            deadline = framer.deadline()
            wait = self.idle_timeout if deadline is None else deadline - time.monotonic()
            sock.settimeout(None if wait is None else max(wait, 0.001))
            try:
                data = sock.recv(READ_SIZE)
            except TimeoutError:
                if deadline is None:
                    return  # idle past the idle timeout (ABP-CONN-7)
                events = framer.expire(time.monotonic())
            else:
                if not data:  # half-close: the last, legacy request (ABP-FRAME-5)
                    self._answer(peer, sock, self.at_half_close(framer), loop)
                    return
                events = framer.receive_data(self.received(peer, data), time.monotonic())
            if not self._answer(peer, sock, events, loop):
                return

    def _answer(
        self,
        peer: Peer,
        sock: socket.socket,
        events: Sequence[ServerEvent],
        loop: asyncio.AbstractEventLoop,
    ) -> bool:
        """``Server.answer`` with blocking writes; False when the connection must close."""
        sock.settimeout(self.idle_timeout)  # a client that stops reading holds only its thread
        for event in self.answered(peer, events):
            if isinstance(event, ConnectionClosed):
                continue
            response = asyncio.run_coroutine_threadsafe(self.respond(peer, event), loop).result()
            if response is None:
                return False
            peer.writer.write(self.encode(peer, response))
            peer.answers += 1
            if self.closes_after(peer, response):
                return False
        return True


variant(
    "counter-thread-per-connection",
    "counter service: blocking sockets, one thread per connection",
    "No client MUST be able to hold up another",
    "ABP-CONN-5",
    "ABP-COUNTER-3",
    service="counter",
)(ThreadPerConnection)
