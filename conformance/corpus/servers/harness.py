"""Running ``conformance run`` on a server as a real subprocess and reading its verdict.

The suite's self-test (``tests/test_corpus_servers.py``) and its stability
test use this: one run is ``python -m conformance run ... --json PATH`` with a
deadline, and ``SuiteRun`` answers the questions those tests ask of the JSON
report (``conformance.reports.json_report`` documents its schema): which
requirements did the suite blame, and how to show a person why not.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformance.corpus.servers.defects import Defect
from conformance.corpus.servers.registry import Variant

#: The idle timeout corpus servers run with, told to the suite so that it
#: can judge ABP-CONN-7 too (seconds; short, so that the test is quick).
IDLE_TIMEOUT = "1"


def corpus_argv(defect: str, python: str = sys.executable, *, kind: str = "--defect") -> list[str]:
    """argv (with ``{host}``/``{port}``) to start a corpus server outside the
    suite; ``kind="--variant"`` starts one of the acquittal corpus."""
    return [python, "-m", "conformance.corpus.servers", kind, defect,
            "--host", "{host}", "--port", "{port}", "--idle-timeout", IDLE_TIMEOUT]  # fmt: skip


def corpus_command(defect: str, python: str = sys.executable) -> str:
    """The ``--server-cmd`` template of one corpus server; ``{tmpdir}`` is a
    fresh directory per instance the suite starts."""
    return shlex.join(corpus_argv(defect, python)) + " --data {tmpdir}"


def variant_argv(variant: Variant, python: str = sys.executable) -> list[str]:
    """argv (with ``{host}``/``{port}``) of an acquittal-corpus server."""
    return [*corpus_argv(variant.name, python, kind="--variant"), *variant.server_args]


def variant_suite_args(
    variant: Variant, address: str | None = None, *, workers: int = 1
) -> list[str]:
    """The suite's arguments for one acquittal server: ``--server ADDRESS``
    (already running), else ``--server-cmd`` (the suite starts it), with
    everything the suite must be told about the server's configuration."""
    args = ["--workers", str(workers), "--idle-timeout", IDLE_TIMEOUT, *variant.suite_args]
    if variant.service == "counter":
        args += ["--service", "counter"]
    if address is None:
        return [*args, "--server-cmd", shlex.join(variant_argv(variant)) + " --data {tmpdir}"]
    return [*args, "--server", address]


@dataclass
class SuiteRun:
    """One finished run: its exit status, console output and JSON report."""

    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    report: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def tests(self) -> list[dict[str, Any]]:
        return list(self.report.get("tests", []))

    def with_outcome(self, *outcomes: str) -> list[dict[str, Any]]:
        return [t for t in self.tests if t["outcome"] in outcomes]

    @staticmethod
    def blamed(test: dict[str, Any]) -> list[str]:
        """The requirements a failed test holds broken: the one its failure
        named, else every requirement it is marked with."""
        failed = test.get("failed_requirement")
        return [failed] if failed else list(test.get("requirements", []))

    def failed_requirements(self) -> set[str]:
        """Blamed by a FAIL, or by a WARN (a broken SHOULD)."""
        return {rid for t in self.with_outcome("FAIL", "WARN") for rid in self.blamed(t)}

    def catches(self, requirement: str) -> bool:
        """Some test FAILed (WARNed, for a SHOULD), blaming ``requirement``."""
        return requirement in self.failed_requirements()

    def outcomes(self) -> dict[str, str]:
        """test id -> outcome: what must not change from run to run."""
        return {t["nodeid"]: t["outcome"] for t in self.tests}

    # -- explaining a surprise to a person
    def explain(self, requirement: str | None = None, limit: int = 4000) -> str:
        lines = [f"command: {shlex.join(self.argv)}", f"exit status: {self.returncode}"]
        summary = self.report.get("summary")
        if summary:
            lines.append(f"summary: {summary}; target: {self.report.get('target')}")
        if requirement is not None:
            covering = [t for t in self.tests if requirement in t.get("requirements", [])]
            lines.append(f"tests marked {requirement}: {len(covering)}")
            lines += [f"  {t['outcome']:5} {t['nodeid']}  {_first(t)}" for t in covering]
        failing = self.with_outcome("FAIL", "WARN")
        lines.append(f"FAIL/WARN tests: {len(failing)}")
        lines += [
            f"  {t['outcome']:5} {t['nodeid']} blames {' '.join(self.blamed(t))}: {_first(t)}"
            for t in failing
        ]
        if not self.report:
            lines += ["no JSON report; console output:", self.stdout[-limit:], self.stderr[-limit:]]
        elif self.stderr.strip():
            lines += ["stderr:", self.stderr[-limit:]]
        return "\n".join(lines)


def _first(test: dict[str, Any]) -> str:
    text = str(test.get("message") or test.get("skip_reason") or "")
    return text.strip().splitlines()[0][:160] if text.strip() else ""


_OUTER_PYTEST = {
    "PYTEST_ADDOPTS",
    "PYTEST_CURRENT_TEST",
    "PYTEST_XDIST_TESTRUNUID",
    "PYTEST_XDIST_WORKER",
    "PYTEST_XDIST_WORKER_COUNT",
}


def run_suite(
    *args: str, json_path: Path, timeout: float = 120.0, python: str = sys.executable
) -> SuiteRun:
    """``python -m conformance run ARGS --json JSON_PATH``. Past ``timeout`` the
    run and every process it started (servers run in their own sessions) are
    killed by PID and ``subprocess.TimeoutExpired`` is raised."""
    argv = [python, "-m", "conformance", "run", *args, "--json", str(json_path)]
    # the run is a user's run, not a part of the pytest session that starts it
    env = {k: v for k, v in os.environ.items() if k not in _OUTER_PYTEST}
    started = time.monotonic()
    with subprocess.Popen(
        argv,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
    ) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            for pid in [*descendants(process.pid), process.pid]:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            process.communicate()
            raise
    report: dict[str, Any] = {}
    if json_path.exists():
        report = json.loads(json_path.read_text(encoding="utf-8"))
    return SuiteRun(argv, process.returncode, stdout, stderr, report, time.monotonic() - started)


def descendants(pid: int) -> list[int]:
    """PIDs of every process below ``pid`` (Linux /proc; empty elsewhere)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rpartition(")")[2].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def suite_args(defect: Defect, address: str | None = None, workers: int = 1) -> list[str]:
    """The suite's arguments for one corpus server: ``--server ADDRESS`` when
    the defect shows on a live server, ``--server-cmd`` when it needs restarts."""
    args = ["--workers", str(workers), "--idle-timeout", IDLE_TIMEOUT]
    if defect.service == "counter":
        args += ["--service", "counter"]
    if defect.should:
        args += ["--strict"]
    if address is None:
        return [*args, "--server-cmd", corpus_command(defect.name)]
    return [*args, "--server", address]
