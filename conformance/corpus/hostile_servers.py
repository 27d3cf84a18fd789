"""Hostile servers: peers that attack the suite rather than get judged by it.

``python -m conformance.corpus.hostile_servers KIND --port P [--host H]``, KIND one of:

``flood``    sends bytes with no LF, as fast as the client reads, for ever
``garbage``  sends lines of garbage (each ended by LF), for ever
``silent``   accepts, reads, never answers
``trickle``  answers every request line ``OK`` correctly, one byte per second
``http``     answers like an HTTP server (a 400 page), then closes
``daemon``   forks, calls ``setsid()`` and lets its parent exit: the correct
             corpus server, in memory only, outlives the process that was
             started (the parent exits once the port accepts and a second
             has passed, so that a suite that only watches the PID sees a
             live server at start)

``--honest N``: the first N connections get ``OK`` to every line, so that the
attack starts after the suite's readiness check and framing probe (N=2).

The suite must survive each of them in bounded time and memory, with a
verdict (or exit 2 from its probe), and leave no process behind. Like the
rest of the corpus, they do not use the ``protocol`` package; one thread per
connection, stopped by SIGTERM.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence

from protocol.program import ProgramParser, host_name, non_negative_int, port_number

PROG = "python -m conformance.corpus.hostile_servers"
CHUNK = 65536
#: The ``daemon`` parent's linger once its child listens, in seconds.
DAEMON_LINGER = 1.0


def _flood(conn: socket.socket) -> None:
    block = b"A" * CHUNK
    while True:
        conn.sendall(block)


def _garbage(conn: socket.socket) -> None:
    block = b"\x00\xffgarbage \x1b[2J not ABP\n" * (CHUNK // 32)
    while True:
        conn.sendall(block)


def _silent(conn: socket.socket) -> None:
    while conn.recv(CHUNK):
        pass


def _trickle(conn: socket.socket) -> None:
    pending = b""
    while True:
        data = conn.recv(CHUNK)
        if not data:
            return
        pending += data
        while b"\n" in pending:
            _, pending = pending.split(b"\n", 1)
            for byte in b"OK\n":
                conn.sendall(bytes([byte]))
                time.sleep(1.0)  # the attack: one byte per second


def _http(conn: socket.socket) -> None:
    conn.recv(CHUNK)
    body = b"<html><body><h1>400 Bad Request</h1></body></html>\n"
    conn.sendall(
        b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/html\r\n"
        b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
    )


KINDS: dict[str, Callable[[socket.socket], None]] = {
    "flood": _flood,
    "garbage": _garbage,
    "silent": _silent,
    "trickle": _trickle,
    "http": _http,
}


def _honest(conn: socket.socket) -> None:
    pending = b""
    while data := conn.recv(CHUNK):
        pending += data
        lines = pending.count(b"\n")
        pending = pending[pending.rfind(b"\n") + 1 :]
        conn.sendall(b"OK\n" * lines)


def _serve_one(handler: Callable[[socket.socket], None], conn: socket.socket) -> None:
    with conn, contextlib.suppress(OSError):
        handler(conn)


def serve(kind: str, host: str, port: int, honest: int = 0) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(128)
        served = 0
        while True:
            conn, _ = listener.accept()
            served += 1
            handler = _honest if served <= honest else KINDS[kind]
            threading.Thread(target=_serve_one, args=(handler, conn), daemon=True).start()


def daemonise(host: str, port: int) -> int:
    """The parent: start the in-memory corpus server in a session of its own,
    wait until it listens (10 s at most), linger, exit 0."""
    pid = os.fork()
    if pid == 0:  # the child: a new session, then the correct server, in memory
        os.setsid()
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        argv = [sys.executable, "-m", "conformance.corpus.servers", "--defect", "correct"]
        os.execv(sys.executable, [*argv, "--host", host, "--port", str(port)])
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
            time.sleep(DAEMON_LINGER)
            return 0
        time.sleep(0.02)
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = ProgramParser(prog=PROG, description="A server that attacks the suite.")
    parser.add_argument("kind", choices=[*KINDS, "daemon"], help="which attack")
    parser.add_argument("--host", type=host_name, default="127.0.0.1")
    parser.add_argument("--port", type=port_number(allow_zero=False), required=True)
    parser.add_argument(
        "--honest", type=non_negative_int, default=0, metavar="N", help="answer N connections first"
    )
    args = parser.parse_args(argv)
    if args.kind == "daemon":
        return daemonise(args.host, args.port)
    try:
        serve(args.kind, args.host, args.port, args.honest)
    except OSError as exc:
        print(f"{PROG}: error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    return 0  # not reached: serve() ends only by an exception


if __name__ == "__main__":
    sys.exit(main())
