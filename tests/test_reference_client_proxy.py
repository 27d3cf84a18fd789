"""``abp-client proxy`` and ``abp-client replay`` (issue 12, the checking proxy).

The judging (``reference_client.watch``) is tested in-process with time passed
in; the proxy itself runs as a real subprocess on 127.0.0.1 port 0 between
real peers: the tutorial-style menu client and server, the reference client
and server, scripted servers, and raw sockets.
"""

from __future__ import annotations

import contextlib
import json
import select
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from client_process import client_env, run_client
from scripted_server import Peer, ScriptedServer, read_line, read_until_eof

from conformance.harness.process import ServerProcess, reference_server_command
from reference_client.watch import MAX_PENDING, Book, Watch

TIMEOUT = 10.0
TUTORIAL = "conformance.corpus.tutorial"
MENU_CLIENT = [sys.executable, "-m", f"{TUTORIAL}.addressbook_client"]


# ------------------------------------------------------------------ judging


def kinds(sightings: list) -> list[str]:
    return [s.kind if s.kind != "violation" else f"!{s.requirement}" for s in sightings]


def test_watch_decodes_and_times_an_exchange() -> None:
    watch = Watch(1, Book())
    assert kinds(watch.from_client(b"fnd:alice\n", 1.0)) == ["request"]
    seen = watch.from_server(b"OK: 12 High St\n", 1.25)
    assert kinds(seen) == ["answer"]
    assert seen[0].latency == pytest.approx(0.25)
    assert seen[0].render() == "+1.2500s #1 << OK: 12 High St\\n  (250.00 ms)"


def test_watch_names_violations_on_either_side() -> None:
    watch = Watch(2, Book())
    assert kinds(watch.from_server(b"OK\n", 0.0)) == ["answer", "!ABP-FRAME-1"]  # no request
    # A request with no LF, taken by the server as one (it answered).
    assert kinds(watch.from_client(b"fnd:x", 0.1)) == []
    seen = watch.from_server(b"Entry for x", 0.2)
    assert kinds(seen) == ["request", "!ABP-FRAME-2"]
    assert seen[1].party == "client"
    # However long it waits, an answer with no LF is not ended by silence
    # (ABP-FRAME-14): the close ends it (ABP-FRAME-8), and says so.
    assert watch.deadline() is None
    assert kinds(watch.server_closed(5.0)) == [
        "answer",
        "!ABP-FRAME-1",
        "!ABP-RESP-1",
        "close",
    ]


def test_a_slow_answer_is_one_answer() -> None:
    watch = Watch(1, Book())
    watch.from_client(b"fnd:slow\n", 0.0)
    assert watch.from_server(b"OK: par", 0.1) == []
    assert watch.deadline() is None  # a pause of any length mid-answer is no fault
    assert kinds(watch.from_server(b"tial\n", 30.0)) == ["answer"]


def test_a_request_with_no_lf_is_ended_by_silence() -> None:
    """ABP-FRAME-6: as a server reads it; and the client is at fault (ABP-FRAME-2)."""
    watch = Watch(1, Book())
    assert watch.from_client(b"fnd:x", 1.0) == []
    deadline = watch.deadline()
    assert deadline == pytest.approx(1.1)
    assert kinds(watch.expire(deadline)) == ["request", "!ABP-FRAME-2"]


def test_watch_accepts_a_busy_refusal_before_any_request() -> None:
    watch = Watch(1, Book())
    assert kinds(watch.from_server(b"ERROR: Server busy\n", 0.0)) == ["answer"]
    assert kinds(watch.server_closed(0.1)) == ["close"]


def test_watch_judges_the_answer_to_an_invalid_request() -> None:
    watch = Watch(1, Book())
    assert kinds(watch.from_client(b"bogus\nfnd:\xff\n", 0.0)) == [
        "request",
        "!ABP-FRAME-2",
        "request",
        "!ABP-FRAME-2",
    ]
    assert kinds(watch.from_server(b"ERROR: Malformed request\n", 0.1)) == ["answer"]
    seen = watch.from_server(b"OK: ?\n", 0.2)  # should have been "Invalid UTF-8"
    assert kinds(seen) == ["answer", "!ABP-RESP-3"]


def test_a_fnd_that_misses_an_acknowledged_write_on_another_connection() -> None:
    """ABP-DUR-4: the Book is shared by every connection of one proxy."""
    book = Book()
    writer, reader = Watch(1, book), Watch(2, book)
    writer.from_client(b"add:alice,12 High St\n", 0.0)
    writer.from_server(b"OK\n", 0.1)
    reader.from_client(b"fnd:alice\n", 0.2)
    seen = reader.from_server(b"ERROR: No entry for alice\n", 0.3)
    assert kinds(seen) == ["answer", "!ABP-DUR-4"]
    assert "add:alice,12 High St" in seen[1].text
    # A write sent meanwhile makes either state acceptable: no violation.
    reader.from_client(b"fnd:alice\n", 0.4)
    writer.from_client(b"rem:alice\n", 0.45)
    assert kinds(reader.from_server(b"ERROR: No entry for alice\n", 0.5)) == ["answer"]
    writer.from_server(b"OK\n", 0.55)
    reader.from_client(b"fnd:alice\n", 0.6)
    assert kinds(reader.from_server(b"OK: 12 High St\n", 0.7)) == ["answer", "!ABP-DUR-4"]


def test_watch_stops_judging_past_its_bound() -> None:
    """A client that pipelines without end cannot make the proxy hold every
    request: past MAX_PENDING unanswered, the connection is only forwarded."""
    watch = Watch(1, Book())
    watch.from_client(b"fnd:x\n" * MAX_PENDING, 0.0)
    seen = watch.from_client(b"fnd:y\n", 0.1)
    assert kinds(seen) == ["note"]
    assert str(MAX_PENDING) in seen[0].text
    assert watch.from_server(b"OK: x\n", 0.2) == []
    assert watch.deadline() is None


# ------------------------------------------------------------ the proxy


class ProxyProcess:
    """``abp-client proxy`` as a subprocess on 127.0.0.1 port 0, stopped by PID."""

    def __init__(self, upstream: int, *extra: str) -> None:
        argv = [sys.executable, "-m", "reference_client", "proxy", "--listen", "127.0.0.1:0"]
        argv += ["--upstream", f"127.0.0.1:{upstream}", *extra]
        self.process = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=client_env(),
            text=True,
            encoding="utf-8",
        )
        assert self.process.stderr is not None
        ready, _, _ = select.select([self.process.stderr], [], [], TIMEOUT)
        assert ready, "the proxy did not say where it listens"
        first = self.process.stderr.readline()
        assert first.startswith("abp-client proxy: listening on 127.0.0.1:"), first
        self.port = int(first.split("127.0.0.1:")[1].split(",")[0])
        self.stdout = ""
        self.stderr = ""

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            out, err = self.process.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, err = self.process.communicate(timeout=TIMEOUT)
        self.stdout, self.stderr = out, err
        assert self.process.returncode == 0, err
        assert "Traceback" not in err
        return out


@pytest.fixture
def proxies() -> Iterator[list[ProxyProcess]]:
    started: list[ProxyProcess] = []
    yield started
    for proxy in started:
        with contextlib.suppress(AssertionError):
            proxy.stop()


@pytest.fixture
def reference(tmp_path: Path) -> Iterator[ServerProcess]:
    with ServerProcess(reference_server_command("--db", str(tmp_path / "book.sqlite3"))) as server:
        yield server


@pytest.fixture
def tutorial_server(tmp_path: Path) -> Iterator[ServerProcess]:
    command = [sys.executable, "-m", f"{TUTORIAL}.addressbook_server"]
    command += ["--host", "{host}", "--port", "{port}", "--book", str(tmp_path / "book.json")]
    with ServerProcess(command) as server:
        yield server


def test_proxy_between_the_tutorial_menu_client_and_server(
    tutorial_server: ServerProcess, proxies: list[ProxyProcess]
) -> None:
    """The tutorial's programs still talk through the proxy (bytes unchanged),
    and every place they break the spec is named, on the side at fault."""
    proxy = ProxyProcess(tutorial_server.port)
    proxies.append(proxy)
    menu = "1\nbob\n1\nRoad\nYork\n0190\n3\nbob\n4\n"
    client = subprocess.run(
        [*MENU_CLIENT, "--host", "127.0.0.1", "--port", str(proxy.port)],
        input=menu,
        capture_output=True,
        text=True,
        timeout=TIMEOUT * 2,
        check=False,
    )
    assert client.returncode == 0, client.stderr
    assert "Entry for bob added" in client.stdout
    assert "1 Road, York, 0190" in client.stdout
    out = proxy.stop()
    assert "#1 >> add:bob,1 Road, York, 0190\n" in out
    assert "#1 !! ABP-FRAME-2 (client) request with no LF" in out
    assert "#1 << Entry for bob added" in out
    assert "#1 !! ABP-FRAME-1 (server) answer with no LF" in out
    assert "#1 !! ABP-RESP-1 (server) not one of section 4's forms" in out
    assert "#2 >> fnd:bob\n" in out
    assert "#2 << 1 Road, York, 0190" in out
    assert "2 connection(s)" in proxy.stderr


def test_proxy_between_the_reference_pair_json_record_and_replay(
    reference: ServerProcess, proxies: list[ProxyProcess], tmp_path: Path
) -> None:
    recording = tmp_path / "session.jsonl"
    proxy = ProxyProcess(reference.port, "--json", "--record", str(recording))
    proxies.append(proxy)
    via = ["--server", f"127.0.0.1:{proxy.port}"]
    assert run_client(*via, "add", "ann", "1 Road").returncode == 0
    found = run_client(*via, "fnd", "ann")
    assert (found.returncode, found.stdout) == (0, "1 Road\n")
    assert run_client(*via, "fnd", "nobody").returncode == 1
    out = proxy.stop()
    records = [json.loads(line) for line in out.splitlines()]
    assert not [r for r in records if r["event"] == "violation"], out
    answers = [r for r in records if r["event"] == "answer"]
    assert [r["text"] for r in answers] == [
        "OK\\n",
        "OK: 1 Road\\n",
        "ERROR: No entry for nobody\\n",
    ]
    assert all(0 <= r["latency_ms"] < 5000 for r in answers)
    assert {r["conn"] for r in records} == {1, 2, 3}
    # The same bytes to the same server: the same answers.
    same = run_client("--server", f"127.0.0.1:{reference.port}", "replay", str(recording))
    assert same.returncode == 0, same.stdout + same.stderr
    assert "3 answer(s) recorded, 0 differ" in same.stderr
    # To a server that does not have ann any more: the fnd's answer differs.
    assert run_client("--server", f"127.0.0.1:{reference.port}", "rem", "ann").returncode == 0
    records_only = [json.loads(x) for x in recording.read_text(encoding="utf-8").splitlines()]
    fnd_only = [records_only[0], *(r for r in records_only[1:] if r["conn"] == 2)]
    partial = tmp_path / "fnd-only.jsonl"
    partial.write_text("".join(json.dumps(r) + "\n" for r in fnd_only), encoding="utf-8")
    differ = run_client("--server", f"127.0.0.1:{reference.port}", "replay", str(partial))
    assert differ.returncode == 1
    assert differ.stdout == (
        "#2 answer 1 (to 'fnd:ann\\n'): recorded 'OK: 1 Road\\n', "
        "got 'ERROR: No entry for ann\\n'\n"
    )


def test_proxy_sees_a_stale_read_across_connections(proxies: list[ProxyProcess]) -> None:
    """ABP-DUR-4: a server that acknowledges an add and then does not find it."""

    def forgetful(conn: Peer) -> None:
        while line := read_line(conn):
            if line.startswith(b"fnd:"):
                conn.sendall(b"ERROR: No entry for " + line[4:].rstrip(b"\r\n") + b"\n")
            else:
                conn.sendall(b"OK\n")

    server = ScriptedServer(forgetful)
    try:
        proxy = ProxyProcess(server.port)
        proxies.append(proxy)
        via = ["--server", f"127.0.0.1:{proxy.port}"]
        assert run_client(*via, "add", "carl", "x").returncode == 0
        assert run_client(*via, "fnd", "carl").returncode == 1
        out = proxy.stop()
    finally:
        server.stop()
    assert "#2 !! ABP-DUR-4 (server) fnd:carl did not see 'add:carl,x' acknowledged on #1" in out


def test_proxy_keeps_concurrent_connections_apart_and_bytes_unchanged(
    proxies: list[ProxyProcess],
) -> None:
    """Two connections open at once, their lines interleaved: each #N keeps its own
    requests and answers; every byte arrives unchanged, a half-close passed on."""

    def echo(conn: Peer) -> None:
        conn.sendall(read_until_eof(conn))

    upstream = socket.socket()
    upstream.bind(("127.0.0.1", 0))
    upstream.listen(8)
    upstream.settimeout(TIMEOUT)
    try:
        proxy = ProxyProcess(upstream.getsockname()[1])
        proxies.append(proxy)
        first = socket.create_connection(("127.0.0.1", proxy.port), timeout=TIMEOUT)
        up_first, _ = upstream.accept()
        second = socket.create_connection(("127.0.0.1", proxy.port), timeout=TIMEOUT)
        up_second, _ = upstream.accept()
        for sock in (up_first, up_second):
            sock.settimeout(TIMEOUT)
        odd = bytes(range(256)).replace(b"\n", b"") + b"\n"
        first.sendall(b"fnd:one\n")
        second.sendall(b"fnd:two\n" + odd)
        assert recv_exactly(up_first, 8) == b"fnd:one\n"
        assert recv_exactly(up_second, 8 + len(odd)) == b"fnd:two\n" + odd
        up_second.sendall(b"OK: two\n")
        up_first.sendall(b"OK: one\n")
        assert recv_exactly(second, 8) == b"OK: two\n"
        assert recv_exactly(first, 8) == b"OK: one\n"
        first.shutdown(socket.SHUT_WR)
        assert up_first.recv(10) == b""  # the half-close reached the server
        up_first.sendall(b"late\n")
        assert recv_exactly(first, 5) == b"late\n"
        for sock in (first, second, up_first, up_second):
            sock.close()
        # Whatever the proxy forwarded it has judged and printed in the same
        # turn of its loop, before it can see the SIGTERM of stop().
        out = proxy.stop()
    finally:
        upstream.close()
    assert "#1 >> fnd:one\\n\n" in out
    assert "#2 >> fnd:two\\n\n" in out
    assert "#2 << OK: two\\n" in out
    assert "#1 << OK: one\\n" in out
    assert "#1 !! ABP-FRAME-1 (server) answer to no request" in out  # the "late\n"


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def test_proxy_says_when_the_upstream_refuses(proxies: list[ProxyProcess]) -> None:
    nobody = socket.socket()
    nobody.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
    port = nobody.getsockname()[1]
    try:
        proxy = ProxyProcess(port)
        proxies.append(proxy)
        result = run_client("--server", f"127.0.0.1:{proxy.port}", "fnd", "x")
        out = proxy.stop()
    finally:
        nobody.close()
    assert result.returncode == 3  # closed (or reset) before an answer
    assert f"#1 -- upstream 127.0.0.1:{port}: connection refused\n" in out


def test_proxy_usage_errors() -> None:
    for args, words in (
        (["proxy"], "--listen"),
        (["proxy", "--listen", "2008"], "is a port, not an address"),
        (["proxy", "--listen", "127.0.0.1:0", "--upstream", "2007"], "is a port, not an address"),
        (["proxy", "--listen", "127.0.0.1:0", "--upstream", "7801:2007"], "is a number"),
        (["proxy", "--listen", "127.0.0.1:0", "--tls"], "--tls"),
        (["replay", "/nonexistent/recording"], "cannot read"),
    ):
        result = run_client(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert words in result.stderr
        assert len(result.stderr.splitlines()) == 1


def test_replay_refuses_a_file_that_is_not_a_recording(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.jsonl"
    bogus.write_text('{"hello": 1}\n', encoding="utf-8")
    result = run_client("--server", "127.0.0.1:9", "replay", str(bogus))
    assert result.returncode == 2
    assert "not an abp-client recording" in result.stderr


def test_replay_reads_a_recording_into_steps_and_answers() -> None:
    """Unterminated requests and answers (the tutorial's way) count as lines."""
    from reference_client.replay import parse

    records = [
        {"conn": 1, "from": "client", "data": "fnd:a"},
        {"conn": 2, "from": "client", "data": "fnd:b\\nfnd:c\\n"},
        {"conn": 1, "from": "server", "data": "No entry found for a"},
        {"conn": 1, "from": "client", "eof": True},
        {"conn": 2, "from": "server", "data": "ERROR: No entry for b\\nERR"},
        {"conn": 2, "from": "server", "data": "OR: No entry for c\\n"},
        {"conn": 1, "from": "server", "eof": True},
    ]
    first, second = parse(records)
    assert first.requests == [b"fnd:a"]
    assert first.answers == [b"No entry found for a"]
    assert [(s.data, s.answers_before) for s in first.steps] == [(b"fnd:a", 0), (None, 1)]
    assert second.requests == [b"fnd:b\n", b"fnd:c\n"]
    assert second.answers == [b"ERROR: No entry for b\n", b"ERROR: No entry for c\n"]
    with pytest.raises(ValueError, match="bad record"):
        parse([{"conn": 1, "from": "nobody", "data": ""}])


def test_a_request_split_across_segments_is_no_fault() -> None:
    """An answer to an earlier request while the next one is half sent: the
    half is not taken for a request with no LF."""
    watch = Watch(1, Book())
    watch.from_client(b"fnd:a\nfnd:b", 0.0)
    assert kinds(watch.from_server(b"ERROR: No entry for a\n", 0.01)) == ["answer"]
    assert kinds(watch.from_client(b"\n", 0.02)) == ["request"]
    assert kinds(watch.from_server(b"ERROR: No entry for b\n", 0.03)) == ["answer"]
