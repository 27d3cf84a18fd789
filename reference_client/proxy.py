"""``abp-client proxy``: a checking proxy between any ABP client and any server.

Every connection accepted on ``--listen`` gets its own connection to
``--upstream``; bytes are forwarded unchanged both ways as soon as they
arrive (before anything is judged), half-closes and resets are passed on, and
when one side stops reading the other side is paused (memory stays bounded).
Each connection's bytes are judged by a ``watch.Watch``; the sightings are
printed live, one line each (or one JSON object each with ``--json``),
tagged ``#N`` so that concurrent connections stay apart. ``--record FILE``
saves every chunk, so that ``abp-client replay`` can send the same client
bytes to another server.

The recording is JSON lines: a header ``{"abp_recording": 1, ...}``, then
``{"t", "conn", "from": "client"|"server", "data"}`` with the bytes written as
``protocol.escape`` writes them (``unescape`` reads them back exactly), and
``{"t", "conn", "from", "eof": true}`` for a half-close.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import Callable
from typing import IO, Any, TextIO

from protocol.address import format_address
from protocol.escape import escape
from reference_client.endpoint import Address
from reference_client.watch import Book, Sighting, Watch

#: Version of the recording format, in its header line.
RECORDING_VERSION = 1


class Recorder:
    """Writes the recording; a closed or absent file records nothing."""

    def __init__(self, stream: IO[str] | None, upstream: Address) -> None:
        self.stream = stream
        if stream is not None:
            header = {"abp_recording": RECORDING_VERSION, "upstream": str(upstream)}
            stream.write(json.dumps(header) + "\n")

    def chunk(self, now: float, conn: int, side: str, data: bytes) -> None:
        if self.stream is not None:
            record = {"t": round(now, 6), "conn": conn, "from": side, "data": escape(data)}
            self.stream.write(json.dumps(record, ensure_ascii=False) + "\n")

    def eof(self, now: float, conn: int, side: str) -> None:
        if self.stream is not None:
            record = {"t": round(now, 6), "conn": conn, "from": side, "eof": True}
            self.stream.write(json.dumps(record) + "\n")

    def flush(self) -> None:
        if self.stream is not None:
            with contextlib.suppress(OSError, ValueError):
                self.stream.flush()


class Proxy:
    """The listening side, the shared ``Book``, the output and the recording."""

    def __init__(
        self,
        upstream: Address,
        *,
        out: TextIO,
        json_output: bool = False,
        recorder: Recorder | None = None,
        connect_timeout: float = 5.0,
    ) -> None:
        self.upstream = upstream
        self.connect_timeout = connect_timeout
        self.out = out
        self.json_output = json_output
        self.recorder = recorder if recorder is not None else Recorder(None, upstream)
        self.book = Book()
        self.connections = 0
        self.violations = 0
        self.out_gone = False  # stdout closed under us
        self.pairs: set[_Pair] = set()
        self.loop = asyncio.get_running_loop()
        self.start = self.loop.time()

    def now(self) -> float:
        return self.loop.time() - self.start

    def show(self, sightings: list[Sighting]) -> None:
        self.violations += sum(1 for s in sightings if s.kind == "violation")
        if not sightings or self.out_gone:
            return
        try:
            for sighting in sightings:
                if self.json_output:
                    self.out.write(json.dumps(sighting.as_json(), ensure_ascii=False) + "\n")
                else:
                    self.out.write(sighting.render() + "\n")
            self.out.flush()
        except (BrokenPipeError, ValueError):  # "| head" went away: keep forwarding
            self.out_gone = True

    def accept(self) -> _ClientSide:
        self.connections += 1
        return _ClientSide(_Pair(self, self.connections))


class _Pair:
    """One proxied connection: the client's transport, the upstream's, the watch."""

    def __init__(self, proxy: Proxy, conn: int) -> None:
        self.proxy = proxy
        self.conn = conn
        self.watch = Watch(conn, proxy.book)
        self.client: asyncio.Transport | None = None
        self.server: asyncio.Transport | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.closed = False
        self.ended: set[str] = set()  # the sides that sent their end of stream
        # Client bytes that came before the upstream connection was open: on
        # Python 3.10 a transport paused in connection_made still reads once.
        self.early = bytearray()

    def end(self, side: str) -> None:
        """One side's end of stream, passed on; once both ended, close both."""
        self.ended.add(side)
        self.proxy.recorder.eof(self.proxy.now(), self.conn, side)
        self.proxy.recorder.flush()
        other = self.server if side == "client" else self.client
        if other is not None and other.can_write_eof() and not other.is_closing():
            other.write_eof()
        if len(self.ended) == 2:
            for transport in (self.client, self.server):
                if transport is not None:
                    transport.close()

    def see(self, judge: Callable[[float], list[Sighting]]) -> None:
        self.proxy.show(judge(self.proxy.now()))
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        deadline = self.watch.deadline()
        if deadline is not None and not self.closed:
            when = self.proxy.start + deadline
            self.timer = self.proxy.loop.call_at(when, self.see, self.watch.expire)

    def finish(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.timer is not None:
            self.timer.cancel()
        self.proxy.show(self.watch.finish(self.proxy.now()))
        self.proxy.recorder.flush()
        self.proxy.pairs.discard(self)


class _ClientSide(asyncio.Protocol):
    def __init__(self, pair: _Pair) -> None:
        self.pair = pair

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        pair = self.pair
        pair.client = transport
        pair.proxy.pairs.add(pair)
        transport.pause_reading()  # until the upstream connection is open
        peer = transport.get_extra_info("peername")
        pair.see(lambda now: pair.watch.opened(now, format_address(peer[0], peer[1])))
        pair.proxy.loop.create_task(self._connect_upstream())

    async def _connect_upstream(self) -> None:
        pair, upstream = self.pair, self.pair.proxy.upstream
        try:
            await asyncio.wait_for(
                pair.proxy.loop.create_connection(
                    lambda: _ServerSide(pair), upstream.host, upstream.port
                ),
                pair.proxy.connect_timeout,
            )
        except (OSError, asyncio.TimeoutError) as exc:
            if isinstance(exc, OSError) and not isinstance(exc, TimeoutError):
                why = (os.strerror(exc.errno) if exc.errno else str(exc)).lower()
            else:
                why = f"no connection within {pair.proxy.connect_timeout:g}s"
            sighting = Sighting(pair.proxy.now(), pair.conn, "close", f"upstream {upstream}: {why}")
            pair.proxy.show([sighting])
            if pair.client is not None:
                pair.client.abort()
            pair.finish()
            return
        server = pair.server
        if server is not None and not server.is_closing():
            if pair.early:
                server.write(bytes(pair.early))
                pair.early.clear()
            if "client" in pair.ended and server.can_write_eof():
                server.write_eof()
        if pair.client is not None and not pair.client.is_closing():
            pair.client.resume_reading()

    def data_received(self, data: bytes) -> None:
        pair = self.pair
        if pair.server is not None:
            pair.server.write(data)  # forward first: judging never delays a byte
        else:  # before the upstream is open (Python 3.10): keep it, stop reading
            pair.early += data
            if pair.client is not None and not pair.client.is_closing():
                pair.client.resume_reading()  # 3.10 takes pause_reading() for done
                pair.client.pause_reading()  # when it was called before the first read
        pair.proxy.recorder.chunk(pair.proxy.now(), pair.conn, "client", data)
        pair.see(lambda now: pair.watch.from_client(data, now))

    def eof_received(self) -> bool:
        pair = self.pair
        pair.see(pair.watch.client_closed)
        pair.end("client")
        return True  # keep our side open: the answers may still come

    def connection_lost(self, exc: Exception | None) -> None:
        pair = self.pair
        if pair.server is not None:
            if isinstance(exc, ConnectionResetError):
                pair.server.abort()  # pass the reset on
            else:
                pair.server.close()
        pair.finish()

    def pause_writing(self) -> None:  # the client stops reading: stop reading the server
        if self.pair.server is not None:
            self.pair.server.pause_reading()

    def resume_writing(self) -> None:
        if self.pair.server is not None and not self.pair.server.is_closing():
            self.pair.server.resume_reading()


class _ServerSide(asyncio.Protocol):
    def __init__(self, pair: _Pair) -> None:
        self.pair = pair

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.pair.server = transport
        if self.pair.client is None or self.pair.client.is_closing():
            transport.close()

    def data_received(self, data: bytes) -> None:
        pair = self.pair
        if pair.client is not None:
            pair.client.write(data)
        pair.proxy.recorder.chunk(pair.proxy.now(), pair.conn, "server", data)
        pair.see(lambda now: pair.watch.from_server(data, now))

    def eof_received(self) -> bool:
        pair = self.pair
        pair.see(pair.watch.server_closed)
        pair.end("server")
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        pair = self.pair
        if pair.client is not None:
            if isinstance(exc, ConnectionResetError):
                pair.client.abort()
            else:
                pair.client.close()
        pair.finish()

    def pause_writing(self) -> None:  # the server stops reading: stop reading the client
        if self.pair.client is not None:
            self.pair.client.pause_reading()

    def resume_writing(self) -> None:
        if self.pair.client is not None and not self.pair.client.is_closing():
            self.pair.client.resume_reading()


async def serve(
    listen: Address,
    upstream: Address,
    *,
    out: TextIO,
    err: TextIO,
    json_output: bool = False,
    record: IO[str] | None = None,
    stop: asyncio.Event | None = None,
    connect_timeout: float = 5.0,
) -> Proxy:
    """Run the proxy until ``stop`` is set (SIGINT or SIGTERM set it too)."""
    loop = asyncio.get_running_loop()
    proxy = Proxy(
        upstream,
        out=out,
        json_output=json_output,
        recorder=Recorder(record, upstream),
        connect_timeout=connect_timeout,
    )
    stop = stop if stop is not None else asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, stop.set)
    server = await loop.create_server(proxy.accept, listen.host, listen.port)
    bound = server.sockets[0].getsockname()
    err.write(
        f"abp-client proxy: listening on {format_address(bound[0], bound[1])}, "
        f"upstream {upstream}\n"
    )
    err.flush()
    try:
        await stop.wait()
    finally:
        server.close()
        for pair in list(proxy.pairs):
            for transport in (pair.client, pair.server):
                if transport is not None:
                    transport.close()
            pair.finish()
        await server.wait_closed()
        proxy.recorder.flush()
        err.write(
            f"abp-client proxy: stopped; {proxy.connections} connection(s), "
            f"{proxy.violations} violation(s) seen\n"
        )
        err.flush()
    return proxy


def run(
    listen: Address,
    upstream: Address,
    *,
    json_output: bool = False,
    record: IO[str] | None = None,
    connect_timeout: float = 5.0,
) -> int:
    """``abp-client proxy``: runs until SIGINT or SIGTERM, then exits 0."""
    asyncio.run(
        serve(
            listen,
            upstream,
            out=sys.stdout,
            err=sys.stderr,
            json_output=json_output,
            record=record,
            connect_timeout=connect_timeout,
        )
    )
    return 0


def load_recording(lines: list[str]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The header and the records of a recording; ``ValueError`` says what is wrong."""
    if not lines:
        raise ValueError("empty file: not an abp-client recording")
    try:
        header = json.loads(lines[0])
        records = [json.loads(line) for line in lines[1:] if line.strip()]
    except json.JSONDecodeError as exc:
        raise ValueError(f"not an abp-client recording: {exc}") from None
    if not isinstance(header, dict) or header.get("abp_recording") != RECORDING_VERSION:
        raise ValueError("not an abp-client recording (no abp_recording header)")
    return header, records


__all__ = ["RECORDING_VERSION", "Proxy", "Recorder", "load_recording", "run", "serve"]
