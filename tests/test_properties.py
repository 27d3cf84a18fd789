"""Properties of the whole package, with hypothesis and ``protocol.strategies``.

- any valid name and entry round-trip byte-exact, client to server and back;
- no byte stream makes a connection raise anything but ``ABPError`` (and the
  server side raises nothing at all: bad input becomes ``InvalidRequest``);
- how a stream is split into chunks never changes the events (ABP-FRAME-4,
  ABP-FRAME-7);
- every malformed line gets an ``ERROR: `` answer.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st

from protocol import (
    ABPError,
    Add,
    ClientConnection,
    ConnectionClosed,
    Find,
    InvalidRequest,
    Ok,
    Remove,
    Request,
    ServerConnection,
)
from protocol import strategies as abp_st
from protocol.codec import LineFrame, LineReader, decode_request, encode_request, encode_response
from protocol.requirements import catalogue

# construct compiles and caches on first use: the first example can be slow.
sane = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])

#: Streams that also cross the 4096-byte line limit, and CRs on their own.
long_runs = st.integers(min_value=4090, max_value=4100).map(lambda n: b"x" * n)
streams = st.lists(
    st.one_of(abp_st.byte_streams(), long_runs, st.sampled_from([b"\r", b"\r\n", b"\n"])),
    max_size=6,
).map(b"".join)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    """``data`` cut at the given offsets (taken modulo its length)."""
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points) if b > a]


def normal(event: object) -> object:
    """Events made comparable: an InvalidRequest's error compares by identity."""
    if isinstance(event, InvalidRequest):
        return ("invalid", event.error.requirement, event.reply, event.raw)
    return event


def feed(
    receive: Callable[[bytes], list[Any]], chunks: list[bytes]
) -> tuple[list[object], str | None]:
    """Feed chunks then EOF; events until the first error, and that error's requirement."""
    events: list[object] = []
    try:
        for chunk in [*chunks, b""]:
            events += [normal(e) for e in receive(chunk)]
    except ABPError as exc:
        return events, exc.requirement
    return events, None


def answer_to(request: Request) -> Ok:
    return Ok(request.entry if isinstance(request, Add) else request.name)


def busy_client(**options: Any) -> ClientConnection:
    """A client with answers to expect, so that answers are not unsolicited
    (a legacy client has one request at a time)."""
    client = ClientConnection(**options)
    for _ in range(1 if client.legacy else 50):
        client.send(b"x" if client.counter else Find("x"))
    return client


CLIENTS = {
    "default": {},
    "legacy": {"legacy": True},
    "counter": {"counter": True},
    "legacy-counter": {"legacy": True, "counter": True},
}

# ----------------------------------------------------------------- round trip


@sane
@given(abp_st.names(), abp_st.entries())
def test_add_round_trips_byte_exact(name: str, entry: str) -> None:
    """ABP-REQ-12, ABP-RESP-2: the bytes on the wire are the UTF-8 of the text."""
    client, server = ClientConnection(), ServerConnection()
    data = client.send(Add(name, entry))
    assert data == b"add:" + name.encode() + b"," + entry.encode() + b"\n"
    assert server.receive_data(data) == [Add(name, entry)]
    reply = server.send(Ok(entry))
    assert reply == b"OK: " + entry.encode() + b"\n"
    assert client.receive_data(reply) == [Ok(entry)]


@sane
@given(abp_st.requests())
def test_request_round_trips(request_: Request) -> None:
    client, server = ClientConnection(), ServerConnection()
    data = client.send(request_)
    assert server.receive_data(data) == [request_]
    assert client.receive_data(server.send(answer_to(request_))) == [answer_to(request_)]


@sane
@given(abp_st.request_lines())
def test_request_lines_decode_and_encode_back(line: bytes) -> None:
    assert line.endswith(b"\n")
    assert len(line) <= 4097
    assert encode_request(decode_request(line[:-1])) == line


REACH = [
    (abp_st.names(), lambda s: any(ord(c) > 0xFFFF for c in s), "astral-name"),
    (abp_st.entries(), lambda s: "\uffff" in s, "U+FFFF-entry"),
    (abp_st.entries(), lambda s: "\U0010ffff" in s, "U+10FFFF-entry"),
    (abp_st.names(), lambda s: "\U0010ffff" in s, "U+10FFFF-name"),
    (abp_st.names(), lambda s: any(0x20000 <= ord(c) < 0xE0000 for c in s), "planes-2-13"),
    (abp_st.names(), lambda s: any(ord(c) >= 0xE0000 for c in s), "planes-14-16"),
    (abp_st.names(), lambda s: ":" in s, "colon-in-name"),
    (abp_st.entries(), lambda s: ":" in s and "," in s, "colon-and-comma-in-entry"),
    (abp_st.entries(), lambda s: "\u2028" in s or "\x85" in s, "non-ABP-line-break"),
]


@pytest.mark.parametrize(
    ("strategy", "wanted"), [pytest.param(s, w, id=name) for s, w, name in REACH]
)
def test_strategies_reach(strategy: Any, wanted: Callable[[str], bool]) -> None:
    """The round trips above are only as good as what the strategies draw."""
    example = find(
        strategy, wanted, settings=settings(max_examples=2000, derandomize=True, database=None)
    )
    assert wanted(example)


# ----------------------------------------------------- no unexpected exception


@sane
@given(streams, st.lists(st.integers(min_value=0), max_size=8))
def test_server_never_raises_on_peer_input(data: bytes, cuts: list[int]) -> None:
    """Whatever the peer sends, the server gets events, never an exception."""
    for options in ({}, {"counter": True}, {"quiet_period": 0.01}):
        server = ServerConnection(**options)
        now = 0.0
        for chunk in split(data, cuts):
            for event in server.receive_data(chunk, now) + server.expire(now + 0.005):
                if isinstance(event, InvalidRequest):
                    assert encode_response(event.reply).startswith(b"ERROR: ")
            now += 0.02
            server.expire(now)
        events = server.receive_data(b"", now)
        assert events[-1] == ConnectionClosed()


@sane
@given(streams, st.lists(st.integers(min_value=0), max_size=8))
@pytest.mark.parametrize("options", CLIENTS.values(), ids=CLIENTS.keys())
def test_client_raises_only_abp_errors(
    options: dict[str, Any], data: bytes, cuts: list[int]
) -> None:
    client = busy_client(**options)
    now = 0.0
    try:
        for chunk in split(data, cuts):
            client.receive_data(chunk, now)
            now += 0.2
            client.expire(now)
        client.receive_data(b"", now)
    except ABPError:
        pass


@sane
@given(streams, st.lists(st.integers(min_value=0), max_size=8), st.integers(1, 12))
def test_line_reader_never_raises(data: bytes, cuts: list[int], limit: int) -> None:
    reader = LineReader(limit, quiet_period=0.1)
    now = 0.0
    for chunk in split(data, cuts):
        reader.feed(chunk, now)
        now += 0.05 * (len(chunk) % 4)
        reader.expire(now)
    reader.feed_eof()
    assert reader.buffered == 0


# ------------------------------------------------------ segmentation-blindness


def reference_lines(data: bytes, limit: int) -> list[bytes | None]:
    """The framing rules of section 2, written the obvious way (None: too long)."""
    *complete, last = data.split(b"\n")
    out: list[bytes | None] = []
    for raw in [*complete, last] if last else complete:
        line = raw.removesuffix(b"\r")
        out.append(None if len(line) > limit else line)
    return out


@sane
@given(
    st.lists(st.sampled_from([b"x", b"yz", b"\r", b"\n", b"\r\n", b"abcdefg"]), max_size=40).map(
        b"".join
    ),
    st.lists(st.integers(min_value=0), max_size=10),
    st.integers(1, 8),
)
def test_line_reader_matches_the_rules_for_any_split(
    data: bytes, cuts: list[int], limit: int
) -> None:
    """Small limits make every edge of the limit likely: CR held at limit+1, etc."""
    reader = LineReader(limit)
    frames = []
    for chunk in split(data, cuts):
        frames += reader.feed(chunk, 0.0)
    frames += reader.feed_eof()
    assert [f.data if isinstance(f, LineFrame) else None for f in frames] == reference_lines(
        data, limit
    )


@sane
@given(streams, st.lists(st.integers(min_value=0), max_size=10))
def test_server_events_do_not_depend_on_the_split(data: bytes, cuts: list[int]) -> None:
    """ABP-FRAME-4."""
    for counter in (False, True):
        whole = feed(ServerConnection(counter=counter).receive_data, [data])
        parts = feed(ServerConnection(counter=counter).receive_data, split(data, cuts))
        one_byte = feed(ServerConnection(counter=counter).receive_data, [bytes([b]) for b in data])
        assert parts == whole
        assert one_byte == whole
        assert whole[1] is None


@sane
@given(streams, st.lists(st.integers(min_value=0), max_size=10))
@pytest.mark.parametrize("options", CLIENTS.values(), ids=CLIENTS.keys())
def test_client_events_do_not_depend_on_the_split(
    options: dict[str, Any], data: bytes, cuts: list[int]
) -> None:
    """ABP-FRAME-7. On an error, the whole feed loses that feed's events: compare
    what both saw, and that both failed for the same reason."""
    whole_events, whole_error = feed(busy_client(**options).receive_data, [data])
    parts_events, parts_error = feed(busy_client(**options).receive_data, split(data, cuts))
    assert parts_error == whole_error
    if whole_error is None:
        assert parts_events == whole_events
    else:
        assert parts_events[: len(whole_events)] == whole_events


@sane
@given(st.lists(abp_st.requests(), min_size=1, max_size=10), st.lists(st.integers(0), max_size=10))
def test_pipelined_requests_survive_any_split(requests: list[Request], cuts: list[int]) -> None:
    """ABP-CONN-2 + ABP-FRAME-4: requests come out whole and in order."""
    client, server = ClientConnection(), ServerConnection()
    data = b"".join(client.send(r) for r in requests)
    events = []
    for chunk in split(data, cuts):
        events += server.receive_data(chunk)
    assert events == requests
    answers = b"".join(server.send(answer_to(r)) for r in requests)
    replies = []
    for chunk in split(answers, cuts):
        replies += client.receive_data(chunk)
    assert replies == [answer_to(r) for r in requests]
    assert client.outstanding == 0


# --------------------------------------------------------------- bad requests


@sane
@given(abp_st.malformed_lines())
def test_malformed_lines_get_an_error_answer(line: bytes) -> None:
    server = ServerConnection()
    (event,) = server.receive_data(line)
    assert isinstance(event, InvalidRequest)
    assert event.error.requirement in catalogue()
    answer = server.send(event.reply)
    assert answer.startswith(b"ERROR: ")
    assert answer.count(b"\n") == 1


@sane
@given(st.lists(abp_st.malformed_lines() | abp_st.request_lines(), min_size=1, max_size=8))
def test_a_bad_line_spoils_nothing_after_it(lines: list[bytes]) -> None:
    """ABP-CONN-3: one event per line, whatever its neighbours."""
    events = ServerConnection().receive_data(b"".join(lines))
    assert len(events) == len(lines)
    for line, event in zip(lines, events, strict=True):
        assert isinstance(event, (InvalidRequest, Add, Remove, Find))
        if not isinstance(event, InvalidRequest):
            assert encode_request(event) == line
