"""Before the run: is the server there, and which framing does it speak?

``auto`` asks the conformance suite's framing probe (``conformance.harness.probe``):
an ``OK``/``ERROR`` line ended by LF is an ABP/1 server; free text, or an
answer that ends by silence or close, is a tutorial-style one (ABP-FRAME-8),
which then gets unterminated requests one at a time.
"""

from __future__ import annotations

import ipaddress
import socket

from conformance.harness.probe import detect
from conformance.harness.wire import WireError
from protocol.address import format_address

#: Silence that ends a legacy answer during the probe (generous: one answer).
PROBE_QUIET = 0.3


class Unreachable(Exception):
    """The server cannot be benchmarked at all (exit status 2)."""


def check_loopback(host: str) -> None:
    """The bench only ever talks to this machine."""
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise Unreachable(f"cannot resolve {host!r}: {exc.strerror or exc}") from None
    for info in infos:
        address = str(info[4][0]).split("%", 1)[0]
        if not ipaddress.ip_address(address).is_loopback:
            raise Unreachable(
                f"{host} is not a loopback address ({address}): the bench only loads this machine"
            )


def detect_framing(host: str, port: int, framing: str, timeout: float) -> tuple[str, list[str]]:
    """("line" or "legacy", notes): the suite's own probe (``conformance.harness.probe``);
    raises ``Unreachable``."""
    where = format_address(host, port)
    if framing != "auto":
        try:
            socket.create_connection((host, port), timeout=timeout).close()
        except OSError as exc:
            raise Unreachable(f"cannot connect to {where}: {exc.strerror or exc}") from None
        return framing, [f"framing: {framing} (as asked)"]
    try:
        found = detect(host, port, timeout=timeout, quiet=PROBE_QUIET)
    except WireError as exc:
        raise Unreachable(str(exc)) from None
    if found.framing is None:
        raise Unreachable(f"{where} accepted a connection but did not answer: {found.reason}")
    return found.framing, [found.describe()]


__all__ = ["PROBE_QUIET", "Unreachable", "check_loopback", "detect_framing"]
