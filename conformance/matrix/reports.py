"""Showing the matrix: console, Markdown, JSON and one self-contained HTML page.

One model for every view: the JSON document (``document``) a run writes is
read back into a ``Dashboard`` (``Dashboard.from_document``; its cells are
``cells.Cell``, written and read by ``Cell.as_json``/``from_json``), and several of
them, the shards of one matrix and any server ``conformance run`` reports,
are joined by ``merge`` (``conformance report merge``). Every renderer draws a
``Dashboard``, so a merged page and a one-machine page look the same.

Rows are clients, columns servers, each cell ``passed/total`` (``-`` for a
cell another shard runs, ``missing`` for one no input holds). Below: the
implementations x scenarios table, where an implementation that fails a
scenario against every peer (two at least) is marked as the likely culprit,
then every cell's scenarios with the failures' transcripts (``>>`` what the
client sent, ``<<`` what the server answered, ``--`` events).
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from conformance.matrix.cells import Cell, anchor_for
from conformance.matrix.config import MatrixConfig
from conformance.matrix.scenarios import SCENARIOS
from conformance.reports import page
from conformance.reports.html import card as run_card
from conformance.reports.markdown import cell as md_cell
from conformance.reports.markdown import fence
from conformance.reports.model import FAIL, WARN, RunResult
from conformance.reports.page import e, status_tag
from conformance.reports.provenance import Provenance, target_summary

KIND = "matrix"


class MergeError(ValueError):
    """Inputs that cannot be joined; the message (one line) says which and why."""


# ------------------------------------------------------------------ the model


@dataclass(frozen=True)
class Source:
    """One input of the dashboard: a matrix run (or shard) or a server run."""

    name: str  # file name, or "" for this process
    kind: str  # "matrix" or "run"
    shard: str  # "K/N" or ""
    provenance: Provenance
    duration: float
    exit_code: int


@dataclass(frozen=True)
class Culprit:
    role: str  # "server" or "client"
    name: str
    scenario: str
    peers: int


@dataclass
class Dashboard:
    config: str
    servers: list[tuple[str, str]]  # name, command
    clients: list[tuple[str, str, str]]  # name, contract, command
    scenarios: list[tuple[str, str]]  # name, summary
    cells: list[Cell]
    sources: list[Source] = field(default_factory=list)
    runs: list[tuple[str, RunResult]] = field(default_factory=list)  # file, server run
    merged: bool = False  # joined by ``merge``: a pair no input holds is missing

    def cell(self, client: str, server: str) -> Cell | None:
        return next((c for c in self.cells if c.client == client and c.server == server), None)

    @property
    def missing(self) -> list[tuple[str, str]]:
        """Pairs of the config that no input of a merge ran (a shard left out)."""
        if not self.merged:
            return []
        return [
            (c, s) for c, _, _ in self.clients for s, _ in self.servers if self.cell(c, s) is None
        ]

    @property
    def exit_code(self) -> int:
        cells_ok = all(c.ok for c in self.cells) and not self.missing
        runs_ok = all(run.exit_code() == 0 for _, run in self.runs)
        return 0 if cells_ok and runs_ok else 1

    def culprits(self) -> list[Culprit]:
        """Who fails a scenario against every peer (of two or more): the likely culprit."""
        found: list[Culprit] = []
        for role, names in (
            ("server", [s for s, _ in self.servers]),
            ("client", [c for c, _, _ in self.clients]),
        ):
            for name in names:
                mine = [
                    c for c in self.cells if (c.server if role == "server" else c.client) == name
                ]
                for scenario, _ in self.scenarios:
                    outcomes = [c.failed(scenario) for c in mine]
                    ran = [o for o in outcomes if o is not None]
                    if len(ran) >= 2 and all(ran):
                        found.append(Culprit(role, name, scenario, len(ran)))
        return found

    @property
    def started(self) -> str:
        times = [s.provenance.started for s in self.sources if s.provenance.started]
        return min(times) if times else ""

    @property
    def duration(self) -> float:
        """The longest input's duration: shards run side by side."""
        return max((s.duration for s in self.sources), default=0.0)

    @classmethod
    def from_document(cls, data: dict[str, Any], name: str = "") -> Dashboard:
        """A matrix JSON document back as a dashboard (``ValueError`` if it is none)."""
        if data.get("kind", KIND) != KIND or not isinstance(data.get("cells"), list):
            raise ValueError("not a matrix report (no cells)")
        try:
            cells = [Cell.from_json(c, name) for c in data["cells"]]
            servers = [(str(s["name"]), _command(s["command"])) for s in data["servers"]]
            clients = [
                (str(c["name"]), str(c["contract"]), _command(c["command"]))
                for c in data["clients"]
            ]
            scenarios = [(str(s["name"]), str(s["summary"])) for s in data["scenarios"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a matrix report: {exc}") from None
        source = Source(
            name,
            KIND,
            str(data.get("shard") or ""),
            Provenance.from_json(data.get("provenance")),
            float(data.get("duration", 0.0)),
            int(data.get("exit_code", 0)),
        )
        return cls(
            str(data.get("config", "")),
            servers,
            clients,
            scenarios,
            cells,
            [source],
        )


def _command(words: object) -> str:
    if isinstance(words, list):
        return shlex.join(str(w) for w in words)
    return str(words)


# ------------------------------------------------------------------ the document


def document(
    config: MatrixConfig,
    cells: Sequence[Cell],
    duration: float,
    exit_code: int,
    *,
    provenance: Provenance | None = None,
    shard: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """The JSON a matrix run writes (``--json``): everything the views need."""
    prov = provenance or Provenance()
    return {
        "kind": KIND,
        "config": config.source,
        "shard": f"{shard[0]}/{shard[1]}" if shard else None,
        "started": prov.started,
        "duration": round(duration, 3),
        "exit_code": exit_code,
        "provenance": prov.as_json(),
        "servers": [{"name": s.name, "command": list(s.command)} for s in config.servers],
        "clients": [
            {"name": c.name, "contract": c.contract, "command": list(c.command)}
            for c in config.clients
        ],
        "scenarios": [{"name": s.name, "summary": s.summary} for s in SCENARIOS],
        "cells": [cell.as_json() for cell in cells],
    }


def joined_document(d: Dashboard) -> dict[str, Any]:
    """A merged dashboard as JSON: a matrix document (``report merge`` takes it
    again) that also lists its inputs and the server runs' verdicts."""
    return {
        "kind": KIND,
        "config": d.config,
        "shard": None,
        "started": d.started,
        "duration": round(d.duration, 3),
        "exit_code": d.exit_code,
        "provenance": next((s.provenance.as_json() for s in d.sources), {}),
        "servers": [{"name": n, "command": cmd} for n, cmd in d.servers],
        "clients": [{"name": n, "contract": k, "command": cmd} for n, k, cmd in d.clients],
        "scenarios": [{"name": n, "summary": s} for n, s in d.scenarios],
        "cells": [c.as_json() for c in d.cells],
        "missing": [{"client": c, "server": s} for c, s in d.missing],
        "culprits": [
            {"role": c.role, "name": c.name, "scenario": c.scenario, "peers": c.peers}
            for c in d.culprits()
        ],
        "inputs": [
            {
                "name": s.name,
                "kind": s.kind,
                "shard": s.shard,
                "duration": s.duration,
                "exit_code": s.exit_code,
                "provenance": s.provenance.as_json(),
            }
            for s in d.sources
        ],
        "runs": [
            {"name": name, "target": run.target, "verdict": run.verdict(), "summary": run.summary()}
            for name, run in d.runs
        ],
    }


def dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, ensure_ascii=True) + "\n"


def dashboard(
    config: MatrixConfig,
    cells: Sequence[Cell],
    duration: float = 0.0,
    exit_code: int = 0,
    *,
    provenance: Provenance | None = None,
    shard: tuple[int, int] | None = None,
) -> Dashboard:
    doc = document(config, cells, duration, exit_code, provenance=provenance, shard=shard)
    return Dashboard.from_document(doc)


# ------------------------------------------------------------------ merging


def load_input(data: object, name: str) -> Dashboard | RunResult:
    """One file of ``report merge``: a matrix document or a ``conformance run`` report."""
    if not isinstance(data, dict):
        raise MergeError(f"{name}: not a conformance report (a JSON object is expected)")
    try:
        if data.get("kind") == "run" or ("tests" in data and "cells" not in data):
            return RunResult.from_json(data)
        return Dashboard.from_document(data, name)
    except ValueError as exc:
        raise MergeError(f"{name}: {exc}") from None


def merge(inputs: Iterable[tuple[str, Dashboard | RunResult]]) -> Dashboard:
    """Shards of one matrix, and server runs, as one dashboard."""
    merged: Dashboard | None = None
    runs: list[tuple[str, RunResult]] = []
    specs: dict[str, str] = {}
    for name, item in inputs:
        prov = item.provenance if isinstance(item, RunResult) else item.sources[0].provenance
        if prov.spec_sha256:
            specs.setdefault(prov.spec_sha256, name)
        if len(specs) > 1:
            first = next(iter(specs.values()))
            raise MergeError(f"{first} and {name} were judged against different spec texts")
        if isinstance(item, RunResult):
            runs.append((name, item))
            continue
        if merged is None:  # a copy: the inputs stay as they were
            merged = replace(
                item, cells=list(item.cells), sources=list(item.sources), runs=[], merged=True
            )
            continue
        if (merged.servers, merged.clients) != (item.servers, item.clients):
            other = merged.sources[0].name
            raise MergeError(f"{other} and {name} come from different matrix configs")
        for cell in item.cells:
            twice = merged.cell(cell.client, cell.server)
            if twice is not None:
                raise MergeError(
                    f"the cell {cell.client} x {cell.server} is in both {twice.source} and {name}"
                )
            merged.cells.append(cell)
        merged.sources.extend(item.sources)
    if merged is None:
        merged = Dashboard("", [], [], [(s.name, s.summary) for s in SCENARIOS], [])
    merged.runs.extend(runs)
    for name, run in runs:
        merged.sources.append(
            Source(name, "run", "", run.provenance, run.duration, run.exit_code())
        )
    order = {(c, s): n for n, (c, s) in enumerate(_pairs(merged))}
    merged.cells.sort(key=lambda c: order.get((c.client, c.server), len(order)))
    return merged


def _pairs(d: Dashboard) -> list[tuple[str, str]]:
    return [(c, s) for c, _, _ in d.clients for s, _ in d.servers]


# ------------------------------------------------------------------ console


def _grid_text(d: Dashboard, client: str, server: str) -> tuple[str, str]:
    """The cell's text and its mark (ok / !! / other shard / missing)."""
    cell = d.cell(client, server)
    if cell is not None:
        return f"{cell.passed}/{cell.total}", "ok" if cell.ok else "!!"
    if d.merged:
        return "missing", ""
    return "-", ""


def console(d: Dashboard, *, transcripts: bool = True) -> str:
    header = ["client \\ server", *(s for s, _ in d.servers)]
    rows = [header]
    marks: list[list[str]] = [[""] * len(header)]
    for client, contract, _ in d.clients:
        row, mark = [f"{client} ({contract})"], [""]
        for server, _ in d.servers:
            text, sign = _grid_text(d, client, server)
            row.append(text)
            mark.append(sign)
        rows.append(row)
        marks.append(mark)
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    shards = [s.shard for s in d.sources if s.shard]
    title = d.config + (f", shard {', '.join(shards)}" if shards else "")
    lines = [f"ABP/1 interoperability matrix ({title})", ""]
    for row, mark in zip(rows, marks, strict=True):
        cols = [row[0].ljust(widths[0])]
        cols += [
            (text + (f" {sign}" if sign else "")).ljust(widths[i] + 3)
            for i, (text, sign) in enumerate(zip(row[1:], mark[1:], strict=True), 1)
        ]
        lines.append("  ".join(cols).rstrip())
    failed = [c for c in d.cells if not c.ok]
    if failed:
        lines += ["", "failures:"]
    for cell in failed:
        lines.append(f"  {cell.client} x {cell.server}: {cell.passed}/{cell.total}")
        for scenario in cell.scenarios:
            if scenario.passed:
                continue
            lines.append(f"    {scenario.name}: {scenario.message}")
            if transcripts and scenario.transcript:
                lines.extend("        " + t for t in scenario.transcript.splitlines())
    culprits = d.culprits()
    if culprits:
        lines += ["", "likely culprits (fail a scenario against every peer):"]
        lines += [f"  {c.role} {c.name}: {c.scenario} (against all {c.peers})" for c in culprits]
    total = sum(c.total for c in d.cells)
    passed = sum(c.passed for c in d.cells)
    ok = sum(1 for c in d.cells if c.ok)
    lines += [
        "",
        f"{ok} of {len(d.cells)} pairs interoperate fully; {passed}/{total} scenarios passed",
    ]
    if d.missing:
        lines.append(f"{len(d.missing)} pair(s) in no input: " + _pair_list(d.missing))
    return "\n".join(lines) + "\n"


def _pair_list(pairs: Sequence[tuple[str, str]]) -> str:
    return ", ".join(f"{c} x {s}" for c, s in pairs)


# ----------------------------------------------------------------- markdown


def markdown(d: Dashboard) -> str:
    icon = "✅" if d.exit_code == 0 else "❌"
    out = [f"## {icon} ABP/1 interoperability matrix", ""]
    if d.config:
        out += [f"Config: `{md_cell(d.config)}`; {_sources_line(d)}.", ""]
    out += _md_grid(d)
    culprits = d.culprits()
    if culprits:
        out += ["**Likely culprits** (fail a scenario against every peer):", ""]
        out += [
            f"- {c.role} **{md_cell(c.name)}**: `{c.scenario}` (against all {c.peers})"
            for c in culprits
        ]
        out.append("")
    if d.missing:
        out += [f"**{len(d.missing)} pair(s) in no input:** {md_cell(_pair_list(d.missing))}", ""]
    out += _md_runs(d)
    failed = [c for c in d.cells if not c.ok]
    if failed:
        out += ["<details><summary>Failures</summary>", ""]
    for cell in failed:
        out += [f'<a id="{cell.anchor}"></a>', ""]
        title = f"{md_cell(cell.client)} &times; {md_cell(cell.server)}"
        out += [f"#### {title}: {cell.passed}/{cell.total}", ""]
        for scenario in cell.scenarios:
            if not scenario.passed:
                out += [f"**{md_cell(scenario.name)}**: {md_cell(scenario.message)}", ""]
                out += [fence(scenario.transcript), ""]
    if failed:
        out += ["</details>", ""]
    return "\n".join(out)


def _md_grid(d: Dashboard) -> list[str]:
    if not d.servers:
        return []
    out = ["| client \\ server | " + " | ".join(md_cell(s) for s, _ in d.servers) + " |"]
    out.append("|" + "---|" * (len(d.servers) + 1))
    for client, contract, _ in d.clients:
        cols = [md_cell(f"{client} ({contract})")]
        for server, _ in d.servers:
            text, sign = _grid_text(d, client, server)
            if sign == "ok":
                cols.append(f"✅ {text}")
            elif sign:
                cols.append(f"[❌ {text}](#{anchor_for(client, server)})")
            else:
                cols.append(f"⬜ {text}")
        out.append("| " + " | ".join(cols) + " |")
    out += ["", "Scenarios: " + ", ".join(f"`{n}` ({md_cell(s)})" for n, s in d.scenarios), ""]
    return out


def _md_runs(d: Dashboard) -> list[str]:
    if not d.runs:
        return []
    out = ["### Server runs", "", "| | target | tests | broken requirements |", "|---|---|---|---|"]
    for name, run in d.runs:
        s = run.summary()
        broken = [row.id for row in run.requirement_rows() if row.status in (FAIL, WARN)]
        out.append(
            f"| {'✅' if run.exit_code() == 0 else '❌'} | "
            f"{md_cell(target_summary(run.target))} ({md_cell(name)}) | "
            f"{s['passed']}/{s['tests']} passed | {md_cell(' '.join(broken) or '-')} |"
        )
    out.append("")
    return out


def _sources_line(d: Dashboard) -> str:
    shards = [s.shard for s in d.sources if s.kind == KIND and s.shard]
    when = f"started {d.started}, " if d.started else ""
    joined = f"{len(shards)} shards joined, " if len(shards) > 1 else ""
    return f"{joined}{when}{d.duration:.1f}s"


# --------------------------------------------------------------------- html


def html_report(d: Dashboard) -> str:
    out = page.head("ABP/1 interoperability matrix")
    verdict = "PASS" if d.exit_code == 0 else "FAIL"
    ok = sum(1 for c in d.cells if c.ok)
    out += [
        f"<h1>ABP/1 interoperability matrix {status_tag(verdict)}</h1>",
        f"<p>{ok} of {len(d.cells)} pairs interoperate fully; "
        f"{sum(c.passed for c in d.cells)}/{sum(c.total for c in d.cells)} scenarios passed. "
        "Rows are clients, columns servers; a cell links to its scenarios.</p>",
    ]
    if d.missing:
        out.append(f'<p class="culprit">{len(d.missing)} pair(s) in no input: '
                   f"{e(_pair_list(d.missing))}</p>")  # fmt: skip
    if d.servers:
        out.append("<table><tr><th>client \\ server</th>")
        out[-1] += "".join(f"<th>{e(s)}</th>" for s, _ in d.servers) + "</tr>"
        for client, contract, _ in d.clients:
            cols = [f"<th>{e(client)} ({e(contract)})</th>"]
            for server, _ in d.servers:
                text, sign = _grid_text(d, client, server)
                if not sign:
                    cols.append(f'<td class="cell none">{e(text)}</td>')
                    continue
                kind = "ok" if sign == "ok" else "bad"
                link = f'<a href="#{anchor_for(client, server)}">{e(text)}</a>'
                cols.append(f'<td class="cell {kind}">{link}</td>')
            out.append("<tr>" + "".join(cols) + "</tr>")
        out.append("</table>")
    out += _by_implementation(d)
    out += _runs_html(d)
    out += ["<h2>Run</h2>", page.facts(_facts(d), "run")]
    out += _commands(d)
    out += ["<h2>Cells</h2>"]
    counts = {"FAIL": sum(1 for c in d.cells if not c.ok)}
    out.append(page.filter_bar(counts, len(d.cells), ("all", "failed")))
    out.append(page.cards([_cell_card(cell) for cell in d.cells]))
    out += page.tail()
    return "\n".join(out) + "\n"


def _facts(d: Dashboard) -> list[tuple[str, str]]:
    pairs = [("config", d.config)] if d.config else []
    for source in d.sources:
        prov = source.provenance
        label = source.name or "run"
        if source.shard:
            label += f" (shard {source.shard})"
        what = "; ".join(
            part
            for part in (
                prov.command,
                f"started {prov.started}" if prov.started else "",
                f"{source.duration:.1f}s",
                f"exit {source.exit_code}",
            )
            if part
        )
        pairs.append((label, what))
    first = next((s.provenance for s in d.sources if s.provenance.toolkit), None)
    if first is not None:
        pairs += [
            ("started", d.started),
            ("duration", f"{d.duration:.1f}s (the longest input)"),
            ("toolkit", f"abp-toolkit {first.toolkit}"),
            ("spec", f"sha256 {first.spec_sha256}"),
            ("python", first.python),
            ("platform", first.platform),
        ]
    return [(label, value) for label, value in pairs if value]


def _commands(d: Dashboard) -> list[str]:
    if not d.servers:
        return []
    out = ["<h2>Implementations</h2><table><tr><th>role</th><th>name</th><th>command</th></tr>"]
    out += [
        f"<tr><td>server</td><td>{e(n)}</td><td><code>{e(cmd)}</code></td></tr>"
        for n, cmd in d.servers
    ]
    out += [
        f"<tr><td>client ({e(kind)})</td><td>{e(n)}</td><td><code>{e(cmd)}</code></td></tr>"
        for n, kind, cmd in d.clients
    ]
    out.append("</table>")
    return out


def _by_implementation(d: Dashboard) -> list[str]:
    """Implementations x scenarios: against how many peers each scenario passed."""
    if not d.cells:
        return []
    culprits = {(c.role, c.name, c.scenario) for c in d.culprits()}
    out = ["<h2>Implementations &times; scenarios</h2>",
           "<p>Against how many peers each scenario passed. "
           '<span class="culprit">Fails against every peer</span>: the likely culprit.</p>',
           "<table><tr><th>implementation</th>"
           + "".join(f"<th>{e(n)}</th>" for n, _ in d.scenarios) + "</tr>"]  # fmt: skip
    impls = [("server", s) for s, _ in d.servers] + [("client", c) for c, _, _ in d.clients]
    for role, name in impls:
        mine = [c for c in d.cells if (c.server if role == "server" else c.client) == name]
        cols = [f"<th>{role} {e(name)}</th>"]
        for scenario, _ in d.scenarios:
            ran = [c for c in mine if c.failed(scenario) is not None]
            good = sum(1 for c in ran if c.failed(scenario) is False)
            if not ran:
                cols.append('<td class="cell none">-</td>')
            elif (role, name, scenario) in culprits:
                cols.append(
                    f'<td class="cell bad"><span class="culprit" title="fails against every '
                    f'peer: likely the culprit">0/{len(ran)} &#9888;</span></td>'
                )
            else:
                cols.append(
                    f'<td class="cell {"ok" if good == len(ran) else "bad"}">{good}/{len(ran)}</td>'
                )
        out.append("<tr>" + "".join(cols) + "</tr>")
    out.append("</table>")
    return out


def _runs_html(d: Dashboard) -> list[str]:
    if not d.runs:
        return []
    out = ["<h2>Server runs</h2>"]
    for name, run in d.runs:
        s = run.summary()
        broken = [row.id for row in run.requirement_rows() if row.status in (FAIL, WARN)]
        out.append(
            f"<h3>{status_tag(run.verdict())} {e(target_summary(run.target))} "
            f'<span class="muted">({e(name)})</span></h3>'
            f"<p>{s['passed']}/{s['tests']} tests passed, {s['failed']} failed, "
            f"{s['warned']} warned, {s['skipped']} skipped; broken: "
            f"{e(' '.join(broken) or 'none')}.</p>"
        )
        bad = [r for r in run.sorted_records() if r.outcome in (FAIL, WARN)]
        out += [run_card(r, unfold=False) for r in bad]
    return out


def _cell_card(cell: Cell) -> str:
    status = "PASS" if cell.ok else "FAIL"
    parts = [
        f'<details class="card {status}" id="{cell.anchor}"{"" if cell.ok else " open"}>',
        f"<summary>{status_tag(status)} <b>{e(cell.client)} &times; {e(cell.server)}</b> "
        f"{cell.passed}/{cell.total} "
        f'<span class="muted">{cell.duration:.1f}s'
        + (f" &middot; from {e(cell.source)}" if cell.source else "")
        + "</span></summary><ul>",
    ]
    for scenario in cell.scenarios:
        if scenario.passed:
            parts.append(f"<li>{e(scenario.name)}: passed ({scenario.duration:.2f}s)</li>")
            continue
        parts.append(
            f'<li><b>{e(scenario.name)}</b>: <span class="culprit">{e(scenario.message)}</span>'
            f"<pre>{e(scenario.transcript)}</pre></li>"
        )
    parts.append("</ul></details>")
    return "\n".join(parts)
