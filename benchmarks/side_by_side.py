"""The reference server next to the limit, in ONE run, with one load generator.

Starts (a) the asyncio line-echo baseline (``echo_server.py``), (b) the
reference server with ``--sync normal`` and (c) with ``--sync full``, runs
every scenario of issue 5 against them with ``conformance.bench`` and prints
one table with the ratios and, for each target, met or not.

    python benchmarks/side_by_side.py                 # ~3 minutes
    python benchmarks/side_by_side.py --seconds 2     # shorter runs, noisier
    python benchmarks/side_by_side.py --markdown docs/side_by_side.md --json run.json

Every figure printed is measured in this run; nothing is carried over.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from conformance.bench import BenchConfig, BenchError, BenchResult, Mix, run_bench
from conformance.bench.report import as_json, machine, status
from conformance.harness.process import LOOPBACK, ServerProcess, ServerStartError

HERE = Path(__file__).resolve().parent
SERVERS = ("echo", "normal", "full")
MB = 1024  # KiB per MiB


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


@dataclass
class Scenario:
    key: str
    title: str
    config: BenchConfig
    servers: tuple[str, ...] = SERVERS
    results: dict[str, BenchResult] = field(default_factory=dict)


def start_servers(tmpdir: str, max_conns: int) -> dict[str, ServerProcess]:
    python = sys.executable
    common = ["--max-conns", str(max_conns), "--idle-timeout", "600"]
    one_address = ["--max-conns-per-ip", str(max_conns)]  # every load client is 127.0.0.1
    templates = {
        "echo": [python, str(HERE / "echo_server.py"), "--host", "{host}", "--port", "{port}"],
        "normal": [
            python, "-m", "reference_server", "--host", "{host}", "--port", "{port}",
            "--db", f"{tmpdir}/normal.sqlite3", "--sync", "normal", *common, *one_address,
        ],
        "full": [
            python, "-m", "reference_server", "--host", "{host}", "--port", "{port}",
            "--db", f"{tmpdir}/full.sqlite3", "--sync", "full", *common, *one_address,
        ],
    }  # fmt: skip
    servers: dict[str, ServerProcess] = {}
    try:
        for name, template in templates.items():
            servers[name] = ServerProcess(template, host=LOOPBACK, ready_timeout=20.0)
            servers[name].start()
    except ServerStartError:
        for server in servers.values():
            server.__exit__(None, None, None)
        raise
    return servers


def scenarios(seconds: float, processes: int, idle: int) -> list[Scenario]:
    base = BenchConfig(duration=seconds, processes=processes, progress=False, timeout=10.0)
    fnd = Mix(fnd=100)
    more = min(processes * 2, 16)
    return [
        Scenario("lockstep50", "lockstep fnd, 50 connections", replace(base, connections=50)),
        Scenario(
            "generator",
            f"lockstep fnd, 50 connections, {more} load processes (is the generator the limit?)",
            replace(base, connections=50, processes=more),
            servers=("echo", "normal"),
        ),
        Scenario(
            "mix50",
            "mix fnd:80,add:20, 50 connections",
            replace(base, connections=50, mix=Mix(fnd=80, add=20)),
        ),
        Scenario(
            "add50",
            "add only, 50 writers",
            replace(base, connections=50, mix=Mix(fnd=0, add=100)),
        ),
        Scenario("lockstep8", "lockstep fnd, 8 connections", replace(base, connections=8)),
        Scenario(
            "pipeline8",
            "pipelined fnd, --pipeline 32, 8 connections",
            replace(base, connections=8, pipeline=32, mix=fnd),
        ),
        Scenario(
            "flood",
            "1 client flooding add (--pipeline 32) + bystander fnd",
            replace(base, connections=1, pipeline=32, mix=Mix(fnd=0, add=100), bystander=True),
            servers=("normal", "full"),
        ),
        Scenario(
            "idle",
            f"{idle:,} idle connections, then a fnd on each",
            replace(base, connections=1, duration=min(seconds, 1.0), idle=idle),
            servers=("echo", "normal"),
        ),
    ]


def run_all(
    plan: list[Scenario], servers: dict[str, ServerProcess], say: Callable[[str], None]
) -> None:
    for scenario in plan:
        for name in scenario.servers:
            server = servers[name]
            config = replace(
                scenario.config,
                host=server.host,
                port=server.port,
                server_pid=server.pid,
                data_check=name != "echo",  # the echo stores nothing
            )
            try:
                result = run_bench(config)
            except BenchError as exc:
                say(f"  {scenario.key:<11} {name:<7} FAILED: {exc}")
                continue
            scenario.results[name] = result
            cpu = ",".join(f"{c:.0%}" for c in result.worker_cpu)
            server_cpu = "-" if result.server_cpu is None else f"{result.server_cpu:.0%}"
            per_load, per_server = result.cpu_per_request()
            say(
                f"  {scenario.key:<11} {name:<7} {result.throughput:>9,.0f} req/s  "
                f"p99 {result.histogram.percentile(99) or 0:7.2f} ms  "
                f"data {status(result):<10} cpu load {cpu} server {server_cpu}; us/answer "
                f"load {_fmt(per_load, '.1f')} server {_fmt(per_server, '.1f')}"
            )


# ------------------------------------------------------------------ verdicts


def _tp(plan: dict[str, Scenario], key: str, server: str) -> float | None:
    result = plan[key].results.get(server)
    return None if result is None else result.throughput


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def verdicts(plan: dict[str, Scenario]) -> list[tuple[str, str, str, bool | None]]:
    """(target, measured, requirement, met)."""
    out: list[tuple[str, str, str, bool | None]] = []

    def met(value: float | None, ok: Callable[[float], bool]) -> bool | None:
        return None if value is None else ok(value)

    r = _ratio(_tp(plan, "lockstep50", "normal"), _tp(plan, "lockstep50", "echo"))
    out.append(
        (
            "lockstep fnd, 50 conns: normal / echo",
            _fmt(r, ".2f"),
            ">= 0.60",
            met(r, lambda v: v >= 0.6),
        )
    )
    mix = plan["mix50"].results.get("normal")
    r = _ratio(_tp(plan, "mix50", "normal"), _tp(plan, "mix50", "echo"))
    lost_ok = mix is not None and mix.data_failures == 0 and status(mix) == "pass"
    out.append(
        (
            "mix fnd:80,add:20, 50 conns, normal: / echo, no acknowledged write lost",
            f"{_fmt(r, '.2f')}, data check {status(mix) if mix else 'n/a'}",
            ">= 0.50 and pass",
            None if r is None else (r >= 0.5 and lost_ok),
        )
    )
    full = plan["add50"].results.get("full")
    adds = None if full is None or full.elapsed <= 0 else full.tally.acked_adds / full.elapsed
    out.append(
        (
            "add only, 50 writers, --sync full: acknowledged adds/s",
            _fmt(adds, ",.0f"),
            ">= 2,000",
            met(adds, lambda v: v >= 2000),
        )
    )
    r = _ratio(_tp(plan, "pipeline8", "normal"), _tp(plan, "lockstep8", "normal"))
    out.append(
        (
            "pipeline 32 vs lockstep, 8 conns, normal",
            _fmt(r, ".2f"),
            ">= 3.00",
            met(r, lambda v: v >= 3),
        )
    )
    idle = plan["idle"].results.get("normal")
    if idle is not None and idle.idle.asked:
        before = idle.rss_kb.get("before")
        after = idle.rss_kb.get("idle_served")
        growth = None if before is None or after is None else (after - before) / MB
        served = idle.idle.served
        asked = idle.idle.asked
        out.append(
            (
                f"{asked:,} idle conns served a fnd, RSS growth (MiB)",
                f"{served:,}/{asked:,} served, +{_fmt(growth, '.1f')} MiB",
                "all served, <= 100 MiB",
                None if growth is None else (served == asked and growth <= 100),
            )
        )
    for server in ("normal", "full"):
        flood = plan["flood"].results.get(server)
        p99 = None
        if flood is not None and flood.bystander is not None:
            p99 = flood.bystander.histogram.percentile(99)
        out.append(
            (
                f"add flood, --sync {server}: bystander fnd p99 (ms)",
                _fmt(p99, ".2f"),
                "< 20",
                met(p99, lambda v: v < 20),
            )
        )
    return out


def table(plan: list[Scenario]) -> str:
    by_key = {s.key: s for s in plan}
    lines = [
        "| scenario | echo (baseline) | reference --sync normal | reference --sync full |"
        " normal / echo | full / echo |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for scenario in plan:
        if scenario.key in ("idle",):
            continue
        cells = []
        for name in SERVERS:
            result = scenario.results.get(name)
            if name not in scenario.servers:
                cells.append("-")
            elif result is None:
                cells.append("failed")
            else:
                p99 = result.histogram.percentile(99)
                per_server = result.cpu_per_request()[1]
                cpu = f", server CPU {_fmt(per_server, '.0f')} us/req"
                cell = f"{result.throughput:,.0f} req/s, p99 {_fmt(p99, '.1f')} ms{cpu}"
                if scenario.key == "add50" and name != "echo":
                    cell = (
                        f"{result.tally.acked_adds / max(result.elapsed, 1e-9):,.0f} "
                        f"acked adds/s, p99 {_fmt(p99, '.1f')} ms{cpu}"
                    )
                if scenario.key == "flood" and result.bystander is not None:
                    bp99 = result.bystander.histogram.percentile(99)
                    cell += f"; bystander fnd p99 {_fmt(bp99, '.1f')} ms"
                cells.append(cell)
        normal = _ratio(_tp(by_key, scenario.key, "normal"), _tp(by_key, scenario.key, "echo"))
        full = _ratio(_tp(by_key, scenario.key, "full"), _tp(by_key, scenario.key, "echo"))
        lines.append(
            f"| {scenario.title} | {' | '.join(cells)} | {_fmt(normal, '.2f')} | "
            f"{_fmt(full, '.2f')} |"
        )
    idle = by_key["idle"]
    for name in idle.servers:
        result = idle.results.get(name)
        if result is None or not result.idle.asked:
            continue
        rss = result.rss_kb
        before, after = rss.get("before"), rss.get("idle_served")
        growth = "n/a" if before is None or after is None else f"+{(after - before) / MB:.1f} MiB"
        lines.append(
            f"| {idle.title}: {name} | {result.idle.opened:,} opened in "
            f"{result.idle.open_seconds:.1f} s, {result.idle.served:,} served | "
            f"RSS {growth} | | | |"
        )
    lines.append("")
    lines.append("| target | measured | wanted | met |")
    lines.append("|---|---|---|---|")
    for target, measured, wanted, ok in verdicts(by_key):
        verdict = "n/a" if ok is None else ("met" if ok else "**missed**")
        lines.append(f"| {target} | {measured} | {wanted} | {verdict} |")
    return "\n".join(lines)


def generator_check(plan: list[Scenario]) -> str:
    lines = []
    for scenario in plan:
        for name, result in scenario.results.items():
            busiest = max(result.worker_cpu, default=0.0)
            if busiest > 0.9:
                lines.append(
                    f"- {scenario.key}/{name}: a load process used {busiest:.0%} of a core "
                    "(the generator may be the bottleneck)"
                )
    return "\n".join(lines) or "- no load process went above 90% of a core"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per measurement (default 5)")
    parser.add_argument("--processes", type=int, default=1, help="load processes per run")
    parser.add_argument("--idle", type=int, default=10_000, help="idle connections (10000)")
    parser.add_argument("--json", help="write every run's full result here")
    parser.add_argument("--markdown", help="write the table here too")
    args = parser.parse_args(argv)
    if not 0.5 <= args.seconds <= 60 or not 1 <= args.processes <= 16 or args.idle < 0:
        parser.error("--seconds 0.5..60, --processes 1..16, --idle >= 0")
    command = "python benchmarks/side_by_side.py " + " ".join(argv or sys.argv[1:])

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    plan = scenarios(args.seconds, args.processes, args.idle)
    started = time.monotonic()
    load_before = loadavg()
    with tempfile.TemporaryDirectory(prefix="abp-side-") as tmpdir:
        try:
            servers = start_servers(tmpdir, max_conns=args.idle + 200)
        except ServerStartError as exc:
            print(f"side_by_side: error: {str(exc).splitlines()[0]}", file=sys.stderr)
            return 2
        try:
            run_all(plan, servers, say)
        finally:
            for server in servers.values():
                server.__exit__(None, None, None)  # stop() and close its stderr file
    info = machine()
    header = (
        f"command: `{command.strip()}`\n"
        f"machine: {info['nproc']} CPUs, Python {info['python']} ({info['implementation']}), "
        f"{info['platform']}\n"
        f"load average before/after: {load_before} / {loadavg()}; "
        f"wall time {time.monotonic() - started:.0f} s; {args.seconds:g} s per measurement, "
        f"{args.processes} load process(es)\n"
    )
    text = f"{header}\n{table(plan)}\n\ngenerator check:\n{generator_check(plan)}\n"
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text)
    if args.json:
        dump: dict[str, Any] = {
            "command": command,
            "machine": info,
            "runs": {s.key: {name: as_json(r) for name, r in s.results.items()} for s in plan},
        }
        Path(args.json).write_text(json.dumps(dump, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
