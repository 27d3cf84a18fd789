"""Baselines (``conformance.reports.baseline``): expected failures do not fail
the run, an unexpected pass does, a changed failure is not expected any more,
and an entry that names nothing known is refused in one line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from conformance.reports import FAIL, PASS, SKIP, WARN, RunResult, TestRecord, json_report
from conformance.reports.baseline import (
    PLACEHOLDER,
    BaselineError,
    apply,
    check_known,
    from_records,
    load,
    parse,
    write_from_report,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

MUST, MUST2, SHOULD = "ABP-REQ-1", "ABP-REQ-2", "ABP-CONN-7"
T = "conformance/suites/server/test_x.py::"


def record(name: str, ids: list[str], outcome: str, **kw: Any) -> TestRecord:
    return TestRecord(T + name, ids, outcome, **kw)


def run(*records: TestRecord, strict: bool = False) -> RunResult:
    return RunResult(list(records), strict=strict)


def test_an_expected_failure_does_not_fail_the_run() -> None:
    result = run(
        record("test_a", [MUST], FAIL, message="expected 'OK', got 'ERR'"),
        record("test_b", [MUST], PASS),
    )
    assert result.exit_code() == 1
    baseline = parse(
        f'[[expected]]\ntest = "{T}test_a"\nreason = "bug #12"\nfailure = "got \'ERR\'"'
    )
    apply(result, baseline)
    assert result.records[0].expected_failure == "bug #12"
    assert result.exit_code() == 0
    assert result.summary()["expected"] == 1
    assert result.unexpected_passes == []


def test_a_new_failure_still_fails_the_run() -> None:
    result = run(record("test_a", [MUST], FAIL), record("test_b", [MUST2], FAIL))
    apply(result, parse(f'[[expected]]\ntest = "{T}test_a"\nreason = "r"'))
    assert result.exit_code() == 1
    assert [r.name for r in result.records if r.counts_against] == ["test_b"]


def test_a_changed_failure_is_not_expected() -> None:
    result = run(record("test_a", [MUST], FAIL, message="the server closed the connection"))
    baseline = parse(f'[[expected]]\ntest = "{T}test_a"\nreason = "r"\nfailure = "got \'ERR\'"')
    apply(result, baseline)
    assert result.exit_code() == 1
    assert "this failure has changed" in result.records[0].baseline_note


def test_a_requirement_entry_covers_every_failure_against_it() -> None:
    result = run(
        record("test_a", [SHOULD], WARN),
        record("test_b", [SHOULD, MUST], WARN, failed_requirement=SHOULD),
        record("test_c", [SHOULD], PASS),
        strict=True,
    )
    assert result.exit_code() == 1
    apply(result, parse(f'[[expected]]\nrequirement = "{SHOULD}"\nreason = "no idle timeout"'))
    assert result.exit_code() == 0
    assert result.unexpected_passes == []  # test_c passes, but the others still fail


def test_an_unexpected_pass_is_reported_and_fails_the_run() -> None:
    result = run(
        record("test_a[one]", [MUST], PASS),
        record("test_a[two]", [MUST], PASS),
        record("test_b", [MUST2], SKIP),
    )
    baseline = parse(
        f'[[expected]]\ntest = "{T}test_a"\nreason = "fixed?"\n'
        f'[[expected]]\nrequirement = "{MUST2}"\nreason = "skipped: says nothing"'
    )
    apply(result, baseline)
    assert result.exit_code() == 1
    (passed,) = result.unexpected_passes
    assert passed.entry == f"test {T}test_a"
    assert passed.tests == (f"{T}test_a[one]", f"{T}test_a[two]")
    assert result.summary()["unexpected_passes"] == 1
    data = json.loads(json_report.dumps(result))
    assert data["unexpected_passes"][0]["reason"] == "fixed?"
    assert RunResult.from_json(data).unexpected_passes == result.unexpected_passes


def test_a_requirement_entry_names_only_failures_of_that_requirement() -> None:
    result = run(record("test_a", [SHOULD], WARN), record("test_b", [MUST2], FAIL), strict=True)
    apply(result, parse(f'[[expected]]\nrequirement = "{MUST2}"\nreason = "r"'))
    assert [r.name for r in result.records if r.expected_failure] == ["test_b"]
    assert result.exit_code() == 1  # the SHOULD warning is not the baseline's


def test_a_failure_against_another_requirement_is_no_pass() -> None:
    result = run(record("test_a", [MUST, MUST2], FAIL, failed_requirement=MUST))
    apply(result, parse(f'[[expected]]\nrequirement = "{MUST2}"\nreason = "r"'))
    assert result.unexpected_passes == []
    assert result.exit_code() == 1  # the MUST failure is not the baseline's


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ('[[expected]]\ntest = "x"', "a reason is mandatory"),
        ('[[expected]]\ntest = "x"\nreason = "  "', "a reason is mandatory"),
        ('[[expected]]\nreason = "r"', "exactly one of test"),
        ('[[expected]]\ntest = "x"\nrequirement = "ABP-REQ-1"\nreason = "r"', "exactly one"),
        ('[[expected]]\ntest = "x"\nreason = "r"\nwhy = 1', "unknown key(s) why"),
        ('[[expected]]\ntest = 3\nreason = "r"', "test must be a string"),
        ('[expected]\ntest = "x"', "array of tables"),
        ('[[expeted]]\ntest = "x"', "unknown key(s) expeted"),
        ("[[expected]\n", "not valid TOML"),
    ],
)
def test_bad_baselines_are_refused_in_one_line(text: str, why: str) -> None:
    with pytest.raises(BaselineError, match=r"^b\.toml: ") as info:
        parse(text, "b.toml")
    assert why in str(info.value)
    assert "\n" not in str(info.value)


def test_entries_must_name_something_known() -> None:
    known = [f"{T}test_a[one]", f"{T}test_b"]
    good = parse(
        f'[[expected]]\ntest = "{T}test_a"\nreason = "r"\n'
        f'[[expected]]\ntest = "{T}test_a[one]"\nreason = "r"\n'
        f'[[expected]]\nrequirement = "{MUST}"\nreason = "r"\n'
    )
    check_known(good, known)
    with pytest.raises(BaselineError, match=r"entry #1: no test .*test_c in the suite$"):
        check_known(parse(f'[[expected]]\ntest = "{T}test_c"\nreason = "r"', "b.toml"), known)
    with pytest.raises(BaselineError, match=r"entry #1: no requirement ABP-REQ-99 in the spec"):
        check_known(parse('[[expected]]\nrequirement = "ABP-REQ-99"\nreason = "r"'), known)


def test_load_refuses_what_is_not_a_baseline(tmp_path: Path) -> None:
    with pytest.raises(BaselineError, match="cannot read the baseline"):
        load(tmp_path / "missing.toml")
    binary = tmp_path / "b.toml"
    binary.write_bytes(b"\xff\xfe")
    with pytest.raises(BaselineError, match="not UTF-8"):
        load(binary)


def test_write_from_a_report_then_apply_it(tmp_path: Path) -> None:
    hostile = 'expected "OK"\n  actual: \x1b[2J \udcff """ \\'
    result = run(
        record("test_a", [MUST], FAIL, message=hostile, failed_requirement=MUST),
        record('test_b[x"y]', [SHOULD], WARN, message="kept open"),
        record("test_c", [MUST], PASS),
    )
    report = tmp_path / "r.json"
    json_report.write(result, report)
    path = tmp_path / "baseline.toml"
    assert write_from_report(report, path) == 2
    text = path.read_text("utf-8")
    data = tomllib.loads(text)
    assert [e["test"] for e in data["expected"]] == [f"{T}test_a", f'{T}test_b[x"y]']
    assert all(e["reason"] == PLACEHOLDER for e in data["expected"])
    assert "# failure = " in text  # offered, commented out
    baseline = load(path)
    assert baseline.placeholders == 2
    fresh = RunResult.from_json(json.loads(report.read_text("utf-8")))
    apply(fresh, baseline)
    assert fresh.exit_code() == 0
    assert fresh.summary()["expected"] == 2


def test_write_refuses_what_is_not_a_run_report(tmp_path: Path) -> None:
    matrix = tmp_path / "m.json"
    matrix.write_text('{"cells": []}', "utf-8")
    with pytest.raises(BaselineError, match="not a conformance run report"):
        write_from_report(matrix, tmp_path / "b.toml")
    with pytest.raises(BaselineError, match="not a JSON file"):
        write_from_report(Path(__file__), tmp_path / "b.toml")
    with pytest.raises(BaselineError, match="cannot read"):
        write_from_report(tmp_path / "none.json", tmp_path / "b.toml")


def test_from_records_of_a_clean_run_is_an_empty_baseline() -> None:
    text = from_records([record("test_c", [MUST], PASS)])
    assert tomllib.loads(text) == {}
    assert parse(text).entries == ()


def test_junit_shows_expected_failures_as_skipped_and_unexpected_passes_as_failures(
    tmp_path: Path,
) -> None:
    import xml.etree.ElementTree as ET

    from conformance.reports import junit

    result = run(record("test_a", [MUST], FAIL, message="broken"), record("test_b", [MUST2], PASS))
    apply(
        result,
        parse(
            f'[[expected]]\ntest = "{T}test_a"\nreason = "bug #1"\n'
            f'[[expected]]\ntest = "{T}test_b"\nreason = "bug #2"\n'
        ),
    )
    junit.write(result, tmp_path / "r.xml")
    root = ET.parse(tmp_path / "r.xml").getroot()
    cases = {c.get("name", "").split()[-1]: c for c in root.iter("testcase")}
    a, b = cases["test_a"], cases["test_b"]
    assert a.find("failure") is None
    skipped = a.find("skipped")
    assert skipped is not None
    assert skipped.get("type") == "expected"
    assert "bug #1" in (skipped.get("message") or "")
    failure = b.find("failure")
    assert failure is not None
    assert failure.get("type") == "UNEXPECTED_PASS"
    suite = root.find("testsuite")
    assert suite is not None
    assert suite.get("failures") == "1"
    assert suite.get("skipped") == "1"
