"""abp-client says what actually arrived, and ``--timeout`` bounds the whole
exchange (issue 12, issue 10 item 9; ABP-CONN-10, ABP-FRAME-8).

Also: ``--json`` for scripts, a bare number refused as an address, and options
accepted before or after the command. Servers are scripted threads or the
real tutorial-style and reference servers on 127.0.0.1, port 0.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from client_process import client_env, run_client
from scripted_server import Peer, Script, StartServer, read_line

from conformance.harness.process import ServerProcess, reference_server_command
from reference_client import describe_unterminated

TUTORIAL_SERVER = "conformance.corpus.tutorial.addressbook_server"


@pytest.fixture
def tutorial_server(tmp_path: Path) -> Iterator[ServerProcess]:
    command = [sys.executable, "-m", TUTORIAL_SERVER, "--host", "{host}", "--port", "{port}"]
    with ServerProcess([*command, "--book", str(tmp_path / "book.json")]) as process:
        yield process


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    db = tmp_path_factory.mktemp("arrival") / "book.sqlite3"
    with ServerProcess(reference_server_command("--db", str(db))) as process:
        yield process


def at(port: int) -> list[str]:
    return ["--server", f"127.0.0.1:{port}"]


def dribble(first: bytes, every: float, limit: int = 60) -> Script:
    """A server that reads a request, then sends ``first`` one byte per ``every``
    seconds (a slow peer: the pacing is the behaviour under test)."""

    def script(conn: Peer) -> None:
        read_line(conn)
        for i in range(limit):
            conn.sendall(first[i % len(first) : i % len(first) + 1])
            time.sleep(every)

    return script


# ------------------------------------------------------ what actually arrived


@pytest.mark.parametrize(
    ("data", "total", "said"),
    [
        (
            b"Entry for bob added",
            None,
            "got 19 bytes with no LF: 'Entry for bob added' "
            "(a tutorial-style server? try --legacy)",
        ),
        (b"OK: par", None, "got 7 bytes with no LF: 'OK: par'"),
        (b"E", None, "got 1 byte with no LF: 'E'"),
        (
            b"x\x00\r",
            None,
            "got 3 bytes with no LF: 'x\\x00\\r' (a tutorial-style server? try --legacy)",
        ),
        (
            b"a" * 100,
            5000,
            "got 5000 bytes with no LF: '" + "a" * 80 + "...' "
            "(a tutorial-style server? try --legacy)",
        ),
        (b"", None, "got nothing"),
    ],
)
def test_describe_unterminated(data: bytes, total: int | None, said: str) -> None:
    assert describe_unterminated(data, total) == said


def test_tutorial_server_without_legacy_says_what_arrived(
    tutorial_server: ServerProcess,
) -> None:
    """The tutorial's server answers with no LF and keeps the connection: the
    client names the bytes and the way out instead of "no answer"."""
    started = time.monotonic()
    result = run_client(*at(tutorial_server.port), "--timeout", "1", "add", "bob", "1 Road")
    assert time.monotonic() - started < 8
    assert result.returncode == 3
    assert result.stderr == (
        f"abp-client: no complete answer from 127.0.0.1:{tutorial_server.port} within 1s: "
        "got 19 bytes with no LF: 'Entry for bob added' (a tutorial-style server? try --legacy)\n"
    )


def test_free_text_closed_without_legacy_suggests_legacy(scripted: StartServer) -> None:
    def script(conn: Peer) -> None:
        read_line(conn)
        conn.sendall(b"Entry for bob added")

    server = scripted(script)
    result = run_client(*at(server.port), "add", "bob", "x")
    assert result.returncode == 3
    assert "malformed answer" in result.stderr
    assert result.stderr.endswith("(a tutorial-style server? try --legacy)\n")


@pytest.mark.parametrize(
    "args",
    [
        ["--server", "7801", "fnd", "alice"],
        ["fnd", "alice", "--server", "7801"],
        ["--host", "7801", "fnd", "alice"],
        ["--server", "7801", "raw", "fnd:x\\n"],
    ],
)
def test_a_bare_number_as_address_is_a_usage_error(args: list[str]) -> None:
    """7801 as a host would name an address off this machine: refused, exit 2."""
    result = run_client(*args)
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1
    assert "7801" in result.stderr
    assert "is a port, not an address" in result.stderr or "is a number" in result.stderr


def test_a_bare_number_from_the_environment_is_refused_too() -> None:
    result = run_client("fnd", "alice", env=client_env(ABP_HOST="7801"))
    assert result.returncode == 2
    assert result.stderr == "abp-client: '7801' is a number, not a host\n"


# ------------------------------------------------------------ the whole exchange


def test_timeout_bounds_the_whole_exchange_against_a_dribbling_server(
    scripted: StartServer,
) -> None:
    """ABP-CONN-10: one byte every 0.3 s cannot keep the client past --timeout."""
    server = scripted(dribble(b"OK: slow", 0.3))
    started = time.monotonic()
    result = run_client(*at(server.port), "--timeout", "1", "fnd", "bob")
    elapsed = time.monotonic() - started
    assert result.returncode == 3
    assert elapsed < 4, elapsed  # a timer restarted by every byte would run 18 s
    assert "no complete answer" in result.stderr
    assert "within 1s: got " in result.stderr
    assert "with no LF: 'OK: " in result.stderr
    assert "try --legacy" not in result.stderr  # the bytes are an answer's start


def test_timeout_bounds_raw_too(scripted: StartServer) -> None:
    server = scripted(dribble(b"z", 0.2))
    started = time.monotonic()
    result = run_client(*at(server.port), "--timeout", "1", "raw", "--wait", "0.5", "fnd:x\\n")
    assert time.monotonic() - started < 4
    assert result.returncode == 0
    assert result.stdout.startswith("z")
    assert "stopped at --timeout 1s, still receiving" in result.stderr


# -------------------------------------------------------------------- --json


def test_json_one_object_per_answer(reference: ServerProcess) -> None:
    added = run_client(*at(reference.port), "--json", "add", "jo", "1 Road")
    assert added.returncode == 0, added.stderr
    record = json.loads(added.stdout)
    assert record["request"] == "add:jo,1 Road\\n"
    assert record["answer"] in ("OK\\n",) or record["answer"].startswith("OK: ")
    assert record["status"] == "ok"
    assert record["bytes_sent"] == len(b"add:jo,1 Road\n")
    assert record["bytes_received"] == len(record["answer"].replace("\\n", "\n").encode())
    assert 0 <= record["latency_ms"] < 5000
    missing = run_client(*at(reference.port), "fnd", "nobody-json", "--json")
    assert missing.returncode == 1
    record = json.loads(missing.stdout)
    assert (record["status"], record["answer"]) == ("error", "ERROR: No entry for nobody-json\\n")
    assert len(missing.stdout.splitlines()) == 1


def test_json_reports_a_failure(scripted: StartServer) -> None:
    def close(conn: Peer) -> None:
        read_line(conn)

    server = scripted(close)
    result = run_client(*at(server.port), "--json", "fnd", "bob")
    assert result.returncode == 3
    record = json.loads(result.stdout)
    assert record["status"] == "failure"
    assert record["answer"] is None
    assert "closed the connection before answering" in record["error"]


# ------------------------------------------------------- options anywhere


@pytest.mark.parametrize(
    "layout",
    [
        ["--wait", "0.3", "raw", "fnd:opt\\n"],
        ["raw", "--wait", "0.3", "fnd:opt\\n"],
        ["raw", "fnd:opt\\n", "--wait", "0.3"],
        ["--json", "raw", "fnd:opt\\n", "--wait", "0.3"],
    ],
)
def test_options_before_or_after_the_command(reference: ServerProcess, layout: list[str]) -> None:
    result = run_client(*layout, *at(reference.port))
    assert result.returncode == 0, result.stderr
    if "--json" in layout:
        record = json.loads(result.stdout)
        assert record["answer"] == "ERROR: No entry for opt\\n"
        assert record["ended_by"] == "no byte for 0.3s"
    else:
        assert result.stdout == "ERROR: No entry for opt\\n\n"
    assert result.stderr == "abp-client: 24 bytes received; no byte for 0.3s\n"
