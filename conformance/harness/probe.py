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

import uuid
from dataclasses import dataclass, field

from conformance.harness.lines import CLOSE, LF, SILENCE, TIMEOUT, Heard, LineBuffer, LineOverflow
from conformance.harness.timing import PROBE_QUIET
from conformance.harness.timing import TIMEOUT as DEFAULT_TIMEOUT
from conformance.harness.tls import TlsSettings
from conformance.harness.wire import Transcript, Wire, WireError
from protocol import ABPError, ClientConnection, Find
from protocol.codec import decode_counter_reply, decode_response
from protocol.escape import escape

LINE, LEGACY = "line", "legacy"


def describe(heard: Heard) -> str:
    """What one probe got back, for the reason shown to the user."""
    if not heard.data:
        if heard.ended_by == CLOSE:
            return "the server closed the connection without answering"
        return "no answer"
    how = {LF: "ended by LF", CLOSE: "ended when the server closed the connection"}
    return f'"{escape(heard.data[:80])}" ({how.get(heard.ended_by, "ended by silence")})'


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
    after the first byte, or ``timeout`` with nothing at all (a broken
    connection counts as closed; bytes at the deadline as ended by silence)."""
    try:
        heard = LineBuffer(wire.recv_chunk).read(timeout, quiet=quiet)
    except WireError:
        return Heard(b"", CLOSE)
    except LineOverflow as exc:  # a flood with no LF: no line server's answer
        return Heard(exc.partial, SILENCE)
    if heard.ended_by == TIMEOUT and heard.data:
        return Heard(heard.data, SILENCE)
    return heard


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
    tls: TlsSettings | None,
) -> Heard:
    connection = ClientConnection(legacy=not terminated, counter=counter)
    data = connection.send(b"framing probe" if counter else Find(name))
    channel = f"p{int(terminated)}"
    with Wire(host, port, timeout=timeout, transcript=transcript, name=channel, tls=tls) as w:
        w.send(data, "framing probe" + ("" if terminated else ", no terminator"))
        return _listen(w, timeout, quiet)


def detect(
    host: str,
    port: int,
    *,
    service: str = "abp",
    timeout: float = DEFAULT_TIMEOUT,
    quiet: float = PROBE_QUIET,
    tls: TlsSettings | None = None,
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
        tls=tls,
    )
    if first.ended_by == LF and _is_answer(first.data, counter):
        return Detection(LINE, "answers end with LF", transcript)
    if first.data and first.ended_by in (CLOSE, SILENCE):
        return Detection(LEGACY, f"answers have no LF: a request got {describe(first)}", transcript)
    second = _probe(
        host,
        port,
        counter=counter,
        terminated=False,
        timeout=timeout,
        quiet=quiet,
        transcript=transcript,
        name=name + "-u",
        tls=tls,
    )
    if second.ended_by == LF and _is_answer(second.data, counter):
        return Detection(
            LINE,
            f"answers end with LF; but an LF-terminated request got {describe(first)}",
            transcript,
        )
    if second.data:
        what = "are not ABP/1 answers" if second.ended_by == LF else "have no LF"
        return Detection(
            LEGACY, f"answers {what}: an unterminated request got {describe(second)}", transcript
        )
    return Detection(
        None,
        f"the server never answered a probe: an LF-terminated request got {describe(first)},"
        f" an unterminated one got {describe(second)}",
        transcript,
    )
