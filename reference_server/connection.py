"""One client connection: ``protocol.ServerConnection`` behind an ``asyncio.Protocol``.

Theory of operation
-------------------
Bytes read go to ``receive_data(chunk, loop.time())``, its events are handled
in order, and what ``send`` returns is written (h11's trio example, hypercorn's
``tcp_server``). The legacy quiet period (ABP-FRAME-6) is one timer armed while
``deadline()`` is set; end of stream (ABP-FRAME-5) is ``receive_data(b"")``.

Answers leave in request order (ABP-CONN-2) even while changes wait for their
commit: a connection keeps the requests it could not answer yet in a queue
and writes the head as soon as it is known. A ``fnd`` is answered from the
store's mirror when it arrives (no thread hop, no await), except behind
changes of its own connection still in flight: then it joins the store's
queue (``find_after``) and sees exactly the changes sent before it.

No client holds up another (ABP-CONN-5). A chunk of input that cannot be
handled at once (big, or behind a backlog) goes to the connection's inbox;
``Turns`` hands out the inboxes round-robin, ``SLICE`` bytes a visit and at
most ``TURN_BUDGET`` bytes for every connection together per turn of the
event loop, so a bystander's request waits for one bounded turn whatever
fifty pipelining clients do. A client that does not read its answers stops
being read (transport flow control, and a small kernel send buffer:
``SEND_BUFFER``) instead of growing our buffers, and is closed once idle past
the idle timeout. A request line must reach its LF within the line timeout
of its first byte (slowloris); a legacy request ended by the quiet period is
complete, so the rule never applies to it.

The state
---------
The life of a connection is one ``Phase``; every change of phase goes
through ``Connection._move`` and the table ``TRANSITIONS`` (h11's
``_state.py``): a cause that has no entry for the current phase is a bug of
this module and raises. What lives in the table: where a connection is in its
life (admitted or refused, taking input, draining its queue, closing, gone).
What does not: back-pressure, which is two facts about the transport (it
asked us to stop writing: ``_write_paused``; we asked it to stop reading:
``transport.is_reading()``), and the work in progress (the inbox, the queue,
the timers), which is data, not state.

The table, as ``TRANSITIONS`` holds it (``test_the_docstring_table_is_the_table``
keeps the two equal)::

    phase           cause              next phase
    NEW             ADMIT              OPEN
    NEW             REFUSE             REFUSED
    OPEN            EOF_BEHIND_INBOX   ENDING
    OPEN            INPUT_ENDED        DRAINING
    ENDING          INPUT_ENDED        DRAINING
    any but CLOSED  CLOSE              CLOSING
    any but CLOSED  LOST               CLOSED

The common case, a ``fnd`` on a connection with nothing queued, is the hot
path: it reads the clock once per chunk read, builds no timer, logs nothing
unless ``--verbose``, and answers every line of the chunk in one write. The
idle timer is not moved per request: it fires when first due and re-arms
itself from the time of the last activity.

This module never imports ``reference_server.server``: the listener is seen
through the small ``Listener`` protocol below.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
import logging
import socket
from collections import deque
from typing import Any, Protocol, cast

from protocol import (
    Add,
    ConnectionClosed,
    CounterReply,
    CounterRequest,
    Error,
    Find,
    InvalidRequest,
    Ok,
    Remove,
    Response,
    ServerBusy,
    ServerConnection,
    ServerEvent,
)
from protocol.codec import MEMO_MAX_BYTES, MEMO_SIZE, no_entry
from reference_server.settings import Settings
from reference_server.store import Store

#: The answer to a change the store could not save. Not a standard text
#: (section 4 has none for it); it starts with ``ERROR: `` as every error must.
STORE_FAILED = "Internal error: the change was not saved"
#: Bytes of one client handled per visit of ``Turns``.
SLICE = 1024
#: Bytes of input handled from inboxes, all connections together, per loop turn.
TURN_BUDGET = 8192
#: Bytes read and not yet handled before we stop reading from a client.
INBOX_LIMIT = 65536
#: Requests a connection may have queued before we stop handling its input.
MAX_QUEUED = 4096
#: Bytes of answers the transport holds for a client before we stop handling
#: its input (asyncio's high-water mark), and the kernel send buffer asked
#: for: what a client that never reads can make us produce is bounded by these.
OUTBOX_LIMIT = 16384
SEND_BUFFER = 32768
#: How long a refused connection (ABP-CONN-8) may linger to read its answer.
REFUSED_LINGER = 2.0
#: How many refused connections may linger at once (each holds a descriptor,
#: within the spare ones of ``__main__.FD_SPARE``); past it, a refused
#: connection gets its busy line and is closed at once (a flood of connects
#: past the limit costs no more descriptors than this).
MAX_LINGERING = 32

log = logging.getLogger("abp-server")

_OK = Ok()
_BUSY = ServerBusy()
_ok_memo = functools.lru_cache(maxsize=MEMO_SIZE)(Ok)
_no_entry_memo = functools.lru_cache(maxsize=MEMO_SIZE)(no_entry)


def _found(entry: str) -> Ok:
    """``Ok(entry)``, memoised as the codec does: bounded, short texts only."""
    return _ok_memo(entry) if len(entry) <= MEMO_MAX_BYTES else Ok(entry)


def _not_found(name: str) -> Error:
    return _no_entry_memo(name) if len(name) <= MEMO_MAX_BYTES else no_entry(name)


class Phase(enum.Enum):
    """Where a connection is in its life."""

    #: Built by the listener; ``connection_made`` not called yet.
    NEW = "new"
    #: Served: reading requests and answering them in order.
    OPEN = "open"
    #: The peer's end of stream has been read, behind input not handled yet.
    ENDING = "ending"
    #: No more input will be handled: answer what is queued, then close.
    DRAINING = "draining"
    #: Past a limit (ABP-CONN-8): ``ERROR: Server busy`` written, lingering
    #: so that the client can read it, then closed.
    REFUSED = "refused"
    #: ``close`` or ``abort`` called on the transport; waiting for it to end.
    CLOSING = "closing"
    #: ``connection_lost``: nothing happens any more.
    CLOSED = "closed"


class Cause(enum.Enum):
    """What moves a connection from one phase to another."""

    #: ``connection_made``, and the listener's limits let it in.
    ADMIT = "admit"
    #: ``connection_made``, past ``--max-conns`` or ``--max-conns-per-ip``.
    REFUSE = "refuse"
    #: ``eof_received`` while the inbox still holds unhandled bytes.
    EOF_BEHIND_INBOX = "eof behind inbox"
    #: No more requests: end of stream handled (``ConnectionClosed``), the
    #: server shutting down, or the line timeout passed.
    INPUT_ENDED = "input ended"
    #: We close (queue answered, idle, linger over) or abort the transport.
    CLOSE = "close"
    #: ``connection_lost``.
    LOST = "lost"


_P, _C = Phase, Cause
#: Every allowed change of phase; anything else is a bug of this module.
TRANSITIONS: dict[Phase, dict[Cause, Phase]] = {
    _P.NEW: {_C.ADMIT: _P.OPEN, _C.REFUSE: _P.REFUSED, _C.CLOSE: _P.CLOSING, _C.LOST: _P.CLOSED},
    _P.OPEN: {
        _C.EOF_BEHIND_INBOX: _P.ENDING,
        _C.INPUT_ENDED: _P.DRAINING,
        _C.CLOSE: _P.CLOSING,
        _C.LOST: _P.CLOSED,
    },
    _P.ENDING: {_C.INPUT_ENDED: _P.DRAINING, _C.CLOSE: _P.CLOSING, _C.LOST: _P.CLOSED},
    _P.DRAINING: {_C.CLOSE: _P.CLOSING, _C.LOST: _P.CLOSED},
    _P.REFUSED: {_C.CLOSE: _P.CLOSING, _C.LOST: _P.CLOSED},
    _P.CLOSING: {_C.CLOSE: _P.CLOSING, _C.LOST: _P.CLOSED},
    _P.CLOSED: {},
}
#: Phases in which input is still taken from the client.
_TAKING_INPUT = frozenset({Phase.OPEN, Phase.ENDING})


class Listener(Protocol):
    """What a connection needs of the server that accepted it."""

    settings: Settings
    store: Store | None
    turns: Turns

    def admit(self, connection: Connection, host: str) -> int | None:
        """The connection's number (from 1), or None: refuse it (ABP-CONN-8)."""

    def forget(self, connection: Connection) -> None:
        """The connection is gone (whether it was admitted or refused)."""

    def lingering(self) -> int:
        """Refused connections not gone yet (this one included)."""


class _Queued:
    """One request of a connection that waits for its turn to be answered:
    a change or a ``fnd`` behind one waits for its ``future``; any other
    request has its ``response`` already."""

    __slots__ = ("event", "future", "response")

    def __init__(
        self,
        event: ServerEvent,
        future: asyncio.Future[Any] | None = None,
        response: Response | None = None,
    ) -> None:
        self.event = event
        self.future = future
        self.response = response


class Turns:
    """Round-robin over the connections with unhandled input: each visit
    handles one ``SLICE`` of one inbox, and one turn of the event loop at most
    ``TURN_BUDGET`` bytes for all of them together (ABP-CONN-5)."""

    def __init__(self) -> None:
        self._waiting: dict[Connection, None] = {}  # insertion order: the round
        self._scheduled = False

    def __len__(self) -> int:
        return len(self._waiting)

    def want(self, connection: Connection) -> None:
        """``connection`` has input to handle: give it a visit soon."""
        if connection not in self._waiting:
            self._waiting[connection] = None
            if not self._scheduled:
                self._scheduled = True
                asyncio.get_running_loop().call_soon(self._run)

    def drop(self, connection: Connection) -> None:
        self._waiting.pop(connection, None)

    def _run(self) -> None:
        self._scheduled = False
        waiting = self._waiting
        budget = TURN_BUDGET
        while waiting and budget > 0:
            connection = next(iter(waiting))
            del waiting[connection]
            used, more = connection.take_turn()
            budget -= max(used, 1)
            if more:
                waiting[connection] = None  # to the back of the round
        if waiting and not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._run)


class Connection(asyncio.Protocol):
    """One client: a ``ServerConnection``, its phase and its queue of unanswered requests."""

    def __init__(self, listener: Listener, loop: asyncio.AbstractEventLoop) -> None:
        settings = listener.settings
        self._listener = listener
        self._loop = loop
        self._store = listener.store
        self._turns = listener.turns
        self._verbose = settings.verbose
        self._idle_timeout = settings.idle_timeout
        self._line_timeout = settings.line_timeout
        self._protocol = ServerConnection(
            counter=settings.service == "counter", quiet_period=settings.quiet_period
        )
        self.phase = Phase.NEW
        self._transport: asyncio.Transport | None = None
        self._queue: deque[_Queued] = deque()
        self.number = 0  # from 1 once admitted: the counter service's N
        self.host = "?"  # the client's address
        self._port: object = "?"
        self._last_activity = 0.0
        self._line_started: float | None = None  # first byte of an unfinished line
        self._quiet_timer: asyncio.TimerHandle | None = None
        self._line_timer: asyncio.TimerHandle | None = None
        self._idle_timer: asyncio.TimerHandle | None = None  # REFUSED: the linger
        self._write_paused = False  # the transport asked us to stop writing
        self._inbox = bytearray()  # read, not yet handled (see Turns)

    def _move(self, cause: Cause) -> Phase:
        """The one place the phase changes, by the table."""
        try:
            self.phase = TRANSITIONS[self.phase][cause]
        except KeyError:
            raise RuntimeError(f"{self.phase.name}: no transition on {cause.name}") from None
        return self.phase

    @property
    def admitted(self) -> bool:
        return self.number > 0

    # ------------------------------------------------------ asyncio hooks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and len(peer) > 1:
            self.host, self._port = str(peer[0]), peer[1]
        _limit_send_buffer(transport)
        transport.set_write_buffer_limits(high=OUTBOX_LIMIT)
        number = self._listener.admit(self, self.host)
        if number is None:
            self._move(Cause.REFUSE)
            self._refuse()
            return
        self._move(Cause.ADMIT)
        self.number = number
        if self._verbose:
            log.info("Connection %d using port %s", number, self._port)
        self._last_activity = self._loop.time()
        if self._idle_timeout:
            self._idle_timer = self._loop.call_at(
                self._last_activity + self._idle_timeout, self._on_idle
            )

    def data_received(self, data: bytes) -> None:
        if self.phase is not Phase.OPEN:
            return  # refused, draining or closing: read and dropped
        self._last_activity = now = self._loop.time()
        if (
            self._inbox
            or len(data) > SLICE
            or self._write_paused
            or len(self._queue) >= MAX_QUEUED  # not self._may_handle(), inlined
        ):
            self._inbox += data  # handled a slice at a time, in turns
            self._turns.want(self)
            self._update_reading()
        else:
            self._feed(data, now)

    def eof_received(self) -> bool:
        """The peer's end of stream: for plain TCP a half-close, after which
        we answer what it sent, then close (ABP-FRAME-5). TLS has no
        half-close (asyncio closes the transport on ``close_notify`` whatever
        we return): what can be answered at once is answered now."""
        half_open = self._transport is None or (
            self._transport.get_extra_info("sslcontext") is None
        )
        if self.phase is Phase.DRAINING:
            return half_open  # answers still queued: we close once they are written
        if self.phase is not Phase.OPEN:
            return False  # refused or closing: let the transport close
        if self._inbox and half_open:
            self._move(Cause.EOF_BEHIND_INBOX)
            self._turns.want(self)
        else:
            if self._inbox:
                data = bytes(self._inbox)
                self._inbox.clear()
                self._turns.drop(self)
                self._feed(data, self._loop.time())
            self._feed_eof()
        return half_open  # we close once every answer is written

    def connection_lost(self, exc: Exception | None) -> None:
        self._move(Cause.LOST)
        self._cancel_timers()
        self._queue.clear()
        self._inbox.clear()
        self._turns.drop(self)
        self._listener.forget(self)

    def pause_writing(self) -> None:
        self._write_paused = True
        self._update_reading()

    def resume_writing(self) -> None:
        self._write_paused = False
        self._last_activity = self._loop.time()
        if self._inbox or self.phase is Phase.ENDING:
            self._turns.want(self)
        self._update_reading()

    # --------------------------------------------------------------- input
    def _feed(self, data: bytes, now: float) -> None:
        events = self._protocol.receive_data(data, now)
        if data[-1] == 0x0A:  # ends with LF: no line is unfinished
            self._line_started = None
        elif self._line_started is None or 0x0A in data:  # a line began in this chunk
            self._line_started = now
            self._arm_line_timer()  # a timer armed for an earlier line re-arms when due
        if events:
            self._handle(events, now)
        self._arm_quiet_timer()

    def _feed_eof(self) -> None:
        """ABP-FRAME-5: buffered bytes with no LF are the last request."""
        self._line_started = None
        if not self._protocol.peer_closed:
            now = self._loop.time()
            self._handle(self._protocol.receive_data(b"", now), now)

    def _may_handle(self) -> bool:
        return not self._write_paused and len(self._queue) < MAX_QUEUED

    def take_turn(self) -> tuple[int, bool]:
        """``Turns``' visit: handle one slice of the inbox; return the bytes
        handled and whether to come back next round."""
        if self.phase not in _TAKING_INPUT or not self._may_handle():
            return 0, False  # resume_writing or _flush asks for a turn again
        inbox = self._inbox
        used = 0
        if inbox:
            piece = bytes(inbox[:SLICE])
            del inbox[:SLICE]
            used = len(piece)
            self._feed(piece, self._loop.time())
        more = bool(inbox) and self.phase in _TAKING_INPUT
        if not inbox and self.phase is Phase.ENDING:
            self._feed_eof()
        self._update_reading()
        return used, more and self._may_handle()

    # ------------------------------------------------------------ requests
    def _handle(self, events: list[ServerEvent], now: float) -> None:
        """``now``: the clock as read by the caller, once per chunk."""
        out: list[bytes] = []
        queue = self._queue
        verbose = self._verbose
        for event in events:
            if type(event) is Find and not queue and not verbose:
                # The hot path: _answer(event, _response(event)), inlined.
                assert self._store is not None  # only the abp service decodes a Find
                entry = self._store.get(event.name)
                out.append(
                    self._protocol.send(_not_found(event.name) if entry is None else _found(entry))
                )
            elif isinstance(event, (Add, Remove)) or (queue and isinstance(event, Find)):
                queue.append(_Queued(event, self._submit(event)))
            elif isinstance(event, ConnectionClosed):
                self._end_input()
            elif queue:
                queue.append(_Queued(event, response=self._response(event)))
            else:
                out.append(self._answer(event, self._response(event)))
        if out:
            self._write(out, now)
        if not queue:
            if self.phase is Phase.DRAINING:
                self._close()
        elif len(queue) >= MAX_QUEUED:
            self._update_reading()

    def _end_input(self) -> None:
        """No more requests will be taken: answer the queue, then close."""
        if self.phase in _TAKING_INPUT:
            self._move(Cause.INPUT_ENDED)
            self._line_started = None
            self._inbox.clear()
            self._turns.drop(self)
            self._cancel_timer("_quiet_timer")
            self._cancel_timer("_line_timer")
            self._update_reading()

    def _submit(self, event: Add | Remove | Find) -> asyncio.Future[Any]:
        """A change, or a ``fnd`` behind changes of this connection: through
        the store's queue, so that it takes effect (or looks) in order."""
        store = self._store
        assert store is not None  # only the abp service decodes these
        future: asyncio.Future[Any]
        if isinstance(event, Add):
            future = store.put(event.name, event.entry)
        elif isinstance(event, Remove):
            future = store.remove(event.name)
        else:
            future = store.find_after(event.name)
        future.add_done_callback(self._flush)
        return future

    def _flush(self, _: object = None) -> None:
        """Write every answer at the head of the queue that is now known."""
        if self.phase in (Phase.CLOSED, Phase.CLOSING):
            return
        queue = self._queue
        out: list[bytes] = []
        while queue:
            item = queue[0]
            future = item.future
            if future is not None and not future.done():
                break
            queue.popleft()
            out.append(self._answer(item.event, self._outcome(item)))
        if out:
            self._write(out, self._loop.time())
        if not queue and self.phase is Phase.DRAINING:
            self._close()
            return
        if self._inbox or self.phase is Phase.ENDING:
            self._turns.want(self)
        self._update_reading()

    def _answer(self, event: ServerEvent, response: Response) -> bytes:
        if self._verbose:
            shown = event.raw if isinstance(event, InvalidRequest) else event
            log.info("Connection %d: %r -> %r", self.number, shown, response)
        return self._protocol.send(response)

    def _response(self, event: ServerEvent) -> Response:
        """The answer to a request that needs no change: known at once."""
        if isinstance(event, Find):
            assert self._store is not None
            entry = self._store.get(event.name)
            return _not_found(event.name) if entry is None else _found(entry)
        if isinstance(event, InvalidRequest):
            return event.reply
        if isinstance(event, CounterRequest):
            return CounterReply(self.number)
        raise AssertionError(f"{event!r} has no immediate answer")

    def _outcome(self, item: _Queued) -> Response:
        """The answer of a queued item whose future (if any) is done."""
        event, future = item.event, item.future
        if future is None:
            assert item.response is not None
            return item.response
        assert isinstance(event, (Add, Remove, Find))
        error = future.exception()
        if error is not None:
            log.error("Connection %d: %r failed: %s", self.number, event, error)
            return Error(STORE_FAILED)
        result = future.result()
        if isinstance(event, Find):
            return _not_found(event.name) if result is None else _found(result)
        if isinstance(event, Remove) and not result:
            return _not_found(event.name)
        return _OK

    # -------------------------------------------------------------- timers
    def _arm_quiet_timer(self) -> None:
        if self._quiet_timer is None and self.phase is Phase.OPEN:
            deadline = self._protocol.deadline()
            if deadline is not None:
                self._quiet_timer = self._loop.call_at(deadline, self._on_quiet)

    def _on_quiet(self) -> None:
        """ABP-FRAME-6: no byte for the quiet period; buffered bytes are a request."""
        self._quiet_timer = None
        if self.phase is not Phase.OPEN or self._inbox or not self._reading():
            # More of the line may be waiting unread: the timer is armed again
            # once it is fed (_feed) or reading resumes (_update_reading).
            return
        now = self._loop.time()
        events = self._protocol.expire(now)
        if events:
            self._line_started = None  # a legacy request: complete
            self._handle(events, now)
        self._arm_quiet_timer()

    def _arm_line_timer(self) -> None:
        if self._line_timer is None and self._line_timeout and self._line_started is not None:
            self._line_timer = self._loop.call_at(
                self._line_started + self._line_timeout, self._on_line_timeout
            )

    def _on_line_timeout(self) -> None:
        """A request line unfinished ``--line-timeout`` after its first byte:
        read no more from this client, answer what it asked, close."""
        self._line_timer = None
        started, timeout = self._line_started, self._line_timeout
        if self.phase is not Phase.OPEN or started is None or not timeout:
            return
        now = self._loop.time()
        if self._inbox or not self._reading():
            # The rest may be ours to read: the client is not the slow one.
            self._line_started = started = now
        if now < started + timeout:
            self._arm_line_timer()
            return
        if self._verbose:
            log.info("Connection %d: no LF %gs after a line began: closing", self.number, timeout)
        self._end_input()
        if not self._queue:
            self._close()

    def _on_idle(self) -> None:
        """ABP-CONN-7: close a connection idle past the idle timeout."""
        self._idle_timer = None
        timeout = self._idle_timeout
        if self.phase in (Phase.CLOSING, Phase.CLOSED) or not timeout:
            return
        now = self._loop.time()
        # Work in hand keeps a connection alive only while it can progress: a
        # client that stopped reading (our writes paused) holding a backlog is
        # idle, and is closed like any other (ABP-CONN-7, issue 10 item 7).
        busy = bool(self._queue or self._inbox) and not self._write_paused
        due = now + timeout if busy else self._last_activity + timeout
        if due > now:
            self._idle_timer = self._loop.call_at(due, self._on_idle)
            return
        if self._verbose:
            log.info("Connection %d idle for %gs: closing", self.number, timeout)
        transport = self._transport
        if transport is not None and transport.get_write_buffer_size():
            self.abort()  # it does not read: what we hold for it would never leave
        else:
            self._close()

    def _cancel_timer(self, attribute: str) -> None:
        timer: asyncio.TimerHandle | None = getattr(self, attribute)
        if timer is not None:
            timer.cancel()
            setattr(self, attribute, None)

    def _cancel_timers(self) -> None:
        for attribute in ("_quiet_timer", "_line_timer", "_idle_timer"):
            self._cancel_timer(attribute)

    # ------------------------------------------------------------- output
    def _write(self, out: list[bytes], now: float) -> None:
        """One ``transport.write`` for every answer ready: one system call."""
        transport = self._transport
        if transport is None or self.phase in (Phase.CLOSING, Phase.CLOSED):
            return
        if transport.is_closing():
            return  # reset by the peer: connection_lost is on its way
        transport.write(out[0] if len(out) == 1 else b"".join(out))
        self._last_activity = now

    def _reading(self) -> bool:
        transport = self._transport
        return transport is not None and transport.is_reading()

    def _update_reading(self) -> None:
        transport = self._transport
        if transport is None or transport.is_closing() or self.phase is Phase.CLOSED:
            return
        want = self.phase is Phase.OPEN and self._may_handle() and len(self._inbox) < INBOX_LIMIT
        if want != transport.is_reading():
            if want:
                transport.resume_reading()
                self._arm_quiet_timer()
            else:
                transport.pause_reading()

    def _close(self) -> None:
        self._cancel_timers()
        if self.phase in (Phase.CLOSING, Phase.CLOSED):
            return
        self._move(Cause.CLOSE)
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()

    def abort(self) -> None:
        """Close at once, dropping what is unsent (RST)."""
        self._cancel_timers()
        if self.phase is Phase.CLOSED:
            return
        self._move(Cause.CLOSE)
        if self._transport is not None:
            self._transport.abort()

    def _refuse(self) -> None:
        """ABP-CONN-8: ``ERROR: Server busy``, then close our side.

        The client may be gone already (it connected and closed or reset at
        once): that is an expected network condition, never a traceback.
        """
        transport = self._transport
        assert transport is not None
        if self._verbose:
            log.info("Refused a connection from %s port %s: server busy", self.host, self._port)
        try:
            transport.write(self._protocol.send(_BUSY))
            if not transport.can_write_eof() or self._listener.lingering() > MAX_LINGERING:
                self._close()  # the busy line leaves first, then the FIN
                return
            transport.write_eof()  # the client reads the answer, then we close
        except OSError:
            self.abort()  # it is gone already
            return
        self._idle_timer = self._loop.call_later(REFUSED_LINGER, self.abort)

    def shut_down(self) -> None:
        """Server stopping: read no more, answer what was received, then close."""
        phase = self.phase
        if phase in (Phase.NEW, Phase.REFUSED):
            self.abort()
            return
        if phase not in _TAKING_INPUT:
            return  # draining already, or closing
        self._turns.drop(self)
        if self._inbox:
            data = bytes(self._inbox)
            self._inbox.clear()
            self._feed(data, self._loop.time())
        # A legacy request still in its quiet period is answered too; the
        # end of stream this feeds moves us to DRAINING.
        self._feed_eof()
        if self.phase in _TAKING_INPUT:  # defensive: ServerConnection always ends
            self._end_input()
        if self.phase is Phase.DRAINING and not self._queue:
            self._close()


def _limit_send_buffer(transport: asyncio.BaseTransport) -> None:
    """Ask for a small kernel send buffer: the answers a client that never
    reads can make us produce stay bounded (ABP-CONN-5)."""
    sock = transport.get_extra_info("socket")
    if sock is None:
        return
    with contextlib.suppress(OSError, AttributeError):  # not TCP, or gone already
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)


__all__ = ["STORE_FAILED", "TRANSITIONS", "Cause", "Connection", "Listener", "Phase", "Turns"]
