"""``abp-server`` as a program: its flags, its ``listening on`` line, its
environment variables, and start-up errors that are one line and an exit
status (2: bad command line, 1: cannot start), never a traceback."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from conformance.harness.process import LOOPBACK
from protocol import Add, Find, Ok

if TYPE_CHECKING:
    from conftest import Connect, SpawnServer, StartServer

EXIT_CANNOT_START = 1
EXIT_USAGE = 2


def run_server(
    *flags: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a server that is expected to exit on its own (within 20 s)."""
    environment = {k: v for k, v in os.environ.items() if k not in ("ABP_HOST", "ABP_PORT")}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "reference_server", *flags],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=environment,
        timeout=20,
        check=False,
    )


def assert_one_line_error(
    result: subprocess.CompletedProcess[str], status: int, *words: str
) -> None:
    assert result.returncode == status, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("abp-server: error: ")
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0]
    assert result.stdout == ""


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


# ------------------------------------------------------------- start-up


def test_listening_line_reports_the_real_port(spawn_server: SpawnServer, connect: Connect) -> None:
    server = spawn_server("--port", "0")
    assert server.line == f"listening on 127.0.0.1:{server.port}"
    assert server.port != 0
    assert connect(server.address).request(Find("nobody")) is not None


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback here")
def test_ipv6_host(spawn_server: SpawnServer, connect: Connect) -> None:
    server = spawn_server("--host", "::1", "--port", "0")
    assert server.line == f"listening on [::1]:{server.port}"
    client = connect(("::1", server.port))
    assert client.request(Add("v6", "yes")) == Ok()
    assert client.request(Find("v6")) == Ok("yes")


def test_environment_gives_the_defaults(spawn_server: SpawnServer) -> None:
    server = spawn_server(env={"ABP_HOST": LOOPBACK, "ABP_PORT": "0"})
    assert server.line.startswith("listening on 127.0.0.1:")


def test_command_line_wins_over_the_environment(spawn_server: SpawnServer) -> None:
    server = spawn_server(
        "--host", LOOPBACK, "--port", "0", env={"ABP_PORT": "not-a-port", "ABP_HOST": "[::1"}
    )
    assert server.line.startswith("listening on 127.0.0.1:")


def test_default_db_is_created_in_the_working_directory(
    spawn_server: SpawnServer, connect: Connect, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    server = spawn_server("--port", "0", "--db", "abp-book.sqlite3", cwd=work)
    assert connect(server.address).request(Add("here", "yes")) == Ok()
    assert (work / "abp-book.sqlite3").exists()


def test_verbose_logs_connections_and_requests_on_stderr(
    spawn_server: SpawnServer, connect: Connect
) -> None:
    server = spawn_server("--port", "0", "-v")
    client = connect(server.address)
    assert client.request(Add("logged", "x")) == Ok()
    client.close()
    assert server.signal(15) == 0
    log = server.stderr()
    assert "Connection 1 using port" in log
    assert "Add(name='logged', entry='x')" in log


def test_quiet_by_default(spawn_server: SpawnServer, connect: Connect) -> None:
    server = spawn_server("--port", "0")
    assert connect(server.address).request(Add("quiet", "x")) == Ok()
    assert server.signal(2) == 0
    assert server.stderr() == ""


def test_help_shows_the_defaults(tmp_path: Path) -> None:
    result = run_server("--help", cwd=tmp_path)
    assert result.returncode == 0
    for text in (
        "2007",
        "127.0.0.1",
        "abp-book.sqlite3",
        "100",
        "300",
        "1000",
        "ABP_PORT",
        "--sync",
        "--max-conns",
        "--idle-timeout",
        "--quiet-ms",
        "exit status",
    ):
        assert text in result.stdout, text


def test_console_script_is_installed(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "abp-server"
    if not script.exists():
        pytest.skip("the project is not installed in this environment")
    result = subprocess.run(
        [str(script), "--help"],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0
    assert result.stdout.startswith("usage: abp-server")


# --------------------------------------------------------- start-up errors


@pytest.mark.parametrize(
    ("flags", "word"),
    [
        (["--port", "http"], "--port"),
        (["--port", "70000"], "--port"),
        (["--port", "-1"], "--port"),
        (["--host", ""], "--host"),
        (["--quiet-ms", "0"], "--quiet-ms"),
        (["--quiet-ms", "soon"], "--quiet-ms"),
        (["--idle-timeout", "-5"], "--idle-timeout"),
        (["--max-conns", "0"], "--max-conns"),
        (["--sync", "sometimes"], "--sync"),
        (["--service", "echo"], "--service"),
        (["--no-such-flag"], "--no-such-flag"),
    ],
)
def test_bad_flag_is_one_line_and_status_2(tmp_path: Path, flags: list[str], word: str) -> None:
    assert_one_line_error(run_server(*flags, cwd=tmp_path), EXIT_USAGE, word)


@pytest.mark.parametrize(
    ("variable", "value"),
    [("ABP_PORT", "abc"), ("ABP_PORT", "99999"), ("ABP_HOST", "  "), ("ABP_HOST", "[::1")],
)
def test_bad_environment_value_is_one_line_and_status_2(
    tmp_path: Path, variable: str, value: str
) -> None:
    result = run_server(cwd=tmp_path, env={variable: value})
    assert_one_line_error(result, EXIT_USAGE, variable)


def test_busy_port_is_one_line_and_status_1(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind((LOOPBACK, 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = run_server("--port", str(port), "--db", str(tmp_path / "b.sqlite3"), cwd=tmp_path)
    assert_one_line_error(result, EXIT_CANNOT_START, f"127.0.0.1:{port}", "in use")


def corrupt_book(path: Path) -> None:
    """A real book whose table pages are then overwritten with garbage."""
    db = sqlite3.connect(path)
    db.execute("PRAGMA application_id = 1094864945")  # what the server writes
    db.execute("PRAGMA user_version = 1")
    db.execute(
        "CREATE TABLE book (name TEXT PRIMARY KEY NOT NULL, entry TEXT NOT NULL) WITHOUT ROWID"
    )
    db.executemany("INSERT INTO book VALUES (?, ?)", [(f"n{i}", "e" * 200) for i in range(200)])
    db.commit()
    db.close()
    with path.open("r+b") as file:
        file.seek(4096 * 2)
        file.write(b"\xde\xad\xbe\xef" * 2048)


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda p: p.write_text("just some text, not SQLite\n" * 100), ["not a database"]),
        (lambda p: p.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4000), []),
        (corrupt_book, ["corrupt"]),
        (lambda p: p.mkdir(), ["directory"]),
        (
            lambda p: sqlite3.connect(p).execute("CREATE TABLE t (x)").connection.commit(),
            ["another program"],
        ),
    ],
    ids=["text-file", "garbage-header", "corrupt-pages", "directory", "foreign-sqlite"],
)
def test_unusable_db_is_one_line_and_status_1(
    tmp_path: Path, make: Callable[[Path], object], words: list[str]
) -> None:
    db = tmp_path / "book.sqlite3"
    make(db)
    result = run_server("--port", "0", "--db", str(db), cwd=tmp_path)
    assert_one_line_error(result, EXIT_CANNOT_START, str(db), *words)


def test_db_in_a_missing_directory_is_one_line_and_status_1(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where a directory should be")
    result = run_server("--port", "0", "--db", str(blocker / "book.sqlite3"), cwd=tmp_path)
    assert_one_line_error(result, EXIT_CANNOT_START, "book.sqlite3")


def test_db_in_use_by_another_server_is_one_line_and_status_1(
    start_server: StartServer, tmp_path: Path
) -> None:
    server = start_server()
    result = run_server("--port", "0", "--db", str(server.db), cwd=tmp_path)
    assert_one_line_error(result, EXIT_CANNOT_START, "locked")
    assert server.running
