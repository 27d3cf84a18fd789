"""The bench's one client connection: asyncio around ``protocol.ClientConnection``.

Every request goes out through ``ClientConnection.send``; every answer is
framed and decoded by ``ClientConnection.receive_data`` (a legacy answer, with
no LF, ends after the quiet period: ``expire`` runs on a ``loop.call_at``
timer, ABP-FRAME-8). Each answer is kept with the time its last byte arrived
(``time.perf_counter()``). The load reads answers in the ``on_answers``
callback, with no task switch per answer; everything else awaits
``exchange``, which is bounded by its timeout. ``answers`` holds at most one
answer per request sent: a busy refusal ends the connection (the server
closes next, ABP-CONN-8), any other answer to no request is a protocol error.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
import time
from collections import deque
from collections.abc import Callable, Sequence

from conformance.harness.tls import TlsSettings, describe
from protocol import (
    ClientConnection,
    ConnectionClosed,
    LocalProtocolError,
    RemoteProtocolError,
    Request,
    Response,
    ServerBusy,
)

#: An answer and the ``time.perf_counter()`` at which its last byte arrived.
Answer = tuple[Response, float]


class ExchangeError(Exception):
    """A connection failed; ``kind`` (connect, closed, malformed, refused, timeout)
    is the label the report counts."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno)
    return str(exc) or type(exc).__name__


class Client(asyncio.Protocol):
    """One TCP connection speaking ABP/1 (``legacy``: the tutorial's framing)."""

    def __init__(self, *, legacy: bool) -> None:
        self.conn = ClientConnection(legacy=legacy)
        self.answers: deque[Answer] = deque()
        #: Set once, when the connection can serve no more answers.
        self.failure: ExchangeError | None = None
        #: Called after answers arrived or the connection failed.
        self.on_answers: Callable[[], None] | None = None
        self._transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()
        self._waiter: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._last_data = 0.0

    @classmethod
    async def open(
        cls,
        host: str,
        port: int,
        *,
        legacy: bool,
        timeout: float,
        tls: TlsSettings | None = None,
    ) -> Client:
        """Raises ``ExchangeError("connect", why)``; ``tls``: the handshake is
        part of connecting (ABP over TLS)."""
        loop = asyncio.get_running_loop()
        context = None if tls is None else tls.context()
        try:
            _, client = await asyncio.wait_for(
                loop.create_connection(
                    lambda: cls(legacy=legacy),
                    host,
                    port,
                    ssl=context,
                    server_hostname=None if context is None else host,
                ),
                timeout,
            )
        except asyncio.TimeoutError:
            raise ExchangeError("connect", f"no connection within {timeout:g} s") from None
        except ssl.SSLError as exc:
            raise ExchangeError("connect", f"TLS handshake failed: {describe(exc)}") from None
        except OSError as exc:
            raise ExchangeError("connect", _why(exc)) from None
        return client

    def send(self, requests: Sequence[Request]) -> None:
        if self.failure is not None:
            raise self.failure
        try:
            data = b"".join([self.conn.send(request) for request in requests])
        except LocalProtocolError as exc:
            raise ExchangeError("closed", str(exc)) from None
        assert self._transport is not None
        self._transport.write(data)

    async def exchange(self, requests: Sequence[Request], timeout: float) -> list[Answer]:
        """Send ``requests`` at once and wait for every answer; raises ``ExchangeError``."""
        self.send(requests)
        count = len(requests)
        deadline = self._loop.time() + timeout
        while len(self.answers) < count:
            if self.failure is not None:
                raise self.failure
            left = deadline - self._loop.time()
            if left <= 0:
                missing = count - len(self.answers)
                raise ExchangeError("timeout", f"{missing} answer(s) missing after {timeout:g} s")
            self._waiter = self._loop.create_future()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._waiter, left)
        return [self.answers.popleft() for _ in range(count)]

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    # -- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._last_data = time.perf_counter()
        self._feed(self.conn.receive_data, data)

    def eof_received(self) -> bool:
        self._feed(self.conn.receive_data, b"")
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if not self.conn.peer_closed and self.failure is None:
            self._feed(self.conn.receive_data, b"")  # a reset: a legacy answer still counts
        why = "the server closed the connection" if exc is None else _why(exc)
        self._fail(ExchangeError("closed", why))

    # -- input
    def _expire(self) -> None:
        self._timer = None
        self._feed(self.conn.expire, None)

    def _feed(self, step: Callable[..., list[Response | ConnectionClosed]], data: object) -> None:
        now = self._loop.time()
        try:
            events = step(now) if data is None else step(data, now)
        except RemoteProtocolError as exc:
            self._fail(ExchangeError("malformed", str(exc)))
            self.abort()
            return
        for event in events:
            if isinstance(event, ConnectionClosed):
                self._fail(ExchangeError("closed", "the server closed the connection"))
            elif isinstance(event, ServerBusy):  # ABP-CONN-8: the server closes next
                self._fail(ExchangeError("refused", "ERROR: Server busy"))
            else:
                self.answers.append((event, self._last_data))
        due = self.conn.deadline()
        if due is not None and self._timer is None and self.failure is None:
            self._timer = self._loop.call_at(due, self._expire)
        self._wake()

    def _fail(self, failure: ExchangeError) -> None:
        if self.failure is None:
            self.failure = failure
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
        if self.on_answers is not None:
            self.on_answers()
