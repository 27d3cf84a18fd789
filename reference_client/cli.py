"""``abp-client``: the command line, and the only place that picks exit codes.

Exit codes: 0 OK, 1 an ``ERROR`` answer, 2 a usage error or invalid input
(nothing was sent), 3 a network or protocol failure, 130 Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import ssl
import sys
from collections.abc import Callable, Sequence
from typing import Any

from protocol.address import parse_host, parse_port
from protocol.escape import EscapeError, escape, unescape
from protocol.program import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    ProgramParser,
    add_version,
    address,
    host_name,
    positive_float,
    positive_int,
    raise_fd_limit,
)
from reference_client.endpoint import Address, AddressError, parse_address, resolve_address
from reference_client.link import BY_CLOSE, NetworkError, Session
from reference_client.menu import Shell
from reference_client.operations import (
    InvalidInput,
    answer_text,
    exchange_record,
    failure_record,
    is_error,
    make_request,
)
from reference_client.trace import Tracer

EXIT_ERROR_ANSWER = 1
#: A network or protocol failure (connection refused, timeout, malformed answer).
EXIT_NETWORK = 3

PROG = "abp-client"

EPILOG = """\
exit status:
  0   OK answer (raw: the exchange ran; shell: quit or end of input;
      proxy: stopped by Ctrl-C or SIGTERM; replay: every answer the same)
  1   ERROR answer from the server (the error line goes to stderr);
      replay: some answers differ from the recording
  2   usage error or invalid input (nothing was sent)
  3   network or protocol failure: connection refused, timeout, reset,
      connection closed before an answer, or a malformed answer
  130 interrupted (Ctrl-C)

environment:
  ABP_HOST, ABP_PORT  default server address (else 127.0.0.1:2007);
                      --server, --host and --port win over them
  NO_COLOR            set: the shell shows no colours
  XDG_STATE_HOME      the shell's history is $XDG_STATE_HOME/abp-client/history
                      (else ~/.local/state/abp-client/history)

Every option may be written before or after the command.
"""

#: Said once, when an answer was ended by the server closing (ABP-FRAME-8).
ENDED_BY_CLOSE = "answer ended by the connection closing, without LF"


def _server_text(text: str) -> str:
    """``--server`` as given (its port may come from ABP_PORT); a bare number
    is refused as ``protocol.program.address`` refuses it."""
    if text.strip().isdigit():
        address(text)  # raises ArgumentTypeError: "'7801' is a port, not an address"
    return text


def _listen_address(text: str) -> Address:
    """``HOST:PORT`` to listen on; port 0 picks a free one; a bare number is refused."""
    host, colon, port = text.strip().rpartition(":")
    if not colon or text.strip().isdigit():
        address(text)  # raises, with the words every program uses
    try:
        return Address(parse_host(host), parse_port(port, allow_zero=True))
    except AddressError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _host_text(text: str) -> str:
    host_name(text)  # a bare number is refused
    return text


def _common_options(defaults: bool) -> ProgramParser:
    """Options valid before and after the command. After it they default to
    SUPPRESS, so that a value given before the command is not overwritten."""
    parent = ProgramParser(add_help=False, allow_abbrev=False)

    def default(value: object) -> object:
        return value if defaults else argparse.SUPPRESS

    group = parent.add_argument_group("connection options")
    group.add_argument(
        "--server",
        metavar="HOST:PORT",
        type=_server_text,
        default=default(None),
        help="server address: name, IPv4 or [IPv6], with :PORT (default from "
        "ABP_HOST/ABP_PORT, else 127.0.0.1:2007)",
    )
    group.add_argument(
        "--host", type=_host_text, default=default(None), help="server host (overrides --server)"
    )
    group.add_argument("--port", default=default(None), help="server port (overrides --server)")
    group.add_argument(
        "--timeout",
        metavar="S",
        type=positive_float,
        default=default(5.0),
        help="seconds one exchange may take in all, connecting included (default 5)",
    )
    group.add_argument(
        "--legacy",
        action="store_true",
        default=default(False),
        help="talk to tutorial-era servers: send requests with no terminator, take end "
        "of stream or --quiet-ms of silence as the end of an answer, accept free text",
    )
    group.add_argument(
        "--quiet-ms",
        metavar="MS",
        type=positive_int,
        default=default(300),
        help="with --legacy: silence that ends an answer with no LF (default 300)",
    )
    group.add_argument(
        "--tls",
        action="store_true",
        default=default(False),
        help="speak ABP over TLS (1.2 or later), verifying the server's certificate",
    )
    group.add_argument(
        "--ca",
        metavar="FILE",
        default=default(None),
        help="with --tls: trust the CA certificates in FILE (PEM) instead of the system's",
    )
    group.add_argument(
        "--cert",
        metavar="FILE",
        default=default(None),
        help="with --tls: present this client certificate (PEM; needs --key)",
    )
    group.add_argument(
        "--key", metavar="FILE", default=default(None), help="with --tls: the key of --cert"
    )
    shown = parent.add_argument_group("output options")
    shown.add_argument(
        "--trace",
        action="store_true",
        default=default(False),
        help="show every frame sent (>>) and received (<<) on stderr: time, size, "
        "escaped text, hex, and how the schema decoded it",
    )
    shown.add_argument(
        "--json",
        action="store_true",
        default=default(False),
        help="one JSON object per answer on stdout: request, answer, status, "
        "latency_ms, bytes_sent, bytes_received",
    )
    raw = parent.add_argument_group("raw options")
    raw.add_argument(
        "--wait",
        metavar="S",
        type=positive_float,
        default=default(1.0),
        help="raw: stop after this many seconds without a byte (default 1.0)",
    )
    raw.add_argument(
        "--half-close",
        action="store_true",
        default=default(False),
        help="raw: shut down our sending side after sending (the legacy end of a request)",
    )
    return parent


def build_parser() -> argparse.ArgumentParser:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = ProgramParser(
        prog=PROG,
        description="A client for ABP/1 servers, for using and debugging them.\n"
        "With no COMMAND it opens the interactive shell (commands read from stdin\n"
        "when stdin is not a terminal).",
        epilog=EPILOG,
        formatter_class=formatter,
        parents=[_common_options(defaults=True)],
        allow_abbrev=False,
    )
    add_version(parser)
    after = _common_options(defaults=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, summary: str, description: str) -> argparse.ArgumentParser:
        return commands.add_parser(
            name,
            help=summary,
            description=description,
            epilog=EPILOG,
            formatter_class=formatter,
            parents=[after],
            allow_abbrev=False,
        )

    name_help = "the name: non-empty, no ',', CR, LF or NUL (':' and any Unicode allowed)"
    add = command(
        "add",
        "store ENTRY under NAME",
        "Send add:NAME,ENTRY and print the text after 'OK: ' (or OK). Put -- before\n"
        "NAME if NAME or ENTRY starts with '-'.",
    )
    add.add_argument("name", metavar="NAME", help=name_help)
    add.add_argument(
        "entry", metavar="ENTRY", nargs="?", default="", help="the entry (default: empty)"
    )
    for op, summary, what in (
        ("rem", "remove the entry of NAME", "Send rem:NAME and print the text after 'OK: '."),
        ("fnd", "find the entry of NAME", "Send fnd:NAME and print the entry exactly."),
    ):
        sub = command(op, summary, what + " Put -- before NAME if it starts with '-'.")
        sub.add_argument("name", metavar="NAME", help=name_help)
        sub.add_argument(
            "entry",
            metavar="ENTRY",
            nargs="?",
            default="",
            help="must be empty if given (the argv contract passes {entry} for every op)",
        )
    command(
        "shell",
        "the tutorial's menu, driven through stdin",
        "The tutorial's menu: 1 add (name, house number, street, town, phone),\n"
        "2 delete, 3 find, 4 quit. Scriptable: every answer is read from stdin;\n"
        "end of input quits. (For the interactive shell, run abp-client with no command.)",
    )
    raw = command(
        "raw",
        "send TEXT exactly, print what comes back",
        "Send TEXT with escapes interpreted (\\n \\r \\t \\0 \\\\ \\xHH) and no\n"
        "terminator added, then print the bytes that come back, escaped, until the\n"
        "server closes, is silent for --wait seconds, or --timeout runs out. How it\n"
        "ended goes to stderr.",
    )
    raw.add_argument("text", metavar="TEXT", help="the bytes to send, with escapes")
    proxy = command(
        "proxy",
        "a checking proxy: forward, decode, name every violation",
        "Listen on --listen and forward every connection's bytes unchanged to\n"
        "--upstream (default: the server address). Print each request and answer\n"
        "decoded, with the time it took, and every violation of the spec on either\n"
        "side, named by requirement ID; #N keeps concurrent connections apart.\n"
        "--json prints JSON lines instead; --record FILE saves the bytes for\n"
        "'abp-client replay'. Runs until Ctrl-C or SIGTERM (exit 0).",
    )
    proxy.add_argument(
        "--listen",
        metavar="HOST:PORT",
        type=_listen_address,
        required=True,
        help="where to listen (port 0: any free port; the first line on stderr says which)",
    )
    proxy.add_argument(
        "--upstream", metavar="HOST:PORT", type=_server_text, help="the server to forward to"
    )
    proxy.add_argument("--record", metavar="FILE", help="save the session for replay")
    replay = command(
        "replay",
        "send a recording's client bytes again, report differing answers",
        "Replay a file written by 'abp-client proxy --record' against the server:\n"
        "the same client bytes, connection by connection, then a line for every\n"
        "answer that differs from the recorded one. Exit 0: all the same; 1: some\n"
        "differ; 3: the server could not be reached.",
    )
    replay.add_argument("file", metavar="FILE", help="the recording")
    return parser


# ---------------------------------------------------------------- commands


def _fail(message: str, status: int) -> int:
    sys.stderr.write(f"{PROG}: {message}\n")
    sys.stderr.flush()
    return status


def _write(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _json(record: dict[str, Any]) -> None:
    _write(json.dumps(record, ensure_ascii=False))


def run_operation(args: argparse.Namespace, session: Session) -> int:
    """The argv contract (ABP-CLIENT-1 .. ABP-CLIENT-4)."""
    if args.command != "add" and args.entry:
        return _fail(f"{args.command} takes no ENTRY (got {args.entry!r})", EXIT_USAGE)
    try:
        request = make_request(args.command, args.name, args.entry)
    except InvalidInput as exc:
        return _fail(str(exc), EXIT_USAGE)
    try:
        exchange = session.request(request)
    except NetworkError as exc:
        if args.json:
            _json(failure_record(request, str(exc)))
        return _fail(str(exc), EXIT_NETWORK)
    for notice in session.notices:
        _fail(notice, EXIT_OK)
    if exchange.ending == BY_CLOSE and not session.legacy:
        _fail(ENDED_BY_CLOSE, EXIT_OK)
    if args.json:
        _json(exchange_record(exchange))
        return EXIT_ERROR_ANSWER if is_error(exchange.answer) else EXIT_OK
    text = answer_text(request, exchange.answer)
    if is_error(exchange.answer):
        sys.stderr.write(text + "\n")
        return EXIT_ERROR_ANSWER
    _write(text)
    return EXIT_OK


def run_raw(args: argparse.Namespace, session: Session) -> int:
    try:
        data = unescape(args.text)
    except EscapeError as exc:
        return _fail(f"bad escape: {exc}", EXIT_USAGE)
    try:
        result = session.raw(data, wait=args.wait, half_close=args.half_close)
    except NetworkError as exc:
        if args.json:
            _json(failure_record(escape(data), str(exc)))
        return _fail(str(exc), EXIT_NETWORK)
    if args.json:
        _json(
            {
                "request": escape(data),
                "answer": escape(result.received),
                "status": "failure" if result.error else "ok",
                "latency_ms": round(result.latency * 1000, 3),
                "bytes_sent": len(data),
                "bytes_received": len(result.received),
                "ended_by": result.ending,
            }
        )
    else:
        _write(escape(result.received))
    if result.error is not None:
        return _fail(
            f"{len(result.received)} bytes received, then {result.ending}: {result.error}",
            EXIT_NETWORK,
        )
    return _fail(f"{len(result.received)} bytes received; {result.ending}", EXIT_OK)


def run_proxy(args: argparse.Namespace, session: Session) -> int:
    from reference_client import proxy

    if session.tls is not None:
        return _fail("the proxy forwards plain TCP: --tls cannot be used with it", EXIT_USAGE)
    try:
        upstream = session.address if args.upstream is None else parse_address(args.upstream)
    except AddressError as exc:
        return _fail(f"--upstream: {exc}", EXIT_USAGE)
    if upstream.host.isdigit():
        return _fail(f"--upstream: {upstream.host!r} is a number, not a host", EXIT_USAGE)
    try:
        record = None if args.record is None else open(args.record, "w", encoding="utf-8")  # noqa: SIM115
    except OSError as exc:
        return _fail(f"cannot write {args.record}: {exc.strerror or exc}", EXIT_USAGE)
    raise_fd_limit()  # every proxied connection holds two descriptors
    try:
        return proxy.run(
            args.listen,
            upstream,
            json_output=args.json,
            record=record,
            connect_timeout=session.timeout,
        )
    except OSError as exc:
        return _fail(f"cannot listen on {args.listen}: {exc.strerror or exc}", EXIT_NETWORK)
    finally:
        if record is not None:
            record.close()


def run_replay(args: argparse.Namespace, session: Session) -> int:
    from reference_client.proxy import load_recording
    from reference_client.replay import Difference, replay

    try:
        with open(args.file, encoding="utf-8") as stream:
            _, records = load_recording(stream.readlines())
    except (OSError, UnicodeDecodeError) as exc:
        return _fail(f"cannot read {args.file}: {exc}", EXIT_USAGE)
    except ValueError as exc:
        return _fail(f"{args.file}: {exc}", EXIT_USAGE)

    def show(difference: Difference) -> None:
        if args.json:
            _json(difference.as_json())
        else:
            _write(difference.render())

    try:
        result = replay(
            records,
            session.address,
            timeout=session.timeout,
            tls=session.tls,
            tracer=session.tracer,
            clock=session.clock,
            on_difference=show,
        )
    except ValueError as exc:
        return _fail(f"{args.file}: {exc}", EXIT_USAGE)
    except NetworkError as exc:
        return _fail(str(exc), EXIT_NETWORK)
    summary = (
        f"replayed {result.connections} connection(s) to {session.address}: "
        f"{result.answers} answer(s) recorded, {len(result.differences)} differ"
    )
    _fail(summary, EXIT_OK)
    return EXIT_ERROR_ANSWER if result.differences else EXIT_OK


def run_menu(args: argparse.Namespace, session: Session) -> int:
    return Shell(session, sys.stdin, sys.stdout, sys.stderr).run()


def run_interactive(args: argparse.Namespace, session: Session) -> int:
    from reference_client.interactive import Console

    session.keep_open = True
    return Console(session, wait=args.wait, json_output=args.json).run()


def _utf8_streams() -> None:
    """Answers and names are any Unicode: speak UTF-8 whatever the locale says."""
    for stream, errors in (
        (sys.stdin, "surrogateescape"),
        (sys.stdout, "surrogateescape"),
        (sys.stderr, "backslashreplace"),
    ):
        if isinstance(stream, io.TextIOWrapper):
            with contextlib.suppress(ValueError, io.UnsupportedOperation):
                stream.reconfigure(encoding="utf-8", errors=errors)


class UsageProblem(Exception):
    """A command line that parses but cannot be used; one line, exit 2."""


def tls_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    """The client's TLS settings, or None without ``--tls``; files are read now."""
    if not args.tls:
        for option in ("ca", "cert", "key"):
            if getattr(args, option) is not None:
                raise UsageProblem(f"--{option} needs --tls")
        return None
    if (args.cert is None) != (args.key is None):
        raise UsageProblem("--cert and --key go together")
    if args.half_close:
        raise UsageProblem("--half-close cannot be used with --tls")
    try:
        context = ssl.create_default_context(cafile=args.ca)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if args.cert is not None:
            context.load_cert_chain(args.cert, args.key)
    except (OSError, ssl.SSLError) as exc:
        raise UsageProblem(f"cannot use the TLS files: {exc}") from None
    return context


def _address(args: argparse.Namespace) -> Address:
    try:
        where = resolve_address(os.environ, server=args.server, host=args.host, port=args.port)
    except AddressError as exc:
        raise UsageProblem(str(exc)) from None
    if where.host.isdigit():  # ABP_HOST=7801, --server 7801:2007: an address off this machine
        raise UsageProblem(f"{where.host!r} is a number, not a host")
    return where


def make_session(args: argparse.Namespace) -> Session:
    return Session(
        _address(args),
        timeout=args.timeout,
        legacy=args.legacy,
        quiet_period=args.quiet_ms / 1000,
        tracer=Tracer(sys.stderr if args.trace else None),
        tls=tls_context(args),
        client_cert=args.cert is not None,
    )


def main(argv: Sequence[str] | None = None) -> int:
    _utf8_streams()
    args = build_parser().parse_args(argv)
    handlers: dict[str | None, Callable[[argparse.Namespace, Session], int]] = {
        None: run_interactive,
        "shell": run_menu,
        "raw": run_raw,
        "proxy": run_proxy,
        "replay": run_replay,
    }
    handler = handlers.get(args.command, run_operation)
    try:
        session = make_session(args)
    except UsageProblem as exc:
        return _fail(str(exc), EXIT_USAGE)
    try:
        return handler(args, session)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # stdout closed under us (| head): nobody left to tell
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # quiet exit flush
        return EXIT_NETWORK
    finally:
        session.close()
