"""The server under test, as every test of a run (and every xdist worker) sees it."""

from __future__ import annotations

from dataclasses import dataclass

from protocol.address import format_address

FRAMINGS = ("line", "legacy")
SERVICES = ("abp", "counter")


@dataclass(frozen=True)
class ServerTarget:
    """The target's address, service and framing, the suite's bounds and seed,
    and, when the suite was given ``--server-cmd``, how to start private
    instances of it for the tests that restart or kill a server."""

    host: str
    port: int
    service: str = "abp"  # "abp" or "counter"
    framing: str = "line"  # "line" or "legacy" (what the server handles)
    timeout: float = 5.0  # bound on every wait
    server_cmd: str | None = None  # template with {port} (and {host}, {tmpdir})
    seed: int = 0
    fuzz_examples: int = 50
    idle_timeout: float | None = None  # the server's idle timeout, when known

    @property
    def address(self) -> str:
        return format_address(self.host, self.port)
