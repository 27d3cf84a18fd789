"""The client suite proves itself: the reference client passes, broken clients fail.

Every judgement here is a real ``python -m conformance run --client ...
--json PATH`` subprocess with a deadline (``harness.run_suite``), read through
its JSON report. The reference client must pass everything under both
contracts, and so must the corpus's control (a correct client written on raw
sockets, so the suite is not merely fitted to the reference one). Each broken
corpus client must FAIL the requirement its defect breaks (judged with
``--requirement``, which runs that requirement's tests only: fast). Then the
scripted server on its own (``ScriptedServer``) and ``conformance serve``.
"""

from __future__ import annotations

import os
import selectors
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conformance.corpus.clients.defects import DEFECTS, Defect
from conformance.corpus.servers.harness import SuiteRun, run_suite
from conformance.harness.process import free_port
from conformance.suites.client.listen import ipv6_loopback_available
from conformance.suites.client.scenarios import SCENARIOS, Book
from conformance.suites.client.scripted import ScriptedServer
from protocol import Add, Find

PY = shlex.quote(sys.executable)
#: The deadline of one suite run.
RUN_TIMEOUT = 120.0
#: Each client waits at most 1 s; the suite kills a client run at 2 x 1.5 s.
SUITE = ["--timeout", "1.5"]
REFERENCE = f"{PY} -m reference_client --host {{host}} --port {{port}} --timeout 1"
REFERENCE_ARGV = REFERENCE + " {op} -- {name} {entry}"
REFERENCE_MENU = REFERENCE + " shell"
TUTORIAL_MENU = (
    f"{PY} -m conformance.corpus.tutorial.addressbook_client --host {{host}} --port {{port}}"
)
BROKEN = [d for d in DEFECTS.values() if d.requirement]


def corpus_client(defect: str) -> str:
    return (
        f"{PY} -m conformance.corpus.clients --defect {shlex.quote(defect)} --timeout 1"
        " -- {host} {port} {op} {name} {entry}"
    )


def suite(tmp_path: Path, *args: str, workers: int = 1) -> SuiteRun:
    return run_suite(
        *args, *SUITE, "--workers", str(workers), json_path=tmp_path / "report.json",
        timeout=RUN_TIMEOUT,
    )  # fmt: skip


def assert_clean_pass(run: SuiteRun) -> None:
    """Exit 0, no FAIL, no WARN, tests really ran, and no traceback anywhere."""
    bad = run.with_outcome("FAIL", "WARN")
    assert run.returncode == 0, run.explain()
    assert not bad, run.explain()
    assert len(run.with_outcome("PASS")) >= 20, run.explain()
    assert run.report["verdict"] == "PASS", run.explain()
    assert "Traceback" not in run.stderr, run.stderr


# ------------------------------------------------------------ the controls


def test_reference_client_passes_the_argv_contract(tmp_path: Path) -> None:
    run = suite(tmp_path, "--client", REFERENCE_ARGV, workers=2)
    assert_clean_pass(run)
    ids = {rid for t in run.with_outcome("PASS") for rid in t["requirements"]}
    for rid in ("ABP-CLIENT-1", "ABP-CLIENT-4", "ABP-FRAME-7", "ABP-CONN-10", "ABP-REQ-13"):
        assert rid in ids, f"{rid} was not judged\n{run.explain()}"
    skipped = run.with_outcome("SKIP")
    assert all("menu contract" in t["skip_reason"] for t in skipped), run.explain()


def test_reference_shell_passes_the_menu_contract(tmp_path: Path) -> None:
    run = suite(tmp_path, "--client-menu", REFERENCE_MENU, workers=2)
    assert_clean_pass(run)
    ids = {rid for t in run.with_outcome("PASS") for rid in t["requirements"]}
    assert {"ABP-CLIENT-5", "ABP-CLIENT-6", "ABP-CLIENT-7"} <= ids, run.explain()


def test_correct_corpus_client_passes(tmp_path: Path) -> None:
    """The corpus's control: the suite is not fitted to the reference client."""
    assert_clean_pass(suite(tmp_path, "--client", corpus_client("correct"), workers=2))


def test_menu_client_on_a_fixed_listen_address(tmp_path: Path) -> None:
    """A menu client with its server's address built in: the scripted server
    listens where --listen says (tests take turns on it)."""
    port = free_port()
    client = f"{PY} -m reference_client --server 127.0.0.1:{port} --timeout 1 shell"
    run = suite(
        tmp_path, "--client-menu", client, "--listen", f"127.0.0.1:{port}",
        "--requirement", "ABP-CLIENT-5", "--requirement", "ABP-CLIENT-6", workers=2,
    )  # fmt: skip
    assert run.returncode == 0, run.explain()
    assert len(run.with_outcome("PASS")) == 2, run.explain()


# ----------------------------------------------------------- broken clients


@pytest.mark.parametrize("defect", BROKEN, ids=[d.name for d in BROKEN])
def test_broken_client_fails_on_its_requirement(defect: Defect, tmp_path: Path) -> None:
    if defect.requirement == "ABP-TRANSPORT-2" and not ipv6_loopback_available():
        pytest.skip("no IPv6 loopback: an IPv4-only client cannot be told apart")
    run = suite(
        tmp_path, "--client", corpus_client(defect.name), "--requirement", defect.requirement
    )
    assert run.report, f"no JSON report\n{run.explain()}"
    assert run.returncode == 1, f"{defect.name}: expected exit 1\n{run.explain()}"
    assert run.catches(defect.requirement), (
        f"{defect.name} ({defect.summary}) was not caught on {defect.requirement}; the suite "
        f"failed {sorted(run.failed_requirements())}\n" + run.explain(defect.requirement)
    )
    failed = run.with_outcome("FAIL")
    assert all(t["transcript"] for t in failed), "a failure without its transcript"
    assert "Traceback" not in run.stderr, run.stderr


def test_tutorial_client_fails_framing(tmp_path: Path) -> None:
    """The tutorial's client: no LF on its requests, one recv() per answer."""
    run = suite(
        tmp_path, "--client-menu", TUTORIAL_MENU,
        "--requirement", "ABP-FRAME-2", "--requirement", "ABP-FRAME-7", "--requirement",
        "ABP-CLIENT-5",
    )  # fmt: skip
    assert run.returncode == 1, run.explain()
    assert run.catches("ABP-FRAME-2"), run.explain("ABP-FRAME-2")
    assert run.catches("ABP-FRAME-7"), run.explain("ABP-FRAME-7")
    # ... and yet it builds the tutorial's add request exactly: not a wall of red.
    passed = {rid for t in run.with_outcome("PASS") for rid in t["requirements"]}
    assert "ABP-CLIENT-5" in passed, run.explain("ABP-CLIENT-5")


def test_bad_client_template_is_a_usage_error(tmp_path: Path) -> None:
    run = suite(tmp_path, "--client", f"{PY} -m reference_client {{op}} {{nope}}")
    assert run.returncode == 2, run.explain()
    assert "Traceback" not in run.stderr + run.stdout, run.stderr


# ------------------------------------------------- the scripted server alone


def _exchange(server: ScriptedServer, data: bytes, *, half_close: bool = False) -> bytes:
    with socket.create_connection((server.host, server.port), timeout=5.0) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        received = b""
        deadline = time.monotonic() + 5.0
        while b"\n" not in received and time.monotonic() < deadline:
            chunk = sock.recv(4096)
            if not chunk:
                break
            received += chunk
        return received


def test_scripted_server_judges_terminators() -> None:
    with ScriptedServer(book=Book({"x": "y: z"})) as server:
        assert _exchange(server, b"fnd:x\n") == b"OK: y: z\n"
        assert _exchange(server, b"fnd:x") == b"OK: y: z\n"  # taken after the quiet period
        assert _exchange(server, b"add:a,b\r\n") == b"OK: entry stored\n"
        assert server.wait_all_closed(2.0)
    assert [r.request for r in server.requests] == [Find("x"), Find("x"), Add("a", "b")]
    assert [r.terminated for r in server.requests] == [True, False, True]
    assert [v.requirement for v in server.violations] == ["ABP-FRAME-2"]


def test_scripted_server_maps_bad_lines_to_client_requirements() -> None:
    with ScriptedServer() as server:
        assert _exchange(server, b"fnd:\n") == b"ERROR: Malformed request\n"
        assert _exchange(server, b"hello\n") == b"ERROR: Malformed request\n"
        assert _exchange(server, b"fnd:a\rb\n") == b"ERROR: Malformed request\n"
        assert server.wait_all_closed(2.0)
    found = [v.requirement for v in server.violations]
    assert found == ["ABP-REQ-13", "ABP-FRAME-2", "ABP-REQ-13"]


def test_scripted_server_scenarios_cut_the_answer() -> None:
    with ScriptedServer(scenario=SCENARIOS["eof"], book=Book({"x": "y"})) as server:
        assert _exchange(server, b"fnd:x\n") == b"OK: y"  # no LF, then the end of the stream
    with ScriptedServer(scenario=SCENARIOS["long"]) as server:
        assert len(_exchange(server, b"fnd:x\n")) == 4001
    with ScriptedServer(scenario=SCENARIOS["close"]) as server:
        assert _exchange(server, b"fnd:x\n") == b""


@pytest.mark.skipif(not ipv6_loopback_available(), reason="no IPv6 loopback")
def test_scripted_server_listens_on_several_hosts_one_port() -> None:
    with ScriptedServer(hosts=("127.0.0.1", "::1")) as server:
        for host in ("127.0.0.1", "::1"):
            with socket.create_connection((host, server.port), timeout=5.0) as sock:
                sock.sendall(b"fnd:x\n")
                assert sock.recv(100).startswith(b"ERROR: No entry for x")


# ---------------------------------------------------------- conformance serve


def _read_until(process: subprocess.Popen[bytes], marker: bytes, timeout: float) -> bytes:
    """stdout of ``process`` up to a line holding ``marker`` (or the deadline)."""
    assert process.stdout is not None
    fd = process.stdout.fileno()
    seen = b""
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while marker not in seen and time.monotonic() < deadline:
            if selector.select(deadline - time.monotonic()):
                chunk = os.read(fd, 4096)
                if not chunk:
                    break
                seen += chunk
    return seen


@pytest.mark.parametrize("broken", [False, True])
def test_serve_prints_the_verdict_on_ctrl_c(broken: bool) -> None:
    port = free_port()
    argv = [sys.executable, "-m", "conformance", "serve", "--listen", f"127.0.0.1:{port}"]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as serve:
        try:
            assert b"listening on" in _read_until(serve, b"listening on", 15.0)
            client = [sys.executable, "-m", "reference_client", "--server", f"127.0.0.1:{port}"]
            done = subprocess.run([*client, "add", "ann", "1 Rd: x, y"], timeout=30, check=False)
            assert done.returncode == 0
            if broken:
                bad = corpus_client("no-terminator").replace("{host} {port}", f"127.0.0.1 {port}")
                cmd = shlex.split(bad.format(op="fnd", name="ann", entry=""))
                assert subprocess.run(cmd, timeout=30, check=False).returncode == 0
            serve.send_signal(signal.SIGINT)
            out, err = serve.communicate(timeout=30)
        finally:
            serve.kill()
    text = out.decode()
    assert 'c1 << "add:ann,1 Rd: x, y\\n"' in text, text
    assert "--- verdict ---" in text, text
    if broken:
        assert serve.returncode == 1, text + err.decode()
        assert "ABP-FRAME-2 (MUST)" in text, text
        assert "not terminated by LF" in text, text
    else:
        assert serve.returncode == 0, text + err.decode()
        assert "verdict: PASS" in text, text
    assert b"Traceback" not in err, err


def test_serve_usage_errors_exit_2() -> None:
    from conformance.suites.client.serve import main

    assert main(["--listen", "no-port-here"]) == 2
    assert main(["--entry", "missing-equals"]) == 2
    with pytest.raises(SystemExit) as exc:
        main(["--scenario", "no-such"])
    assert exc.value.code == 2
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        assert main(["--listen", f"127.0.0.1:{taken.getsockname()[1]}", "--duration", "1"]) == 2


def test_serve_duration_stops_by_itself(capsys: pytest.CaptureFixture[str]) -> None:
    from conformance.suites.client.serve import main

    assert main(["--listen", f"127.0.0.1:{free_port()}", "--duration", "0.3", "-q"]) == 0
    assert "nothing to judge" in capsys.readouterr().out
