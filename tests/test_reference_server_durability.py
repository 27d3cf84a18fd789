"""Section 6 with real crashes: every OK'd change survives SIGKILL and restart,
and the SQLite file stays sound (``PRAGMA integrity_check``)."""

from __future__ import annotations

import signal
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from protocol import Add, Error, Find, Ok, Remove

if TYPE_CHECKING:
    from conftest import Connect, StartServer


def integrity(db: Path) -> list[tuple[str]]:
    connection = sqlite3.connect(db)
    try:
        return connection.execute("PRAGMA integrity_check").fetchall()
    finally:
        connection.close()


@pytest.mark.parametrize("sync", ["normal", "full"])
def test_ok_survives_sigkill_right_after_it(
    start_server: StartServer, connect: Connect, sync: str
) -> None:
    """ABP-DUR-2: the change is written before the OK is sent."""
    server = start_server("--sync", sync)
    client = connect(server)
    assert client.request(Add("crash", "survivor ✓")) == Ok()
    assert client.request(Remove("never-there")) == Error("No entry for never-there")
    server.kill()
    assert integrity(server.db) == [("ok",)]
    server.start()
    assert connect(server).request(Find("crash")) == Ok("survivor ✓")


def test_every_ok_of_a_pipelined_burst_survives_sigkill(
    start_server: StartServer, connect: Connect
) -> None:
    """ABP-DUR-2 under load: kill while later adds are still in flight."""
    server = start_server()
    client = connect(server)
    client.send_raw(b"".join(b"add:k%d,v%d\n" % (i, i) for i in range(3000)))
    confirmed = 0
    while confirmed < 500:
        assert client.read_line() == b"OK\n"
        confirmed += 1
    server.kill()
    assert integrity(server.db) == [("ok",)]
    server.start()
    reader = connect(server)
    reader.send_raw(b"".join(b"fnd:k%d\n" % i for i in range(confirmed)))
    assert reader.read_lines(confirmed) == [b"OK: v%d\n" % i for i in range(confirmed)]


def test_restart_keeps_adds_replacements_and_removals(
    start_server: StartServer, connect: Connect
) -> None:
    """ABP-DUR-1."""
    server = start_server()
    client = connect(server)
    for request in (Add("a", "1"), Add("b", "2"), Add("a", "3"), Remove("b"), Add("c", "")):
        assert client.request(request) == Ok()
    assert server.stop() == 0
    server.start()
    client = connect(server)
    assert client.request(Find("a")) == Ok("3")
    assert client.request(Find("b")) == Error("No entry for b")
    assert client.request(Find("c")) == Ok("")


def test_sigterm_answers_requests_in_flight_then_exits_0(
    start_server: StartServer, connect: Connect
) -> None:
    """Shutdown finishes what was received: every answer, then the end of stream."""
    server = start_server()
    client = connect(server)
    client.send_raw(b"".join(b"add:t%d,%d\n" % (i, i) for i in range(300)) + b"fnd:t299")
    assert client.read_line() == b"OK\n"  # the server has read the burst
    assert server.process is not None
    server.process.send_signal(signal.SIGTERM)
    assert client.read_lines(300) == [b"OK\n"] * 299 + [b"OK: 299\n"]
    assert client.at_eof()
    assert server.process.wait(10) == 0
    assert integrity(server.db) == [("ok",)]
    server.start()
    assert connect(server).request(Find("t150")) == Ok("150")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_with_status_0_and_no_output(
    start_server: StartServer, connect: Connect, signum: int
) -> None:
    server = start_server()
    idle = connect(server)
    assert server.process is not None
    server.process.send_signal(signum)
    assert server.process.wait(10) == 0
    assert idle.at_eof()
    assert server.stderr_text() == ""


def test_the_book_is_a_wal_mode_sqlite_file(start_server: StartServer, connect: Connect) -> None:
    server = start_server()
    assert connect(server).request(Add("x", "y")) == Ok()
    server.stop()
    header = server.db.read_bytes()[:20]
    assert header.startswith(b"SQLite format 3\x00")
    assert header[18:20] == b"\x02\x02"  # read/write versions 2: WAL
