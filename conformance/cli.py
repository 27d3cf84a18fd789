"""``conformance``: judge an ABP/1 implementation, requirement by requirement.

The command line only; ``conformance.run_suite`` runs the suite and
``conformance.reports`` shows the result. ``serve``, ``matrix`` and ``bench``
belong to their own packages and are imported only when asked for.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import signal
import sys
import traceback
from collections.abc import Iterator, Sequence
from typing import TextIO

from conformance.harness.crowd import MAX_MEMBERS
from conformance.harness.timing import TIMEOUT
from protocol.program import (
    EXIT_USAGE,
    ProgramParser,
    add_version,
    non_negative_int,
    positive_float,
    positive_int,
)

EXIT_CODES = """\
exit status:
  0  every MUST requirement tested (and every MAY, in the form it takes) is met;
     broken SHOULDs are reported as WARN and do not change it
  1  a MUST is broken (or, with --strict, a SHOULD); with --baseline, one the
     baseline does not expect, or a test it expects to fail passes; with
     --repeat N, also any test whose verdict changed between the N runs
  2  wrong arguments, a target that cannot be reached or is no ABP/1 server
     (the probe says what came back), a server command that does not start,
     or a server that outlives its process (one line on stderr)
  3  an internal error of the suite (one line; run again with -v for details)
"""

RUN_EXAMPLES = """\
examples:
  conformance run                       # against the embedded reference server
  conformance run --server 127.0.0.1:2007
  conformance run --server 127.0.0.1:2007 --repeat 20   # hunt flaky verdicts
  conformance run --server-cmd './myserver --port {port} --data {tmpdir}/db'
  conformance run --server [::1]:2007 --service counter
  conformance run --server tls://127.0.0.1:2007 --ca ca.pem   # the whole suite over TLS
  conformance run --tls                 # the embedded server over TLS (throw-away certificates)
  conformance run --server localhost:2007 --requirement ABP-FRAME -v
  conformance run --server-cmd 'node server.js {port}' --junit-xml report.xml --html report.html
  conformance run --server 127.0.0.1:2007 --baseline known.toml --markdown summary.md --badge b.svg
  conformance run --server 127.0.0.1:2007 -x -q       # stop at the first failure; table only
"""

#: subcommands owned by other packages: name -> (module, one-line help)
DELEGATED = {
    "serve": ("conformance.suites.client.serve", "a scripted server for trying a client by hand"),
    "matrix": ("conformance.matrix.cli", "every client x every server: who talks to whom"),
    "bench": ("conformance.bench.cli", "load a server: throughput, latency, and no lost writes"),
    "report": ("conformance.reports.cli:report_main", "join matrix shards and runs: one dashboard"),
    "baseline": ("conformance.reports.cli:baseline_main", "write a baseline from a JSON report"),
}

#: The largest ``--max-conns`` the suite can check: it opens that many, plus one.
MAX_TOLD_LIMIT = MAX_MEMBERS - 1


def told_limit(text: str) -> int:
    """``--max-conns``: a count the suite can open connections to."""
    limit = positive_int(text)
    if limit > MAX_TOLD_LIMIT:
        raise argparse.ArgumentTypeError(
            f"at most {MAX_TOLD_LIMIT} (the busy-refusal test opens that many connections and"
            f" one more): {text!r}"
        )
    return limit


def build_parser() -> ProgramParser:
    parser = ProgramParser(
        prog="conformance",
        description="The ABP/1 conformance suite: judges a server (or client) against "
        "docs/spec.md, requirement by requirement, with the bytes on the wire as evidence.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_version(parser)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ProgramParser)
    commands.required = True

    run = commands.add_parser(
        "run",
        help="run the suite against a server (default: the embedded reference server)",
        description="Run the conformance suite. With no target, against the embedded "
        "reference server on a free port.",
        epilog=RUN_EXAMPLES + "\n" + EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    target = run.add_argument_group("target (at most one of --server and --server-cmd)")
    where = target.add_mutually_exclusive_group()
    where.add_argument(
        "--server",
        metavar="HOST:PORT",
        help="a running server ([::1]:2007 for IPv6); tls://HOST:PORT: over TLS",
    )
    where.add_argument(
        "--server-cmd",
        metavar="CMD",
        help="start the server with this command: {port} (required), {host}, {tmpdir} are "
        "filled in; unlocks the restart and SIGKILL durability tests",
    )
    target.add_argument(
        "--service", choices=("abp", "counter"), default="abp", help="which service (default: abp)"
    )
    target.add_argument(
        "--framing",
        choices=("auto", "line", "legacy"),
        default="auto",
        help="the framing the server handles; auto probes it first (default: auto)",
    )
    target.add_argument(
        "--idle-timeout", type=positive_float, metavar="S", help="the server's idle timeout"
    )
    target.add_argument(
        "--max-conns",
        type=told_limit,
        metavar="N",
        help="the server's connection limit as one client address meets it (at most "
        f"{MAX_TOLD_LIMIT}); unlocks the busy-refusal test (ABP-CONN-8)",
    )
    target.add_argument(
        "--quiet-period",
        type=positive_float,
        metavar="S",
        help="the server's quiet period (ABP-FRAME-6; default: the spec's 0.1): the pieces "
        "of one split request are sent less than half of it apart",
    )
    tls = run.add_argument_group("ABP over TLS (docs/spec.md section 9)")
    tls.add_argument(
        "--tls",
        action="store_true",
        help="speak TLS to the server (implied by --server tls://...); with no target, the "
        "embedded server runs over TLS with throw-away certificates (needs trustme)",
    )
    tls.add_argument(
        "--ca", metavar="FILE", help="PEM CA certificate(s) to trust (default: the system's)"
    )
    tls.add_argument("--cert", metavar="FILE", help="the suite's client certificate (PEM)")
    tls.add_argument("--key", metavar="FILE", help="the private key of --cert (PEM)")
    tls.add_argument(
        "--tls-client-auth",
        action="store_true",
        help="the server verifies client certificates: test that it refuses clients "
        "without a valid one (ABP-TLS-4); needs --cert (the embedded server: made for it)",
    )
    clients = run.add_argument_group("client under test (runs the client suite instead)")
    clients.add_argument("--client", metavar="TEMPLATE", help="argv-contract client command")
    clients.add_argument("--client-menu", metavar="TEMPLATE", help="menu-contract client command")
    clients.add_argument("--listen", metavar="HOST:PORT", help="where the scripted server listens")
    select = run.add_argument_group("selection and run")
    select.add_argument(
        "--requirement",
        action="append",
        default=[],
        metavar="ID",
        help="only the tests of this requirement, or of a section (ABP-FRAME); repeatable",
    )
    select.add_argument("-k", dest="keyword", metavar="EXPR", help="pytest -k expression")
    select.add_argument(
        "-n",
        "--workers",
        type=non_negative_int,
        default=os.cpu_count() or 1,
        metavar="N",
        help="parallel worker processes; 0 runs in this process (default: the cores, %(default)s)",
    )
    select.add_argument(
        "--timeout", type=positive_float, default=TIMEOUT, metavar="S", help="bound on every wait"
    )
    select.add_argument("--seed", type=int, default=0, metavar="N", help="fuzzing seed")
    select.add_argument(
        "--fuzz-examples", type=positive_int, metavar="N", help="examples per fuzz test"
    )
    select.add_argument("--strict", action="store_true", help="a broken SHOULD fails the run")
    select.add_argument(
        "--repeat",
        type=positive_int,
        default=1,
        metavar="N",
        help="run the suite N times against the same target and report every test whose "
        "verdict changed between runs (exit 1 on any)",
    )
    select.add_argument(
        "--test",
        dest="tests",
        action="append",
        default=[],
        metavar="NODEID",
        help="only this test (its id as the reports show it); repeatable",
    )
    stop = select.add_mutually_exclusive_group()
    stop.add_argument(
        "-x",
        "--exitfirst",
        dest="maxfail",
        action="store_const",
        const=1,
        help="stop after the first failing test",
    )
    stop.add_argument(
        "--maxfail", type=positive_int, metavar="N", help="stop after N failing tests"
    )
    from conformance.reports import outputs

    outputs.add_options(run.add_argument_group("reports"))
    run.add_argument(
        "-v", "--verbose", action="store_true", help="list every test; show pytest's full reports"
    )

    lister = commands.add_parser(
        "list",
        help="every requirement, its level and role, and the tests that cover it",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    lister.add_argument(
        "--service",
        choices=("abp", "counter", "client"),
        help="only the requirements this suite judges (default: all)",
    )
    lister.add_argument("--json", action="store_true", help="print JSON")
    lister.add_argument("-v", "--verbose", action="store_true", help="print the text too")

    for name, (_, text) in DELEGATED.items():
        commands.add_parser(name, help=text, add_help=False)
    return parser


def delegate(name: str, argv: list[str]) -> int:
    target, _ = DELEGATED[name]
    module_name, _, function = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            print(f"conformance {name}: not available in this build", file=sys.stderr)
            return EXIT_USAGE
        raise
    status = getattr(module, function or "main")(argv)
    return int(status or 0)


def main(argv: Sequence[str] | None = None) -> int:  # noqa: PLR0911 - one return per exit status
    args_list = list(sys.argv[1:] if argv is None else argv)
    verbose = "-v" in args_list or "--verbose" in args_list
    try:
        if args_list and args_list[0] in DELEGATED:
            return delegate(args_list[0], args_list[1:])
        args = build_parser().parse_args(args_list)
        if args.command == "list":
            return list_requirements(args, sys.stdout)
        return run_command(args, sys.stdout, args_list)
    except KeyboardInterrupt:
        print("conformance: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `conformance list | head`: the reader has gone
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as exc:
        from conformance.run_suite import SuiteProblem, UsageProblem, exit_for

        if isinstance(exc, UsageProblem):
            print(f"conformance: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        if verbose:
            traceback.print_exc()
            if isinstance(exc, SuiteProblem) and exc.details.strip():
                print(exc.details, file=sys.stderr)
        what = str(exc) if isinstance(exc, SuiteProblem) else f"{type(exc).__name__}: {exc}"
        hint = "" if verbose else " (run again with -v for details)"
        print(f"conformance: internal error: {what}{hint}", file=sys.stderr)
        return exit_for(exc)


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (``timeout``, a CI runner cancelling) unwinds like Ctrl-C, so that
    the servers the suite started are stopped rather than orphaned."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_command(args: argparse.Namespace, out: TextIO, argv: Sequence[str] = ()) -> int:
    from conformance.repeat import Changed, changed_verdicts, repeat
    from conformance.repeat import render as render_flakes
    from conformance.reports import outputs
    from conformance.reports.model import EXIT_FAILED
    from conformance.run_suite import RunOptions, UsageProblem, collected_tests, run

    client = args.client or args.client_menu
    server_options = (args.server, args.server_cmd, args.tls, args.ca, args.cert, args.key)
    if (client or args.listen) and (any(server_options) or args.service != "abp"):
        raise UsageProblem("--client/--client-menu/--listen test a client: no server options")
    if args.listen and not client:
        raise UsageProblem("--listen needs --client or --client-menu")
    service = "client" if client else args.service
    try:
        prepared = outputs.prepare(args)
        if prepared.needs_tests:
            outputs.check_tests(prepared, collected_tests(service))
    except outputs.ReportProblem as exc:
        raise UsageProblem(str(exc)) from None
    options = RunOptions(
        service="client" if client else args.service,
        server=args.server,
        server_cmd=args.server_cmd,
        framing=args.framing,
        workers=args.workers,
        requirements=args.requirement,
        keyword=args.keyword,
        timeout=args.timeout,
        seed=args.seed,
        fuzz_examples=args.fuzz_examples,
        idle_timeout=args.idle_timeout,
        max_conns=args.max_conns,
        quiet_period=args.quiet_period,
        strict=args.strict,
        verbose=args.verbose,
        client=args.client,
        client_menu=args.client_menu,
        listen=args.listen,
        maxfail=args.maxfail,
        tests=args.tests,
        tls=args.tls,
        ca=args.ca,
        cert=args.cert,
        key=args.key,
        tls_client_auth=args.tls_client_auth,
    )
    flakes: list[Changed] = []
    with terminate_as_interrupt():
        if args.repeat > 1:  # the flake hunt: the last run is reported in full
            results, pytest_output = repeat(lambda: run(options, out), args.repeat, out)
            flakes = changed_verdicts(results)
            status, result = 1, results[-1] if results else None
        else:
            status, result, pytest_output = run(options, out)
    if result is None:
        return status
    if args.verbose and pytest_output.strip():
        out.write("\npytest's own output:\n" + pytest_output)
    try:
        status = outputs.finish(result, args, list(argv) or ["run"], out, prepared)
    except outputs.ReportProblem as exc:
        raise UsageProblem(str(exc)) from None
    if args.repeat > 1:
        out.write(render_flakes(flakes, args.repeat))
        out.flush()
    return EXIT_FAILED if flakes else status


def list_requirements(args: argparse.Namespace, out: TextIO) -> int:
    from conformance.run_suite import SUITES, covering_tests
    from protocol import requirements

    services = [args.service] if args.service else list(SUITES)
    roles = {role for s in services for role in SUITES[s][1]}
    if not args.service:
        roles.add("program")
    covered = covering_tests(services)
    rows = [r for r in requirements.catalogue().values() if r.role in roles]
    if args.json:
        data = [
            {
                "id": r.id,
                "level": r.level,
                "role": r.role,
                "section": r.section,
                "text": r.text,
                "tests": covered.get(r.id, []),
            }
            for r in rows
        ]
        out.write(json.dumps(data, indent=2) + "\n")
        return 0
    section = None
    for r in rows:
        if r.section != section:
            section = r.section
            out.write(f"\n{section}\n")
        tests = covered.get(r.id, [])
        if r.role == "program":
            count = "checked by the project's own tests, not on the wire"
        else:
            count = f"{len(tests)} test" + ("" if len(tests) == 1 else "s")
        out.write(f"  {r.id:<16} {r.level:<6} {r.role:<8} {count}\n")
        if args.verbose:
            out.write(f"      {r.text}\n")
        for nodeid in tests:
            out.write(f"      {nodeid}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
