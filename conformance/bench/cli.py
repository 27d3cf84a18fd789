"""``conformance bench``: how fast is a server, and does it stay correct under load?

Exit status: 0 the run was made and no check failed; 1 the server lost an
acknowledged write, gave a wrong answer or a malformed one; 2 bad arguments,
or the server could not be reached or started; 130 interrupted. Every error
is one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from conformance.bench import report
from conformance.bench.run import BenchConfig, BenchError, Mix, check_loopback, run_bench
from conformance.harness.process import LOOPBACK, ServerProcess, ServerStartError
from conformance.harness.tls import TlsSettings, TlsSetupError, split_target
from protocol.program import (
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    ProgramParser,
    address,
    host_name,
    non_negative_int,
    positive_float,
    positive_int,
)

PROG = "conformance bench"

_EPILOG = """\
--server-cmd is a command template: {host} and {port} are filled with a free
loopback address, {tmpdir} with a fresh temporary directory, e.g.
  --server-cmd 'python -m reference_server --host {host} --port {port} --db {tmpdir}/db'
Over TLS: --server tls://HOST:PORT --ca FILE, or --server-cmd '...' --tls --ca FILE.

exit status:
  0  the run was made; every answer well-formed, nothing acknowledged was lost
  1  a malformed or wrong answer, or an acknowledged write lost
  2  bad arguments; the server could not be reached or started
"""


def _mix(text: str) -> Mix:
    try:
        return Mix.parse(text)
    except BenchError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = ProgramParser(
        prog=PROG,
        description="Load an ABP/1 server from several processes; report throughput, "
        "latency, errors, and whether every acknowledged write is still there.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument(
        "--server",
        type=_target,
        metavar="HOST:PORT",
        help="a running server; tls://HOST:PORT: over TLS",
    )
    target.add_argument("--server-cmd", metavar="TEMPLATE", help="start this server for the run")
    options: list[tuple[str, Callable[[str], object], object, str]] = [
        ("--server-host HOST", host_name, LOOPBACK, "{host} of --server-cmd; ::1 for IPv6"),
        ("--server-pid PID", positive_int, None, "with --server: its PID, for CPU and memory"),
        ("--connections N", positive_int, 10, "load connections"),
        ("--duration S", positive_float, None, "seconds of load (default 5)"),
        ("--requests N", positive_int, None, "stop after N answers (within 120 s by default)"),
        ("--mix MIX", _mix, Mix(), "e.g. fnd:80,add:20"),
        ("--pipeline K", positive_int, 1, "requests in flight per connection; 1 is lockstep"),
        ("--processes P", positive_int, 1, "load processes"),
        ("--keys N", positive_int, 16, "names per connection"),
        ("--idle N", non_negative_int, 0, "connections held idle, then each asked for a fnd"),
        ("--timeout S", positive_float, 10.0, "seconds to wait for one answer"),
    ]
    for flag, kind, default, text in options:
        name, metavar = flag.split()
        more = "" if default is None else f" (default {default})"
        parser.add_argument(name, type=kind, default=default, metavar=metavar, help=text + more)
    for flag, dest, action, text in [
        ("--bystander", "bystander", "store_true", "one more lockstep fnd client, timed apart"),
        ("--no-data-check", "data_check", "store_false", "check only that answers are well-formed"),
        ("--no-progress", "progress", "store_false", "no progress line on stderr"),
    ]:
        parser.add_argument(flag, dest=dest, action=action, help=text)
    parser.add_argument("--json", metavar="PATH", help="also write the result as JSON here")
    tls = parser.add_argument_group("ABP over TLS (docs/spec.md section 9)")
    tls.add_argument("--tls", action="store_true", help="speak TLS (implied by --server tls://...)")
    tls.add_argument("--ca", metavar="FILE", help="PEM CA file to trust (default: the system's)")
    tls.add_argument("--cert", metavar="FILE", help="client certificate (PEM)")
    tls.add_argument("--key", metavar="FILE", help="the private key of --cert (PEM)")
    return parser


def _target(text: str) -> tuple[str, int, bool]:
    """``[tls://]HOST:PORT``: host, port, and whether it is TLS."""
    rest, tls = split_target(text)
    host, port = address(rest)
    return host, port, tls


def _tls(args: argparse.Namespace) -> TlsSettings | None:
    """The TLS settings the options ask for; ``BenchError`` when they cannot be used."""
    tls = args.tls or (args.server is not None and args.server[2])
    given = [flag for flag in ("ca", "cert", "key") if getattr(args, flag)]
    if not tls:
        if given:
            raise BenchError(f"--{given[0]} needs --server tls://HOST:PORT or --tls")
        return None
    settings = TlsSettings(ca=args.ca, cert=args.cert, key=args.key)
    try:
        settings.check()
    except TlsSetupError as exc:
        raise BenchError(str(exc)) from None
    return settings


def _fail(message: str, status: int = EXIT_USAGE) -> int:
    first = (message.strip().splitlines() or ["unknown error"])[0]
    print(f"{PROG}: error: {first}", file=sys.stderr, flush=True)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.json is not None and not Path(args.json).resolve().parent.is_dir():
        return _fail(f"--json {args.json}: no such directory")
    given = "connections requests mix pipeline processes idle bystander keys timeout data_check"
    config = BenchConfig(
        duration=args.duration or (120.0 if args.requests else 5.0),  # --requests: within 120 s
        **{name: getattr(args, name) for name in [*given.split(), "progress"]},
    )
    try:
        config = replace(config.check(), tls=_tls(args))
        if args.server is not None:
            host, port, _ = args.server
            config = replace(config, host=host, port=port, server_pid=args.server_pid)
            return _run(config, args.json)
        return _with_started_server(args.server_cmd, args.server_host, config, args.json)
    except BenchError as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return _fail("interrupted", EXIT_INTERRUPTED)


def _with_started_server(
    template: str, host: str, config: BenchConfig, json_path: str | None
) -> int:
    check_loopback(host)
    server = ServerProcess(template, host=host)
    try:
        server.argv()
    except (KeyError, ValueError, IndexError) as exc:
        server.close()
        raise BenchError(f"--server-cmd: {exc.args[0] if exc.args else exc}") from None
    try:
        with server:
            config = replace(config, host=server.host, port=server.port, server_pid=server.pid)
            status = _run(config, json_path)
            if not server.running:
                print(f"{PROG}: note: the server exited during the run", file=sys.stderr)
            return status
    except ServerStartError as exc:
        return _fail(f"--server-cmd: {exc}")


def _run(config: BenchConfig, json_path: str | None) -> int:
    result = run_bench(config, progress=sys.stderr if config.progress else None)
    print(report.text(result), flush=True)
    if json_path is not None:
        try:
            Path(json_path).write_text(json.dumps(report.as_json(result), indent=2) + "\n")
        except OSError as exc:
            return _fail(f"cannot write {json_path}: {exc.strerror or exc}")
    return report.exit_status(result)
