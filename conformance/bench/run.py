"""One benchmark run: check it, probe the server, start the load processes,
hold the idle connections and the bystander, then check every name.

The load runs in ``--processes`` forked processes (``load.worker_main``) that
all start at one barrier. This process prints the progress line, reads the
server's CPU and memory from /proc when it knows the server's PID, asks every
name on a fresh connection afterwards, and merges it all into a ``BenchResult``.
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
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO, TypeVar

from conformance.bench.client import Client, ExchangeError
from conformance.bench.load import (
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
from conformance.harness.probe import detect
from conformance.harness.timing import PROCESS_EXIT
from conformance.harness.tls import TlsSettings
from conformance.harness.wire import WireError
from protocol import Find
from protocol.address import format_address
from protocol.program import raise_fd_limit

T = TypeVar("T")
COMMANDS = ("fnd", "add", "rem")
#: File descriptors kept spare beyond the connections.
FD_SPARE = 64
#: Connection attempts (then ``fnd`` requests) in flight at once on idle connections.
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
                    f"bad --mix item {item.strip()!r}: want COMMAND:WEIGHT, COMMAND one of "
                    f"{', '.join(COMMANDS)} (each once), WEIGHT a whole number"
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
        return (out + [max(weights, key=weights.__getitem__)] * length)[:length]


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
    tls: TlsSettings | None = None  # ABP over TLS: every connection starts with a handshake

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
            raise BenchError(
                f"{host} is not loopback ({address}): the bench loads only this machine"
            )


def rss_kb(pid: int | None) -> int | None:
    """The resident set size of ``pid`` in KiB (VmRSS), None if unknown."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines() if pid else []
        return next(int(line.split()[1]) for line in lines if line.startswith("VmRSS:"))
    except (OSError, StopIteration, IndexError, ValueError):
        return None


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU time of ``pid`` so far, None if unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text() if pid else ""
        fields = stat[stat.rfind(")") + 2 :].split()  # the name, field 2, may hold spaces
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
    except (OSError, IndexError, ValueError):
        return None


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
        result.limitations.append(f"--idle {config.idle}: held {idle}, the file limit is {soft}")
    try:
        found = detect(config.host, config.port, timeout=min(config.timeout, 5.0), tls=config.tls)
    except WireError as exc:
        raise BenchError(str(exc)) from None
    if found.framing is None:
        where = format_address(config.host, config.port)
        raise BenchError(f"{where} accepted a connection but did not answer: {found.reason}")
    result.framing = found.framing
    result.notes.append(found.describe())
    legacy = found.framing == "legacy"
    result.pipeline = 1 if legacy else config.pipeline
    if legacy:
        result.limitations += [
            "acknowledgements: the answers are free text, not OK/ERROR; an answered change "
            "counts as acknowledged",
            "latency: a legacy answer ends by silence, which caps the rate of each connection",
            "preload and absence check: skipped (one client at a time; 'not found' is free text)",
        ]
        if config.pipeline > 1:
            result.limitations.append(
                "pipelining: not possible with a legacy server (no terminators): ran "
                f"lockstep, not --pipeline {config.pipeline}"
            )
    quotas: list[int | None] = [None] * config.connections
    if config.requests is not None:
        count, extra = divmod(config.requests, config.connections)
        quotas = [count + (i < extra) for i in range(config.connections)]
    fork = "fork" in multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork") if fork else multiprocessing.get_context("spawn")
    coordinator = _Coordinator(config, result, legacy, context.Barrier(processes + 1))
    coordinator.counts = context.Array("q", processes, lock=False)
    try:
        for w in range(processes):
            ids = list(range(w, config.connections, processes))
            share = Share(w, legacy, result.prefix, ids, [quotas[i] for i in ids])
            reader, writer = context.Pipe(duplex=False)
            args = (config, share, coordinator.barrier, writer, coordinator.counts)
            process = context.Process(target=worker_main, args=args, daemon=True)
            process.start()
            writer.close()  # the child's end: EOF here once the child is gone
            coordinator.workers.append((process, reader))
        asyncio.run(coordinator.run(idle, progress))
    finally:
        for process, reader in coordinator.workers:
            process.join(PROCESS_EXIT)
            if process.is_alive():
                process.kill()  # by its PID (multiprocessing keeps it)
                process.join(PROCESS_EXIT)
            reader.close()
    return result


class _Coordinator:
    def __init__(
        self, config: BenchConfig, result: BenchResult, legacy: bool, barrier: Any
    ) -> None:
        self.config, self.result, self.legacy, self.barrier = config, result, legacy, barrier
        self.counts: Any = None
        self.workers: list[tuple[Any, Any]] = []
        self.probe = KeySpace([f"{result.prefix}-probe"], checking=config.data_check)

    async def open(self, timeout: float | None = None) -> Client:
        config, timeout = self.config, timeout or self.config.timeout
        return await Client.open(
            config.host, config.port, legacy=self.legacy, timeout=timeout, tls=config.tls
        )

    async def run(self, idle: int, progress: TextIO | None) -> None:
        config, result, pid = self.config, self.result, self.config.server_pid
        result.rss_kb["before"] = rss_kb(pid)
        pool: list[Client] = []
        try:
            bystander = await self.store_probe() if idle or config.bystander else None
            if bystander is not None and not config.bystander:
                bystander.client.close()  # it only stored the entry the idle ones look for
                bystander = None
            if idle:
                pool = await self.open_idle(idle)
                result.rss_kb["idle_open"] = rss_kb(pid)
            try:
                self.barrier.wait(config.timeout * 2 + 30.0)  # blocks: the load gets ready
            except threading.BrokenBarrierError:
                result.worker_errors.append("the load processes did not all get ready")
            cpu_before, started = cpu_seconds(pid), time.perf_counter()
            end = started + config.duration
            side = None
            if bystander is not None:
                bystander.start(end)
                side = asyncio.ensure_future(watch([bystander], end, config.timeout, lambda: None))
                result.bystander = bystander
            await self.show_progress(started, progress)
            cpu_after = cpu_seconds(pid)
            if cpu_before is not None and cpu_after is not None:
                result.server_cpu_seconds = cpu_after - cpu_before
                result.server_cpu = (cpu_after - cpu_before) / (time.perf_counter() - started)
            result.rss_kb["after_run"] = rss_kb(pid)
            if side is not None:
                await side
            if pool:
                await self.serve_idle(pool)
                result.rss_kb["idle_served"] = rss_kb(pid)
            outcomes = [self.receive(index) for index in range(len(self.workers))]
            self.merge([outcome for outcome in outcomes if outcome is not None])
            if config.data_check:
                spaces = [space for outcome in outcomes if outcome for space in outcome.spaces]
                result.verification = await self.verify(spaces)
        finally:
            for client in pool:
                client.abort()

    async def store_probe(self) -> Load | None:
        """The bystander's connection, with an entry stored for it and the idle ones to find."""
        try:
            load = Load(await self.open(), self.probe, Mix(), seed=0, depth=1, quota=None)
        except ExchangeError as exc:
            self.result.limitations.append(f"bystander and idle check: {exc}")
            return None
        await load.preload(self.config.timeout)
        if load.done:
            self.result.limitations.append(f"bystander and idle check: {load.tally.errors}")
            return None
        return load

    async def each(self, items: Iterable[T], one: Callable[[T, float], Awaitable[None]]) -> None:
        """``one(item, seconds)`` for every item, ``IDLE_CONCURRENCY`` at a time, all of
        them within twice ``--timeout``."""
        gate, deadline = asyncio.Semaphore(IDLE_CONCURRENCY), time.perf_counter()
        deadline += 2 * self.config.timeout

        async def gated(item: T) -> None:
            async with gate:
                await one(item, max(deadline - time.perf_counter(), 0.01))

        await asyncio.gather(*map(gated, items))

    async def open_idle(self, count: int) -> list[Client]:
        outcome = self.result.idle = IdleOutcome(asked=self.config.idle)
        started, pool = time.perf_counter(), []

        async def one(_: int, seconds: float) -> None:
            try:
                pool.append(await self.open(seconds))
            except ExchangeError as exc:
                outcome.fail(f"connect: {exc.detail}")

        await self.each(range(count), one)
        outcome.opened, outcome.open_seconds = len(pool), time.perf_counter() - started
        return pool

    async def serve_idle(self, pool: list[Client]) -> None:
        """Each held connection asks for the probe name: is it served, and right?"""
        outcome, find = self.result.idle, Find(self.probe.names[0])

        async def one(client: Client, seconds: float) -> None:
            try:
                ((event, _),) = await client.exchange([find], seconds)
            except ExchangeError as exc:
                outcome.fail(f"{exc.kind} (idle connection)")
                return
            finally:
                client.close()
            tally = Tally()
            self.probe.settle(find, 0, event, tally)
            if tally.malformed or tally.wrong or tally.errors:
                outcome.fail(f"wrong answer: {event!r:.60}")
            else:
                outcome.served += 1

        await self.each(pool, one)

    async def show_progress(self, started: float, stream: TextIO | None) -> None:
        """Until every load process has sent its result (bounded): the progress line."""
        tty = stream is not None and stream.isatty()
        shown, limit = started, started + self.config.duration + self.config.timeout * 3 + 10
        while time.perf_counter() < limit and not all(
            reader.poll() or not process.is_alive() for process, reader in self.workers
        ):
            await asyncio.sleep(0.02)
            now = time.perf_counter()
            if stream is not None and now - shown >= (0.5 if tty else 1.0):
                shown, answered = now, sum(self.counts)
                rate = answered / (now - started)
                line = f"bench: {now - started:6.1f}s {answered:>11,} answers {rate:>11,.0f}/s"
                stream.write(f"\r{line}" if tty else f"{line}\n")
                stream.flush()
        if stream is not None and tty:
            stream.write("\n")

    def receive(self, index: int) -> WorkerResult | None:
        process, reader = self.workers[index]
        why = "no result in time"
        try:
            if reader.poll(self.config.timeout + 5.0):
                message = reader.recv()
                if isinstance(message, WorkerResult):
                    return message
                why = str(message)
        except EOFError:
            process.join(PROCESS_EXIT)
            why = f"exited with status {process.exitcode}"
        self.result.worker_errors.append(f"process {index}: {why}")
        return None

    def merge(self, outcomes: list[WorkerResult]) -> None:
        result = self.result
        for outcome in outcomes:
            result.tally.merge(outcome.tally)
            result.histogram.update(outcome.histogram)
            result.connected += outcome.connected
            result.served_in_time += outcome.served_in_time
            result.worker_cpu_seconds += outcome.cpu_seconds
            span = outcome.finished - outcome.started
            result.worker_cpu.append(outcome.cpu_seconds / span if span > 0 else 0.0)
        if outcomes:
            starts, ends = [o.started for o in outcomes], [o.finished for o in outcomes]
            result.elapsed = max(ends) - min(starts)
        if result.served_in_time < result.connected and result.connected > 1:
            result.limitations.append(
                f"concurrency: only {result.served_in_time} of {result.connected} connections "
                "got an answer during the run (does the server serve one client at a time?)"
            )

    async def verify(self, spaces: list[KeySpace]) -> Verification:
        """Ask for every name on a fresh connection; compare with what was acknowledged."""
        checked = Verification(names=sum(len(space.names) for space in spaces))
        todo = [
            (space, index)
            for space in spaces
            for index in range(len(space.names))
            # a legacy "not found" is free text: only names that hold something are asked
            if not self.legacy or space.expected[index] is not None or index in space.uncertain
        ]
        checked.unverified = checked.names - len(todo)
        batch = 1 if self.legacy else VERIFY_BATCH
        deadline = time.perf_counter() + max(30.0, self.config.timeout * 3)
        client = None
        try:
            client = await self.open()
            for start in range(0, len(todo), batch):
                chunk = todo[start : start + batch]
                left = min(max(deadline - time.perf_counter(), 0.01), self.config.timeout)
                answers = await client.exchange([Find(s.names[i]) for s, i in chunk], left)
                for (space, index), (event, _) in zip(chunk, answers, strict=True):
                    checked.check(space, index, event)
        except ExchangeError as exc:
            checked.unverified = (
                checked.names - checked.verified - checked.lost - checked.unexpected
            )
            checked.examples.append(f"check afterwards stopped: {exc}")
        finally:
            if client is not None:
                client.close()
        return checked
