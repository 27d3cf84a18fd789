"""Shared fixtures: the reference server as a real process, and a line client.

Fixtures (all generic; use them from any test module):

- ``start_server(*flags, service="abp", db=None, env=None, host=LOOPBACK)``
  starts ``python -m reference_server`` on a free port of ``host`` with a fresh
  SQLite file in the test's ``tmp_path`` (or ``db``), waits until it accepts
  connections and returns a ``ReferenceServer`` (a
  ``conformance.harness.process.ServerProcess`` with ``.db`` and ``.service``). Every
  server it started is stopped (SIGTERM, then SIGKILL) at teardown.
- ``shared_server``: one abp server per test module, for tests that only need
  *a* server (use names of your own: other tests share the book).
- ``connect(server_or_address, timeout=5.0, counter=False) -> LineClient``:
  a blocking client with timeouts on every socket operation; closed at
  teardown.
- ``spawn_server(*flags, env=None, cwd=None) -> Spawned``: starts the server
  with the given flags (say ``--port 0``; ``--db`` defaults to a file in
  ``tmp_path``) and reads its ``listening on HOST:PORT`` line from stdout.
  Its stderr is a pipe read once it has exited (``Spawned.stderr()``): keep
  ``-v`` runs short. Killed at teardown.

Type aliases for annotations: ``StartServer``, ``Connect``, ``SpawnServer``
(import them under ``if TYPE_CHECKING:``).

``LineClient`` decodes answers with ``protocol.ClientConnection``
(``request``) or hands back the exact bytes of a line (``read_line``,
``exchange``) for tests that check the wire byte for byte.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest
from scripted_server import Script, ScriptedServer
from scripted_server import StartServer as StartScripted

from conformance.harness.lines import TIMEOUT as TIMEOUT_ENDING
from conformance.harness.lines import LineBuffer
from conformance.harness.process import LOOPBACK, ServerProcess, reference_server_command
from protocol import ClientConnection, ClientEvent, Request

#: Seconds any single wait in these tests may take before it counts as a hang.
TIMEOUT = 5.0


class ReferenceServer(ServerProcess):
    """A ``ServerProcess`` of the reference server, with its database path."""

    def __init__(self, *flags: str, db: Path, service: str = "abp", **kwargs: object) -> None:
        command = reference_server_command("--service", service, "--db", str(db), *flags)
        super().__init__(command, **kwargs)  # type: ignore[arg-type]
        self.db = db
        self.service = service


def _server_env(env: Mapping[str, str] | None) -> dict[str, str]:
    """The test's environment minus ABP_HOST/ABP_PORT, plus ``env``."""
    base = {k: v for k, v in os.environ.items() if k not in ("ABP_HOST", "ABP_PORT")}
    base.update(env or {})
    return base


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., ReferenceServer]]:
    started: list[ReferenceServer] = []

    def start(
        *flags: str,
        service: str = "abp",
        db: Path | None = None,
        env: Mapping[str, str] | None = None,
        host: str = LOOPBACK,
    ) -> ReferenceServer:
        path = db if db is not None else tmp_path / f"book-{len(started)}.sqlite3"
        server = ReferenceServer(
            *flags, db=path, service=service, host=host, env=_server_env(env), cwd=tmp_path
        )
        started.append(server)
        return server.start()  # type: ignore[return-value]

    yield start
    for server in started:
        server.__exit__(None, None, None)  # stop, and close its stderr file


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReferenceServer]:
    directory = tmp_path_factory.mktemp("shared-server")
    server = ReferenceServer(db=directory / "book.sqlite3", env=_server_env(None), cwd=directory)
    with server:
        yield server


class LineClient:
    """A blocking line client for tests: every socket operation has a timeout."""

    def __init__(
        self, address: tuple[str, int], *, timeout: float = TIMEOUT, counter: bool = False
    ) -> None:
        self.sock = socket.create_connection(address, timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.protocol = ClientConnection(counter=counter)
        self.timeout = timeout
        self._lines = LineBuffer(self._recv)

    def _recv(self, wait: float) -> bytes:
        self.sock.settimeout(wait)
        return self.sock.recv(65536)

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_line(self) -> bytes:
        """The next line, LF included, exactly as received; b"" at end of stream
        (or the unterminated rest, if the stream ended mid-line); TimeoutError
        when neither comes within the client's timeout."""
        heard = self._lines.read(self.timeout)
        if heard.ended_by == TIMEOUT_ENDING:
            raise TimeoutError(f"no line within {self.timeout:g}s (got {heard.data[:60]!r})")
        return heard.data

    def read_lines(self, count: int) -> list[bytes]:
        return [self.read_line() for _ in range(count)]

    def exchange(self, data: bytes) -> bytes:
        """Send raw bytes, return the next line (exact bytes)."""
        self.send_raw(data)
        return self.read_line()

    def request(self, request: Request | bytes) -> ClientEvent:
        """Send one request through ``ClientConnection``; return the decoded answer."""
        self.send_raw(self.protocol.send(request))
        line = self.read_line()
        events = self.protocol.receive_data(line) if line else self.protocol.receive_data(b"")
        assert events, f"no answer decoded from {line!r}"
        return events[0]

    def half_close(self) -> None:
        self.sock.shutdown(socket.SHUT_WR)

    def at_eof(self) -> bool:
        """True once the server has closed the connection (and sent nothing more)."""
        return self.read_line() == b""

    def reset(self) -> None:
        """Close with RST (SO_LINGER 0): a client that vanishes mid-request."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00" * 2)
        self.sock.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


@pytest.fixture
def connect() -> Iterator[Callable[..., LineClient]]:
    clients: list[LineClient] = []

    def open_client(
        target: ServerProcess | tuple[str, int], *, timeout: float = TIMEOUT, counter: bool = False
    ) -> LineClient:
        address = target.address if isinstance(target, ServerProcess) else target
        client = LineClient(address, timeout=timeout, counter=counter)
        clients.append(client)
        return client

    yield open_client
    for client in clients:
        client.close()


class Spawned:
    """A server started with ``--port 0``, as its own ``listening on`` line reports."""

    def __init__(self, process: subprocess.Popen[bytes], line: str) -> None:
        self.process = process
        self.line = line
        where = line.removeprefix("listening on ")
        host, _, port = where.rpartition(":")
        self.host = host[1:-1] if host.startswith("[") else host
        self.port = int(port)

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    def signal(self, signum: int) -> int:
        """Send ``signum``; return the exit status (waits up to TIMEOUT)."""
        self.process.send_signal(signum)
        return self.process.wait(TIMEOUT)

    def stderr(self) -> str:
        """All of stderr; only once the process has exited."""
        assert self.process.poll() is not None
        assert self.process.stderr is not None
        return self.process.stderr.read().decode("utf-8", "replace")


def read_line_within(stream: object, timeout: float) -> bytes:
    """One line from a pipe, or b"" if none arrives within ``timeout``."""
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)  # type: ignore[arg-type]
        deadline = time.monotonic() + timeout
        data = b""
        while not data.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not selector.select(left):
                break
            chunk = os.read(stream.fileno(), 1)  # type: ignore[attr-defined]
            if not chunk:
                break
            data += chunk
        return data


@pytest.fixture
def spawn_server(tmp_path: Path) -> Iterator[Callable[..., Spawned]]:
    processes: list[subprocess.Popen[bytes]] = []

    def spawn(
        *flags: str, env: Mapping[str, str] | None = None, cwd: Path | None = None
    ) -> Spawned:
        argv = [sys.executable, "-m", "reference_server", *flags]
        if "--db" not in flags:
            argv += ["--db", str(tmp_path / "spawned.sqlite3")]
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_server_env(env),
            cwd=cwd or tmp_path,
            start_new_session=True,
        )
        processes.append(process)
        line = read_line_within(process.stdout, 10.0).decode("utf-8", "replace")
        assert line.startswith("listening on "), f"no 'listening on' line, got {line!r}"
        return Spawned(process, line.rstrip("\n"))

    yield spawn
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        process.wait(TIMEOUT)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


# Types of the fixture factories, for annotations in test modules
# (``if TYPE_CHECKING: from conftest import Connect, ...``).
StartServer = Callable[..., ReferenceServer]
Connect = Callable[..., LineClient]
SpawnServer = Callable[..., Spawned]


@pytest.fixture
def scripted() -> Iterator[StartScripted]:
    """Start scripted servers (``scripted_server.ScriptedServer``); all are
    stopped at the end of the test."""
    servers: list[ScriptedServer] = []

    def start(script: Script, family: socket.AddressFamily = socket.AF_INET) -> ScriptedServer:
        server = ScriptedServer(script, family)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
