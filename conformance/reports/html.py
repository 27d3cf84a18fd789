"""``--html``: one self-contained page, readable offline, transcripts included.

Inline CSS, no script, no external URL. Every piece of text that came from a
test or from the server goes through ``html.escape`` (after ``printable``).
"""

from __future__ import annotations

import html
from pathlib import Path

from conformance.reports.model import FAIL, PASS, SKIP, UNTESTED, WARN, RunResult, TestRecord
from conformance.reports.text import printable

_CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 72em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; }
table { border-collapse: collapse; width: 100%; }
td, th { text-align: left; padding: .2em .6em; border-bottom: 1px solid #ddd; vertical-align: top; }
pre { background: #f6f6f6; padding: .6em; overflow-x: auto; white-space: pre-wrap; }
.status { font-weight: bold; padding: 0 .4em; border-radius: 3px; color: #fff; }
.PASS { background: #2e7d32; } .FAIL { background: #c62828; } .WARN { background: #ef6c00; }
.SKIP { background: #607d8b; } .UNTESTED { background: #8e24aa; }
details { margin: .3em 0; border: 1px solid #ddd; border-radius: 4px; padding: .3em .6em; }
summary { cursor: pointer; } .req { color: #555; font-size: .92em; }
dl.target dt { float: left; clear: left; width: 8em; font-weight: bold; }
dl.target dd { margin-left: 9em; }
"""


def _e(text: object) -> str:
    return html.escape(printable(str(text)), quote=True)


def _badge(status: str) -> str:
    known = status if status in (PASS, FAIL, WARN, SKIP, UNTESTED) else "SKIP"
    return f'<span class="status {known}">{_e(status)}</span>'


def _test(record: TestRecord) -> str:
    ids = " ".join(record.requirements)
    parts = [
        f"<details{' open' if record.outcome in (FAIL, WARN) else ''}>",
        f"<summary>{_badge(record.outcome)} <b>{_e(ids or '-')}</b> {_e(record.name)}"
        f' <span class="req">{record.duration:.3f}s</span></summary>',
        f'<p class="req">{_e(record.nodeid)}</p>',
    ]
    if record.message:
        parts.append(f"<pre>{_e(record.message)}</pre>")
    if record.skip_reason:
        parts.append(f"<p>skipped: {_e(record.skip_reason)}</p>")
    if record.transcript:
        parts.append(f"<p>transcript</p><pre>{_e(record.transcript)}</pre>")
    parts.append("</details>")
    return "\n".join(parts)


def render(result: RunResult) -> str:
    s = result.summary()
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>ABP/1 conformance report</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>ABP/1 conformance report {_badge(result.verdict())}</h1>",
        '<dl class="target">',
    ]
    for key, value in result.target.items():
        out.append(f"<dt>{_e(key)}</dt><dd>{_e(value)}</dd>")
    out += [
        f"<dt>started</dt><dd>{_e(result.started)}</dd>",
        f"<dt>duration</dt><dd>{result.duration:.1f}s</dd>",
        "</dl>",
        f"<p>{s['tests']} tests: {s['passed']} passed, {s['failed']} failed, "
        f"{s['warned']} warned, {s['skipped']} skipped.</p>",
        "<h2>Requirements</h2>",
    ]
    section = None
    for row in result.requirement_rows():
        if row.section != section:
            if section is not None:
                out.append("</table>")
            section = row.section
            out += [
                f"<h3>{_e(section or 'Other')}</h3><table>",
                "<tr><th>requirement</th><th>level</th><th>status</th><th>tests</th>"
                "<th>text</th></tr>",
            ]
        out.append(
            f'<tr><td><a href="#{_e(row.id)}">{_e(row.id)}</a></td><td>{_e(row.level)}</td>'
            f"<td>{_badge(row.status)}</td><td>{len(row.tests)}</td>"
            f'<td class="req">{_e(row.text)}</td></tr>'
        )
    if section is not None:
        out.append("</table>")

    out.append("<h2>Tests</h2>")
    shown: set[str] = set()
    for record in result.sorted_records():
        for rid in record.judged:  # the table links to a requirement's first test
            if rid not in shown:
                shown.add(rid)
                out.append(f'<a id="{_e(rid)}"></a>')
        out.append(_test(record))
    if result.warnings:
        out.append("<h2>Python warnings raised by the tests</h2><pre>")
        out.extend(_e(w) for w in result.warnings)
        out.append("</pre>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def write(result: RunResult, path: str | Path) -> None:
    Path(path).write_text(render(result), encoding="utf-8")
