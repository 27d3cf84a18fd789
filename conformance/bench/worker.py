"""One load process: open its connections, preload, wait for the start, run, check.

Several of these run at once (``--processes``) so that the generator is not
the bottleneck; the coordinator starts them, says "go" to all at the same
moment, and merges what they send back. Everything a worker does is bounded
by a deadline and a count; whatever fails is counted, never raised.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from conformance.bench.config import Mix
from conformance.bench.keyspace import FND, KeySpace, Tally, Verification
from conformance.bench.load import Decoder, Encoded, LegacyLoad, LineLoad, Plan
from conformance.bench.stats import Histogram
from conformance.bench.streams import ExchangeError, StreamClient, describe_os_error
from protocol import Find

#: How often a worker publishes progress and looks for stuck requests.
TICK = 0.1
#: How long a worker waits for "go" after it said "ready".
GO_TIMEOUT = 300.0
#: Requests per pipelined batch in the check afterwards (line servers).
VERIFY_BATCH = 256


class _Event(Protocol):
    def wait(self, timeout: float | None = ...) -> bool: ...


class _Queue(Protocol):
    def put(self, obj: Any, block: bool = ..., timeout: float | None = ...) -> None: ...


class _Counters(Protocol):
    def __setitem__(self, index: int, value: int) -> None: ...


@dataclass(frozen=True)
class WorkerSpec:
    index: int
    host: str
    port: int
    legacy: bool
    connection_ids: tuple[int, ...]
    quotas: tuple[int | None, ...]
    duration: float
    pipeline: int
    mix: Mix
    keys: int
    timeout: float
    prefix: str
    data_check: bool

    def names(self, connection_id: int) -> list[str]:
        return [f"{self.prefix}-c{connection_id}k{k}" for k in range(self.keys)]


@dataclass
class WorkerResult:
    index: int
    tally: Tally = field(default_factory=Tally)
    preload: Tally = field(default_factory=Tally)
    histogram: dict[int, int] = field(default_factory=dict)
    verification: Verification | None = None
    connected: int = 0
    served_in_time: int = 0  # connections whose first answer came before the end
    started: float = 0.0  # time.perf_counter(), comparable across processes
    finished: float = 0.0  # the last answer of the timed phase
    cpu_seconds: float = 0.0  # this process's CPU during the timed phase
    fatal: str | None = None


def worker_main(spec: WorkerSpec, go: _Event, queue: _Queue, progress: _Counters) -> None:
    """Process entry point: report the result (or the failure) on ``queue``."""
    try:
        result = asyncio.run(_work(spec, go, queue, progress))
    except Exception as exc:  # a bug or the environment: report it, no traceback
        queue.put(("error", spec.index, f"{type(exc).__name__}: {exc}"))
        return
    queue.put(("result", spec.index, result))


async def _work(spec: WorkerSpec, go: _Event, queue: _Queue, progress: _Counters) -> WorkerResult:
    result = WorkerResult(spec.index)
    spaces = [KeySpace(spec.names(cid), checking=spec.data_check) for cid in spec.connection_ids]
    plans = [Plan(spec.mix, spec.keys, seed=cid * 7919 + 17) for cid in spec.connection_ids]
    runner = (
        _LegacyRunner(spec, spaces, plans, result)
        if spec.legacy
        else _LineRunner(spec, spaces, plans, result)
    )
    await runner.connect()
    if not result.connected:
        result.fatal = "no load connection could be opened: " + ", ".join(
            sorted(result.preload.errors)
        )
        queue.put(("ready", spec.index, None))
        return result
    await runner.preload()
    queue.put(("ready", spec.index, None))
    if not go.wait(GO_TIMEOUT):
        runner.abort()
        result.fatal = "no start signal"
        return result
    gc.collect()
    gc.disable()  # no collector pauses inside the measurement
    try:
        cpu = time.process_time()
        result.started = time.perf_counter()
        end = result.started + spec.duration
        await runner.run(end, progress)
        result.cpu_seconds = time.process_time() - cpu
    finally:
        gc.enable()
    result.histogram = runner.histogram.counts
    result.finished = max((load.last_answer for load in runner.loads()), default=0.0)
    result.finished = max(result.finished, result.started)
    result.served_in_time = sum(
        1 for load in runner.loads() if load.first_answer is not None and load.first_answer < end
    )
    queue.put(("drained", spec.index, None))
    if spec.data_check:
        result.verification = await verify(spec, spaces)
    return result


class _LineRunner:
    def __init__(
        self, spec: WorkerSpec, spaces: list[KeySpace], plans: list[Plan], result: WorkerResult
    ) -> None:
        self.spec = spec
        self.spaces = spaces
        self.plans = plans
        self.result = result
        self.decoder = Decoder()
        self.histogram = Histogram(result.histogram)
        self.conns: list[LineLoad] = []
        self.remaining = 0
        self.all_done: asyncio.Future[None] | None = None

    def loads(self) -> Sequence[LineLoad]:
        return self.conns

    def _done(self, _: LineLoad) -> None:
        self.remaining -= 1
        if self.remaining <= 0 and self.all_done is not None and not self.all_done.done():
            self.all_done.set_result(None)

    async def connect(self) -> None:
        loop = asyncio.get_running_loop()
        self.all_done = loop.create_future()
        spec = self.spec
        for space, plan, quota in zip(self.spaces, self.plans, spec.quotas, strict=True):
            load = LineLoad(
                space,
                plan,
                Encoded(space, spec.mix),
                depth=spec.pipeline,
                quota=quota,
                tally=self.result.preload,
                histogram=self.histogram,
                decoder=self.decoder,
                on_done=self._done,
            )
            self.conns.append(load)

        async def one(load: LineLoad) -> bool:
            try:
                await asyncio.wait_for(
                    loop.create_connection(lambda: load, spec.host, spec.port), spec.timeout
                )
            except asyncio.TimeoutError:
                self.result.preload.error("connect: timeout")
                return False
            except OSError as exc:
                self.result.preload.error(f"connect: {describe_os_error(exc)}")
                return False
            return True

        ok = await asyncio.gather(*(one(load) for load in self.conns))
        self.conns = [load for load, up in zip(self.conns, ok, strict=True) if up]
        self.spaces = [load.space for load in self.conns]
        self.remaining = len(self.conns)
        self.result.connected = len(self.conns)

    async def preload(self) -> None:
        for load in self.conns:
            load.preload()
        deadline = time.perf_counter() + self.spec.timeout
        for _ in range(int(self.spec.timeout / 0.005) + 1):
            if all(not load.inflight or load.done for load in self.conns):
                return
            if time.perf_counter() >= deadline:
                break
            await asyncio.sleep(0.005)
        for load in self.conns:
            if load.inflight:
                load.fail("preload: timeout")

    async def run(self, end: float, progress: _Counters) -> None:
        for load in self.conns:
            if not load.done:
                load.start(end, self.result.tally)
        slot = self.spec.index
        timeout = self.spec.timeout
        hard_end = end + timeout + 2.0
        assert self.all_done is not None
        if self.remaining <= 0:
            return
        for _ in range(int((hard_end - time.perf_counter()) / TICK) + 2):
            done, _pending = await asyncio.wait([self.all_done], timeout=TICK)
            progress[slot] = sum(load.answered for load in self.conns)
            if done:
                return
            now = time.perf_counter()
            for load in self.conns:
                oldest = load.oldest()
                if oldest is not None and now - oldest > timeout:
                    load.fail("timeout")
                elif now >= end and not load.stopping:
                    load.stop()
                if now >= hard_end and not load.done:
                    load.fail("timeout at the end of the run")
        for load in self.conns:
            load.fail("timeout at the end of the run")

    def abort(self) -> None:
        for load in self.conns:
            load.fail("aborted")


class _LegacyRunner:
    def __init__(
        self, spec: WorkerSpec, spaces: list[KeySpace], plans: list[Plan], result: WorkerResult
    ) -> None:
        self.spec = spec
        self.spaces = spaces
        self.plans = plans
        self.result = result
        self.histogram = Histogram(result.histogram)
        self.conns: list[LegacyLoad] = []

    def loads(self) -> Sequence[LegacyLoad]:
        return self.conns

    async def connect(self) -> None:
        spec = self.spec

        async def one(space: KeySpace, plan: Plan, quota: int | None) -> LegacyLoad | None:
            try:
                client = await StreamClient.open(
                    spec.host, spec.port, legacy=True, timeout=spec.timeout
                )
            except ExchangeError as exc:
                self.result.preload.error(f"connect: {exc.detail}")
                return None
            return LegacyLoad(
                client,
                space,
                plan,
                quota=quota,
                timeout=spec.timeout,
                tally=self.result.tally,
                histogram=self.histogram,
            )

        opened = await asyncio.gather(
            *(one(s, p, q) for s, p, q in zip(self.spaces, self.plans, spec.quotas, strict=True))
        )
        self.conns = [load for load in opened if load is not None]
        self.spaces = [load.space for load in self.conns]
        self.result.connected = len(self.conns)

    async def preload(self) -> None:
        """Nothing: a tutorial-style server serves one client at a time."""

    async def run(self, end: float, progress: _Counters) -> None:
        tasks = [asyncio.ensure_future(load.run(end)) for load in self.conns]
        slot = self.spec.index
        hard_end = end + self.spec.timeout * 2 + 2.0
        for _ in range(int((hard_end - time.perf_counter()) / TICK) + 2):
            _done, pending = await asyncio.wait(tasks, timeout=TICK)
            progress[slot] = sum(load.answered for load in self.conns)
            if not pending or time.perf_counter() >= hard_end:
                break
        for task in tasks:
            if not task.done():
                task.cancel()
                self.result.tally.error("timeout at the end of the run")
        await asyncio.gather(*tasks, return_exceptions=True)

    def abort(self) -> None:
        for load in self.conns:
            load.client.abort()


async def verify(spec: WorkerSpec, spaces: list[KeySpace]) -> Verification:
    """Ask for every name on a fresh connection; compare with what was acknowledged."""
    verification = Verification()
    todo = [
        (space, index)
        for space in spaces
        for index in range(len(space.names))
        # a legacy "not found" is free text: only names that hold something are asked
        if not spec.legacy or space.expected[index] is not None or index in space.uncertain
    ]
    verification.names = sum(len(space.names) for space in spaces)
    verification.unverified = verification.names - len(todo)
    if not todo:
        return verification
    try:
        client = await StreamClient.open(
            spec.host, spec.port, legacy=spec.legacy, timeout=spec.timeout
        )
    except ExchangeError as exc:
        verification.unverified += len(todo)
        verification.examples.append(f"check afterwards: cannot connect: {exc.detail}")
        return verification
    batch = 1 if spec.legacy else VERIFY_BATCH
    deadline = time.perf_counter() + max(30.0, spec.timeout * 3)
    try:
        for start in range(0, len(todo), batch):
            chunk = todo[start : start + batch]
            left = deadline - time.perf_counter()
            try:
                answers = await client.exchange(
                    [Find(space.names[index]) for space, index in chunk],
                    min(max(left, 0.0), spec.timeout),
                )
            except ExchangeError as exc:
                verification.unverified += len(todo) - start
                verification.examples.append(f"check afterwards stopped: {exc}")
                return verification
            for (space, index), (event, _at) in zip(chunk, answers, strict=False):
                verification.check(space, index, event)
    finally:
        client.close()
    return verification


__all__ = ["FND", "WorkerResult", "WorkerSpec", "verify", "worker_main"]
