"""One client connection: ``protocol.ServerConnection`` behind an ``asyncio.Protocol``.

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

No client holds up another (ABP-CONN-5): a big chunk of input is handled in
slices of ``SLICE`` bytes, one per turn of the event loop; a client that does
not read its answers stops being read (transport flow control) instead of
growing our buffers, and is closed once idle past the idle timeout.

The common case, a ``fnd`` on a connection with nothing queued, is the hot
path: it reads the clock once per chunk read, builds no timer, logs nothing
unless ``--verbose``, and answers every line of the chunk in one write. The
idle timer is not moved per request: it fires when first due and re-arms
itself from the time of the last activity.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import deque
from typing import TYPE_CHECKING, Any, cast

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
from protocol.codec import no_entry

if TYPE_CHECKING:
    from reference_server.server import Server

#: The answer to a change the store could not save. Not a standard text
#: (section 4 has none for it); it starts with ``ERROR: `` as every error must.
STORE_FAILED = "Internal error: the change was not saved"
#: Bytes of one client handled per turn of the event loop.
SLICE = 4096
#: Bytes read and not yet handled before we stop reading from a client.
INBOX_LIMIT = 65536
#: Requests a connection may have queued before we stop handling its input.
MAX_QUEUED = 4096
#: How long a refused connection (ABP-CONN-8) may linger to read its answer.
REFUSED_LINGER = 2.0

log = logging.getLogger("abp-server")

_OK = Ok()
#: Answers memoised, and the longest text memoised: the codec's bounds.
MEMO_SIZE = 8192
MEMO_MAX_BYTES = 256
_ok_memo = functools.lru_cache(maxsize=MEMO_SIZE)(Ok)
_no_entry_memo = functools.lru_cache(maxsize=MEMO_SIZE)(no_entry)


def _found(entry: str) -> Ok:
    """``Ok(entry)``, memoised as the codec does: bounded, short texts only."""
    return _ok_memo(entry) if len(entry) <= MEMO_MAX_BYTES else Ok(entry)


def _not_found(name: str) -> Error:
    return _no_entry_memo(name) if len(name) <= MEMO_MAX_BYTES else no_entry(name)


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


class Connection(asyncio.Protocol):
    """One client: a ``ServerConnection`` plus its queue of unanswered requests."""

    def __init__(self, server: Server, loop: asyncio.AbstractEventLoop) -> None:
        settings = server.settings
        self._server = server
        self._loop = loop
        self._store = server.store
        self._verbose = settings.verbose
        self._idle_timeout = settings.idle_timeout
        self._protocol = ServerConnection(
            counter=settings.service == "counter", quiet_period=settings.quiet_period
        )
        self._transport: asyncio.Transport | None = None
        self._queue: deque[_Queued] = deque()
        self.number = 0
        self._port: object = "?"
        self._last_activity = 0.0
        self._quiet_timer: asyncio.TimerHandle | None = None
        self._idle_timer: asyncio.TimerHandle | None = None
        self._served = False
        self._closing = False  # close once the queue is empty
        self._lost = False
        self._reading = True
        self._write_paused = False
        self._shutting_down = False
        self._inbox = bytearray()  # read, not yet handled (see SLICE)
        self._eof_pending = False  # end of stream seen behind the inbox
        self._pump_scheduled = False

    # ------------------------------------------------------ asyncio hooks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self._port = peer[1] if isinstance(peer, tuple) and len(peer) > 1 else "?"
        number = self._server.admit(self)
        if number is None:
            self._refuse()
            return
        self._served = True
        self.number = number
        if self._verbose:
            log.info("Connection %d using port %s", number, self._port)
        self._last_activity = self._loop.time()
        if self._idle_timeout:
            self._idle_timer = self._loop.call_at(
                self._last_activity + self._idle_timeout, self._on_idle
            )

    def data_received(self, data: bytes) -> None:
        if not self._served or self._shutting_down:
            return  # a refused connection's bytes are read and dropped
        self._last_activity = now = self._loop.time()
        if (
            self._inbox
            or len(data) > SLICE
            or self._write_paused
            or len(self._queue) >= MAX_QUEUED  # not self._may_handle(), inlined
        ):
            self._inbox += data  # handled a slice per turn of the loop
            self._schedule_pump()
            self._update_reading()
        else:
            self._feed(data, now)

    def eof_received(self) -> bool:
        if not self._served:
            return False  # refused: let the transport close
        if self._inbox:
            self._eof_pending = True
            self._schedule_pump()
        else:
            self._feed_eof()
        return True  # we close once every answer is written

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._cancel_timers()
        self._queue.clear()
        self._server.forget(self, served=self._served)

    def pause_writing(self) -> None:
        self._write_paused = True
        self._update_reading()

    def resume_writing(self) -> None:
        self._write_paused = False
        self._last_activity = self._loop.time()
        if self._inbox or self._eof_pending:
            self._schedule_pump()
        self._update_reading()

    # --------------------------------------------------------------- input
    def _feed(self, data: bytes, now: float) -> None:
        events = self._protocol.receive_data(data, now)
        if events:
            self._handle(events, now)
        self._arm_quiet_timer()

    def _feed_eof(self) -> None:
        """ABP-FRAME-5: buffered bytes with no LF are the last request."""
        if not self._protocol.peer_closed:
            now = self._loop.time()
            self._handle(self._protocol.receive_data(b"", now), now)

    def _may_handle(self) -> bool:
        return not self._write_paused and len(self._queue) < MAX_QUEUED

    def _schedule_pump(self) -> None:
        if not self._pump_scheduled and not self._lost:
            self._pump_scheduled = True
            self._loop.call_soon(self._pump)

    def _pump(self) -> None:
        """Handle one slice of the inbox; the rest waits for the next turn."""
        self._pump_scheduled = False
        if self._lost or not self._may_handle():
            return  # resume_writing or _flush schedules it again
        inbox = self._inbox
        if inbox:
            piece = bytes(inbox[:SLICE])
            del inbox[:SLICE]
            self._feed(piece, self._loop.time())
        if inbox:
            self._schedule_pump()
        elif self._eof_pending:
            self._eof_pending = False
            self._feed_eof()
        self._update_reading()

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
                self._closing = True
            elif queue:
                queue.append(_Queued(event, response=self._response(event)))
            else:
                out.append(self._answer(event, self._response(event)))
        if out:
            self._write(out, now)
        if not queue:
            if self._closing:
                self._close()
        elif len(queue) >= MAX_QUEUED:
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
        if self._lost:
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
        if not queue and self._closing:
            self._close()
            return
        if self._inbox or self._eof_pending:
            self._schedule_pump()
        if not self._reading:
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
        if self._quiet_timer is None and not self._lost:
            deadline = self._protocol.deadline()
            if deadline is not None:
                self._quiet_timer = self._loop.call_at(deadline, self._on_quiet)

    def _on_quiet(self) -> None:
        """ABP-FRAME-6: no byte for the quiet period; buffered bytes are a request."""
        self._quiet_timer = None
        if self._lost or self._inbox or not self._reading:
            # More of the line may be waiting unread: the timer is armed again
            # once it is fed (_feed) or reading resumes (_update_reading).
            return
        now = self._loop.time()
        events = self._protocol.expire(now)
        if events:
            self._handle(events, now)
        self._arm_quiet_timer()

    def _on_idle(self) -> None:
        """ABP-CONN-7: close a connection idle past the idle timeout."""
        self._idle_timer = None
        timeout = self._idle_timeout
        if self._lost or not timeout:
            return
        now = self._loop.time()
        busy = self._queue or self._inbox
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

    def _cancel_timers(self) -> None:
        for timer in (self._quiet_timer, self._idle_timer):
            if timer is not None:
                timer.cancel()
        self._quiet_timer = self._idle_timer = None

    # ------------------------------------------------------------- output
    def _write(self, out: list[bytes], now: float) -> None:
        """One ``transport.write`` for every answer ready: one system call."""
        transport = self._transport
        if transport is None or self._lost:
            return
        transport.write(out[0] if len(out) == 1 else b"".join(out))
        self._last_activity = now

    def _update_reading(self) -> None:
        transport = self._transport
        if transport is None or self._lost or transport.is_closing():
            return
        want = self._may_handle() and not self._shutting_down and len(self._inbox) < INBOX_LIMIT
        if want != self._reading:
            self._reading = want
            if want:
                transport.resume_reading()
                self._arm_quiet_timer()
            else:
                transport.pause_reading()

    def _close(self) -> None:
        self._cancel_timers()
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()

    def abort(self) -> None:
        self._cancel_timers()
        if self._transport is not None:
            self._transport.abort()

    def _refuse(self) -> None:
        """ABP-CONN-8: ``ERROR: Server busy``, then close our side."""
        transport = self._transport
        assert transport is not None
        if self._verbose:
            log.info("Refused a connection from port %s: server busy", self._port)
        transport.write(self._protocol.send(ServerBusy()))
        if transport.can_write_eof():
            transport.write_eof()  # the client reads the answer, then we close
            self._idle_timer = self._loop.call_later(REFUSED_LINGER, self.abort)
        else:
            transport.close()

    def shut_down(self) -> None:
        """Server stopping: read no more, answer what was received, then close."""
        if self._lost:
            return
        if not self._served:
            self.abort()
            return
        self._shutting_down = True
        self._update_reading()
        if self._inbox:
            data = bytes(self._inbox)
            self._inbox.clear()
            self._feed(data, self._loop.time())
        self._eof_pending = False
        if self._protocol.peer_closed:
            if not self._queue:
                self._close()
        else:
            # A legacy request still in its quiet period is answered too.
            self._feed_eof()
