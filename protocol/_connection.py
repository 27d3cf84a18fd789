"""Sans-I/O connections: bytes in, events out; events in, bytes out.

The I/O shell feeds ``receive_data(data, now)`` with what it read (b"" for end
of stream), calls ``expire(now)`` once ``deadline()`` has passed, and writes
what ``send`` returns. Nothing here touches a socket or reads a clock.

Who is at fault decides the error type: a bad *request* from the peer becomes
an ``InvalidRequest`` event (its answer attached) so that pipelined answers
keep their order; a bad *response* raises ``RemoteProtocolError``; a misuse by
the caller raises ``LocalProtocolError``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Generic, TypeAlias, TypeVar

from protocol import _codec
from protocol._codec import check_request
from protocol._errors import LocalProtocolError, RemoteProtocolError
from protocol._events import (
    REQUEST_TOO_LONG,
    ConnectionClosed,
    CounterReply,
    CounterRequest,
    Error,
    InvalidRequest,
    LegacyReply,
    Ok,
    Request,
    Response,
    ServerBusy,
)
from protocol._framing import Frame, LineFrame, LineReader
from protocol._schema import MAX_REQUEST_LINE, MAX_RESPONSE_LINE

#: ABP-FRAME-6: the default quiet period, in seconds.
DEFAULT_QUIET_PERIOD = 0.1

ServerEvent: TypeAlias = Request | CounterRequest | InvalidRequest | ConnectionClosed
ClientEvent: TypeAlias = Ok | Error | LegacyReply | CounterReply | ConnectionClosed
EventT = TypeVar("EventT")


def _too_long(size: int) -> InvalidRequest:
    error = RemoteProtocolError(
        f"request line of {size}+ bytes exceeds {MAX_REQUEST_LINE}",
        "ABP-FRAME-10",
        Error(REQUEST_TOO_LONG),
    )
    return InvalidRequest(error, b"")


class _LineConnection(Generic[EventT]):
    """What both sides share: a ``LineReader``, end of stream, the quiet period.

    Subclasses turn complete frames into their events in ``_events``.
    """

    #: The requirement a caller breaks by feeding data after end of stream.
    _after_eof_requirement = "ABP-FRAME-5"

    def __init__(self, reader: LineReader) -> None:
        self._reader = reader
        self._closed_by_peer = False

    def receive_data(self, data: bytes, now: float = 0.0) -> list[EventT | ConnectionClosed]:
        """Feed bytes read from the socket; b"" means the peer closed its side.

        At end of stream the buffered bytes with no LF form a last, legacy
        line (ABP-FRAME-5 for requests, ABP-FRAME-8 for answers).
        """
        if self._closed_by_peer:
            if data:
                raise LocalProtocolError(
                    "data fed after end of stream", self._after_eof_requirement
                )
            return []
        if not data:
            self._closed_by_peer = True
            events: list[EventT | ConnectionClosed] = list(self._events(self._reader.feed_eof()))
            events.append(ConnectionClosed())
            return events
        return list(self._events(self._reader.feed(data, now)))

    def deadline(self) -> float | None:
        """The time at which ``expire`` has a legacy line to hand out (ABP-FRAME-6)."""
        return self._reader.deadline()

    def expire(self, now: float) -> list[EventT | ConnectionClosed]:
        """Call once ``deadline()`` has passed (typed like ``receive_data``)."""
        return list(self._events(self._reader.expire(now)))

    @property
    def peer_closed(self) -> bool:
        return self._closed_by_peer

    def _events(self, frames: Sequence[Frame]) -> list[EventT]:
        raise NotImplementedError


class ServerConnection(_LineConnection["Request | CounterRequest | InvalidRequest"]):
    """The server side of one ABP/1 (or counter service) connection.

    ``counter=True`` turns every line into a ``CounterRequest`` (section 7).
    """

    def __init__(
        self,
        *,
        counter: bool = False,
        quiet_period: float | None = DEFAULT_QUIET_PERIOD,
        max_line: int = MAX_REQUEST_LINE,
    ) -> None:
        super().__init__(LineReader(max_line, quiet_period))
        self.counter = counter
        self._unanswered = 0

    def _events(self, frames: Sequence[Frame]) -> list[Request | CounterRequest | InvalidRequest]:
        events: list[Request | CounterRequest | InvalidRequest] = []
        for frame in frames:
            self._unanswered += 1
            if not isinstance(frame, LineFrame):
                events.append(_too_long(frame.size))
            elif self.counter:
                events.append(CounterRequest(frame.data))
            else:
                try:
                    events.append(_codec.decode_request(frame.data))
                except RemoteProtocolError as exc:
                    events.append(InvalidRequest(exc, frame.data))
        return events

    # -- output
    @property
    def unanswered(self) -> int:
        """Requests handed out as events and not yet answered."""
        return self._unanswered

    def send(self, response: Response) -> bytes:
        """Bytes for one answer. Answers go out in request order (ABP-CONN-2)."""
        if isinstance(response, ServerBusy):
            return _codec.encode_response(response)  # ABP-CONN-8: may precede any request
        if self._unanswered <= 0:
            raise LocalProtocolError("an answer with no request to answer", "ABP-FRAME-1")
        if self.counter != isinstance(response, CounterReply) and not isinstance(response, Error):
            raise LocalProtocolError(
                f"{response!r} is not an answer of this service", "ABP-FRAME-1"
            )
        data = _codec.encode_response(response)
        self._unanswered -= 1
        return data


class ClientConnection(_LineConnection["Ok | Error | LegacyReply | CounterReply"]):
    """The client side: requests out, answers in (ABP-FRAME-7, ABP-FRAME-8).

    ``legacy=True`` talks to tutorial-era servers: requests carry no
    terminator (so one is sent at a time), and an answer ends at LF, at end of stream or after
    ``quiet_period`` seconds of silence; free-text answers become
    ``LegacyReply``. ``counter=True`` expects the counter service's answers.
    """

    def __init__(
        self,
        *,
        legacy: bool = False,
        counter: bool = False,
        quiet_period: float | None = None,
        max_line: int = MAX_RESPONSE_LINE,
    ) -> None:
        if legacy and quiet_period is None:
            quiet_period = DEFAULT_QUIET_PERIOD
        super().__init__(LineReader(max_line, quiet_period if legacy else None))
        self.legacy = legacy
        self.counter = counter
        self._outstanding = 0
        self._deferred: RemoteProtocolError | None = None

    @property
    def outstanding(self) -> int:
        """Requests sent and not yet answered."""
        return self._outstanding

    def send(self, request: Request | bytes) -> bytes:
        """Bytes for one request; ``bytes`` is a counter-service line."""
        if self._closed_by_peer:
            raise LocalProtocolError("the server closed the connection", "ABP-CONN-9")
        if self.legacy and self._outstanding:
            # Unterminated requests end only by silence or half-close: a second
            # one sent now would run into the first.
            raise LocalProtocolError("legacy requests cannot be pipelined", "ABP-FRAME-2")
        if isinstance(request, bytes):
            if not self.counter:
                raise LocalProtocolError("raw lines are for the counter service", "ABP-FRAME-2")
            if b"\n" in request:
                raise LocalProtocolError("a line cannot hold LF", "ABP-FRAME-2")
            data = request + (b"" if self.legacy else b"\n")
        else:
            check_request(request)
            data = _codec.encode_request(request)
            if self.legacy:
                data = data[:-1]  # the tutorial's client sends no terminator
        self._outstanding += 1
        return data

    _after_eof_requirement = "ABP-FRAME-7"

    def receive_data(self, data: bytes, now: float = 0.0) -> list[Response | ConnectionClosed]:
        self._raise_deferred()
        return super().receive_data(data, now)

    def expire(self, now: float) -> list[Response | ConnectionClosed]:
        self._raise_deferred()
        return super().expire(now)

    def _raise_deferred(self) -> None:
        """A violation that followed good answers in one chunk is raised on the
        next call, after those answers were handed out (none is lost)."""
        error, self._deferred = self._deferred, None
        if error is not None:
            raise error

    def _events(self, frames: Sequence[Frame]) -> list[Response]:
        events: list[Response] = []
        try:
            self._decode(frames, events)
        except RemoteProtocolError as exc:
            if not events:
                raise
            self._deferred = exc
        return events

    def _decode(self, frames: Sequence[Frame], events: list[Response]) -> None:
        for frame in frames:
            if not isinstance(frame, LineFrame):
                raise RemoteProtocolError(f"response line of {frame.size}+ bytes", "ABP-FRAME-14")
            event: Response
            # A counter server answers long lines with "ERROR: Request too long"
            # (ABP-COUNTER-4) and may refuse with "ERROR: Server busy" (ABP-CONN-8).
            if self.counter and not frame.data.startswith(b"ERROR:"):
                event = _codec.decode_counter_reply(frame.data)
            else:
                event = _codec.decode_response(frame.data, legacy=self.legacy)
            if self._outstanding == 0:
                if isinstance(event, ServerBusy):
                    events.append(event)  # ABP-CONN-8: a refusal before any request
                    continue
                raise RemoteProtocolError(
                    f"an answer to no request: {frame.data[:80]!r}", "ABP-FRAME-1"
                )
            self._outstanding -= 1
            events.append(event)
