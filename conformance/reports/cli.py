"""``conformance report merge`` and ``conformance baseline write``.

``report merge FILE.json... [--html PATH] [--markdown PATH] [--json PATH]``
joins the JSON of matrix shards (``conformance matrix --shard K/N --json``)
and of server runs (``conformance run --json``) into one dashboard. Exit
status: 0 every cell and every run passed and no pair is missing; 1 otherwise;
2 inputs that cannot be read or joined (one line on stderr).

``baseline write FILE --from REPORT.json`` writes a baseline expecting every
failure and warning of that run, each with a placeholder reason to fill in.
Exit status 0, or 2 (one line on stderr).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from protocol.program import EXIT_OK, EXIT_USAGE, ProgramParser

MAX_INPUT_BYTES = 256 << 20  # a matrix with transcripts is megabytes, not gigabytes


def report_parser() -> ProgramParser:
    parser = ProgramParser(
        prog="conformance report",
        description="Work with the JSON reports of conformance runs and matrices.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ProgramParser)
    commands.required = True
    merge = commands.add_parser(
        "merge",
        help="join matrix shards and server runs into one report / static dashboard",
        description="Join the JSON of matrix shards (conformance matrix --shard K/N --json) "
        "and of server runs (conformance run --json) into one dashboard: implementations x "
        "scenarios, who fails against every peer, every cell's transcripts.",
        epilog="exit status: 0 everything passed and no pair is missing; 1 a cell or run "
        "failed, or a pair is in no input; 2 inputs that cannot be read or joined",
    )
    merge.add_argument("inputs", nargs="+", metavar="FILE.json", help="the reports to join")
    merge.add_argument("--html", metavar="PATH", help="write the dashboard as one HTML page")
    merge.add_argument("--markdown", metavar="PATH", help="write it as Markdown")
    merge.add_argument("--json", metavar="PATH", help="write the joined matrix as JSON")
    merge.add_argument("-q", "--quiet", action="store_true", help="no transcripts on stdout")
    return parser


def baseline_parser() -> ProgramParser:
    parser = ProgramParser(
        prog="conformance baseline",
        description="Baselines: the failures a run is expected to have today "
        "(conformance run --baseline FILE).",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ProgramParser)
    commands.required = True
    write = commands.add_parser(
        "write",
        help="write a baseline from a run's JSON report",
        description="Write a baseline (TOML) expecting every failure and warning of a run, "
        "each with a placeholder reason to fill in.",
    )
    write.add_argument("path", metavar="FILE", help="the baseline to write (TOML)")
    write.add_argument(
        "--from", dest="report", required=True, metavar="REPORT.json", help="conformance run --json"
    )
    return parser


def _read_json(path: str) -> object:
    from conformance.matrix.reports import MergeError

    try:
        with Path(path).open("rb") as stream:
            raw = stream.read(MAX_INPUT_BYTES + 1)
    except OSError as exc:
        raise MergeError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(raw) > MAX_INPUT_BYTES:
        raise MergeError(f"{path}: larger than {MAX_INPUT_BYTES} bytes")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise MergeError(f"{path}: not a JSON file") from None


def _writable(path: str | None) -> str | None:
    if path and not Path(path).resolve().parent.is_dir():
        return f"cannot write {path}: no such directory"
    return None


def merge_command(
    inputs: Sequence[str],
    *,
    html: str | None = None,
    markdown: str | None = None,
    json_path: str | None = None,
    quiet: bool = False,
    out: TextIO,
    err: TextIO,
) -> int:
    from conformance.matrix import reports

    prog = "conformance report merge"
    for path in (html, markdown, json_path):
        problem = _writable(path)
        if problem:
            err.write(f"{prog}: {problem}\n")
            return EXIT_USAGE
    try:
        loaded = [(path, reports.load_input(_read_json(path), path)) for path in inputs]
        board = reports.merge(loaded)
    except reports.MergeError as exc:
        err.write(f"{prog}: {exc}\n")
        return EXIT_USAGE
    out.write(reports.console(board, transcripts=not quiet))
    for name, run in board.runs:
        out.write(f"server run {name}: {run.verdict()} ({run.summary()['tests']} tests)\n")
    writes: tuple[tuple[str | None, Callable[[], str]], ...] = (
        (html, lambda: reports.html_report(board)),
        (markdown, lambda: reports.markdown(board)),
        (json_path, lambda: reports.dumps(reports.joined_document(board))),
    )
    for path, render in writes:
        if path:
            try:
                Path(path).write_text(render(), encoding="utf-8")
            except OSError as exc:
                err.write(f"{prog}: cannot write {path}: {exc.strerror or exc}\n")
                return EXIT_USAGE
            out.write(f"report written: {path}\n")
    return board.exit_code


def report_main(argv: Sequence[str] | None = None) -> int:
    args = report_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    return merge_command(
        args.inputs,
        html=args.html,
        markdown=args.markdown,
        json_path=args.json,
        quiet=args.quiet,
        out=sys.stdout,
        err=sys.stderr,
    )


def baseline_main(argv: Sequence[str] | None = None) -> int:
    from conformance.reports.baseline import BaselineError, write_from_report

    args = baseline_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        count = write_from_report(args.report, args.path)
    except BaselineError as exc:
        sys.stderr.write(f"conformance baseline write: {exc}\n")
        return EXIT_USAGE
    sys.stdout.write(
        f"baseline written: {args.path} ({count} expected failure(s) and warning(s); "
        "fill in every reason)\n"
    )
    return EXIT_OK
