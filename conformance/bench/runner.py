"""The coordinator: probe the server, start the load processes, merge what they saw.

The load runs in ``--processes`` forked workers (``conformance.bench.worker``)
that all start on one "go"; this process prints the progress line, holds the
idle connections and the bystander, reads the server's CPU and memory from
/proc when it knows the server's PID, and merges the workers' counts and
latency histograms into one ``BenchResult``.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import queue as queue_module
import secrets
import time
from collections.abc import Container
from multiprocessing.context import ForkContext, SpawnContext
from typing import Any, TextIO

from conformance.bench.bystanders import (
    PROBE_ENTRY,
    Bystander,
    IdlePool,
    store_probe_entry,
)
from conformance.bench.config import BenchConfig
from conformance.bench.keyspace import Verification
from conformance.bench.probe import Unreachable, check_loopback, detect_framing
from conformance.bench.result import BenchResult
from conformance.bench.stats import Histogram
from conformance.bench.streams import ExchangeError, StreamClient
from conformance.bench.sysinfo import cpu_seconds, raise_fd_limit, rss_kb
from conformance.bench.worker import WorkerResult, WorkerSpec, worker_main

#: File descriptors kept spare beyond the connections.
FD_SPARE = 64
#: How often the progress line is refreshed.
PROGRESS_EVERY = 0.5


class BenchError(Exception):
    """The run could not be made (exit status 2); the message is one line."""


def split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def run_bench(config: BenchConfig, progress: TextIO | None = None) -> BenchResult:
    """One benchmark run against the server at ``config.host:config.port``."""
    config.check()
    try:
        check_loopback(config.host)
    except Unreachable as exc:
        raise BenchError(str(exc)) from None
    result = BenchResult(config, prefix=f"bench{secrets.token_hex(4)}")
    processes = min(config.processes, config.connections)
    result.processes = processes
    wanted_fds = config.connections + config.idle + FD_SPARE
    soft, hard = raise_fd_limit(wanted_fds)
    idle = config.idle
    if 0 <= soft < wanted_fds:
        idle = max(0, soft - config.connections - FD_SPARE)
        result.limitations.append(
            f"--idle {config.idle}: needs about {wanted_fds} file descriptors but the limit "
            f"is {soft} (hard {hard}); held {idle} idle connections (raise `ulimit -n`)"
        )
    try:
        framing, notes = detect_framing(
            config.host, config.port, config.framing, min(config.timeout, 5.0)
        )
    except Unreachable as exc:
        raise BenchError(str(exc)) from None
    result.framing = framing
    result.notes.extend(notes)
    legacy = framing == "legacy"
    result.pipeline = config.pipeline
    if legacy:
        _legacy_limitations(config, result)
    ids = list(range(config.connections))
    quotas: list[int | None] = (
        list(split(config.requests, config.connections))
        if config.requests is not None
        else [None] * config.connections
    )
    specs = [
        WorkerSpec(
            index=w,
            host=config.host,
            port=config.port,
            legacy=legacy,
            connection_ids=tuple(ids[w::processes]),
            quotas=tuple(quotas[w::processes]),
            duration=config.duration,
            pipeline=result.pipeline,
            mix=config.mix,
            keys=config.keys,
            timeout=config.timeout,
            prefix=result.prefix,
            data_check=config.data_check,
        )
        for w in range(processes)
    ]
    context: ForkContext | SpawnContext = (
        multiprocessing.get_context("fork")
        if "fork" in multiprocessing.get_all_start_methods()
        else multiprocessing.get_context("spawn")
    )
    go = context.Event()
    messages: Any = context.Queue()
    counters: Any = context.Array("q", processes, lock=False)
    workers = [
        context.Process(target=worker_main, args=(spec, go, messages, counters), daemon=True)
        for spec in specs
    ]
    for worker in workers:
        worker.start()
    coordinator = _Coordinator(
        config=config,
        result=result,
        idle=idle,
        workers=workers,
        go=go,
        messages=messages,
        counters=counters,
        progress=progress,
    )
    try:
        asyncio.run(coordinator.run())
        result.worker_errors.extend(coordinator.failures())
        outcome = [coordinator.results[i] for i in sorted(coordinator.results)]
    finally:
        for worker in workers:
            worker.join(2.0)
            if worker.is_alive():
                worker.kill()  # by its PID (multiprocessing keeps it)
                worker.join(2.0)
        messages.close()
    _merge(result, outcome)
    return result


def _legacy_limitations(config: BenchConfig, result: BenchResult) -> None:
    notes = result.limitations
    if config.pipeline > 1:
        notes.append(
            f"pipelining: not possible with a legacy server (requests carry no terminator); "
            f"ran lockstep instead of --pipeline {config.pipeline}"
        )
        result.pipeline = 1
    notes.append(
        "acknowledgements: the answers are free text, not OK/ERROR; an answered add counts "
        "as acknowledged"
    )
    notes.append(
        "latency: a legacy answer ends by silence; each request waits that quiet period "
        "after its answer, which caps the rate per connection"
    )
    notes.append("preload: skipped (a legacy server serves one client at a time)")
    if config.data_check:
        notes.append(
            "data check: a legacy 'not found' is free text, so absent names are not checked"
        )


class _Coordinator:
    def __init__(
        self,
        *,
        config: BenchConfig,
        result: BenchResult,
        idle: int,
        workers: list[Any],
        go: Any,
        messages: Any,
        counters: Any,
        progress: TextIO | None,
    ) -> None:
        self.config = config
        self.result = result
        self.idle = idle
        self.workers = workers
        self.go = go
        self.messages = messages
        self.counters = counters
        self.progress = progress
        self.ready: set[int] = set()
        self.drained: set[int] = set()
        self.results: dict[int, WorkerResult] = {}
        self.errors: dict[int, str] = {}

    def _poll(self) -> None:
        for _ in range(10_000):
            try:
                kind, index, payload = self.messages.get_nowait()
            except queue_module.Empty:
                break
            if kind == "ready":
                self.ready.add(index)
            elif kind == "drained":
                self.drained.add(index)
            elif kind == "result":
                self.results[index] = payload
                self.ready.add(index)
                self.drained.add(index)
            else:
                self.errors[index] = str(payload)

    def _finished(self, stage: Container[int]) -> bool:
        return all(
            i in stage or i in self.errors or worker.exitcode is not None
            for i, worker in enumerate(self.workers)
        )

    def failures(self) -> list[str]:
        """Workers that sent no result, and why."""
        self._poll()
        out = []
        for index, worker in enumerate(self.workers):
            if index in self.results:
                continue
            why = self.errors.get(index)
            if why is None:
                code = worker.exitcode
                why = "no result in time" if code is None else f"exited with status {code}"
            out.append(f"process {index}: {why}")
        return out

    async def _wait(self, stage: Container[int], seconds: float, tick: float = 0.02) -> bool:
        deadline = time.perf_counter() + seconds
        for _ in range(int(seconds / tick) + 2):
            self._poll()
            if self._finished(stage):
                return True
            if time.perf_counter() >= deadline:
                return False
            await asyncio.sleep(tick)
        return False

    async def run(self) -> None:
        config, result = self.config, self.result
        pid = config.server_pid
        legacy = result.framing == "legacy"
        result.rss_kb["before"] = rss_kb(pid)
        pool: IdlePool | None = None
        bystander: Bystander | None = None
        probe_name = f"{result.prefix}-probe"
        try:
            if self.idle or config.bystander:
                problem = await store_probe_entry(
                    config.host, config.port, probe_name, legacy=legacy, timeout=config.timeout
                )
                if problem is not None:
                    result.limitations.append(f"idle/bystander probe entry not stored: {problem}")
            if self.idle:
                pool = IdlePool(config.host, config.port, legacy=legacy, timeout=config.timeout)
                await pool.open(self.idle)
                result.rss_kb["idle_open"] = rss_kb(pid)
            if config.bystander:
                try:
                    client = await StreamClient.open(
                        config.host, config.port, legacy=legacy, timeout=config.timeout
                    )
                    bystander = Bystander(client, probe_name, config.timeout)
                except ExchangeError as exc:
                    result.limitations.append(f"bystander: cannot connect: {exc.detail}")
            await self._wait(self.ready, config.timeout * 2 + 30.0)
            cpu_before = cpu_seconds(pid)
            self.go.set()
            started = time.perf_counter()
            end = started + config.duration
            side = asyncio.ensure_future(bystander.run(end)) if bystander is not None else None
            await self._show_progress(started, config.duration + config.timeout * 3 + 10.0)
            drained_at = time.perf_counter()
            cpu_after = cpu_seconds(pid)
            if cpu_before is not None and cpu_after is not None:
                result.server_cpu_seconds = cpu_after - cpu_before
                result.server_cpu = (cpu_after - cpu_before) / max(drained_at - started, 1e-9)
            result.rss_kb["after_run"] = rss_kb(pid)
            if side is not None:
                await asyncio.wait_for(side, config.timeout + 5.0)
                result.bystander = bystander
            if pool is not None:
                expected = PROBE_ENTRY if config.data_check else None
                result.idle = await pool.serve(probe_name, expected)
                result.rss_kb["idle_served"] = rss_kb(pid)
            await self._wait(self.results, max(60.0, config.timeout * 4))
        finally:
            if pool is not None:
                pool.close()

    async def _show_progress(self, started: float, limit: float) -> None:
        stream = self.progress
        tty = stream is not None and stream.isatty()
        every = PROGRESS_EVERY if tty else 1.0
        shown = started
        for _ in range(int(limit / 0.02) + 2):
            if await self._wait(self.drained, 0.02):
                break
            now = time.perf_counter()
            if now - started >= limit:
                break
            if stream is not None and now - shown >= every:
                shown = now
                answered = sum(self.counters)
                line = (
                    f"bench: {now - started:6.1f}s {answered:>11,} answers "
                    f"{answered / (now - started):>11,.0f} requests/s"
                )
                stream.write(f"\r{line}" if tty else f"{line}\n")
                stream.flush()
        if stream is not None and tty:
            stream.write("\n")
            stream.flush()


def _merge(result: BenchResult, outcome: list[WorkerResult]) -> None:
    starts: list[float] = []
    ends: list[float] = []
    for worker in outcome:
        result.tally.merge(worker.tally)
        result.preload.merge(worker.preload)
        result.histogram.merge(Histogram(worker.histogram))
        if worker.verification is not None:
            if result.verification is None:
                result.verification = Verification()
            result.verification.merge(worker.verification)
        result.connected += worker.connected
        result.served_in_time += worker.served_in_time
        if worker.fatal:
            result.worker_errors.append(f"process {worker.index}: {worker.fatal}")
        result.worker_cpu_seconds += worker.cpu_seconds
        if worker.started:
            starts.append(worker.started)
            ends.append(worker.finished)
            span = worker.finished - worker.started
            if span > 0:
                result.worker_cpu.append(worker.cpu_seconds / span)
    if starts:
        result.elapsed = max(ends) - min(starts)
    if result.config.data_check and result.verification is None:
        result.verification = Verification()
    if result.served_in_time < result.connected and result.connected > 1:
        result.limitations.append(
            f"concurrency: only {result.served_in_time} of {result.connected} connections got "
            f"an answer during the run (does the server serve one client at a time?)"
        )


__all__ = ["BenchError", "run_bench", "split"]
