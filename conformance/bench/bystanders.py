"""Clients the coordinator holds itself: idle connections and the bystander.

``--idle N`` opens N connections that send nothing while the load runs, then
asks each for one ``fnd``: a server must keep serving all of them
(ABP-CONN-4, ABP-CONN-5). ``--bystander`` is one extra lockstep client doing
``fnd`` while the load runs, its latency kept apart: what another client
feels while the load (a flood of writes, say) goes on.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from conformance.bench.keyspace import FND, KeySpace, Tally
from conformance.bench.load import MAX_REQUESTS
from conformance.bench.stats import Histogram
from conformance.bench.streams import ExchangeError, StreamClient
from protocol import Add, Error, Find, Ok, ServerBusy

#: Connection attempts in flight at once while opening idle connections.
CONNECT_CONCURRENCY = 200
#: fnd requests in flight at once when the idle connections are served.
SERVE_CONCURRENCY = 1000
#: The entry the coordinator stores for idle and bystander clients to find.
PROBE_ENTRY = "bench probe entry"


@dataclass
class IdleOutcome:
    asked: int = 0  # idle connections the bench tried to hold
    opened: int = 0
    served: int = 0  # answered the fnd afterwards, correctly
    failures: dict[str, int] = field(default_factory=dict)
    open_seconds: float = 0.0

    def fail(self, kind: str) -> None:
        self.failures[kind] = self.failures.get(kind, 0) + 1


class IdlePool:
    def __init__(self, host: str, port: int, *, legacy: bool, timeout: float) -> None:
        self.host = host
        self.port = port
        self.legacy = legacy
        self.timeout = timeout
        self.clients: list[StreamClient] = []
        self.outcome = IdleOutcome()

    async def open(self, count: int) -> None:
        self.outcome.asked = count
        started = time.perf_counter()
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

        async def one() -> None:
            async with gate:
                try:
                    client = await StreamClient.open(
                        self.host, self.port, legacy=self.legacy, timeout=self.timeout
                    )
                except ExchangeError as exc:
                    self.outcome.fail(f"connect: {exc.detail}")
                    return
                self.clients.append(client)

        await asyncio.gather(*(one() for _ in range(count)))
        self.outcome.opened = len(self.clients)
        self.outcome.open_seconds = time.perf_counter() - started

    async def serve(self, name: str, expected: str | None) -> IdleOutcome:
        """Each held connection asks for ``name``; count the right answers
        (``expected`` None: any ``OK`` or ``ERROR`` line but a refusal)."""
        gate = asyncio.Semaphore(SERVE_CONCURRENCY)
        outcome = self.outcome

        async def one(client: StreamClient) -> None:
            async with gate:
                try:
                    answers = await client.exchange([Find(name)], self.timeout)
                except ExchangeError as exc:
                    outcome.fail(f"{exc.kind} (idle connection)")
                    return
                finally:
                    client.close()
                event, _ = answers[0]
                if isinstance(event, ServerBusy):
                    outcome.fail("refused: ERROR: Server busy")
                elif (isinstance(event, Ok) and event.text == expected) or (
                    expected is None and isinstance(event, (Ok, Error))
                ):
                    outcome.served += 1
                else:
                    outcome.fail(f"wrong answer: {event!r:.60}")

        await asyncio.gather(*(one(client) for client in self.clients))
        self.clients.clear()
        return outcome

    def close(self) -> None:
        for client in self.clients:
            client.abort()
        self.clients.clear()


async def store_probe_entry(
    host: str, port: int, name: str, *, legacy: bool, timeout: float
) -> str | None:
    """Store ``PROBE_ENTRY`` under ``name``; the reason on failure."""
    try:
        client = await StreamClient.open(host, port, legacy=legacy, timeout=timeout)
    except ExchangeError as exc:
        return f"cannot connect: {exc.detail}"
    try:
        answers = await client.exchange([Add(name, PROBE_ENTRY)], timeout)
    except ExchangeError as exc:
        return str(exc)
    finally:
        client.close()
    event, _ = answers[0]
    return None if not isinstance(event, Error) else f"add answered {event!r}"


class Bystander:
    """One more client doing lockstep ``fnd`` of one name while the load runs."""

    def __init__(self, client: StreamClient, name: str, timeout: float) -> None:
        self.client = client
        self.space = KeySpace([name])
        self.space.expected[0] = PROBE_ENTRY
        self.timeout = timeout
        self.tally = Tally()
        self.histogram = Histogram()

    async def run(self, end: float) -> None:
        request = [Find(self.space.names[0])]
        try:
            for _ in range(MAX_REQUESTS):
                sent = time.perf_counter()
                if sent >= end:
                    break
                try:
                    answers = await self.client.exchange(request, self.timeout)
                except ExchangeError as exc:
                    if exc.kind == "malformed":
                        self.tally.bad("malformed", exc.detail)
                    else:
                        self.tally.error(exc.kind)
                    return
                event, at = answers[0]
                self.histogram.record(at - sent)
                self.space.settle(FND, 0, None, event, self.tally)
        finally:
            self.client.close()


__all__ = ["PROBE_ENTRY", "Bystander", "IdleOutcome", "IdlePool", "store_probe_entry"]
