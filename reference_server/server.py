"""The listening side of the reference server: bind, admit, number, shut down.

Each accepted socket gets a ``Connection`` (``reference_server.connection``),
the thin I/O shell around ``protocol.ServerConnection``. This module holds
what is shared between connections: the settings, the connection limit
(ABP-CONN-8), the counter service's numbering (ABP-COUNTER-2) and the clean
shutdown on SIGINT/SIGTERM (stop accepting, answer what was received, close
every connection, then close the store).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from protocol import DEFAULT_HOST, DEFAULT_PORT, DEFAULT_QUIET_PERIOD
from protocol.address import format_address
from reference_server.connection import STORE_FAILED, Connection
from reference_server.store import Store

Service = Literal["abp", "counter"]

#: ``listen()`` backlog: bursts of hundreds of connects must not be dropped.
BACKLOG = 1024

log = logging.getLogger("abp-server")


@dataclass(frozen=True, slots=True)
class Settings:
    """What the command line configures; the defaults are the documented ones."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    service: Service = "abp"
    quiet_period: float = DEFAULT_QUIET_PERIOD
    idle_timeout: float | None = 300.0  # None: never
    max_conns: int = 1000
    verbose: bool = False


class ListenError(OSError):
    """The listening socket could not be opened (busy port, bad address)."""


class Server:
    """Listens, numbers connections, enforces the limit, shuts down cleanly."""

    def __init__(self, settings: Settings, store: Store | None) -> None:
        if settings.service == "abp" and store is None:
            raise ValueError("the abp service needs a store")
        self.settings = settings
        self.store = store
        self.connections: set[Connection] = set()
        self.active = 0  # served connections open now (refused ones excluded)
        self.accepted = 0  # served connections since start: the counter's N
        self._listener: asyncio.Server | None = None
        self._drained: asyncio.Event | None = None

    async def start(self) -> list[tuple[str, int]]:
        """Bind and listen; return the addresses actually bound."""
        loop = asyncio.get_running_loop()
        settings = self.settings
        try:
            self._listener = await loop.create_server(
                lambda: Connection(self, loop),
                settings.host,
                settings.port,
                backlog=BACKLOG,
            )
        except OSError as exc:
            where = format_address(settings.host, settings.port)
            why = exc.strerror or str(exc)
            raise ListenError(f"cannot listen on {where}: {why}") from None
        return self.addresses

    @property
    def addresses(self) -> list[tuple[str, int]]:
        if self._listener is None:
            return []
        return [
            (str(name[0]), int(name[1]))
            for name in (sock.getsockname() for sock in self._listener.sockets)
        ]

    async def shutdown(self, grace: float = 5.0) -> None:
        """Stop accepting, answer what was received, close every connection."""
        if self._listener is not None:
            self._listener.close()
        self._drained = asyncio.Event()
        for connection in list(self.connections):
            connection.shut_down()
        if self.connections:
            try:
                await asyncio.wait_for(self._drained.wait(), grace)
            except asyncio.TimeoutError:
                log.warning("aborting %d connection(s) at shutdown", len(self.connections))
                for connection in list(self.connections):
                    connection.abort()
        if self._listener is not None:
            await self._listener.wait_closed()

    # ---------------------------------------------- called by connections
    def admit(self, connection: Connection) -> int | None:
        """The connection's number, or None past the limit (ABP-CONN-8)."""
        self.connections.add(connection)
        if self.active >= self.settings.max_conns:
            return None
        self.active += 1
        self.accepted += 1
        return self.accepted

    def forget(self, connection: Connection, *, served: bool) -> None:
        self.connections.discard(connection)
        if served:
            self.active -= 1
        if self._drained is not None and not self.connections:
            self._drained.set()


async def serve(
    settings: Settings,
    store: Store | None,
    stop: asyncio.Event,
    on_ready: Callable[[list[tuple[str, int]]], None] | None = None,
) -> None:
    """Serve until ``stop`` is set, then shut down cleanly and close the store."""
    server = Server(settings, store)
    if store is not None:
        store.start()
    try:
        addresses = await server.start()
        if on_ready is not None:
            on_ready(addresses)
        await stop.wait()
        await server.shutdown()
    finally:
        if store is not None:
            await store.close()


__all__ = [
    "STORE_FAILED",
    "ListenError",
    "Server",
    "Service",
    "Settings",
    "format_address",
    "serve",
]
