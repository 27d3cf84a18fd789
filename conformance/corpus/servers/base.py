"""A small, correct ABP/1 server whose steps are methods a defect can override.

The correct path stays on ``protocol``: a ``ServerConnection`` frames the
byte stream (LF/CRLF, the 4096-byte limit, the legacy quiet period and
half-close), ``decode_request`` parses a line, ``encode_response`` builds an
answer. The framer runs in counter mode for both services because that mode
hands out each line's raw bytes, which is what the defects need to get at;
the ABP service then decodes the line itself.

Every step a defect may break is one small method (``connected``, ``framer``, ``received``,
``at_half_close``, ``answered``, ``decode``, ``refuse``, ``execute``, ``flush``,
``encode``, ``closes_after``, ``number``, ``handle``): a defect in
``defects.py`` is a subclass overriding exactly one of them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from conformance.corpus.servers.book import Book
from protocol import (
    DEFAULT_QUIET_PERIOD,
    MAX_REQUEST_LINE,
    Add,
    ConnectionClosed,
    CounterReply,
    CounterRequest,
    Find,
    InvalidRequest,
    Ok,
    RemoteProtocolError,
    Remove,
    Request,
    Response,
    ServerConnection,
    ServerEvent,
)
from protocol.codec import decode_request, encode_response, no_entry

READ_SIZE = 65536


class Writer(Protocol):
    """Where a peer's answers go: an ``asyncio.StreamWriter``, or a stand-in
    (a blocking socket, a writer that sends one byte at a time)."""

    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None: ...


def unsent(writer: Writer) -> int:
    """Bytes ``writer`` holds that the client has not taken yet."""
    held = getattr(writer, "unsent", None)
    if callable(held):
        return int(held())
    transport = getattr(writer, "transport", None)
    return int(transport.get_write_buffer_size()) if transport is not None else 0


@dataclass(eq=False)  # hashed by identity: peers live in a set
class Peer:
    """One client connection: its number (the counter's N) and its framer."""

    number: int
    framer: ServerConnection
    writer: Writer
    answers: int = 0
    extra: dict[str, object] = field(default_factory=dict)


class Server:
    """The correct server. ``service`` is ``"abp"`` or ``"counter"``."""

    book_class: type[Book] = Book
    max_line: int = MAX_REQUEST_LINE

    def __init__(
        self,
        *,
        service: str = "abp",
        data_dir: Path | None = None,
        quiet_period: float = DEFAULT_QUIET_PERIOD,
        idle_timeout: float | None = 300.0,
    ) -> None:
        self.service = service
        self.book = self.book_class(data_dir)
        self.quiet_period: float | None = quiet_period
        self.idle_timeout = idle_timeout
        self.accepted = 0  # connections since start: the counter's N
        self.open: set[Peer] = set()
        self.requests = 0  # request lines answered since start

    # ---------------------------------------------------------- connections
    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One connection, from accept to close."""
        self.accepted += 1
        peer = Peer(self.accepted, self.framer(), writer)
        self.open.add(peer)
        self.connected(peer)
        try:
            await self.converse(peer, reader)
        except (ConnectionError, OSError):
            pass  # a reset client harms nobody else (ABP-CONN-6)
        finally:
            self.open.discard(peer)
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def converse(self, peer: Peer, reader: asyncio.StreamReader) -> None:
        loop = asyncio.get_running_loop()
        framer = peer.framer
        while True:
            deadline = framer.deadline()
            wait = self.idle_timeout if deadline is None else max(0.0, deadline - loop.time())
            try:
                data = await asyncio.wait_for(reader.read(READ_SIZE), wait)
            except asyncio.TimeoutError:
                if deadline is None:
                    return  # idle past the idle timeout (ABP-CONN-7)
                events = framer.expire(loop.time())
            else:
                if not data:  # half-close: the last, legacy request (ABP-FRAME-5)
                    await self.answer(peer, self.at_half_close(framer))
                    return
                events = framer.receive_data(self.received(peer, data), loop.time())
            if not await self.answer(peer, events):
                return

    async def answer(self, peer: Peer, events: Sequence[ServerEvent]) -> bool:
        """Answer ``events`` in order; False when the connection must close."""
        keep_open = True
        for event in self.answered(peer, events):
            if isinstance(event, ConnectionClosed):
                continue
            response = await self.respond(peer, event)
            if response is None:
                keep_open = False
                break
            peer.writer.write(self.encode(peer, response))
            peer.answers += 1
            self.requests += 1
            if self.closes_after(peer, response):
                keep_open = False
                break
        return await self.flush(peer) and keep_open

    async def respond(self, peer: Peer, event: ServerEvent) -> Response | None:
        """The answer to one framed line; None drops the connection unanswered."""
        if isinstance(event, InvalidRequest):  # over 4096 bytes (ABP-FRAME-10)
            return event.reply
        assert isinstance(event, CounterRequest)
        if self.service == "counter":
            return CounterReply(self.number(peer))
        try:
            request = self.decode(event.line)
        except RemoteProtocolError as exc:
            return self.refuse(exc, event.line)
        return await self.execute(peer, request)

    # ------------------------------------------------ steps a defect breaks
    def connected(self, peer: Peer) -> None:
        """A new connection was accepted; the correct server needs nothing."""

    def framer(self) -> ServerConnection:
        return ServerConnection(
            counter=True, quiet_period=self.quiet_period, max_line=self.max_line
        )

    def received(self, peer: Peer, data: bytes) -> bytes:
        """The bytes read, as given to the framer."""
        return data

    def at_half_close(self, framer: ServerConnection) -> list[ServerEvent]:
        return framer.receive_data(b"")

    def answered(self, peer: Peer, events: Sequence[ServerEvent]) -> Sequence[ServerEvent]:
        """Which of the lines framed from one read get an answer: all of them."""
        return events

    def decode(self, line: bytes) -> Request:
        return decode_request(line)

    def refuse(self, error: RemoteProtocolError, line: bytes) -> Response | None:
        """The answer to a line ``decode`` refused: the protocol's own."""
        assert error.reply is not None
        return error.reply

    async def execute(self, peer: Peer, request: Request) -> Response:
        book = self.book
        if isinstance(request, Add):
            book.put(request.name, request.entry)
            return Ok()
        if isinstance(request, Remove):
            return Ok() if book.delete(request.name) else no_entry(request.name)
        assert isinstance(request, Find)
        entry = book.get(request.name)
        return no_entry(request.name) if entry is None else Ok(entry)

    async def flush(self, peer: Peer) -> bool:
        """Wait until the answers written have left; False when the client took
        none of them for the idle timeout: it is idle (ABP-CONN-7), and its
        connection is closed (what it holds still leaves, then the end of
        stream). A client that takes some, however slowly, is not idle."""
        held = unsent(peer.writer)
        while True:
            try:
                await asyncio.wait_for(peer.writer.drain(), self.idle_timeout)
            except asyncio.TimeoutError:
                now = unsent(peer.writer)
                if now >= held:
                    return False
                held = now
            else:
                return True

    def encode(self, peer: Peer, response: Response) -> bytes:
        return encode_response(response)

    def closes_after(self, peer: Peer, response: Response) -> bool:
        return False

    def number(self, peer: Peer) -> int:
        """The counter's N for an answer on ``peer`` (ABP-COUNTER-2)."""
        return peer.number

    # ---------------------------------------------------------------- life
    async def serve(self, host: str, port: int, ready: asyncio.Event | None = None) -> None:
        """Listen until cancelled, then close the book (a clean exit)."""
        listener = await asyncio.start_server(self.handle, host, port, backlog=1024)
        try:
            bound = listener.sockets[0].getsockname()
            print(f"listening on {bound[0]}:{bound[1]}", flush=True)
            if ready is not None:
                ready.set()
            await asyncio.Event().wait()
        finally:
            listener.close()
            self.book.close()
