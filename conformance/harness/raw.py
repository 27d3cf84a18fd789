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

import time
from collections.abc import Sequence

from conformance.harness.wire import Wire, WireClosed, WireError, WireTimeout

#: How long part of an answer may sit with no LF before it counts as unterminated.
DEFAULT_STALL = 1.0
#: The longest pause between the pieces of a split request that still makes
#: them one request: half the default quiet period (ABP-FRAME-6, 100 ms).
TRICKLE_MARGIN = 0.05


class Unterminated(WireError):
    """Bytes arrived with no LF, and then nothing more for the stall period."""

    def __init__(self, partial: bytes) -> None:
        super().__init__(f"{len(partial)} bytes arrived with no LF terminator")
        self.partial = partial


class Inconclusive(Exception):
    """This machine paused so long between two pieces of a request that the
    server may lawfully have taken the first piece for a whole request
    (ABP-FRAME-6): the attempt proves nothing and is repeated."""


class RawConnection:
    """A connection driven with raw bytes; answers are read as raw lines."""

    def __init__(self, wire: Wire, *, stall: float = DEFAULT_STALL) -> None:
        self.wire = wire
        self.stall = stall
        self.buffer = bytearray()
        self.eof = False

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
            sock.settimeout(min(remaining, 0.05))
            try:
                sent += sock.send(data[sent : sent + 65536])
            except TimeoutError:
                break  # the server stopped reading: that is allowed
            except OSError as exc:
                self.wire.transcript.note(self.name, f"send failed: {exc}")
                break
        self.wire.transcript.add(self.name, ">>", data[:sent], f"{sent} of {len(data)} bytes")
        return sent

    def trickle(self, data: bytes, sizes: Sequence[int], listen: float = 0.002) -> bytes:
        """Send ``data`` in pieces of ``sizes`` bytes, listening ``listen``
        seconds after each; returns what arrived before the last piece left
        (an answer to a request not yet complete, when the pieces hold no LF).
        Raises ``Inconclusive`` when a pause between pieces passed
        ``TRICKLE_MARGIN``."""
        assert sum(sizes) == len(data)
        early = bytearray()
        pos = 0
        last = time.monotonic()
        for size in sizes:
            if pos and time.monotonic() - last > TRICKLE_MARGIN:
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

    def _fill(self, wait: float) -> bool:
        """One read of at most ``wait`` seconds; False when nothing arrived."""
        chunk = self.wire.recv_chunk(max(wait, 0.001))  # 0 would mean non-blocking
        if not chunk:
            self.eof = True
            return False
        self.buffer += chunk
        return True

    def read_line(self, timeout: float | None = None) -> bytes:
        """The next line, LF (and any CR) included.

        Raises ``WireTimeout`` when nothing arrives, ``Unterminated`` when part
        of a line stalls, ``WireClosed`` at end of stream.
        """
        deadline = time.monotonic() + (self.wire.timeout if timeout is None else timeout)
        last_data = time.monotonic()
        while True:
            lf = self.buffer.find(b"\n")
            if lf >= 0:
                line = bytes(self.buffer[: lf + 1])
                del self.buffer[: lf + 1]
                return line
            if self.eof:
                raise WireClosed(f"end of stream after {len(self.buffer)} unterminated bytes")
            now = time.monotonic()
            limit = deadline
            if self.buffer:
                limit = min(deadline, last_data + self.stall)
            if now >= limit:
                if self.buffer:
                    raise Unterminated(bytes(self.buffer))
                raise WireTimeout("no answer before the deadline")
            try:
                if self._fill(limit - now):
                    last_data = time.monotonic()
            except WireTimeout:
                continue

    def read_lines(self, count: int, timeout: float | None = None) -> list[bytes]:
        """``count`` lines under one deadline."""
        deadline = time.monotonic() + (self.wire.timeout if timeout is None else timeout)
        return [self.read_line(max(0.0, deadline - time.monotonic())) for _ in range(count)]

    def read_legacy(self, quiet: float, timeout: float | None = None) -> bytes:
        """An answer in the tutorial's framing: ended by LF, end of stream, or
        ``quiet`` seconds with no new byte once something arrived."""
        deadline = time.monotonic() + (self.wire.timeout if timeout is None else timeout)
        last_data = time.monotonic()
        while True:
            lf = self.buffer.find(b"\n")
            if lf >= 0:
                line = bytes(self.buffer[: lf + 1])
                del self.buffer[: lf + 1]
                return line
            if self.eof or (self.buffer and time.monotonic() - last_data >= quiet):
                data = bytes(self.buffer)
                self.buffer.clear()
                if not data:
                    raise WireClosed("the server closed the connection before answering")
                return data
            now = time.monotonic()
            if now >= deadline:
                raise WireTimeout("no answer before the deadline")
            limit = min(deadline, last_data + quiet) if self.buffer else deadline
            try:
                if self._fill(max(0.0, limit - now)):
                    last_data = time.monotonic()
            except WireTimeout:
                continue

    def read_until_closed(self, timeout: float | None = None) -> bytes:
        """Everything up to the end of stream (buffered bytes first)."""
        deadline = time.monotonic() + (self.wire.timeout if timeout is None else timeout)
        while not self.eof:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WireTimeout("the server did not close the connection")
            try:
                self._fill(remaining)
            except WireTimeout:
                continue
        data = bytes(self.buffer)
        self.buffer.clear()
        return data

    def quiet_for(self, seconds: float) -> bytes:
        """Bytes that arrive within ``seconds`` (b"" when the server stays silent);
        a bounded read used to check that nothing more was sent."""
        deadline = time.monotonic() + seconds
        start = len(self.buffer)
        while not self.eof:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                self._fill(remaining)
            except (WireTimeout, WireClosed):
                break
        return bytes(self.buffer[start:])

    def is_closed(self, timeout: float) -> bool:
        """True when the server closes within ``timeout`` (data before it is kept)."""
        try:
            self.read_until_closed(timeout)
        except WireTimeout:
            return False
        except WireClosed:  # reset by the peer: closed too
            self.eof = True
        return True
