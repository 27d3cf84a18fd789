"""``HOST:PORT`` strings, read and written one way everywhere (ABP-TRANSPORT-3).

Names, IPv4 and bracketed IPv6 (``[::1]:2007``). Not wire format, but part of
the protocol's conventions, so every program shares this one reading of it.
"""

from __future__ import annotations


class AddressError(ValueError):
    """An address or port a person wrote that cannot be used."""


def format_address(host: object, port: object) -> str:
    """``host:port``, with an IPv6 host bracketed: ``[::1]:2007``."""
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


def parse_port(text: str, *, allow_zero: bool = False) -> int:
    """A TCP port, 1 to 65535, written in decimal; 0 ("any free port") only
    where a program listens and says so."""
    low = 0 if allow_zero else 1
    if not text.isascii() or not text.isdigit() or not low <= int(text) <= 65535:
        raise AddressError(f"not a TCP port ({low}-65535): {text!r}")
    return int(text)


def parse_host(text: str) -> str:
    """A host as given on its own: a name, IPv4, or IPv6 with or without brackets."""
    host = text.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]  # "[::1]", as written in "[::1]:2007"
    if not host or "[" in host or "]" in host:
        raise AddressError(f"not a host: {text!r}")
    return host


def parse_address(text: str, default_port: int | None = None) -> tuple[str, int]:
    """``HOST:PORT`` or ``[IPV6]:PORT``; ``HOST`` or ``[IPV6]`` alone only when
    a ``default_port`` is given."""
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or not host:
            raise AddressError(f"unclosed or empty '[' in address {text!r}")
        if not rest:
            return host, _default(text, default_port)
        if not rest.startswith(":"):
            raise AddressError(f"expected ':PORT' after ']' in address {text!r}")
        return host, parse_port(rest[1:])
    if text.count(":") > 1:
        raise AddressError(f"write an IPv6 address in brackets, as in [::1]:2007: {text!r}")
    host, colon, port = text.partition(":")
    if not host:
        raise AddressError(f"no host in address {text!r}")
    return host, parse_port(port) if colon else _default(text, default_port)


def _default(text: str, default_port: int | None) -> int:
    if default_port is None:
        raise AddressError(f"not a HOST:PORT address: {text!r}")
    return default_port
