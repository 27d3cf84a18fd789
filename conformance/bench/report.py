"""A ``BenchResult`` as the text people read and the JSON tools read."""

from __future__ import annotations

from typing import Any

from conformance.bench.keyspace import ADD, FND, REM
from conformance.bench.result import BenchResult
from conformance.bench.stats import Histogram
from conformance.bench.sysinfo import machine
from protocol.address import format_address

#: Above this share of one core, a load process is probably the bottleneck.
SATURATED = 0.9


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if value < 1 else f"{value:.2f}" if value < 100 else f"{value:.0f}"


def address(host: str, port: int) -> str:
    return format_address(host, port)


def _us(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} us"


def _latency_line(histogram: Histogram) -> str:
    summary = histogram.summary()
    return "  ".join(
        f"{label} {_ms(summary[label])}" for label in ("p50", "p90", "p99", "p99.9", "max")
    )


def status(result: BenchResult) -> str:
    """pass, fail (data lost or malformed answers) or incomplete."""
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


def text(result: BenchResult) -> str:
    config = result.config
    tally = result.tally
    lines = [
        f"bench: {address(config.host, config.port)}, {result.framing} framing, "
        f"{config.connections} connection(s) in {result.processes} process(es), "
        f"pipeline {result.pipeline}, mix {config.mix}",
        f"throughput: {result.throughput:,.0f} requests/s "
        f"({result.answered:,} answers in {result.elapsed:.2f} s)",
        f"latency ms: {_latency_line(result.histogram)}",
        f"answers: fnd {tally.answered[FND]:,} ({tally.not_found:,} not found), "
        f"add {tally.answered[ADD]:,} ({tally.acked_adds:,} acknowledged), "
        f"rem {tally.answered[REM]:,}",
    ]
    errors = dict(tally.errors)
    for kind, count in result.preload.errors.items():
        errors[f"before the run: {kind}"] = errors.get(f"before the run: {kind}", 0) + count
    shown = ", ".join(f"{kind} x{count:,}" for kind, count in sorted(errors.items()))
    lines.append(f"errors: {shown or 'none'}")
    load = ", ".join(f"{share:.0%}" for share in result.worker_cpu) or "-"
    server = "-" if result.server_cpu is None else f"{result.server_cpu:.0%}"
    per_load, per_server = result.cpu_per_request()
    lines.append(
        f"cpu (share of one core): load process(es) {load}; server {server}; per answer: "
        f"load {_us(per_load)}, server {_us(per_server)}"
    )
    if any(share > SATURATED for share in result.worker_cpu):
        lines.append(
            "  warning: a load process was near 100% of a core: the generator may be the "
            "bottleneck (try more --processes)"
        )
    if result.bystander is not None:
        bystander = result.bystander
        lines.append(
            f"bystander fnd: {bystander.histogram.total:,} answers, latency ms: "
            f"{_latency_line(bystander.histogram)}"
        )
    if result.idle is not None:
        idle = result.idle
        failures = ", ".join(f"{k} x{v:,}" for k, v in sorted(idle.failures.items()))
        lines.append(
            f"idle: {idle.opened:,} of {idle.asked:,} connections held open "
            f"(in {idle.open_seconds:.1f} s), {idle.served:,} served a fnd afterwards"
            + (f"; {failures}" if failures else "")
        )
    rss = {k: v for k, v in result.rss_kb.items() if v is not None}
    if rss:
        lines.append("server RSS: " + ", ".join(f"{k} {v / 1024:.1f} MiB" for k, v in rss.items()))
    lines.append(_data_line(result))
    examples = tally.examples + result.preload.examples
    if result.verification is not None:
        examples += result.verification.examples
    lines.extend(f"  {example}" for example in examples[:10])
    lines.extend(f"note: {note}" for note in result.notes)
    lines.extend(f"could not do: {item}" for item in result.limitations)
    lines.extend(f"load process failed: {item}" for item in result.worker_errors)
    return "\n".join(lines)


def _data_line(result: BenchResult) -> str:
    tally = result.tally
    answers = result.answered
    if not result.config.data_check:
        return (
            f"data check: skipped (--no-data-check); malformed answers: {tally.malformed:,} "
            f"of {answers:,}"
        )
    verification = result.verification
    after = (
        "no check afterwards"
        if verification is None
        else f"{verification.names:,} names checked afterwards: {verification.verified:,} as "
        f"acknowledged, {verification.lost:,} lost, {verification.unexpected:,} unexpected, "
        f"{verification.unverified:,} not checkable"
    )
    return (
        f"data check: {status(result).upper()}: {answers - tally.malformed:,} of {answers:,} "
        f"answers well-formed, {tally.wrong:,} wrong; {after}"
    )


def as_json(result: BenchResult) -> dict[str, Any]:
    config = result.config
    tally = result.tally
    verification = result.verification
    out: dict[str, Any] = {
        "server": address(config.host, config.port),
        "framing": result.framing,
        "connections": config.connections,
        "processes": result.processes,
        "pipeline": result.pipeline,
        "pipeline_asked": config.pipeline,
        "mix": config.mix.as_dict(),
        "duration_asked_s": config.duration,
        "requests_asked": config.requests,
        "elapsed_s": result.elapsed,
        "answers": result.answered,
        "throughput_rps": result.throughput,
        "latency_ms": result.histogram.summary(),
        "by_command": {
            "fnd": tally.answered[FND],
            "add": tally.answered[ADD],
            "rem": tally.answered[REM],
        },
        "acknowledged_adds": tally.acked_adds,
        "not_found": tally.not_found,
        "legacy_answers": tally.legacy_answers,
        "errors": dict(tally.errors),
        "errors_before_run": dict(result.preload.errors),
        "connections_opened": result.connected,
        "connections_served_during_run": result.served_in_time,
        "data_check": {
            "status": status(result),
            "malformed": tally.malformed + result.preload.malformed,
            "wrong": tally.wrong + result.preload.wrong,
            "names": None if verification is None else verification.names,
            "verified": None if verification is None else verification.verified,
            "lost": None if verification is None else verification.lost,
            "unexpected": None if verification is None else verification.unexpected,
            "unverified": None if verification is None else verification.unverified,
            "examples": tally.examples
            + result.preload.examples
            + ([] if verification is None else verification.examples),
        },
        "generator_cpu_share": result.worker_cpu,
        "server_pid": config.server_pid,
        "server_cpu_share": result.server_cpu,
        "cpu_us_per_answer": dict(zip(("load", "server"), result.cpu_per_request(), strict=True)),
        "server_rss_kb": result.rss_kb,
        "notes": result.notes,
        "limitations": result.limitations,
        "load_process_errors": result.worker_errors,
        "machine": machine(),
        "exit_status": exit_status(result),
    }
    if result.bystander is not None:
        bystander = result.bystander
        out["bystander"] = {
            "answers": bystander.histogram.total,
            "latency_ms": bystander.histogram.summary(),
            "errors": dict(bystander.tally.errors),
            "malformed": bystander.tally.malformed,
            "wrong": bystander.tally.wrong,
        }
    if result.idle is not None:
        idle = result.idle
        out["idle"] = {
            "asked": idle.asked,
            "opened": idle.opened,
            "served": idle.served,
            "failures": dict(idle.failures),
            "open_seconds": idle.open_seconds,
        }
    return out


__all__ = ["as_json", "exit_status", "status", "text"]
