"""One benchmark run: check it, probe the server, start the load processes,
hold the idle connections and the bystander, then check every name.

The load runs in ``--processes`` forked processes (``load.worker_main``) that
all start at one barrier; this process prints the progress line, reads the
server's CPU and memory from /proc when it knows the server's PID, asks every
name on a fresh connection afterwards, and merges it all into a
``BenchResult``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import multiprocessing
import os
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from conformance.bench.client import Client, ExchangeError
from conformance.bench.load import (
    Histogram,
    KeySpace,
    Load,
    Share,
    Tally,
    Verification,
    WorkerResult,
    watch,
    worker_main,
)
from conformance.bench.report import BenchResult, IdleOutcome
from conformance.framing import detect
from conformance.wire import WireError
from protocol import Find
from protocol.address import format_address

COMMANDS = ("fnd", "add", "rem")
#: File descriptors kept spare beyond the connections.
FD_SPARE = 64
#: Silence that ends a legacy answer during the framing probe (one answer: generous).
PROBE_QUIET = 0.3
#: Connection attempts (and then ``fnd`` requests) in flight at once on idle connections.
IDLE_CONCURRENCY = 200
#: ``fnd`` requests per pipelined batch in the check afterwards (line servers).
VERIFY_BATCH = 256


class BenchError(Exception):
    """A bad option value, or a server that cannot be benchmarked (exit status 2)."""


@dataclass(frozen=True)
class Mix:
    """Weights of the three commands; ``fnd:80,add:15,rem:5``."""

    fnd: int = 100
    add: int = 0
    rem: int = 0

    @classmethod
    def parse(cls, text: str) -> Mix:
        weights: dict[str, int] = {}
        for item in text.split(","):
            command, _, weight = item.strip().partition(":")
            if command not in COMMANDS or not weight.strip().isdigit() or command in weights:
                raise BenchError(
                    f"bad --mix item {item.strip()!r}: want COMMAND:WEIGHT, each of "
                    f"{', '.join(COMMANDS)} at most once, WEIGHT a whole number"
                )
            weights[command] = int(weight)
        if sum(weights.values()) <= 0:
            raise BenchError("bad --mix: the weights add up to 0")
        return cls(**{command: weights.get(command, 0) for command in COMMANDS})

    def as_dict(self) -> dict[str, int]:
        return {"fnd": self.fnd, "add": self.add, "rem": self.rem}

    def __str__(self) -> str:
        return ",".join(f"{name}:{weight}" for name, weight in self.as_dict().items() if weight)

    def sequence(self, length: int) -> list[str]:
        """``length`` commands in the mix's proportions (the caller shuffles)."""
        weights = self.as_dict()
        total = sum(weights.values())
        out = [name for name, w in weights.items() for _ in range(round(length * w / total))]
        heaviest = max(weights, key=weights.__getitem__)
        return (out + [heaviest] * length)[:length]


@dataclass(frozen=True)
class BenchConfig:
    """One run. ``host``/``port`` are filled in once the server is known."""

    host: str = "127.0.0.1"
    port: int = 0
    connections: int = 10
    duration: float = 5.0
    requests: int | None = None
    mix: Mix = field(default_factory=Mix)
    pipeline: int = 1
    processes: int = 1
    idle: int = 0
    bystander: bool = False
    keys: int = 16
    timeout: float = 10.0
    data_check: bool = True
    progress: bool = True
    server_pid: int | None = None

    def check(self) -> BenchConfig:
        """Raise ``BenchError`` for values no run can use: every count is bounded."""
        for what, value, low, high in (
            ("--connections", self.connections, 1, 100_000),
            ("--duration", self.duration, 0.01, 3600),
            ("--requests", self.requests or 1, 1, 10**12),
            ("--pipeline", self.pipeline, 1, 1024),
            ("--processes", self.processes, 1, 64),
            ("--idle", self.idle, 0, 100_000),
            ("--keys", self.keys, 1, 100_000),
            ("--timeout", self.timeout, 0.01, 600),
        ):
            if not low <= value <= high:
                raise BenchError(f"{what} must be {low:g}..{high:g}")
        return self


def check_loopback(host: str) -> None:
    """The bench only ever talks to this machine."""
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise BenchError(f"cannot resolve {host!r}: {exc.strerror or exc}") from None
    for info in infos:
        address = str(info[4][0]).split("%", 1)[0]
        if not ipaddress.ip_address(address).is_loopback:
            raise BenchError(f"{host} is not a loopback address ({address}): the bench only "
                             "loads this machine")  # fmt: skip


def rss_kb(pid: int | None) -> int | None:
    """The resident set size of ``pid`` in KiB (VmRSS), None if unknown."""
    try:
        status = Path(f"/proc/{pid}/status").read_text() if pid else ""
    except OSError:
        return None
    fields = [line.split() for line in status.splitlines() if line.startswith("VmRSS:")]
    return int(fields[0][1]) if fields and fields[0][1:2] and fields[0][1].isdigit() else None


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU time of ``pid`` so far, None if unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text() if pid else ""
        fields = stat[stat.rfind(")") + 2 :].split()  # the name, field 2, may hold spaces
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
    except (OSError, IndexError, ValueError):
        return None


def raise_fd_limit() -> int | None:
    """TODO(merge): protocol.program.raise_fd_limit."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else soft


def run_bench(config: BenchConfig, progress: TextIO | None = None) -> BenchResult:
    """One benchmark run against the server at ``config.host:config.port``."""
    config.check()
    check_loopback(config.host)
    result = BenchResult(config, prefix=f"bench{secrets.token_hex(4)}")
    result.processes = processes = min(config.processes, config.connections)
    soft = raise_fd_limit()
    idle = config.idle
    if soft is not None and soft < config.connections + idle + FD_SPARE:
        idle = max(0, soft - config.connections - FD_SPARE)
        result.limitations.append(f"--idle {config.idle}: the file descriptor limit is {soft}; "
                                  f"held {idle} idle connections")  # fmt: skip
    where = format_address(config.host, config.port)
    try:
        found = detect(
            config.host, config.port, timeout=min(config.timeout, 5.0), quiet=PROBE_QUIET
        )
    except WireError as exc:
        raise BenchError(str(exc)) from None
    if found.framing is None:
        raise BenchError(f"{where} accepted a connection but did not answer: {found.reason}")
    result.framing = found.framing
    result.notes.append(found.describe())
    legacy = found.framing == "legacy"
    result.pipeline = 1 if legacy else config.pipeline
    if legacy:
        result.limitations += _legacy_limitations(config)
    quotas: list[int | None] = [None] * config.connections
    if config.requests is not None:
        quotas = [config.requests // config.connections + (i < config.requests % config.connections)
                  for i in range(config.connections)]  # fmt: skip
    context = multiprocessing.get_context(
        "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    )
    barrier = context.Barrier(processes + 1)
    counts = context.Array("q", processes, lock=False)
    workers: list[tuple[Any, Any]] = []
    try:
        for w in range(processes):
            ids = list(range(w, config.connections, processes))
            share = Share(w, legacy, result.prefix, ids, [quotas[i] for i in ids])
            reader, writer = context.Pipe(duplex=False)
            process = context.Process(
                target=worker_main, args=(config, share, barrier, writer, counts), daemon=True
            )
            process.start()
            writer.close()  # the child's end: EOF here when the child is gone
            workers.append((process, reader))
        asyncio.run(_coordinate(config, result, idle, barrier, counts, workers, progress))
    finally:
        for process, reader in workers:
            process.join(2.0)
            if process.is_alive():
                process.kill()  # by its PID (multiprocessing keeps it)
                process.join(2.0)
            reader.close()
    return result


def _legacy_limitations(config: BenchConfig) -> list[str]:
    notes = [
        "acknowledgements: the answers are free text, not OK/ERROR; an answered change "
        "counts as acknowledged",
        "latency: a legacy answer ends by silence, which caps the rate of each connection",
        "preload and absence check: skipped (one client at a time; 'not found' is free text)",
    ]
    if config.pipeline > 1:
        notes.insert(0, "pipelining: not possible with a legacy server (requests carry no "
                        f"terminator); ran lockstep instead of --pipeline {config.pipeline}")  # fmt: skip
    return notes


async def _coordinate(
    config: BenchConfig,
    result: BenchResult,
    idle: int,
    barrier: Any,
    counts: Any,
    workers: list[tuple[Any, Any]],
    progress: TextIO | None,
) -> None:
    pid = config.server_pid
    legacy = result.framing == "legacy"
    result.rss_kb["before"] = rss_kb(pid)
    probe = KeySpace([f"{result.prefix}-probe"], checking=config.data_check)
    pool: list[Client] = []
    bystander: Load | None = None
    try:
        if idle or config.bystander:
            bystander = await _bystander(config, legacy, probe, result)
        if idle:
            pool = await _open_idle(config, legacy, idle, result)
            result.rss_kb["idle_open"] = rss_kb(pid)
        try:
            barrier.wait(config.timeout * 2 + 30.0)  # blocks: the load processes get ready
        except threading.BrokenBarrierError:
            result.worker_errors.append("the load processes did not all get ready")
        cpu_before = cpu_seconds(pid)
        started = time.perf_counter()
        end = started + config.duration
        side = None
        if bystander is not None and config.bystander:
            bystander.start(end)
            side = asyncio.ensure_future(watch([bystander], end, config.timeout, lambda: None))
            result.bystander = bystander
        await _show_progress(workers, counts, started, config, progress)
        drained = time.perf_counter()
        cpu_after = cpu_seconds(pid)
        if cpu_before is not None and cpu_after is not None:
            result.server_cpu_seconds = cpu_after - cpu_before
            result.server_cpu = (cpu_after - cpu_before) / max(drained - started, 1e-9)
        result.rss_kb["after_run"] = rss_kb(pid)
        if side is not None:
            await side
        if pool:
            result.idle.served = await _serve_idle(config, pool, probe, result.idle)
            result.rss_kb["idle_served"] = rss_kb(pid)
        outcomes = [
            _receive(index, *worker, config, result) for index, worker in enumerate(workers)
        ]
        _merge(result, [outcome for outcome in outcomes if outcome is not None])
        if config.data_check:
            spaces = [space for outcome in outcomes if outcome for space in outcome.spaces]
            result.verification = await _verify(config, legacy, spaces)
    finally:
        for client in pool:
            client.abort()


async def _bystander(
    config: BenchConfig, legacy: bool, probe: KeySpace, result: BenchResult
) -> Load | None:
    """Store an entry for the bystander and the idle connections to find."""
    try:
        client = await Client.open(config.host, config.port, legacy=legacy, timeout=config.timeout)
    except ExchangeError as exc:
        result.limitations.append(f"bystander and idle check: {exc}")
        return None
    load = Load(client, probe, Mix(), seed=0, depth=1)
    await load.preload(config.timeout, load.tally)
    if load.done:
        result.limitations.append(f"bystander and idle check: no entry stored: {load.tally.errors}")
        return None
    return load


async def _open_idle(
    config: BenchConfig, legacy: bool, count: int, result: BenchResult
) -> list[Client]:
    outcome = result.idle = IdleOutcome(asked=config.idle)
    started = time.perf_counter()
    gate = asyncio.Semaphore(IDLE_CONCURRENCY)
    pool: list[Client] = []

    async def one() -> None:
        async with gate:
            try:
                pool.append(
                    await Client.open(
                        config.host, config.port, legacy=legacy, timeout=config.timeout
                    )
                )
            except ExchangeError as exc:
                outcome.fail(f"connect: {exc.detail}")

    await asyncio.gather(*(one() for _ in range(count)))
    outcome.opened = len(pool)
    outcome.open_seconds = time.perf_counter() - started
    return pool


async def _serve_idle(
    config: BenchConfig, pool: list[Client], probe: KeySpace, outcome: IdleOutcome
) -> int:
    """Each held connection asks for the probe name: how many answered it right?"""
    gate = asyncio.Semaphore(IDLE_CONCURRENCY)
    served = 0

    async def one(client: Client) -> None:
        nonlocal served
        async with gate:
            try:
                ((event, _),) = await client.exchange([Find(probe.names[0])], config.timeout)
            except ExchangeError as exc:
                outcome.fail(f"{exc.kind} (idle connection)")
                return
            finally:
                client.close()
            tally = Tally()
            probe.settle(Find(probe.names[0]), 0, event, tally)
            if tally.malformed or tally.wrong or tally.errors:
                outcome.fail(f"wrong answer: {event!r:.60}")
            else:
                served += 1

    await asyncio.gather(*map(one, pool))
    return served


async def _show_progress(
    workers: list[tuple[Any, Any]],
    counts: Any,
    started: float,
    config: BenchConfig,
    stream: TextIO | None,
) -> None:
    """Until every load process has sent its result (bounded): the progress line."""
    tty = stream is not None and stream.isatty()
    every, shown = (0.5 if tty else 1.0), started
    limit = started + config.duration + config.timeout * 3 + 10.0
    while time.perf_counter() < limit and not all(
        reader.poll() or not process.is_alive() for process, reader in workers
    ):
        await asyncio.sleep(0.02)
        now = time.perf_counter()
        if stream is not None and now - shown >= every:
            shown = now
            answered = sum(counts)
            line = f"bench: {now - started:6.1f}s {answered:>11,} answers {answered / (now - started):>11,.0f} requests/s"
            stream.write(f"\r{line}" if tty else f"{line}\n")
            stream.flush()
    if stream is not None and tty:
        stream.write("\n")


def _receive(
    index: int, process: Any, reader: Any, config: BenchConfig, result: BenchResult
) -> WorkerResult | None:
    why = "no result in time"
    try:
        if reader.poll(config.timeout + 5.0):
            message = reader.recv()
            if isinstance(message, WorkerResult):
                return message
            why = str(message)
    except EOFError:
        process.join(2.0)
        why = f"exited with status {process.exitcode}"
    result.worker_errors.append(f"process {index}: {why}")
    return None


def _merge(result: BenchResult, outcomes: list[WorkerResult]) -> None:
    histogram = result.histogram
    for outcome in outcomes:
        result.tally.merge(outcome.tally)
        result.tally.merge(outcome.preload, prefix="before the run: ")
        histogram.merge(Histogram(outcome.histogram))
        result.connected += outcome.connected
        result.served_in_time += outcome.served_in_time
        result.worker_cpu_seconds += outcome.cpu_seconds
        span = outcome.finished - outcome.started
        result.worker_cpu.append(outcome.cpu_seconds / span if span > 0 else 0.0)
    if outcomes:
        started = min(outcome.started for outcome in outcomes)
        result.elapsed = max(outcome.finished for outcome in outcomes) - started
    if result.served_in_time < result.connected and result.connected > 1:
        result.limitations.append(
            f"concurrency: only {result.served_in_time} of {result.connected} connections got "
            f"an answer during the run (does the server serve one client at a time?)"
        )


async def _verify(config: BenchConfig, legacy: bool, spaces: list[KeySpace]) -> Verification:
    """Ask for every name on a fresh connection; compare with what was acknowledged."""
    verification = Verification(names=sum(len(space.names) for space in spaces))
    todo = [
        (space, index)
        for space in spaces
        for index in range(len(space.names))
        # a legacy "not found" is free text: only names that hold something are asked
        if not legacy or space.expected[index] is not None or index in space.uncertain
    ]
    verification.unverified = verification.names - len(todo)
    if not todo:
        return verification
    batch = 1 if legacy else VERIFY_BATCH
    deadline = time.perf_counter() + max(30.0, config.timeout * 3)
    try:
        client = await Client.open(config.host, config.port, legacy=legacy, timeout=config.timeout)
    except ExchangeError as exc:
        verification.unverified += len(todo)
        verification.examples.append(f"check afterwards: {exc}")
        return verification
    try:
        for start in range(0, len(todo), batch):
            chunk = todo[start : start + batch]
            left = min(max(deadline - time.perf_counter(), 0.01), config.timeout)
            try:
                answers = await client.exchange([Find(s.names[i]) for s, i in chunk], left)
            except ExchangeError as exc:
                verification.unverified += len(todo) - start
                verification.examples.append(f"check afterwards stopped: {exc}")
                break
            for (space, index), (event, _) in zip(chunk, answers, strict=True):
                verification.check(space, index, event)
    finally:
        client.close()
    return verification
