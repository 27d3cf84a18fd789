"""Running a client under test: a subprocess with a deadline, killed by PID.

Every client runs in its own session (process group), with stdout and stderr
captured. At the deadline the whole group gets SIGKILL: a client that waits
forever is reported as a hang, never waited for. ``LiveProcess`` is for menu
clients that are fed their input a little at a time (the matrix's "two
clients taking turns").
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import IO

from conformance.harness.timing import PROCESS_EXIT
from conformance.harness.wire import Transcript

#: What Python prints first when a program dies of an uncaught exception.
TRACEBACK = "Traceback (most recent call last)"
#: Output kept per stream; a client that floods stdout must not flood the report.
OUTPUT_LIMIT = 1 << 20


class ClientStartError(RuntimeError):
    """The client command could not be started at all (not found, not executable)."""


@dataclass(frozen=True)
class ClientRun:
    """One run of the client under test."""

    argv: tuple[str, ...]
    stdin: str | None
    returncode: int | None  # None: killed at the deadline
    stdout: str
    stderr: str
    duration: float
    deadline: float

    @property
    def timed_out(self) -> bool:
        return self.returncode is None

    @property
    def traceback(self) -> bool:
        return TRACEBACK in self.stderr or TRACEBACK in self.stdout

    @property
    def output(self) -> str:
        """stdout and stderr together: where a menu client may show an answer."""
        return self.stdout + self.stderr

    def status_text(self) -> str:
        if self.returncode is None:
            return f"still running at the {self.deadline:g}s deadline: killed (a hang)"
        if self.returncode < 0:
            return f"killed by signal {-self.returncode} after {self.duration:.2f}s"
        return f"exit status {self.returncode} after {self.duration:.2f}s"

    def describe(self) -> str:
        """For failure messages: the command, its input, its outcome and its output."""
        lines = [f"$ {shlex.join(self.argv)}"]
        if self.stdin is not None:
            lines.append(f"  stdin:  {self.stdin!r}")
        lines.append(f"  {self.status_text()}")
        lines.append(f"  stdout: {_shorten(self.stdout)!r}")
        lines.append(f"  stderr: {_shorten(self.stderr)!r}")
        return "\n".join(lines)

    def note_in(self, transcript: Transcript) -> None:
        transcript.note("cli", f"client {self.status_text()}")
        transcript.note("cli", f"client stdout: {_shorten(self.stdout)!r}")
        if self.stderr:
            transcript.note("cli", f"client stderr: {_shorten(self.stderr)!r}")


def _shorten(text: str, limit: int = 600) -> str:
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


def _decode(data: bytes) -> str:
    return data[:OUTPUT_LIMIT].decode("utf-8", "replace")


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the client and whatever it started in its session, by PID."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        process.kill()


def _popen(
    argv: Sequence[str],
    stdin: int | IO[bytes],
    stdout: int | IO[bytes],
    stderr: int | IO[bytes],
    env: Mapping[str, str] | None,
) -> subprocess.Popen[bytes]:
    try:
        return subprocess.Popen(
            list(argv),
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            env=dict(os.environ if env is None else env),
            start_new_session=True,  # a group of its own: killed as one at the deadline
        )
    except OSError as exc:
        raise ClientStartError(f"cannot start {shlex.join(argv)}: {exc}") from None


def run_client(
    argv: Sequence[str],
    *,
    deadline: float,
    stdin: str | None = None,
    env: Mapping[str, str] | None = None,
    transcript: Transcript | None = None,
) -> ClientRun:
    """Run ``argv`` to completion or to ``deadline`` seconds, whichever is first."""
    if transcript is not None:
        transcript.note("cli", f"client started: {shlex.join(argv)}")
    started = time.monotonic()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = _popen(
            argv, subprocess.PIPE if stdin is not None else subprocess.DEVNULL, out, err, env
        )
        returncode: int | None
        try:
            process.communicate(None if stdin is None else stdin.encode("utf-8"), deadline)
            returncode = process.returncode
        except subprocess.TimeoutExpired:
            returncode = None
        finally:
            _kill_group(process)  # at the deadline, and any stray child left behind
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(PROCESS_EXIT)
        duration = time.monotonic() - started
        out.seek(0)
        err.seek(0)
        run = ClientRun(
            tuple(argv),
            stdin,
            returncode,
            _decode(out.read(OUTPUT_LIMIT)),
            _decode(err.read(OUTPUT_LIMIT)),
            duration,
            deadline,
        )
    if transcript is not None:
        run.note_in(transcript)
    return run


class LiveProcess:
    """A client fed its standard input a piece at a time (menu clients taking turns)."""

    def __init__(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None) -> None:
        self.argv = tuple(argv)
        self._out = tempfile.TemporaryFile()  # noqa: SIM115 - closed in finish()
        self._err = tempfile.TemporaryFile()  # noqa: SIM115 - closed in finish()
        self.started = time.monotonic()
        try:
            self.process = _popen(argv, subprocess.PIPE, self._out, self._err, env)
        except ClientStartError:
            self._out.close()
            self._err.close()
            raise
        self._fed: list[str] = []

    def feed(self, text: str) -> bool:
        """Write to the client's stdin; False if it no longer reads."""
        stdin = self.process.stdin
        assert stdin is not None
        self._fed.append(text)
        try:
            stdin.write(text.encode("utf-8"))
            stdin.flush()
        except (BrokenPipeError, ValueError):
            return False
        return True

    def finish(self, deadline: float) -> ClientRun:
        """Close stdin and wait up to ``deadline`` seconds; then kill."""
        with contextlib.suppress(BrokenPipeError, OSError):
            if self.process.stdin is not None:
                self.process.stdin.close()
        returncode: int | None
        try:
            returncode = self.process.wait(deadline)
        except subprocess.TimeoutExpired:
            returncode = None
        finally:
            _kill_group(self.process)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(PROCESS_EXIT)
        self._out.seek(0)
        self._err.seek(0)
        run = ClientRun(
            self.argv,
            "".join(self._fed),
            returncode,
            _decode(self._out.read(OUTPUT_LIMIT)),
            _decode(self._err.read(OUTPUT_LIMIT)),
            time.monotonic() - self.started,
            deadline,
        )
        self._out.close()
        self._err.close()
        return run

    def kill(self) -> None:
        _kill_group(self.process)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(PROCESS_EXIT)
        for stream in (self.process.stdin, self._out, self._err):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
