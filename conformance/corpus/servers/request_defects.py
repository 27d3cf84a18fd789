"""Defects of requests and responses (spec sections 3 and 4)."""

from __future__ import annotations

from typing import Any

from conformance.corpus.servers.base import Peer, Server
from conformance.corpus.servers.registry import defect, malformed
from protocol import Add, Error, Find, Ok, RemoteProtocolError, Remove, Request, Response
from protocol.codec import MALFORMED_REQUEST, no_entry, unrecognised

# ------------------------------------------------------------------ requests


@defect("colon-split", "splits at every ':' (a second ':' is a malformed request)", "ABP-REQ-1")
class ColonSplit(Server):
    def decode(self, line: bytes) -> Request:
        if line.count(b":") > 1:  # the tutorial's cmd, data = s.split(':')
            raise malformed("too many values to unpack", "ABP-REQ-1")
        return super().decode(line)


@defect(
    "colon-split-closes",
    "splits at every ':' and, like the tutorial, drops the connection on a second ':'",
    "ABP-REQ-1",
)
class ColonSplitCloses(Server):
    def decode(self, line: bytes) -> Request:
        if line.count(b":") > 1:
            raise malformed("too many values to unpack", "ABP-REQ-1")
        return super().decode(line)

    def refuse(self, error: RemoteProtocolError, line: bytes) -> Response | None:
        return None if error.requirement == "ABP-REQ-1" else super().refuse(error, line)


@defect(
    "entry-cut-at-comma",
    "the entry ends at its first ',' (name, entry = data.split(',')[:2])",
    "ABP-REQ-2",
)
class EntryCutAtComma(Server):
    def decode(self, line: bytes) -> Request:
        request = super().decode(line)
        if isinstance(request, Add):
            return Add(request.name, request.entry.partition(",")[0])
        return request


@defect("add-needs-comma", "'add:NAME' without a comma is refused as malformed", "ABP-REQ-3")
class AddNeedsComma(Server):
    def decode(self, line: bytes) -> Request:
        request = super().decode(line)
        if isinstance(request, Add) and not request.entry and not line.endswith(b","):
            raise malformed("add without ','", "ABP-REQ-3")
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


@defect(
    "fnd-cache-ignores-key",
    "fnd answers from a cache slot chosen by the name's length, whatever the name",
    "ABP-REQ-6",
)
class FndCacheIgnoresKey(Server):
    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.cache: dict[int, str] = {}

    async def execute(self, peer: Peer, request: Request) -> Response:
        response = await super().execute(peer, request)
        slot = len(request.name)
        if isinstance(request, Add):
            self.cache[slot] = request.entry
        elif isinstance(request, Remove):
            self.cache.pop(slot, None)
        elif isinstance(response, Ok) and slot in self.cache:
            return Ok(self.cache[slot])  # the key is never compared
        return response


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


@defect("ok-with-text-no-colon", "add and rem answer 'OK done' (no ': ')", "ABP-RESP-1")
class OkWithTextNoColon(Server):
    def encode(self, peer: Peer, response: Response) -> bytes:
        if isinstance(response, Ok) and response.text is None:
            return b"OK done\n"
        return super().encode(peer, response)


@defect("trims-entries", "entries are stored with surrounding whitespace trimmed", "ABP-RESP-2")
class TrimsEntries(Server):
    async def execute(self, peer: Peer, request: Request) -> Response:
        if isinstance(request, Add):
            request = Add(request.name, request.entry.strip())
        return await super().execute(peer, request)


@defect(
    "malformed-text",
    "a malformed request is answered 'ERROR: Bad request'",
    "ABP-RESP-3",
)
class MalformedText(Server):
    def refuse(self, error: RemoteProtocolError, line: bytes) -> Response | None:
        response = super().refuse(error, line)
        if response == Error(MALFORMED_REQUEST):
            return Error("Bad request")
        return response


@defect("fnd-missing-ok", "fnd of a missing name answers 'OK: ' (an empty entry)", "ABP-RESP-4")
class FndMissingOk(Server):
    async def execute(self, peer: Peer, request: Request) -> Response:
        if isinstance(request, Find) and self.book.get(request.name) is None:
            return Ok("")
        return await super().execute(peer, request)
