"""``reference_server.connection`` in process: its phases, driven through a
fake transport (a test double of asyncio's transport: the methods the
connection calls, and a record of what it did), with the real ``Server``
bookkeeping and a real SQLite book in ``tmp_path``. No socket, no process:
each test runs its own event loop, and waits on conditions with a deadline.
"""

from __future__ import annotations

import asyncio
import errno
import logging
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from reference_server.connection import (
    MAX_LINGERING,
    SLICE,
    TRANSITIONS,
    TURN_BUDGET,
    Cause,
    Connection,
    Phase,
)
from reference_server.server import Server
from reference_server.settings import Settings
from reference_server.store import Store

TIMEOUT = 5.0


class FakeTransport(asyncio.Transport):
    """What the connection calls on a transport, recorded. ``close``/``abort``
    end the connection as asyncio does: ``connection_lost`` on the next turn."""

    def __init__(self, peer: tuple[str, int] = ("127.0.0.1", 40000)) -> None:
        super().__init__()
        self.peer = peer
        self.protocol: asyncio.Protocol | None = None
        self.written = bytearray()
        self.reading = True
        self.closing = False
        self.aborted = False
        self.eof_written = False
        self.peer_gone = False  # write_eof fails: the client closed or reset first
        self.buffered = 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": self.peer}.get(name, default)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        assert not self.closing, "write after close"
        self.written += data

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        if self.peer_gone:
            raise OSError(errno.ENOTCONN, "Transport endpoint is not connected")
        self.eof_written = True

    def is_reading(self) -> bool:
        return self.reading and not self.closing

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self._end()

    def abort(self) -> None:
        self.aborted = True
        self._end()

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def _end(self) -> None:
        if not self.closing:
            self.closing = True
            assert self.protocol is not None
            asyncio.get_running_loop().call_soon(self.protocol.connection_lost, None)

    def lines(self) -> list[bytes]:
        return [line + b"\n" for line in bytes(self.written).split(b"\n")[:-1]]


async def until(condition: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    """Run the loop until ``condition()`` holds; fail after ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.001)


class Bench:
    """A real ``Server`` (not listening) over a real store; connections made on demand."""

    def __init__(self, server: Server) -> None:
        self.server = server

    def connect(
        self, peer: tuple[str, int] = ("127.0.0.1", 40000)
    ) -> tuple[Connection, FakeTransport]:
        connection = Connection(self.server, asyncio.get_running_loop())
        transport = FakeTransport(peer)
        transport.protocol = connection
        connection.connection_made(transport)
        return connection, transport


Scenario = Callable[[Bench], Awaitable[None]]


def run(tmp_path: Path, scenario: Scenario, **settings: Any) -> None:
    async def main() -> None:
        store = Store.open(tmp_path / "book.sqlite3")
        store.start()
        try:
            await scenario(Bench(Server(Settings(**settings), store)))
        finally:
            await store.close()

    coroutine: Coroutine[Any, Any, None] = main()
    asyncio.run(coroutine)


# ------------------------------------------------------------------ the table


def test_every_live_phase_ends_in_closed_when_lost() -> None:
    for phase, moves in TRANSITIONS.items():
        if phase is not Phase.CLOSED:
            assert moves[Cause.LOST] is Phase.CLOSED, phase
    assert TRANSITIONS[Phase.CLOSED] == {}


def test_the_docstring_table_is_the_table() -> None:
    """The table at the top of the module says what TRANSITIONS holds."""
    from reference_server import connection

    doc = connection.__doc__ or ""
    rows = doc.split("phase           cause              next phase\n")[1].split("\n\n")[0]
    written: dict[tuple[Phase, Cause], Phase] = {}
    for row in rows.splitlines():
        *phase, cause, after = row.split()
        phases = (
            [p for p in Phase if p is not Phase.CLOSED] if phase[0] == "any" else [Phase[phase[0]]]
        )
        for each in phases:
            written[each, Cause[cause]] = Phase[after]
    table = {(p, c): after for p, moves in TRANSITIONS.items() for c, after in moves.items()}
    assert written == table


def test_a_cause_the_table_lacks_is_a_bug(tmp_path: Path) -> None:
    async def scenario(bench: Bench) -> None:
        connection, _ = bench.connect()
        assert connection.phase is Phase.OPEN
        with pytest.raises(RuntimeError, match="OPEN: no transition on ADMIT"):
            connection._move(Cause.ADMIT)

    run(tmp_path, scenario)


# ------------------------------------------------------------ the phases


def test_open_answers_and_end_of_stream_drains_then_closes(tmp_path: Path) -> None:
    async def scenario(bench: Bench) -> None:
        connection, transport = bench.connect()
        assert connection.phase is Phase.OPEN
        assert connection.number == 1
        connection.data_received(b"add:ann,1 High St\nfnd:ann\nfnd:bob\n")
        await until(lambda: len(transport.lines()) == 3)
        assert transport.lines() == [b"OK\n", b"OK: 1 High St\n", b"ERROR: No entry for bob\n"]
        assert connection.eof_received() is True
        await until(lambda: connection.phase is Phase.CLOSED)
        assert not transport.aborted
        assert bench.server.active == 0
        assert not bench.server.connections

    run(tmp_path, scenario)


def test_end_of_stream_behind_the_inbox_is_ending_until_the_inbox_is_handled(
    tmp_path: Path,
) -> None:
    async def scenario(bench: Bench) -> None:
        connection, transport = bench.connect()
        requests = b"fnd:x\n" * 1000  # more than a SLICE: goes to the inbox
        connection.data_received(requests + b"fnd:last")
        assert connection.eof_received() is True
        assert connection.phase is Phase.ENDING
        await until(lambda: connection.phase is Phase.CLOSED)
        lines = transport.lines()
        assert lines[:1000] == [b"ERROR: No entry for x\n"] * 1000
        assert lines[1000:] == [b"ERROR: No entry for last\n"]  # ABP-FRAME-5

    run(tmp_path, scenario)


def test_draining_keeps_the_connection_until_its_answers_are_written(tmp_path: Path) -> None:
    """Shutdown with a change in flight, then the peer's end of stream: the OK
    still goes out before the close."""

    async def scenario(bench: Bench) -> None:
        connection, transport = bench.connect()
        connection.data_received(b"add:dee,3 Oak Rd\n")
        connection.shut_down()
        assert connection.phase is Phase.DRAINING  # the add waits for its commit
        assert connection.eof_received() is True
        await until(lambda: connection.phase is Phase.CLOSED)
        assert transport.lines() == [b"OK\n"]

    run(tmp_path, scenario)


def test_past_the_limit_refused_answers_busy_and_lingers(tmp_path: Path) -> None:
    async def scenario(bench: Bench) -> None:
        first, _ = bench.connect()
        second, transport = bench.connect(("127.0.0.1", 40001))
        assert first.phase is Phase.OPEN
        assert second.phase is Phase.REFUSED
        assert not second.admitted
        assert transport.written == b"ERROR: Server busy\n"
        assert transport.eof_written
        second.data_received(b"fnd:x\n")  # read and dropped
        assert transport.written == b"ERROR: Server busy\n"
        assert second.eof_received() is False  # let the transport close
        assert bench.server.active == 1

    run(tmp_path, scenario, max_conns=1)


def test_refused_connections_linger_at_most_max_lingering_at_once(tmp_path: Path) -> None:
    """A flood of connects past the limit: the first MAX_LINGERING refused
    linger for their answer; the next get the busy line and are closed at
    once, so the flood holds no more descriptors than that. One gone frees a
    place to linger."""

    async def scenario(bench: Bench) -> None:
        bench.connect()
        refused = [bench.connect(("127.0.0.1", 41000 + i)) for i in range(MAX_LINGERING + 2)]
        lingering = [t for _, t in refused if t.eof_written and not t.closing]
        closed = [t for _, t in refused if t.closing]
        assert len(lingering) == MAX_LINGERING
        assert len(closed) == 2
        assert all(t.written == b"ERROR: Server busy\n" for _, t in refused)
        await until(lambda: all(c.phase is Phase.CLOSED for c, _ in refused[-2:]))
        assert bench.server.lingering() == MAX_LINGERING
        first, transport = refused[0]
        transport.close()  # the client read its answer and went
        await until(lambda: first.phase is Phase.CLOSED)
        _, again = bench.connect(("127.0.0.1", 42000))
        assert again.eof_written
        assert not again.closing  # a place to linger was free again
        assert bench.server.active == 1

    run(tmp_path, scenario, max_conns=1)


def test_refusing_a_client_already_gone_is_no_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 10 item 5: write_eof on a reset socket raised out of connection_made."""

    async def scenario(bench: Bench) -> None:
        bench.connect()
        connection = Connection(bench.server, asyncio.get_running_loop())
        transport = FakeTransport(("127.0.0.1", 40001))
        transport.protocol = connection
        transport.peer_gone = True
        connection.connection_made(transport)  # must not raise
        assert transport.aborted
        await until(lambda: connection.phase is Phase.CLOSED)

    with caplog.at_level(logging.DEBUG):
        run(tmp_path, scenario, max_conns=1)
    assert not [r for r in caplog.records if r.exc_info], caplog.text


def test_per_address_limit_refuses_the_same_address_only(tmp_path: Path) -> None:
    async def scenario(bench: Bench) -> None:
        assert bench.connect(("127.0.0.1", 1))[0].phase is Phase.OPEN
        assert bench.connect(("127.0.0.1", 2))[0].phase is Phase.OPEN
        assert bench.connect(("127.0.0.1", 3))[0].phase is Phase.REFUSED
        assert bench.connect(("::1", 4, 0, 0))[0].phase is Phase.OPEN
        assert bench.server.per_host == {"127.0.0.1": 2, "::1": 1}

    run(tmp_path, scenario, max_conns=10, max_conns_per_ip=2)


def test_shutdown_answers_a_legacy_request_then_closes(tmp_path: Path) -> None:
    async def scenario(bench: Bench) -> None:
        connection, transport = bench.connect()
        connection.data_received(b"add:cy,9 Elm Rd\nfnd:cy")  # no LF: legacy, quiet period 10 s
        connection.shut_down()
        assert connection.phase in (Phase.DRAINING, Phase.CLOSING, Phase.CLOSED)
        connection.data_received(b"fnd:late\n")  # after shutdown: dropped
        await until(lambda: connection.phase is Phase.CLOSED)
        assert transport.lines() == [b"OK\n", b"OK: 9 Elm Rd\n"]

    run(tmp_path, scenario, quiet_period=10.0)


# --------------------------------------------------------- timers


def test_line_timeout_closes_a_line_that_never_ends(tmp_path: Path) -> None:
    async def scenario(bench: Bench) -> None:
        connection, transport = bench.connect()
        connection.data_received(b"add:slow,")  # quiet period 10 s: not a legacy request
        assert connection.phase is Phase.OPEN
        await until(lambda: connection.phase is Phase.CLOSED)
        assert transport.written == b""  # nothing answered: the line never ended

    run(tmp_path, scenario, quiet_period=10.0, line_timeout=0.05)


def test_line_timeout_spares_a_legacy_request_ended_by_the_quiet_period(
    tmp_path: Path,
) -> None:
    async def scenario(bench: Bench) -> None:
        connection, transport = bench.connect()
        connection.data_received(b"fnd:old")  # the tutorial's client: no LF
        await until(lambda: transport.written == b"ERROR: No entry for old\n")
        loop = asyncio.get_running_loop()
        later = loop.time() + 0.2  # four line timeouts
        await until(lambda: loop.time() > later)
        assert connection.phase is Phase.OPEN
        connection.data_received(b"fnd:again\n")
        assert transport.lines()[-1] == b"ERROR: No entry for again\n"

    run(tmp_path, scenario, quiet_period=0.02, line_timeout=0.05)


def test_line_timeout_counts_from_the_line_in_progress(tmp_path: Path) -> None:
    """Chunks that each end one line and begin the next: no line lasts long,
    however long the connection lasts (found classifying mutants: the line's
    start was kept from the first unfinished line, so such a client was
    closed at the line timeout with a request unanswered, against ABP-CONN-1)."""

    async def scenario(bench: Bench) -> None:
        connection, transport = bench.connect()
        loop = asyncio.get_running_loop()
        connection.data_received(b"fnd:a0")
        for i in range(1, 11):  # ten chunks 0.02 s apart: 0.2 s, four line timeouts
            later = loop.time() + 0.02
            await until(lambda: loop.time() > later)  # noqa: B023 (used at once)
            connection.data_received(f"\nfnd:a{i}".encode())
            assert connection.phase is Phase.OPEN, f"closed after chunk {i}"
        connection.data_received(b"\n")
        assert transport.lines() == [f"ERROR: No entry for a{i}\n".encode() for i in range(11)]

    run(tmp_path, scenario, quiet_period=10.0, line_timeout=0.05)


def test_idle_timeout_closes(tmp_path: Path) -> None:
    async def scenario(bench: Bench) -> None:
        connection, transport = bench.connect()
        await until(lambda: connection.phase is Phase.CLOSED)
        assert not transport.aborted  # nothing unsent: a clean close

    run(tmp_path, scenario, idle_timeout=0.05)


# ------------------------------------------------ back-pressure and fairness


def test_a_client_that_does_not_read_stops_being_read(tmp_path: Path) -> None:
    async def scenario(bench: Bench) -> None:
        connection, transport = bench.connect()
        connection.pause_writing()
        assert not transport.reading  # we stop reading what we could not answer
        connection.data_received(b"fnd:x\n")
        await asyncio.sleep(0)
        assert transport.written == b""  # held in the inbox, not answered
        connection.resume_writing()
        await until(lambda: transport.written == b"ERROR: No entry for x\n")
        assert transport.reading

    run(tmp_path, scenario)


def test_one_turn_handles_at_most_the_budget_round_robin(tmp_path: Path) -> None:
    """Issue 10 item 7: fifty pipelining clients cannot make one loop turn long."""
    line = b"fnd:x\n"
    clients = 50

    async def scenario(bench: Bench) -> None:
        pairs = [bench.connect(("127.0.0.1", port)) for port in range(clients)]
        for connection, _ in pairs:
            connection.data_received(line * (4 * SLICE))  # 24 KiB each, to the inbox
        assert len(bench.server.turns) == clients
        bench.server.turns._run()  # one turn's worth, by hand
        answered = [len(transport.lines()) for _, transport in pairs]
        assert sum(answered) * len(line) <= TURN_BUDGET + SLICE
        visited = [n for n in answered if n]
        assert len(visited) == TURN_BUDGET // SLICE  # one slice each, in order
        assert max(answered) <= SLICE // len(line) + 1
        await until(lambda: all(len(t.lines()) == 4 * SLICE for _, t in pairs))

    run(tmp_path, scenario, max_conns=100)
