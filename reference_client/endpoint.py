"""Where to connect: ``HOST:PORT`` strings and the ABP_HOST/ABP_PORT defaults.

ABP-TRANSPORT-3: names, IPv4 and bracketed IPv6 (``[::1]:2007``); the command
line wins over the environment, the environment over ``127.0.0.1:2007``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from protocol import DEFAULT_HOST, DEFAULT_PORT
from protocol.address import AddressError, format_address, parse_host, parse_port
from protocol.address import parse_address as _parse_address


@dataclass(frozen=True, slots=True)
class Address:
    host: str
    port: int

    def __str__(self) -> str:
        return format_address(self.host, self.port)


def parse_address(text: str, default_port: int = DEFAULT_PORT) -> Address:
    """``HOST:PORT``, ``[IPV6]:PORT``, ``[IPV6]`` or ``HOST`` (default port)."""
    return Address(*_parse_address(text, default_port))


def resolve_address(
    environ: Mapping[str, str],
    *,
    server: str | None = None,
    host: str | None = None,
    port: str | None = None,
) -> Address:
    """Defaults, then ABP_HOST/ABP_PORT, then ``--server``, then ``--host``/``--port``."""
    chosen_host = environ.get("ABP_HOST") or DEFAULT_HOST
    env_port = environ.get("ABP_PORT")
    try:
        chosen_port = parse_port(env_port) if env_port else DEFAULT_PORT
    except AddressError as exc:
        raise AddressError(f"ABP_PORT: {exc}") from None
    if server is not None:
        chosen_host, chosen_port = _parse_address(server, chosen_port)
    if host is not None:
        chosen_host = parse_host(host)
    if port is not None:
        chosen_port = parse_port(port)
    return Address(chosen_host, chosen_port)


__all__ = ["Address", "AddressError", "parse_address", "parse_port", "resolve_address"]
