"""Starting, stopping and killing a server under test, by PID, with deadlines.

Used by ``conformance run --server-cmd``, the matrix, the benchmarks and the
project's own tests. A command template names ``{port}`` (and optionally
``{host}``); the free port is picked here, and the server counts as up once it
accepts a TCP connection. No sleeps as synchronisation: every wait polls a
condition against a deadline.

A server must run in the foreground. One that daemonises (forks, calls
``setsid()`` and lets the started process exit) would keep answering from
memory after a "SIGKILL" of a process that no longer serves, and pass the
durability tests falsely; so after every stop or kill the port must stop
accepting (``PORT_RELEASE``), or ``ServerOutlived`` is raised: the run cannot
judge that server. Whatever the server did, every process it started is gone
when it is stopped: its process group is killed, and on Linux so is every
process that carries the server's token in its environment
(``ABP_CONFORMANCE_SERVER``, inherited by every descendant, ``setsid()`` or
not) or descended from it; the suite's process is a child subreaper
(``PR_SET_CHILD_SUBREAPER``), so that such orphans are re-parented to it, not
to init, and are reaped here. (A cgroup or a PID namespace would catch also a
process that clears its environment and leaves its session, but needs
privileges or user namespaces this tool cannot assume; the subreaper and the
token need none.)
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
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO

from conformance.harness.timing import (
    CONNECT_ATTEMPT,
    POLL,
    PORT_RELEASE,
    PROCESS_EXIT,
    PROCESS_READY,
)
from protocol.address import format_address

LOOPBACK = "127.0.0.1"
#: The environment variable that marks every process a server command starts.
MARK_VARIABLE = "ABP_CONFORMANCE_SERVER"
PR_SET_CHILD_SUBREAPER = 36
PROC = Path("/proc")


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


class ServerOutlived(RuntimeError):
    """The port still accepts connections after the server's process was
    stopped: the server daemonised. The run must stop (exit 2): no verdict on
    restarts and crashes means anything for such a server."""

    def __init__(self, address: str, how: str) -> None:
        super().__init__(
            f"the server outlived its process: {address} still accepts connections after"
            f" {how}; it daemonises or hands its socket to another process"
            " (run it in the foreground)"
        )


_subreaper: bool | None = None


def become_subreaper() -> bool:
    """Make this process the child subreaper of its descendants (Linux), once;
    False where that is not available."""
    global _subreaper  # noqa: PLW0603 - a property of the process, set once
    if _subreaper is None:
        _subreaper = False
        if sys.platform.startswith("linux"):
            import ctypes

            with contextlib.suppress(OSError, AttributeError):
                libc = ctypes.CDLL(None, use_errno=True)
                _subreaper = libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    return _subreaper


def _proc_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, state letter) for every process /proc shows (empty
    where there is no /proc)."""
    table: dict[int, tuple[int, str]] = {}
    with contextlib.suppress(OSError):
        for entry in PROC.iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_bytes()
            except OSError:
                continue
            fields = stat[stat.rfind(b")") + 2 :].split()
            if len(fields) >= 2:
                table[int(entry.name)] = (int(fields[1]), fields[0].decode("ascii", "replace"))
    return table


def _has_token(pid: int, marker: bytes) -> bool:
    try:
        environ = (PROC / str(pid) / "environ").read_bytes()
    except OSError:
        return False
    return marker in environ.split(b"\0")


def leftovers(token: str, roots: Sequence[int] = ()) -> set[int]:
    """Live processes (not zombies) that carry ``token`` in their environment,
    or descend from one of them or from ``roots``."""
    table = _proc_table()
    marker = f"{MARK_VARIABLE}={token}".encode()
    me = os.getpid()
    found = {pid for pid in table if pid != me and _has_token(pid, marker)}
    found |= {pid for pid in roots if pid in table}
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    stack = list(found)
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found and child != me:
                found.add(child)
                stack.append(child)
    return {pid for pid in found if table[pid][1] != "Z"}


def _reap(pids: set[int]) -> None:
    """Collect the exit status of those of ``pids`` that are this process's
    children (orphans re-parented here), so that no zombie stays."""
    for pid in pids:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)


def kill_leftovers(token: str, roots: Sequence[int] = (), timeout: float = PROCESS_EXIT) -> int:
    """SIGKILL every process ``leftovers`` finds, again until none is left
    (a forking process may add one between a look and a kill) or ``timeout``
    passes; returns how many were killed."""
    killed: set[int] = set()
    deadline = time.monotonic() + timeout
    while True:
        alive = leftovers(token, roots)
        for pid in alive:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        killed |= alive
        _reap(killed)
        if not alive or time.monotonic() >= deadline:
            return len(killed)
        time.sleep(POLL)


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
        # marks every process this server starts (see the module docstring)
        self.token = uuid.uuid4().hex
        self.env[MARK_VARIABLE] = self.token
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
        become_subreaper()
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
            serving = accepts_connections(self.host, self.port)
            self._kill_leftovers()
            if serving:
                raise ServerOutlived(
                    self.display,
                    f"the process started ({process.pid}) exited with status {process.returncode}",
                )
            hint = (
                " (if it daemonises, run it in the foreground)" if process.returncode == 0 else ""
            )
            raise ServerStartError(
                f"server exited with status {process.returncode} before accepting connections"
                f"{hint} ({shlex.join(argv)}){self._stderr_tail()}"
            )
        if not up:
            self.kill()
            raise ServerStartError(
                f"server did not accept connections on {self.host}:{self.port} within "
                f"{self.ready_timeout:g}s ({shlex.join(argv)}){self._stderr_tail()}"
            )
        return self

    @property
    def display(self) -> str:
        return format_address(self.host, self.port)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = PROCESS_EXIT) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout``; returns the exit status.
        Raises ``ServerOutlived`` when the port still accepts afterwards."""
        return self._signal(signal.SIGTERM, timeout)

    def kill(self) -> int | None:
        """SIGKILL: the crash the durability requirements speak of (ABP-DUR-2).
        Raises ``ServerOutlived`` when the port still accepts afterwards."""
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
        # the port must be closed now (the group's members may take a moment to
        # die); if it is not, something outside the process we started serves
        released = wait_until(lambda: not accepts_connections(self.host, self.port), PORT_RELEASE)
        self._kill_leftovers()
        if not released:
            how = "SIGKILL" if signum == signal.SIGKILL else "SIGTERM"
            raise ServerOutlived(self.display, f"{how} of its process ({process.pid})")
        return process.returncode

    def _kill_leftovers(self) -> None:
        # the started process's PID only while it is unreaped (so not reused)
        process = self.process
        roots = [process.pid] if process is not None and process.poll() is None else []
        kill_leftovers(self.token, roots)

    def stderr_text(self) -> str:
        if self._stderr is None or self._stderr.closed:
            return ""
        self._stderr.seek(0)
        return self._stderr.read().decode("utf-8", "replace")

    def close(self) -> None:
        """Stop the server and release its files (and its own ``{tmpdir}``);
        every process it started is gone afterwards. Raises ``ServerOutlived``
        (once the files are released) when the port still accepted."""
        try:
            self.stop()
        finally:
            self._release()

    def _release(self) -> None:
        self._kill_leftovers()
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
