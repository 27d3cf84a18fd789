"""The hot path: one load connection, as an ``asyncio.Protocol``.

A line server's answers are split with the protocol package's own line reader
and decoded by ``protocol.decode_response``, memoised per distinct line (a
run sees a few hundred distinct answers), so that every answer is checked and
the generator still costs a few microseconds per request. Requests are
encoded by ``protocol.encode_request`` once, before the clock starts.

Legacy (tutorial-style) servers take one unterminated request at a time and
answer free text; they are driven by ``legacy_load`` through
``conformance.bench.streams``, where speed does not matter.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Callable

from conformance.bench.config import Mix
from conformance.bench.keyspace import ADD, ENTRIES, FND, OP_NAMES, REM, KeySpace, Tally
from conformance.bench.stats import Histogram
from conformance.bench.streams import ExchangeError, StreamClient
from protocol import (
    MAX_RESPONSE_LINE,
    Add,
    ClientEvent,
    Find,
    RemoteProtocolError,
    Remove,
    Request,
    ServerBusy,
)
from protocol.codec import LineFrame, LineReader, decode_response, encode_request

#: Distinct answer lines remembered before the memo is cleared.
MEMO_LIMIT = 100_000
#: Requests one lockstep loop sends at most (its clock usually ends it first).
MAX_REQUESTS = 100_000_000

_InFlight = tuple[float, int, int, "str | None"]  # sent at, op, name index, entry


class Decoder:
    """``decode_response`` memoised; a malformed line gives None and the reason."""

    def __init__(self) -> None:
        self._memo: dict[bytes, ClientEvent] = {}
        self.last_error = ""

    def __call__(self, line: bytes) -> ClientEvent | None:
        event = self._memo.get(line)
        if event is not None:
            return event
        try:
            event = decode_response(line)
        except RemoteProtocolError as exc:
            self.last_error = str(exc)
            return None
        if len(self._memo) >= MEMO_LIMIT:
            self._memo.clear()
        self._memo[line] = event
        return event


class Plan:
    """What a connection sends: commands in the mix's proportions over its names."""

    def __init__(self, mix: Mix, keys: int, seed: int) -> None:
        rng = random.Random(seed)
        ops = [{"fnd": FND, "add": ADD, "rem": REM}[name] for name in mix.sequence(100)]
        rng.shuffle(ops)
        self.ops = ops
        self.picks = [rng.randrange(keys) for _ in range(997)]  # 997: prime, vs 100 ops
        self.step = 0

    def next(self, space: KeySpace) -> tuple[int, int, int]:
        """(op, name index, entry index or -1)."""
        step = self.step
        self.step = step + 1
        op = self.ops[step % 100]
        index = self.picks[step % 997]
        return op, index, space.next_entry(index) if op == ADD else -1

    @staticmethod
    def request(op: int, space: KeySpace, index: int, entry: int) -> Request:
        name = space.names[index]
        if op == ADD:
            return Add(name, ENTRIES[entry])
        return Find(name) if op == FND else Remove(name)


class Encoded:
    """Every request a connection can send, encoded once."""

    def __init__(self, space: KeySpace, mix: Mix) -> None:
        names = space.names
        self.fnd = [encode_request(Find(name)) for name in names]
        self.rem = [encode_request(Remove(name)) for name in names] if mix.rem else []
        self.add = (
            [[encode_request(Add(name, entry)) for entry in ENTRIES] for name in names]
            if mix.add
            else []
        )
        self.preload = [encode_request(Add(name, ENTRIES[0])) for name in names]


class LineLoad(asyncio.Protocol):
    """One connection to a line server: keeps ``depth`` requests in flight."""

    def __init__(
        self,
        space: KeySpace,
        plan: Plan,
        encoded: Encoded,
        *,
        depth: int,
        quota: int | None,
        tally: Tally,
        histogram: Histogram,
        decoder: Decoder,
        on_done: Callable[[LineLoad], None],
    ) -> None:
        self.space = space
        self.plan = plan
        self.encoded = encoded
        self.depth = depth
        self.quota = quota
        self.tally = tally
        self.histogram = histogram
        self.decode = decoder
        self.on_done = on_done
        self.reader = LineReader(MAX_RESPONSE_LINE)
        self.inflight: deque[_InFlight] = deque()
        self.transport: asyncio.Transport | None = None
        self.sent = 0
        self.answered = 0
        self.counting = False
        self.stopping = False
        self.end = 0.0
        self.first_answer: float | None = None
        self.last_answer = 0.0
        self.done = False

    # ------------------------------------------------------------ control
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def preload(self) -> None:
        """Store every name once (uncounted), so that ``fnd`` finds entries."""
        space = self.space
        now = time.perf_counter()
        for index in range(len(space.names)):
            space.writes[index] = 1
            self.inflight.append((now, ADD, index, ENTRIES[0]))
        self._write(b"".join(self.encoded.preload))

    def start(self, end: float, tally: Tally) -> None:
        """The clock starts: count from now on, into ``tally``."""
        self.tally = tally
        self.counting = True
        self.end = end
        self._refill(time.perf_counter())

    def stop(self) -> None:
        """Send no more; close once every answer is in."""
        self.stopping = True
        if not self.inflight:
            self._close()

    def fail(self, kind: str) -> None:
        """Give up on this connection: its unanswered requests count as ``kind``."""
        if self.done:
            return
        self._forget_inflight(kind)
        self.stopping = True
        if self.transport is not None:
            self.transport.abort()
        self._finish()

    def oldest(self) -> float | None:
        return self.inflight[0][0] if self.inflight else None

    # -------------------------------------------------------------- input
    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        inflight = self.inflight
        space = self.space
        tally = self.tally
        record = self.histogram.record if self.counting else None
        count = 0
        for frame in self.reader.feed(data, now):
            if not inflight:
                self._unsolicited(frame)
                continue
            sent_at, op, index, value = inflight.popleft()
            count += 1
            if type(frame) is not LineFrame:
                tally.bad("malformed", f"{OP_NAMES[op]} answered an over-long line")
                space.unknown(op, index, value)
                continue
            event = self.decode(frame.data)
            if event is None:
                tally.bad("malformed", self.decode.last_error)
                space.unknown(op, index, value)
                continue
            if record is not None:
                record(now - sent_at)
            space.settle(op, index, value, event, tally)
        if count and self.counting:
            self.answered += count
            self.last_answer = now
            if self.first_answer is None:
                self.first_answer = now
        if self.stopping:
            if not inflight:
                self._close()
        elif self.counting:
            self._refill(now)

    def _unsolicited(self, frame: object) -> None:
        event = self.decode(frame.data) if isinstance(frame, LineFrame) else None
        if isinstance(event, ServerBusy):
            self.tally.error("refused: ERROR: Server busy")
        else:
            self.tally.bad("malformed", f"an answer to no request: {frame!r:.80}")

    def eof_received(self) -> bool:
        for frame in self.reader.feed_eof():
            if self.inflight:
                _, op, index, value = self.inflight.popleft()
                self.space.unknown(op, index, value)
            self.tally.bad("malformed", f"an answer with no LF at end of stream: {frame!r:.80}")
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self.inflight:
            kind = "connection reset" if exc is not None else "closed by server"
            self._forget_inflight(f"{kind} with requests unanswered")
        elif not self.stopping:
            self.tally.error("closed by server while idle")
        self._finish()

    # ------------------------------------------------------------- output
    def _refill(self, now: float) -> None:
        inflight = self.inflight
        want = self.depth - len(inflight)
        if want <= 0:
            return
        if now >= self.end or (self.quota is not None and self.sent >= self.quota):
            self.stop()
            return
        if self.quota is not None:
            want = min(want, self.quota - self.sent)
        plan_next = self.plan.next
        space = self.space
        encoded = self.encoded
        out: list[bytes] = []
        for _ in range(want):
            op, index, entry = plan_next(space)
            if op == FND:
                out.append(encoded.fnd[index])
                inflight.append((now, FND, index, None))
            elif op == ADD:
                out.append(encoded.add[index][entry])
                inflight.append((now, ADD, index, ENTRIES[entry]))
            else:
                out.append(encoded.rem[index])
                inflight.append((now, REM, index, None))
        self.sent += want
        self._write(out[0] if want == 1 else b"".join(out))

    def _write(self, data: bytes) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        transport.write(data)

    def _forget_inflight(self, kind: str) -> None:
        self.tally.error(kind, len(self.inflight))
        for _, op, index, value in self.inflight:
            self.space.unknown(op, index, value)
        self.inflight.clear()

    def _close(self) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.close()

    def _finish(self) -> None:
        if not self.done:
            self.done = True
            self.on_done(self)


class LegacyLoad:
    """One connection to a legacy server: lockstep, unterminated requests."""

    def __init__(
        self,
        client: StreamClient,
        space: KeySpace,
        plan: Plan,
        *,
        quota: int | None,
        timeout: float,
        tally: Tally,
        histogram: Histogram,
    ) -> None:
        self.client = client
        self.space = space
        self.plan = plan
        self.quota = quota
        self.timeout = timeout
        self.tally = tally
        self.histogram = histogram
        self.answered = 0
        self.first_answer: float | None = None
        self.last_answer = 0.0

    async def run(self, end: float) -> None:
        space = self.space
        limit = MAX_REQUESTS if self.quota is None else min(self.quota, MAX_REQUESTS)
        try:
            for _ in range(limit):
                if time.perf_counter() >= end:
                    break
                op, index, entry = self.plan.next(space)
                value = ENTRIES[entry] if op == ADD else None
                sent_at = time.perf_counter()
                try:
                    answers = await self.client.exchange(
                        [Plan.request(op, space, index, entry)], self.timeout
                    )
                except ExchangeError as exc:
                    space.unknown(op, index, value)
                    if exc.kind == "malformed":
                        self.tally.bad("malformed", exc.detail)
                    else:
                        self.tally.error(exc.kind)
                    return
                event, at = answers[0]
                self.histogram.record(at - sent_at)
                space.settle(op, index, value, event, self.tally)
                self.answered += 1
                self.last_answer = at
                if self.first_answer is None:
                    self.first_answer = at
        finally:
            self.client.close()

    def oldest(self) -> float | None:
        return None  # every exchange carries its own deadline


__all__ = ["Decoder", "Encoded", "LegacyLoad", "LineLoad", "Plan"]
