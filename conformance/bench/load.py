"""The load: what each connection sends, what the server must then hold, and
one load process (``--processes`` of them run at once).

Every load connection owns its names (no other connection writes them), so
the order of its answers is the order its changes took effect and the
expected state of each name is exact: the entry of the last ``add`` answered
``OK``, or nothing after an ``OK``'d ``rem``. An ``add`` answered ``ERROR``
changes nothing. A change whose answer never came (timeout, connection lost)
leaves the name *uncertain*: either state is accepted afterwards. Successive
writes of a name cycle through ``ENTRIES``, so a lost last write shows as the
previous value while the requests stay few enough to build once.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from conformance.bench.client import Client, ExchangeError
from protocol import Add, Error, Find, LegacyReply, Ok, Remove, Request, Response
from protocol.codec import no_entry

if TYPE_CHECKING:
    from conformance.bench.run import BenchConfig, Mix

#: The entries successive writes of one name cycle through.
ENTRIES = tuple(f"v{n}" for n in range(8))
#: Examples of each kind of failure kept for the report.
MAX_EXAMPLES = 5
#: Kinds of error counted apart; the rest are counted together (error texts vary).
MAX_KINDS = 50
#: How often a load process publishes its count and looks for late answers.
TICK = 0.1
#: How long a load process waits for the start, once its connections are ready.
GO_TIMEOUT = 300.0
COMMAND = {Find: "fnd", Add: "add", Remove: "rem"}


@dataclass
class Tally:
    """Counts of answers and failures; summed across connections and processes."""

    answered: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COMMAND.values(), 0))
    acked_adds: int = 0
    not_found: int = 0  # ``ERROR: No entry for NAME``: a normal answer
    legacy_answers: int = 0  # free text, neither OK nor ERROR (tutorial-style servers)
    errors: dict[str, int] = field(default_factory=dict)  # by kind
    malformed: int = 0
    wrong: int = 0  # well-formed answers that contradict the acknowledged state
    examples: list[str] = field(default_factory=list)

    def error(self, kind: str, count: int = 1) -> None:
        if kind not in self.errors and len(self.errors) >= MAX_KINDS:
            kind = "other kinds"
        self.errors[kind] = self.errors.get(kind, 0) + count

    def bad(self, what: str, example: str) -> None:
        if what == "malformed":
            self.malformed += 1
        else:
            self.wrong += 1
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(f"{what}: {example}")

    def merge(self, other: Tally, prefix: str = "") -> None:
        """Add ``other``'s failures (their kinds prefixed) and, without a prefix, its answers."""
        if not prefix:
            for command, count in other.answered.items():
                self.answered[command] += count
            self.acked_adds += other.acked_adds
            self.not_found += other.not_found
            self.legacy_answers += other.legacy_answers
        for kind, count in other.errors.items():
            self.error(prefix + kind, count)
        self.malformed += other.malformed
        self.wrong += other.wrong
        self.examples.extend(other.examples[: max(MAX_EXAMPLES - len(self.examples), 0)])


class Histogram(Counter[int]):
    """Latencies in microseconds, rounded down to 11 significant bits (under
    0.1 % off): a few thousand buckets however long the run; ``update`` merges."""

    def record(self, seconds: float) -> None:
        us = max(int(seconds * 1_000_000), 0)
        shift = max(us.bit_length() - 11, 0)
        self[(us >> shift) << shift] += 1

    def percentile(self, percent: float) -> float | None:
        """The latency in milliseconds at ``percent`` (nearest rank); None when empty."""
        rank, seen = max(1, -(-self.total() * percent // 100)), 0
        for key in sorted(self):
            seen += self[key]
            if seen >= rank:
                return key / 1000
        return None

    def summary(self) -> dict[str, float | None]:
        """p50, p90, p99, p99.9, max and mean, in milliseconds."""
        out = {f"p{p:g}": self.percentile(p) for p in (50, 90, 99, 99.9)}
        total = self.total()
        out["max"] = max(self) / 1000 if total else None
        out["mean"] = sum(k * n for k, n in self.items()) / total / 1000 if total else None
        return out


class KeySpace:
    """The names one connection owns and what each must hold (plain data: it
    travels from a load process to the check afterwards)."""

    def __init__(self, names: list[str], *, checking: bool = True) -> None:
        self.names = names
        #: False: answers are classified, never compared (a server that stores nothing).
        self.checking = checking
        self.missing = [no_entry(name).text for name in names]
        self.expected: list[str | None] = [None] * len(names)
        self.uncertain: dict[int, set[str | None]] = {}
        self.writes = [0] * len(names)

    def next_entry(self, index: int) -> int:
        """The ``ENTRIES`` index of the next write of name ``index``."""
        self.writes[index] += 1
        return (self.writes[index] - 1) % len(ENTRIES)

    def unknown(self, request: Request, index: int) -> None:
        """A change was sent and its answer never came: it may or may not hold."""
        if not isinstance(request, Find):
            candidates = self.uncertain.setdefault(index, {self.expected[index]})
            candidates.add(request.entry if isinstance(request, Add) else None)

    def accepts(self, index: int, found: str | None) -> bool:
        candidates = self.uncertain.get(index)
        return found == self.expected[index] if candidates is None else found in candidates

    def settle(self, request: Request, index: int, event: Response, tally: Tally) -> None:
        """Account for one answer, in the order the connection got them."""
        command = COMMAND[type(request)]
        tally.answered[command] += 1
        name = self.names[index]
        if command == "fnd":
            self._found(index, event, tally)
        elif isinstance(event, (Ok, LegacyReply)):
            # A tutorial-style server answers free text; it saves before it
            # answers, so an answered change is taken as done.
            tally.legacy_answers += isinstance(event, LegacyReply)
            tally.acked_adds += command == "add"
            self.expected[index] = request.entry if isinstance(request, Add) else None
            self.uncertain.pop(index, None)
        elif isinstance(event, Error) and command == "rem" and event.text == self.missing[index]:
            tally.not_found += 1
            expected = self.expected[index]
            if self.checking and expected is not None and index not in self.uncertain:
                tally.bad("wrong answer", f"rem:{name} said no entry, acknowledged {expected!r}")
            self.expected[index] = None
            self.uncertain.pop(index, None)
        elif isinstance(event, Error):
            tally.error(f"ERROR: {event.text[:60]}")  # the change did not happen
        else:
            tally.bad("malformed", f"{command}:{name} answered {event!r}")

    def read(self, index: int, event: Response) -> tuple[bool, str | None]:
        """(usable, entry) from an answer to ``fnd`` of name ``index``. A legacy
        "not found" is free text: legacy text is usable only where an entry must be."""
        if isinstance(event, Ok) and event.text is not None:
            return True, event.text
        if isinstance(event, Error) and event.text == self.missing[index]:
            return True, None
        legacy_ok = self.expected[index] is not None and index not in self.uncertain
        return isinstance(event, LegacyReply) and legacy_ok, getattr(event, "text", None)

    def _found(self, index: int, event: Response, tally: Tally) -> None:
        usable, found = self.read(index, event)
        name, expected = self.names[index], self.expected[index]
        if isinstance(event, LegacyReply):
            tally.legacy_answers += 1
        elif isinstance(event, Error):
            if not usable:
                tally.error(f"ERROR: {event.text[:60]}")
            tally.not_found += usable
        elif not usable:
            kind = "wrong answer" if isinstance(event, Ok) else "malformed"
            tally.bad(kind, f"fnd:{name} answered {event!r}, not 'OK: ENTRY'")
        if usable and self.checking and not self.accepts(index, found):
            tally.bad("wrong answer", f"fnd:{name} found {found!r}, expected {expected!r}")


@dataclass
class Verification:
    """The check afterwards, on a fresh connection: is every name as acknowledged?"""

    names: int = 0  # names the run used
    verified: int = 0  # answers that match the acknowledged state
    lost: int = 0  # acknowledged entry missing or different
    unexpected: int = 0  # an entry where none may be (ERROR'd add, OK'd rem)
    unverified: int = 0  # no usable answer (timeout, error, legacy "not found")
    examples: list[str] = field(default_factory=list)

    def check(self, space: KeySpace, index: int, event: Response) -> None:
        """One answer to ``fnd`` of name ``index`` after the run."""
        usable, found = space.read(index, event)
        expected = space.expected[index]
        if not usable:
            self.unverified += 1
            return
        if space.accepts(index, found):
            self.verified += 1
            return
        if expected is not None:
            self.lost += 1
        else:
            self.unexpected += 1
        if len(self.examples) < MAX_EXAMPLES:
            what = "lost" if expected is not None else "unexpected"
            held = f"{space.names[index]} holds {found!r}, acknowledged {expected!r}"
            self.examples.append(f"{what}: {held}")


class Load:
    """One connection: keeps ``depth`` requests in flight until ``end`` (or its
    ``quota``), settling every answer in the ``Client``'s callback."""

    def __init__(
        self, client: Client, space: KeySpace, mix: Mix, *, seed: int, depth: int, quota: int | None
    ) -> None:
        self.client, self.space, self.depth, self.quota = client, space, depth, quota
        self.tally, self.histogram = Tally(), Histogram()
        self.on_done: Callable[[], None] = lambda: None
        rng = random.Random(seed)
        self.ops = mix.sequence(100)
        rng.shuffle(self.ops)
        self.picks = [rng.randrange(len(space.names)) for _ in range(997)]  # prime vs 100 ops
        self.finds = [Find(name) for name in space.names]
        self.removes = [Remove(name) for name in space.names]
        self.adds = [[Add(name, entry) for entry in ENTRIES] for name in space.names]
        self.inflight: deque[tuple[float, Request, int]] = deque()
        self.sent = self.answered = 0
        self.end = 0.0
        self.stopping = self.done = False
        self.first_answer: float | None = None
        self.last_answer = 0.0

    async def preload(self, timeout: float) -> None:
        """Store every name once, so that ``fnd`` finds entries; only failures count."""
        space, before = self.space, Tally()
        requests = [self.adds[i][space.next_entry(i)] for i in range(len(space.names))]
        try:
            answers = await self.client.exchange(requests, timeout)
            for index, (request, (event, _)) in enumerate(zip(requests, answers, strict=True)):
                space.settle(request, index, event, before)
        except ExchangeError as exc:
            for index, request in enumerate(requests):
                space.unknown(request, index)
            self._give_up(exc, before)
        self.tally.merge(before, prefix="before the run: ")

    def start(self, end: float) -> None:
        """The clock starts: send, and count every answer from now on."""
        self.end = end
        self.client.on_answers = self._answered
        if self.client.failure is not None:
            self._give_up(self.client.failure)
        elif not self.done:
            self._refill(time.perf_counter())

    def late(self, now: float, timeout: float) -> bool:
        return bool(self.inflight) and now - self.inflight[0][0] > timeout

    def fail(self, why: str) -> None:
        self._give_up(ExchangeError("timeout", why))

    def _answered(self) -> None:
        if self.done:
            return
        answers, inflight, space, tally = self.client.answers, self.inflight, self.space, self.tally
        record = self.histogram.record
        count = 0
        at = 0.0
        while answers and inflight:
            event, at = answers.popleft()
            sent_at, request, index = inflight.popleft()
            record(at - sent_at)
            space.settle(request, index, event, tally)
            count += 1
        if count:
            self.answered += count
            self.last_answer = at
            if self.first_answer is None:
                self.first_answer = at
        if self.client.failure is not None:
            self._give_up(self.client.failure)
        elif not self.stopping:
            self._refill(time.perf_counter())
        elif not inflight:
            self._finish()

    def _refill(self, now: float) -> None:
        if now >= self.end or (self.quota is not None and self.sent >= self.quota):
            self.stopping = True
            if not self.inflight:
                self._finish()
            return
        want = self.depth - len(self.inflight)
        if self.quota is not None:
            want = min(want, self.quota - self.sent)
        if want <= 0:
            return
        batch: list[Request] = []
        for step in range(self.sent, self.sent + want):
            op, index = self.ops[step % 100], self.picks[step % 997]
            if op == "fnd":
                request: Request = self.finds[index]
            elif op == "add":
                request = self.adds[index][self.space.next_entry(index)]
            else:
                request = self.removes[index]
            batch.append(request)
            self.inflight.append((now, request, index))
        self.sent += want
        try:
            self.client.send(batch)
        except ExchangeError as exc:
            self._give_up(exc)

    def _give_up(self, failure: ExchangeError, tally: Tally | None = None) -> None:
        """The connection serves no more: what it had in flight may or may not hold."""
        if self.done:
            return
        tally = tally or self.tally
        if failure.kind == "malformed":
            tally.bad("malformed", failure.detail)
        if self.inflight:
            tally.error(f"{failure.kind} with requests unanswered", len(self.inflight))
            for _, request, index in self.inflight:
                self.space.unknown(request, index)
            self.inflight.clear()
        elif not self.stopping and failure.kind != "malformed":
            tally.error(f"{failure.kind}: {failure.detail[:60]}")
        self._finish(abort=True)

    def _finish(self, *, abort: bool = False) -> None:
        if not self.done:
            self.done = True
            self.client.on_answers = None
            (self.client.abort if abort else self.client.close)()
            self.on_done()


async def watch(
    loads: Sequence[Load], end: float, timeout: float, tick: Callable[[], None]
) -> None:
    """Until every load is done: give up on answers later than ``timeout``, and
    on everything at ``end`` + ``timeout`` + 2 s. ``tick`` runs every ``TICK``."""
    finished = asyncio.Event()

    def one_done() -> None:
        if all(load.done for load in loads):
            finished.set()

    for load in loads:
        load.on_done = one_done
    one_done()
    hard_end = end + timeout + 2.0
    for _ in range(int((hard_end - time.perf_counter()) / TICK) + 2):
        tick()
        now = time.perf_counter()
        for load in loads:
            if now >= hard_end:
                load.fail("no answer by the end of the run")
            elif load.late(now, timeout):
                load.fail(f"no answer within {timeout:g} s")
        if finished.is_set():
            break
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(finished.wait(), TICK)
    for load in loads:
        load.fail("no answer by the end of the run")
    tick()


@dataclass
class Share:
    """One load process's part of the run."""

    index: int
    legacy: bool
    prefix: str
    connection_ids: list[int]
    quotas: list[int | None]


@dataclass
class WorkerResult:
    tally: Tally = field(default_factory=Tally)
    histogram: Histogram = field(default_factory=Histogram)
    spaces: list[KeySpace] = field(default_factory=list)
    connected: int = 0
    served_in_time: int = 0  # connections whose first answer came before the end
    started: float = 0.0  # time.perf_counter(): comparable across processes
    finished: float = 0.0  # the last answer
    cpu_seconds: float = 0.0  # this process's CPU during the timed phase


def worker_main(config: BenchConfig, share: Share, barrier: Any, pipe: Any, counts: Any) -> None:
    """A load process: sends its ``WorkerResult``, or one line saying why not."""
    try:
        pipe.send(asyncio.run(_work(config, share, barrier, counts)))
    except Exception as exc:  # a bug or the environment: reported, no traceback
        barrier.abort()
        pipe.send(f"{type(exc).__name__}: {exc}")


async def _work(config: BenchConfig, share: Share, barrier: Any, counts: Any) -> WorkerResult:
    result = WorkerResult()
    depth = 1 if share.legacy else config.pipeline

    async def connect(cid: int, quota: int | None) -> Load | None:
        names = [f"{share.prefix}-c{cid}k{k}" for k in range(config.keys)]
        space = KeySpace(names, checking=config.data_check)
        result.spaces.append(space)
        try:
            client = await Client.open(
                config.host,
                config.port,
                legacy=share.legacy,
                timeout=config.timeout,
                tls=config.tls,
            )
        except ExchangeError as exc:
            result.tally.error(f"before the run: connect: {exc.detail}")
            return None
        load = Load(client, space, config.mix, seed=cid * 7919 + 17, depth=depth, quota=quota)
        if not share.legacy:  # a tutorial-style server serves one client at a time
            await load.preload(config.timeout)
        return load

    opened = await asyncio.gather(*map(connect, share.connection_ids, share.quotas))
    loads = [load for load in opened if load is not None and not load.done]
    result.connected = len(loads)  # connections that can take part
    try:
        barrier.wait(GO_TIMEOUT)  # blocks the loop: nothing is in flight yet
    except threading.BrokenBarrierError:
        raise RuntimeError("no start signal") from None
    gc.collect()
    gc.disable()  # no collector pauses inside the measurement
    try:
        cpu = time.process_time()
        result.started = time.perf_counter()
        end = result.started + config.duration
        for load in loads:
            load.start(end)

        def tick() -> None:
            counts[share.index] = sum(load.answered for load in loads)

        await watch(loads, end, config.timeout, tick)
        result.cpu_seconds = time.process_time() - cpu
    finally:
        gc.enable()
    for each in filter(None, opened):  # those that failed before the run too
        result.tally.merge(each.tally)
        result.histogram.update(each.histogram)
    result.finished = max([result.started, *(load.last_answer for load in loads)])
    result.served_in_time = sum(
        load.first_answer is not None and load.first_answer < end for load in loads
    )
    return result
