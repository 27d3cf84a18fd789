"""The one reader of "bytes until LF, end of stream or silence", bounded.

Every place the suite reads an answer byte for byte (raw connections, the
framing probe, the crowd, the project's own test client) reads it here, so
that one rule holds everywhere: a call has one hard deadline that does not
restart with every byte, and no more than ``LINE_CAP`` bytes are buffered
waiting for an LF (a server that never sends one makes the read fail with
``LineOverflow``, showing the first bytes and the count, rather than grow
the suite's memory). Decoding is not done here: that is ``protocol``'s.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from protocol.escape import escape

#: Bytes a read may buffer with no LF: a few times the longest answer the
#: suite provokes (an entry fills at most a 4096-byte request line).
LINE_CAP = 4 * 8192
#: Bytes buffered in all (complete lines not yet handed out, or what a read
#: to the end of the stream holds): the whole of a flood test's answers.
BUFFER_CAP = 1 << 20

LF, CLOSE, SILENCE, TIMEOUT = "lf", "close", "silence", "timeout"
NO_LF = f"with no LF (the cap is {LINE_CAP})"
UNREAD = f"buffered unread (the cap is {BUFFER_CAP})"


class LineOverflow(Exception):
    """More than ``LINE_CAP`` bytes arrived with no LF (or ``BUFFER_CAP`` in all)."""

    def __init__(self, data: bytes, count: int, what: str = NO_LF) -> None:
        super().__init__(f'{count} bytes {what}: "{escape(data[:60])}"...')
        self.partial = data
        self.count = count


@dataclass(frozen=True)
class Heard:
    """What one read got, and what ended it: ``"lf"`` (``data`` is one line,
    LF included), ``"close"`` (end of stream), ``"silence"`` (``quiet``
    seconds with no byte after one arrived) or ``"timeout"`` (the deadline)."""

    data: bytes
    ended_by: str


def split_lines(data: bytes) -> tuple[list[bytes], bytes]:
    """The complete lines in ``data`` (LF kept), and the bytes after the last LF."""
    cut = data.rfind(b"\n") + 1
    return [line + b"\n" for line in data[:cut].split(b"\n")[:-1]], data[cut:]


class LineBuffer:
    """Bytes received and not yet handed out, read through ``recv(wait)``:
    one receive of at most ``wait`` seconds, ``b""`` at end of stream, raising
    ``TimeoutError`` when nothing came (other errors pass through)."""

    def __init__(self, recv: Callable[[float], bytes], *, cap: int = LINE_CAP) -> None:
        self.recv = recv
        self.cap = cap
        self.buffer = bytearray()
        self.eof = False

    def fill(self, wait: float) -> bool:
        """One receive of at most ``wait`` seconds; False when nothing arrived."""
        try:
            chunk = self.recv(max(wait, 0.001))  # 0 would mean non-blocking
        except TimeoutError:
            return False
        if not chunk:
            self.eof = True
            return False
        self.buffer += chunk
        if len(self.buffer) > BUFFER_CAP:
            raise LineOverflow(bytes(self.buffer[:60]), len(self.buffer), UNREAD)
        return True

    def take(self, count: int | None = None) -> bytes:
        """The first ``count`` buffered bytes (all of them by default), removed."""
        count = len(self.buffer) if count is None else count
        data = bytes(self.buffer[:count])
        del self.buffer[:count]
        return data

    def read(self, timeout: float, *, quiet: float | None = None) -> Heard:
        """The next line, or what arrived before the stream ended, ``quiet``
        seconds passed with no new byte (once one arrived), or ``timeout``
        seconds from now passed. Bytes ended by a close or by silence are
        handed out; bytes cut off by the deadline stay buffered."""
        deadline = time.monotonic() + timeout
        last_data = time.monotonic()
        while True:
            lf = self.buffer.find(b"\n")
            if lf >= 0:
                return Heard(self.take(lf + 1), LF)
            if len(self.buffer) > self.cap:
                raise LineOverflow(bytes(self.buffer[:60]), len(self.buffer))
            if self.eof:
                return Heard(self.take(), CLOSE)
            now = time.monotonic()
            limit = deadline
            if self.buffer and quiet is not None:
                limit = min(deadline, last_data + quiet)
            if now >= limit:
                if now < deadline:
                    return Heard(self.take(), SILENCE)
                return Heard(bytes(self.buffer), TIMEOUT)
            if self.fill(limit - now):
                last_data = time.monotonic()
