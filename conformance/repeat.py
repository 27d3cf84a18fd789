"""``conformance run --repeat N``: the flake hunt.

The suite runs N times against the same target (the same ``--server``; the
same ``--server-cmd`` or embedded server, started afresh for each run), with
the same seed, so that every run asks the same questions. A test whose
verdict is not the same in every run is a flake: of the suite or of the
server, and either way a verdict nobody can trust. Each one is reported with
its outcome in every run and the first message that differs; any one makes
the exit status 1.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TextIO

from conformance.reports.model import RunResult

ABSENT = "-"  # the test did not run in that repeat


@dataclass(frozen=True)
class Changed:
    """One test whose verdict changed between runs."""

    nodeid: str
    outcomes: tuple[str, ...]  # one per run, in order
    message: str  # the first failure message among the runs, if any

    def render(self) -> str:
        counts: dict[str, list[int]] = {}
        for n, outcome in enumerate(self.outcomes, start=1):
            counts.setdefault(outcome, []).append(n)
        parts = [
            f"{outcome} x{len(runs)}" + (f" (runs {_runs(runs)})" if len(runs) < 6 else "")
            for outcome, runs in sorted(counts.items(), key=lambda item: -len(item[1]))
        ]
        head = f"  {self.nodeid}: {', '.join(parts)}"
        first = self.message.strip().splitlines()[0][:200] if self.message.strip() else ""
        return head + (f"\n      {first}" if first else "")


def _runs(runs: list[int]) -> str:
    return ", ".join(map(str, runs))


def changed_verdicts(results: Sequence[RunResult]) -> list[Changed]:
    """Every test whose outcome is not the same in all ``results``."""
    per_run = [{r.nodeid: r for r in result.records} for result in results]
    nodeids = sorted({nodeid for run in per_run for nodeid in run})
    changed = []
    for nodeid in nodeids:
        records = [run.get(nodeid) for run in per_run]
        outcomes = tuple(r.outcome if r is not None else ABSENT for r in records)
        if len(set(outcomes)) > 1:
            message = next((r.message for r in records if r is not None and r.message), "")
            changed.append(Changed(nodeid, outcomes, message))
    return changed


def render(flakes: Sequence[Changed], runs: int) -> str:
    """The flake hunt's summary, after the last run's report."""
    if not flakes:
        return f"\nverdicts across {runs} runs: identical (no test changed)\n"
    lines = [f"\nverdicts across {runs} runs: {len(flakes)} test(s) changed"]
    lines += [c.render() for c in flakes]
    return "\n".join(lines) + "\n"


def repeat(
    run_once: Callable[[], tuple[int, RunResult | None, str]], runs: int, out: TextIO
) -> tuple[list[RunResult], str]:
    """Run ``run_once`` ``runs`` times, a progress line before each and its
    summary after; returns the results and the last run's pytest output. A run
    that ends without a result (an error) stops the hunt."""
    results: list[RunResult] = []
    output = ""
    for n in range(1, runs + 1):
        out.write(f"repeat {n}/{runs}\n")
        out.flush()
        _, result, output = run_once()
        if result is None:
            break
        results.append(result)
        summary = result.summary()
        flakes = len(changed_verdicts(results))
        out.write(
            f"repeat {n}/{runs}: {summary['tests']} tests, {summary['failed']} failed, "
            f"{summary['warned']} warned, {summary['skipped']} skipped in "
            f"{result.duration:.1f}s; {flakes} verdict(s) changed so far\n"
        )
    return results, output
