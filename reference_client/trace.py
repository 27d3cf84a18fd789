"""``--trace``: every frame on the wire, for a person debugging a server.

One line per event on stderr, with a time relative to the start of the run::

    +0.0012s >> 10 bytes "fnd:bob\\n" hex 66 6e 64 3a 62 6f 62 0a
    +0.0012s >> = Find(name='bob')
    +0.0031s << 6 bytes "OK: x\\n" hex 4f 4b 3a 20 78 0a
    +0.0031s << = Ok(text='x')

``>>`` is sent, ``<<`` received, ``--`` a note (connect, close, timeouts).
``=`` lines say how the schema decoded the bytes, ``!`` lines that it refused
them (a ``RemoteProtocolError`` and the requirement it breaks).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO

from protocol import ConnectionClosed, InvalidRequest, RemoteProtocolError, ServerConnection
from protocol.codec import LineFrame, LineReader, decode_response
from protocol.escape import escape

SENT = ">>"
RECEIVED = "<<"
NOTE = "--"

#: Hex is shown for this many bytes of a frame; the escaped text is always whole.
HEX_LIMIT = 256


def hex_bytes(data: bytes) -> str:
    shown = data[:HEX_LIMIT].hex(" ")
    if len(data) > HEX_LIMIT:
        shown += f" ...({len(data) - HEX_LIMIT} more)"
    return shown


def describe(event: object) -> str:
    """How the schema decoded something: an event, a request, or an error."""
    if isinstance(event, InvalidRequest):
        reply = event.error.reply
        answer = "" if reply is None else f" (a server answers ERROR: {reply.text})"
        return f"! {event.error.message} [{event.error.requirement}]{answer}"
    if isinstance(event, RemoteProtocolError):
        return f"! RemoteProtocolError: {event}"
    if isinstance(event, ConnectionClosed):
        return "= end of stream"
    return f"= {event!r}"


class Tracer:
    """Writes trace lines; a disabled tracer writes nothing and costs little."""

    def __init__(
        self,
        stream: TextIO | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream
        self.clock = clock
        self.start = clock()

    @property
    def enabled(self) -> bool:
        return self.stream is not None

    def _line(self, direction: str, text: str) -> None:
        if self.stream is None:
            return
        self.stream.write(f"+{self.clock() - self.start:.4f}s {direction} {text}\n")
        self.stream.flush()

    def frame(self, direction: str, data: bytes) -> None:
        self._line(direction, f'{len(data)} bytes "{escape(data)}" hex {hex_bytes(data)}')

    def decoded(self, direction: str, event: object) -> None:
        self._line(direction, describe(event))

    def note(self, text: str) -> None:
        self._line(NOTE, text)


class RawDecoder:
    """Decodes both directions of a raw conversation for the trace only.

    Sent bytes go through a ``ServerConnection``, so the trace shows what a
    server makes of them; received bytes are split into lines and decoded as
    responses. Nothing here decides what the program does.
    """

    def __init__(self) -> None:
        self._as_server = ServerConnection(quiet_period=None)
        self._lines = LineReader(1 << 20)

    def sent(self, data: bytes) -> list[object]:
        events: list[object] = list(self._as_server.receive_data(data))
        # The end of what we send is where a server's quiet period would end it.
        events.extend(
            e for e in self._as_server.receive_data(b"") if not isinstance(e, ConnectionClosed)
        )
        return events

    def received(self, data: bytes) -> list[object]:
        frames = self._lines.feed(data, 0.0) if data else self._lines.feed_eof()
        return [self._decode(frame) for frame in frames]

    @staticmethod
    def _decode(frame: object) -> object:
        if not isinstance(frame, LineFrame):
            return RemoteProtocolError("response line too long", "ABP-FRAME-14")
        try:
            return decode_response(frame.data)
        except RemoteProtocolError as exc:
            return exc
