"""The diagnosis of a run: the few root causes that explain most failures.

Pure functions over a ``RunResult``: nothing here talks to a server. A cause
is named only when the run shows it, never from a list of known quirks:

- **answers without LF**: failures whose actual answer lacks the LF the
  expected one ends with (and the framing probe's verdict, when it found the
  answers unterminated);
- **answers that are not ABP/1 answers**: failures whose actual answer does
  not decode as an ABP/1 (or counter) answer at all;
- **a wrong standard text**: failures that got ``ERROR: X`` where the spec
  wants ``ERROR: Y``, the same X for several;
- **closes the connection (or falls silent) on a kind of request**: from
  every transcript of the run, the requests the server answered and the ones
  it closed the connection on, or never answered; a trait of the request (no
  ``:``, more than one ``:``, not UTF-8, second in its write, after an
  ``ERROR`` answer, longer or later than any the server answered...) is named
  when the requests of two or more such failures have it and none the server
  answered does (or, for many failures, hardly any: ``EXCEPTIONS``);
- **serves one connection at a time**: transcripts where a connection waited
  in vain (or could not connect) while an earlier one stayed open, and none
  where the server answered two connections in turn.

Each cause carries the tests and requirement IDs it explains and one short
transcript excerpt. A failure may be explained by more than one cause. The
console, JSON and Markdown reports show the same ``Diagnosis``.
"""

from __future__ import annotations

import ast
import contextlib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from conformance.reports.model import RunResult, TestRecord
from conformance.reports.text import printable
from protocol import MAX_REQUEST_LINE, ABPError
from protocol.codec import decode_counter_reply, decode_response, line_content
from protocol.escape import EscapeError, escape, unescape
from protocol.requirements import catalogue

#: a cause with no trait to name: shown after the others
UNSPECIFIC = "closes the connection in the middle of a conversation"
#: causes shown (the rest are counted)
SHOWN = 5
#: transcript lines in a cause's example
EXCERPT = 4
#: seconds without an answer that count as waiting in vain (the suite's waits are longer)
WAITED = 1.0
#: a trait is named when the failures it explains outnumber by this factor the
#: requests with the trait that the server answered (none, for fewer than 5)
EXCEPTIONS = 10
#: characters of one excerpt line
WIDTH = 100

#: the harness's own transcript notes (``conformance.harness.wire``/``crowd``)
_SERVER_ENDED = ("end of stream from server", "receive failed", "send failed")
_CONNECTED = "connected to "
_US_ENDED = ("closed", "reset (RST)")
_HALF_CLOSED = "half-closed"
_CONNECT_FAILED = re.compile(r"^connect(?: to \S+)? failed")
_TRUNCATED = re.compile(r"(\d+) bytes, first \d+ shown")
#: a failure summary reporting that only some of many connections got through
_SHORTFALL = re.compile(r"\b\d+ of \d+ .*\b(?:connections?|writers?|clients?)\b")


@dataclass(frozen=True)
class Cause:
    """One root cause and the failures it explains."""

    title: str  # what the server does, e.g. "answers end without LF"
    evidence: str  # how the run shows it
    tests: tuple[str, ...]  # node ids of the failures it explains
    requirements: tuple[str, ...]  # the requirements those failures broke, in spec order
    example: str = ""  # the node id of a representative failure
    excerpt: tuple[str, ...] = ()  # a few lines of its transcript

    def headline(self) -> str:
        n, r = len(self.tests), len(self.requirements)
        return (
            f"{self.title}: explains {n} failure{'s' * (n != 1)} in {r} requirement{'s' * (r != 1)}"
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "evidence": self.evidence,
            "tests": list(self.tests),
            "requirements": list(self.requirements),
            "example": self.example,
            "excerpt": list(self.excerpt),
        }


@dataclass(frozen=True)
class Diagnosis:
    failures: int  # failing (or warning) tests diagnosed
    causes: tuple[Cause, ...]  # most explanatory first
    unexplained: tuple[str, ...]  # node ids no cause explains
    unexplained_requirements: tuple[str, ...] = ()  # what those failures broke, in spec order

    @property
    def explained(self) -> int:
        return self.failures - len(self.unexplained)

    def as_json(self) -> dict[str, Any]:
        return {
            "failures": self.failures,
            "explained": self.explained,
            "causes": [cause.as_json() for cause in self.causes],
            "unexplained": list(self.unexplained),
            "unexplained_requirements": list(self.unexplained_requirements),
        }


# -- what a failure and its transcript say
def expected_actual(message: str) -> tuple[bytes | str | None, bytes | str | None]:
    """The expected and actual values of a ``RequirementFailed`` message:
    bytes when shown as escaped bytes ("..."), text for a description."""
    found: dict[str, bytes | str | None] = {"expected": None, "actual": None}
    for line in message.splitlines():
        key, sep, value = line.strip().partition(":")
        if not sep or key not in found:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            with contextlib.suppress(EscapeError):
                found[key] = unescape(value[1:-1])
        elif len(value) >= 2 and value[0] == value[-1] == "'":
            try:
                parsed = ast.literal_eval(value)
            except (ValueError, SyntaxError):
                continue
            found[key] = parsed if isinstance(parsed, str) else None
    return found["expected"], found["actual"]


@dataclass
class _Conn:
    """One connection of a transcript, as the client saw it."""

    name: str
    opened: float | None = None
    ended: float | None = None  # closed by either side
    by_server: bool = False  # the server closed or reset it
    connect_failed: bool = False
    half_closed: bool = False  # the client sent its FIN
    #: (">>" or "<<", time, the bytes shown, how many more bytes were not shown)
    events: list[tuple[str, float, bytes, int]] = field(default_factory=list)

    @property
    def received(self) -> list[tuple[float, bytes]]:
        return [(at, data) for kind, at, data, _ in self.events if kind == "<<"]

    @property
    def first_send(self) -> float | None:
        return next((at for kind, at, _, _ in self.events if kind == ">>"), None)


def _data(item: dict[str, Any]) -> bytes:
    try:
        return unescape(str(item.get("data", "")))
    except EscapeError:
        return b""


def connections(record: TestRecord) -> dict[str, _Conn]:
    """The connections of a test's transcript (meta notes left out); a name
    used again after its connection ended names a new one (``c1#2``)."""
    conns: dict[str, _Conn] = {}
    current: dict[str, _Conn] = {}
    for item in record.transcript_records:
        name, direction = str(item.get("conn", "")), str(item.get("dir", ""))
        if name in ("", "--"):
            continue
        at = float(item.get("t", 0.0))
        note = str(item.get("note", ""))
        conn = current.get(name)
        fresh = note.startswith(_CONNECTED) or _CONNECT_FAILED.match(note) is not None
        if conn is None or (fresh and (conn.events or conn.ended is not None)):
            key = (
                name
                if name not in conns
                else f"{name}#{sum(k.split('#')[0] == name for k in conns) + 1}"
            )
            conn = current[name] = conns[key] = _Conn(key)
        if direction in (">>", "<<"):
            data = _data(item)
            whole = _TRUNCATED.search(note)
            conn.events.append((direction, at, data, int(whole[1]) - len(data) if whole else 0))
        elif note.startswith(_CONNECTED):
            conn.opened = at
        elif note.startswith(_HALF_CLOSED):
            conn.half_closed = True
        elif _CONNECT_FAILED.match(note):
            conn.connect_failed, conn.ended = True, at
        elif note.startswith(_SERVER_ENDED) and conn.ended is None:
            conn.ended, conn.by_server = at, True
        elif note.startswith(_US_ENDED) and conn.ended is None:
            conn.ended = at
    return conns


@dataclass(frozen=True)
class _Request:
    """One request sent, as the server must have seen it."""

    data: bytes  # without its terminator
    several: bool  # its write held more than one request
    partial: bool  # the transcript shows only its start
    answered: bool = False  # an answer came before the next request was sent (legacy)
    size: int = -1  # its length in bytes, when the transcript shows only its start
    later: bool = False  # another request came before it in the same write

    @property
    def length(self) -> int:
        return self.size if self.size >= 0 else len(self.data)


def requests(conn: _Conn, legacy: bool) -> list[_Request]:
    """The requests sent on a connection: its lines (in legacy framing, what
    was sent between two answers, LF or not, as a server that reads one
    request per ``recv`` sees it); bytes left unterminated end a request when
    an answer follows them."""
    out: list[_Request] = []
    pending, cut_short, several, missing = b"", False, False, 0
    for kind, _, data, cut in conn.events:
        if kind == "<<":
            if pending:
                size = len(pending) + missing if cut_short else -1
                content = line_content(pending + b"\n")
                out.append(_Request(content, several, cut_short, legacy, size))
                pending, cut_short, several, missing = b"", False, False, 0
            continue
        if legacy:
            pending += data
            several = several or pending.rstrip(b"\n").count(b"\n") > 0
            cut_short = cut_short or cut > 0
            missing += cut
            continue
        pieces = (pending + data).split(b"\n")
        pending = pieces.pop()
        several = len(pieces) + bool(pending) > 1
        out += [
            _Request(line_content(p + b"\n"), several, False, later=n > 0)
            for n, p in enumerate(pieces)
        ]
        if cut and pending:
            size = len(pending) + cut
            out.append(_Request(pending, several, True, size=size, later=bool(pieces)))
            pending = b""
    if pending:
        size = len(pending) + missing if cut_short else -1
        out.append(_Request(line_content(pending + b"\n"), several, cut_short, size=size))
    return out


def replies(conn: _Conn, legacy: bool) -> list[bytes]:
    """The answers a connection got, in order: its lines (in legacy framing,
    what came back between two requests)."""
    if not legacy:
        data = b"".join(data for _, data in conn.received)
        return [line + b"\n" for line in data.split(b"\n")[:-1]]
    out: list[bytes] = []
    fresh = True
    for kind, _, data, _ in conn.events:
        if kind == ">>":
            fresh = True
        elif fresh:
            out.append(data)
            fresh = False
        else:
            out[-1] += data
    return out


def _answers(conn: _Conn, legacy: bool, sent: list[_Request]) -> int:
    """How many of the requests sent were answered: as many as answer lines
    came back (in legacy framing, those an answer followed)."""
    if legacy:
        return sum(1 for r in sent if r.answered)
    return b"".join(data for _, data in conn.received).count(b"\n")


@dataclass(frozen=True)
class _Turn:
    """A request in its place on its connection."""

    request: _Request
    index: int  # answers the connection had got before it
    after: bytes  # the answer before it on its connection (b"" for none)
    closed: bool = False  # left unanswered: the server closed (else it fell silent)


def _sides(record: TestRecord, legacy: bool) -> tuple[list[_Turn], list[_Turn]]:
    """(requests answered, the request each connection got stuck on): the
    first one left unanswered when the server closed the connection or fell
    silent for ``WAITED`` seconds, or the last one answered when the server
    closed the connection right after it with the client's side still open."""
    answered: list[_Turn] = []
    stuck: list[_Turn] = []
    for conn in connections(record).values():
        sent = requests(conn, legacy)
        answers = replies(conn, legacy)
        n = min(_answers(conn, legacy, sent), len(sent))
        turns = [
            _Turn(x, i, answers[i - 1] if 0 < i <= len(answers) else b"")
            for i, x in enumerate(sent)
        ]
        answered += turns[:n]
        if len(sent) > n and (conn.by_server or _waited(conn, legacy)):
            stuck.append(replace(turns[n], closed=conn.by_server))
        elif conn.by_server and sent and not conn.half_closed:
            stuck.append(replace(answered.pop(), closed=True))
    return answered, stuck


# -- traits of the request a connection got stuck on
def _utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _colons(x: _Request) -> int:
    count = x.data.count(b":")
    return count if count > 1 or not x.partial else -1  # -1: not known


#: (what the requests have in common, does this request have it), the more
#: specific first (of two that explain as many failures, the first is named);
#: a request the transcript shows only the start of has a trait only when its
#: start shows it
TRAITS: tuple[tuple[str, Callable[[_Turn], bool]], ...] = (
    ("a request with no `:`", lambda t: _colons(t.request) == 0),
    ("a request with more than one `:`", lambda t: _colons(t.request) > 1),
    (
        "a request that does not hold exactly one `:`",
        lambda t: _colons(t.request) == 0 or _colons(t.request) > 1,
    ),
    (
        "a request that is not UTF-8",
        lambda t: (
            not _utf8(t.request.data.rstrip(b"\x80\xbf") if t.request.partial else t.request.data)
        ),
    ),
    (
        "a request holding a control byte (NUL, CR...)",
        lambda t: any(b < 0x20 for b in t.request.data),
    ),
    (
        f"a request longer than {MAX_REQUEST_LINE} bytes",
        lambda t: t.request.length > MAX_REQUEST_LINE,
    ),
    ("a request sent with other requests in one write", lambda t: t.request.several),
    ("a request that followed another in the same write", lambda t: t.request.later),
    ("the request after an ERROR answer", lambda t: t.after.startswith(b"ERROR")),
)


def _run_traits(answered: Sequence[_Turn]) -> list[tuple[str, Callable[[_Turn], bool]]]:
    """Traits whose bound comes from the run: what the server did at most."""
    longest = max((t.request.length for t in answered), default=0)
    most = max((t.index for t in answered), default=0)
    return [
        (
            f"a request longer than {longest} bytes, the longest it answered",
            lambda t: t.request.length > longest,
        ),
        (
            f"the request after {most + 1} answers on one connection, the most it gave",
            lambda t: t.index > most,
        ),
    ]


# -- excerpts
def _show_item(item: dict[str, Any]) -> str:
    conn, direction = str(item.get("conn", "")), str(item.get("dir", ""))
    at = f"+{float(item.get('t', 0.0)):.3f}s {conn}"
    if direction == "--":
        text = f"{at} -- {item.get('note', '')}"
    else:
        text = f'{at} {direction} "{item.get("data", "")}"'
    text = printable(text)
    return text if len(text) <= WIDTH else text[: WIDTH - 3] + "..."


def excerpt(
    record: TestRecord, pick: Callable[[dict[str, Any]], bool] | None = None
) -> tuple[str, ...]:
    """The last lines of a test's transcript on its connections (or those ``pick`` keeps)."""
    items = [
        item
        for item in record.transcript_records
        if str(item.get("conn", "--")) != "--" and (pick is None or pick(item))
    ]
    if len({item.get("conn") for item in items}) == 1:  # the connect says nothing then
        items = [item for item in items if not str(item.get("note", "")).startswith(_CONNECTED)]
    return tuple(_show_item(item) for item in items[-EXCERPT:])


def _representative(
    records: Sequence[TestRecord], pick: Callable[[TestRecord], tuple[str, ...]]
) -> tuple[TestRecord, tuple[str, ...]]:
    """The failure with the shortest transcript that shows something, and what it shows."""
    shown = [(record, pick(record)) for record in records]
    return min(shown, key=lambda p: (not p[1], len(p[0].transcript_records), p[0].nodeid))


def broken_requirements(records: Iterable[TestRecord]) -> tuple[str, ...]:
    """The requirements these failures broke (each its failure's, else its
    markers), in spec order."""
    order = {rid: n for n, rid in enumerate(catalogue())}
    broken = {
        rid
        for r in records
        for rid in ([r.failed_requirement] if r.failed_requirement else r.requirements)
    }
    return tuple(sorted(broken, key=lambda rid: (order.get(rid, len(order)), rid)))


def _cause(
    title: str,
    evidence: str,
    records: Sequence[TestRecord],
    pick: Callable[[TestRecord], tuple[str, ...]] | None = None,
    examples: Sequence[TestRecord] = (),
) -> Cause:
    example, lines = _representative(examples or records, pick or excerpt)
    return Cause(
        title,
        evidence,
        tuple(sorted({r.nodeid for r in records})),
        broken_requirements(records),
        example.nodeid,
        lines,
    )


def _answer_excerpt(record: TestRecord) -> tuple[str, ...]:
    expected, _ = expected_actual(record.message)
    lines = list(excerpt(record, lambda item: item.get("dir") in (">>", "<<")))[-2:]
    if isinstance(expected, bytes):
        lines.append(printable(f'expected "{escape(expected)}"')[:WIDTH])
    return tuple(lines)


# -- the causes
def _lacks_lf(record: TestRecord) -> bool:
    expected, actual = expected_actual(record.message)
    if not isinstance(actual, bytes) or not actual or actual.endswith(b"\n"):
        return False
    if isinstance(expected, bytes):
        return expected.endswith(b"\n")
    return isinstance(expected, str) and "LF" in expected


def _no_lf(result: RunResult, failures: Sequence[TestRecord]) -> Cause | None:
    hits = [r for r in failures if _lacks_lf(r)]
    probe = (
        str(result.target.get("framing_reason", ""))
        if result.target.get("framing") == "legacy"
        else ""
    )
    if len(hits) < (1 if probe else 2):
        return None
    evidence = f"{len(hits)} failures got an answer with no LF where one was due"
    if probe:
        evidence += f"; the framing probe: {probe}"
    return _cause("answers end without LF", evidence, hits, _answer_excerpt)


def _not_abp(actual: bytes) -> bool:
    body = line_content(actual if actual.endswith(b"\n") else actual + b"\n")
    for decode in (decode_response, decode_counter_reply):
        try:
            decode(body)
        except ABPError:
            continue
        return False
    return True


def _free_text(result: RunResult, failures: Sequence[TestRecord]) -> Cause | None:
    hits = []
    for record in failures:
        expected, actual = expected_actual(record.message)
        if isinstance(actual, bytes) and actual and expected is not None and _not_abp(actual):
            hits.append(record)
    if len(hits) < 2:
        return None
    evidence = f"{len(hits)} failures got an answer that is neither OK nor ERROR (free text)"
    return _cause("answers are not ABP/1 answers", evidence, hits, _answer_excerpt)


_ERROR = re.compile(rb"^ERROR: (.*)$")


def _error_text(data: bytes) -> bytes | None:
    match = _ERROR.match(line_content(data if data.endswith(b"\n") else data + b"\n"))
    return match.group(1) if match else None


def _heads(want: bytes, got: bytes) -> tuple[bytes, bytes]:
    """The two texts without the words they end with in common."""
    n = 0
    while n < min(len(want), len(got)) and want[-1 - n] == got[-1 - n]:
        n += 1
    while n and want[len(want) - n : len(want) - n + 1] not in (b" ", b""):
        n -= 1  # keep whole words
    return want[: len(want) - n], got[: len(got) - n]


def _wrong_texts(result: RunResult, failures: Sequence[TestRecord]) -> list[Cause]:
    """``ERROR: X`` where the spec wants ``ERROR: Y``: two or more failures
    with the same words in place of the standard ones."""
    groups: dict[tuple[bytes, bytes], list[tuple[TestRecord, bytes, bytes]]] = {}
    for record in failures:
        expected, actual = expected_actual(record.message)
        if not isinstance(expected, bytes) or not isinstance(actual, bytes):
            continue
        want, got = _error_text(expected), _error_text(actual)
        if want is None or got is None or want == got:
            continue
        groups.setdefault(_heads(want, got), []).append((record, want, got))
    causes = []
    for (want_head, got_head), hits in groups.items():
        if len(hits) < 2 or not want_head.strip():
            continue
        _, want, got = hits[0]
        same = all((w, g) == (want, got) for _, w, g in hits)
        if same:
            title = f'answers "ERROR: {escape(got)}" where the spec wants "ERROR: {escape(want)}"'
        else:
            title = (
                f'answers "ERROR: {escape(got_head).rstrip()} ..." where the spec wants'
                f' "ERROR: {escape(want_head).rstrip()} ..."'
            )
        evidence = f"{len(hits)} failures got this error text where the standard one was due"
        causes.append(_cause(title, evidence, [r for r, _, _ in hits], _answer_excerpt))
    return causes


def _stuck(result: RunResult, failures: Sequence[TestRecord]) -> list[Cause]:
    """What the requests the server closed the connection on, or fell silent
    on, have in common, and no request it answered has."""
    legacy = result.target.get("framing") == "legacy"
    answered: list[_Turn] = []
    for record in result.records:
        answered += _sides(record, legacy)[0]
    left = {r.nodeid: _sides(r, legacy)[1] for r in failures}
    left = {nodeid: turns for nodeid, turns in left.items() if turns}
    by_id = {r.nodeid: r for r in failures}
    causes: list[Cause] = []
    traits = [*TRAITS, *_run_traits(answered)]
    while left:
        best: tuple[int, int, str, list[str]] | None = None
        for trait, has in traits:
            ids = [nodeid for nodeid, turns in left.items() if any(has(t) for t in turns)]
            if len(ids) < 2 or (best is not None and len(ids) <= best[0]):
                continue
            exceptions = sum(1 for t in answered if has(t))
            if exceptions * EXCEPTIONS <= len(ids) and (not exceptions or len(ids) >= 5):
                best = (len(ids), exceptions, trait, ids)
        if best is None:
            break
        _, exceptions, trait, ids = best
        title = f"{_what(left[i] for i in ids)} on {trait}"
        evidence = f"{len(ids)} failures stopped at such a request; " + (
            f"the server answered {exceptions} such request(s) of {len(answered)} in this run"
            if exceptions
            else f"none of the {len(answered)} requests the server answered in this run was one"
        )
        causes.append(_cause(title, evidence, [by_id[i] for i in ids]))
        for i in ids:
            left.pop(i)
    closed = {i: turns for i, turns in left.items() if any(t.closed for t in turns)}
    if len(closed) >= 2:
        causes.append(
            _cause(
                UNSPECIFIC,
                f"{len(closed)} failures where the server closed the connection on (or right"
                " after) a request; no trait common to those requests and absent from those"
                " answered",
                [by_id[i] for i in closed],
            )
        )
    return causes


def _what(stuck: Iterable[Sequence[_Turn]]) -> str:
    kinds = {t.closed for turns in stuck for t in turns}
    if kinds == {True}:
        return "closes the connection"
    return "falls silent" if kinds == {False} else "closes the connection or falls silent"


def _waited(conn: _Conn, legacy: bool) -> bool:
    """The connection could not connect, or sent a request and neither got
    an answer nor saw the server close for ``WAITED`` seconds or more."""
    if conn.connect_failed:
        return True
    sent = requests(conn, legacy)
    if not sent or _answers(conn, legacy, sent) >= len(sent) or conn.by_server:
        return False
    last = max(at for kind, at, _, _ in conn.events if kind == ">>")
    return conn.ended is None or conn.ended - last >= WAITED


def _holdup(record: TestRecord, legacy: bool) -> tuple[str, str] | None:
    """(the connection that waited in vain, the earlier one open meanwhile)."""
    conns = list(connections(record).values())
    for x in conns:
        start = x.opened if x.opened is not None else x.ended
        if start is None or not _waited(x, legacy):
            continue
        for y in conns:
            if y is x or y.opened is None or y.opened > start:
                continue
            if y.ended is None or (x.ended is not None and y.ended >= x.ended):
                return x.name.partition("#")[0], y.name.partition("#")[0]
    return None


def _holdup_excerpt(legacy: bool) -> Callable[[TestRecord], tuple[str, ...]]:
    """The earlier connection opening, then what the one held up sent and how it ended."""

    def pick(record: TestRecord) -> tuple[str, ...]:
        pair = _holdup(record, legacy)
        if pair is None:
            return excerpt(record)
        held, holder = pair
        items = record.transcript_records
        first = [i for i in items if i.get("conn") == holder][:1]
        rest = [
            i
            for i in items
            if i.get("conn") == held and not str(i.get("note", "")).startswith(_HALF_CLOSED)
        ]
        return tuple(_show_item(i) for i in [*first, *rest[-(EXCERPT - 1) :]])

    return pick


def _served_in_turn(record: TestRecord) -> bool:
    """Answers on two connections interleaved (Y, X, Y): the server served both at once."""
    answers = sorted(
        (at, conn.name) for conn in connections(record).values() for at, _ in conn.received
    )
    order = [name for _, name in answers]
    compact = [name for n, name in enumerate(order) if n == 0 or order[n - 1] != name]
    seen: set[str] = set()
    for name in compact:
        if name in seen:
            return True
        seen.add(name)
    return False


def _one_at_a_time(result: RunResult, failures: Sequence[TestRecord]) -> Cause | None:
    legacy = result.target.get("framing") == "legacy"
    held = [r for r in failures if _holdup(r, legacy)]
    if not held or any(_served_in_turn(r) for r in result.records):
        return None
    rest = [r for r in failures if r not in held]
    shortfall = [r for r in rest if _SHORTFALL.search(r.message.partition("\n")[0])]
    evidence = (
        f"{len(held)} failures where a connection got no answer (or could not connect) while an"
        " earlier one stayed open, and no test saw two connections served in turn"
    )
    if shortfall:
        evidence += f"; {len(shortfall)} more saw only some of many connections served"
    silent: list[TestRecord] = []
    workers = result.target.get("workers")
    if isinstance(workers, int) and workers > 1:
        silent = [
            r
            for r in rest
            if r not in shortfall and any(_waited(c, legacy) for c in connections(r).values())
        ]
    if silent:
        evidence += (
            f"; {len(silent)} more got no answer at all (with {workers} workers, another"
            " test's connection may have held the server)"
        )
    return _cause(
        "serves one connection at a time",
        evidence,
        held + shortfall + silent,
        _holdup_excerpt(legacy),
        examples=held,
    )


#: every cause finder, over the run and its failures
FINDERS: tuple[Callable[[RunResult, Sequence[TestRecord]], Cause | list[Cause] | None], ...] = (
    _no_lf,
    _free_text,
    _wrong_texts,
    _stuck,
    _one_at_a_time,
)


def diagnose(result: RunResult) -> Diagnosis:
    """The causes behind the run's failures and warnings (those a baseline
    does not expect), most explanatory first (one that names no trait last)."""
    failures = [r for r in result.records if r.counts_against]
    causes: list[Cause] = []
    if failures:
        for finder in FINDERS:
            found = finder(result, failures)
            causes += found if isinstance(found, list) else [found] if found else []
    causes.sort(key=lambda c: (c.title == UNSPECIFIC, -len(c.tests), c.title))
    explained = {nodeid for cause in causes for nodeid in cause.tests}
    left = [r for r in failures if r.nodeid not in explained]
    unexplained = tuple(sorted(r.nodeid for r in left))
    return Diagnosis(len(failures), tuple(causes), unexplained, broken_requirements(left))


# -- rendering
def _ids(ids: Iterable[str]) -> str:
    return " ".join(ids)


def console_lines(diagnosis: Diagnosis, *, shown: int = SHOWN, excerpts: bool = True) -> list[str]:
    """The diagnosis for the console's summary (no lines when nothing failed)."""
    if not diagnosis.failures:
        return []
    if not diagnosis.causes:
        return ["", f"diagnosis: no common cause found for the {diagnosis.failures} failures"]
    out = [
        "",
        f"diagnosis: {len(diagnosis.causes)} likely cause(s) explain {diagnosis.explained}"
        f" of {diagnosis.failures} failures",
    ]
    for n, cause in enumerate(diagnosis.causes[:shown], 1):
        out.append(f"  {n}. {cause.headline()}")
        out.append(f"     {_ids(cause.requirements)}")
        out.append(f"     why: {printable(cause.evidence)}")
        if excerpts and cause.example:
            out.append(f"     e.g. {cause.example}")
            out += [f"       {line}" for line in cause.excerpt]
    rest = diagnosis.causes[shown:]
    if rest:
        out.append(f"  ... {len(rest)} more cause(s) in the JSON report")
    if diagnosis.unexplained:
        ids = " ".join(diagnosis.unexplained_requirements)
        out.append(f"  not explained: {len(diagnosis.unexplained)} failure(s) ({ids})")
    return out


def markdown_lines(diagnosis: Diagnosis, cell: Callable[[object], str]) -> list[str]:
    """A short Markdown list of the causes (``cell`` escapes one line of text)."""
    if not diagnosis.causes:
        return []
    out = [
        f"**Likely causes** ({diagnosis.explained} of {diagnosis.failures} failures explained):",
        "",
    ]
    for cause in diagnosis.causes[:SHOWN]:
        out.append(f"- {cell(cause.headline())} ({cell(_ids(cause.requirements))})")
    if len(diagnosis.causes) > SHOWN:
        out.append(f"- ... {len(diagnosis.causes) - SHOWN} more in the JSON report")
    return [*out, ""]


__all__ = [
    "Cause",
    "Diagnosis",
    "connections",
    "console_lines",
    "diagnose",
    "expected_actual",
    "markdown_lines",
]
