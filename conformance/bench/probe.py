"""Before the run: is the server there, and which framing does it speak?

``auto`` sends one LF-terminated ``fnd`` and reads the answer the legacy way
(up to LF, end of stream or silence). An ``OK``/``ERROR`` line ended by LF is
an ABP/1 server; free text, or an answer that ends by silence, is a
tutorial-style one (answers with no terminator, ABP-FRAME-8), which then gets
unterminated requests one at a time.
"""

from __future__ import annotations

import ipaddress
import socket

from conformance.bench.streams import ExchangeError, StreamClient
from protocol import Error, Find, LegacyReply, Ok

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


async def detect_framing(
    host: str, port: int, framing: str, name: str, timeout: float
) -> tuple[str, list[str]]:
    """("line" or "legacy", notes); raises ``Unreachable``."""
    where = f"{host}:{port}"
    try:
        client = await StreamClient.open(
            host, port, legacy=True, timeout=timeout, quiet=PROBE_QUIET
        )
    except ExchangeError as exc:
        raise Unreachable(f"cannot connect to {where}: {exc.detail}") from None
    try:
        if framing != "auto":
            return framing, [f"framing: {framing} (as asked)"]
        try:
            answers = await client.exchange([Find(name)], timeout, terminated=True)
        except ExchangeError as exc:
            raise Unreachable(
                f"{where} accepted a connection but did not answer a fnd: {exc}"
            ) from None
        event, _ = answers[0]
        if isinstance(event, (Ok, Error)) and not client.unterminated:
            return "line", ["framing: line (the probe's answer was an OK/ERROR line ended by LF)"]
        if isinstance(event, LegacyReply):
            why = f"free text answer {event.text[:40]!r}"
        else:
            why = "an answer ended by silence, not LF"
        return "legacy", [f"framing: legacy (the probe got {why})"]
    finally:
        client.close()


__all__ = ["PROBE_QUIET", "Unreachable", "check_loopback", "detect_framing"]
