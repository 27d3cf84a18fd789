"""The console report: progress while the tests run, then the verdict.

After the run: a table of requirements grouped by spec section, then every
failure and warning explained (the requirement, expected vs actual, the wire
transcript with relative timestamps, the one command that reruns just that
test), the skipped tests with their reasons, and the summary, last: the
broken requirements, the likely causes (``conformance.reports.diagnosis``),
the counts and the verdict. ``quiet`` keeps the table and the summary only;
``transcripts=False`` leaves the transcripts out. Colour only on a terminal,
and never with NO_COLOR.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable
from typing import TextIO

from conformance.reports.diagnosis import console_lines, diagnose
from conformance.reports.model import (
    BLOCKED,
    FAIL,
    PASS,
    SKIP,
    UNTESTED,
    WARN,
    RunResult,
    TestRecord,
)
from conformance.reports.rerun import rerun_command
from conformance.reports.text import printable

_COLOURS = {PASS: "32", FAIL: "31;1", WARN: "33;1", SKIP: "36", UNTESTED: "35", BLOCKED: "33"}
_MARKS = {PASS: ".", FAIL: "F", WARN: "W", SKIP: "s"}


def use_colour(stream: TextIO) -> bool:
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class Painter:
    def __init__(self, colour: bool) -> None:
        self.colour = colour

    def status(self, status: str, width: int = 0) -> str:
        text = status.ljust(width)
        if not self.colour or status not in _COLOURS:
            return text
        return f"\x1b[{_COLOURS[status]}m{text}\x1b[0m"

    def bold(self, text: str) -> str:
        return f"\x1b[1m{text}\x1b[0m" if self.colour else text


class Progress:
    """``[ 37/72]`` rewritten in place on a terminal; a line of marks otherwise."""

    def __init__(self, stream: TextIO, total: Callable[[], int], tty: bool | None = None) -> None:
        self.stream = stream
        self.total = total
        self.tty = bool(stream.isatty()) if tty is None else tty
        self.done = 0
        self.counts = {PASS: 0, FAIL: 0, WARN: 0, SKIP: 0}
        self._column = 0

    def update(self, record: TestRecord) -> None:
        self.done += 1
        self.counts[record.outcome] = self.counts.get(record.outcome, 0) + 1
        if self.tty:
            total = max(self.total(), self.done)
            width = len(str(total))
            bad = self.counts[FAIL] + self.counts[WARN]
            tail = f"  {bad} failing" if bad else ""
            self.stream.write(f"\r[{self.done:>{width}}/{total}]{tail}")
        else:
            self.stream.write(_MARKS.get(record.outcome, "?"))
            self._column += 1
            if self._column == 72:
                self.stream.write("\n")
                self._column = 0
        self.stream.flush()

    def finish(self) -> None:
        if self.tty or self._column:
            self.stream.write("\n")
            self.stream.flush()


def _indent(text: str, prefix: str = "    ") -> str:
    return textwrap.indent(printable(text), prefix, lambda _: True)


def _explain(
    record: TestRecord, paint: Painter, verbose: bool, transcripts: bool, command: str | None
) -> list[str]:
    rid = record.failed_requirement or " ".join(record.requirements) or "(no requirement)"
    lines = [
        "",
        f"{paint.status(record.outcome)} {paint.bold(rid)}  {record.nodeid}",
    ]
    if record.expected_failure:
        lines.append(f"  expected by the baseline: {printable(record.expected_failure)}")
    if record.baseline_note:
        lines.append(f"  {printable(record.baseline_note)}")
    lines.append(_indent(record.message or "(no message)"))
    if transcripts and record.transcript:
        lines += ["  transcript (time since the test began, connection, >> sent << received):"]
        lines.append(_indent(record.transcript))
    if verbose and record.details:
        lines += ["  pytest's report:", _indent(record.details)]
    if command:
        lines.append(f"  rerun: {printable(command)}")
    return lines


def _table(result: RunResult, paint: Painter, verbose: bool) -> list[str]:
    out: list[str] = []
    section = None
    for row in result.requirement_rows():
        if row.section != section:
            section = row.section
            out += ["", paint.bold(section or "Other")]
        count = f"{len(row.tests)} test" + ("" if len(row.tests) == 1 else "s")
        if row.status == UNTESTED:
            count = "no test in this run"
        elif row.status == BLOCKED:
            count += ": failed first on another requirement, not judged"
        out.append(f"  {row.id:<16} {row.level:<6}  {paint.status(row.status, 8)} {count}")
        if verbose:
            out.extend(f"      {nodeid}" for nodeid in row.tests)
    return out


def _skipped(result: RunResult, paint: Painter, verbose: bool) -> list[str]:
    by_reason: dict[str, list[TestRecord]] = {}
    for record in result.sorted_records():
        if record.outcome == SKIP:
            by_reason.setdefault(record.skip_reason or "no reason given", []).append(record)
    if not by_reason:
        return []
    out = ["", paint.bold("Skipped")]
    for reason, records in by_reason.items():
        ids = sorted({rid for r in records for rid in r.requirements})
        out.append(f"  {len(records)} test(s) of {' '.join(ids) or '-'}: {printable(reason)}")
        if verbose:
            out.extend(f"      {r.nodeid}" for r in records)
    return out


def render(
    result: RunResult,
    *,
    colour: bool = False,
    verbose: bool = False,
    quiet: bool = False,
    transcripts: bool = True,
) -> str:
    paint = Painter(colour)
    out = _table(result, paint, verbose)
    bad = [r for r in result.sorted_records() if r.outcome in (FAIL, WARN)]
    new = [r for r in bad if not r.expected_failure]
    if new and not quiet:
        title = "Failures and warnings" + (" not in the baseline" if result.baseline else "")
        out += ["", paint.bold(title)]
        for record in new:
            command = rerun_command(result.provenance.command, record.nodeid)
            out += _explain(record, paint, verbose, transcripts, command)
    expected = [r for r in bad if r.expected_failure]
    if expected and not quiet:
        out += ["", paint.bold(f"Expected by the baseline ({len(expected)})")]
        for record in expected:
            rid = record.failed_requirement or " ".join(record.requirements)
            out.append(f"  {paint.status(record.outcome)} {rid}  {record.nodeid}")
            if verbose:
                out.append(f"      {printable(record.expected_failure)}")
    if not quiet:
        out += _skipped(result, paint, verbose)
    if result.warnings and verbose:
        out += ["", paint.bold("Python warnings raised by the tests")]
        out.extend(f"  {printable(w)}" for w in result.warnings)
    elif result.warnings and not quiet:
        out += ["", f"{len(result.warnings)} Python warning(s) raised by the tests (shown with -v)"]
    out += _baseline(result, paint)
    out += _broken(result)
    out += console_lines(diagnose(result), excerpts=transcripts)
    s = result.summary()
    counts = (
        f"{s['tests']} tests: {s['passed']} passed, {s['failed']} failed, "
        f"{s['warned']} warned, {s['skipped']} skipped"
    )
    if result.baseline:
        counts += f" ({s['expected']} expected by the baseline)"
    out += ["", f"{counts} in {result.duration:.1f}s"]
    if result.stopped_early:
        out.append(
            f"stopped early ({printable(result.stopped_early)}): the other tests did not run"
        )
    prov = result.provenance
    if prov.toolkit:
        out.append(f"abp-toolkit {prov.toolkit}, spec sha256 {prov.spec_short}")
    out.append(verdict_line(result, paint))
    return "\n".join(out) + "\n"


def _broken(result: RunResult) -> list[str]:
    """The broken requirements in one list, by status (the summary's first lines)."""
    rows = result.requirement_rows()
    out = []
    for status, what in ((FAIL, "broken MUSTs"), (WARN, "broken SHOULDs")):
        ids = [row.id for row in rows if row.status == status]
        if ids:
            out.append(f"{what} ({len(ids)}): " + " ".join(ids))
    return ["", *out] if out else []


def _baseline(result: RunResult, paint: Painter) -> list[str]:
    if not result.unexpected_passes:
        return []
    out = ["", paint.bold("Unexpected passes (the baseline expects these to fail)")]
    for u in result.unexpected_passes:
        out.append(f"  {printable(u.entry)}: passes now ({len(u.tests)} test(s)); remove it")
        out.append(f"      its reason was: {printable(u.reason)}")
    return out


def verdict_line(result: RunResult, paint: Painter) -> str:
    s = result.summary()
    against = {r.outcome for r in result.records if r.counts_against}
    if FAIL in against:
        why = "a MUST requirement is broken"
    elif WARN in against and result.strict:
        why = "a SHOULD requirement is broken (--strict)"
    elif result.unexpected_passes:
        why = "the baseline expects failures that no longer happen"
    elif s["expected"] and result.exit_code() == 0:
        why = "no failure beyond those the baseline expects"
    elif s["warned"]:
        why = "every MUST requirement is met; SHOULD warnings above"
    else:
        why = "every requirement tested is met"
    return f"verdict: {paint.status(result.verdict())} ({why})"
