"""Defects of connections, durability and the counter service (spec sections 5-7)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence

from conformance.corpus.servers.base import READ_SIZE, Peer, Server
from conformance.corpus.servers.book import BufferedBook, MemoryBook
from conformance.corpus.servers.registry import defect
from protocol import Add, Error, Ok, Remove, Request, Response, ServerBusy, ServerEvent
from protocol.codec import encode_response, no_entry

# --------------------------------------------------------------- connections


@defect(
    "closes-after-10",
    "closes every connection after its 10th answer (a keep-alive limit)",
    "ABP-CONN-1",
)
class ClosesAfter10(Server):
    def closes_after(self, peer: Peer, response: Response) -> bool:
        return peer.answers >= 10


@defect(
    "first-of-pipeline",
    "only the first request of each read is answered (one answer per recv)",
    "ABP-CONN-2",
)
class FirstOfPipeline(Server):
    def answered(self, peer: Peer, events: Sequence[ServerEvent]) -> Sequence[ServerEvent]:
        return events[:1]


@defect("close-after-error", "every error answer closes the connection", "ABP-CONN-3")
class CloseAfterError(Server):
    def closes_after(self, peer: Peer, response: Response) -> bool:
        return isinstance(response, Error)


@defect(
    "refuses-past-50",
    "refuses connections past 50 open ones with 'ERROR: Server busy'",
    "ABP-CONN-4",
)
class RefusesPast50(Server):
    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self.open) >= 50:
            writer.write(encode_response(ServerBusy()))
            writer.close()
            return
        await super().handle(reader, writer)


@defect(
    "busy-without-close",
    "past 150 open connections, answers 'ERROR: Server busy' but never closes the connection",
    "ABP-CONN-8",
)
class BusyWithoutClose(Server):
    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self.open) < 150:
            await super().handle(reader, writer)
            return
        writer.write(encode_response(ServerBusy()))
        try:
            while await reader.read(READ_SIZE):
                pass  # refused, but left open: whatever comes is ignored
        except (ConnectionError, OSError):
            pass
        writer.close()


@defect("one-at-a-time", "serves one connection at a time, like the tutorial", "ABP-CONN-5")
class OneAtATime(Server):
    _turn: asyncio.Lock | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._turn is None:
            self._turn = asyncio.Lock()
        async with self._turn:
            await super().handle(reader, writer)


@defect(
    "dies-on-reset",
    "a connection reset by the client takes the whole server down",
    "ABP-CONN-6",
)
class DiesOnReset(Server):
    async def converse(self, peer: Peer, reader: asyncio.StreamReader) -> None:
        try:
            await super().converse(peer, reader)
        except ConnectionResetError:
            os._exit(70)  # the uncaught error of a thread-per-client server, say


@defect(
    "never-idles-out",
    "ignores its idle timeout: idle connections stay open forever",
    "ABP-CONN-7",
    should=True,
)
class NeverIdlesOut(Server):
    async def converse(self, peer: Peer, reader: asyncio.StreamReader) -> None:
        self.idle_timeout = None
        await super().converse(peer, reader)


@defect(
    "keeps-stalled-readers",
    "a client that floods and then stops reading keeps its connection forever "
    "(only a silent read times out)",
    "ABP-CONN-7",
    should=True,
)
class KeepsStalledReaders(Server):
    async def flush(self, peer: Peer) -> bool:
        await peer.writer.drain()  # no bound: waits as long as the client does not read
        return True


# --------------------------------------------------------------- durability


@defect(
    "forgets-on-restart",
    "the book lives in memory only",
    "ABP-DUR-1",
    needs_server_cmd=True,
)
class ForgetsOnRestart(Server):
    book_class = MemoryBook


@defect(
    "flush-on-exit",
    "answers OK before writing: changes are buffered and written only at a clean exit",
    "ABP-DUR-2",
    needs_server_cmd=True,
)
class FlushOnExit(Server):
    book_class = BufferedBook


#: How long the lost-update defect holds its snapshot of the book.
SAVE_WINDOW = 0.02


@defect(
    "lost-update",
    "adds save a snapshot of the whole book taken before they yield: concurrent adds are lost",
    "ABP-DUR-3",
)
class LostUpdate(Server):
    async def execute(self, peer: Peer, request: Request) -> Response:
        if not isinstance(request, Add):
            return await super().execute(peer, request)
        snapshot = dict(self.book.entries)
        await asyncio.sleep(SAVE_WINDOW)  # other connections' adds land here...
        snapshot[request.name] = request.entry
        self.book.replace(snapshot)  # ...and are overwritten here
        return Ok()


@defect(
    "connection-snapshot",
    "each connection reads from a copy of the book taken when it opened",
    "ABP-DUR-4",
)
class ConnectionSnapshot(Server):
    def connected(self, peer: Peer) -> None:
        peer.extra["view"] = dict(self.book.entries)

    async def execute(self, peer: Peer, request: Request) -> Response:
        view = peer.extra["view"]
        assert isinstance(view, dict)
        response = await super().execute(peer, request)
        if isinstance(request, Add):
            view[request.name] = request.entry
        elif isinstance(request, Remove):
            view.pop(request.name, None)
        else:
            entry = view.get(request.name)
            response = no_entry(request.name) if entry is None else Ok(entry)
        return response


# ------------------------------------------------------------------ counter


@defect(
    "counter-wrong-text",
    "answers 'Thank you!, processed connection number N'",
    "ABP-COUNTER-1",
    service="counter",
)
class CounterWrongText(Server):
    def encode(self, peer: Peer, response: Response) -> bytes:
        data = super().encode(peer, response)
        return data.replace(b"Thankyou!", b"Thank you!", 1)


@defect(
    "counter-per-request",
    "N counts requests, not connections",
    "ABP-COUNTER-2",
    service="counter",
)
class CounterPerRequest(Server):
    def number(self, peer: Peer) -> int:
        return self.requests + 1


@defect(
    "counter-open-connections",
    "N is the number of connections open now, so numbers repeat",
    "ABP-COUNTER-3",
    service="counter",
)
class CounterOpenConnections(Server):
    def number(self, peer: Peer) -> int:
        return len(self.open)


@defect(
    "counter-no-lf",
    "counter answers carry no LF terminator",
    "ABP-COUNTER-4",
    service="counter",
)
class CounterNoLF(Server):
    def encode(self, peer: Peer, response: Response) -> bytes:
        return super().encode(peer, response).rstrip(b"\n")
