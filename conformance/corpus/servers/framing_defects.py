"""Defects of transport and framing (spec sections 1 and 2)."""

from __future__ import annotations

from conformance.corpus.servers.base import Peer, Server
from conformance.corpus.servers.registry import defect
from protocol import RemoteProtocolError, Response, ServerConnection, ServerEvent

# ----------------------------------------------------------------- transport


@defect("greeting-banner", "greets every connection with a banner line", "ABP-TRANSPORT-1")
class GreetingBanner(Server):
    def connected(self, peer: Peer) -> None:
        peer.writer.write(b"ABP/1 address book ready\n")


# ------------------------------------------------------------------- framing


@defect("no-lf", "answers carry no LF terminator", "ABP-FRAME-1")
class NoLF(Server):
    def encode(self, peer: Peer, response: Response) -> bytes:
        return super().encode(peer, response).rstrip(b"\n")


@defect("keeps-cr", "the CR of a CRLF terminator is kept as part of the request", "ABP-FRAME-3")
class KeepsCR(Server):
    def received(self, peer: Peer, data: bytes) -> bytes:
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
    "long-line-rest-answered",
    "after 'Request too long' the rest of the long line is read as a new request",
    "ABP-FRAME-11",
)
class LongLineRestAnswered(Server):
    """Lines are read into a 4097-byte buffer; when it fills, the line is
    refused and the buffer starts over on the same line."""

    def received(self, peer: Peer, data: bytes) -> bytes:
        run = peer.extra.get("run", 0)  # bytes of the current line so far
        assert isinstance(run, int)
        out = bytearray()
        for byte in data:
            if byte != 0x0A and run == self.max_line + 1:
                out += b"\n"  # the framer sees a 4097-byte line end here
                run = 0
            out.append(byte)
            run = 0 if byte == 0x0A else run + 1
        peer.extra["run"] = run
        return bytes(out)


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
    def received(self, peer: Peer, data: bytes) -> bytes:
        return data.replace(b"\x00", b"")
