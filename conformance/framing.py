"""Which framing does the server under test speak? A probe before the run.

An ABP/1 server ends every answer with LF (ABP-FRAME-1). A server written like
the tutorial's answers with no terminator and relies on one ``recv()`` being
one message. ``conformance run --framing auto`` asks the server first, so that
such a server gets its semantic tests run in the framing it handles (and its
framing tests fail), rather than a wall of timeouts.

The probe, on fresh connections:

1. an LF-terminated lookup of a name nobody uses. An answer line that ends
   with LF and decodes as an ABP/1 answer means ``line``. An answer with no
   LF, ended by the server closing or falling silent, means ``legacy``.
2. When that is not conclusive (no answer; the connection dropped; an LF that
   is only our own LF echoed back inside free text, as the tutorial's server
   does in "No entry found for NAME\\n"), the same lookup with no terminator,
   the way the tutorial's client sends it. ABP/1 servers answer that too
   (ABP-FRAME-6).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

from conformance.wire import Transcript, Wire, WireError, WireTimeout
from protocol import ABPError, ClientConnection, Find
from protocol.codec import decode_counter_reply, decode_response
from protocol.escape import escape

LINE, LEGACY = "line", "legacy"


@dataclass(frozen=True)
class Heard:
    """What one probe got back."""

    data: bytes
    ended_by: str  # "lf", "close", "silence" or "timeout"

    def describe(self) -> str:
        if not self.data:
            return {
                "close": "the server closed the connection without answering",
                "timeout": "no answer",
            }.get(self.ended_by, "no answer")
        how = {
            "lf": "ended by LF",
            "close": "ended when the server closed the connection",
            "silence": "ended by silence",
        }.get(self.ended_by, "")
        return f'"{escape(self.data[:80])}" ({how})'


@dataclass(frozen=True)
class Detection:
    framing: str | None  # LINE, LEGACY, or None when the server never answered
    reason: str
    transcript: Transcript = field(default_factory=Transcript)

    def describe(self, fallback: str = LINE) -> str:
        if self.framing is None:
            return f"framing: {fallback} (assumed: {self.reason})"
        return f"framing: {self.framing} ({self.reason})"


def _listen(wire: Wire, timeout: float, quiet: float) -> Heard:
    """Bytes until an LF, the end of the stream, ``quiet`` seconds of silence
    after the first byte, or ``timeout`` with nothing at all."""
    received = bytearray()
    deadline = time.monotonic() + timeout
    while True:
        wait = quiet if received else deadline - time.monotonic()
        if wait <= 0:
            return Heard(bytes(received), "timeout")
        try:
            chunk = wire.recv_chunk(wait)
        except WireTimeout:
            return Heard(bytes(received), "silence" if received else "timeout")
        except WireError:
            return Heard(bytes(received), "close")
        if not chunk:
            return Heard(bytes(received), "close")
        received += chunk
        if b"\n" in received:
            return Heard(bytes(received), "lf")


def _is_answer(line: bytes, counter: bool) -> bool:
    """Does this LF-terminated line decode as an ABP/1 (or counter) answer?"""
    body = line.split(b"\n", 1)[0].removesuffix(b"\r")
    try:
        if counter and not body.startswith(b"ERROR:"):
            decode_counter_reply(body)
        else:
            decode_response(body)
    except ABPError:
        return False
    return True


def _probe(
    host: str,
    port: int,
    *,
    counter: bool,
    terminated: bool,
    timeout: float,
    quiet: float,
    transcript: Transcript,
    name: str,
) -> Heard:
    connection = ClientConnection(legacy=not terminated, counter=counter)
    data = connection.send(b"framing probe" if counter else Find(name))
    with Wire(host, port, timeout=timeout, transcript=transcript, name=f"p{int(terminated)}") as w:
        w.send(data, "framing probe" + ("" if terminated else ", no terminator"))
        return _listen(w, timeout, quiet)


def detect(
    host: str, port: int, *, service: str = "abp", timeout: float = 5.0, quiet: float = 0.5
) -> Detection:
    """Probe the server; raises ``WireError`` when it cannot be reached at all."""
    counter = service == "counter"
    transcript = Transcript()
    name = f"framing-probe-{uuid.uuid4().hex[:12]}"
    first = _probe(
        host,
        port,
        counter=counter,
        terminated=True,
        timeout=timeout,
        quiet=quiet,
        transcript=transcript,
        name=name,
    )
    if first.ended_by == "lf" and _is_answer(first.data, counter):
        return Detection(LINE, "answers end with LF", transcript)
    if first.data and first.ended_by in ("close", "silence"):
        return Detection(
            LEGACY, f"answers have no LF: a request got {first.describe()}", transcript
        )
    second = _probe(
        host,
        port,
        counter=counter,
        terminated=False,
        timeout=timeout,
        quiet=quiet,
        transcript=transcript,
        name=name + "-u",
    )
    if second.ended_by == "lf" and _is_answer(second.data, counter):
        return Detection(
            LINE,
            f"answers end with LF; but an LF-terminated request got {first.describe()}",
            transcript,
        )
    if second.data:
        what = "are not ABP/1 answers" if second.ended_by == "lf" else "have no LF"
        return Detection(
            LEGACY, f"answers {what}: an unterminated request got {second.describe()}", transcript
        )
    return Detection(
        None,
        f"the server never answered a probe: an LF-terminated request got {first.describe()},"
        f" an unterminated one got {second.describe()}",
        transcript,
    )
