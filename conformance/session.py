"""What a conformance test holds: the target server and a per-test session.

``ServerTarget`` is the server under test, shared by every test of a run (and
by every xdist worker): its address, service, framing, and, when the suite was
given ``--server-cmd``, how to start private instances of it for the tests
that restart or kill a server. ``ServerSession`` is one test's view: it opens
connections that share one transcript, hands out names no other test uses, and
asks the health probe after abusive tests.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

from conformance.expect import fail
from conformance.process import ServerProcess
from conformance.wire import Answer, Transcript, Wire, WireError
from protocol import Find, Request

FRAMINGS = ("line", "legacy")
SERVICES = ("abp", "counter")


@dataclass(frozen=True)
class ServerTarget:
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
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass
class ServerSession:
    """One test's conversation with the target."""

    target: ServerTarget
    test_id: str = ""
    transcript: Transcript = field(default_factory=Transcript)
    _wires: list[Wire] = field(default_factory=list)
    _names: Iterator[int] = field(default_factory=itertools.count)
    _token: str = field(default_factory=lambda: uuid.uuid4().hex[:10])

    # -- names
    def name(self, hint: str = "n") -> str:
        """A NAME no other test (or worker, or earlier run) uses."""
        return f"{hint}-{self._token}-{next(self._names)}"

    # -- connections
    def wire(
        self,
        *,
        legacy: bool | None = None,
        connect: bool = True,
        host: str | None = None,
        port: int | None = None,
    ) -> Wire:
        """A new connection sharing this test's transcript (closed at teardown)."""
        wire = Wire(
            host or self.target.host,
            port or self.target.port,
            timeout=self.target.timeout,
            transcript=self.transcript,
            legacy=self.target.framing == "legacy" if legacy is None else legacy,
            counter=self.target.service == "counter",
            name=f"c{len(self._wires) + 1}",
        )
        self._wires.append(wire)
        if connect:
            wire.connect()
        return wire

    def ask(self, request: Request, *, wire: Wire | None = None) -> Answer:
        """One request, one answer, in the framing the server handles.

        Line framing reuses ``wire`` (or opens one); legacy framing opens a new
        connection per request, as the tutorial's client does.
        """
        if self.target.framing == "legacy" and wire is None:
            with self.wire() as legacy_wire:
                legacy_wire.send_request(request)
                return legacy_wire.read_answer()
        wire = wire or self.wire()
        return wire.request(request)

    def probe(self) -> None:
        """Health probe: a fresh connection gets an answer to a fresh request."""
        try:
            if self.target.service == "counter":
                with self.wire() as wire:
                    wire.send_counter_line(b"health probe")
                    wire.read_answer()
            else:
                self.ask(Find(self.name("probe")))
        except WireError as exc:
            fail(
                "ABP-CONN-6",
                f"health probe after the test failed: the server no longer answers ({exc})",
                transcript=self.transcript,
            )

    def close(self) -> None:
        for wire in self._wires:
            wire.close()
        self._wires.clear()

    # -- private server instances (tests that restart or kill a server)
    @contextlib.contextmanager
    def private_server(self) -> Iterator[ServerProcess]:
        """A fresh instance of the target started from ``--server-cmd`` on its own
        port and its own ``{tmpdir}``; stopped by PID at the end."""
        if self.target.server_cmd is None:
            raise RuntimeError("private_server needs --server-cmd")
        with tempfile.TemporaryDirectory(prefix="abp-conformance-") as tmpdir:
            template = self.target.server_cmd.replace("{tmpdir}", tmpdir)
            process = ServerProcess(template, host=self.target.host, env=dict(os.environ))
            self.transcript.note("--", f"starting private server: {template}")
            try:
                process.start()
                yield process
            finally:
                process.stop()
