"""Showing the matrix: console, Markdown, JSON and one self-contained HTML file.

Rows are clients, columns servers, each cell ``passed/total``. Below the
matrix every failed scenario is listed with its reason and its transcript
(``>>`` what the client sent, ``<<`` what the server answered, ``--``
events, and the client's exit and output); in Markdown and HTML each cell
links to its failures.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from conformance.matrix.config import MatrixConfig
from conformance.matrix.runner import CellResult
from conformance.matrix.scenarios import SCENARIOS


def _cell(cells: Sequence[CellResult], client: str, server: str) -> CellResult:
    return next(c for c in cells if c.client == client and c.server == server)


def anchor(cell: CellResult) -> str:
    """A stable id for a cell's failures: ``cell-<client>--<server>``."""
    slug = re.sub(r"[^a-z0-9]+", "-", f"{cell.client}--{cell.server}".lower()).strip("-")
    return f"cell-{slug}"


def _failures(cells: Sequence[CellResult]) -> list[CellResult]:
    return [cell for cell in cells if not cell.ok]


def _grid(config: MatrixConfig, cells: Sequence[CellResult]) -> list[list[str]]:
    """Header row then one row per client: the cell texts."""
    rows = [["client \\ server", *(s.name for s in config.servers)]]
    for client in config.clients:
        row = [f"{client.name} ({client.contract})"]
        for server in config.servers:
            cell = _cell(cells, client.name, server.name)
            row.append(f"{cell.passed}/{cell.total}")
        rows.append(row)
    return rows


# ------------------------------------------------------------------ console


def console(config: MatrixConfig, cells: Sequence[CellResult], *, transcripts: bool = True) -> str:
    grid = _grid(config, cells)
    widths = [max(len(row[i]) for row in grid) for i in range(len(grid[0]))]
    lines = [f"ABP/1 interoperability matrix ({config.source})", ""]
    for n, row in enumerate(grid):
        cols = [row[0].ljust(widths[0])]
        for i, text in enumerate(row[1:], 1):
            mark = ""
            if n:
                cell = _cell(cells, config.clients[n - 1].name, config.servers[i - 1].name)
                mark = " ok" if cell.ok else " !!"
            cols.append((text + mark).ljust(widths[i] + 3))
        lines.append("  ".join(cols).rstrip())
    failed = _failures(cells)
    if failed:
        lines += ["", "failures:"]
    for cell in failed:
        lines.append(f"  {cell.client} x {cell.server}: {cell.passed}/{cell.total}")
        for scenario in cell.scenarios:
            if scenario.passed:
                continue
            lines.append(f"    {scenario.name}: {scenario.message}")
            if transcripts and scenario.transcript.records:
                lines.extend("        " + t for t in scenario.transcript.render().splitlines())
    total = sum(c.total for c in cells)
    passed = sum(c.passed for c in cells)
    ok = sum(1 for c in cells if c.ok)
    lines += [
        "",
        f"{ok} of {len(cells)} pairs interoperate fully; {passed}/{total} scenarios passed",
    ]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------- json


def as_json(
    config: MatrixConfig, cells: Sequence[CellResult], duration: float, exit_code: int
) -> dict[str, Any]:
    return {
        "config": config.source,
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "duration": round(duration, 3),
        "exit_code": exit_code,
        "servers": [{"name": s.name, "command": list(s.command)} for s in config.servers],
        "clients": [
            {"name": c.name, "contract": c.contract, "command": list(c.command)}
            for c in config.clients
        ],
        "scenarios": [{"name": s.name, "summary": s.summary} for s in SCENARIOS],
        "cells": [dict(cell.as_json(), anchor=anchor(cell)) for cell in cells],
    }


def dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, ensure_ascii=True) + "\n"


# ----------------------------------------------------------------- markdown


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(config: MatrixConfig, cells: Sequence[CellResult]) -> str:
    grid = _grid(config, cells)
    out = ["# ABP/1 interoperability matrix", "", f"Config: `{config.source}`", ""]
    out.append("| " + " | ".join(_md(h) for h in grid[0]) + " |")
    out.append("|" + "---|" * len(grid[0]))
    for n, row in enumerate(grid[1:]):
        cols = [_md(row[0])]
        for i, text in enumerate(row[1:]):
            cell = _cell(cells, config.clients[n].name, config.servers[i].name)
            cols.append(f"✅ {text}" if cell.ok else f"[❌ {text}](#{anchor(cell)})")
        out.append("| " + " | ".join(cols) + " |")
    out += ["", "Scenarios: " + ", ".join(f"`{s.name}` ({s.summary})" for s in SCENARIOS), ""]
    failed = _failures(cells)
    if failed:
        out += ["## Failures", ""]
    for cell in failed:
        out += [f'<a id="{anchor(cell)}"></a>', ""]
        out += [f"### {cell.client} &times; {cell.server}: {cell.passed}/{cell.total}", ""]
        for scenario in cell.scenarios:
            if scenario.passed:
                continue
            out += [f"#### {scenario.name}", "", _md(scenario.message), ""]
            out += ["```", scenario.transcript.render().replace("```", "` ` `"), "```", ""]
    return "\n".join(out)


# --------------------------------------------------------------------- html

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:.4em .8em;text-align:center}
th{background:#eee}td.pass{background:#d9f2d9}td.fail{background:#f8d7d7}
td.pass a,td.fail a{color:inherit}pre{background:#f6f6f6;padding:.6em;overflow-x:auto;
font-size:.85em}h3{margin-top:2em}.msg{color:#a00}
"""


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def html_report(config: MatrixConfig, cells: Sequence[CellResult]) -> str:
    grid = _grid(config, cells)
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>ABP/1 interoperability matrix</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>ABP/1 interoperability matrix</h1>",
        f"<p>Config: <code>{_e(config.source)}</code>. Rows are clients, columns servers; "
        "each cell counts the interop scenarios that passed.</p>",
        "<table><tr>" + "".join(f"<th>{_e(h)}</th>" for h in grid[0]) + "</tr>",
    ]
    for n, row in enumerate(grid[1:]):
        cols = [f"<th>{_e(row[0])}</th>"]
        for i, text in enumerate(row[1:]):
            cell = _cell(cells, config.clients[n].name, config.servers[i].name)
            kind = "pass" if cell.ok else "fail"
            cols.append(f'<td class="{kind}"><a href="#{anchor(cell)}">{_e(text)}</a></td>')
        out.append("<tr>" + "".join(cols) + "</tr>")
    out.append("</table>")
    out.append("<h2>Scenarios</h2><ul>")
    out += [f"<li><b>{_e(s.name)}</b>: {_e(s.summary)}</li>" for s in SCENARIOS]
    out.append("</ul><h2>Cells</h2>")
    for cell in cells:
        out.append(f'<h3 id="{anchor(cell)}">{_e(cell.client)} &times; {_e(cell.server)}: ')
        out.append(f"{cell.passed}/{cell.total}</h3><ul>")
        for scenario in cell.scenarios:
            if scenario.passed:
                out.append(f"<li>{_e(scenario.name)}: passed ({scenario.duration:.2f}s)</li>")
                continue
            out.append(f'<li>{_e(scenario.name)}: <span class="msg">{_e(scenario.message)}</span>')
            out.append(f"<pre>{_e(scenario.transcript.render())}</pre></li>")
        out.append("</ul>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"
