"""The test author's API: one test's session with the server under test.

``ServerSession`` is what a server test receives (the ``abp`` fixture)::

    abp.target         the server: address, service, framing, --timeout, budgets
    abp.transcript     every byte of the test, on every connection (shown on failure)
    abp.name(hint)     a NAME no other test, worker or earlier run uses
    abp.raw(req)       a new connection for bytes sent on purpose (``RawConnection``)
    abp.crowd(prefix)  many connections driven together (``Crowd``)
    abp.answer(req, request)             the raw answer to a request, judged by nobody
    abp.expect(req, request, want, summary, by="meaning" | "bytes")
    abp.judge(req, want, line, summary, by=...)  an answer already read, judged
    abp.expect_lines(req, conn, wants, summary)   the next answers on ``conn``, byte for byte
    abp.read_lines(req, conn, count, summary)     the next lines on ``conn``, unjudged
    abp.probe()        health probe after an abusive test (ABP-CONN-6)
    abp.attempts(fn)   retries a timing-sensitive attempt until one is conclusive
    abp.private_server()  a fresh instance from --server-cmd (restart/kill tests)
    abp.needs_half_close()  skips the test over TLS, which has no half-close

A request is a protocol message (``Find(name)``), sent in the framing the
server handles, or a raw request line (bytes, no terminator) for requests the
protocol refuses to build. An expected answer is an ``Ok``, an ``Error``
(``no_entry(name)``...), ``ANY_OK`` (``OK`` or ``OK: TEXT``) or, for a bad
request line, ``refusal(line)``: any error section 4 allows for that line, in
any check order (``protocol.codec.applicable_errors``). An ``Error`` expected
for a raw request line is always judged that way: a server that checks UTF-8
before NUL is as right as the reference, which checks NUL first. ``by`` says
how an answer is compared: ``"bytes"`` for the tests of the form of answers
(sections 2, 4, 7), ``"meaning"`` for the others, so that a server answering
in free text like the tutorial's still gets its semantics judged
(``same_meaning``).
Every wait that fails (silence, a close, an answer with no LF) becomes a
``RequirementFailed``; the plugin attaches the transcript to every failure.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import tempfile
import uuid
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal, NoReturn

import pytest

from conformance.harness.crowd import Crowd
from conformance.harness.lines import LineOverflow
from conformance.harness.process import ServerProcess, ServerStartError
from conformance.harness.raw import Inconclusive, RawConnection, Unterminated
from conformance.harness.timing import (
    HOLDUP,
    STALL,
    STALL_LEGACY,
    TIMEOUT,
    TRICKLE_MARGIN,
    budget,
)
from conformance.harness.tls import TlsSettings
from conformance.harness.wire import Transcript, Wire, WireError, WireTimeout
from conformance.judging.verdict import fail, on_the_wire
from protocol import (
    DEFAULT_QUIET_PERIOD,
    MAX_REQUEST_LINE,
    Add,
    ClientConnection,
    Error,
    Find,
    LegacyReply,
    Ok,
    RemoteProtocolError,
    Request,
    Response,
)
from protocol.address import format_address
from protocol.codec import (
    NO_ENTRY_FOR,
    applicable_errors,
    decode_request,
    decode_response,
    encode_response,
    line_content,
)
from protocol.escape import escape

FRAMINGS = ("line", "legacy")
SERVICES = ("abp", "counter")
#: How an answer is compared with the expected one (see the module docstring).
By = Literal["bytes", "meaning"]


# -- answers: what a line says, and whether it is the one a test expects
def decode(line: bytes, *, legacy: bool = False) -> Response | None:
    """The answer a raw line holds, or None when it is not an ABP/1 answer."""
    try:
        return decode_response(line_content(line), legacy=legacy)
    except RemoteProtocolError:
        return None


class AnyOk:
    """Expected answer ``OK`` or ``OK: TEXT`` (ABP-RESP-1): add and rem."""

    def __repr__(self) -> str:
        return "OK or OK: TEXT"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Ok | AnyOk)

    def __hash__(self) -> int:
        return hash(AnyOk)


ANY_OK = AnyOk()


@dataclass(frozen=True)
class Refusal:
    """Expected answer to a bad request line: any one of ``errors`` (section 4:
    "any of the errors that apply is a conforming answer"). ``requirement`` is
    the rule blamed when the answer is none of them: every rule the line
    breaks is then broken, and this names the one the protocol's own reading
    finds first."""

    errors: frozenset[Error]
    requirement: str

    def __repr__(self) -> str:
        return " or ".join(f'"{escape(encode_response(e))}"' for e in sorted_errors(self))


def sorted_errors(expected: Refusal) -> list[Error]:
    return sorted(expected.errors, key=lambda error: error.text)


def refusal(line: bytes) -> Refusal:
    """What a conforming server may answer to the request ``line`` (no
    terminator) that breaks at least one rule of sections 2-4."""
    errors = applicable_errors(line)
    if not errors:
        raise ValueError(f"not a bad request line: {line[:60]!r}")
    requirement = "ABP-FRAME-10"
    if len(line) <= MAX_REQUEST_LINE:
        try:
            decode_request(line)
        except RemoteProtocolError as exc:
            requirement = exc.requirement
    return Refusal(errors, requirement)


Expected = Ok | Error | AnyOk | Refusal


def wire_form(answer: object) -> object:
    """How an answer is shown in a failure: its bytes on the wire when it has them."""
    if isinstance(answer, Ok | Error):
        return encode_response(answer)
    if isinstance(answer, LegacyReply):
        return answer.text.encode("utf-8", "surrogateescape")
    if isinstance(answer, Refusal) and len(answer.errors) == 1:
        return encode_response(next(iter(answer.errors)))
    return answer


def form_requirement(expected: object) -> str:
    """The section-4 requirement that fixes the form of an expected answer."""
    if isinstance(expected, AnyOk):
        return "ABP-RESP-1"
    if isinstance(expected, Refusal):
        return "ABP-RESP-3"
    if isinstance(expected, Ok):
        return "ABP-RESP-2"
    if isinstance(expected, Error) and expected.text.startswith(NO_ENTRY_FOR):
        return "ABP-RESP-4"
    return "ABP-RESP-3"


def line_matches(expected: Expected, line: bytes) -> bool:
    """A raw answer line against its expected answer: exact bytes for a given
    answer (a CR before the LF aside); any ``OK`` form for ``ANY_OK``; any of
    the allowed errors for a ``Refusal``."""
    if isinstance(expected, AnyOk):
        return isinstance(decode(line), Ok)
    if isinstance(expected, Refusal):
        return any(line_matches(error, line) for error in expected.errors)
    return line.endswith(b"\n") and line_content(line) == line_content(encode_response(expected))


def same_meaning(expected: object, actual: object, stored: Collection[str] = ()) -> bool:
    """Whether ``actual`` says what ``expected`` says, its form aside: the
    entry found (as ``OK: ENTRY`` or as the bare text, as the tutorial's
    server answers), a success, or "no entry" (any error, or free text
    that is none of the ``stored`` entries). Malformed-request and unknown-
    command errors have no other form: they never match loosely."""
    if isinstance(expected, AnyOk):
        return isinstance(actual, Ok | LegacyReply)
    if isinstance(expected, Refusal):
        return actual in expected.errors
    if isinstance(expected, Ok):
        return isinstance(actual, Ok | LegacyReply) and actual.text == expected.text
    if isinstance(expected, Error) and expected.text.startswith(NO_ENTRY_FOR):
        if isinstance(actual, LegacyReply):
            return actual.text not in stored
        return isinstance(actual, Error)
    return False


@dataclass(frozen=True)
class ServerTarget:
    """The target's address, service and framing, the suite's bounds and seed,
    and, when the suite was given ``--server-cmd``, how to start private
    instances of it for the tests that restart or kill a server."""

    host: str
    port: int
    service: str = "abp"  # "abp" or "counter"
    framing: str = "line"  # "line" or "legacy" (what the server handles)
    timeout: float = TIMEOUT  # bound on every wait
    server_cmd: str | None = None  # template with {port} (and {host}, {tmpdir})
    seed: int = 0
    fuzz_examples: int = 50
    idle_timeout: float | None = None  # the server's idle timeout, when known
    max_conns: int | None = None  # the server's connection limit for one address, when known
    tls: TlsSettings | None = None  # ABP over TLS (a ``tls://`` target)
    quiet_period: float = DEFAULT_QUIET_PERIOD  # the server's (ABP-FRAME-6)

    @property
    def address(self) -> str:
        return ("tls://" if self.tls else "") + format_address(self.host, self.port)

    @property
    def legacy(self) -> bool:
        """The server handles only the tutorial's framing (``--framing legacy``)."""
        return self.framing == "legacy"

    @property
    def stall(self) -> float:
        """How long part of an answer may wait for its LF (a server known to
        answer with no LF is not given long)."""
        return budget(STALL_LEGACY if self.legacy else STALL, self.timeout)

    @property
    def trickle_margin(self) -> float:
        """The longest pause between the pieces of one split request: half
        the server's quiet period, which the server may take for its end."""
        return min(TRICKLE_MARGIN, self.quiet_period / 2)

    @property
    def holdup_bound(self) -> float:
        """The wait after which a held-up client counts as held up (ABP-CONN-5)."""
        return budget(HOLDUP, self.timeout)

    def frame(self, request: Request) -> bytes:
        """The bytes of ``request`` in the server's framing (built by the protocol)."""
        return ClientConnection(legacy=self.legacy).send(request)


@dataclass
class ServerSession:
    """One test's session with the target (see the module docstring)."""

    target: ServerTarget
    transcript: Transcript = field(default_factory=Transcript)
    _wires: list[Wire] = field(default_factory=list)
    _crowds: list[Crowd] = field(default_factory=list)
    _stored: set[str] = field(default_factory=set)  # entries this test may have stored
    _names: Iterator[int] = field(default_factory=itertools.count)
    _token: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    #: a wait of this test got no byte at all within the timeout (the plugin
    #: stops the run after a streak of such tests: the server stopped answering)
    met_silence: bool = False

    def name(self, hint: str = "n") -> str:
        """A NAME no other test (or worker, or earlier run) uses."""
        return f"{hint}-{self._token}-{next(self._names)}"

    # -- connections (closed at teardown)
    def raw(
        self,
        requirement: str = "ABP-TRANSPORT-1",
        *,
        address: tuple[str, int] | None = None,
        connect_timeout: float | None = None,
        connect: bool = True,
        tls: TlsSettings | Literal["target"] | None = "target",
        recv_buffer: int | None = None,
    ) -> RawConnection:
        """A new line-framed connection for raw bytes; a failed connect fails
        ``requirement``. ``connect=False`` leaves connecting to the test
        (``conn.wire.connect()``), say from its own threads. ``tls``: the
        target's TLS settings, or others (None: plain TCP, even to a TLS port).
        ``recv_buffer``: SO_RCVBUF set before connecting (a small TCP window
        for the whole connection: a client that reads slowly, or not at all)."""
        host, port = address or (self.target.host, self.target.port)
        wire = self._wire(host, port, self.target.tls if tls == "target" else tls)
        wire.recv_buffer = recv_buffer
        self._wires.append(wire)
        conn = RawConnection(wire, stall=self.target.stall, margin=self.target.trickle_margin)
        if not connect:
            return conn
        wire.timeout = connect_timeout if connect_timeout is not None else self.target.timeout
        try:
            wire.connect()
        except WireError as exc:
            fail(requirement, f"cannot connect: {exc}")
        wire.timeout = self.target.timeout
        return conn

    def _wire(self, host: str, port: int, tls: TlsSettings | None) -> Wire:
        return Wire(
            host,
            port,
            timeout=self.target.timeout,
            transcript=self.transcript,
            name=f"c{len(self._wires) + 1}",
            tls=tls,
        )

    def crowd(self, prefix: str = "m", *, address: tuple[str, int] | None = None) -> Crowd:
        """Many connections driven together."""
        host, port = address or (self.target.host, self.target.port)
        crowd = Crowd(
            host,
            port,
            self.transcript,
            prefix=prefix,
            legacy=self.target.legacy,
            tls=self.target.tls,
        )
        self._crowds.append(crowd)
        return crowd

    def close(self) -> None:
        """Close every connection of the test so far."""
        for wire in self._wires:
            wire.close()
        self._wires.clear()
        for crowd in self._crowds:
            crowd.close()
        self._crowds.clear()

    # -- asking and judging
    def answer(
        self,
        requirement: str,
        request: Request | bytes,
        *,
        conn: RawConnection | None = None,
        address: tuple[str, int] | None = None,
        timeout: float | None = None,
    ) -> bytes:
        """The raw answer to ``request`` (a message, or a request line with no
        terminator), sent in the server's framing: a line, or in legacy
        framing the bytes up to LF, end of stream or silence. No answer fails
        ``requirement``. Uses ``conn``, or a connection of its own closed
        afterwards.

        On a legacy connection of its own the request is followed by a
        half-close, so that the answer ends when the server closes (as the
        tutorial's server does, and ABP-FRAME-5 requires) rather than after a
        quiet period: it is the only request on that connection anyway."""
        data = self._framed(request)
        try:
            return self._exchange(requirement, data, conn, address, timeout)
        except (WireError, LineOverflow) as exc:
            self._no_answer(requirement, exc, f"no answer to {data[:60]!r}", timeout)

    def _framed(self, request: Request | bytes) -> bytes:
        self._remember(request)
        if isinstance(request, bytes):
            return request if self.target.legacy else request + b"\n"
        return self.target.frame(request)

    def _exchange(
        self,
        requirement: str,
        data: bytes,
        conn: RawConnection | None,
        address: tuple[str, int] | None,
        timeout: float | None,
    ) -> bytes:
        own = conn is None
        if conn is None:
            conn = self.raw(requirement, address=address, connect_timeout=timeout)
        try:
            conn.send(data)
            if not self.target.legacy:
                return conn.read_line(timeout)
            if own and self.target.tls is None:  # TLS has no half-close: the quiet period
                conn.shutdown_write()
            return conn.read_legacy(timeout)
        finally:
            if own:
                conn.close()

    def expect(
        self,
        requirement: str,
        request: Request | bytes,
        expected: Expected,
        summary: str,
        *,
        by: By,
        conn: RawConnection | None = None,
        address: tuple[str, int] | None = None,
        timeout: float | None = None,
    ) -> bytes:
        """Fail ``requirement`` unless ``request`` is answered ``expected``,
        compared ``by="bytes"`` (a CR before the LF aside) or ``by="meaning"``.
        An ``Error`` expected for a raw request line stands for every error
        section 4 allows for that line (``refusal``)."""
        if isinstance(request, bytes) and isinstance(expected, Error):
            seen = self.line_seen(request)
            if expected in applicable_errors(seen):
                expected = refusal(seen)
        line = self.answer(requirement, request, conn=conn, address=address, timeout=timeout)
        self.judge(requirement, expected, line, summary, by=by)
        return line

    def line_seen(self, request: bytes) -> bytes:
        """The request line the server reads when the suite sends ``request``
        (bytes, no terminator) in its framing: a CR before the added LF goes."""
        return request if self.target.legacy else line_content(request + b"\n")

    def accepts(self, expected: Expected, line: bytes, *, by: By) -> bool:
        """Whether ``line`` is an acceptable answer where ``expected`` is
        expected, compared ``by`` bytes or by meaning (noted in the transcript)."""
        if line_matches(expected, line):
            return True
        if by == "meaning" and same_meaning(expected, decode(line, legacy=True), self._stored):
            self.transcript.note(
                "--",
                f"answer judged by its meaning; its form is {form_requirement(expected)}'s test",
            )
            return True
        return False

    def judge(
        self, requirement: str, expected: Expected, line: bytes, summary: str, *, by: By
    ) -> None:
        """Fail ``requirement`` unless ``line`` is acceptable for ``expected``."""
        if self.accepts(expected, line, by=by):
            return
        if isinstance(decode(line, legacy=True), LegacyReply):
            summary += " (the answer is free text, not an ABP/1 answer)"
        fail(requirement, summary, expected=wire_form(expected), actual=line)

    def _remember(self, request: Request | bytes) -> None:
        """An entry this test may have stored: free text equal to it is never
        taken for "no entry" (see ``same_meaning``)."""
        if isinstance(request, Add):
            self._stored.add(request.entry)
        elif isinstance(request, bytes) and b"," in request:  # perhaps an add, cased oddly
            self._stored.add(request.partition(b",")[2].decode("utf-8", "replace"))

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
        try:
            return conn.read_lines(count, timeout)
        except (WireError, LineOverflow) as exc:
            self._no_answer(requirement, exc, f"{summary} ({count} lines)", timeout)

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
            where = f"{summary}: answer {i + 1} of {len(expected)}"
            try:
                lines.append(conn.read_line(timeout))
            except (WireError, LineOverflow) as exc:
                self._no_answer(requirement, exc, where, timeout)
            if not line_matches(want, lines[-1]):
                fail(requirement, f"{where} is wrong", expected=wire_form(want), actual=lines[-1])
        return lines

    def _no_answer(
        self,
        requirement: str,
        exc: WireError | LineOverflow,
        summary: str,
        timeout: float | None = None,
    ) -> NoReturn:
        """Turn a failed read into the failure of ``requirement`` (or of
        ABP-FRAME-1 when the answer came without its LF)."""
        if isinstance(exc, Unterminated | LineOverflow):
            fail(
                "ABP-COUNTER-4" if self.target.service == "counter" else "ABP-FRAME-1",
                f"{summary}: the answer is not terminated by LF",
                expected="one line ending with LF",
                actual=exc.partial,
            )
        if isinstance(exc, WireTimeout):
            self.met_silence = True
        why = on_the_wire(exc, self.target.timeout if timeout is None else timeout)
        fail(requirement, f"{summary}: {why}")

    # -- what belongs to one test
    def probe(self) -> None:
        """Health probe: a fresh connection gets an answer to a fresh request.

        Closes the test's connections first (it ends an abusive test), so that
        a server serving one client at a time can get to the probe."""
        self.close()
        request: Request | bytes = Find(self.name("probe"))
        if self.target.service == "counter":
            request = b"health probe"
        try:
            self._exchange("ABP-CONN-6", self._framed(request), None, None, None)
        except (WireError, LineOverflow) as exc:
            fail(
                "ABP-CONN-6",
                f"health probe after the test failed: the server no longer answers ({exc})",
            )

    def needs_half_close(self) -> None:
        """Skip the test when the target is reached over TLS: a ``close_notify``
        ends the whole session, so ABP-FRAME-5 does not apply there (spec section 9)."""
        if self.target.tls is not None:
            pytest.skip("TLS has no half-close (docs/spec.md section 9): ABP-FRAME-5 is plain TCP")

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
                    fail("ABP-TRANSPORT-1", f"the private server did not start: {exc}")
                yield process
