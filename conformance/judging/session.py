"""One conformance test's session with the target server.

``ServerSession`` is what a server test receives (the ``abp`` fixture): a
``Conversation`` (connections sharing one transcript, asking in the server's
framing, answers judged against requirements) plus what belongs to one test:
names no other test uses, the health probe after abusive tests, retries of
timing-sensitive attempts, and private server instances for the tests that
restart or kill a server.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import NoReturn

import pytest

from conformance.harness.process import ServerProcess, ServerStartError
from conformance.harness.raw import Inconclusive
from conformance.harness.wire import WireError
from conformance.judging.conversation import LEGACY_QUIET, Conversation
from conformance.judging.target import ServerTarget
from conformance.judging.verdict import fail
from protocol import Find

__all__ = ["ServerSession", "ServerTarget"]

#: How long another client may wait on a server held up by a slow one
#: (ABP-CONN-5) before the suite calls it held up: seconds, not the timeout.
HOLDUP_BOUND = 1.5


@dataclass
class ServerSession(Conversation):
    """One test's conversation with the target (see ``Conversation``), with
    the test's own names, probe and private servers."""

    test_id: str = ""
    _names: Iterator[int] = field(default_factory=itertools.count)
    _token: str = field(default_factory=lambda: uuid.uuid4().hex[:10])

    # -- names
    def name(self, hint: str = "n") -> str:
        """A NAME no other test (or worker, or earlier run) uses."""
        return f"{hint}-{self._token}-{next(self._names)}"

    @property
    def holdup_bound(self) -> float:
        """The wait after which a held-up client counts as held up (ABP-CONN-5)."""
        return min(self.target.timeout, HOLDUP_BOUND)

    def probe(self) -> None:
        """Health probe: a fresh connection gets an answer to a fresh request.

        Closes the test's connections first (it ends an abusive test), so that
        a server serving one client at a time can get to the probe."""
        self.close()
        try:
            if self.target.service == "counter":
                with self.wire() as wire:
                    wire.send_counter_line(b"health probe")
                    wire.read_answer()
                return
        except WireError as exc:
            self._probe_failed(str(exc))
        conn = self.raw("ABP-CONN-6")
        try:
            conn.send(self.request_bytes(Find(self.name("probe"))))
            if self.legacy:
                conn.read_legacy(LEGACY_QUIET)
            else:
                conn.read_line()
        except WireError as exc:
            self._probe_failed(str(exc))
        finally:
            conn.close()

    def _probe_failed(self, why: str) -> NoReturn:
        fail(
            "ABP-CONN-6",
            f"health probe after the test failed: the server no longer answers ({why})",
            transcript=self.transcript,
        )

    def attempts(self, attempt: Callable[[], None], tries: int = 3) -> None:
        """Run a timing-sensitive ``attempt`` (split requests) until one is
        conclusive; after ``tries`` inconclusive ones the test is skipped, as
        this machine is too busy to judge it."""
        for _ in range(tries):
            try:
                attempt()
            except Inconclusive as exc:
                self.transcript.note("--", f"inconclusive ({exc}): trying again")
                continue
            return
        pytest.skip(f"{tries} attempts were inconclusive: the machine is too busy")

    # -- private server instances (tests that restart or kill a server)
    @contextlib.contextmanager
    def private_server(self) -> Iterator[ServerProcess | None]:
        """A fresh instance of the target started from ``--server-cmd`` on its own
        port and its own ``{tmpdir}``; stopped by PID at the end. Yields None
        when the suite was given no ``--server-cmd`` (the test then skips)."""
        if self.target.server_cmd is None:
            yield None
            return
        with tempfile.TemporaryDirectory(prefix="abp-conformance-") as tmpdir:
            template = self.target.server_cmd.replace("{tmpdir}", tmpdir)
            process = ServerProcess(template, host=self.target.host, env=dict(os.environ))
            self.transcript.note("--", f"starting private server: {template}")
            with contextlib.ExitStack() as stack:
                stack.callback(process.close)  # stop it, release its files
                try:
                    process.start()
                except ServerStartError as exc:
                    fail(
                        "ABP-TRANSPORT-1",
                        f"the private server did not start: {exc}",
                        transcript=self.transcript,
                    )
                yield process
