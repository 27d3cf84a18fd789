"""Starting, stopping and killing a server under test, by PID, with deadlines.

Used by ``conformance run --server-cmd``, the matrix, the benchmarks and the
project's own tests. A command template names ``{port}`` (and optionally
``{host}``); the free port is picked here, and the server counts as up once it
accepts a TCP connection. No sleeps as synchronisation: every wait polls a
condition against a deadline.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO

from conformance.harness.timing import CONNECT_ATTEMPT, POLL, PROCESS_EXIT, PROCESS_READY

LOOPBACK = "127.0.0.1"


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """Linux: SIGKILL this child when the process that started it dies, so a
    suite killed by a timeout leaves no server behind (PR_SET_PDEATHSIG)."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)


def _child_setup() -> Callable[[], None] | None:
    # PDEATHSIG follows the *thread* that forked: only safe from the main thread.
    if sys.platform.startswith("linux") and threading.current_thread() is threading.main_thread():
        return _die_with_parent
    return None


class ServerStartError(RuntimeError):
    """The server did not come up; the message says why (and its stderr)."""


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port that was free a moment ago on ``host``."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def accepts_connections(host: str, port: int, timeout: float = CONNECT_ATTEMPT) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(condition: object, timeout: float, interval: float = POLL) -> bool:
    """Poll ``condition()`` until it is true or ``timeout`` seconds pass."""
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def render(template: str | Sequence[str], **values: object) -> list[str]:
    """argv from a template: a shell-like string is split first, then each
    word's ``{placeholders}`` are filled (so values never need quoting)."""
    words = shlex.split(template) if isinstance(template, str) else list(template)
    return [word.format_map(_Placeholders(values)) for word in words]


class _Placeholders(dict[str, object]):
    def __missing__(self, key: str) -> str:
        raise KeyError(f"unknown placeholder {{{key}}} in command template")


class ServerProcess:
    """One server under test, started from a command template."""

    def __init__(
        self,
        template: str | Sequence[str],
        *,
        host: str = LOOPBACK,
        port: int | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
        ready_timeout: float = PROCESS_READY,
        tmpdir: str | Path | None = None,
    ) -> None:
        self.template = template
        self.host = host
        self.port = port if port is not None else free_port(host)
        self.env = dict(os.environ if env is None else env)
        self.cwd = cwd
        self.ready_timeout = ready_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None  # opened by start(), closed by close()
        # {tmpdir}: a directory that lives as long as this object, so that a
        # restarted server finds the data it wrote before.
        self._own_tmpdir: tempfile.TemporaryDirectory[str] | None = None
        if tmpdir is None and "{tmpdir}" in str(template):
            self._own_tmpdir = tempfile.TemporaryDirectory(prefix="abp-server-")
            tmpdir = self._own_tmpdir.name
        self.tmpdir = None if tmpdir is None else str(tmpdir)

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def argv(self) -> list[str]:
        values: dict[str, object] = {"host": self.host, "port": self.port}
        if self.tmpdir is not None:
            values["tmpdir"] = self.tmpdir
        return render(self.template, **values)

    def start(self) -> ServerProcess:
        if self.running:
            raise RuntimeError("server already running")
        argv = self.argv()
        if self._stderr is None:
            self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        try:
            self.process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=self._stderr,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,  # our signals reach it, the terminal's do not
                preexec_fn=_child_setup(),  # noqa: PLW1509 - only async-signal-safe work
            )
        except OSError as exc:
            raise ServerStartError(f"cannot start {shlex.join(argv)}: {exc}") from None
        process = self.process
        up = wait_until(
            lambda: process.poll() is not None or accepts_connections(self.host, self.port),
            self.ready_timeout,
        )
        if process.poll() is not None:
            raise ServerStartError(
                f"server exited with status {process.returncode} before accepting connections"
                f" ({shlex.join(argv)}){self._stderr_tail()}"
            )
        if not up:
            self.kill()
            raise ServerStartError(
                f"server did not accept connections on {self.host}:{self.port} within "
                f"{self.ready_timeout:g}s ({shlex.join(argv)}){self._stderr_tail()}"
            )
        return self

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = PROCESS_EXIT) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout``; returns the exit status."""
        return self._signal(signal.SIGTERM, timeout)

    def kill(self) -> int | None:
        """SIGKILL: the crash the durability requirements speak of (ABP-DUR-2)."""
        return self._signal(signal.SIGKILL, PROCESS_EXIT)

    def restart(self) -> ServerProcess:
        self.stop()
        return self.start()

    def _signal(self, signum: int, timeout: float) -> int | None:
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signum)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGKILL)
                process.wait(PROCESS_EXIT)
        # the server's own children, if it was a shell or a wrapper
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        return process.returncode

    def stderr_text(self) -> str:
        if self._stderr is None or self._stderr.closed:
            return ""
        self._stderr.seek(0)
        return self._stderr.read().decode("utf-8", "replace")

    def close(self) -> None:
        """Stop the server and release its files (and its own ``{tmpdir}``)."""
        self.stop()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        if self._own_tmpdir is not None:
            self._own_tmpdir.cleanup()
            self._own_tmpdir = None

    def _stderr_tail(self) -> str:
        text = self.stderr_text().strip()
        return f"\n--- server stderr ---\n{text[-2000:]}" if text else ""

    def __enter__(self) -> ServerProcess:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def reference_server_command(*options: str) -> list[str]:
    """argv template of the embedded reference server, ``{port}`` and ``{host}``
    included; ``options`` are more flags (e.g. ``--db``, PATH)."""
    return [
        sys.executable,
        "-m",
        "reference_server",
        "--host",
        "{host}",
        "--port",
        "{port}",
        *options,
    ]
