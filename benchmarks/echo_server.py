"""The baseline: the least an asyncio server can do per request line.

It answers every LF-terminated line with ``OK: <the line>``, stores nothing
and parses nothing: the practical limit of a Python asyncio server on this
machine, against which the reference server is measured (``side_by_side.py``).
Because it is that limit, it splits lines with ``bytes.split`` instead of the
protocol package's reader and codec; the answer's shape (the ``OK: `` prefix
and the LF) is still taken from ``protocol.encode_response``, once.

    python benchmarks/echo_server.py --host 127.0.0.1 --port 0

prints ``listening on HOST:PORT`` and serves until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

from protocol import Ok
from protocol.codec import encode_response

_SHAPE = encode_response(Ok(""))  # b"OK: \n"
PREFIX, TERMINATOR = _SHAPE[:-1], _SHAPE[-1:]
#: Bytes held for a line with no LF yet before the connection is dropped.
MAX_BUFFER = 1 << 16


class EchoProtocol(asyncio.Protocol):
    __slots__ = ("buffer", "transport")

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        transport = self.transport
        assert transport is not None
        lines = (self.buffer + data).split(TERMINATOR)
        self.buffer = lines.pop()
        if lines:
            transport.write(b"".join([PREFIX + line + TERMINATOR for line in lines]))
        if len(self.buffer) > MAX_BUFFER:
            transport.close()


def raise_fd_limit() -> None:
    with contextlib.suppress(ImportError, ValueError, OSError):
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    server = await loop.create_server(EchoProtocol, host, port, backlog=1024)
    name = server.sockets[0].getsockname()
    print(f"listening on {name[0]}:{name[1]}", flush=True)
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    raise_fd_limit()
    try:
        asyncio.run(serve(args.host, args.port))
    except OSError as exc:
        print(f"echo_server: error: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
