"""What the protocol package costs per request, without any I/O.

The reference server spends most of its CPU per request here (see
docs/performance.md); this prints the figures that claim rests on.

    python benchmarks/codec_cost.py
"""

from __future__ import annotations

import argparse
import sys
import timeit
from collections.abc import Callable

from protocol import (
    Find,
    Ok,
    ServerConnection,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
    no_entry,
)


def per_call(function: Callable[[], object], number: int) -> float:
    """Microseconds per call, best of 5 repeats."""
    return min(timeit.repeat(function, number=number, repeat=5)) / number * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=20_000, help="calls per repeat")
    args = parser.parse_args(argv)
    if not 100 <= args.number <= 10_000_000:
        parser.error("--number must be 100..10000000")
    server = ServerConnection()
    line = encode_request(Find("bench0001-c1k3"))

    def server_round() -> None:
        server.receive_data(line, 0.0)
        server.send(Ok("v3"))

    cases: list[tuple[str, Callable[[], object]]] = [
        ("ServerConnection: receive one fnd line + send Ok(entry)", server_round),
        ("decode_request(b'fnd:NAME')", lambda: decode_request(line[:-1])),
        ("decode_request(b'add:NAME,ENTRY')", lambda: decode_request(b"add:bench0001-c1k3,v3")),
        ("encode_response(Ok('v3'))", lambda: encode_response(Ok("v3"))),
        ("encode_response(Ok())", lambda: encode_response(Ok())),
        ("encode_response(no_entry(NAME))", lambda: encode_response(no_entry("bench0001-c1k3"))),
        ("decode_response(b'OK: v3')", lambda: decode_response(b"OK: v3")),
        ("encode_request(Find(NAME))", lambda: encode_request(Find("bench0001-c1k3"))),
    ]
    print(f"Python {sys.version.split()[0]}; microseconds per call, best of 5 x {args.number:,}")
    for label, function in cases:
        print(f"  {per_call(function, args.number):7.2f} us  {label}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
