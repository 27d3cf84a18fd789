"""What the protocol package costs per request, without any I/O.

The figures docs/performance.md rests on. ``decode_request`` and
``encode_response`` memoise valid short lines (``protocol._codec.MEMO_SIZE``);
the rows marked "distinct" use a new name on every call, more names than the
memo holds, so that every call is a miss: the worst case.

    python benchmarks/codec_cost.py
"""

from __future__ import annotations

import argparse
import gc
import itertools
import sys
import timeit
from collections.abc import Callable, Iterator

from protocol import Find, Ok, ServerConnection
from protocol.codec import (
    MEMO_MAX_BYTES,
    MEMO_SIZE,
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
    memory = memo_memory()  # first, while the memos are empty
    server = ServerConnection()
    line = encode_request(Find("bench0001-c1k3"))

    def server_round() -> None:
        server.receive_data(line, 0.0)
        server.send(Ok("v3"))

    # Far more distinct names than the memo holds, cycled: every call misses.
    distinct = [f"bench0001-c1k{i}" for i in range(MEMO_SIZE * 4)]
    lines: Iterator[bytes] = itertools.cycle([encode_request(Find(n))[:-1] for n in distinct])
    adds: Iterator[bytes] = itertools.cycle([f"add:{n},v3".encode() for n in distinct])
    texts: Iterator[str] = itertools.cycle(distinct)

    def server_round_distinct() -> None:
        server.receive_data(next(lines) + b"\n", 0.0)
        server.send(Ok(next(texts)))

    cases: list[tuple[str, Callable[[], object]]] = [
        ("ServerConnection: receive one fnd line + send Ok(entry)", server_round),
        ("decode_request(b'fnd:NAME')", lambda: decode_request(line[:-1])),
        ("decode_request(b'add:NAME,ENTRY')", lambda: decode_request(b"add:bench0001-c1k3,v3")),
        ("encode_response(Ok('v3'))", lambda: encode_response(Ok("v3"))),
        ("encode_response(Ok())", lambda: encode_response(Ok())),
        ("encode_response(no_entry(NAME))", lambda: encode_response(no_entry("bench0001-c1k3"))),
        ("decode_response(b'OK: v3')", lambda: decode_response(b"OK: v3")),
        ("encode_request(Find(NAME))", lambda: encode_request(Find("bench0001-c1k3"))),
        ("distinct: ServerConnection fnd + Ok(entry), all misses", server_round_distinct),
        ("distinct: decode_request(b'fnd:NAME'), all misses", lambda: decode_request(next(lines))),
        ("distinct: decode_request(b'add:NAME,ENTRY'), misses", lambda: decode_request(next(adds))),
        (
            "distinct: encode_response(Ok(TEXT)), all misses",
            lambda: encode_response(Ok(next(texts))),
        ),
        (
            "distinct: encode_response(no_entry(NAME)), misses",
            lambda: encode_response(no_entry(next(texts))),
        ),
    ]
    print(f"Python {sys.version.split()[0]}; microseconds per call, best of 5 x {args.number:,}")
    for label, function in cases:
        print(f"  {per_call(function, args.number):7.2f} us  {label}")
    print(f"  {memory:7.1f} MiB RSS growth: every memo full of 256-byte worst cases")
    return 0


def memo_memory() -> float:
    """The memos' worst case in memory: each filled with the longest lines it keeps
    (the codec's two and the reference server's two answer memos)."""
    from reference_server import connection

    def rss() -> float:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * 4096 / 2**20

    gc.collect()
    before = rss()
    for i in range(MEMO_SIZE + 1000):
        name = f"n{i:07d}" + "x" * 100
        decode_request(f"add:{name},".encode() + b"e" * (MEMO_MAX_BYTES - len(name) - 5))
        encode_response(Ok("t" * (MEMO_MAX_BYTES - 7) + f"{i:07d}"))
        encode_response(connection._not_found("u" * (MEMO_MAX_BYTES - 20) + f"{i:07d}"))
        connection._found("w" * (MEMO_MAX_BYTES - 7) + f"{i:07d}")
    gc.collect()
    return rss() - before


if __name__ == "__main__":
    sys.exit(main())
