"""``conformance serve``: the scripted server, for a person and their own client.

Point any client at it by hand. Every request is checked against the schemas
and logged as it arrives (the transcript, bytes escaped); answers follow the
spec from an in-memory book, or a scenario (``--scenario``, ``--list``). On
Ctrl-C (SIGINT) or SIGTERM it prints each connection's transcript and the
verdict: what the client broke on the wire (ABP-FRAME-2: LF-terminated
requests and nothing else; ABP-REQ-13: no empty name; ABP-CONN-9: the answer
read before closing). What the client printed or its exit status cannot be
seen from here: ``conformance run --client`` judges those.

Exit status: 0 no violation seen, 1 a violation seen, 2 wrong arguments or
the address cannot be listened on.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from types import FrameType
from typing import TextIO

from conformance.harness.wire import Transcript
from conformance.suites.client.scenarios import SCENARIOS, Book
from conformance.suites.client.scripted import ScriptedServer
from protocol import DEFAULT_HOST, DEFAULT_PORT, requirements
from protocol.address import format_address, parse_address
from protocol.program import EXIT_OK, EXIT_USAGE, ProgramParser, positive_float

EXIT_VIOLATION = 1
PROG = "conformance serve"

EPILOG = """\
exit status:
  0  no violation seen       1  a violation seen
  2  wrong arguments, or the address cannot be listened on

example:
  conformance serve --listen 127.0.0.1:2007 --scenario segmented
  # in another terminal: python my_client.py add alice "12 High St"
"""


def build_parser() -> argparse.ArgumentParser:
    parser = ProgramParser(
        prog=PROG,
        description="A scripted ABP/1 server for trying a client by hand: it validates and "
        "logs every request, answers by the spec or by a scenario, and prints the verdict "
        "on Ctrl-C.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--listen",
        metavar="HOST:PORT",
        default=f"{DEFAULT_HOST}:{DEFAULT_PORT}",
        help="where to listen ([::1]:2007 for IPv6; default %(default)s)",
    )
    parser.add_argument(
        "--scenario",
        default="spec",
        choices=sorted(SCENARIOS),
        metavar="NAME",
        help="how to answer (default: spec; --list shows them all)",
    )
    parser.add_argument(
        "--entry",
        action="append",
        default=[],
        metavar="NAME=ENTRY",
        help="start with this entry in the book (repeatable)",
    )
    parser.add_argument(
        "--duration",
        type=positive_float,
        metavar="S",
        help="stop by itself after S seconds (default: run until Ctrl-C)",
    )
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument("-q", "--quiet", action="store_true", help="no live log, verdict only")
    return parser


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT and SIGTERM set ``stop`` (only the main thread may set handlers)."""

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(ValueError):
            previous[signum] = signal.signal(signum, handler)
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def _initial_book(pairs: Sequence[str]) -> Book:
    entries: dict[str, str] = {}
    for pair in pairs:
        name, sep, entry = pair.partition("=")
        if not sep or not name:
            raise ValueError(f"--entry wants NAME=ENTRY, got {pair!r}")
        entries[name] = entry
    return Book(entries)


def report(server: ScriptedServer, out: TextIO) -> int:
    """Each connection's transcript, then the violations and the verdict."""
    connections = server.connections
    out.write(f"\n--- transcripts ({len(connections)} connections) ---\n")
    records = server.transcript.records
    for log in connections:
        out.write(f"{log.channel}: from {log.peer}, {len(log.requests)} requests\n")
        for record in records:
            if record.channel == log.channel:
                out.write("  " + record.render() + "\n")
    violations = server.violations
    out.write("\n--- verdict ---\n")
    requests = sum(len(log.requests) for log in connections)
    out.write(f"{len(connections)} connections, {requests} requests, ")
    out.write(f"{len(violations)} violations\n")
    for rid in dict.fromkeys(v.requirement for v in violations):
        try:
            req = requirements.get(rid)
            out.write(f"  {rid} ({req.level}): {req.text}\n")
        except KeyError:
            out.write(f"  {rid}\n")
        for violation in violations:
            if violation.requirement == rid:
                out.write(f"    c{violation.connection}: {violation.message}\n")
    if violations:
        out.write("verdict: FAIL (the client broke the requirements above)\n")
        return EXIT_VIOLATION
    if not connections:
        out.write("verdict: nothing to judge (no client connected)\n")
    else:
        out.write("verdict: PASS (no violation seen on the wire)\n")
    return EXIT_OK


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    out = out if out is not None else sys.stdout
    args = build_parser().parse_args(argv)
    if args.list:
        for name, scenario in SCENARIOS.items():
            out.write(f"{name:10} {scenario.summary}\n")
        return EXIT_OK
    try:
        host, port = parse_address(args.listen)
        book = _initial_book(args.entry)
    except ValueError as exc:
        sys.stderr.write(f"{PROG}: error: {exc}\n")
        return EXIT_USAGE
    if args.duration is not None and not args.duration > 0:
        sys.stderr.write(f"{PROG}: error: --duration must be a positive number of seconds\n")
        return EXIT_USAGE

    def log(line: str) -> None:
        out.write(line + "\n")
        out.flush()

    server = ScriptedServer(
        hosts=(host,),
        port=port,
        scenario=SCENARIOS[args.scenario],
        book=book,
        transcript=Transcript(limit=100_000),
        log=None if args.quiet else log,
    )
    stop = threading.Event()
    with _stop_on_signals(stop):
        try:
            server.start()
        except OSError as exc:
            sys.stderr.write(f"{PROG}: cannot listen on {args.listen}: {exc.strerror or exc}\n")
            return EXIT_USAGE
        try:
            where = format_address(host, server.port)
            out.write(f"listening on {where} (scenario {args.scenario}); Ctrl-C for the verdict\n")
            out.flush()
            stop.wait(args.duration)
        except KeyboardInterrupt:
            pass
        finally:
            server.stop()
    return report(server, out)


if __name__ == "__main__":
    sys.exit(main())
