"""The conformance suite proves itself on a corpus of deliberately broken servers.

Each corpus server (``conformance.corpus.servers``) is a correct ABP/1 server
with one defect injected; the real ``conformance run`` must exit 1 on it and
FAIL the requirement that defect breaks. The controls keep the corpus honest:
the same server without a defect, and the reference server, pass everything
with no failure and no warning, so a failure really comes from the defect.
The tutorial-style programs must get a useful report, not a wall of red.

Each run is a real subprocess with a deadline. A defect that shows on a live
server is judged with ``--server HOST:PORT`` (we start it); one that needs a
restart or a SIGKILL is judged with ``--server-cmd`` (the suite starts it).
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

import pytest

from conformance.corpus.servers.defects import DEFECTS, Defect
from conformance.corpus.servers.harness import (
    SuiteRun,
    corpus_argv,
    corpus_command,
    run_suite,
    suite_args,
)
from conformance.harness.process import ServerProcess

#: The deadline of one suite run (a run normally takes a few seconds).
RUN_TIMEOUT = 150.0
#: Worker processes per run: 0 runs the tests inside the suite's own process,
#: the cheapest for short runs; the outer pytest-xdist run parallelises across
#: servers.
WORKERS = 0
#: The suite's bound on every wait against a broken server: a defect that
#: makes the server silent costs this much per wait.
BROKEN_TIMEOUT = "2"
#: ABP_CORPUS_FULL=1 runs the whole suite on every broken server instead of
#: only the tests of its intended requirement(s): the same assertions, more
#: minutes (see the docstring of ``judge``).
FULL = os.environ.get("ABP_CORPUS_FULL") == "1"

BROKEN = [d for d in DEFECTS.values() if not d.name.startswith("correct")]
TUTORIAL = "conformance.corpus.tutorial"
PY = shlex.quote(sys.executable)


def judge(defect: Defect, tmp_path: Path) -> SuiteRun:
    """Run the suite on one corpus server, the way its defect can be seen.

    By default only the tests of the defect's intended requirement(s) run
    (``--requirement ID``): the verdict on that requirement is the same as in a
    full run, in a fraction of the time. The controls below run everything.
    """
    report = tmp_path / "report.json"
    extra = ["--timeout", BROKEN_TIMEOUT]
    if not FULL:
        for rid in defect.requirements:
            extra += ["--requirement", rid]
    if defect.needs_server_cmd:
        args = suite_args(defect, workers=WORKERS)
        return run_suite(*args, *extra, json_path=report, timeout=RUN_TIMEOUT)
    data = tmp_path / "data"
    with ServerProcess([*corpus_argv(defect.name), "--data", str(data)]) as server:
        args = suite_args(defect, f"{server.host}:{server.port}", workers=WORKERS)
        return run_suite(*args, *extra, json_path=report, timeout=RUN_TIMEOUT)


def suite(tmp_path: Path, *args: str) -> SuiteRun:
    """A suite run with this module's workers, report path and deadline."""
    args = ("--workers", str(WORKERS), *args) if "--workers" not in args else args
    return run_suite(*args, json_path=tmp_path / "report.json", timeout=RUN_TIMEOUT)


#: The only tests that may skip in a clean pass: the TLS profile (section 9)
#: over plain TCP, and the limit test of a server with no connection limit.
TLS_ONLY = "conformance/suites/server/test_tls.py::"
NO_LIMIT = (
    "conformance/suites/server/test_connections.py::"
    "test_a_connection_past_the_limit_is_refused_busy"
)


def assert_clean_pass(run: SuiteRun) -> None:
    """Exit 0, every test PASS (no FAIL, no WARN, no SKIP but the TLS tests on a
    plain target), no Python warning."""
    assert not run.with_outcome("FAIL", "WARN"), run.explain()
    assert run.returncode == 0, run.explain()
    assert run.report["verdict"] == "PASS", run.explain()
    skipped = [
        f"{t['nodeid']}: {t['skip_reason']}"
        for t in run.with_outcome("SKIP")
        if not t["nodeid"].startswith(TLS_ONLY) and t["nodeid"] != NO_LIMIT
    ]
    assert not skipped, "\n".join(skipped)
    assert run.with_outcome("PASS"), run.explain()
    assert not run.report.get("warnings"), run.report["warnings"]


@pytest.mark.parametrize("defect", BROKEN, ids=[d.name for d in BROKEN])
def test_suite_fails_broken_server_on_its_requirement(defect: Defect, tmp_path: Path) -> None:
    run = judge(defect, tmp_path)
    assert run.report, f"no JSON report\n{run.explain()}"
    assert run.returncode == 1, f"{defect.name}: expected exit 1\n{run.explain()}"
    assert run.report["exit_code"] == 1, run.explain()
    missed = [rid for rid in defect.requirements if not run.catches(rid)]
    assert not missed, (
        f"{defect.name} ({defect.summary}) was not caught on {' '.join(missed)}; "
        f"the suite failed {sorted(run.failed_requirements())} instead\n" + run.explain(missed[0])
    )
    assert "Traceback" not in run.stderr, run.stderr


RESTART_DEFECTS = [d for d in BROKEN if d.needs_server_cmd]


@pytest.mark.parametrize("defect", RESTART_DEFECTS, ids=[d.name for d in RESTART_DEFECTS])
def test_restart_defects_are_skipped_with_a_reason_without_server_cmd(
    defect: Defect, tmp_path: Path
) -> None:
    """Without ``--server-cmd`` the suite cannot restart or kill the server:
    the tests that could see the defect are reported SKIP, saying why, never
    silently passed."""
    focus = [arg for rid in defect.requirements for arg in ("--requirement", rid)]
    with ServerProcess([*corpus_argv(defect.name), "--data", str(tmp_path / "data")]) as server:
        run = suite(tmp_path, "--server", f"{server.host}:{server.port}", *focus)
    covering = [t for t in run.tests if set(defect.requirements) & set(t["requirements"])]
    assert covering, run.explain()
    for test in covering:
        assert test["outcome"] in ("SKIP", "PASS"), run.explain()
    skipped = [t for t in covering if t["outcome"] == "SKIP"]
    assert skipped, run.explain()
    assert all("--server-cmd" in t["skip_reason"] for t in skipped), run.explain()
    assert not run.catches(defect.requirements[0]), run.explain()


@pytest.mark.parametrize("name", ["correct", "correct-counter"])
def test_suite_passes_corpus_server_without_defect(name: str, tmp_path: Path) -> None:
    """The corpus's own base server is correct: every failure above is its defect's."""
    defect = DEFECTS[name]
    run = suite(tmp_path, *suite_args(defect, workers=WORKERS))
    assert_clean_pass(run)


@pytest.mark.parametrize("service", ["abp", "counter"])
def test_reference_server_passes_everything_without_warning(service: str, tmp_path: Path) -> None:
    run = suite(tmp_path, "--service", service)
    assert_clean_pass(run)
    assert run.report["target"].get("embedded") is True, run.explain()


def test_tutorial_addressbook_server_fails_framing_with_readable_report(tmp_path: Path) -> None:
    command = (
        f"{PY} -m {TUTORIAL}.addressbook_server --host {{host}} --port {{port}}"
        " --book {tmpdir}/book.json"
    )
    # two workers: against a one-client-at-a-time legacy server the run is
    # nearly all waiting (42 s with one worker, 16 s with two, same verdicts)
    run = suite(tmp_path, "--workers", "2", "--timeout", BROKEN_TIMEOUT, "--server-cmd", command)
    assert run.returncode == 1, run.explain()
    # auto framing found what the server speaks, and said so
    assert run.report["target"]["framing"] == "legacy", run.explain()
    # its framing (no LF), its split(':') and its one-client-at-a-time fail...
    for rid in ("ABP-FRAME-1", "ABP-REQ-1", "ABP-CONN-5"):
        assert run.catches(rid), f"{rid} not failed\n{run.explain(rid)}"
    # ...but the semantic tests still ran in its framing: some of them pass
    semantic = [
        t
        for t in run.with_outcome("PASS")
        if any(r.startswith(("ABP-REQ-", "ABP-RESP-")) for r in t["requirements"])
    ]
    assert semantic, f"no REQ/RESP test passed on the tutorial server\n{run.explain()}"
    assert "verdict:" in run.stdout
    assert "Traceback" not in run.stdout + run.stderr


def test_tutorial_counter_server_fails_counter_framing(tmp_path: Path) -> None:
    command = f"{PY} -m {TUTORIAL}.counter_server --host {{host}} --port {{port}}"
    run = suite(
        tmp_path, "--timeout", BROKEN_TIMEOUT, "--service", "counter", "--server-cmd", command
    )
    assert run.returncode == 1, run.explain()
    assert run.catches("ABP-COUNTER-4"), run.explain("ABP-COUNTER-4")
    assert "Traceback" not in run.stdout + run.stderr


def test_every_defect_names_known_requirements() -> None:
    """The registry is sound: IDs exist in docs/spec.md, names are unique CLI words."""
    from protocol import requirements

    known = requirements.catalogue()
    for defect in DEFECTS.values():
        assert all(rid in known for rid in defect.requirements), defect
        assert defect.name == shlex.quote(defect.name), defect.name
    assert len(BROKEN) >= 15
    assert corpus_command("x").startswith(PY)
