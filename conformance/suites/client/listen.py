"""Listening sockets on loopback for the scripted server, IPv4 and IPv6."""

from __future__ import annotations

import socket

from protocol.address import format_address


def peer_text(address: tuple[object, ...]) -> str:
    return format_address(address[0], address[1])


def listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host, port))
        sock.listen(64)
    except OSError:
        sock.close()
        raise
    return sock


def ipv6_loopback_available() -> bool:
    """True when ``::1`` can be listened on (not every container has IPv6)."""
    if not socket.has_ipv6:
        return False
    try:
        listen("::1", 0).close()
    except OSError:
        return False
    return True
