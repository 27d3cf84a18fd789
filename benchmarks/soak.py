"""Writers against the reference server while it is SIGKILLed and restarted.

    python benchmarks/soak.py                        # 20 s, 6 kills, 8 writers, --sync normal
    python benchmarks/soak.py --seconds 60 --kills 20 --seed 7

Each write is an ``add`` of a name never used before (or a ``rem`` of one
whose ``add`` was acknowledged), so the expected end state is exact: every
acknowledged ``add`` is present with its entry unless its ``rem`` was
acknowledged, no ``add`` answered ``ERROR`` is present, and a change whose
answer never came (the server died first) may have gone either way. After
the last kill the SQLite file is checked with ``PRAGMA integrity_check``
(on a copy, before any restart), then the server is restarted and every name
is asked for. Exit status 0 when nothing was lost, 1 otherwise, 2 when the
server could not be started.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformance.bench.client import Client, ExchangeError
from conformance.harness.process import ServerProcess, ServerStartError, reference_server_command
from protocol import Add, Error, Find, Ok, Remove
from protocol.codec import no_entry

#: Seconds one request may wait for its answer.
TIMEOUT = 5.0
#: Bound on the operations of one writer (the clock usually ends it first).
MAX_OPS = 1_000_000
#: fnd requests per pipelined batch in the check.
BATCH = 256


@dataclass
class Book:
    """What every name must hold at the end, from the answers the writers got."""

    present: dict[str, str] = field(default_factory=dict)  # add acknowledged
    absent: set[str] = field(default_factory=set)  # add ERROR'd, or rem acknowledged
    either: dict[str, str] = field(default_factory=dict)  # answer never came: entry or nothing
    sent = 0
    acked_adds = 0
    acked_rems = 0
    errors = 0
    unanswered = 0
    anomalies: list[str] = field(default_factory=list)


async def writer(
    number: int, host: str, port: int, book: Book, deadline: float, rng: random.Random
) -> None:
    client: Client | None = None
    mine: list[str] = []  # acknowledged adds of this writer, candidates for rem
    for seq in range(MAX_OPS):
        if time.monotonic() >= deadline:
            break
        if client is None:
            try:
                client = await Client.open(host, port, legacy=False, timeout=1.0)
            except ExchangeError:
                await asyncio.sleep(0.02)  # the server is down: try again shortly
                continue
        if mine and rng.random() < 0.15:
            name = mine.pop(rng.randrange(len(mine)))
            entry = book.present[name]
            request: Add | Remove = Remove(name)
        else:
            name = f"soak-w{number}-{seq}"
            entry = f"entry {number}/{seq}: {rng.random():.6f}"
            request = Add(name, entry)
        book.sent += 1
        try:
            answers = await client.exchange([request], TIMEOUT)
        except ExchangeError:
            book.unanswered += 1
            book.present.pop(name, None)
            book.either[name] = entry
            client.abort()
            client = None
            continue
        event = answers[0][0]
        if isinstance(request, Add):
            if isinstance(event, Ok):
                book.acked_adds += 1
                book.present[name] = entry
                mine.append(name)
            else:
                book.errors += 1
                book.absent.add(name)
        elif isinstance(event, Ok):
            book.acked_rems += 1
            del book.present[name]
            book.absent.add(name)
        else:
            book.errors += 1  # the rem did not happen: the name stays as acknowledged
            if isinstance(event, Error) and event == no_entry(name):
                book.anomalies.append(f"rem:{name} said no entry after its add was acknowledged")
    if client is not None:
        client.close()


async def killer(
    server: ServerProcess, kills: int, deadline: float, rng: random.Random, log: list[str]
) -> int:
    loop = asyncio.get_running_loop()
    survived = 0
    for _ in range(kills):
        left = deadline - time.monotonic()
        if left <= 0.5:
            break
        await asyncio.sleep(rng.uniform(0.2, min(2.0, left - 0.3)))
        await loop.run_in_executor(None, server.kill)
        try:
            await loop.run_in_executor(None, server.start)
        except ServerStartError as exc:
            log.append(f"restart failed: {str(exc).splitlines()[0]}")
            return survived
        survived += 1
    return survived


async def check(host: str, port: int, book: Book) -> dict[str, int]:
    names = sorted({*book.present, *book.absent, *book.either})
    counts = {"checked": 0, "lost": 0, "unexpected": 0, "unverified": 0}
    client = await Client.open(host, port, legacy=False, timeout=TIMEOUT)
    try:
        for start in range(0, len(names), BATCH):
            chunk = names[start : start + BATCH]
            answers = await client.exchange([Find(name) for name in chunk], TIMEOUT)
            for name, (event, _) in zip(chunk, answers, strict=False):
                found = event.text if isinstance(event, Ok) else None
                if isinstance(event, Error) and event != no_entry(name):
                    counts["unverified"] += 1
                    continue
                counts["checked"] += 1
                if name in book.either:
                    ok = found in (None, book.either[name])
                elif name in book.present:
                    ok = found == book.present[name]
                else:
                    ok = found is None
                if not ok:
                    what = "lost" if name in book.present else "unexpected"
                    counts[what] += 1
                    if len(book.anomalies) < 10:
                        book.anomalies.append(f"{what}: {name} holds {found!r}")
    finally:
        client.close()
    return counts


def integrity(db: Path, copy_to: Path | None = None) -> str:
    """``PRAGMA integrity_check`` of ``db`` (of a copy with its WAL, if asked)."""
    target = db
    if copy_to is not None:
        for suffix in ("", "-wal"):
            source = Path(f"{db}{suffix}")
            if source.exists():
                shutil.copyfile(source, f"{copy_to}{suffix}")
        target = copy_to
    connection = sqlite3.connect(target, timeout=TIMEOUT)
    try:
        rows = connection.execute("PRAGMA integrity_check").fetchall()
    finally:
        connection.close()
    return "; ".join(str(row[0]) for row in rows)


async def soak(args: argparse.Namespace, server: ServerProcess, db: Path) -> dict[str, Any]:
    rng = random.Random(args.seed)
    book = Book()
    log: list[str] = []
    deadline = time.monotonic() + args.seconds
    writers = [
        writer(n, server.host, server.port, book, deadline, random.Random(rng.random()))
        for n in range(args.writers)
    ]
    results = await asyncio.gather(killer(server, args.kills, deadline, rng, log), *writers)
    survived = results[0]
    assert isinstance(survived, int)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, server.kill)  # the last crash, then the file is judged
    after_kill = integrity(db, copy_to=db.parent / "copy.sqlite3")
    await loop.run_in_executor(None, server.start)
    counts = await check(server.host, server.port, book)
    await loop.run_in_executor(None, server.stop)
    after_stop = integrity(db)
    return {
        "seconds": args.seconds,
        "writers": args.writers,
        "sync": args.sync,
        "seed": args.seed,
        "writes_sent": book.sent,
        "adds_acknowledged": book.acked_adds,
        "rems_acknowledged": book.acked_rems,
        "errors_answered": book.errors,
        "unanswered_at_kill": book.unanswered,
        "kills_asked": args.kills,
        "kills_survived": survived,
        "final_kill": True,
        **counts,
        "integrity_after_kill": after_kill,
        "integrity_after_stop": after_stop,
        "anomalies": book.anomalies + log,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="writing time (default 20)")
    parser.add_argument("--kills", type=int, default=6, help="SIGKILLs during the run")
    parser.add_argument("--writers", type=int, default=8, help="writer connections")
    parser.add_argument("--sync", choices=("normal", "full"), default="normal")
    parser.add_argument("--seed", type=int, default=2007)
    parser.add_argument("--json", help="write the counts here")
    args = parser.parse_args(argv)
    if not 1 <= args.seconds <= 600 or not 0 <= args.kills <= 200 or not 1 <= args.writers <= 256:
        parser.error("--seconds 1..600, --kills 0..200, --writers 1..256")
    with tempfile.TemporaryDirectory(prefix="abp-soak-") as tmpdir:
        db = Path(tmpdir) / "book.sqlite3"
        server = ServerProcess(reference_server_command("--db", str(db), "--sync", args.sync))
        try:
            server.start()
            outcome = asyncio.run(soak(args, server, db))
        except ServerStartError as exc:
            print(f"soak: error: {str(exc).splitlines()[0]}", file=sys.stderr)
            return 2
        finally:
            server.__exit__(None, None, None)  # stop() and close its stderr file
    lost, unexpected = int(outcome["lost"]), int(outcome["unexpected"])
    healthy = outcome["integrity_after_kill"] == "ok" and outcome["integrity_after_stop"] == "ok"
    survived_all = outcome["kills_survived"] == args.kills
    print(
        f"soak (--sync {args.sync}, {args.writers} writers, {args.seconds:g} s, seed {args.seed}): "
        f"{outcome['writes_sent']:,} writes sent, {outcome['adds_acknowledged']:,} adds and "
        f"{outcome['rems_acknowledged']:,} rems acknowledged, {outcome['errors_answered']} "
        f"answered ERROR, {outcome['unanswered_at_kill']} unanswered at a kill; "
        f"kills survived: {outcome['kills_survived']}/{args.kills} (+ a final kill before the "
        f"check); names checked: {outcome['checked']:,}; lost: {lost}; unexpected: {unexpected}; "
        f"integrity_check after kill: {outcome['integrity_after_kill']}, after clean stop: "
        f"{outcome['integrity_after_stop']}"
    )
    for anomaly in outcome["anomalies"]:
        print(f"  {anomaly}")
    if args.json:
        Path(args.json).write_text(json.dumps(outcome, indent=2) + "\n")
    return 0 if lost == 0 and unexpected == 0 and healthy and survived_all else 1


if __name__ == "__main__":
    sys.exit(main())
