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

The probe also decides whether there is anything to judge, before any test
runs: a target that is not an ABP/1 server in either framing raises
``NotABP`` (a ``WireError``: one line, exit 2) saying what came back: an
HTTP answer, bytes that are not text (garbage), a flood with no LF, the
counter service's answer when the address book was meant ("did you mean
`--service counter`?"), a close, or silence (a listener that accepts and never
answers). Text that is no ABP/1 answer is left to the tests to judge (a
broken server still gets its verdict).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from conformance.harness.lines import (
    CLOSE,
    LF,
    LINE_CAP,
    SILENCE,
    TIMEOUT,
    Heard,
    LineBuffer,
    LineOverflow,
)
from conformance.harness.timing import PROBE_QUIET
from conformance.harness.timing import TIMEOUT as DEFAULT_TIMEOUT
from conformance.harness.tls import TlsSettings
from conformance.harness.wire import Transcript, Wire, WireError
from protocol import ABPError, ClientConnection, Find
from protocol.address import format_address
from protocol.codec import decode_counter_reply, decode_response, line_content
from protocol.escape import escape

LINE, LEGACY = "line", "legacy"
#: How a probe's answer ended when more than ``LINE_CAP`` bytes came with no LF.
OVERFLOW = "overflow"
HTTP_STARTS = (b"http/", b"<!doctype", b"<html")


class NotABP(WireError):
    """The target answers, or does not, in a way no ABP/1 server does."""


def describe(heard: Heard) -> str:
    """What one probe got back, for the reason shown to the user."""
    if not heard.data:
        if heard.ended_by == CLOSE:
            return "the server closed the connection without answering"
        return "no answer"
    how = {
        LF: "ended by LF",
        CLOSE: "ended when the server closed the connection",
        OVERFLOW: f"the first of more than {LINE_CAP} bytes with no LF",
    }
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
    except LineOverflow as exc:  # a flood with no LF: no server's answer
        return Heard(exc.partial, OVERFLOW)
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
    """Probe the server; raises ``NotABP`` when it is no ABP/1 server, and
    ``WireError`` when it cannot be reached at all."""
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
    where = format_address(host, port)
    if first.ended_by == LF and _is_answer(first.data, counter):
        return Detection(LINE, "answers end with LF", transcript)
    _refuse_at_once(where, first, counter)
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
    _refuse_at_once(where, second, counter)
    if second.data:
        what = "are not ABP/1 answers" if second.ended_by == LF else "have no LF"
        return Detection(
            LEGACY, f"answers {what}: an unterminated request got {describe(second)}", transcript
        )
    both = f"an LF-terminated request got {describe(first)}, an unterminated one {describe(second)}"
    if first.data or second.ended_by == CLOSE:
        raise NotABP(f"{where} never gave an ABP/1 answer: {both}")
    raise NotABP(f"{where} accepts connections but never answered within {timeout:g}s: {both}")


def _not_text(data: bytes) -> bool:
    """Bytes no answer holds: invalid UTF-8 (a cut-off last character aside)
    or control characters other than TAB, CR and LF."""
    text = data.decode("utf-8", "ignore") if len(data) >= LINE_CAP else None
    try:
        text = data.decode("utf-8") if text is None else text
    except UnicodeDecodeError:
        return True
    return any((ord(c) < 0x20 and c not in "\t\r\n") or ord(c) == 0x7F for c in text)


def _refuse_at_once(where: str, heard: Heard, counter: bool) -> None:
    """Raise ``NotABP`` when one answer is enough to tell: HTTP, bytes that
    are not text, a flood, or the counter service where the address book was meant."""
    data = heard.data
    if data.lower().startswith(HTTP_STARTS):
        first = data.split(b"\n", 1)[0].removesuffix(b"\r")
        raise NotABP(f'{where} answers like an HTTP server, not ABP/1: "{escape(first[:80])}"')
    if heard.ended_by == OVERFLOW:
        raise NotABP(f"{where} is not an ABP/1 server: it sent {describe(heard)}")
    if data and _not_text(data):
        raise NotABP(
            f"{where} is not an ABP/1 server: it answered {len(data)} bytes that are not text,"
            f' beginning "{escape(data[:60])}"'
        )
    if not counter and heard.ended_by == LF and _is_answer(data, counter=True):
        raise NotABP(
            f'{where} answers like the counter service ("{escape(line_content(data))}"):'
            " did you mean `--service counter`?"
        )
