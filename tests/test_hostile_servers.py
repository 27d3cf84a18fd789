"""The suite against servers that attack it (issue 10 items 1-3, issue 11 "stop early").

Each hostile server is a real process (``conformance.corpus.hostile``) on a
free loopback port; each run of the suite is a real ``conformance run``
subprocess with a deadline. What must hold: a server that daemonises is
caught (exit 2, one line), and nothing it started survives; a flooding,
garbage-sending, silent or trickling server gets a verdict (or exit 2 from the
probe) in bounded time, with every buffer capped.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance.harness.process import (
    ServerOutlived,
    ServerProcess,
    accepts_connections,
    leftovers,
    wait_until,
)

LINUX = sys.platform.startswith("linux")
HOSTILE = [sys.executable, "-m", "conformance.corpus.hostile"]
#: The deadline of one suite run in these tests (each normally ends in seconds).
RUN_TIMEOUT = 120.0
#: Marks every process a suite run of these tests starts, to find survivors.
RUN_MARK = "ABP_HOSTILE_TEST_RUN"

needs_proc = pytest.mark.skipif(not LINUX, reason="finds processes through /proc (Linux)")


def hostile(kind: str) -> list[str]:
    return [*HOSTILE, kind, "--host", "{host}", "--port", "{port}"]


def marked(value: str) -> set[int]:
    """Live processes (not zombies) whose environment holds RUN_MARK=value."""
    found: set[int] = set()
    needle = f"{RUN_MARK}={value}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            stat = (entry / "stat").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0") and stat[stat.rfind(b")") + 2 :][:1] != b"Z":
            found.add(int(entry.name))
    return found


def conformance(
    *args: str, mark: str, timeout: float = RUN_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    """``python -m conformance ARGS``, every process it starts marked with ``mark``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env[RUN_MARK] = mark
    return subprocess.run(
        [sys.executable, "-m", "conformance", *args],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def mark() -> Iterator[str]:
    """A run mark; whatever still carries it at teardown is killed (and fails the test)."""
    value = uuid.uuid4().hex
    yield value
    if LINUX:
        survivors = marked(value)
        for pid in survivors:
            os.kill(pid, 9)
        assert not survivors, f"processes left behind: {sorted(survivors)}"


# -- issue 10 item 1: a server that daemonises
@needs_proc
def test_kill_of_a_daemonising_server_is_caught_and_nothing_survives() -> None:
    server = ServerProcess(hostile("daemon"))
    server.start()  # the started process lingers a second: it looks alive
    try:
        with pytest.raises(ServerOutlived, match=r"outlived its process.*SIGKILL.*foreground"):
            server.kill()
        assert not accepts_connections(*server.address)
        assert leftovers(server.token) == set()
    finally:
        server.close()


@needs_proc
def test_a_child_in_its_own_session_is_killed_with_the_server() -> None:
    """A server that starts a helper with ``setsid()`` (outside its process
    group, so ``killpg`` misses it): the helper is gone after ``close``."""
    program = (
        "import socket, subprocess, sys\n"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'],"
        " start_new_session=True)\n"
        "listener = socket.create_server(('127.0.0.1', int(sys.argv[1])))\n"
        "while True: listener.accept()\n"
    )
    server = ServerProcess([sys.executable, "-c", program, "{port}"])
    server.start()
    try:
        assert wait_until(lambda: len(leftovers(server.token)) == 2, 10.0)
        started = leftovers(server.token)
    finally:
        server.close()
    assert leftovers(server.token) == set()
    assert not any(Path(f"/proc/{pid}").exists() for pid in started)


def test_a_foreground_server_stops_without_complaint() -> None:
    with ServerProcess(hostile("silent")) as server:
        assert server.stop() is not None
        assert not accepts_connections(*server.address)


@needs_proc
def test_durability_run_against_a_daemonising_server_stops_with_exit_2(mark: str) -> None:
    """Issue 10 item 1: this server kept its book in memory and got ABP-DUR PASS,
    exit 0, with four copies running after the run."""
    command = shlex.join(hostile("daemon"))
    run = conformance(
        "run", "--server-cmd", command, "--requirement", "ABP-DUR", "-n", "0", mark=mark
    )
    assert run.returncode == 2, run.stdout + run.stderr
    errors = run.stderr.strip().splitlines()
    assert len(errors) == 1, run.stderr
    assert "outlived its process" in errors[0]
    assert "run it in the foreground" in errors[0]
    assert "verdict: PASS" not in run.stdout
