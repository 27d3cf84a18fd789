"""One client connection for the slow paths: probe, legacy load, checks, idle.

asyncio streams around ``protocol.ClientConnection``: requests in, decoded
answers out, with the legacy rule (an answer with no LF ends after a quiet
period, ABP-FRAME-8) and a deadline on every wait. The hot path of a line
server's load lives in ``conformance.bench.load`` instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Sequence

from protocol import (
    ClientConnection,
    ClientEvent,
    ConnectionClosed,
    LocalProtocolError,
    RemoteProtocolError,
    Request,
)
from protocol.codec import encode_request

#: A legacy answer (no LF) is complete after this much silence.
LEGACY_QUIET = 0.05
#: Reads per exchange at most: a bound on the loop, far above what one needs.
MAX_READS = 100_000


class ExchangeError(Exception):
    """An exchange failed; ``kind`` is the short label counted in reports."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind
        self.detail = detail


def describe_os_error(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        if exc.errno:
            return os.strerror(exc.errno)
        if exc.strerror:
            return exc.strerror
    return str(exc) or type(exc).__name__


class StreamClient:
    """One TCP connection speaking ABP/1 (or the tutorial's legacy framing)."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        legacy: bool,
        quiet: float = LEGACY_QUIET,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.legacy = legacy
        self.conn = ClientConnection(legacy=legacy, quiet_period=quiet if legacy else None)
        self.closed_by_peer = False
        #: Answers that ended by silence or end of stream, not by LF (legacy servers).
        self.unterminated = 0
        self._last_data = 0.0

    @classmethod
    async def open(
        cls, host: str, port: int, *, legacy: bool, timeout: float, quiet: float = LEGACY_QUIET
    ) -> StreamClient:
        """Raises ``ExchangeError("connect", why)``."""
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, limit=1 << 20), timeout
            )
        except asyncio.TimeoutError:
            raise ExchangeError("connect", f"no connection within {timeout:g}s") from None
        except OSError as exc:
            raise ExchangeError("connect", describe_os_error(exc)) from None
        return cls(reader, writer, legacy=legacy, quiet=quiet)

    async def exchange(
        self, requests: Sequence[Request], timeout: float, *, terminated: bool = False
    ) -> list[tuple[ClientEvent, float]]:
        """Send ``requests`` at once, return each answer with the time
        (``time.perf_counter()``) its last byte arrived.

        ``terminated`` sends LF-terminated requests even on a legacy
        connection (the framing probe). Raises ``ExchangeError`` with kind
        ``timeout``, ``closed`` or ``malformed``; answers that came before the
        failure are lost with it.
        """
        try:
            data = b"".join(self.conn.send(request) for request in requests)
            if terminated and self.legacy:
                data = b"".join(encode_request(request) for request in requests)
        except LocalProtocolError as exc:
            raise ExchangeError("closed", str(exc)) from None
        try:
            self.writer.write(data)
        except (OSError, RuntimeError) as exc:
            raise ExchangeError("closed", describe_os_error(exc)) from None
        return await self.collect(len(requests), timeout)

    async def collect(self, count: int, timeout: float) -> list[tuple[ClientEvent, float]]:
        """Wait for ``count`` answers (see ``exchange``)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        answers: list[tuple[ClientEvent, float]] = []
        conn = self.conn
        for _ in range(MAX_READS):
            if len(answers) >= count:
                return answers
            now = loop.time()
            legacy_due = conn.deadline()
            wait = deadline - now
            if legacy_due is not None:
                wait = min(wait, legacy_due - now)
            if wait <= 0:
                if legacy_due is not None and legacy_due <= now:
                    self._take(conn.expire(now), answers, self._last_data, ended_by_silence=True)
                    continue
                raise ExchangeError("timeout", f"{count - len(answers)} answer(s) missing")
            try:
                data = await asyncio.wait_for(self.reader.read(65536), wait)
            except asyncio.TimeoutError:
                continue  # the legacy quiet period or the deadline: judged above
            except OSError as exc:
                raise ExchangeError("closed", describe_os_error(exc)) from None
            arrived = time.perf_counter()
            if data:
                self._last_data = arrived
            try:
                events = conn.receive_data(data, loop.time())
            except RemoteProtocolError as exc:
                raise ExchangeError("malformed", str(exc)) from None
            self._take(events, answers, arrived, ended_by_silence=not data)
            if not data:
                self.closed_by_peer = True
                if len(answers) < count:
                    raise ExchangeError(
                        "closed", f"the server closed with {count - len(answers)} answer(s) missing"
                    )
        raise ExchangeError("timeout", "too many reads for one exchange")

    def _take(
        self,
        events: list[ClientEvent],
        answers: list[tuple[ClientEvent, float]],
        at: float,
        *,
        ended_by_silence: bool = False,
    ) -> None:
        for event in events:
            if isinstance(event, ConnectionClosed):
                continue
            if ended_by_silence:
                self.unterminated += 1
            answers.append((event, at))

    def close(self) -> None:
        with contextlib.suppress(OSError, RuntimeError):
            self.writer.close()

    def abort(self) -> None:
        transport = self.writer.transport
        with contextlib.suppress(OSError, RuntimeError):
            transport.abort()


__all__ = ["LEGACY_QUIET", "ExchangeError", "StreamClient", "describe_os_error"]
