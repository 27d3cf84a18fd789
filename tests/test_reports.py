"""The result model and its renderers, from hand-built records.

The rules under test (``conformance.reports.model``): a failing SHOULD-only
test is WARN; a requirement's status is the worst of its tests' (FAIL > WARN >
PASS > BLOCKED > SKIP); the exit status is 1 on a FAIL (or a WARN with ``strict``).
The renderers must show hostile bytes from a server as inert, escaped text.
"""

from __future__ import annotations

import html as htmllib
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from conformance.harness.wire import Transcript
from conformance.reports import (
    BLOCKED,
    FAIL,
    PASS,
    SKIP,
    UNTESTED,
    WARN,
    RunResult,
    TestRecord,
    classify,
    console,
    html,
    json_report,
    junit,
)
from conformance.reports.text import printable
from protocol import requirements

MUST, SHOULD, MAY = "ABP-REQ-1", "ABP-CONN-7", "ABP-CONN-8"


def record(nodeid: str, ids: list[str], outcome: str, **kw: Any) -> TestRecord:
    return TestRecord(
        nodeid=f"server_tests/test_x.py::{nodeid}", requirements=ids, outcome=outcome, **kw
    )


def test_the_requirement_levels_these_tests_rely_on() -> None:
    assert requirements.get(MUST).level == "MUST"
    assert requirements.get(SHOULD).level == "SHOULD"
    assert requirements.get(MAY).level == "MAY"


@pytest.mark.parametrize(
    ("ids", "failed_requirement", "expected"),
    [
        ([MUST], None, FAIL),
        ([SHOULD], None, WARN),
        ([MAY], None, FAIL),  # a MAY is judged in the form it takes: a MUST
        ([SHOULD, MUST], None, FAIL),  # not SHOULD-only
        ([SHOULD, MUST], SHOULD, WARN),  # the failure names the SHOULD
        ([SHOULD], "ABP-CONN-6", FAIL),  # the health probe (a MUST) failed
        ([], None, FAIL),
        ([SHOULD], "ABP-NOT-1", WARN),  # an unknown ID falls back to the markers
    ],
)
def test_classify_failures(ids: list[str], failed_requirement: str | None, expected: str) -> None:
    got = classify(
        failed=True, skipped=False, requirement_ids=ids, failed_requirement=failed_requirement
    )
    assert got == expected


def test_classify_pass_and_skip() -> None:
    assert (
        classify(failed=False, skipped=False, requirement_ids=[SHOULD], failed_requirement=None)
        == PASS
    )
    assert (
        classify(failed=False, skipped=True, requirement_ids=[MUST], failed_requirement=None)
        == SKIP
    )


@pytest.mark.parametrize(
    ("outcomes", "status"),
    [
        ([PASS, FAIL, WARN, SKIP], FAIL),
        ([PASS, WARN, SKIP], WARN),
        ([SKIP, PASS], PASS),
        ([SKIP, SKIP], SKIP),
        ([WARN, FAIL], FAIL),
    ],
)
def test_requirement_status_is_the_worst_of_its_tests(outcomes: list[str], status: str) -> None:
    records = [record(f"t{n}", [MUST], o) for n, o in enumerate(outcomes)]
    (row,) = RunResult(records, complete=False).requirement_rows()
    assert row.id == MUST
    assert row.status == status
    assert len(row.tests) == len(outcomes)


def test_a_failure_counts_against_the_requirement_it_names_only() -> None:
    """A test of REQ-2 whose health probe broke CONN-6 disproves CONN-6, and
    neither proves nor disproves REQ-2."""
    r = record("t", ["ABP-REQ-2"], FAIL, failed_requirement="ABP-CONN-6")
    passing = record("u", ["ABP-REQ-2"], PASS)
    rows = {row.id: row for row in RunResult([r, passing], complete=False).requirement_rows()}
    assert rows["ABP-REQ-2"].status == PASS
    assert rows["ABP-CONN-6"].status == FAIL
    alone = {row.id: row for row in RunResult([r], complete=False).requirement_rows()}
    assert alone["ABP-REQ-2"].status == BLOCKED  # its test ran and failed: never SKIP


def test_a_failure_naming_no_requirement_counts_against_all_of_its_own() -> None:
    r = record("t", ["ABP-REQ-2", "ABP-REQ-5"], FAIL)
    rows = {row.id: row for row in RunResult([r], complete=False).requirement_rows()}
    assert rows["ABP-REQ-2"].status == rows["ABP-REQ-5"].status == FAIL


def test_rows_follow_the_spec_order_and_list_untested_requirements_of_the_role() -> None:
    result = RunResult([record("t", ["ABP-REQ-2"], PASS)], roles=("server",), complete=True)
    rows = result.requirement_rows()
    ids = [row.id for row in rows]
    catalogue = [r.id for r in requirements.catalogue().values() if r.role == "server"]
    assert ids == catalogue
    status = {row.id: row.status for row in rows}
    assert status["ABP-REQ-2"] == PASS
    assert status["ABP-REQ-1"] == UNTESTED
    assert "ABP-CLIENT-1" not in status  # another role


@pytest.mark.parametrize(
    ("outcomes", "strict", "code"),
    [
        ([PASS, SKIP], False, 0),
        ([PASS, WARN], False, 0),
        ([PASS, WARN], True, 1),
        ([PASS, FAIL], False, 1),
        ([SKIP], False, 0),
    ],
)
def test_exit_code(outcomes: list[str], strict: bool, code: int) -> None:
    records = [record(f"t{n}", [MUST], o) for n, o in enumerate(outcomes)]
    result = RunResult(records, strict=strict)
    assert result.exit_code() == code
    assert result.verdict() == ("PASS" if code == 0 else "FAIL")


def test_summary_counts() -> None:
    outcomes = [PASS, PASS, FAIL, WARN, SKIP]
    result = RunResult([record(f"t{n}", [MUST], o) for n, o in enumerate(outcomes)])
    assert result.summary() == {
        "tests": 5,
        "passed": 2,
        "failed": 1,
        "warned": 1,
        "skipped": 1,
        "expected": 0,
        "unexpected_passes": 0,
    }


# -- hostile bytes from a server
HOSTILE = b'<script>alert("x")</script>&amp;\x00\x1b[31m\xff\r\n\xe2\x80\xae]]>'


def hostile_record() -> TestRecord:
    transcript = Transcript()
    transcript.add("c1", ">>", b"fnd:x\n")
    transcript.add("c1", "<<", HOSTILE)
    return record(
        "test_hostile",
        [MUST],
        FAIL,
        failed_requirement=MUST,
        message='expected "OK"\n  actual: </pre><b>\x1b[2J\u202e\udcff',
        transcript=transcript.render(),
        transcript_records=transcript.as_json(),
    )


def test_printable_escapes_controls_and_bidi_but_keeps_text() -> None:
    assert printable("caf\u00e9 \u65e5\u672c\tx\ny") == "caf\u00e9 \u65e5\u672c\tx\ny"
    assert printable("a\x1b[2Jb\u202ec\udcffd\x00") == "a\\x1b[2Jb\\u202ec\\udcffd\\x00"


def test_html_report_escapes_everything_and_is_self_contained() -> None:
    result = RunResult(
        [hostile_record(), record("test_ok", [MUST], PASS)], target={"address": "<h1>"}
    )
    page = html.render(result)
    assert "<script>" not in page
    assert "</pre><b>" not in page
    for hidden in ("\x1b", "\u202e", "\x00"):
        assert hidden not in page
    assert htmllib.escape("<script>alert(") in page or "&lt;script&gt;alert(" in page
    assert "&lt;h1&gt;" in page
    assert page.count("<details") == 2
    assert not re.search(r"(src|href)=\"(https?:)?//", page)  # nothing fetched from outside
    assert "<style>" in page
    page.encode("utf-8")  # no lone surrogate left in the text


def test_console_report_is_inert_on_a_terminal() -> None:
    text = console.render(RunResult([hostile_record()]), colour=False)
    assert "\x1b" not in text
    assert "\u202e" not in text
    assert "ABP-REQ-1" in text
    assert "\\x1b[31m" in text  # the transcript, escaped
    text.encode("utf-8")


def test_console_colour_only_when_asked() -> None:
    result = RunResult([record("t", [MUST], PASS)])
    assert "\x1b[" not in console.render(result, colour=False)
    assert "\x1b[32m" in console.render(result, colour=True)


def test_console_explains_each_failure_and_warning() -> None:
    records = [hostile_record(), record("test_idle", [SHOULD], WARN, message="not closed")]
    text = console.render(RunResult(records))
    assert "FAIL ABP-REQ-1" in text
    assert "WARN ABP-CONN-7" in text
    assert "not closed" in text
    assert "transcript" in text
    assert "2 tests: 0 passed, 1 failed, 1 warned, 0 skipped" in text
    assert "verdict: FAIL" in text


def test_console_lists_skip_reasons() -> None:
    r = record("test_restart", ["ABP-DUR-1"], SKIP, skip_reason="needs --server-cmd")
    text = console.render(RunResult([r]))
    assert "ABP-DUR-1: needs --server-cmd" in text
    assert "verdict: PASS" in text


def test_junit_report_is_well_formed_and_names_requirements(tmp_path: Path) -> None:
    warn = record("test_idle", [SHOULD], WARN, message="idle connection kept")
    result = RunResult([hostile_record(), warn, record("test_ok", [MUST, "ABP-REQ-2"], PASS)])
    path = tmp_path / "report.xml"
    junit.write(result, path)
    root = ET.parse(path).getroot()
    cases = {case.get("name"): case for case in root.iter("testcase")}
    assert set(cases) == {
        "ABP-REQ-1 test_hostile",
        "ABP-CONN-7 test_idle",
        "ABP-REQ-1 ABP-REQ-2 test_ok",
    }
    hostile = cases["ABP-REQ-1 test_hostile"]
    assert hostile.find("failure") is not None
    props = {p.get("name"): p.get("value") for p in hostile.iter("property")}
    assert props["requirements"] == "ABP-REQ-1"
    assert "\\x1b[31m" in (hostile.findtext("system-out") or "")
    assert cases["ABP-CONN-7 test_idle"].find("failure") is None  # a WARN is not a failure...
    suite = root.find("testsuite")
    assert suite is not None
    assert suite.get("failures") == "1"
    result.strict = True  # ... unless --strict
    junit.write(result, path)
    cases = {c.get("name"): c for c in ET.parse(path).getroot().iter("testcase")}
    assert cases["ABP-CONN-7 test_idle"].find("failure") is not None


def test_json_report_round_trips(tmp_path: Path) -> None:
    result = RunResult(
        [hostile_record(), record("test_ok", [MUST], PASS, duration=0.25)],
        target={"address": "127.0.0.1:2007"},
        started="2024-01-01T00:00:00+00:00",
        duration=1.5,
    )
    path = tmp_path / "report.json"
    json_report.write(result, path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert set(data) >= {"target", "started", "duration", "summary", "requirements", "tests"}
    assert data["summary"]["failed"] == 1
    assert data["exit_code"] == 1
    tests = {t["name"]: t for t in data["tests"]}
    assert tests["test_ok"]["duration"] == 0.25
    hostile = tests["test_hostile"]
    assert hostile["requirements"] == [MUST]
    assert hostile["outcome"] == FAIL
    assert hostile["transcript_records"][1]["dir"] == "<<"
    (row,) = [r for r in data["requirements"] if r["id"] == MUST]
    assert row["status"] == FAIL
    assert len(row["tests"]) == 2
