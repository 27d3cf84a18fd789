"""``conformance matrix``: every client of a config against every server.

Exit status: 0 every scenario of every pair passed; 1 at least one failed
(the matrix and the failures say which); 2 wrong arguments or an unusable
config (one line on stderr).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from conformance.matrix import reports
from conformance.matrix.cells import Cell
from conformance.matrix.config import ConfigError, check_programs, load
from conformance.matrix.runner import pairs_of, run_matrix
from conformance.reports.provenance import Provenance
from protocol.program import EXIT_OK, EXIT_USAGE, ProgramParser, positive_int

EXIT_FAILED = 1
PROG = "conformance matrix"

EPILOG = """\
exit status:
  0  every pair passed every scenario
  1  some scenario failed for some pair (see the failures below the matrix)
  2  wrong arguments, or a config that cannot be used (one line on stderr)

with no --config, the bundled interop.toml runs: the reference server and
client against the tutorial-style ones (they do not all interoperate: exit 1).

past one machine: run `--shard K/N --json shard-K.json` on N machines (each
runs a stable 1/N of the pairs), then join them with
`conformance report merge shard-*.json --html matrix.html --markdown matrix.md`.
"""


def shard_spec(text: str) -> tuple[int, int]:
    """``K/N`` with 1 <= K <= N."""
    k, sep, n = text.partition("/")
    if not (sep and k.isdigit() and n.isdigit() and 1 <= int(k) <= int(n)):
        raise argparse.ArgumentTypeError(f"must be K/N with 1 <= K <= N, e.g. 2/3: {text!r}")
    return int(k), int(n)


def build_parser() -> argparse.ArgumentParser:
    parser = ProgramParser(
        prog=PROG,
        description="Run every client against every server of an interop config "
        "(TOML) and show who interoperates with whom.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", metavar="PATH", help="interop.toml (default: the bundled one)")
    parser.add_argument("--markdown", metavar="PATH", help="write the matrix as Markdown")
    parser.add_argument("--json", metavar="PATH", help="write the matrix as JSON")
    parser.add_argument("--html", metavar="PATH", help="write a self-contained HTML report")
    parser.add_argument(
        "--workers",
        "-n",
        type=positive_int,
        default=os.cpu_count() or 1,
        metavar="N",
        help="pairs run at once (default: the cores, %(default)s)",
    )
    parser.add_argument(
        "--shard",
        type=shard_spec,
        metavar="K/N",
        help="run only the K-th of N stable slices of the pairs (join with 'conformance report "
        "merge')",
    )
    parser.add_argument(
        "--show-config", action="store_true", help="print the config in use and exit"
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="no transcripts under the failures"
    )
    return parser


def _write(path: str, text: str) -> str | None:
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        return f"cannot write {path}: {exc.strerror or exc}"
    return None


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    out = out if out is not None else sys.stdout
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    try:
        config = load(args.config)
        check_programs(config)
    except ConfigError as exc:
        sys.stderr.write(f"{PROG}: {exc}\n")
        return EXIT_USAGE
    if args.show_config:
        from conformance.matrix.config import bundled_text

        text = bundled_text() if args.config is None else Path(args.config).read_text("utf-8")
        out.write(text)
        return EXIT_OK
    for path in (args.markdown, args.json, args.html):
        if path and not Path(path).resolve().parent.is_dir():
            sys.stderr.write(f"{PROG}: cannot write {path}: no such directory\n")
            return EXIT_USAGE

    provenance = Provenance.here(["conformance", "matrix", *argv])
    pairs = pairs_of(config, args.shard)
    total = len(config.clients) * len(config.servers)
    shard = f"; shard {args.shard[0]}/{args.shard[1]}: {len(pairs)} of them" if args.shard else ""
    out.write(
        f"running {len(config.clients)} clients x {len(config.servers)} servers "
        f"({total} pairs{shard}, {args.workers} at a time)\n"
    )
    out.flush()
    lock = threading.Lock()

    def progress(cell: Cell) -> None:
        with lock:
            out.write(f"  {cell.client} x {cell.server}: {cell.passed}/{cell.total} ")
            out.write(f"({cell.duration:.1f}s)\n")
            out.flush()

    started = time.monotonic()
    cells = run_matrix(config, workers=args.workers, on_cell=progress, shard=args.shard)
    duration = time.monotonic() - started
    code = EXIT_OK if all(cell.ok for cell in cells) else EXIT_FAILED
    document = reports.document(
        config, cells, duration, code, provenance=provenance, shard=args.shard
    )
    board = reports.Dashboard.from_document(document)
    out.write("\n" + reports.console(board, transcripts=not args.quiet))
    out.write(f"finished in {duration:.1f}s; exit status {code}\n")
    writers: tuple[tuple[str | None, Callable[[], str]], ...] = (
        (args.markdown, lambda: reports.markdown(board)),
        (args.json, lambda: reports.dumps(document)),
        (args.html, lambda: reports.html_report(board)),
    )
    for path, render in writers:
        if not path:
            continue
        problem = _write(path, render())
        if problem:
            sys.stderr.write(f"{PROG}: {problem}\n")
            code = EXIT_USAGE
        else:
            out.write(f"report written: {path}\n")
    return code


if __name__ == "__main__":
    sys.exit(main())
