"""``python -m conformance.corpus.clients --defect NAME [--timeout S] HOST PORT OP NAME [ENTRY]``.

The argv contract (docs/spec.md section 8): exit 0 on OK, 1 on an ERROR
answer, 2 on a network failure or a bad command line, 64 for invalid input.
Put ``--`` before HOST when NAME or ENTRY may start with ``-``.

``--variant NAME`` instead of ``--defect NAME`` runs a client of the
acquittal corpus (correct, one allowed choice apart from the reference); a
menu-contract variant takes only HOST PORT and reads the menu from stdin.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from conformance.corpus.clients.defects import DEFECTS
from conformance.corpus.clients.variants import VARIANTS, ConnectionPerRequest
from protocol.program import ProgramParser, positive_float

PROG = "python -m conformance.corpus.clients"


def main(argv: Sequence[str] | None = None) -> int:
    parser = ProgramParser(prog=PROG, description="A deliberately broken ABP/1 client.")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--defect", default="correct", help="which broken client (--list)")
    which.add_argument("--variant", help="which correct variant (--list)")
    parser.add_argument("--list", action="store_true", help="list the defects and exit")
    parser.add_argument("--timeout", type=positive_float, default=2.0, help="seconds per wait")
    parser.add_argument("host", nargs="?")
    parser.add_argument("port", nargs="?")
    parser.add_argument("op", nargs="?")
    parser.add_argument("name", nargs="?")
    parser.add_argument("entry", nargs="?", default="")
    args = parser.parse_args(argv)
    if args.list:
        for d in DEFECTS.values():
            print(f"{d.name:22} {d.requirement or '-':16} {d.summary}")
        print("\ncorrect variants (--variant NAME; the client suite must pass them):")
        for v in VARIANTS.values():
            print(f"{v.name:22} {v.contract:16} {v.choice}")
        return 0
    if args.variant is not None:
        chosen = VARIANTS.get(args.variant)
        if chosen is None:
            parser.error(f"unknown variant {args.variant!r} (see --list)")
        if chosen.contract == "menu":
            if args.port is None or not str(args.port).isdigit() or args.op is not None:
                parser.error("usage: --variant NAME HOST PORT (the menu on stdin)")
            client = chosen.client(args.host, int(args.port), args.timeout)
            assert isinstance(client, ConnectionPerRequest)
            return client.menu()
        if args.name is None or not str(args.port).isdigit():
            parser.error("usage: HOST PORT OP NAME [ENTRY]")
        return chosen.client(args.host, int(args.port), args.timeout).run(
            args.op, args.name, args.entry
        )
    if args.defect not in DEFECTS:
        parser.error(f"unknown defect {args.defect!r} (see --list)")
    if args.name is None or not str(args.port).isdigit():
        parser.error("usage: HOST PORT OP NAME [ENTRY]")
    client = DEFECTS[args.defect].client(args.host, int(args.port), args.timeout)
    return client.run(args.op, args.name, args.entry)


if __name__ == "__main__":
    sys.exit(main())
