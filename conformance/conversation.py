"""The asking half of a conformance test: connections and judged answers.

A test talks to the target through connections that share one transcript,
asks in the framing the server handles, and gets every wrong, missing or
unterminated answer turned into a ``RequirementFailed`` (requirement, expected
and actual bytes, transcript). ``ServerSession`` (``conformance.session``)
adds what belongs to one test: its names, the health probe, private servers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NoReturn

from conformance.answers import (
    FORM_SECTIONS,
    Expected,
    RawAnswer,
    decode,
    form_requirement,
    line_matches,
    same_meaning,
    wire_form,
)
from conformance.crowd import Crowd
from conformance.expect import fail
from conformance.raw import RawConnection, Unterminated
from conformance.target import ServerTarget
from conformance.wire import Answer, Transcript, Wire, WireClosed, WireError, WireTimeout
from protocol import Add, ClientConnection, LegacyReply, RemoteProtocolError, Request
from protocol.codec import decode_request

#: A legacy answer (no LF) is over once the server has been silent this long;
#: one answer is one ``send()``, so its bytes arrive together on loopback.
LEGACY_QUIET = 0.1
#: How long part of an answer may sit without its LF before it counts as
#: unterminated (ABP-FRAME-1): generous for line servers, short for legacy ones.
STALL = 1.0
STALL_LEGACY = 3 * LEGACY_QUIET


@dataclass
class Conversation:
    """One test's conversation with the target.

    Two ways to talk. ``ask``/``answer``/``expect`` send protocol messages in
    the framing the server handles (``target.framing``); semantic tests use
    them. ``raw()`` opens a line-framed connection for bytes sent on purpose;
    framing tests use it with ``read_lines``/``expect_lines``. Every helper
    that waits turns a silent, closed or unterminated answer into a
    ``RequirementFailed`` that quotes the requirement and the transcript.
    """

    target: ServerTarget
    transcript: Transcript = field(default_factory=Transcript)
    _wires: list[Wire] = field(default_factory=list)
    _crowds: list[Crowd] = field(default_factory=list)
    _stored: set[str] = field(default_factory=set)  # entries this test has sent

    @property
    def legacy(self) -> bool:
        """The server handles only the tutorial's framing (``--framing legacy``)."""
        return self.target.framing == "legacy"

    @property
    def stall(self) -> float:
        """How long part of an answer may wait for its LF. A server known to
        answer with no LF (legacy framing) is not given long."""
        return min(STALL_LEGACY if self.legacy else STALL, self.target.timeout)

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
            legacy=self.legacy if legacy is None else legacy,
            counter=self.target.service == "counter",
            quiet_period=LEGACY_QUIET,
            name=f"c{len(self._wires) + 1}",
        )
        self._wires.append(wire)
        if connect:
            wire.connect()
        return wire

    def raw(
        self,
        requirement: str = "ABP-TRANSPORT-1",
        *,
        address: tuple[str, int] | None = None,
        connect_timeout: float | None = None,
    ) -> RawConnection:
        """A new connection for raw bytes; a failed connect fails ``requirement``."""
        host, port = address or (self.target.host, self.target.port)
        wire = self.wire(legacy=False, connect=False, host=host, port=port)
        if connect_timeout is not None:
            wire.timeout = connect_timeout
        try:
            wire.connect()
        except WireError as exc:
            fail(requirement, f"cannot connect: {exc}", transcript=self.transcript)
        wire.timeout = self.target.timeout
        return RawConnection(wire, stall=self.stall)

    def crowd(self, prefix: str = "m", *, address: tuple[str, int] | None = None) -> Crowd:
        """Many connections driven together (closed at teardown)."""
        host, port = address or (self.target.host, self.target.port)
        crowd = Crowd(
            host, port, self.transcript, prefix=prefix, legacy=self.legacy, quiet=LEGACY_QUIET
        )
        self._crowds.append(crowd)
        return crowd

    def close(self) -> None:
        for wire in self._wires:
            wire.close()
        self._wires.clear()
        for crowd in self._crowds:
            crowd.close()
        self._crowds.clear()

    # -- asking in the server's framing
    def ask(self, request: Request, *, wire: Wire | None = None) -> Answer:
        """One request, one answer, in the framing the server handles.

        Line framing reuses ``wire`` (or opens one); legacy framing opens a new
        connection per request, as the tutorial's client does.
        """
        if self.legacy and wire is None:
            with self.wire() as legacy_wire:
                legacy_wire.send_request(request)
                return legacy_wire.read_answer()
        wire = wire or self.wire()
        return wire.request(request)

    def request_bytes(self, request: Request) -> bytes:
        """The bytes of ``request`` in the server's framing (built by the protocol)."""
        return ClientConnection(legacy=self.legacy).send(request)

    def answer(
        self,
        requirement: str,
        request: Request,
        *,
        conn: RawConnection | None = None,
        address: tuple[str, int] | None = None,
        timeout: float | None = None,
    ) -> RawAnswer:
        """The server's answer to ``request``; no answer fails ``requirement``.

        Uses ``conn``, or a new connection. In legacy framing the request goes
        with no terminator and the answer ends at LF, end of stream or silence.
        """
        if isinstance(request, Add):
            self.remember(request.entry)
        return self._exchange(requirement, self.request_bytes(request), conn, address, timeout)

    def ask_line(
        self,
        requirement: str,
        line: bytes,
        *,
        conn: RawConnection | None = None,
        address: tuple[str, int] | None = None,
    ) -> RawAnswer:
        """The answer to a raw request line (no terminator given), sent in the
        server's framing: for requests the protocol refuses to build."""
        with contextlib.suppress(RemoteProtocolError):
            request = decode_request(line)
            if isinstance(request, Add):
                self.remember(request.entry)
        data = line if self.legacy else line + b"\n"
        return self._exchange(requirement, data, conn, address, None)

    def _exchange(
        self,
        requirement: str,
        data: bytes,
        conn: RawConnection | None,
        address: tuple[str, int] | None,
        timeout: float | None,
    ) -> RawAnswer:
        line = self.exchange_raw(requirement, data, conn=conn, address=address, timeout=timeout)
        answer = decode(line, legacy=True)  # free text becomes a LegacyReply
        assert answer is not None
        return answer

    def exchange_raw(
        self,
        requirement: str,
        data: bytes,
        *,
        conn: RawConnection | None = None,
        address: tuple[str, int] | None = None,
        timeout: float | None = None,
    ) -> bytes:
        """Send ``data`` (a request already framed) and return the raw answer:
        a line, or in legacy framing the bytes up to LF, end of stream or
        silence. Uses ``conn``, or a connection of its own closed afterwards.

        On a legacy connection of its own the request is followed by a
        half-close, so that the answer ends when the server closes (as the
        tutorial's server does, and ABP-FRAME-5 requires) rather than after a
        quiet period: it is the only request on that connection anyway."""
        own = conn is None
        if conn is None:
            conn = self.raw(requirement, address=address, connect_timeout=timeout)
        try:
            conn.send(data)
            if own and self.legacy:
                conn.shutdown_write()
            if self.legacy:
                return conn.read_legacy(LEGACY_QUIET, timeout)
            return conn.read_line(timeout)
        except WireError as exc:
            self.no_answer(requirement, exc, f"no answer to {data[:60]!r}", timeout)
        finally:
            if own:
                conn.close()

    def expect(
        self,
        requirement: str,
        request: Request,
        expected: Expected,
        summary: str,
        *,
        conn: RawConnection | None = None,
        address: tuple[str, int] | None = None,
        timeout: float | None = None,
    ) -> RawAnswer:
        """Fail ``requirement`` unless ``request`` is answered ``expected``."""
        actual = self.answer(requirement, request, conn=conn, address=address, timeout=timeout)
        self.check(requirement, summary, expected, actual)
        return actual

    def expect_line(
        self,
        requirement: str,
        line: bytes,
        expected: Expected,
        summary: str,
        *,
        conn: RawConnection | None = None,
    ) -> RawAnswer:
        actual = self.ask_line(requirement, line, conn=conn)
        self.check(requirement, summary, expected, actual)
        return actual

    def check(self, requirement: str, summary: str, expected: object, actual: object) -> None:
        """``expected == actual``, or a failure showing both as wire bytes.

        Tests of the form of answers (sections 2, 4 and 7) compare bytes. Other
        tests judge what the answer means (``same_meaning``): a server whose
        answers are free text, like the tutorial's, still gets its requests'
        semantics judged, and fails only the form requirements for its form.
        """
        if expected == actual:
            return
        judged_by_meaning = not requirement.startswith(FORM_SECTIONS)
        if judged_by_meaning and same_meaning(expected, actual, self._stored):
            self.transcript.note(
                "--",
                f"answer judged by its meaning; its form is {form_requirement(expected)}'s test",
            )
            return
        if isinstance(actual, LegacyReply):
            summary += " (the answer is free text, not an ABP/1 answer)"
        fail(
            requirement,
            summary,
            expected=wire_form(expected),
            actual=wire_form(actual),
            transcript=self.transcript,
        )

    def remember(self, entry: str) -> None:
        """An entry this test may have stored: free text equal to it is never
        taken for "no entry" (see ``same_meaning``)."""
        self._stored.add(entry)

    # -- raw lines
    def read_lines(
        self,
        requirement: str,
        conn: RawConnection,
        count: int,
        summary: str,
        *,
        timeout: float | None = None,
    ) -> list[bytes]:
        """``count`` raw answer lines; fails ``requirement`` when they do not come."""
        got: list[bytes] = []
        try:
            got.extend(conn.read_lines(count, timeout))
        except WireError as exc:
            self.no_answer(requirement, exc, f"{summary} (got {len(got)} of {count} lines)")
        return got

    def expect_lines(
        self,
        requirement: str,
        conn: RawConnection,
        expected: Sequence[Expected],
        summary: str,
        *,
        timeout: float | None = None,
    ) -> list[bytes]:
        """Read ``len(expected)`` lines and fail ``requirement`` unless each is its
        expected answer, byte for byte (a CR before the LF aside)."""
        lines: list[bytes] = []
        for i, want in enumerate(expected):
            try:
                lines.append(conn.read_line(timeout))
            except WireError as exc:
                self.no_answer(requirement, exc, f"{summary}: answer {i + 1} of {len(expected)}")
            if not line_matches(want, lines[-1]):
                fail(
                    requirement,
                    f"{summary}: answer {i + 1} of {len(expected)} is wrong",
                    expected=wire_form(want),
                    actual=lines[-1],
                    transcript=self.transcript,
                )
        return lines

    def no_answer(
        self, requirement: str, exc: WireError, summary: str, timeout: float | None = None
    ) -> NoReturn:
        """Turn a failed read into the failure of ``requirement`` (or of
        ABP-FRAME-1 when the answer came without its LF)."""
        if isinstance(exc, Unterminated):
            fail(
                "ABP-COUNTER-4" if self.target.service == "counter" else "ABP-FRAME-1",
                f"{summary}: the answer is not terminated by LF",
                expected="one line ending with LF",
                actual=exc.partial,
                transcript=self.transcript,
            )
        if isinstance(exc, WireTimeout):
            why = f"no answer within {self.target.timeout if timeout is None else timeout:g}s"
        elif isinstance(exc, WireClosed):
            why = "the server closed the connection instead of answering"
        else:
            why = str(exc)
        fail(requirement, f"{summary}: {why}", transcript=self.transcript)
