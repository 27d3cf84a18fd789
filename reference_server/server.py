"""The listening side of the reference server: bind, admit, number, shut down.

Each accepted socket gets a ``Connection`` (``reference_server.connection``),
the thin I/O shell around ``protocol.ServerConnection``; this module imports
it, never the other way round (a connection sees its server through
``connection.Listener``). This module holds what is shared between
connections: the connection limits (ABP-CONN-8: ``--max-conns`` and
``--max-conns-per-ip``), the counter service's numbering (ABP-COUNTER-2),
the round-robin of input work (``connection.Turns``), the TLS context
(ABP-TLS), the clean shutdown on SIGINT/SIGTERM (stop accepting, answer what
was received, close every connection, then close the store), and what the
event loop reports about the network: out of file descriptors is one
warning line a second, an expected network condition is never a traceback.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import os
import socket
import ssl
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from protocol.address import format_address
from reference_server.connection import STORE_FAILED, Connection, Turns
from reference_server.settings import Service, Settings
from reference_server.store import Store

#: ``listen()`` backlog: bursts of hundreds of connects must not be dropped.
BACKLOG = 1024
#: Connections asyncio accepts per turn of the event loop (it uses the
#: ``backlog`` argument for this): a connect storm cannot take a whole turn.
ACCEPT_PER_TURN = 64
#: Seconds between two "out of file descriptors" lines (asyncio itself stops
#: accepting for one second after EMFILE/ENFILE, then tries again).
FD_WARNING_INTERVAL = 1.0
#: Seconds a TLS client may take to complete its handshake.
TLS_HANDSHAKE_TIMEOUT = 10.0

log = logging.getLogger("abp-server")

_ACCEPT_EXHAUSTED = "socket.accept() out of system resource"
_EXPECTED_ERRNOS = frozenset(
    {errno.ECONNRESET, errno.ENOTCONN, errno.EPIPE, errno.ECONNABORTED, errno.ETIMEDOUT}
)


class ListenError(OSError):
    """The listening socket could not be opened (busy port, bad address)."""


class TLSSetupError(ValueError):
    """The TLS certificate, key or client CA could not be loaded; one line."""


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """The server's TLS context (ABP-TLS-1..), or None for plain TCP.

    TLS 1.2 or later only; with ``tls_client_ca`` a client must present a
    certificate signed by one of those CAs, checked in the handshake, before
    any ABP byte.
    """
    if settings.tls_cert is None:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    what = settings.tls_cert
    try:
        context.load_cert_chain(settings.tls_cert, settings.tls_key)
        if settings.tls_client_ca is not None:
            what = settings.tls_client_ca
            context.load_verify_locations(cafile=settings.tls_client_ca)
            context.verify_mode = ssl.CERT_REQUIRED
    except (OSError, ssl.SSLError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        if isinstance(exc, ssl.SSLError):
            why = exc.reason or str(exc)
        raise TLSSetupError(f"cannot use TLS file {what}: {why}") from None
    return context


def is_loopback(host: str) -> bool:
    """Whether a bound address is a loopback one (127.0.0.0/8, ::1)."""
    try:
        return ipaddress.ip_address(host.partition("%")[0]).is_loopback
    except ValueError:
        return host == "localhost"


class Server:
    """Listens, numbers connections, enforces the limits, shuts down cleanly."""

    def __init__(self, settings: Settings, store: Store | None) -> None:
        if settings.service == "abp" and store is None:
            raise ValueError("the abp service needs a store")
        self.settings = settings
        self.store = store
        self.turns = Turns()
        self.connections: set[Connection] = set()
        self.active = 0  # admitted connections open now (refused ones excluded)
        self.accepted = 0  # admitted connections since start: the counter's N
        self.per_host: Counter[str] = Counter()  # admitted connections per address
        self.refused = 0  # refused connections not gone yet (lingering for their answer)
        self._per_ip_limit = settings.per_ip_limit
        self._listener: asyncio.Server | None = None
        self._drained: asyncio.Event | None = None
        self._last_fd_warning = float("-inf")
        self._previous_handler: Any = None

    async def start(self) -> list[tuple[str, int]]:
        """Bind and listen; return the addresses actually bound."""
        loop = asyncio.get_running_loop()
        settings = self.settings
        context = tls_context(settings)
        self._previous_handler = loop.get_exception_handler()
        loop.set_exception_handler(self._on_loop_error)
        try:
            self._listener = await loop.create_server(
                lambda: Connection(self, loop),
                settings.host,
                settings.port,
                backlog=ACCEPT_PER_TURN,  # asyncio: accepts per turn, and listen()'s
                ssl=context,
                ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT if context else None,
            )
        except OSError as exc:
            loop.set_exception_handler(self._previous_handler)
            where = format_address(settings.host, settings.port)
            why = exc.strerror or str(exc)
            raise ListenError(f"cannot listen on {where}: {why}") from None
        for listening in self._listener.sockets:
            # The kernel's queue stays long (asyncio's wrapper hides listen()).
            with socket.socket(fileno=os.dup(listening.fileno())) as same:
                same.listen(BACKLOG)
        addresses = self.addresses
        open_to = [a for a in addresses if not is_loopback(a[0])]
        if open_to and context is None:
            log.warning(
                "warning: listening on %s without TLS: anyone who can reach it can read "
                "and change the book (use --tls-cert and --tls-key)",
                format_address(*open_to[0]),
            )
        return addresses

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
        asyncio.get_running_loop().set_exception_handler(self._previous_handler)

    # ---------------------------------------------- called by connections
    def admit(self, connection: Connection, host: str) -> int | None:
        """The connection's number, or None past a limit (ABP-CONN-8)."""
        self.connections.add(connection)
        if self.active >= self.settings.max_conns or self.per_host[host] >= self._per_ip_limit:
            self.refused += 1
            return None
        self.active += 1
        self.accepted += 1
        self.per_host[host] += 1
        return self.accepted

    def forget(self, connection: Connection) -> None:
        if connection not in self.connections:
            return  # forgotten already
        self.connections.discard(connection)
        if not connection.admitted:
            self.refused -= 1
        else:
            self.active -= 1
            left = self.per_host[connection.host] - 1
            if left > 0:
                self.per_host[connection.host] = left
            else:
                del self.per_host[connection.host]
        if self._drained is not None and not self.connections:
            self._drained.set()

    def lingering(self) -> int:
        return self.refused

    # --------------------------------------------------- the event loop
    def _on_loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """Network conditions in one line, bugs with their traceback."""
        exc = context.get("exception")
        if context.get("message") == _ACCEPT_EXHAUSTED and isinstance(exc, OSError):
            now = time.monotonic()
            if now - self._last_fd_warning >= FD_WARNING_INTERVAL:
                self._last_fd_warning = now
                log.warning(
                    "cannot accept connections: %s; trying again in 1s "
                    "(%d open; raise the descriptor limit or lower --max-conns)",
                    exc.strerror or exc,
                    len(self.connections),
                )
            return
        if isinstance(exc, OSError) and exc.errno in _EXPECTED_ERRNOS:
            if self.settings.verbose:
                log.info("%s: %s", context.get("message", "network"), exc)
            return
        if self._previous_handler is not None:
            self._previous_handler(loop, context)
        else:
            loop.default_exception_handler(context)


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
    "TLSSetupError",
    "format_address",
    "is_loopback",
    "serve",
    "tls_context",
]
