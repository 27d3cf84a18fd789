"""Many clients at once (section 5): no client holds up another, the limit,
the idle timeout, resets, and the order of pipelined answers under load."""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING

import pytest

from conformance.harness.process import wait_until
from protocol import Add, Find, Ok

if TYPE_CHECKING:
    from conftest import Connect, LineClient, ReferenceServer, StartServer

SERVER_BUSY = b"ERROR: Server busy\n"


def model_answers(requests: list[tuple[str, str, str]]) -> list[bytes]:
    """What a correct server answers to ``requests`` on a fresh book."""
    book: dict[str, str] = {}
    answers = []
    for op, name, entry in requests:
        if op == "add":
            book[name] = entry
            answers.append(b"OK\n")
        elif name not in book:
            answers.append(b"ERROR: No entry for " + name.encode() + b"\n")
        elif op == "rem":
            del book[name]
            answers.append(b"OK\n")
        else:
            answers.append(b"OK: " + book[name].encode() + b"\n")
    return answers


def test_pipelined_mix_on_few_names_matches_a_model(
    start_server: StartServer, connect: Connect
) -> None:
    """ABP-CONN-2 with ABP-DUR-4: a fnd sees exactly the changes sent before it
    on its connection, even when later changes commit in the same batch."""
    server = start_server()
    rng = random.Random(2007)
    requests = [
        (rng.choice(["add", "rem", "fnd", "fnd"]), rng.choice("abcde"), str(rng.randrange(1000)))
        for _ in range(600)
    ]
    wire = b"".join(
        (b"add:%s,%s\n" % (name.encode(), entry.encode()))
        if op == "add"
        else b"%s:%s\n" % (op.encode(), name.encode())
        for op, name, entry in requests
    )
    client = connect(server)
    client.send_raw(wire)
    assert client.read_lines(len(requests)) == model_answers(requests)


def test_two_hundred_concurrent_connections_all_served(
    start_server: StartServer, connect: Connect
) -> None:
    """ABP-CONN-4 (at least 100), ABP-DUR-3: every change of every client kept."""
    server = start_server()
    clients = [connect(server) for _ in range(200)]
    for i, client in enumerate(clients):
        client.send_raw(b"add:c%d,entry %d\n" % (i, i))
    for client in clients:
        assert client.read_line() == b"OK\n"
    for i, client in enumerate(clients):
        client.send_raw(b"fnd:c%d\n" % ((i + 1) % 200))
    for i, client in enumerate(clients):
        assert client.read_line() == b"OK: entry %d\n" % ((i + 1) % 200)


def test_concurrent_pipelined_writers_keep_every_change(
    start_server: StartServer, connect: Connect
) -> None:
    """ABP-DUR-3: 20 connections x 50 pipelined adds of distinct names."""
    server = start_server()
    writers = [connect(server) for _ in range(20)]
    for w, client in enumerate(writers):
        client.send_raw(b"".join(b"add:w%d-%d,%d\n" % (w, i, i) for i in range(50)))
    for client in writers:
        assert client.read_lines(50) == [b"OK\n"] * 50
    reader = connect(server)
    reader.send_raw(b"".join(b"fnd:w%d-%d\n" % (w, i) for w in range(20) for i in range(50)))
    assert reader.read_lines(1000) == [b"OK: %d\n" % i for _ in range(20) for i in range(50)]


def test_stalled_and_silent_clients_do_not_delay_others(
    start_server: StartServer, connect: Connect
) -> None:
    """ABP-CONN-5: half a line with a long quiet period, and a silent client."""
    server = start_server("--quiet-ms", "30000")
    silent = connect(server)
    stalled = connect(server)
    stalled.send_raw(b"add:stalled,half a li")
    other = connect(server)
    started = time.monotonic()
    assert other.request(Add("other", "served")) == Ok()
    assert other.request(Find("other")) == Ok("served")
    assert time.monotonic() - started < 2.0  # the stalled line waits 30 s
    stalled.send_raw(b"ne\n")
    assert stalled.read_line() == b"OK\n"
    assert silent.exchange(b"fnd:stalled\n") == b"OK: half a line\n"


def test_a_client_that_does_not_read_does_not_delay_others(
    start_server: StartServer, connect: Connect
) -> None:
    """ABP-CONN-5: a client floods fnd of a 4 KB entry and never reads."""
    server = start_server()
    setup = connect(server)
    assert setup.request(Add("big", "b" * 4000)) == Ok()
    flooder = connect(server)
    flooder.sock.setblocking(False)
    request = b"fnd:big\n" * 1000
    sent = 0
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and sent < 40 * len(request):
        try:
            sent += flooder.sock.send(request)
        except BlockingIOError:
            break  # the server stopped reading it: flow control works
    other = connect(server)
    started = time.monotonic()
    for _ in range(20):
        assert other.request(Find("big")) == Ok("b" * 4000)
    assert time.monotonic() - started < 2.0


def test_reset_mid_request_does_not_hurt_the_server(
    start_server: StartServer, connect: Connect
) -> None:
    """ABP-CONN-6: resets mid-line, with changes in flight, and right away."""
    server = start_server()
    for wire in (b"add:reset,partial", b"".join(b"add:r%d,x\n" % i for i in range(200)), b""):
        victim = connect(server)
        victim.send_raw(wire)
        victim.reset()
    client = connect(server)
    assert client.request(Add("after", "reset")) == Ok()
    # A reset that reaches the server after the bytes can look like a half-close
    # (Linux then reports end of stream, not ECONNRESET): either answer is fine.
    assert client.exchange(b"fnd:reset\n") in (b"ERROR: No entry for reset\n", b"OK: partial\n")
    client.send_raw(b"".join(b"fnd:r%d\n" % i for i in range(200)))
    for line in client.read_lines(200):
        assert line in (b"OK: x\n", b"ERROR: No entry for " + line[20:-1] + b"\n")
    assert server.running
    server.stop()
    assert "Traceback" not in server.stderr_text()


def connect_served(connect: Connect, server: ReferenceServer, timeout: float = 5.0) -> LineClient:
    """A connection the server counts as served (not refused as busy).

    The readiness probe of ``ServerProcess`` and earlier closes are seen by
    the server a moment after they happen, so a refusal is retried."""
    found: list[LineClient] = []

    def attempt() -> bool:
        client = connect(server)
        answer = client.exchange(b"fnd:probe\n")
        if answer == SERVER_BUSY:
            client.close()
            return False
        assert answer == b"ERROR: No entry for probe\n"
        found.append(client)
        return True

    assert wait_until(attempt, timeout)
    return found[0]


def test_past_max_conns_the_server_answers_busy_and_closes(
    start_server: StartServer, connect: Connect
) -> None:
    """ABP-CONN-8: ERROR: Server busy, then the connection is closed."""
    server = start_server("--max-conns", "2")
    first = connect_served(connect, server)
    second = connect_served(connect, server)
    refused = connect(server)
    assert refused.read_line() == SERVER_BUSY
    assert refused.at_eof()
    # a refused client that talks first still gets the answer
    talker = connect(server)
    talker.send_raw(b"fnd:x\n")
    assert talker.read_line() == SERVER_BUSY
    first.close()
    third = connect_served(connect, server)
    assert second.exchange(b"fnd:x\n") == b"ERROR: No entry for x\n"
    assert third.exchange(b"fnd:x\n") == b"ERROR: No entry for x\n"


def test_idle_connection_is_closed_after_the_idle_timeout(
    start_server: StartServer, connect: Connect
) -> None:
    """ABP-CONN-7."""
    server = start_server("--idle-timeout", "0.3")
    idle = connect(server)
    started = time.monotonic()
    assert idle.at_eof()
    assert time.monotonic() - started >= 0.25
    fresh = connect(server)
    assert fresh.exchange(b"fnd:x\n") == b"ERROR: No entry for x\n"


def test_idle_timeout_zero_never_closes(start_server: StartServer, connect: Connect) -> None:
    server = start_server("--idle-timeout", "0")
    client = connect(server, timeout=0.5)
    with pytest.raises(TimeoutError):  # nothing arrives, not even the end of stream
        client.read_line()
    client.sock.settimeout(5)
    assert client.exchange(b"fnd:x\n") == b"ERROR: No entry for x\n"
