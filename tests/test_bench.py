"""``conformance bench`` against real servers: the reference server, the
tutorial-style one, the echo baseline, and a server that forgets.

No timing is asserted here (speed goals are measured by ``benchmarks/``);
these tests check that a run completes, that its report is sane, and that a
server that loses data or answers wrongly is caught (exit status 1).
"""

from __future__ import annotations

import json
import shlex
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from conformance.bench.load import Histogram
from conformance.bench.run import BenchError, Mix
from conformance.harness.process import ServerProcess, free_port

if TYPE_CHECKING:
    from conftest import StartServer

ROOT = Path(__file__).resolve().parent.parent
PYTHON = shlex.quote(sys.executable)
ECHO = ROOT / "benchmarks" / "echo_server.py"
REFERENCE = f"{PYTHON} -m reference_server --host {{host}} --port {{port}} --db {{tmpdir}}/db"
TUTORIAL = "conformance.corpus.tutorial.addressbook_server"
#: A whole bench run (probe, load, check afterwards) must end within this.
RUN_TIMEOUT = 90


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "conformance.bench", "--no-progress", *args],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        cwd=ROOT,
        check=False,
    )


def bench_json(
    tmp_path: Path, *args: str, status: int = 0
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """A run with ``--json``: its exit status is ``status``; (run, the JSON)."""
    out = tmp_path / "result.json"
    run = bench(*args, "--json", str(out))
    assert run.returncode == status, run.stdout + run.stderr
    result = json.loads(out.read_text())
    assert isinstance(result, dict)
    return run, result


def assert_one_line_error(run: subprocess.CompletedProcess[str]) -> None:
    assert run.returncode == 2, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("conformance bench: error: ")


# ------------------------------------------------------ the reference server


def test_reference_server_short_run(start_server: StartServer, tmp_path: Path) -> None:
    server = start_server()
    flags = "--duration 1 --connections 4 --mix fnd:70,add:20,rem:10 --bystander"
    address, pid = f"127.0.0.1:{server.port}", str(server.pid)
    run, result = bench_json(tmp_path, "--server", address, "--server-pid", pid, *flags.split())
    assert result["framing"] == "line"
    assert result["throughput_rps"] > 0
    assert result["answers"] == sum(result["by_command"].values())
    assert result["by_command"]["add"] > 0
    assert result["acknowledged_adds"] > 0
    latency = [result["latency_ms"][key] for key in ("p50", "p90", "p99", "p99.9", "max")]
    assert latency[0] >= 0, latency
    assert latency == sorted(latency), latency
    check = result["data_check"]
    assert check["status"] == "pass", check
    assert check["malformed"] == check["wrong"] == check["lost"] == check["unexpected"] == 0
    assert check["names"] == 4 * 16
    assert check["verified"] == check["names"]
    assert result["errors"] == {}
    assert result["bystander"]["answers"] > 0
    assert result["server_rss_kb"]["before"] > 0
    assert "data check: PASS" in run.stdout
    assert "throughput:" in run.stdout


def test_requests_pipelined_from_two_processes(start_server: StartServer, tmp_path: Path) -> None:
    """--requests is exact across processes and connections; --pipeline keeps K in flight."""
    server = start_server()
    flags = "--requests 3001 --connections 5 --processes 2 --pipeline 16 --mix fnd:50,add:50"
    _, result = bench_json(tmp_path, "--server", f"127.0.0.1:{server.port}", *flags.split())
    assert result["answers"] == 3001
    assert result["processes"] == 2
    assert result["pipeline"] == 16
    assert len(result["generator_cpu_share"]) == 2
    assert result["data_check"]["status"] == "pass"


def test_idle_connections_are_served_afterwards(start_server: StartServer, tmp_path: Path) -> None:
    server = start_server("--max-conns", "500")
    flags = f"--server-pid {server.pid} --duration 0.5 --connections 2 --idle 200"
    run, result = bench_json(tmp_path, "--server", f"127.0.0.1:{server.port}", *flags.split())
    idle = result["idle"]
    assert idle == idle | {"asked": 200, "opened": 200, "served": 200, "failures": {}}
    assert "200 served a fnd afterwards" in run.stdout


def test_a_busy_refusal_is_an_error_not_a_malformed_answer(
    start_server: StartServer, tmp_path: Path
) -> None:
    server = start_server("--max-conns", "2")
    flags = "--connections 4 --processes 2 --duration 0.5 --no-data-check"
    _, result = bench_json(tmp_path, "--server", f"127.0.0.1:{server.port}", *flags.split())
    assert set(result["errors"]) == {"before the run: refused: ERROR: Server busy"}
    assert sum(result["errors"].values()) >= 2
    assert result["data_check"]["malformed"] == 0
    assert result["answers"] > 0


def test_server_cmd_starts_and_stops_the_server(tmp_path: Path) -> None:
    template = f"{REFERENCE} --sync full"
    _, result = bench_json(
        tmp_path, "--server-cmd", template, "--requests", "200", "--mix", "add:1"
    )
    assert result["acknowledged_adds"] == 200
    assert result["server_pid"] is not None
    assert result["server_cpu_share"] is not None


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_server_cmd_on_ipv6_loopback(tmp_path: Path) -> None:
    flags = ["--server-host", "::1", "--requests", "100"]
    _, result = bench_json(tmp_path, "--server-cmd", REFERENCE, *flags)
    assert result["server"].startswith("[::1]:")
    assert result["answers"] == 100


# ------------------------------------------------- servers that are not ABP/1


def test_tutorial_server_reports_what_it_could_not_do(tmp_path: Path) -> None:
    template = f"{PYTHON} -m {TUTORIAL} --host {{host}} --port {{port}} --book {{tmpdir}}/b.json"
    flags = "--duration 0.5 --connections 3 --pipeline 4 --keys 2 --mix fnd:50,add:50"
    run, result = bench_json(tmp_path, "--server-cmd", template, *flags.split())
    assert result["framing"] == "legacy"
    assert result["pipeline"] == 1
    assert result["answers"] > 0
    assert result["legacy_answers"] == result["answers"]
    limitations = " | ".join(result["limitations"])
    assert "pipelining: not possible" in limitations
    assert "concurrency: only 1 of 3 connections" in limitations
    assert result["data_check"]["lost"] == 0
    assert "could not do: pipelining" in run.stdout


def test_echo_server_fails_the_data_check(tmp_path: Path) -> None:
    """A server that answers OK but stores nothing is a failure, not a score."""
    echo = ["--server-cmd", f"{PYTHON} {ECHO} --host {{host}} --port {{port}}"]
    run = bench(*echo, "--requests", "300", "--connections", "2")
    assert run.returncode == 1, run.stdout + run.stderr
    assert "data check: FAIL" in run.stdout
    assert "wrong answer: fnd:" in run.stdout
    unchecked = bench(*echo, "--requests", "300", "--connections", "2", "--no-data-check")
    assert unchecked.returncode == 0, unchecked.stdout + unchecked.stderr
    assert "data check: skipped" in unchecked.stdout


FORGETFUL = textwrap.dedent(
    """
    # Keeps a book per connection: each client reads its own writes, and a
    # fresh connection finds nothing. Built on the protocol package.
    import asyncio, sys
    from protocol import Add, Find, InvalidRequest, Ok, Remove, ServerConnection
    from protocol.codec import no_entry

    class Forgetful(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport, self.conn, self.book = transport, ServerConnection(), {}

        def data_received(self, data):
            out = []
            for event in self.conn.receive_data(data):
                if isinstance(event, Add):
                    self.book[event.name] = event.entry
                    answer = Ok()
                elif isinstance(event, Remove):
                    gone = self.book.pop(event.name, None)
                    answer = no_entry(event.name) if gone is None else Ok()
                elif isinstance(event, Find):
                    entry = self.book.get(event.name)
                    answer = no_entry(event.name) if entry is None else Ok(entry)
                elif isinstance(event, InvalidRequest):
                    answer = event.reply
                else:
                    continue
                out.append(self.conn.send(answer))
            self.transport.write(b"".join(out))

    async def main():
        loop = asyncio.get_running_loop()
        await loop.create_server(Forgetful, "127.0.0.1", int(sys.argv[1]))
        await asyncio.sleep(120)

    asyncio.run(main())
    """
)


def test_lost_writes_are_found_afterwards(tmp_path: Path) -> None:
    script = tmp_path / "forgetful.py"
    script.write_text(FORGETFUL)
    flags = "--requests 400 --connections 2 --mix fnd:50,add:50"
    with ServerProcess([sys.executable, str(script), "{port}"], cwd=ROOT) as server:
        address = f"127.0.0.1:{server.port}"
        run, result = bench_json(tmp_path, "--server", address, *flags.split(), status=1)
    check = result["data_check"]
    assert check["status"] == "fail"
    assert check["wrong"] == 0  # each connection sees its own writes...
    assert check["lost"] > 0  # ...and a fresh connection sees none of them
    assert "lost:" in run.stdout


# ---------------------------------------------------------- errors: exit 2


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--server", "127.0.0.1:2007", "--mix", "fnd:x"],
        ["--server", "127.0.0.1:2007", "--mix", "del:5"],
        ["--server", "127.0.0.1:2007", "--mix", "fnd:0"],
        ["--server", "127.0.0.1:2007", "--connections", "0"],
        ["--server", "127.0.0.1:2007", "--pipeline", "two"],
        ["--server", "127.0.0.1:99999"],
        ["--server", "no-port-here"],
        ["--server", "127.0.0.1:2007", "--server-cmd", "x {port}"],
        ["--server", "192.0.2.1:2007"],
        ["--server-cmd", "x {nope}"],
        ["--server-cmd", "x {port}", "--server-host", "192.0.2.1"],
        ["--server", "127.0.0.1:2007", "--json", "/no/such/dir/out.json"],
    ],
)
def test_bad_arguments_exit_2_with_one_line(args: list[str]) -> None:
    assert_one_line_error(bench(*args))


def test_unreachable_server_exits_2() -> None:
    run = bench("--server", f"127.0.0.1:{free_port()}", "--duration", "1")
    assert_one_line_error(run)
    assert "cannot connect" in run.stderr


def test_server_cmd_that_does_not_start_exits_2() -> None:
    run = bench("--server-cmd", f"{sys.executable} -c 'raise SystemExit(3)' {{port}}")
    assert_one_line_error(run)
    assert "exited with status 3" in run.stderr


def test_conformance_cli_dispatches_bench() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "conformance", "bench", "--server", f"127.0.0.1:{free_port()}"],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        cwd=ROOT,
        check=False,
    )
    assert_one_line_error(run)


# ------------------------------------------------------------ the pieces


def test_mix_parsing() -> None:
    mix = Mix.parse("fnd:80, add:15,rem:5")
    assert mix.as_dict() == {"fnd": 80, "add": 15, "rem": 5}
    assert str(mix) == "fnd:80,add:15,rem:5"
    sequence = mix.sequence(100)
    assert (sequence.count("fnd"), sequence.count("add"), sequence.count("rem")) == (80, 15, 5)
    assert Mix.parse("add:1").sequence(10) == ["add"] * 10
    for bad in ("fnd", "fnd:1,fnd:2", "get:1", "fnd:-1", "fnd:0,add:0", ""):
        with pytest.raises(BenchError):
            Mix.parse(bad)


def test_histogram_percentiles_merge() -> None:
    first, second = Histogram(), Histogram()
    for ms in range(1, 101):  # 1..100 ms
        (first if ms % 2 else second).record(ms / 1000)
    merged = Histogram()
    merged.update(first)
    merged.update(second)
    assert merged.total() == 100
    summary = merged.summary()
    assert summary["p50"] == pytest.approx(50, rel=0.002)
    assert summary["p90"] == pytest.approx(90, rel=0.002)
    assert summary["p99"] == pytest.approx(99, rel=0.002)
    assert summary["max"] == pytest.approx(100, rel=0.002)
    assert Histogram().summary()["p50"] is None
