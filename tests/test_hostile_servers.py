"""The suite against servers that attack it (issue 10 items 1-3, issue 11 "stop early").

Each hostile server is a real process (``conformance.corpus.hostile_servers``) on a
free loopback port; each run of the suite is a real ``conformance run``
subprocess with a deadline. What must hold: a server that daemonises is
caught (exit 2, one line), and nothing it started survives; a flooding,
garbage-sending, silent or trickling server gets a verdict (or exit 2 from the
probe) in bounded time, with every buffer capped.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conformance.harness.process import (
    ServerOutlived,
    ServerProcess,
    accepts_connections,
    leftovers,
    reference_server_command,
    wait_until,
)

LINUX = sys.platform.startswith("linux")
HOSTILE = [sys.executable, "-m", "conformance.corpus.hostile_servers"]
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


# -- issue 11 "stop early": the probe decides before any test runs
@pytest.fixture
def start_hostile() -> Iterator[Callable[..., ServerProcess]]:
    started: list[ServerProcess] = []

    def start(kind: str, *more: str) -> ServerProcess:
        server = ServerProcess([*hostile(kind), *more])
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.close()


@pytest.mark.parametrize("framing", ["auto", "line"])
@pytest.mark.parametrize(
    ("kind", "said"),
    [
        ("flood", "with no LF"),
        ("garbage", "bytes that are not text"),
        ("silent", "accepts connections but never answered within 1s"),
        ("http", "answers like an HTTP server"),
    ],
)
def test_probe_stops_a_run_against_no_abp_server(
    start_hostile: Callable[..., ServerProcess], kind: str, said: str, framing: str
) -> None:
    server = start_hostile(kind)
    address = f"{server.host}:{server.port}"
    run = conformance(
        "run", "--server", address, "--framing", framing, "--timeout", "1", "-n", "0", mark="-"
    )
    assert run.returncode == 2, run.stdout + run.stderr
    errors = run.stderr.strip().splitlines()
    assert len(errors) == 1, run.stderr
    assert said in errors[0]
    assert address in errors[0]
    assert "verdict" not in run.stdout


def test_probe_shows_the_first_bytes_of_a_flood(
    start_hostile: Callable[..., ServerProcess],
) -> None:
    server = start_hostile("flood")
    run = conformance("run", "--server", f"{server.host}:{server.port}", "-n", "0", mark="-")
    assert run.returncode == 2
    assert '"AAAA' in run.stderr
    assert "more than 32768 bytes" in run.stderr
    assert len(run.stderr) < 400  # the first bytes, not the flood


def test_python_http_server_is_no_abp_server(tmp_path: Path) -> None:
    with ServerProcess(
        [sys.executable, "-m", "http.server", "--bind", "{host}", "{port}"], cwd=tmp_path
    ) as server:
        run = conformance("run", "--server", f"{server.host}:{server.port}", "-n", "0", mark="-")
    assert run.returncode == 2, run.stdout + run.stderr
    assert "answers like an HTTP server" in run.stderr
    assert "<!DOCTYPE HTML" in run.stderr  # 3.10 adds PUBLIC "-//W3C//DTD HTML 4.01//EN"


def test_counter_service_judged_as_the_address_book_asks_for_service_counter(
    tmp_path: Path,
) -> None:
    command = reference_server_command("--service", "counter", "--db", str(tmp_path / "c.db"))
    with ServerProcess(command) as server:
        run = conformance("run", "--server", f"{server.host}:{server.port}", "-n", "0", mark="-")
    assert run.returncode == 2, run.stdout + run.stderr
    errors = run.stderr.strip().splitlines()
    assert len(errors) == 1
    assert errors[0].endswith("did you mean `--service counter`?")


# -- issue 10 items 2-3: the attack starts after the probe; tests get a verdict
@pytest.mark.parametrize("kind", ["flood", "garbage", "silent", "trickle"])
def test_attack_after_the_probe_gets_a_fail_verdict(
    start_hostile: Callable[..., ServerProcess], kind: str, tmp_path: Path
) -> None:
    """``--honest 3``: our readiness check, the suite's reachability check and
    its probe are answered, then the attack; the tests of one requirement
    fail, and a failure shows the first bytes and the count, not the flood."""
    server = start_hostile(kind, "--honest", "3")
    report = tmp_path / "report.json"
    run = conformance(
        "run", "--server", f"{server.host}:{server.port}", "--framing", "line",
        "--timeout", "1", "-n", "0", "--requirement", "ABP-RESP-1", "--json", str(report),
        mark="-",
    )  # fmt: skip
    assert run.returncode == 1, run.stdout + run.stderr
    assert "verdict: FAIL" in run.stdout
    tests = json.loads(report.read_text())["tests"]
    assert tests
    assert all(t["outcome"] != "pass" for t in tests)
    assert max(len(t.get("message", "")) for t in tests) < 4000


# -- issue 11: the pytest plugin in someone else's project
@pytest.mark.parametrize(
    ("package", "flag"),
    [("conformance.suites.server", "--abp-server"), ("conformance.suites.client", "--abp-client")],
)
def test_plugin_without_a_target_is_a_usage_error(package: str, flag: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--pyargs", package, "-q"],
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    assert run.returncode == 4, run.stdout + run.stderr  # pytest's usage error
    assert flag in run.stderr
    assert "passed" not in run.stdout
    assert "skipped" not in run.stdout


def test_every_abp_option_has_help_text() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--help"],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    group = run.stdout.split("ABP/1 conformance:", 1)[1].split("\n\n", 1)[0]
    options = re.findall(r"^  (--abp-[a-z-]+)(=\S+)?(.*)$", group, re.MULTILINE)
    assert len(options) >= 12
    for name, _, rest in options:
        following = group.split(name, 1)[1].split("\n  --", 1)[0]
        assert rest.strip() or following.strip().count("\n") >= 1, name


def test_skip_reasons_name_the_plugin_flags() -> None:
    root = Path(__file__).parents[1] / "conformance" / "suites"
    texts = "".join(p.read_text() for p in root.rglob("test_*.py"))
    assert "--abp-server-cmd" in texts
    assert "--abp-idle-timeout" in texts


@pytest.mark.parametrize("workers", ["0", "2"])
def test_a_test_that_outruns_its_hard_deadline_fails(
    start_hostile: Callable[..., ServerProcess], workers: str
) -> None:
    """A silent server and a 5 s wait: the 0.5 s hard deadline ends the test
    (a blocking receive included), in the suite's process and in xdist workers."""
    server = start_hostile("silent")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-n", workers,
         "--pyargs", "conformance.suites.server", "--abp-server", f"{server.host}:{server.port}",
         "--abp-timeout", "5", "--abp-test-deadline", "0.5",
         "-k", "test_connection_carries_many_requests"],
        env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False,
    )  # fmt: skip
    assert run.returncode == 1, run.stdout + run.stderr
    assert "ran past its hard deadline of 0.5s" in run.stdout


def test_the_hard_deadline_leaves_other_tests_alone(tmp_path: Path) -> None:
    """The plugin is loaded beside any test suite (an entry point): its hard
    deadline is sized for one conformance test and must not cut short a test
    of anyone else's, such as this project's corpus runs (a CI failure:
    six suite runs in one test met the 110 s deadline on a loaded runner)."""
    (tmp_path / "test_slow.py").write_text(
        "import threading\n"
        "def test_longer_than_the_deadline():\n"
        "    assert not threading.Event().wait(1.0)  # a slow test, not a wait on anything\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-n", "0",
         "--abp-test-deadline", "0.2", str(tmp_path / "test_slow.py")],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 passed" in run.stdout
    assert "hard deadline" not in run.stdout


def test_a_server_that_falls_silent_stops_the_run_with_a_verdict(
    start_hostile: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    """Issue 10 item 3: after the probe the server never answers again; the
    run stops after a streak of silent tests, with FAIL (not one timeout for
    each of the 147 tests)."""
    server = start_hostile("silent", "--honest", "3")
    report = tmp_path / "report.json"
    run = conformance(
        "run", "--server", f"{server.host}:{server.port}", "--framing", "line",
        "--timeout", "1", "-n", "0", "--json", str(report), mark="-",
    )  # fmt: skip
    assert run.returncode == 1, run.stdout + run.stderr
    assert "note: the server stopped answering: 10 tests in a row" in run.stdout
    assert "verdict: FAIL" in run.stdout
    assert len(json.loads(report.read_text())["tests"]) < 100
