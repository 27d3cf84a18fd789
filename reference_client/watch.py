"""What the checking proxy sees, judged: sans-I/O, time passed in.

One ``Watch`` per proxied connection is fed the bytes of both directions
(``from_client``, ``from_server``, their ends of stream, ``expire``) and
returns ``Sighting`` events: each request and answer decoded, with the
latency of the exchange, and every violation of the spec it shows, named by
requirement ID and by who is at fault. A ``Book`` shared by every ``Watch`` of
one proxy remembers the writes acknowledged through it, so that a ``fnd``
that misses one is seen whichever connection it came on (ABP-DUR-4).

The bytes are never changed here: the proxy forwards them before it asks.
"""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass, field
from typing import Any

from protocol import (
    DEFAULT_QUIET_PERIOD,
    MAX_REQUEST_LINE,
    MAX_RESPONSE_LINE,
    Add,
    Error,
    Find,
    Ok,
    RemoteProtocolError,
    Remove,
    Request,
    Response,
    ServerBusy,
)
from protocol.codec import (
    REQUEST_TOO_LONG,
    Frame,
    LineFrame,
    LineReader,
    applicable_errors,
    decode_request,
    decode_response,
    no_entry,
)
from protocol.escape import escape

#: Who a violation is the fault of.
CLIENT, SERVER = "client", "server"
#: Requests waiting for their answers on one connection before judging stops
#: there (the bytes are still forwarded): memory stays bounded.
MAX_PENDING = 10_000
#: Names whose last acknowledged write the ``Book`` remembers (oldest forgotten).
MAX_KNOWN = 100_000


@dataclass(frozen=True, slots=True)
class Sighting:
    """One thing the proxy saw, for people (``text``) and for ``--json``."""

    time: float  # seconds, on the clock the caller passes in
    conn: int  # the proxied connection's number, from 1
    kind: str  # "open", "request", "answer", "violation", "close", "note"
    text: str  # the line, escaped, or what the event is
    requirement: str | None = None  # violations: the requirement broken
    party: str | None = None  # violations: CLIENT or SERVER
    latency: float | None = None  # answers: seconds since the request was complete

    def as_json(self) -> dict[str, Any]:
        record: dict[str, Any] = {"t": round(self.time, 6), "conn": self.conn, "event": self.kind}
        record["text"] = self.text
        if self.requirement is not None:
            record["requirement"] = self.requirement
            record["party"] = self.party
        if self.latency is not None:
            record["latency_ms"] = round(self.latency * 1000, 3)
        return record

    def render(self, start: float = 0.0) -> str:
        stamp = f"+{self.time - start:.4f}s #{self.conn}"
        if self.kind == "request":
            return f"{stamp} >> {self.text}"
        if self.kind == "answer":
            took = "" if self.latency is None else f"  ({self.latency * 1000:.2f} ms)"
            return f"{stamp} << {self.text}{took}"
        if self.kind == "violation":
            return f"{stamp} !! {self.requirement} ({self.party}) {self.text}"
        return f"{stamp} -- {self.text}"


@dataclass
class _Known:
    """What the last acknowledged write of a name left: its entry, or None (removed)."""

    entry: str | None
    said: str  # for the message: "add:alice,x acknowledged on #2 at +1.2345s"


@dataclass
class Book:
    """Writes acknowledged through the proxy, on every connection (ABP-DUR-4)."""

    known: dict[str, _Known] = field(default_factory=dict)
    in_flight: collections.Counter[str] = field(default_factory=collections.Counter)
    writes_sent: collections.Counter[str] = field(default_factory=collections.Counter)

    def sent(self, request: Request) -> tuple[_Known, int] | None:
        """Note a request; for a ``fnd``, what it must see (None: nothing sure)."""
        if isinstance(request, Add | Remove):
            self.in_flight[request.name] += 1
            self.writes_sent[request.name] += 1
            return None
        if isinstance(request, Find) and not self.in_flight[request.name]:
            known = self.known.get(request.name)
            if known is not None:
                return known, self.writes_sent[request.name]
        return None

    def answered(self, request: Request, answer: Response, said: str) -> None:
        if not isinstance(request, Add | Remove):
            return
        self.in_flight[request.name] -= 1
        if len(self.known) >= MAX_KNOWN:
            del self.known[next(iter(self.known))]
        if isinstance(request, Add) and isinstance(answer, Ok):
            self.known[request.name] = _Known(request.entry, said)
        elif isinstance(request, Remove) and (
            isinstance(answer, Ok) or answer == no_entry(request.name)
        ):
            self.known[request.name] = _Known(None, said)

    def missed(
        self, request: Find, answer: Response, expected: tuple[_Known, int] | None
    ) -> str | None:
        """Why ``answer`` misses an acknowledged write, or None."""
        if expected is None:
            return None
        known, writes = expected
        if self.writes_sent[request.name] != writes:
            return None  # a write sent meanwhile: either state may be seen
        if known.entry is None:
            if isinstance(answer, Ok):
                return f"fnd:{request.name} found an entry after {known.said}"
            return None
        if answer != Ok(known.entry):
            return f"fnd:{request.name} did not see {known.said}"
        return None


@dataclass
class _Pending:
    line: bytes
    request: Request | None  # None: not a valid request
    complete: float  # when its last byte arrived
    expected: tuple[_Known, int] | None


class Watch:
    """Both directions of one proxied connection, judged as they pass."""

    def __init__(
        self, conn: int, book: Book, *, quiet_period: float = DEFAULT_QUIET_PERIOD
    ) -> None:
        self.conn = conn
        self.book = book
        self.quiet_period = quiet_period
        self._requests = LineReader(MAX_REQUEST_LINE, quiet_period)
        self._answers = LineReader(MAX_RESPONSE_LINE, quiet_period)
        self._pending: collections.deque[_Pending] = collections.deque()
        # After "Request too long" (ABP-FRAME-11) or "Server busy" (ABP-CONN-8)
        # a server may close with requests unanswered.
        self._may_close = False
        self._given_up = False  # past MAX_PENDING: forwarded, no longer judged

    # ------------------------------------------------------------ input
    def opened(self, now: float, peer: str) -> list[Sighting]:
        return [Sighting(now, self.conn, "open", f"client {peer} connected")]

    def from_client(self, data: bytes, now: float) -> list[Sighting]:
        if self._given_up:
            return []
        if len(self._pending) >= MAX_PENDING:
            self._given_up = True
            text = f"{MAX_PENDING} requests unanswered: no more judging on this connection"
            return [Sighting(now, self.conn, "note", text)]
        return self._requests_in(self._requests.feed(data, now), now, ended="")

    def from_server(self, data: bytes, now: float) -> list[Sighting]:
        if self._given_up:
            return []
        # Bytes from the server while no request is waiting for its answer, and
        # the client's bytes hold no LF: the client sent a request with no
        # terminator and the server took it as one. (With requests waiting,
        # the bytes answer those: a request split across segments is no fault.)
        out = [] if self._pending else self._flush_requests(now, "the server answered it")
        return out + self._answers_in(self._answers.feed(data, now), now, ended="")

    def client_closed(self, now: float) -> list[Sighting]:
        if self._given_up:
            return [Sighting(now, self.conn, "close", "client closed its side")]
        frames = self._requests.feed_eof()
        out = self._requests_in(frames, now, ended="ended by the client's half-close")
        if self._answers.buffered:  # the client took what came as the whole answer
            frames = self._answers.expire(math.inf)
            out += self._answers_in(frames, now, ended="the client closed after it")
        return [*out, Sighting(now, self.conn, "close", "client closed its side")]

    def server_closed(self, now: float) -> list[Sighting]:
        if self._given_up:
            return [Sighting(now, self.conn, "close", "server closed its side")]
        out = self._flush_requests(now, "the server closed on it")
        frames = self._answers.feed_eof()
        out += self._answers_in(frames, now, ended="ended by the server closing")
        waiting = len(self._pending)
        if waiting and not self._may_close:
            text = f"closed with {waiting} request(s) unanswered"
            out.append(self._violation(now, "ABP-FRAME-1", SERVER, text))
        return [*out, Sighting(now, self.conn, "close", "server closed its side")]

    def deadline(self) -> float | None:
        """When ``expire`` has an unterminated line to judge."""
        if self._given_up:
            return None
        # Only requests end by silence (ABP-FRAME-6, as a server reads them); an
        # answer may arrive as slowly as it likes (ABP-FRAME-14), and one with no
        # LF ends only with the connection (ABP-FRAME-8).
        return self._requests.deadline()

    def expire(self, now: float) -> list[Sighting]:
        if self._given_up:
            return []
        return self._requests_in(self._requests.expire(now), now, ended="ended by silence")

    def finish(self, now: float) -> list[Sighting]:
        """The connection is gone: what is left unterminated on either side."""
        if self._given_up:
            return []
        out = self._flush_requests(now, "ended by the connection closing")
        if self._answers.buffered:
            frames = self._answers.expire(math.inf)
            out += self._answers_in(frames, now, ended="ended by the connection closing")
        return out

    # ------------------------------------------------------------ judging
    def _flush_requests(self, now: float, why: str) -> list[Sighting]:
        if not self._requests.buffered:
            return []
        return self._requests_in(self._requests.expire(math.inf), now, ended=why)

    def _violation(self, now: float, requirement: str, party: str, text: str) -> Sighting:
        return Sighting(now, self.conn, "violation", text, requirement, party)

    def _requests_in(self, frames: list[Frame], now: float, *, ended: str) -> list[Sighting]:
        out: list[Sighting] = []
        for frame in frames:
            if not isinstance(frame, LineFrame):
                out.append(Sighting(now, self.conn, "request", f"({frame.size}+ bytes)"))
                self._pending.append(_Pending(b"x" * (MAX_REQUEST_LINE + 1), None, now, None))
                continue
            out.append(Sighting(now, self.conn, "request", escape(frame.data + frame.terminator)))
            if not frame.terminator:
                out.append(
                    self._violation(now, "ABP-FRAME-2", CLIENT, f"request with no LF ({ended})")
                )
            try:
                request: Request | None = decode_request(frame.data)
            except RemoteProtocolError as exc:
                request = None
                out.append(
                    self._violation(
                        now, "ABP-FRAME-2", CLIENT, f"not a valid request: {exc.message}"
                    )
                )
            expected = self.book.sent(request) if request is not None else None
            self._pending.append(_Pending(frame.data, request, now, expected))
        return out

    def _answers_in(self, frames: list[Frame], now: float, *, ended: str) -> list[Sighting]:
        out: list[Sighting] = []
        for frame in frames:
            if not isinstance(frame, LineFrame):
                text = f"answer line of {frame.size}+ bytes, over {MAX_RESPONSE_LINE}"
                out.append(self._violation(now, "ABP-FRAME-14", SERVER, text))
                continue
            if not self._pending:  # a second answer in one chunk, to unterminated bytes
                out += self._flush_requests(now, "the server answered it")
            pending = self._pending.popleft() if self._pending else None
            latency = None if pending is None else now - pending.complete
            shown = escape(frame.data + frame.terminator)
            out.append(Sighting(now, self.conn, "answer", shown, latency=latency))
            if not frame.terminator:
                out.append(
                    self._violation(now, "ABP-FRAME-1", SERVER, f"answer with no LF ({ended})")
                )
            try:
                answer: Response | None = decode_response(frame.data)
            except RemoteProtocolError as exc:
                answer = None
                out.append(
                    self._violation(
                        now,
                        exc.requirement or "ABP-RESP-1",
                        SERVER,
                        f"not one of section 4's forms: {exc.message}",
                    )
                )
            if pending is None:
                self._may_close |= isinstance(answer, ServerBusy)
                if not isinstance(answer, ServerBusy):  # ABP-CONN-8: may precede any request
                    out.append(self._violation(now, "ABP-FRAME-1", SERVER, "answer to no request"))
                continue
            if answer is not None:
                self._may_close |= answer in (Error(REQUEST_TOO_LONG), ServerBusy())
                out.extend(self._judge(pending, answer, now))
        return out

    def _judge(self, pending: _Pending, answer: Response, now: float) -> list[Sighting]:
        request = pending.request
        if request is None:
            allowed = applicable_errors(pending.line)
            if isinstance(answer, ServerBusy) or answer in allowed:
                return []
            texts = " or ".join(sorted(f"'ERROR: {e.text}'" for e in allowed))
            return [self._violation(now, "ABP-RESP-3", SERVER, f"the answer should be {texts}")]
        said = f"'{escape(pending.line)}' acknowledged on #{self.conn} at +{now:.4f}s"
        self.book.answered(request, answer, said)
        if isinstance(request, Find):
            missed = self.book.missed(request, answer, pending.expected)
            if missed is not None:
                return [self._violation(now, "ABP-DUR-4", SERVER, missed)]
        wrong_no_entry = (
            isinstance(request, Find | Remove)
            and isinstance(answer, Error)
            and answer.text.startswith("No entry")
            and answer != no_entry(request.name)
        )
        if wrong_no_entry:
            text = f"should be 'ERROR: {no_entry(request.name).text}'"
            return [self._violation(now, "ABP-RESP-4", SERVER, text)]
        return []


__all__ = ["CLIENT", "SERVER", "Book", "Sighting", "Watch"]
