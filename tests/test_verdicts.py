"""The suite's verdicts acquit what the spec allows (issue 9 items 1 and 5).

Section 4: "When a line breaks more than one rule ..., any of the errors that
apply is a conforming answer." The suite judges an error answer against every
error that applies (``refusal``, from ``protocol.codec.applicable_errors``),
never against the reference server's check order. The proof is a real server
on 127.0.0.1 that checks UTF-8 before NUL (the reference checks NUL first),
judged by the real ``conformance run``.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import select
import shlex
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conformance.corpus.servers.base import Peer, Server
from conformance.corpus.servers.harness import corpus_argv, run_suite
from conformance.harness.lines import LineOverflow
from conformance.harness.process import ServerProcess, accepts_connections, free_port, wait_until
from conformance.harness.timing import HOLDUP, PROCESS_EXIT, PROCESS_READY, STALL, TIMEOUT, budget
from conformance.harness.wire import Wire, WireClosed
from conformance.judging.session import line_matches, refusal, wire_form
from conformance.judging.verdict import RequirementFailed
from conformance.plugin import failure_text
from conformance.repeat import changed_verdicts
from conformance.repeat import render as render_flakes
from conformance.reports import BLOCKED, FAIL, PASS, SKIP, RunResult, TestRecord, console
from protocol import Error, Find, RemoteProtocolError, Request, Response
from protocol.codec import INVALID_UTF8, MALFORMED_REQUEST, encode_response, unrecognised

#: NUL and invalid UTF-8 in one line: the reported false alarm (ABP-FRAME-13
#: blamed on a server answering `Invalid UTF-8`).
BOTH = b"fnd:\xf4\x86\x00\xb7\x82"
RUN_TIMEOUT = 150.0


def test_a_line_breaking_two_rules_may_get_either_error() -> None:
    want = refusal(BOTH)
    assert want.errors == {Error(INVALID_UTF8), Error(MALFORMED_REQUEST)}
    assert line_matches(want, b"ERROR: Invalid UTF-8\n")
    assert line_matches(want, b"ERROR: Malformed request\r\n")
    assert not line_matches(want, b"ERROR: Malformed request")  # no LF
    assert not line_matches(want, b"ERROR: Unrecognised command: fnd\n")
    assert want.requirement == "ABP-FRAME-13"  # blamed only when neither comes


def test_a_refusal_shows_every_allowed_answer() -> None:
    shown = repr(refusal(b"Fnd:\xff"))
    assert '"ERROR: Invalid UTF-8\\n"' in shown
    assert " or " in shown
    assert wire_form(refusal(b"nope:x")) == encode_response(unrecognised("nope"))


def test_a_valid_request_is_no_refusal() -> None:
    with pytest.raises(ValueError, match="not a bad request"):
        refusal(b"fnd:x")


class Utf8First(Server):
    """Correct but for its check order: UTF-8 first, then the protocol's own."""

    def decode(self, line: bytes) -> Request:
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            raise RemoteProtocolError("not UTF-8", "ABP-FRAME-12", Error(INVALID_UTF8)) from None
        return super().decode(line)


@contextlib.contextmanager
def serving(server: Server) -> Iterator[int]:
    """``server`` on 127.0.0.1 in a thread of its own; yields its port."""
    port = free_port()
    loop = asyncio.new_event_loop()
    task: asyncio.Task[None] | None = None

    def run() -> None:
        nonlocal task
        asyncio.set_event_loop(loop)
        task = loop.create_task(server.serve("127.0.0.1", port))
        with contextlib.suppress(asyncio.CancelledError):
            loop.run_until_complete(task)
        loop.close()

    thread = threading.Thread(target=run, name="utf8-first", daemon=True)
    thread.start()
    try:
        listening = wait_until(lambda: accepts_connections("127.0.0.1", port), PROCESS_READY)
        assert listening, "the server did not listen"
        yield port
    finally:
        loop.call_soon_threadsafe(lambda: task.cancel() if task else None)
        thread.join(PROCESS_EXIT)
        assert not thread.is_alive()


#: the tests that judge error answers to bad lines
ERROR_TESTS = (
    "malformed_lines or byte_streams or error_answers or pipelined_errors"
    " or every_answer_is_exactly or nul_byte or invalid_utf8 or empty_line"
)


@pytest.mark.parametrize("seed", [0, 7])
def test_a_server_checking_utf8_before_nul_is_acquitted(tmp_path: Path, seed: int) -> None:
    with serving(Utf8First(quiet_period=0.1, idle_timeout=None)) as port:
        run = run_suite(
            "--server", f"127.0.0.1:{port}", "-n", "0", "--seed", str(seed), "-k", ERROR_TESTS,
            json_path=tmp_path / "report.json",
            timeout=RUN_TIMEOUT,
        )  # fmt: skip
    assert run.report, run.explain()
    assert len(run.tests) >= 10, run.explain()
    assert run.with_outcome("FAIL", "WARN") == [], run.explain()
    assert run.returncode == 0, run.explain()


# -- honest attribution (issue 9 item 5)
def _record(nodeid: str, ids: list[str], outcome: str, **kw: Any) -> TestRecord:
    return TestRecord(nodeid=f"t.py::{nodeid}", requirements=ids, outcome=outcome, **kw)


def test_a_requirement_whose_test_failed_elsewhere_is_blocked_never_skip() -> None:
    """FRAME-6's only test failed on FRAME-1 (the answer had no LF): FRAME-6
    was not judged, and its test did not skip either."""
    failed = _record("t", ["ABP-FRAME-6"], FAIL, failed_requirement="ABP-FRAME-1")
    rows = {row.id: row.status for row in RunResult([failed]).requirement_rows()}
    assert rows["ABP-FRAME-1"] == FAIL
    assert rows["ABP-FRAME-6"] == BLOCKED
    passed = _record("u", ["ABP-FRAME-6"], PASS)
    skipped = _record("v", ["ABP-FRAME-6"], SKIP)
    rows = {row.id: row.status for row in RunResult([failed, passed, skipped]).requirement_rows()}
    assert rows["ABP-FRAME-6"] == PASS  # judged by another of its tests
    rows = {row.id: row.status for row in RunResult([failed, skipped]).requirement_rows()}
    assert rows["ABP-FRAME-6"] == BLOCKED  # a skip is no verdict either
    assert "SKIP" not in {rows["ABP-FRAME-6"], rows["ABP-FRAME-1"]}


def test_a_selection_lists_only_what_was_selected_and_what_broke() -> None:
    """``--requirement ABP-REQ-1``: the tests also carry REQ-11 and RESP-4,
    which they judge only in part: not listed, unless a test found one broken."""
    tests = [
        _record("a", ["ABP-REQ-1", "ABP-REQ-11"], FAIL, failed_requirement="ABP-REQ-1"),
        _record("b", ["ABP-REQ-1", "ABP-RESP-4"], PASS),
        _record("c", ["ABP-REQ-1"], FAIL, failed_requirement="ABP-CONN-6"),
    ]
    result = RunResult(tests, complete=False, selected=("ABP-REQ-1",))
    rows = {row.id: row.status for row in result.requirement_rows()}
    assert rows == {"ABP-REQ-1": FAIL, "ABP-CONN-6": FAIL}
    section = RunResult(tests, complete=False, selected=("ABP-REQ",)).requirement_rows()
    assert {row.id for row in section} == {"ABP-REQ-1", "ABP-REQ-11", "ABP-CONN-6"}
    rendered = console.render(result, colour=False)
    assert "SKIP" not in rendered.split("Failures")[0]


@pytest.mark.parametrize("seed", [0, 2])  # 0 and 2: found in a pipelined batch
def test_the_state_machine_blames_a_trimmed_entry_on_resp_2_not_pipelining(
    tmp_path: Path, seed: int
) -> None:
    """A server that trims entries answers pipelined requests all, in order:
    ABP-CONN-2 holds; the entry found is not the one stored (ABP-RESP-2)."""
    argv = [*corpus_argv("trims-entries"), "--data", str(tmp_path / "data")]
    with ServerProcess(argv) as server:
        run = run_suite(
            "--server", f"{server.host}:{server.port}", "-n", "0", "--seed", str(seed),
            "-k", "random_operations",
            json_path=tmp_path / "report.json",
            timeout=RUN_TIMEOUT,
        )  # fmt: skip
    (test,) = run.tests
    assert test["outcome"] == "FAIL", run.explain()
    assert test["failed_requirement"] == "ABP-RESP-2", run.explain()


def _closed_by_the_server() -> WireClosed:
    """A real WireClosed: the server resets the connection, then the suite sends."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(PROCESS_EXIT)
        port = listener.getsockname()[1]
        wire = Wire("127.0.0.1", port, timeout=PROCESS_EXIT, name="c1").connect()
        accepted, _ = listener.accept()
        accepted.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        accepted.close()  # RST
        try:
            assert wire.sock is not None
            readable, _, _ = select.select([wire.sock], [], [], PROCESS_EXIT)
            assert readable, "the reset never arrived"
            wire.send(b"fnd:x\n")
        except WireClosed as exc:
            return exc
        finally:
            wire.close()
    raise AssertionError("the send did not fail")


def test_a_closed_connection_is_reported_as_what_it_means_on_the_wire() -> None:
    """Not ``WireClosed: send failed: [Errno 32] Broken pipe``: what happened,
    under the requirement the test was testing."""
    exc = _closed_by_the_server()
    assert exc.sending
    try:
        raise exc
    except WireClosed:
        info = pytest.ExceptionInfo[BaseException].from_current()
    text, requirement = failure_text(info, ["ABP-CONN-3", "ABP-REQ-9"])
    assert requirement == "ABP-CONN-3"
    assert "the server had closed the connection" in text
    for internal in ("WireClosed", "Errno", "Broken pipe", "reset by peer", "conformance."):
        assert internal not in text


def test_long_expected_and_actual_values_are_cut_like_transcripts() -> None:
    actual = b"OK: " + b"x" * 100_000 + b"\n"
    text = RequirementFailed("ABP-RESP-2", "long", expected=b"OK\n", actual=actual).render()
    assert len(text) < 2000
    assert f"{len(actual)} bytes, first 512 shown" in text
    text = RequirementFailed("ABP-RESP-2", "long", expected="y" * 10_000).render()
    assert len(text) < 2000
    assert "10002 characters" in text  # the repr, quotes included


# -- the flake hunt (issue 9 item 3)
def test_changed_verdicts_names_every_test_that_changed() -> None:
    runs = [
        RunResult([_record("a", ["ABP-REQ-1"], PASS), _record("b", ["ABP-REQ-2"], PASS)]),
        RunResult([_record("a", ["ABP-REQ-1"], PASS), _record("b", ["ABP-REQ-2"], PASS)]),
        RunResult(
            [
                _record("a", ["ABP-REQ-1"], PASS),
                _record("b", ["ABP-REQ-2"], FAIL, message="late answer"),
            ]
        ),
    ]
    (flake,) = changed_verdicts(runs)
    assert flake.nodeid == "t.py::b"
    assert flake.outcomes == (PASS, PASS, FAIL)
    shown = render_flakes([flake], 3)
    assert "PASS x2 (runs 1, 2)" in shown
    assert "FAIL x1 (runs 3)" in shown
    assert "late answer" in shown
    assert changed_verdicts(runs[:2]) == []


class Degrading(Server):
    """Correct until ``broken`` is set: then every lookup is answered wrongly."""

    broken = False

    async def execute(self, peer: Peer, request: Request) -> Response:
        if self.broken and isinstance(request, Find):
            return Error("broken")
        return await super().execute(peer, request)


def test_repeat_reports_a_verdict_that_changed_between_runs(tmp_path: Path) -> None:
    """``--repeat 2`` against one server that breaks once the second run starts:
    a progress line per repeat, the tests that changed named, exit 1."""
    server = Degrading(quiet_period=0.1, idle_timeout=None)
    with serving(server) as port:
        argv = [sys.executable, "-m", "conformance", "run", "--server", f"127.0.0.1:{port}",
                "-n", "0", "--repeat", "2", "-k", "missing_name"]  # fmt: skip
        with subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace"
        ) as process:
            assert process.stdout is not None
            lines: list[str] = []
            for line in process.stdout:  # ends when the run ends: bounded by its own waits
                lines.append(line)
                if line.startswith("repeat 2/2"):
                    server.broken = True
            status = process.wait(RUN_TIMEOUT)
    output = "".join(lines)
    assert status == 1, output
    first = re.search(r"^repeat 1/2: (\d+) tests, 0 failed", output, re.MULTILINE)
    assert first, output
    second = re.search(r"^repeat 2/2: (\d+) tests, (\d+) failed", output, re.MULTILINE)
    assert second, output
    assert second.group(1) == first.group(1)
    failed = int(second.group(2))
    assert failed >= 4, output  # the four missing-name lookups at least
    assert f"verdicts across 2 runs: {failed} test(s) changed" in output
    plain = "test_missing_name_is_answered_no_entry_for_name[plain]: "
    assert plain + "PASS x1 (runs 1), FAIL x1 (runs 2)" in output


def test_repeat_of_a_steady_target_changes_nothing(tmp_path: Path) -> None:
    with serving(Utf8First(quiet_period=0.1, idle_timeout=None)) as port:
        run = run_suite(
            "--server", f"127.0.0.1:{port}", "-n", "0", "--repeat", "3", "-k", "missing_name",
            json_path=tmp_path / "report.json",
            timeout=RUN_TIMEOUT,
        )  # fmt: skip
    assert run.returncode == 0, run.explain()
    assert run.stdout.count("verdict(s) changed so far") == 3
    assert "verdicts across 3 runs: identical" in run.stdout


def test_budgets_scale_with_the_timeout() -> None:
    """At the default --timeout a budget is its value; a longer --timeout
    lengthens it in proportion (a loaded machine); --timeout caps it."""
    assert budget(HOLDUP, TIMEOUT) == HOLDUP
    assert budget(HOLDUP, 2 * TIMEOUT) == 2 * HOLDUP
    assert budget(HOLDUP, 1.0) == 1.0
    assert budget(STALL, TIMEOUT / 2) == STALL


#: A correct argv client: CRLF requests, one byte per send() (issue 9 item 1).
BYTEWISE_CLIENT = """
import socket, sys
from conformance.corpus.clients.base import Client

class Bytewise(Client):
    terminator = b"\\r\\n"

    def connect(self):
        sock = super().connect()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def exchange(self, sock, data):
        for i in range(len(data)):
            sock.sendall(data[i : i + 1])
        return self.read_answer(sock)

host, port, op, name, *rest = sys.argv[1:]
sys.exit(Bytewise(host, int(port), 2.0).run(op, name, rest[0] if rest else ""))
"""


def test_the_scripted_server_accepts_crlf_requests_written_a_byte_at_a_time(
    tmp_path: Path,
) -> None:
    script = tmp_path / "bytewise_client.py"
    script.write_text(BYTEWISE_CLIENT)
    template = f"{shlex.quote(sys.executable)} {script} {{host}} {{port}} {{op}} {{name}} {{entry}}"
    run = run_suite(
        "--client", template, "-n", "0", "--requirement", "ABP-FRAME", "--requirement", "ABP-REQ",
        json_path=tmp_path / "report.json",
        timeout=RUN_TIMEOUT,
    )  # fmt: skip
    assert run.with_outcome("PASS"), run.explain()
    assert run.with_outcome("FAIL", "WARN") == [], run.explain()
    assert run.returncode == 0, run.explain()


def test_the_tutorial_server_gets_no_skip_for_requirements_whose_tests_failed(
    tmp_path: Path,
) -> None:
    """Against the tutorial-style server the tests of FRAME-6 and FRAME-11
    fail first on FRAME-1 and FRAME-10: those two are FAIL, the others
    BLOCKED (they were SKIP), and nothing else is listed."""
    command = (
        f"{shlex.quote(sys.executable)} -m conformance.corpus.tutorial.addressbook_server"
        " --host 127.0.0.1 --port {port} --book {tmpdir}/book.json"
    )
    run = run_suite(
        "--server-cmd", command, "-n", "0", "--timeout", "2",
        "--requirement", "ABP-FRAME-6", "--requirement", "ABP-FRAME-11",
        json_path=tmp_path / "report.json",
        timeout=RUN_TIMEOUT,
    )  # fmt: skip
    assert run.returncode == 1, run.explain()
    status = {row["id"]: row["status"] for row in run.report["requirements"]}
    assert status["ABP-FRAME-6"] == BLOCKED, status
    assert status["ABP-FRAME-11"] == BLOCKED, status
    assert SKIP not in status.values(), status
    assert set(status) <= {"ABP-FRAME-6", "ABP-FRAME-11"} | run.failed_requirements(), status


def test_an_overlong_answer_is_reported_on_the_framing_rule() -> None:
    with pytest.raises(LineOverflow) as overflow:
        raise LineOverflow(b"OK: xxxx", 10_000)
    info = pytest.ExceptionInfo[BaseException].from_exception(overflow.value)
    text, requirement = failure_text(info, ["ABP-REQ-6"])
    assert requirement == "ABP-FRAME-1"
    assert "LineOverflow" not in text
    assert "10000 bytes" in text
    assert failure_text(info, ["ABP-COUNTER-2"])[1] == "ABP-COUNTER-4"
