"""What ``conformance run`` does with a result: its report options, the
baseline, the console report and the report files, in one place.

``add_options`` puts the options on the ``run`` parser (the spellings
``--junit-xml``, ``--json``, ``--html`` are kept; ``--markdown``, ``--badge``,
``--baseline``, ``-q``, ``--no-transcripts`` are added); ``prepare`` checks
them before anything runs (a directory that does not exist, a baseline that
cannot be used: one line, exit 2); ``finish`` stamps the provenance, applies
the baseline, prints the console report and writes the files, and returns the
exit status.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from conformance.reports import badge, console, html, json_report, junit, markdown
from conformance.reports.baseline import Baseline, BaselineError, apply, check_known, load
from conformance.reports.model import RunResult
from conformance.reports.provenance import Provenance

#: flag -> (attribute, writer)
WRITERS: dict[str, tuple[str, Callable[[RunResult, str | Path], None]]] = {
    "--junit-xml": ("junit_xml", junit.write),
    "--json": ("json", json_report.write),
    "--html": ("html", html.write),
    "--markdown": ("markdown", markdown.write),
    "--badge": ("badge", badge.write),
}


class ReportProblem(ValueError):
    """The user's to fix (exit 2); the message is one line."""


def add_options(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """The report options of ``conformance run``."""
    parser.add_argument("--junit-xml", metavar="PATH", help="write a JUnit XML report")
    parser.add_argument("--json", metavar="PATH", help="write a JSON report")
    parser.add_argument("--html", metavar="PATH", help="write a self-contained HTML report")
    parser.add_argument(
        "--markdown",
        metavar="PATH",
        help="write a Markdown summary (a CI step summary, a PR comment)",
    )
    parser.add_argument("--badge", metavar="PATH", help="write an SVG badge of the verdict")
    parser.add_argument(
        "--baseline",
        metavar="FILE",
        help="failures expected today (TOML; see 'conformance baseline write'): they do not "
        "fail the run, an unexpected pass does",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="the table and the summary only")
    parser.add_argument(
        "--no-transcripts", action="store_true", help="no transcripts under the failures"
    )


@dataclass(frozen=True)
class Prepared:
    baseline: Baseline | None
    needs_tests: bool  # the baseline names tests: check them against the suite


def prepare(args: argparse.Namespace) -> Prepared:
    """Checks the report options before the run (``ReportProblem``)."""
    for flag, (attribute, _) in WRITERS.items():
        path = getattr(args, attribute, None)
        if path is not None and not os.path.isdir(os.path.dirname(os.path.abspath(path))):
            raise ReportProblem(f"{flag} {path}: the directory does not exist")
    if getattr(args, "baseline", None) is None:
        return Prepared(None, False)
    try:
        baseline = load(args.baseline)
        check_known(baseline, known_tests=None)  # requirement IDs now; tests once collected
    except BaselineError as exc:
        raise ReportProblem(str(exc)) from None
    return Prepared(baseline, any(entry.test for entry in baseline.entries))


def check_tests(prepared: Prepared, known_tests: Collection[str]) -> None:
    """The baseline's test entries against the collected suite (``ReportProblem``)."""
    if prepared.baseline is None:
        return
    try:
        check_known(prepared.baseline, known_tests)
    except BaselineError as exc:
        raise ReportProblem(str(exc)) from None


def finish(
    result: RunResult,
    args: argparse.Namespace,
    argv: Sequence[str],
    out: TextIO,
    prepared: Prepared,
    *,
    colour: bool | None = None,
) -> int:
    """Provenance, baseline, the files, then the console report (its summary
    last); returns the exit status."""
    seed = getattr(args, "seed", None)
    result.provenance = Provenance.here(["conformance", *argv], seed=seed, started=result.started)
    if prepared.baseline is not None:
        apply(result, prepared.baseline)
    for flag, (attribute, writer) in WRITERS.items():
        path = getattr(args, attribute, None)
        if path is None:
            continue
        try:
            writer(result, path)
        except OSError as exc:
            raise ReportProblem(f"{flag} {path}: {exc.strerror or exc}") from None
        out.write(f"report written: {path}\n")
    out.write(
        console.render(
            result,
            colour=console.use_colour(out) if colour is None else colour,
            verbose=bool(getattr(args, "verbose", False)),
            quiet=bool(getattr(args, "quiet", False)),
            transcripts=not getattr(args, "no_transcripts", False),
        )
    )
    if prepared.baseline is not None and prepared.baseline.placeholders:
        out.write(
            f"note: {prepared.baseline.placeholders} baseline entr"
            f"{'y has' if prepared.baseline.placeholders == 1 else 'ies have'} "
            f"the placeholder reason: fill in why ({prepared.baseline.source})\n"
        )
    out.flush()
    return result.exit_code()
