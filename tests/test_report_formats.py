"""Results that travel: provenance in every report, the Markdown summary, the
badge, the HTML's order and target block, and the rerun command.

Built from hand-made records (``tests/test_reports.py`` has the rules of the
model); a real run's reports are checked in ``tests/test_conformance_cli.py``
and, in a real browser, in ``tests/test_report_pages.py``.
"""

from __future__ import annotations

import hashlib
import json
import platform
import shlex
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from conformance.reports import (
    FAIL,
    PASS,
    SKIP,
    WARN,
    RunResult,
    TestRecord,
    badge,
    console,
    html,
    json_report,
    junit,
    markdown,
)
from conformance.reports.provenance import (
    Provenance,
    program_words,
    spec_sha256,
    target_items,
    toolkit_version,
)
from conformance.reports.rerun import rerun_command
from protocol import requirements

MUST, MUST2, SHOULD = "ABP-REQ-1", "ABP-REQ-2", "ABP-CONN-7"
COMMAND = "conformance run --server 127.0.0.1:2007 --seed 7 --json r.json -n 2 -k frame -q"
TARGET = {
    "suite": "conformance.suites.server",
    "address": "127.0.0.1:2007",
    "service": "abp",
    "framing": "line",
    "framing_reason": "answers end with LF",
    "server_cmd": None,
    "embedded": False,
    "seed": 7,
    "workers": 2,
}


def record(name: str, ids: list[str], outcome: str, **kw: Any) -> TestRecord:
    return TestRecord(f"conformance/suites/server/test_x.py::{name}", ids, outcome, **kw)


def provenance() -> Provenance:
    return Provenance.here(shlex.split(COMMAND), seed=7, started="2026-01-02T03:04:05+00:00")


def mixed_result(**kw: Any) -> RunResult:
    records = [
        record("test_pass", [MUST], PASS),
        record("test_skip", ["ABP-DUR-1"], SKIP, skip_reason="needs --server-cmd"),
        record("test_warn", [SHOULD], WARN, message="idle connection kept open"),
        record(
            "test_fail",
            [MUST2, MUST],
            FAIL,
            failed_requirement=MUST2,
            message="ABP-REQ-2 broken: expected 'OK', got 'ERR'",
            transcript="+ 0.0000s c1 >> 'add:a,b'\n+ 0.0010s c1 << 'ERR'",
        ),
    ]
    return RunResult(
        records,
        target=dict(TARGET),
        started="2026-01-02T03:04:05+00:00",
        duration=2.5,
        provenance=provenance(),
        **kw,
    )


# ---------------------------------------------------------------- provenance


def test_provenance_says_where_a_result_came_from() -> None:
    prov = provenance()
    assert prov.toolkit == toolkit_version() != ""
    spec = requirements.spec_path().read_bytes()
    assert prov.spec_sha256 == spec_sha256() == hashlib.sha256(spec).hexdigest()
    assert platform.python_version() in prov.python
    assert prov.platform == platform.platform()
    assert prov.command == COMMAND
    assert Provenance.from_json(json.loads(json.dumps(prov.as_json()))) == prov
    assert Provenance.from_json({"seed": True, "toolkit": None}) == Provenance()


def test_program_words() -> None:
    assert program_words("/x/.venv/bin/conformance") == ["conformance"]
    assert program_words("/x/conformance/__main__.py") == ["python", "-m", "conformance"]


def test_target_block_is_readable() -> None:
    items = target_items(TARGET)
    labels = [label for label, _ in items]
    assert ("server", "127.0.0.1:2007") in items
    assert ("framing found by", "answers end with LF") in items
    values = " ".join(value for _, value in items)
    assert "None" not in values
    assert "False" not in values
    assert "seed" not in labels  # shown once, with the provenance
    embedded = target_items({**TARGET, "embedded": True})
    assert embedded[0] == ("server is", "the embedded reference server (started by the suite)")


def test_every_report_carries_the_provenance(tmp_path: Path) -> None:
    result = mixed_result()
    prov = result.provenance
    wanted = [prov.toolkit, prov.spec_sha256, prov.python, prov.platform, "2026-01-02T03:04:05"]

    data = json.loads(json_report.dumps(result))
    assert data["provenance"]["command"] == COMMAND
    assert data["provenance"]["seed"] == 7
    assert data["target"]["address"] == "127.0.0.1:2007"

    junit.write(result, tmp_path / "r.xml")
    suite = ET.parse(tmp_path / "r.xml").getroot().find("testsuite")
    assert suite is not None
    props = {p.get("name"): p.get("value") for p in suite.find("properties") or []}
    assert props["run.command"] == COMMAND
    assert props["run.seed"] == "7"
    assert props["target.address"] == "127.0.0.1:2007"

    page, md = html.render(result), markdown.render(result)
    for text in (page, md, json.dumps(data), json.dumps(props)):
        for value in wanted:
            assert value in text, value
    assert "127.0.0.1:2007" in md
    assert shlex.quote("2007") in md or "2007" in md


def test_json_report_round_trips_the_new_fields() -> None:
    result = mixed_result()
    result.records[2].expected_failure = "no idle timeout yet"
    back = RunResult.from_json(json.loads(json_report.dumps(result)))
    assert back.provenance == result.provenance
    assert back.summary() == result.summary()
    assert {r.nodeid: r.expected_failure for r in back.records}[result.records[2].nodeid]
    with pytest.raises(ValueError, match="no list of tests"):
        RunResult.from_json({"cells": []})
    with pytest.raises(ValueError, match="outcome"):
        RunResult.from_json({"tests": [{"nodeid": "a", "requirements": [], "outcome": "MEH"}]})


# ---------------------------------------------------------------------- HTML


def test_html_puts_failures_first_under_a_filter() -> None:
    page = html.render(mixed_result())
    names = ("test_fail", "test_warn", "test_skip", "test_pass")
    order = [page.index(f"::{name}") for name in names]
    assert order == sorted(order)
    for choice in ("all", "failed", "warned", "skipped"):
        assert f'id="show-{choice}"' in page
    assert page.index('id="show-all"') < page.index('<div class="cards">')
    assert "<script" not in page


def test_html_card_is_titled_by_the_requirement_its_failure_names() -> None:
    page = html.render(mixed_result())
    card = page[page.index('data-test="conformance/suites/server/test_x.py::test_fail"') :]
    summary = card[card.index("<summary>") : card.index("</summary>")]
    assert "<b>ABP-REQ-2</b>" in summary
    assert requirements.get(MUST2).text[:40] in summary
    assert "also covers ABP-REQ-1" in card[: card.index("</details>")]


def test_html_target_block_has_no_raw_none_or_false() -> None:
    page = html.render(mixed_result())
    block = page[page.index('<dl class="facts" id="target">') :]
    block = block[: block.index("</dl>")]
    assert "None" not in block
    assert "False" not in block
    assert "<dt>server</dt><dd>127.0.0.1:2007</dd>" in block


# ------------------------------------------------------------------ Markdown


def test_markdown_summary() -> None:
    md = markdown.render(mixed_result())
    assert md.startswith("## ❌ ABP/1 conformance: FAIL")
    assert "4 tests: 1 passed, 1 failed, 1 warned, 1 skipped" in md
    assert f"| ❌ | {MUST2} | MUST |" in md
    assert f"| ⚠️ | {SHOULD} | SHOULD |" in md
    assert "expected 'OK', got 'ERR'" in md
    assert "rerun just this test" in md
    assert md.count("<details>") == md.count("</details>") == 2


def test_markdown_passing_run() -> None:
    result = RunResult([record("test_pass", [MUST], PASS)], provenance=provenance())
    md = markdown.render(result)
    assert md.startswith("## ✅ ABP/1 conformance: PASS")
    assert "Every requirement tested is met." in md


def test_markdown_cannot_be_broken_out_of() -> None:
    hostile = "``` </details> | <img src=x onerror=alert(1)> \x1b[2J"
    result = RunResult(
        [record("test_fail", [MUST], FAIL, message=hostile, transcript=hostile)],
        target={"address": "<b>x</b>|y"},
        provenance=provenance(),
    )
    md = markdown.render(result)
    assert "\x1b" not in md
    assert "&lt;b&gt;x&lt;/b&gt;\\|y" in md
    outside = outside_fences(md)
    assert "<img" not in outside
    assert outside.count("</details>") == outside.count("<details>") == 2
    assert any(line.startswith("````") for line in md.splitlines())


def outside_fences(md: str) -> str:
    """The Markdown with every fenced block (CommonMark: closed by a fence of
    the same character, at least as long) taken out."""
    out, fence = [], ""
    for line in md.splitlines():
        ticks = len(line) - len(line.lstrip("`"))
        if not fence and ticks >= 3:
            fence = "`" * ticks
        elif fence and ticks >= len(fence) and not line.strip("`"):
            fence = ""
        elif not fence:
            out.append(line)
    assert not fence, "a fence is left open"
    return "\n".join(out)


def test_markdown_is_bounded() -> None:
    many = [
        record(f"test_{n}", [MUST], FAIL, message="x" * 2000, transcript="y\n" * 500)
        for n in range(200)
    ]
    md = markdown.render(RunResult(many, provenance=provenance()))
    assert len(md) <= markdown.LIMIT
    assert "more: see the HTML or JSON report" in md
    assert md.count("<details>") == md.count("</details>")


# --------------------------------------------------------------------- badge


def _badge_text(svg: str) -> tuple[str, str]:
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    texts = [t.text or "" for t in root.iter(f"{ns}text")]
    rects = [r.get("fill") or "" for r in root.iter(f"{ns}rect")]
    return " · ".join(texts), rects[-1]


def test_badge_green_when_every_test_passes() -> None:
    result = RunResult([record(f"t{n}", [MUST], PASS) for n in range(147)])
    assert _badge_text(badge.render(result)) == ("ABP/1 · 147/147", badge.GREEN)


def test_badge_red_with_the_broken_musts() -> None:
    result = mixed_result()
    assert _badge_text(badge.render(result)) == ("ABP/1 · 1 MUST broken", badge.RED)
    result.records.append(record("test_more", ["ABP-REQ-3"], FAIL))
    assert _badge_text(badge.render(result))[0] == "ABP/1 · 2 MUSTs broken"


def test_badge_amber_for_warnings_and_expected_failures() -> None:
    result = RunResult([record("t1", [MUST], PASS), record("t2", [SHOULD], WARN)])
    assert _badge_text(badge.render(result)) == ("ABP/1 · 1/2", badge.AMBER)
    result.strict = True
    assert _badge_text(badge.render(result)) == ("ABP/1 · 1 unexpected", badge.RED)


# --------------------------------------------------------------------- rerun


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (COMMAND, "conformance run --server 127.0.0.1:2007 --seed 7 -n 0 --test T"),
        (
            "python -m conformance run --server-cmd './srv --port {port}' --html=r.html -xq -n2",
            "python -m conformance run --server-cmd './srv --port {port}' -n 0 --test T",
        ),
        (
            "conformance run --requirement ABP-FRAME --baseline b.toml --maxfail 3 --strict",
            "conformance run --strict -n 0 --test T",
        ),
        (
            "conformance run --markdown s.md --badge b.svg --no-transcripts --test X",
            "conformance run -n 0 --test T",
        ),
        ("pytest --abp-server 127.0.0.1:1", None),
        ("conformance run 'unbalanced", None),
    ],
)
def test_rerun_command(command: str, expected: str | None) -> None:
    assert rerun_command(command, "T") == expected


def test_console_prints_the_rerun_command_and_honours_quiet() -> None:
    result = mixed_result()
    text = console.render(result)
    assert "rerun: conformance run --server 127.0.0.1:2007 --seed 7 -n 0 --test" in text
    assert "c1 >> 'add:a,b'" in text
    assert "c1 >> 'add:a,b'" not in console.render(result, transcripts=False)
    quiet = console.render(result, quiet=True)
    assert "rerun:" not in quiet
    assert "ABP-REQ-2" in quiet  # the table stays
    assert "broken MUSTs (1): ABP-REQ-2\nbroken SHOULDs (1): ABP-CONN-7\n" in quiet
    assert quiet.rstrip().splitlines()[-1].startswith("verdict: FAIL")
    assert f"abp-toolkit {toolkit_version()}, spec sha256 {spec_sha256()[:12]}" in quiet
