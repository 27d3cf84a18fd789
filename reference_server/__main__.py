"""``abp-server`` / ``python -m reference_server``: the command line.

Exit status: 0 after a clean stop (SIGINT or SIGTERM), 1 when the server
cannot start (port busy, address unusable, database or TLS files unusable),
2 for a bad command line, a bad ``ABP_HOST``/``ABP_PORT``, or a
``--max-conns`` the file-descriptor limit cannot hold. Every error is one
line on stderr, ``abp-server: error: ...``; never a traceback. The parser,
validators, exit codes and descriptor-limit helper are ``protocol.program``'s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence

from protocol import DEFAULT_HOST, DEFAULT_PORT, DEFAULT_QUIET_PERIOD
from protocol.program import (
    EXIT_OK,
    EXIT_USAGE,
    ProgramParser,
    add_version,
    host_name,
    non_negative_float,
    port_number,
    positive_float,
    positive_int,
    raise_fd_limit,
)
from reference_server.server import (
    ListenError,
    TLSSetupError,
    format_address,
    serve,
    tls_context,
)
from reference_server.settings import (
    DEFAULT_LINE_TIMEOUT,
    DEFAULT_MAX_CONNS,
    Settings,
    default_max_conns_per_ip,
)
from reference_server.store import Store, StoreError

PROG = "abp-server"
EXIT_CANNOT_START = 1
DEFAULT_DB = "abp-book.sqlite3"
#: Descriptors the server needs besides its connections: stdio, the
#: listening sockets, the event loop, the database and its WAL files, and
#: the refused connections lingering for their busy answer (at most
#: ``connection.MAX_LINGERING``).
FD_SPARE = 64

_EPILOG = f"""\
environment:
  ABP_HOST, ABP_PORT   defaults for --host and --port (the command line wins)

exit status:
  {EXIT_OK}  stopped cleanly by SIGINT or SIGTERM
  {EXIT_CANNOT_START}  cannot start: port busy, address unusable, database or TLS files unusable
  {EXIT_USAGE}  bad command line or environment value, or --max-conns past the
     file-descriptor limit (the soft limit is first raised to the hard one)

On start the server prints one line, "listening on HOST:PORT", on stdout
(the real port when --port 0). Listening beyond loopback without TLS gets a
one-line warning on stderr: ABP has no authentication.
"""


_port = port_number(allow_zero=True)  # 0: pick a free port


def build_parser() -> argparse.ArgumentParser:
    parser = ProgramParser(
        prog=PROG,
        description="The ABP/1 reference server: the address book (or the counter service) "
        "over TCP, as docs/spec.md defines it.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_version(parser)
    parser.add_argument(
        "--host",
        type=host_name,
        help=f"address to listen on: a name, IPv4 or IPv6 such as ::1 "
        f"(default: $ABP_HOST, else {DEFAULT_HOST})",
    )
    parser.add_argument(
        "--port",
        type=_port,
        help=f"TCP port; 0 picks a free one (default: $ABP_PORT, else {DEFAULT_PORT})",
    )
    parser.add_argument(
        "--service",
        choices=("abp", "counter"),
        default="abp",
        help="abp: the address book; counter: the connection counter of section 7 "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--db",
        default=DEFAULT_DB,
        metavar="PATH",
        help="SQLite file of the address book, created if missing (default: %(default)s "
        "in the current directory)",
    )
    parser.add_argument(
        "--sync",
        choices=("normal", "full"),
        default="normal",
        help="normal: every OK'd change survives a crash of the server process; "
        "full: it also survives power loss (an fsync per group commit) (default: %(default)s)",
    )
    parser.add_argument(
        "--quiet-ms",
        type=positive_float,
        default=DEFAULT_QUIET_PERIOD * 1000,
        metavar="MS",
        help="quiet period after which buffered bytes with no LF are a request "
        "(default: %(default)g)",
    )
    parser.add_argument(
        "--idle-timeout",
        type=non_negative_float,
        default=300.0,
        metavar="SECONDS",
        help="close connections idle this long; 0 = never (default: %(default)g)",
    )
    parser.add_argument(
        "--line-timeout",
        type=non_negative_float,
        default=DEFAULT_LINE_TIMEOUT,
        metavar="SECONDS",
        help="close a connection whose request line has no LF this long after its "
        "first byte (not a legacy request, which the quiet period ends); 0 = never "
        "(default: %(default)g)",
    )
    parser.add_argument(
        "--max-conns",
        type=positive_int,
        default=DEFAULT_MAX_CONNS,
        metavar="N",
        help="open connections served at once; past it a new one gets "
        "'ERROR: Server busy' and is closed (default: %(default)s)",
    )
    parser.add_argument(
        "--max-conns-per-ip",
        type=positive_int,
        metavar="N",
        help="open connections served at once from one client address; past it the "
        "same refusal (default: half of --max-conns, at least 128)",
    )
    tls = parser.add_argument_group("ABP over TLS (docs/spec.md, 'ABP over TLS')")
    tls.add_argument(
        "--tls-cert",
        metavar="FILE",
        help="serve over TLS 1.2+ with this PEM certificate (chain); needs --tls-key",
    )
    tls.add_argument("--tls-key", metavar="FILE", help="the PEM private key of --tls-cert")
    tls.add_argument(
        "--tls-client-ca",
        metavar="FILE",
        help="PEM CA certificates: a client must present a certificate one of them "
        "signed, or it is refused in the handshake",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="log each connection and each request on stderr (default: quiet)",
    )
    return parser


def parse_settings(argv: Sequence[str] | None = None) -> tuple[Settings, argparse.Namespace]:
    """Settings from the command line, falling back on the environment."""
    parser = build_parser()
    args = parser.parse_args(argv)
    host, port = args.host, args.port
    if host is None:
        host = _from_env(parser, "ABP_HOST", host_name, DEFAULT_HOST)
    if port is None:
        port = _from_env(parser, "ABP_PORT", _port, DEFAULT_PORT)
    if (args.tls_cert is None) != (args.tls_key is None):
        parser.error("--tls-cert and --tls-key go together")
    if args.tls_client_ca is not None and args.tls_cert is None:
        parser.error("--tls-client-ca needs --tls-cert and --tls-key")
    settings = Settings(
        host=host,
        port=port,
        service=args.service,
        quiet_period=args.quiet_ms / 1000,
        idle_timeout=args.idle_timeout or None,
        line_timeout=args.line_timeout or None,
        max_conns=args.max_conns,
        max_conns_per_ip=args.max_conns_per_ip or default_max_conns_per_ip(args.max_conns),
        verbose=args.verbose,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        tls_client_ca=args.tls_client_ca,
    )
    return settings, args


def _from_env(
    parser: argparse.ArgumentParser,
    variable: str,
    convert: Callable[[str], str | int],
    default: str | int,
) -> str | int:
    text = os.environ.get(variable)
    if text is None:
        return default
    try:
        return convert(text)
    except argparse.ArgumentTypeError as exc:
        parser.error(f"{variable}: {exc}")


def _fail(message: str, status: int = EXIT_CANNOT_START) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr, flush=True)
    return status


def _announce(addresses: list[tuple[str, int]]) -> None:
    host, port = addresses[0]
    print(f"listening on {format_address(host, port)}", flush=True)


async def _run(settings: Settings, store: Store | None) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await serve(settings, store, stop, _announce)


def _check_fd_limit(settings: Settings, limit: int | None) -> str | None:
    """Why ``--max-conns`` cannot be kept under the descriptor limit, or None."""
    if limit is None or settings.max_conns + FD_SPARE <= limit:
        return None
    return (
        f"--max-conns {settings.max_conns} needs {settings.max_conns + FD_SPARE} file "
        f"descriptors, and the limit is {limit} (raise it with 'ulimit -n', or use "
        f"--max-conns {max(1, limit - FD_SPARE)} or less)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    settings, args = parse_settings(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO if settings.verbose else logging.WARNING,
        format=f"{PROG}: %(message)s",
    )
    too_many = _check_fd_limit(settings, raise_fd_limit())
    if too_many is not None:
        return _fail(too_many, EXIT_USAGE)
    store: Store | None = None
    try:
        tls_context(settings)  # a bad certificate or key fails before the book is touched
        if settings.service == "abp":
            store = Store.open(args.db, sync=args.sync)
        asyncio.run(_run(settings, store))
    except (StoreError, ListenError, TLSSetupError) as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:  # SIGINT before the loop took over the signal
        if store is not None:
            with contextlib.suppress(RuntimeError):
                store.close_unstarted()
        return EXIT_OK
    except Exception as exc:
        if settings.verbose:
            logging.getLogger(PROG).exception("internal error")
        return _fail(f"internal error: {exc!r}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
