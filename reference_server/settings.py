"""What the command line configures, shared by the listener and its connections.

A frozen value with the documented defaults. It holds no behaviour: the
listener (``reference_server.server``) and each connection
(``reference_server.connection``) read it; neither imports the other for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from protocol import DEFAULT_HOST, DEFAULT_PORT, DEFAULT_QUIET_PERIOD

Service = Literal["abp", "counter"]

#: Seconds a request line may take from its first byte to its LF (slowloris).
DEFAULT_LINE_TIMEOUT = 10.0
#: Connections served at once, and from one client address (a fraction of it).
DEFAULT_MAX_CONNS = 1000


#: Under the default, one address may always have this many (or --max-conns).
PER_IP_FLOOR = 128


def default_max_conns_per_ip(max_conns: int) -> int:
    """Half of ``--max-conns``, but at least ``PER_IP_FLOOR``: one address
    never takes every slot of a big server, a small one stays usable from a
    single machine, and the conformance suite's crowd of 200 fits the default."""
    return min(max_conns, max(PER_IP_FLOOR, max_conns // 2))


@dataclass(frozen=True, slots=True)
class Settings:
    """The server's configuration; the defaults are the documented ones."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    service: Service = "abp"
    quiet_period: float = DEFAULT_QUIET_PERIOD
    idle_timeout: float | None = 300.0  # None: never
    line_timeout: float | None = DEFAULT_LINE_TIMEOUT  # None: never
    max_conns: int = DEFAULT_MAX_CONNS
    max_conns_per_ip: int | None = None  # None: default_max_conns_per_ip(max_conns)
    verbose: bool = False
    tls_cert: str | None = None  # PEM certificate chain: serve ABP over TLS
    tls_key: str | None = None  # its private key (PEM)
    tls_client_ca: str | None = None  # PEM CAs: require a client certificate they signed

    @property
    def per_ip_limit(self) -> int:
        if self.max_conns_per_ip is not None:
            return self.max_conns_per_ip
        return default_max_conns_per_ip(self.max_conns)


__all__ = [
    "DEFAULT_LINE_TIMEOUT",
    "DEFAULT_MAX_CONNS",
    "PER_IP_FLOOR",
    "Service",
    "Settings",
    "default_max_conns_per_ip",
]
