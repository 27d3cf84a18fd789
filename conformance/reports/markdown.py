"""``--markdown``: a summary fit for a CI step summary or a pull-request comment.

GitHub-flavoured Markdown: the verdict and the counts, the broken
requirements in one table, the likely causes in a short list, then (folded)
each failure with its message, the start of its transcript and the command
that reruns it, then the target and the run's provenance. Bounded: at most
``LIMIT`` characters (a PR comment holds 65,536), the rest left to the HTML
and JSON reports. Text from the server sits in code fences (longer than any
backtick run inside) or is escaped, so it cannot turn into markup.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from conformance.reports.diagnosis import diagnose, markdown_lines
from conformance.reports.html import failures_first, summary_line, title_requirement
from conformance.reports.model import FAIL, PASS, SKIP, UNTESTED, WARN, RunResult, TestRecord
from conformance.reports.provenance import target_items, target_summary
from conformance.reports.rerun import rerun_command
from conformance.reports.text import printable

LIMIT = 60_000
TRANSCRIPT_LINES = 30
ICONS = {PASS: "✅", FAIL: "❌", WARN: "⚠️", SKIP: "⏭️", UNTESTED: "⬜"}


def cell(text: object) -> str:
    """Text for one table cell (or a line of prose): escaped, one line."""
    flat = printable(str(text)).replace("\n", " ")
    return html.escape(flat, quote=False).replace("|", "\\|").replace("`", "\\`")


def fence(text: str, info: str = "") -> str:
    runs = [len(m) for m in re.findall(r"`+", text)]
    ticks = "`" * max(3, max(runs, default=0) + 1)
    return f"{ticks}{info}\n{printable(text).rstrip()}\n{ticks}"


def _first_lines(text: str, limit: int) -> str:
    lines = text.splitlines()
    if len(lines) <= limit:
        return text
    return "\n".join([*lines[:limit], f"... ({len(lines) - limit} more lines in the HTML report)"])


def _failure(record: TestRecord, command: str | None) -> str:
    rid = title_requirement(record)
    parts = [f"#### {ICONS.get(record.outcome, '')} {cell(rid or '(no requirement)')}"]
    parts.append(f"<code>{cell(record.nodeid)}</code>")
    if record.expected_failure:
        parts.append(f"*expected by the baseline:* {cell(record.expected_failure)}")
    if record.baseline_note:
        parts.append(f"*{cell(record.baseline_note)}*")
    if record.message:
        parts.append(fence(record.message))
    if record.transcript:
        parts.append(fence(_first_lines(record.transcript, TRANSCRIPT_LINES)))
    if command:
        parts.append("rerun just this test:\n\n" + fence(command, "sh"))
    return "\n\n".join(parts)


def render(result: RunResult, *, limit: int = LIMIT) -> str:
    verdict = result.verdict()
    icon = ICONS[PASS] if verdict == "PASS" else ICONS[FAIL]
    head = [
        f"## {icon} ABP/1 conformance: {verdict}",
        "",
        f"**{cell(target_summary(result.target))}**: {cell(summary_line(result))}, "
        f"in {result.duration:.1f}s.",
        "",
    ]
    if result.unexpected_passes:
        head += ["**Unexpected passes** (the baseline expected a failure; remove the entry):", ""]
        head += [f"- {cell(u.entry)}: {cell(', '.join(u.tests))}" for u in result.unexpected_passes]
        head.append("")
    rows = [r for r in result.requirement_rows() if r.status in (FAIL, WARN)]
    if rows:
        head += ["| | requirement | level | text |", "|---|---|---|---|"]
        expected_ids = {r.nodeid for r in result.records if r.expected_failure}
        for row in rows:
            text = row.text if len(row.text) <= 100 else row.text[:99] + "…"
            failing_ids = [
                r.nodeid
                for r in result.records
                if r.nodeid in row.tests and r.outcome in (FAIL, WARN)
            ]
            if failing_ids and set(failing_ids) <= expected_ids:
                text = "(expected by the baseline) " + text
            head.append(f"| {ICONS[row.status]} | {cell(row.id)} | {row.level} | {cell(text)} |")
        head.append("")
        head += markdown_lines(diagnose(result), cell)
    else:
        head += ["Every requirement tested is met.", ""]

    tail = ["<details><summary>Target and run</summary>", "", "| | |", "|---|---|"]
    for label, value in [*target_items(result.target), *result.provenance_items()]:
        tail.append(f"| {cell(label)} | {cell(value)} |")
    tail += [f"| duration | {result.duration:.1f}s |", "", "</details>", ""]

    failing = [r for r in failures_first(result) if r.outcome in (FAIL, WARN)]
    bad = [r for r in failing if not r.expected_failure]
    expected = [r for r in failing if r.expected_failure]
    budget = limit - sum(len(line) + 1 for line in [*head, *tail]) - 400
    known = _expected_list(expected, budget // 3) if expected else []
    budget -= sum(len(line) + 1 for line in known)
    body: list[str] = []
    if bad:
        title = "Failures and warnings" + (" not in the baseline" if result.baseline else "")
        body = [f"<details><summary>{title} ({len(bad)})</summary>", ""]
        for n, record in enumerate(bad):
            text = _failure(record, rerun_command(result.provenance.command, record.nodeid))
            if len(text) + 2 > budget - sum(len(b) + 1 for b in body):
                body.append(f"*... {len(bad) - n} more: see the HTML or JSON report.*")
                break
            body += [text, ""]
        body += ["</details>", ""]
    return "\n".join([*head, *body, *known, *tail])


def _expected_list(records: list[TestRecord], budget: int) -> list[str]:
    """The failures a baseline expects, one line each (as many as fit)."""
    out = [f"<details><summary>Expected by the baseline ({len(records)})</summary>", ""]
    used = sum(len(line) + 1 for line in out)
    for n, record in enumerate(records):
        rid = title_requirement(record)
        line = (
            f"- {ICONS.get(record.outcome, '')} {cell(rid)} <code>{cell(record.name)}</code>: "
            f"{cell(record.expected_failure)}"
        )
        if used + len(line) + 1 > budget:
            out.append(f"- *... {len(records) - n} more: see the HTML or JSON report.*")
            break
        out.append(line)
        used += len(line) + 1
    return [*out, "", "</details>", ""]


def write(result: RunResult, path: str | Path) -> None:
    Path(path).write_text(render(result), encoding="utf-8")


__all__ = ["LIMIT", "cell", "fence", "render", "write"]
