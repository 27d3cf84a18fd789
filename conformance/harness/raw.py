"""Raw lines on the wire: for tests that send bytes on purpose and judge bytes.

A ``Wire`` decodes answers through a ``ClientConnection``, which only accepts
answers to requests it built itself. Framing tests send malformed, split,
pipelined or over-long bytes, so they read here instead: whole LF-terminated
lines, kept byte for byte (the leftovers of one read stay for the next), or a
legacy answer ended by LF, end of stream or a quiet gap.

A server that sends part of a line and then nothing more is judged quickly: a
partial line that stalls for ``stall`` seconds is ``Unterminated`` (the
tutorial's servers answer with no LF), not a wait for the full timeout.
"""

from __future__ import annotations

import math
import select
import time
from collections.abc import Sequence
from dataclasses import dataclass

from conformance.harness.lines import CLOSE, LF, TIMEOUT, LineBuffer
from conformance.harness.timing import (
    LEGACY_QUIET,
    SEND_SLICE,
    STALL,
    TRICKLE_LISTEN,
    TRICKLE_MARGIN,
)
from conformance.harness.wire import Wire, WireClosed, WireError, WireTimeout


class Unterminated(WireError):
    """Bytes arrived with no LF, and then nothing more for the stall period."""

    def __init__(self, partial: bytes) -> None:
        super().__init__(f"{len(partial)} bytes arrived with no LF terminator")
        self.partial = partial


class Inconclusive(Exception):
    """This machine paused so long between two pieces of a request that the
    server may lawfully have taken the first piece for a whole request
    (ABP-FRAME-6): the attempt proves nothing and is repeated."""


#: What ``RawConnection.drain`` keeps of what it reads: the last bytes only.
DRAIN_TAIL = 512
#: What ``RawConnection.hung_up`` waits for: the peer reset the connection
#: (POLLERR, POLLHUP) or ended its stream (POLLRDHUP, where the system has it).
HANGUP = select.POLLERR | select.POLLHUP | getattr(select, "POLLRDHUP", 0)

#: How a drain ended: end of stream, reset, silence, or its deadline.
EOF_, RESET, QUIET, DEADLINE = "end of stream", "reset", "silence", "deadline"


@dataclass(frozen=True)
class Drained:
    """What ``RawConnection.drain`` read: how many bytes, not the bytes."""

    count: int
    ended_by: str  # EOF_, RESET, QUIET or DEADLINE
    seconds: float
    tail: bytes  # the last DRAIN_TAIL bytes

    @property
    def closed(self) -> bool:
        """The server closed the connection: an end of stream, or a reset."""
        return self.ended_by in (EOF_, RESET)


class RawConnection:
    """A connection driven with raw bytes; answers are read as raw lines."""

    def __init__(self, wire: Wire, *, stall: float = STALL, margin: float = TRICKLE_MARGIN) -> None:
        self.wire = wire
        self.stall = stall
        self.margin = margin  # the longest pause inside one split request
        self.lines = LineBuffer(wire.recv_chunk)

    @property
    def name(self) -> str:
        return self.wire.name

    def send(self, data: bytes, note: str = "") -> None:
        self.wire.send(data, note)

    def send_some(self, data: bytes, timeout: float) -> int:
        """Send as much of ``data`` as the peer takes within ``timeout``; for a
        client that floods a server which stops reading. Returns bytes sent."""
        sock = self.wire.sock
        if sock is None:
            raise WireClosed("not connected")
        sent = 0
        deadline = time.monotonic() + timeout
        while sent < len(data):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            sock.settimeout(min(remaining, SEND_SLICE))
            try:
                sent += sock.send(data[sent : sent + 65536])
            except TimeoutError:
                break  # the server stopped reading: that is allowed
            except OSError as exc:
                self.wire.transcript.note(self.name, f"send failed: {exc}")
                break
        self.wire.transcript.add(self.name, ">>", data[:sent], f"{sent} of {len(data)} bytes")
        return sent

    def trickle(self, data: bytes, sizes: Sequence[int], listen: float = TRICKLE_LISTEN) -> bytes:
        """Send ``data`` in pieces of ``sizes`` bytes, listening ``listen``
        seconds after each; returns what arrived before the last piece left
        (an answer to a request not yet complete, when the pieces hold no LF).
        Raises ``Inconclusive`` when a pause between pieces passed ``margin``
        (half the server's quiet period: ``--quiet-period``)."""
        assert sum(sizes) == len(data)
        early = bytearray()
        pos = 0
        last = time.monotonic()
        for size in sizes:
            if pos and time.monotonic() - last > self.margin:
                raise Inconclusive(f"{(time.monotonic() - last) * 1000:.0f} ms between two pieces")
            self.send(data[pos : pos + size])
            last = time.monotonic()
            pos += size
            if pos < len(data):
                early += self.quiet_for(listen)
        return bytes(early)

    def shutdown_write(self) -> None:
        self.wire.shutdown_write()

    def reset(self) -> None:
        self.wire.reset()

    def close(self) -> None:
        self.wire.close()

    def read_line(self, timeout: float | None = None) -> bytes:
        """The next line, LF (and any CR) included.

        Raises ``WireTimeout`` when nothing arrives, ``Unterminated`` when part
        of a line stalls, ``WireClosed`` at end of stream, ``LineOverflow``
        when the server sends more than ``LINE_CAP`` bytes with no LF.
        """
        heard = self.lines.read(self._timeout(timeout), quiet=self.stall)
        if heard.ended_by == LF:
            return heard.data
        if heard.ended_by == CLOSE:
            raise WireClosed(f"end of stream after {len(heard.data)} unterminated bytes")
        if heard.data:
            raise Unterminated(heard.data)
        raise WireTimeout("no answer before the deadline")

    def read_lines(self, count: int, timeout: float | None = None) -> list[bytes]:
        """``count`` lines under one deadline."""
        deadline = time.monotonic() + self._timeout(timeout)
        return [self.read_line(max(0.0, deadline - time.monotonic())) for _ in range(count)]

    def read_legacy(self, timeout: float | None = None) -> bytes:
        """An answer in the tutorial's framing: ended by LF, end of stream, or
        ``LEGACY_QUIET`` seconds with no new byte once something arrived."""
        heard = self.lines.read(self._timeout(timeout), quiet=LEGACY_QUIET)
        if heard.ended_by == TIMEOUT:
            raise WireTimeout("no answer before the deadline")
        if not heard.data:
            raise WireClosed("the server closed the connection before answering")
        return heard.data

    def read_until_closed(self, timeout: float | None = None) -> bytes:
        """Everything up to the end of stream (buffered bytes first)."""
        deadline = time.monotonic() + self._timeout(timeout)
        while not self.lines.eof:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WireTimeout("the server did not close the connection")
            self.lines.fill(remaining)
        return self.lines.take()

    def _timeout(self, timeout: float | None) -> float:
        return self.wire.timeout if timeout is None else timeout

    def quiet_for(self, seconds: float) -> bytes:
        """Bytes that arrive within ``seconds`` (b"" when the server stays silent);
        a bounded read used to check that nothing more was sent."""
        deadline = time.monotonic() + seconds
        start = len(self.lines.buffer)
        while not self.lines.eof:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                self.lines.fill(remaining)
            except WireClosed:
                break
        return bytes(self.lines.buffer[start:])

    def hung_up(self, timeout: float) -> bool:
        """True when the server resets the connection or ends its stream
        within ``timeout``, seen without reading a byte (``poll``): for a
        client that does not read. An end of stream queued behind bytes the
        client has not read is not seen here; ``drain`` sees it."""
        sock = self.wire.sock
        if sock is None:
            raise WireClosed("not connected")
        poller = select.poll()
        poller.register(sock.fileno(), HANGUP)
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            events = poller.poll(math.ceil(remaining * 1000))
            if any(mask & HANGUP for _, mask in events):
                self.wire.transcript.note(self.name, "hung up (seen without reading)")
                return True
        return False

    def drain(self, quiet: float, timeout: float) -> Drained:
        """Read and count what arrives, keeping only the last ``DRAIN_TAIL``
        bytes, until the end of stream, a reset, ``quiet`` seconds with no
        byte, or ``timeout`` seconds in all. Bytes already buffered count too.
        The transcript gets one record for the whole drain, not every byte."""
        sock = self.wire.sock
        if sock is None:
            raise WireClosed("not connected")
        started = time.monotonic()
        deadline = started + timeout
        count = len(self.lines.buffer)
        tail = bytearray(self.lines.take()[-DRAIN_TAIL:])
        chunk = bytearray(65536)
        last = started
        ended_by = EOF_ if self.lines.eof else ""
        while not ended_by:
            now = time.monotonic()
            wait = min(deadline, last + quiet) - now
            if wait <= 0:
                ended_by = DEADLINE if now >= deadline else QUIET
                break
            sock.settimeout(wait)
            try:
                size = sock.recv_into(chunk)
            except TimeoutError:
                continue
            except OSError:  # ssl.SSLError included: a TLS session ended badly
                ended_by = RESET
                break
            if not size:
                ended_by = EOF_
                break
            count += size
            last = time.monotonic()
            tail += chunk[:size]
            del tail[:-DRAIN_TAIL]
        self.lines.eof = self.lines.eof or ended_by in (EOF_, RESET)
        drained = Drained(count, ended_by, time.monotonic() - started, bytes(tail))
        self.wire.transcript.add(
            self.name,
            "<<",
            drained.tail,
            f"drained {count} bytes in {drained.seconds:.2f}s, then {ended_by}; "
            f"the last {len(drained.tail)} shown",
        )
        return drained

    def is_closed(self, timeout: float) -> bool:
        """True when the server closes within ``timeout`` (data before it is kept)."""
        try:
            self.read_until_closed(timeout)
        except WireTimeout:
            return False
        except WireClosed:  # reset by the peer: closed too
            self.lines.eof = True
        return True
