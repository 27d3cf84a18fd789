"""``conformance bench``: how fast is a server, and does it stay correct under load?

Exit status: 0 the run was made and every check held; 1 the server lost an
acknowledged write, gave a wrong answer or a malformed one; 2 bad arguments,
or the server could not be reached or started. Every error is one line on
stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn, TextIO

from conformance.bench import report
from conformance.bench.config import (
    FRAMINGS,
    REQUESTS_TIME_CAP,
    BenchConfig,
    ConfigError,
    Mix,
    parse_address,
)
from conformance.bench.probe import Unreachable, check_loopback
from conformance.bench.runner import BenchError, run_bench
from conformance.harness.process import LOOPBACK, ServerProcess, ServerStartError

PROG = "conformance bench"
EXIT_OK, EXIT_DATA, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = 130

_EPILOG = """\
--server-cmd is a command template: {host} and {port} are filled with a free
loopback address, {tmpdir} with a fresh temporary directory, e.g.
  --server-cmd 'python -m reference_server --host {host} --port {port} --db {tmpdir}/db'

exit status:
  0  the run was made; every answer well-formed, nothing acknowledged was lost
  1  a malformed or wrong answer, or an acknowledged write lost
  2  bad arguments; the server could not be reached or started
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _number(kind: Callable[[str], float], low: float, what: str) -> Callable[[str], float]:
    def convert(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not value >= low or value == float("inf"):
            raise argparse.ArgumentTypeError(f"{text!r} must be at least {low:g}")
        return value

    return convert


def _int(low: int) -> Callable[[str], float]:
    return _number(int, low, "a whole number")


def _mix(text: str) -> Mix:
    try:
        return Mix.parse(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Load an ABP/1 server from several processes; report throughput, "
        "latency, errors, and whether every acknowledged write is still there.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--server", metavar="HOST:PORT", help="a running server (loopback)")
    target.add_argument("--server-cmd", metavar="TEMPLATE", help="start this server for the run")
    parser.add_argument(
        "--server-host",
        default=LOOPBACK,
        metavar="HOST",
        help=f"with --server-cmd: the loopback address for {{host}} (default {LOOPBACK}; ::1 "
        "for IPv6)",
    )
    parser.add_argument(
        "--connections", type=_int(1), default=10, metavar="N", help="load connections (10)"
    )
    parser.add_argument(
        "--duration", type=_number(float, 0.01, "a number"), metavar="S", help="default 5"
    )
    parser.add_argument(
        "--requests",
        type=_int(1),
        metavar="N",
        help="stop after N answers in all (within --duration, or "
        f"{REQUESTS_TIME_CAP:g} s when no --duration is given)",
    )
    parser.add_argument(
        "--mix", type=_mix, default=Mix(), help="default fnd:100, e.g. fnd:80,add:20"
    )
    parser.add_argument(
        "--pipeline",
        type=_int(1),
        default=1,
        metavar="K",
        help="requests in flight per connection; 1 = lockstep",
    )
    parser.add_argument(
        "--processes",
        type=_int(1),
        default=1,
        metavar="P",
        help="load processes sharing the connections, so that the generator is not the "
        "bottleneck (default 1)",
    )
    parser.add_argument("--json", metavar="PATH", help="also write the result as JSON here")
    parser.add_argument(
        "--idle",
        type=_int(0),
        default=0,
        metavar="N",
        help="hold N idle connections open during the run, then ask each for a fnd",
    )
    parser.add_argument(
        "--bystander",
        action="store_true",
        help="one more client doing lockstep fnd during the run, its latency reported apart",
    )
    parser.add_argument(
        "--framing",
        choices=FRAMINGS,
        default="auto",
        help="auto probes: LF-terminated OK/ERROR answers are 'line', free text or answers "
        "with no LF are 'legacy' (one unterminated request at a time)",
    )
    parser.add_argument(
        "--keys", type=_int(1), default=16, metavar="N", help="names per connection (default 16)"
    )
    parser.add_argument(
        "--timeout",
        type=_number(float, 0.01, "a number"),
        default=10.0,
        metavar="S",
        help="give up on an answer after S seconds (default 10)",
    )
    parser.add_argument(
        "--no-data-check",
        dest="data_check",
        action="store_false",
        help="check answers are well-formed only (for servers that store nothing)",
    )
    parser.add_argument(
        "--no-progress", dest="progress", action="store_false", help="no progress line on stderr"
    )
    parser.add_argument(
        "--server-pid",
        type=_int(1),
        metavar="PID",
        help="with --server: read this process's CPU and memory from /proc",
    )
    return parser


def _config(args: argparse.Namespace, host: str, port: int, pid: int | None) -> BenchConfig:
    duration = args.duration
    if duration is None:
        duration = REQUESTS_TIME_CAP if args.requests is not None else 5.0
    return BenchConfig(
        host=host,
        port=port,
        connections=int(args.connections),
        duration=float(duration),
        requests=None if args.requests is None else int(args.requests),
        mix=args.mix,
        pipeline=int(args.pipeline),
        processes=int(args.processes),
        framing=args.framing,
        idle=int(args.idle),
        bystander=args.bystander,
        keys=int(args.keys),
        timeout=float(args.timeout),
        data_check=args.data_check,
        progress=args.progress,
        server_pid=pid,
    ).check()


def _fail(message: str, status: int = EXIT_USAGE) -> int:
    first = message.strip().splitlines()[0] if message.strip() else "unknown error"
    print(f"{PROG}: error: {first}", file=sys.stderr, flush=True)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.json is not None and not Path(args.json).resolve().parent.is_dir():
        return _fail(f"--json {args.json}: no such directory")
    try:
        if args.server_cmd is not None:
            return _with_started_server(args)
        host, port = parse_address(args.server)
        return _run(_config(args, host, port, args.server_pid), args.json)
    except (ConfigError, BenchError) as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return _fail("interrupted", EXIT_INTERRUPTED)


def _server_process(args: argparse.Namespace, tmpdir: str) -> ServerProcess:
    """The --server-cmd server, not started yet; ``ConfigError`` for a bad template."""
    try:
        words = [word.replace("{tmpdir}", tmpdir) for word in shlex.split(args.server_cmd)]
    except ValueError as exc:
        raise ConfigError(f"--server-cmd: {exc}") from None
    if not words:
        raise ConfigError("--server-cmd is empty")
    try:
        check_loopback(args.server_host)
    except Unreachable as exc:
        raise ConfigError(str(exc)) from None
    server = ServerProcess(words, host=args.server_host)
    try:
        server.argv()
    except KeyError as exc:
        raise ConfigError(f"--server-cmd: {exc.args[0] if exc.args else exc}") from None
    except (ValueError, IndexError) as exc:
        raise ConfigError(f"--server-cmd: {exc}") from None
    return server


def _with_started_server(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="abp-bench-") as tmpdir:
        server = _server_process(args, tmpdir)
        try:
            server.start()
            config = _config(args, server.host, server.port, server.pid)
            status = _run(config, args.json)
            if not server.running:
                print(f"{PROG}: note: the server exited during the run", file=sys.stderr)
        except ServerStartError as exc:
            return _fail(f"--server-cmd: {exc}")
        finally:
            server.__exit__(None, None, None)  # stop() and close its stderr file
        return status


def _run(config: BenchConfig, json_path: str | None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    result = run_bench(config, progress=sys.stderr if config.progress else None)
    print(report.text(result), file=out, flush=True)
    if json_path is not None:
        try:
            Path(json_path).write_text(json.dumps(report.as_json(result), indent=2) + "\n")
        except OSError as exc:
            return _fail(f"cannot write {json_path}: {exc.strerror or exc}")
    return report.exit_status(result)


__all__ = ["EXIT_DATA", "EXIT_OK", "EXIT_USAGE", "build_parser", "main"]
