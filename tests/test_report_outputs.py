"""``conformance.reports.outputs``: the report options of ``conformance run``
checked before the run, and everything done with the result after it."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import pytest
from test_report_formats import mixed_result

from conformance.reports.outputs import ReportProblem, add_options, check_tests, finish, prepare


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    add_options(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def test_every_report_is_written(tmp_path: Path) -> None:
    names = {"--junit-xml": "r.xml", "--json": "r.json", "--html": "r.html",
             "--markdown": "r.md", "--badge": "r.svg"}  # fmt: skip
    argv = ["--seed", "7"]
    for flag, name in names.items():
        argv += [flag, str(tmp_path / name)]
    args = parser().parse_args(argv)
    out = io.StringIO()
    status = finish(mixed_result(), args, ["run", *argv], out, prepare(args), colour=False)
    assert status == 1
    for name in names.values():
        assert (tmp_path / name).stat().st_size > 0
        assert f"report written: {tmp_path / name}" in out.getvalue()
    data = json.loads((tmp_path / "r.json").read_text("utf-8"))
    assert data["provenance"]["command"].startswith("conformance run --seed 7 --junit-xml")
    assert data["provenance"]["seed"] == 7
    assert "rerun: conformance run --seed 7 -n 0 --test" in out.getvalue()


def test_quiet_and_no_transcripts(tmp_path: Path) -> None:
    args = parser().parse_args(["-q"])
    out = io.StringIO()
    finish(mixed_result(), args, ["run", "-q"], out, prepare(args), colour=False)
    assert "rerun:" not in out.getvalue()
    args = parser().parse_args(["--no-transcripts"])
    out = io.StringIO()
    finish(mixed_result(), args, ["run"], out, prepare(args), colour=False)
    assert "rerun:" in out.getvalue()
    assert "transcript (time since" not in out.getvalue()


def test_a_baseline_turns_the_verdict(tmp_path: Path) -> None:
    baseline = tmp_path / "b.toml"
    baseline.write_text(
        '[[expected]]\nrequirement = "ABP-REQ-2"\nreason = "TODO: say why this fails, or fix it"\n',
        "utf-8",
    )
    args = parser().parse_args(["--baseline", str(baseline)])
    prepared = prepare(args)
    check_tests(prepared, ["conformance/suites/server/test_x.py::test_fail"])
    out = io.StringIO()
    assert finish(mixed_result(), args, ["run"], out, prepared, colour=False) == 0
    text = out.getvalue()
    assert "Expected by the baseline (1)" in text
    assert "Failures and warnings not in the baseline" in text  # the SHOULD warning
    assert "1 baseline entry has the placeholder reason" in text
    assert "verdict: PASS (no failure beyond those the baseline expects)" in text


def test_problems_are_found_before_the_run(tmp_path: Path) -> None:
    args = parser().parse_args(["--markdown", str(tmp_path / "no" / "s.md")])
    with pytest.raises(ReportProblem, match=r"--markdown .*: the directory does not exist"):
        prepare(args)
    bad = tmp_path / "b.toml"
    bad.write_text('[[expected]]\nrequirement = "ABP-NOPE-1"\nreason = "r"\n', "utf-8")
    with pytest.raises(ReportProblem, match="no requirement ABP-NOPE-1 in the spec"):
        prepare(parser().parse_args(["--baseline", str(bad)]))
    bad.write_text(
        '[[expected]]\ntest = "conformance/suites/server/test_x.py::test_nope"\nreason = "r"\n',
        "utf-8",
    )
    prepared = prepare(parser().parse_args(["--baseline", str(bad)]))
    assert prepared.needs_tests
    with pytest.raises(ReportProblem, match=r"no test .*test_nope in the suite"):
        check_tests(prepared, ["conformance/suites/server/test_x.py::test_fail"])
