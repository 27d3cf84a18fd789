"""What one run found (``BenchResult``), as the text people read and the JSON tools read."""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from conformance.bench.load import MAX_KINDS, Histogram, Load, Tally, Verification
from protocol.address import format_address

if TYPE_CHECKING:
    from conformance.bench.run import BenchConfig

#: Above this share of one core, a load process is probably the bottleneck.
SATURATED = 0.9


@dataclass
class IdleOutcome:
    asked: int = 0  # idle connections the bench tried to hold
    opened: int = 0
    served: int = 0  # answered a fnd afterwards, correctly
    failures: dict[str, int] = field(default_factory=dict)
    open_seconds: float = 0.0

    def fail(self, kind: str) -> None:
        kind = kind if kind in self.failures or len(self.failures) < MAX_KINDS else "other kinds"
        self.failures[kind] = self.failures.get(kind, 0) + 1


@dataclass
class BenchResult:
    config: BenchConfig
    prefix: str = ""
    framing: str = "line"
    pipeline: int = 1
    processes: int = 1
    notes: list[str] = field(default_factory=list)
    limitations: list[str] = field(default_factory=list)
    tally: Tally = field(default_factory=Tally)
    histogram: Histogram = field(default_factory=Histogram)
    verification: Verification | None = None
    elapsed: float = 0.0
    connected: int = 0
    served_in_time: int = 0
    worker_cpu: list[float] = field(default_factory=list)  # share of one core, per process
    worker_cpu_seconds: float = 0.0  # CPU the load processes used in the timed phase
    worker_errors: list[str] = field(default_factory=list)
    server_cpu: float | None = None  # share of one core during the timed phase
    server_cpu_seconds: float | None = None
    rss_kb: dict[str, int | None] = field(default_factory=dict)
    bystander: Load | None = None
    idle: IdleOutcome = field(default_factory=IdleOutcome)

    @property
    def answered(self) -> int:
        return sum(self.tally.answered.values())

    @property
    def throughput(self) -> float:
        return self.answered / self.elapsed if self.elapsed > 0 else 0.0

    def cpu_per_request(self) -> tuple[float | None, float | None]:
        """Microseconds of CPU per answer: (load processes, server). Unlike
        throughput, this hardly depends on what else the machine runs."""
        if not self.answered:
            return None, None
        server = self.server_cpu_seconds
        return (
            self.worker_cpu_seconds / self.answered * 1e6,
            None if server is None else server / self.answered * 1e6,
        )

    @property
    def data_failures(self) -> int:
        """Malformed answers, wrong answers and lost writes: any makes exit 1."""
        count = self.tally.malformed + self.tally.wrong
        if self.verification is not None:
            count += self.verification.lost + self.verification.unexpected
        if self.bystander is not None:
            count += self.bystander.tally.malformed + self.bystander.tally.wrong
        return count

    @property
    def examples(self) -> list[str]:
        more = [] if self.verification is None else self.verification.examples
        return self.tally.examples + more


def status(result: BenchResult) -> str:
    """fail (data lost, wrong or malformed answers), skipped, incomplete or pass."""
    if result.data_failures:
        return "fail"
    if not result.config.data_check:
        return "skipped"
    verification = result.verification
    if verification is None or verification.unverified or result.worker_errors:
        return "incomplete"
    return "pass"


def exit_status(result: BenchResult) -> int:
    return 1 if result.data_failures else 0


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if value < 1 else f"{value:.2f}" if value < 100 else f"{value:.0f}"


def _us(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} us"


def _latency(histogram: Histogram) -> str:
    summary = histogram.summary()
    return "  ".join(f"{key} {_ms(summary[key])}" for key in ("p50", "p90", "p99", "p99.9", "max"))


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{kind} x{count:,}" for kind, count in sorted(counts.items()))


def text(result: BenchResult) -> str:
    config, tally = result.config, result.tally
    answered = tally.answered
    load = ", ".join(f"{share:.0%}" for share in result.worker_cpu) or "-"
    server = "-" if result.server_cpu is None else f"{result.server_cpu:.0%}"
    per_load, per_server = result.cpu_per_request()
    lines = [
        f"bench: {'tls://' if config.tls else ''}{format_address(config.host, config.port)}, "
        f"{result.framing} framing, "
        f"{config.connections} connection(s) in {result.processes} process(es), "
        f"pipeline {result.pipeline}, mix {config.mix}",
        f"throughput: {result.throughput:,.0f} requests/s "
        f"({result.answered:,} answers in {result.elapsed:.2f} s)",
        f"latency ms: {_latency(result.histogram)}",
        f"answers: fnd {answered['fnd']:,} ({tally.not_found:,} not found), "
        f"add {answered['add']:,} ({tally.acked_adds:,} acknowledged), rem {answered['rem']:,}",
        f"errors: {_counts(tally.errors) or 'none'}",
        f"cpu (share of one core): load process(es) {load}; server {server}; per answer: "
        f"load {_us(per_load)}, server {_us(per_server)}",
    ]
    if any(share > SATURATED for share in result.worker_cpu):
        lines.append("  warning: a load process was near 100% of a core (try more --processes)")
    if result.bystander is not None:
        histogram = result.bystander.histogram
        lines.append(
            f"bystander fnd: {histogram.total():,} answers, latency ms: {_latency(histogram)}"
        )
    idle = result.idle
    if idle.asked:
        lines.append(
            f"idle: {idle.opened:,} of {idle.asked:,} connections held open (in "
            f"{idle.open_seconds:.1f} s), {idle.served:,} served a fnd afterwards"
            + (f"; {_counts(idle.failures)}" if idle.failures else "")
        )
    rss = {stage: kb for stage, kb in result.rss_kb.items() if kb is not None}
    if rss:
        lines.append("server RSS: " + ", ".join(f"{k} {v / 1024:.1f} MiB" for k, v in rss.items()))
    lines.append(_data_line(result))
    lines.extend(f"  {example}" for example in result.examples[:10])
    lines.extend(f"note: {note}" for note in result.notes)
    lines.extend(f"could not do: {item}" for item in result.limitations)
    lines.extend(f"load process failed: {item}" for item in result.worker_errors)
    return "\n".join(lines)


def _data_line(result: BenchResult) -> str:
    tally, answers = result.tally, result.answered
    if not result.config.data_check:
        return f"data check: skipped (--no-data-check); malformed answers: {tally.malformed:,}"
    checked = result.verification
    after = (
        "no check afterwards"
        if checked is None
        else f"{checked.names:,} names checked afterwards: {checked.verified:,} as "
        f"acknowledged, {checked.lost:,} lost, {checked.unexpected:,} unexpected, "
        f"{checked.unverified:,} not checkable"
    )
    return (
        f"data check: {status(result).upper()}: {answers - tally.malformed:,} of {answers:,} "
        f"answers well-formed, {tally.wrong:,} wrong; {after}"
    )


def machine() -> dict[str, object]:
    return {
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "executable": sys.executable,
    }


def as_json(result: BenchResult) -> dict[str, Any]:
    config, tally, checked = result.config, result.tally, result.verification
    load_us, server_us = result.cpu_per_request()
    out: dict[str, Any] = {
        "server": format_address(config.host, config.port),
        "tls": config.tls is not None,
        "framing": result.framing,
        "connections": config.connections,
        "processes": result.processes,
        "pipeline": result.pipeline,
        "mix": config.mix.as_dict(),
        "duration_asked_s": config.duration,
        "requests_asked": config.requests,
        "elapsed_s": result.elapsed,
        "answers": result.answered,
        "throughput_rps": result.throughput,
        "latency_ms": result.histogram.summary(),
        "by_command": dict(tally.answered),
        "acknowledged_adds": tally.acked_adds,
        "not_found": tally.not_found,
        "legacy_answers": tally.legacy_answers,
        "errors": dict(tally.errors),
        "connections_opened": result.connected,
        "connections_served_during_run": result.served_in_time,
        "data_check": {
            "status": status(result),
            "malformed": tally.malformed,
            "wrong": tally.wrong,
            **{
                key: None if checked is None else getattr(checked, key)
                for key in ("names", "verified", "lost", "unexpected", "unverified")
            },
            "examples": result.examples,
        },
        "generator_cpu_share": result.worker_cpu,
        "server_pid": config.server_pid,
        "server_cpu_share": result.server_cpu,
        "cpu_us_per_answer": {"load": load_us, "server": server_us},
        "server_rss_kb": result.rss_kb,
        "notes": result.notes,
        "limitations": result.limitations,
        "load_process_errors": result.worker_errors,
        "machine": machine(),
        "exit_status": exit_status(result),
    }
    if result.bystander is not None:
        by = result.bystander
        out["bystander"] = {
            "answers": by.histogram.total(),
            "latency_ms": by.histogram.summary(),
            "errors": dict(by.tally.errors),
            "malformed": by.tally.malformed,
            "wrong": by.tally.wrong,
        }
    if result.idle.asked:
        out["idle"] = asdict(result.idle)
    return out
