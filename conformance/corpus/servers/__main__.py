"""``python -m conformance.corpus.servers --defect NAME --host H --port P --data DIR``.

``--variant NAME`` instead of ``--defect NAME`` starts a server of the
acquittal corpus (correct, one allowed choice apart from the reference).

Exit status: 0 after SIGTERM/SIGINT (the book is closed cleanly: the
``flush-on-exit`` defect writes its buffer then), 1 when it cannot listen,
2 for a bad command line (an unknown defect included).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from conformance.corpus.servers.defects import DEFECTS, Defect
from conformance.corpus.servers.registry import Variant
from conformance.corpus.servers.variants import VARIANTS
from protocol import DEFAULT_HOST, DEFAULT_PORT, DEFAULT_QUIET_PERIOD
from protocol.program import (
    ProgramParser,
    host_name,
    non_negative_float,
    port_number,
    positive_float,
)

PROG = "python -m conformance.corpus.servers"


def _listing() -> str:
    rows = []
    for d in DEFECTS.values():
        needs = ["--server-cmd"] if d.needs_server_cmd else []
        needs += ["--service counter"] if d.service == "counter" else []
        needs += ["--strict (a SHOULD)"] if d.should else []
        rows.append(
            f"{d.name:26} {' '.join(d.requirements) or '-':16} {d.summary}"
            + (f"  [needs {', '.join(needs)}]" if needs else "")
        )
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = ProgramParser(prog=PROG, description=__doc__.splitlines()[0] if __doc__ else None)
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--defect", default="correct", help="which broken server (see --list)")
    which.add_argument("--variant", help="which correct variant (see --list)")
    parser.add_argument("--list", action="store_true", help="list the defects and exit")
    parser.add_argument("--host", type=host_name, default=DEFAULT_HOST)
    parser.add_argument("--port", type=port_number(allow_zero=True), default=DEFAULT_PORT)
    parser.add_argument(
        "--data", type=Path, default=None, help="directory of the book's log (none: not saved)"
    )
    parser.add_argument("--service", choices=("abp", "counter"), default=None)
    parser.add_argument("--quiet-period", type=non_negative_float, default=DEFAULT_QUIET_PERIOD)
    parser.add_argument("--idle-timeout", type=positive_float, default=300.0)
    args = parser.parse_args(argv)
    if args.list:
        with contextlib.suppress(BrokenPipeError):  # `--list | head`
            print(_listing(), flush=True)
        return 0
    chosen: Defect | Variant | None
    if args.variant is not None:
        chosen = VARIANTS.get(args.variant)
        if chosen is None:
            parser.error(f"unknown variant {args.variant!r} (see --list)")
    else:
        chosen = DEFECTS.get(args.defect)
        if chosen is None:
            parser.error(f"unknown defect {args.defect!r} (see --list)")
    try:
        server = chosen.server(
            service=args.service or chosen.service,
            data_dir=args.data,
            quiet_period=args.quiet_period,
            idle_timeout=args.idle_timeout,
        )
    except OSError as exc:
        print(f"{PROG}: error: cannot open the book in {args.data}: {exc}", file=sys.stderr)
        return 1
    try:
        asyncio.run(_run(server.serve, args.host, args.port))
    except OSError as exc:
        print(f"{PROG}: error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0


async def _run(serve: Callable[[str, int], Awaitable[None]], host: str, port: int) -> None:
    task = asyncio.ensure_future(serve(host, port))
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await task


if __name__ == "__main__":
    sys.exit(main())
