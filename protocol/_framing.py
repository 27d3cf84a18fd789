"""Turning a byte stream into lines: LF/CRLF, the line limit, legacy requests.

One rule for the reader: ``feed``/``feed_eof``/``expire`` return the frames
that became complete, in order, and never raise for anything the peer sent.
Time is always an argument (the legacy quiet period, ABP-FRAME-6); this module
reads no clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from protocol._schema import CR, LF


@dataclass(frozen=True, slots=True)
class LineFrame:
    """A complete line. ``terminator`` is b"\\n", b"\\r\\n", or b"" for a legacy
    line that ended by half-close or by the quiet period."""

    data: bytes
    terminator: bytes


@dataclass(frozen=True, slots=True)
class OverlongFrame:
    """A line passed the limit; its remaining bytes are being discarded."""

    size: int  # bytes of the line seen when it was judged too long


Frame: TypeAlias = LineFrame | OverlongFrame


class LineReader:
    """Splits lines out of a byte stream (ABP-FRAME-3 .. ABP-FRAME-10).

    ``quiet_period`` (seconds, None to disable) makes buffered bytes with no
    LF a complete line once nothing more arrived for that long (ABP-FRAME-6).
    """

    __slots__ = ("_buffer", "_discarding", "_eof", "_last_data", "max_line", "quiet_period")

    def __init__(self, max_line: int, quiet_period: float | None = None) -> None:
        self.max_line = max_line
        self.quiet_period = quiet_period
        self._buffer = bytearray()
        self._discarding = False  # inside an overlong line, waiting for its LF
        self._last_data: float | None = None
        self._eof = False

    @property
    def buffered(self) -> int:
        """Bytes held that are not yet part of a complete line."""
        return len(self._buffer)

    @property
    def at_eof(self) -> bool:
        return self._eof

    def deadline(self) -> float | None:
        """When ``expire`` will turn the buffered bytes into a legacy line."""
        if self.quiet_period is None or self._last_data is None or self._eof:
            return None
        if not self._buffer or self._discarding:
            # ABP-FRAME-11: the rest of an overlong line is discarded up to its
            # LF, however long the peer pauses inside it.
            return None
        return self._last_data + self.quiet_period

    def feed(self, data: bytes, now: float) -> list[Frame]:
        if self._eof:
            raise ValueError("data after end of stream")
        frames: list[Frame] = []
        if not data:
            return frames
        self._last_data = now
        buffer = self._buffer
        start = len(buffer)
        buffer += data
        pos = 0
        while True:
            lf = buffer.find(LF, max(pos, start))
            if lf < 0:
                break
            start = 0
            if self._discarding:
                self._discarding = False
            else:
                end = lf - 1 if lf > pos and buffer[lf - 1] == CR[0] else lf
                if end - pos > self.max_line:
                    frames.append(OverlongFrame(end - pos))
                else:
                    frames.append(LineFrame(bytes(buffer[pos:end]), bytes(buffer[end : lf + 1])))
            pos = lf + 1
        if pos:
            del buffer[:pos]
        # +1: a line of exactly max_line bytes may still be waiting for "\r\n".
        if len(buffer) > self.max_line + 1:
            if not self._discarding:
                frames.append(OverlongFrame(len(buffer)))
                self._discarding = True
            buffer.clear()
        return frames

    def feed_eof(self) -> list[Frame]:
        """The peer half-closed: buffered bytes form a last, legacy line (ABP-FRAME-5)."""
        if self._eof:
            return []
        self._eof = True
        return self._flush()

    def expire(self, now: float) -> list[Frame]:
        """Call when ``deadline()`` has passed: the legacy rule of ABP-FRAME-6."""
        deadline = self.deadline()
        if deadline is None or now < deadline:
            return []
        return self._flush()

    def _flush(self) -> list[Frame]:
        if self._discarding:
            self._discarding = False
            self._buffer.clear()
            return []
        if not self._buffer:
            return []
        data = bytes(self._buffer)
        self._buffer.clear()
        if data.endswith(CR):  # "a CR right before the end is not part of it"
            data = data[:-1]
        if len(data) > self.max_line:
            return [OverlongFrame(len(data))]
        return [LineFrame(data, b"")]
