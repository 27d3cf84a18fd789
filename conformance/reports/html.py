"""``--html``: one self-contained page, readable offline, transcripts included.

Failures come first: the verdict, the target and the run's provenance, then
every test as a card (failures, warnings, skips, passes, in that order) under
a filter (all / failed / warned / skipped, CSS only), then the requirement
table. A card is titled by the requirement its failure names (or, for a test
that did not fail, by the requirements it covers) and shows the one command
that reruns just that test. Inline CSS, no script, no external URL; every text
from a test or the server is escaped (``conformance.reports.page``).
"""

from __future__ import annotations

from pathlib import Path

from conformance.reports import page
from conformance.reports.model import FAIL, PASS, SKIP, WARN, RunResult, TestRecord
from conformance.reports.page import e, status_tag
from conformance.reports.provenance import target_items, target_summary
from conformance.reports.rerun import rerun_command
from protocol import requirements

_ORDER = {FAIL: 0, WARN: 1, SKIP: 2, PASS: 3}
TEXT_IN_TITLE = 110  # characters of the requirement's text in a card's title


def title_requirement(record: TestRecord) -> str:
    """The requirement a card is titled by: the one its failure names, else its first."""
    if record.outcome in (FAIL, WARN) and record.failed_requirement:
        return record.failed_requirement
    return record.requirements[0] if record.requirements else ""


def _requirement_text(rid: str) -> str:
    try:
        text = requirements.get(rid).text
    except KeyError:
        return ""
    return text if len(text) <= TEXT_IN_TITLE else text[: TEXT_IN_TITLE - 1].rstrip() + "…"


def card(record: TestRecord, command: str = "", *, unfold: bool = True) -> str:
    """One test as a ``<details class="card STATUS">``: open when it failed
    (and ``unfold``)."""
    rid = title_requirement(record)
    others = [r for r in record.requirements if r != rid]
    opened = " open" if unfold and record.outcome in (FAIL, WARN) else ""
    parts = [
        f'<details class="card {e(record.outcome)}"{opened} data-test="{e(record.nodeid)}">',
        f"<summary>{status_tag(record.outcome)} <b>{e(rid or '(no requirement)')}</b> "
        f"{e(_requirement_text(rid))}</summary>",
        f'<p class="req">{e(record.name)} &middot; {e(record.nodeid)}'
        + (f" &middot; also covers {e(' '.join(others))}" if others else "")
        + f" &middot; {record.duration:.3f}s</p>",
    ]
    if record.expected_failure:
        why = e(record.expected_failure)
        parts.append(f'<p class="expected">expected by the baseline: {why}</p>')
    if record.baseline_note:
        parts.append(f'<p class="expected">{e(record.baseline_note)}</p>')
    if record.message:
        parts.append(f"<pre>{e(record.message)}</pre>")
    if record.skip_reason:
        parts.append(f"<p>skipped: {e(record.skip_reason)}</p>")
    if record.transcript:
        parts.append(
            "<p>transcript (time since the test began, connection, &gt;&gt; sent "
            f"&lt;&lt; received)</p><pre>{e(record.transcript)}</pre>"
        )
    if command and record.outcome in (FAIL, WARN):
        parts.append(f'<p>rerun just this test:</p><pre class="rerun">{e(command)}</pre>')
    parts.append("</details>")
    return "\n".join(parts)


def failures_first(result: RunResult) -> list[TestRecord]:
    """Failures, then warnings (those a baseline expects after the others),
    then skips, then passes; spec order within each."""
    records = result.sorted_records()
    return sorted(
        records,
        key=lambda r: (
            r.outcome not in (FAIL, WARN),
            bool(r.expected_failure),
            _ORDER.get(r.outcome, 4),
        ),
    )


def summary_line(result: RunResult) -> str:
    s = result.summary()
    text = (
        f"{s['tests']} tests: {s['passed']} passed, {s['failed']} failed, "
        f"{s['warned']} warned, {s['skipped']} skipped"
    )
    if result.stopped_early:
        text += f" (stopped early: {result.stopped_early})"
    if result.baseline:
        text += f"; {s['expected']} expected by the baseline"
        if s["unexpected_passes"]:
            text += f", {s['unexpected_passes']} unexpected pass(es)"
    return text


def render(result: RunResult) -> str:
    s = result.summary()
    prov = result.provenance
    out = page.head(f"ABP/1 conformance: {target_summary(result.target)}")
    out += [
        f"<h1>ABP/1 conformance {status_tag(result.verdict())}</h1>",
        f"<p>{e(target_summary(result.target))}. {e(summary_line(result))}, "
        f"in {result.duration:.1f}s.</p>",
    ]
    if result.unexpected_passes:
        out.append("<h2>Unexpected passes (the baseline expected these to fail)</h2><ul>")
        for u in result.unexpected_passes:
            out.append(
                f"<li><b>{e(u.entry)}</b> ({e(u.reason)}): now passes: "
                f"{e(', '.join(u.tests))}. Remove it from the baseline.</li>"
            )
        out.append("</ul>")
    out += [
        "<h2>Target</h2>",
        page.facts(target_items(result.target), "target"),
        "<h2>Run</h2>",
        page.facts([*result.provenance_items(), ("duration", f"{result.duration:.1f}s")], "run"),
        "<h2>Tests</h2>",
        page.filter_bar({FAIL: s["failed"], WARN: s["warned"], SKIP: s["skipped"]}, s["tests"]),
    ]
    items: list[str] = []
    shown: set[str] = set()
    for record in failures_first(result):
        for rid in record.judged:  # the table links to a requirement's first (worst) test
            if rid not in shown:
                shown.add(rid)
                items.append(f'<a id="{e(rid)}"></a>')
        items.append(card(record, rerun_command(prov.command, record.nodeid) or ""))
    out.append(page.cards(items))
    out += _table(result)
    if result.warnings:
        out.append("<h2>Python warnings raised by the tests</h2><pre>")
        out.extend(e(w) for w in result.warnings)
        out.append("</pre>")
    out += page.tail()
    return "\n".join(out) + "\n"


def _table(result: RunResult) -> list[str]:
    out = ["<h2>Requirements</h2>"]
    section = None
    for row in result.requirement_rows():
        if row.section != section:
            if section is not None:
                out.append("</table>")
            section = row.section
            out += [
                f"<h3>{e(section or 'Other')}</h3><table>",
                "<tr><th>requirement</th><th>level</th><th>status</th><th>tests</th>"
                "<th>text</th></tr>",
            ]
        out.append(
            f'<tr><td><a href="#{e(row.id)}">{e(row.id)}</a></td><td>{e(row.level)}</td>'
            f"<td>{status_tag(row.status)}</td><td>{len(row.tests)}</td>"
            f'<td class="req">{e(row.text)}</td></tr>'
        )
    if section is not None:
        out.append("</table>")
    return out


def write(result: RunResult, path: str | Path) -> None:
    Path(path).write_text(render(result), encoding="utf-8")
