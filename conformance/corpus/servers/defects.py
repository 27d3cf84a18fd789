"""The registry of broken servers: each is the correct ``Server`` with one defect.

A defect is a subclass overriding one step of ``base.Server`` (two at most,
when one bug shows in two places), registered with the requirement(s) of
docs/spec.md the conformance suite must fail it on, and what the suite needs
to see it: ``--server-cmd`` (restart, SIGKILL) or ``--service counter``.
``correct`` is the control: no defect, the suite must pass it.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from conformance.corpus.servers.base import Peer, Server
from conformance.corpus.servers.book import BufferedBook, MemoryBook
from protocol import (
    MALFORMED_REQUEST,
    SERVER_BUSY,
    Add,
    Error,
    Find,
    Ok,
    RemoteProtocolError,
    Remove,
    Request,
    Response,
    ServerConnection,
    ServerEvent,
    encode_response,
    no_entry,
    unrecognised,
)


@dataclass(frozen=True)
class Defect:
    name: str
    summary: str
    requirements: tuple[str, ...]  # the suite must FAIL every one of these
    server: type[Server]
    needs_server_cmd: bool = False  # caught only by restart/SIGKILL tests
    service: str = "abp"  # "counter": run the suite with --service counter
    should: bool = False  # a SHOULD is broken: a WARN, which fails the run with --strict


DEFECTS: dict[str, Defect] = {}


def defect(
    name: str,
    summary: str,
    *requirements: str,
    needs_server_cmd: bool = False,
    service: str = "abp",
    should: bool = False,
) -> Callable[[type[Server]], type[Server]]:
    def register(cls: type[Server]) -> type[Server]:
        DEFECTS[name] = Defect(name, summary, requirements, cls, needs_server_cmd, service, should)
        return cls

    return register


def _malformed(why: str, requirement: str) -> RemoteProtocolError:
    return RemoteProtocolError(why, requirement, Error(MALFORMED_REQUEST))


# ------------------------------------------------------------------ controls

defect("correct", "no defect: the control, which must pass everything")(Server)
defect("correct-counter", "no defect, counter service: must pass", service="counter")(Server)


# ------------------------------------------------------------------- framing


@defect("no-lf", "answers carry no LF terminator", "ABP-FRAME-1")
class NoLF(Server):
    def encode(self, response: Response) -> bytes:
        return super().encode(response).rstrip(b"\n")


@defect("keeps-cr", "the CR of a CRLF terminator is kept as part of the request", "ABP-FRAME-3")
class KeepsCR(Server):
    def received(self, data: bytes) -> bytes:
        return data.replace(b"\r", b"\r\r")  # the framer strips one of the two


@defect(
    "chunk-is-request",
    "a read that ends without LF is taken as a whole request at once (no quiet period)",
    "ABP-FRAME-4",
)
class ChunkIsRequest(Server):
    def framer(self) -> ServerConnection:
        return ServerConnection(counter=True, quiet_period=0.0, max_line=self.max_line)


@defect(
    "ignores-half-close",
    "an unterminated request is dropped when the client half-closes",
    "ABP-FRAME-5",
)
class IgnoresHalfClose(Server):
    def at_half_close(self, framer: ServerConnection) -> list[ServerEvent]:
        return []


@defect(
    "no-quiet-period",
    "an unterminated request is never answered while the connection stays open",
    "ABP-FRAME-6",
)
class NoQuietPeriod(Server):
    def framer(self) -> ServerConnection:
        return ServerConnection(counter=True, quiet_period=None, max_line=self.max_line)


@defect("limit-4095", "request lines are limited to 4095 bytes, not 4096", "ABP-FRAME-9")
class Limit4095(Server):
    max_line = 4095


@defect("no-line-limit", "lines of any length are accepted and answered", "ABP-FRAME-10")
class NoLineLimit(Server):
    max_line = 1 << 24


@defect(
    "invalid-utf8-closes",
    "a line that is not UTF-8 drops the connection unanswered",
    "ABP-FRAME-12",
)
class InvalidUtf8Closes(Server):
    def refuse(self, error: RemoteProtocolError, line: bytes) -> Response | None:
        if error.requirement == "ABP-FRAME-12":
            return None
        return super().refuse(error, line)


@defect("nul-accepted", "NUL bytes are dropped and the request is served", "ABP-FRAME-13")
class NulAccepted(Server):
    def received(self, data: bytes) -> bytes:
        return data.replace(b"\x00", b"")


# ------------------------------------------------------------------ requests


@defect("colon-split", "splits at every ':' (a second ':' is a malformed request)", "ABP-REQ-1")
class ColonSplit(Server):
    def decode(self, line: bytes) -> Request:
        if line.count(b":") > 1:  # the tutorial's cmd, data = s.split(':')
            raise _malformed("too many values to unpack", "ABP-REQ-1")
        return super().decode(line)


@defect(
    "colon-split-closes",
    "splits at every ':' and, like the tutorial, drops the connection on a second ':'",
    "ABP-REQ-1",
)
class ColonSplitCloses(Server):
    def decode(self, line: bytes) -> Request:
        if line.count(b":") > 1:
            raise _malformed("too many values to unpack", "ABP-REQ-1")
        return super().decode(line)

    def refuse(self, error: RemoteProtocolError, line: bytes) -> Response | None:
        return None if error.requirement == "ABP-REQ-1" else super().refuse(error, line)


@defect("add-needs-comma", "'add:NAME' without a comma is refused as malformed", "ABP-REQ-3")
class AddNeedsComma(Server):
    def decode(self, line: bytes) -> Request:
        request = super().decode(line)
        if isinstance(request, Add) and not request.entry and not line.endswith(b","):
            raise _malformed("add without ','", "ABP-REQ-3")
        return request


@defect("add-keeps-old", "an add of an existing name keeps the old entry", "ABP-REQ-4")
class AddKeepsOld(Server):
    async def execute(self, peer: Peer, request: Request) -> Response:
        if isinstance(request, Add) and self.book.get(request.name) is not None:
            return Ok()
        return await super().execute(peer, request)


@defect("rem-keeps-entry", "rem answers OK but keeps the entry", "ABP-REQ-5")
class RemKeepsEntry(Server):
    async def execute(self, peer: Peer, request: Request) -> Response:
        if isinstance(request, Remove) and self.book.get(request.name) is not None:
            return Ok()
        return await super().execute(peer, request)


@defect("case-insensitive-names", "names are folded to lowercase", "ABP-REQ-7")
class CaseInsensitiveNames(Server):
    async def execute(self, peer: Peer, request: Request) -> Response:
        name = request.name.lower()
        if isinstance(request, Add):
            self.book.put(name, request.entry)
            return Ok()
        if isinstance(request, Remove):
            return Ok() if self.book.delete(name) else no_entry(request.name)
        entry = self.book.get(name)
        return no_entry(request.name) if entry is None else Ok(entry)


@defect("commands-any-case", "commands are case-insensitive: 'ADD:x' is an add", "ABP-REQ-8")
class CommandsAnyCase(Server):
    def decode(self, line: bytes) -> Request:
        command, colon, argument = line.partition(b":")
        return super().decode(command.lower() + colon + argument)


@defect(
    "no-colon-unrecognised",
    "a line with no ':' is answered as an unknown command",
    "ABP-REQ-9",
)
class NoColonUnrecognised(Server):
    def refuse(self, error: RemoteProtocolError, line: bytes) -> Response | None:
        if error.requirement == "ABP-REQ-9":
            return unrecognised(line.decode("utf-8"))
        return super().refuse(error, line)


@defect("empty-name-accepted", "an empty NAME is served like any other", "ABP-REQ-10")
class EmptyNameAccepted(Server):
    def refuse(self, error: RemoteProtocolError, line: bytes) -> Response | None:
        if error.requirement != "ABP-REQ-10":
            return super().refuse(error, line)
        command, _, argument = line.decode("utf-8").partition(":")
        if command == "add":
            self.book.put("", argument.partition(",")[2])
            return Ok()
        entry = self.book.get("")
        if entry is None:
            return no_entry("")
        if command == "rem":
            self.book.delete("")
            return Ok()
        return Ok(entry)


@defect(
    "unknown-command-text",
    "an unknown command is answered 'ERROR: Unknown command: X'",
    "ABP-REQ-11",
)
class UnknownCommandText(Server):
    def refuse(self, error: RemoteProtocolError, line: bytes) -> Response | None:
        if error.requirement == "ABP-REQ-11":
            return Error("Unknown command: " + line.partition(b":")[0].decode("utf-8"))
        return super().refuse(error, line)


# ----------------------------------------------------------------- responses


@defect("trims-entries", "entries are stored with surrounding whitespace trimmed", "ABP-RESP-2")
class TrimsEntries(Server):
    async def execute(self, peer: Peer, request: Request) -> Response:
        if isinstance(request, Add):
            request = Add(request.name, request.entry.strip())
        return await super().execute(peer, request)


@defect("fnd-missing-ok", "fnd of a missing name answers 'OK: ' (an empty entry)", "ABP-RESP-4")
class FndMissingOk(Server):
    async def execute(self, peer: Peer, request: Request) -> Response:
        if isinstance(request, Find) and self.book.get(request.name) is None:
            return Ok("")
        return await super().execute(peer, request)


# --------------------------------------------------------------- connections


@defect(
    "first-of-pipeline",
    "only the first request of each read is answered (one answer per recv)",
    "ABP-CONN-2",
)
class FirstOfPipeline(Server):
    def answered(self, events: Sequence[ServerEvent]) -> Sequence[ServerEvent]:
        return events[:1]


@defect("close-after-error", "every error answer closes the connection", "ABP-CONN-3")
class CloseAfterError(Server):
    def closes_after(self, response: Response) -> bool:
        return isinstance(response, Error)


@defect(
    "refuses-past-50",
    "refuses connections past 50 open ones with 'ERROR: Server busy'",
    "ABP-CONN-4",
)
class RefusesPast50(Server):
    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self.open) >= 50:
            writer.write(encode_response(Error(SERVER_BUSY)))
            writer.close()
            return
        await super().handle(reader, writer)


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
    def encode(self, response: Response) -> bytes:
        data = super().encode(response)
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
    def encode(self, response: Response) -> bytes:
        return super().encode(response).rstrip(b"\n")
