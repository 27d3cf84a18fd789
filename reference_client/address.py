"""Where to connect: ``HOST:PORT`` strings and the ABP_HOST/ABP_PORT defaults.

ABP-TRANSPORT-3: names, IPv4 and bracketed IPv6 (``[::1]:2007``); the command
line wins over the environment, the environment over ``127.0.0.1:2007``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from protocol import DEFAULT_HOST, DEFAULT_PORT


class AddressError(ValueError):
    """An address or port a person wrote that cannot be used."""


@dataclass(frozen=True, slots=True)
class Address:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_port(text: str) -> int:
    """A TCP port, 1 to 65535, written in decimal."""
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= 65535:
        raise AddressError(f"not a TCP port (1-65535): {text!r}")
    return int(text)


def parse_address(text: str, default_port: int = DEFAULT_PORT) -> Address:
    """``HOST:PORT``, ``[IPV6]:PORT``, ``[IPV6]`` or ``HOST`` (default port)."""
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or not host:
            raise AddressError(f"unclosed or empty '[' in address {text!r}")
        if not rest:
            return Address(host, default_port)
        if not rest.startswith(":"):
            raise AddressError(f"expected ':PORT' after ']' in address {text!r}")
        return Address(host, parse_port(rest[1:]))
    if text.count(":") > 1:
        raise AddressError(f"write an IPv6 address in brackets, as in [::1]:2007: {text!r}")
    host, colon, port = text.partition(":")
    if not host:
        raise AddressError(f"no host in address {text!r}")
    return Address(host, parse_port(port) if colon else default_port)


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
        address = parse_address(server, chosen_port)
        chosen_host, chosen_port = address.host, address.port
    if host is not None:
        if not host:
            raise AddressError("--host must not be empty")
        chosen_host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if port is not None:
        chosen_port = parse_port(port)
    return Address(chosen_host, chosen_port)
