"""``python -m conformance``, as a user runs it: real subprocesses, real servers.

Every run here happens in a scratch directory holding a hostile ``pytest.ini``
and with a hostile ``PYTEST_ADDOPTS``: the suite must bring its own pytest
settings and ignore the ones of wherever it is run from.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conformance.harness.process import free_port
from protocol import requirements

RUN_TIMEOUT = 240  # a whole suite run; each of its waits is bounded far below this


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "pytest.ini").write_text("[pytest]\naddopts = --no-such-option\n")
    return tmp_path


def conformance(
    workdir: Path, *args: str, timeout: float = RUN_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "NO_COLOR"))}
    env["PYTEST_ADDOPTS"] = "--no-such-option"
    return subprocess.run(
        [sys.executable, "-m", "conformance", *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def assert_one_line_error(done: subprocess.CompletedProcess[str], *words: str) -> None:
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    for word in words:
        assert word in lines[0]


def test_run_against_the_embedded_reference_server_passes(workdir: Path) -> None:
    done = conformance(workdir, "run", "-n", "2")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr
    assert "framing: line (answers end with LF)" in done.stdout
    assert "verdict: PASS" in done.stdout
    assert " 0 failed, 0 warned" in done.stdout
    assert done.stderr == ""


def test_unreachable_server_is_exit_2_in_one_line(workdir: Path) -> None:
    port = free_port()  # nobody listens there
    done = conformance(workdir, "run", "--server", f"127.0.0.1:{port}", timeout=60)
    assert_one_line_error(done, "cannot connect", str(port))


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["run", "--no-such-flag"], ["unrecognized arguments"]),
        (["run", "--server", "nonsense"], ["HOST:PORT"]),
        (["run", "--server", "127.0.0.1:1", "--server-cmd", "x {port}"], ["not allowed"]),
        (["run", "--server-cmd", "server-without-port"], ["{port}"]),
        (["run", "--server-cmd", "x {port} {nonsense}"], ["{nonsense}"]),
        (["run", "--requirement", "ABP-NOPE-1"], ["ABP-NOPE-1"]),
        (["run", "-k", "and or"], ["-k"]),
        (["run", "--workers", "-3"], ["--workers"]),
        (["run", "--timeout", "0"], ["--timeout"]),
        (["run", "--json", "/nonexistent-dir/report.json"], ["/nonexistent-dir"]),
        (["frobnicate"], ["frobnicate"]),
        ([], ["COMMAND"]),
    ],
)
def test_wrong_arguments_are_exit_2_in_one_line(
    workdir: Path, args: list[str], words: list[str]
) -> None:
    assert_one_line_error(conformance(workdir, *args, timeout=60), *words)


def test_a_server_command_that_does_not_start_is_exit_2(workdir: Path) -> None:
    command = f"{sys.executable} -c 'import sys; sys.exit(7)' {{port}}"
    done = conformance(workdir, "run", "--server-cmd", command, timeout=60)
    assert_one_line_error(done, "status 7")


def test_help_documents_the_exit_codes(workdir: Path) -> None:
    done = conformance(workdir, "run", "--help", timeout=60)
    assert done.returncode == 0
    for text in ("exit status:", "  0  ", "  1  ", "  2  ", "  3  ", "--server-cmd", "{tmpdir}"):
        assert text in done.stdout


def test_reports_are_written_and_well_formed(workdir: Path) -> None:
    xml_path, json_path, html_path = (workdir / f"report.{ext}" for ext in ("xml", "json", "html"))
    done = conformance(
        workdir,
        "run",
        "-n", "1",
        "--requirement", "ABP-TRANSPORT-1",
        "--junit-xml", str(xml_path),
        "--json", str(json_path),
        "--html", str(html_path),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr

    data = json.loads(json_path.read_text(encoding="utf-8"))
    assert data["summary"]["tests"] == len(data["tests"]) > 0
    assert data["summary"]["failed"] == 0
    assert data["target"]["framing"] == "line"
    assert all(t["requirements"] == ["ABP-TRANSPORT-1"] for t in data["tests"])
    assert all(t["outcome"] == "PASS" for t in data["tests"])
    assert any(t["transcript_records"] for t in data["tests"])
    transcript_line = next(t["transcript"] for t in data["tests"] if t["transcript"]).splitlines()[
        0
    ]

    root = ET.parse(xml_path).getroot()
    cases = list(root.iter("testcase"))
    assert len(cases) == len(data["tests"])
    assert all(case.get("name", "").startswith("ABP-TRANSPORT-1 test_") for case in cases)
    props = [p.get("value") for p in root.iter("property") if p.get("name") == "requirements"]
    assert props == ["ABP-TRANSPORT-1"] * len(cases)

    page = html_path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert "http://" not in page
    assert "https://" not in page
    assert transcript_line.split(" -- ")[-1] in page  # e.g. "connected to 127.0.0.1:PORT"


def test_requirement_selects_the_tests_of_that_requirement(workdir: Path) -> None:
    report = workdir / "report.json"
    done = conformance(
        workdir, "run", "-n", "1", "--requirement", "ABP-REQ-1", "--json", str(report)
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr
    tests = json.loads(report.read_text(encoding="utf-8"))["tests"]
    assert tests
    assert all("ABP-REQ-1" in t["requirements"] for t in tests)
    assert "ABP-REQ-1 " in done.stdout
    assert "ABP-REQ-2 " not in done.stdout


def test_a_tutorial_style_server_is_probed_and_fails_on_framing(workdir: Path) -> None:
    """The tutorial's server: legacy framing detected, then a MUST fails: exit 1."""
    command = (
        f"{sys.executable} -m conformance.corpus.tutorial.addressbook_server"
        " --port {port} --book {tmpdir}/book.json"
    )
    report = workdir / "report.json"
    done = conformance(
        workdir, "run", "-n", "1", "--server-cmd", command, "--requirement", "ABP-REQ-1",
        "--json", str(report),
    )  # fmt: skip
    assert done.returncode == 1, done.stdout[-4000:] + done.stderr
    assert "framing: legacy (" in done.stdout
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data["target"]["framing"] == "legacy"
    assert data["summary"]["failed"] > 0
    (row,) = [r for r in data["requirements"] if r["id"] == "ABP-REQ-1"]
    assert row["status"] == "FAIL"


def test_list_prints_every_requirement(workdir: Path) -> None:
    done = conformance(workdir, "list", timeout=120)
    assert done.returncode == 0, done.stderr
    for rid in requirements.catalogue():
        assert rid in done.stdout


def test_list_json_names_the_covering_tests(workdir: Path) -> None:
    done = conformance(workdir, "list", "--json", "--service", "abp", timeout=120)
    assert done.returncode == 0, done.stderr
    rows = {row["id"]: row for row in json.loads(done.stdout)}
    assert set(rows) == {r.id for r in requirements.catalogue().values() if r.role == "server"}
    assert any("::test_" in t for t in rows["ABP-TRANSPORT-1"]["tests"])


# ------------------------------------------- the server's connection limit


def limited_server(limit: int) -> str:
    """A ``--server-cmd`` for the reference server refusing past ``limit``
    connections (from one address as from all)."""
    return (
        f"{sys.executable} -m reference_server --port {{port}} --db {{tmpdir}}/book.sqlite3"
        f" --idle-timeout 2 --max-conns {limit} --max-conns-per-ip {limit}"
    )


def test_a_server_with_a_limit_under_the_crowd_passes_with_two_workers(workdir: Path) -> None:
    """A server refusing past 150 connections, told so, judged by the whole
    suite on two workers: the crowd of 200 (ABP-CONN-4) and the limit test
    (ABP-CONN-8) have the shared server to themselves, so no test running
    beside them meets `ERROR: Server busy` (before: ABP-DUR-3 did, now and
    then)."""
    report = workdir / "report.json"
    done = conformance(
        workdir, "run", "--server-cmd", limited_server(150), "--idle-timeout", "2",
        "--max-conns", "150", "-n", "2", "--json", str(report),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr
    tests = json.loads(report.read_text(encoding="utf-8"))["tests"]
    limit_test = [t for t in tests if "past_the_limit" in t["nodeid"]]
    assert [t["outcome"] for t in limit_test] == ["PASS"]


@pytest.mark.parametrize(
    ("told", "why"),
    [
        ("151", "refused more with only 150 open"),  # the server refuses one early
        ("149", "connection 150 was served"),  # the server refuses one late
    ],
)
def test_a_limit_off_by_one_fails_abp_conn_8(workdir: Path, told: str, why: str) -> None:
    done = conformance(
        workdir, "run", "--server-cmd", limited_server(150), "--max-conns", told,
        "--requirement", "ABP-CONN-8", "-n", "1",
    )  # fmt: skip
    assert done.returncode == 1, done.stdout[-4000:] + done.stderr
    assert "FAIL ABP-CONN-8" in done.stdout
    assert why in done.stdout


def test_max_conns_is_bounded(workdir: Path) -> None:
    done = conformance(workdir, "run", "--max-conns", "5000", timeout=60)
    assert done.returncode == 2
    assert "--max-conns" in done.stderr
    assert "at most 1000" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
