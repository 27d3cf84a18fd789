"""Section 5 of docs/spec.md: Connections.

Many requests per connection, pipelining, errors that keep the connection
open, 200 clients at once, and the clients that must not hold anybody up:
silent, half a line, never reading, resetting. A server that serves one
client at a time fails here within ``abp.target.holdup_bound`` seconds, not a timeout.
"""

from __future__ import annotations

import math
import socket
import time
from dataclasses import dataclass

import pytest

from conformance.harness.crowd import Crowd, Member
from conformance.harness.raw import DEADLINE, Drained, Inconclusive
from conformance.harness.timing import (
    CROWD_CONNECT,
    FLOOD,
    IDLE_DRAIN,
    IDLE_DRAIN_QUIET,
    IDLE_EARLY,
    IDLE_GRACE,
    READING_PAUSE,
    SETTLE,
    budget,
)
from conformance.judging.session import ANY_OK, Expected, ServerSession, decode, refusal, wire_form
from conformance.judging.verdict import fail
from protocol import MAX_REQUEST_LINE, Add, Error, Find, Ok, Remove, Request, ServerBusy
from protocol.codec import (
    INVALID_UTF8,
    MALFORMED_REQUEST,
    encode_request,
    encode_response,
    line_content,
    no_entry,
    unrecognised,
)
from protocol.program import raise_fd_limit

BUSY = ServerBusy()
CROWD = 200
#: Descriptors this process needs besides a crowd's (the transcript, pytest, a probe).
FD_MARGIN = 64
#: Connections past the limit closed and tried again (ABP-CONN-8).
REFUSALS = 3


# ---------------------------------------------------------------- ABP-CONN-1


@pytest.mark.requirement("ABP-CONN-1")
def test_connection_carries_many_requests(abp: ServerSession) -> None:
    """ABP-CONN-1: "A connection MUST carry any number of requests, one after
    the other, until the client closes it." (Five in legacy framing, where
    each answer ends only after a quiet gap; fifty otherwise.)"""
    conn = abp.raw("ABP-CONN-1")
    name = abp.name()
    rounds = 5 if abp.target.legacy else 25
    for i in range(rounds):
        abp.expect(
            "ABP-CONN-1", Add(name, f"v{i}"), ANY_OK, f"add #{i + 1}", conn=conn, by="meaning"
        )
        abp.expect("ABP-CONN-1", Find(name), Ok(f"v{i}"), f"fnd #{i + 1}", conn=conn, by="meaning")


#: Answers a client leaves unread for a moment: 60 of a 4000-byte entry, more
#: than its small window (``UNREAD_RCVBUF``) and the server's socket hold.
PAUSED_ANSWERS = 60


@pytest.mark.requirement("ABP-CONN-1")
def test_connection_carries_requests_after_its_client_paused_reading(
    abp: ServerSession,
) -> None:
    """ABP-CONN-1: "A connection MUST carry any number of requests, one after
    the other, until the client closes it." A client asks for more answers
    than the sockets hold, leaves them unread for a moment (the server has to
    pause its writes), reads them all, then asks again: that request is
    answered too (found by a mutant of the reference server that never read
    from such a connection again)."""
    if abp.target.legacy:
        pytest.skip("pipelines requests, which needs line framing (the target: --framing legacy)")
    idle = abp.target.idle_timeout
    pause = READING_PAUSE if idle is None else min(READING_PAUSE, idle / 2)
    name = abp.name("paused")
    entry = "p" * 4000
    abp.expect("ABP-CONN-1", Add(name, entry), ANY_OK, "add of a 4000-byte entry", by="meaning")
    conn = abp.raw("ABP-CONN-1", recv_buffer=UNREAD_RCVBUF)
    conn.send(encode_request(Find(name)) * PAUSED_ANSWERS, f"{PAUSED_ANSWERS} lookups")
    abp.transcript.note(conn.name, f"reads nothing for {pause:g}s")
    if conn.hung_up(pause):
        fail("ABP-CONN-1", f"the server closed the connection while its client paused {pause:g}s")
    abp.expect_lines(
        "ABP-CONN-1", conn, [Ok(entry)] * PAUSED_ANSWERS, "the answers read after the pause"
    )
    abp.expect("ABP-CONN-1", Find(name), Ok(entry), "a request after that", conn=conn, by="meaning")


# ---------------------------------------------------------------- ABP-CONN-2


@pytest.mark.requirement("ABP-CONN-2")
def test_100_pipelined_requests_in_one_write_are_answered_in_order(abp: ServerSession) -> None:
    """ABP-CONN-2: "A server MUST answer pipelined requests (several requests
    sent before any answer is read) all, in the order they were sent." One
    write of 100 requests whose answers all differ."""
    data = bytearray()
    expected: list[Expected] = []
    for i in range(33):
        name, missing = abp.name(), abp.name("missing")
        data += encode_request(Add(name, f"entry {i}"))
        data += encode_request(Find(name))
        data += encode_request(Find(missing))
        expected += [ANY_OK, Ok(f"entry {i}"), no_entry(missing)]
    last = abp.name("last")
    data += encode_request(Find(last))
    expected.append(no_entry(last))
    assert len(expected) == 100
    conn = abp.raw("ABP-CONN-2")
    conn.send(bytes(data), "100 requests in one write")
    abp.expect_lines("ABP-CONN-2", conn, expected, "100 pipelined requests")


@pytest.mark.requirement("ABP-CONN-2", "ABP-DUR-4")
def test_pipelined_changes_to_one_name_take_effect_in_order(abp: ServerSession) -> None:
    """ABP-CONN-2: "... all, in the order they were sent": lookups pipelined
    between changes of the same name see each change in turn."""
    name = abp.name()
    requests: list[tuple[Request, Expected]] = [
        (Add(name, "a"), ANY_OK),
        (Find(name), Ok("a")),
        (Add(name, "b"), ANY_OK),
        (Find(name), Ok("b")),
        (Remove(name), ANY_OK),
        (Find(name), no_entry(name)),
        (Remove(name), no_entry(name)),
        (Add(name, "c"), ANY_OK),
        (Find(name), Ok("c")),
    ]
    conn = abp.raw("ABP-CONN-2")
    conn.send(b"".join(encode_request(r) for r, _ in requests))
    abp.expect_lines(
        "ABP-CONN-2",
        conn,
        [want for _, want in requests],
        "changes and lookups of one name, pipelined",
    )


@pytest.mark.requirement("ABP-CONN-2", "ABP-CONN-3")
def test_pipelined_errors_keep_their_place(abp: ServerSession) -> None:
    """ABP-CONN-2: "... all, in the order they were sent", bad requests
    included: an error answer takes the place of its request."""
    name = abp.name()
    lines: list[tuple[bytes, Expected]] = [
        (b"bad\n", refusal(b"bad")),
        (encode_request(Add(name, "kept")), ANY_OK),
        (b"fnd:\xfe\n", refusal(b"fnd:\xfe")),
        (b"Add:" + name.encode() + b",x\n", refusal(b"Add:" + name.encode() + b",x")),
        (encode_request(Find(name)), Ok("kept")),
        (b"rem:\n", refusal(b"rem:")),
        (encode_request(Find(name)), Ok("kept")),
    ]
    conn = abp.raw("ABP-CONN-2")
    conn.send(b"".join(line for line, _ in lines))
    abp.expect_lines(
        "ABP-CONN-2",
        conn,
        [want for _, want in lines],
        "errors and successes, pipelined",
    )


#: Rounds of `add` then `fnd` in two writes, and the gaps between the two
#: writes: 0 to 0.2 ms in steps of 5 us, so that in some rounds the `fnd`
#: arrives while the server is still saving the `add` (a commit on loopback
#: takes a fraction of a millisecond) and is then the only request it holds.
SAVING_ROUNDS = 400
SAVING_GAP_STEP = 5e-6
SAVING_GAP_STEPS = 40


def gap(seconds: float) -> None:
    """A gap of ``seconds`` in the request stream: shorter than a sleep can
    be on most systems, so it is spun. It waits for nothing."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


@pytest.mark.requirement("ABP-CONN-2", "ABP-DUR-4")
def test_lookup_sent_while_its_add_is_being_saved_is_answered(abp: ServerSession) -> None:
    """ABP-CONN-2: "A server MUST answer pipelined requests (several requests
    sent before any answer is read) all, in the order they were sent." Rounds
    of an `add` and a `fnd` of its name in two writes, the second a fraction
    of a millisecond after the first, before any answer is read: some `fnd`
    arrive while their `add` is still being saved, with nothing behind them
    (found by a mutant of the reference server that lost such a lookup)."""
    conn = abp.raw("ABP-CONN-2")
    for i in range(SAVING_ROUNDS):
        name = abp.name("saving")
        add, find = encode_request(Add(name, f"v{i}")), encode_request(Find(name))
        pause = SAVING_GAP_STEP * (i % SAVING_GAP_STEPS)
        conn.send(add)
        gap(pause)
        conn.send(find)
        abp.expect_lines(
            "ABP-CONN-2",
            conn,
            [ANY_OK, Ok(f"v{i}")],
            f"round {i + 1}: add, then fnd {pause * 1e6:.0f} us later",
        )


# ---------------------------------------------------------------- ABP-CONN-3

ERROR_LINES = {
    "unknown command": (b"nope:NAME", unrecognised("nope")),
    "no colon": (b"NAME", Error(MALFORMED_REQUEST)),
    "empty name": (b"fnd:", Error(MALFORMED_REQUEST)),
    "missing name": (b"rem:NAME", no_entry("NAME")),
    "invalid UTF-8": (b"fnd:\xff", Error(INVALID_UTF8)),
    "NUL": (b"fnd:\x00", Error(MALFORMED_REQUEST)),
}


@pytest.mark.requirement("ABP-CONN-3")
def test_error_answers_do_not_close_the_connection(abp: ServerSession) -> None:
    """ABP-CONN-3: "An error response MUST NOT close the connection, except
    after `ERROR: Request too long`." Each error, then a request that must
    still be answered on the same connection. (The tutorial's server drops
    the connection on a line with no colon.)"""
    name = abp.name()
    conn = abp.raw("ABP-CONN-3")
    abp.expect("ABP-CONN-3", Add(name, "still here"), ANY_OK, "add", conn=conn, by="meaning")
    for label, (line, error) in ERROR_LINES.items():
        missing = abp.name("missing")
        want = Error(error.text.replace("NAME", missing))
        abp.expect(
            "ABP-CONN-3",
            line.replace(b"NAME", missing.encode()),
            want,
            label,
            conn=conn,
            by="meaning",
        )
        abp.expect(
            "ABP-CONN-3",
            Find(name),
            Ok("still here"),
            f"the connection must stay usable after the `{label}` error",
            conn=conn,
            by="meaning",
        )
    abp.probe()


# ---------------------------------------------------- ABP-CONN-4, ABP-CONN-8


def judge_busy(abp: ServerSession, member: Member) -> None:
    """ABP-CONN-8: a refusal is exactly `ERROR: Server busy`, then a close."""
    lines = member.lines()
    if len(lines) != 1 or line_content(lines[0]) != line_content(encode_response(BUSY)):
        fail(
            "ABP-CONN-8",
            f"connection {member.name} was refused with something else than one busy line",
            expected=encode_response(BUSY),
            actual=bytes(member.received),
        )
    if not member.eof and not closes_soon(member, abp.target.holdup_bound):
        fail(
            "ABP-CONN-8",
            f"connection {member.name} was refused busy but not closed within "
            f"{abp.target.holdup_bound:g}s",
            expected="end of stream after the busy line",
            actual=bytes(member.received),
        )


def closes_soon(member: Member, bound: float) -> bool:
    """True when the server closes ``member`` (EOF or reset) within ``bound``
    seconds and sends nothing more before that."""
    deadline = time.monotonic() + bound
    sock = member.sock
    while (remaining := deadline - time.monotonic()) > 0:
        sock.settimeout(remaining)
        try:
            data = sock.recv(4096)
        except TimeoutError:
            return False
        except OSError:
            return True  # reset: closed too
        if not data:
            return True
        member.received += data
        return False
    return False


@pytest.mark.exclusive  # it fills the slots of a server with a limit under 200
@pytest.mark.requirement("ABP-CONN-4", "ABP-CONN-8")
def test_200_concurrent_connections_are_served(abp: ServerSession) -> None:
    """ABP-CONN-4: "A server MUST serve at least 100 connections open at the
    same time." 200 connections are opened first, then each asks. A refusal
    is allowed past 100 and must then follow ABP-CONN-8: "if it does, it MUST
    send `ERROR: Server busy` and close that connection." """
    bound = abp.target.holdup_bound
    crowd = abp.crowd("m")
    connected = crowd.open(CROWD, bound)
    if len(connected) < 100:
        fail(
            "ABP-CONN-4",
            f"only {len(connected)} of {CROWD} connections were accepted within {bound:g}s",
        )
    names = {member.index: abp.name("crowd") for member in connected}
    for member in connected:
        crowd.send(member, abp.target.frame(Find(names[member.index])))
    crowd.exchange(1, bound)
    served, refused, wrong = 0, 0, []
    for member in connected:
        answer = decode(bytes(member.received), legacy=abp.target.legacy)
        if answer == no_entry(names[member.index]):
            served += 1
        elif answer == BUSY:
            refused += 1
            judge_busy(abp, member)
        else:
            wrong.append(member)
    if wrong:
        first = wrong[0]
        fail(
            "ABP-CONN-4",
            f"{len(wrong)} of {len(connected)} open connections got no right answer within "
            f"{bound:g}s (served {served}, refused busy {refused}); first: {first.name}",
            expected=wire_form(no_entry(names[first.index])),
            actual=bytes(first.received),
        )
    if served < 100:
        fail(
            "ABP-CONN-4",
            f"only {served} connections were served at once; {refused} refused busy",
        )
    abp.probe()


def serve_round(
    abp: ServerSession, crowd: Crowd, members: list[Member]
) -> tuple[list[Member], list[Member]]:
    """A `fnd` on each of ``members``: (served, refused busy). A refusal is
    judged as ABP-CONN-8 asks; any other answer fails it."""
    names = {member.index: abp.name("limit") for member in members}
    for member in members:
        crowd.send(member, abp.target.frame(Find(names[member.index])))
    crowd.exchange(1, abp.target.holdup_bound, members)
    served, refused = [], []
    for member in members:
        answer = decode(bytes(member.received), legacy=False)
        if answer == no_entry(names[member.index]):
            served.append(member)
        elif answer == BUSY:
            judge_busy(abp, member)
            refused.append(member)
        else:
            fail(
                "ABP-CONN-8",
                f"connection {member.name} got neither its answer nor a busy refusal"
                f" within {abp.target.holdup_bound:g}s",
                expected=wire_form(no_entry(names[member.index])),
                actual=bytes(member.received),
            )
        member.received.clear()
    return served, refused


def fill_to_the_limit(
    abp: ServerSession, crowd: Crowd, limit: int, *, private: bool
) -> list[Member]:
    """Three connections, one closed, then as many as the limit allows, each
    served: on a private server, ``limit`` of them, or ABP-CONN-8 fails."""
    bound = abp.target.holdup_bound
    served: list[Member] = []
    if limit >= 3:
        first, _ = serve_round(abp, crowd, crowd.open(3, bound))
        served += first[1:]
        for member in first[:1]:
            crowd.drop(member)
    deadline = time.monotonic() + bound
    while len(served) < limit:
        ok, refused = serve_round(abp, crowd, crowd.open(limit - len(served), bound))
        served += ok
        for member in refused:
            crowd.drop(member)
        if not private or time.monotonic() >= deadline:
            break
    if private and len(served) < limit:
        fail(
            "ABP-CONN-8",
            f"told a limit of {limit} connections (--max-conns), the server refused"
            f" more with only {len(served)} open, for {bound:g}s",
        )
    if not served:
        raise Inconclusive("other clients hold every slot of the shared server")
    return served


def past_the_limit(abp: ServerSession, crowd: Crowd, served: list[Member], limit: int) -> None:
    """One connection more than ``served``, and after it is refused and
    closed, ``REFUSALS`` more: each must be refused busy."""
    for tried in range(REFUSALS + 1):
        extra = crowd.open(1, abp.target.holdup_bound)
        if not extra:
            fail("ABP-CONN-8", f"connection {len(served) + 1} past the limit could not connect")
        ok, refused = serve_round(abp, crowd, extra)
        if ok:
            still, _ = serve_round(abp, crowd, served)
            if len(still) < len(served):  # the server closed some (idle?): no verdict
                raise Inconclusive(f"{len(served) - len(still)} held connections were closed")
            after = (
                f" after {tried} refused one(s) had closed (a refused connection freed a slot"
                " it never held)"
                if tried
                else ""
            )
            fail(
                "ABP-CONN-8",
                f"with {len(served)} connections open, connection {len(served) + 1} was"
                f" served{after}: the server was said to refuse past {limit} (--max-conns {limit})",
            )
        for member in refused:
            crowd.drop(member)


@pytest.mark.exclusive  # it fills every slot
@pytest.mark.requirement("ABP-CONN-8")
def test_a_connection_past_the_limit_is_refused_busy(abp: ServerSession) -> None:
    """ABP-CONN-8: "A server MAY refuse a connection past its connection
    limit; if it does, it MUST send `ERROR: Server busy` and close that
    connection." Told the limit N (``--max-conns N``: as one client address
    meets it), the suite holds N connections, each served, then opens one
    more, which must be refused so. On a private instance (``--server-cmd``)
    nobody else holds a connection, so N must all be served (a server may
    take a moment to free the slot of a connection that closed just before:
    refused ones are replaced until the hold-up bound); on a shared one,
    other clients may hold some, so only the N+1st is judged. It starts with
    three connections and closes one, and past the limit it closes each
    refused connection and tries again: what counts is the connections open
    now (a server that loses count when one closes, admitted or refused,
    lets N+1 in)."""
    limit = abp.target.max_conns
    if limit is None:
        pytest.skip("needs the server's connection limit: --max-conns N (pytest: --abp-max-conns)")
    if abp.target.legacy:
        pytest.skip("a tutorial-style server may end each connection after its answer")
    soft = raise_fd_limit()
    if soft is not None and soft < limit + FD_MARGIN:
        pytest.skip(f"{limit + 1} connections need more descriptors than this process has ({soft})")

    def attempt() -> None:
        with abp.private_server() as server:
            address = None if server is None else (server.host, server.port)
            crowd = abp.crowd("n", address=address)
            served = fill_to_the_limit(abp, crowd, limit, private=server is not None)
            past_the_limit(abp, crowd, served, limit)

    abp.attempts(attempt)
    abp.probe()


# ---------------------------------------------------------------- ABP-CONN-5


def expect_prompt_answer(abp: ServerSession, what: str) -> None:
    """Another client asks and must be answered within the hold-up bound."""
    name = abp.name("other")
    abp.expect(
        "ABP-CONN-5",
        Find(name),
        no_entry(name),
        f"another client is held up by {what}",
        timeout=abp.target.holdup_bound,
        by="meaning",
    )


@pytest.mark.requirement("ABP-CONN-5")
def test_client_that_connects_and_sends_nothing_holds_up_nobody(abp: ServerSession) -> None:
    """ABP-CONN-5: "No client MUST be able to hold up another: a client that
    connects and sends nothing [...] MUST NOT delay the answers to other
    clients." """
    silent = abp.raw("ABP-CONN-5")
    silent.quiet_for(SETTLE)  # connected, and the server had a moment to accept it
    expect_prompt_answer(abp, "a connected client that sends nothing")
    abp.probe()


@pytest.mark.requirement("ABP-CONN-5")
def test_client_that_sends_half_a_line_holds_up_nobody(abp: ServerSession) -> None:
    """ABP-CONN-5: "... or sends half a line and stops, ... MUST NOT delay the
    answers to other clients." Half a request, half a UTF-8 character."""
    stalled = abp.raw("ABP-CONN-5")
    stalled.send(b"add:" + abp.name("half").encode() + b",\xe2\x82")
    expect_prompt_answer(abp, "a client that sent half a line and stopped")
    abp.probe()


@pytest.mark.requirement("ABP-CONN-5")
def test_client_that_stops_reading_holds_up_nobody(abp: ServerSession) -> None:
    """ABP-CONN-5: "... or stops reading, MUST NOT delay the answers to other
    clients." A client asks for megabytes of answers and reads none."""
    name = abp.name("flood")
    abp.expect(
        "ABP-CONN-5", Add(name, "f" * 4000), ANY_OK, "add of a 4000-byte entry", by="meaning"
    )
    hog = abp.raw("ABP-CONN-5")
    sock = hog.wire.sock
    assert sock is not None
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    flood = encode_request(Find(name)) * 2500  # 10 MB of answers
    hog.send_some(flood, budget(FLOOD, abp.target.timeout))
    expect_prompt_answer(abp, "a client that does not read its answers")
    hog.reset()
    abp.probe()


@pytest.mark.requirement("ABP-CONN-5")
def test_many_stalled_clients_hold_up_nobody(abp: ServerSession) -> None:
    """ABP-CONN-5: "No client MUST be able to hold up another": twenty silent
    or half-line clients at once, and a lookup still goes through."""
    crowd = abp.crowd("s")
    stalled = crowd.open(20, budget(CROWD_CONNECT, abp.target.timeout))
    for member in stalled[::2]:
        crowd.send(member, b"fnd:" + abp.name("half").encode()[:5])
    crowd.exchange(0, SETTLE)  # let the half lines leave
    expect_prompt_answer(abp, "twenty stalled clients")
    abp.probe()


# ---------------------------------------------------------------- ABP-CONN-6


@pytest.mark.requirement("ABP-CONN-6")
def test_reset_in_the_middle_of_a_request_harms_nobody(abp: ServerSession) -> None:
    """ABP-CONN-6: "A client that resets its connection, mid-request or at any
    time, MUST NOT harm the server or its other clients." A bystander's
    connection keeps working across the reset."""
    name = abp.name()
    bystander = abp.raw("ABP-CONN-6")
    abp.expect("ABP-CONN-6", Add(name, "bystander"), ANY_OK, "add", conn=bystander, by="meaning")
    rude = abp.raw("ABP-CONN-6")
    rude.send(b"add:" + abp.name("reset").encode() + b",half an ent")
    rude.reset()
    abp.expect(
        "ABP-CONN-6",
        Find(name),
        Ok("bystander"),
        "a connection open across another client's reset",
        conn=bystander,
        by="meaning",
    )
    abp.probe()


@pytest.mark.requirement("ABP-CONN-6")
def test_reset_with_answers_still_to_write_harms_nobody(abp: ServerSession) -> None:
    """ABP-CONN-6: "... at any time": the client resets while the server still
    has answers to write to it (a write to a dead socket: EPIPE, SIGPIPE)."""
    rude = abp.raw("ABP-CONN-6")
    rude.send_some(encode_request(Find(abp.name("gone"))) * 500, budget(FLOOD, abp.target.timeout))
    rude.reset()
    rude2 = abp.raw("ABP-CONN-6")
    rude2.send(encode_request(Add(abp.name("gone"), "x")) * 20)
    rude2.reset()
    abp.probe()


@pytest.mark.requirement("ABP-CONN-6")
def test_burst_of_resets_harms_nobody(abp: ServerSession) -> None:
    """ABP-CONN-6: "A client that resets its connection, mid-request or at any
    time, MUST NOT harm the server": fifty connections reset at once, half of
    them right after connecting, half in the middle of a request."""
    crowd = abp.crowd("r")
    members = crowd.open(50, budget(CROWD_CONNECT, abp.target.timeout))
    for member in members[::2]:
        crowd.send(member, b"fnd:" + abp.name("reset").encode())
    crowd.exchange(0, SETTLE)
    for member in members:
        crowd.reset(member)
    abp.probe()


# ---------------------------------------------------------------- ABP-CONN-7


#: The longest idle timeout (s) this suite outlives: the test below takes one
#: and a half of them.
LONGEST_IDLE_TO_OUTLIVE = 10.0


@pytest.mark.requirement("ABP-CONN-1", "ABP-CONN-7")
def test_connection_in_use_outlives_the_idle_timeout(abp: ServerSession) -> None:
    """ABP-CONN-1: "A connection MUST carry any number of requests, one after
    the other, until the client closes it." ABP-CONN-7 closes only a
    connection "idle for longer than its idle timeout": one that asks every
    quarter of the idle timeout, for one and a half idle timeouts, stays open
    (found by a mutant of the reference server that closed a connection one
    idle timeout after it opened, however busy). Needs --idle-timeout."""
    idle = abp.target.idle_timeout
    if idle is None:
        pytest.skip("needs the server's idle timeout: --idle-timeout S")
    if idle > LONGEST_IDLE_TO_OUTLIVE:
        pytest.skip(f"an idle timeout over {LONGEST_IDLE_TO_OUTLIVE:g}s takes too long to outlive")
    name = abp.name()
    conn = abp.raw("ABP-CONN-1")
    started = time.monotonic()
    count = 0
    while (elapsed := time.monotonic() - started) < 1.5 * idle:
        count += 1
        abp.expect(
            "ABP-CONN-1",
            Find(name),
            no_entry(name),
            f"request {count}, {elapsed:.1f}s after the first (idle timeout {idle:g}s)",
            conn=conn,
            by="bytes",
        )
        unsolicited = conn.quiet_for(idle / 4)
        if unsolicited or conn.lines.eof:
            fail(
                "ABP-CONN-1",
                f"a connection asking every {idle / 4:g}s was "
                f"{'closed' if conn.lines.eof else 'sent unasked bytes'} "
                f"{time.monotonic() - started:.1f}s after its first request "
                f"(idle timeout {idle:g}s)",
                expected=b"",
                actual=unsolicited,
            )


@pytest.mark.requirement("ABP-CONN-7")
def test_idle_connection_is_closed_after_the_idle_timeout(abp: ServerSession) -> None:
    """ABP-CONN-7: "A server SHOULD close a connection that has been idle for
    longer than its idle timeout (configurable)." Needs the timeout the server
    was started with (--idle-timeout)."""
    idle = abp.target.idle_timeout
    if idle is None:
        pytest.skip(
            "needs the server's idle timeout: --idle-timeout S (pytest: --abp-idle-timeout S)"
        )
    name = abp.name()
    used = abp.raw("ABP-CONN-7")
    abp.expect(
        "ABP-CONN-7", Find(name), no_entry(name), "a request, then idle", conn=used, by="meaning"
    )
    never_used = abp.raw("ABP-CONN-7")
    wait = idle + budget(IDLE_GRACE, abp.target.timeout)
    for conn, what in ((used, "an idle connection"), (never_used, "a connection never used")):
        if not conn.is_closed(wait):
            fail(
                "ABP-CONN-7",
                f"{what} was still open {wait:g}s after its last byte (idle timeout {idle:g}s)",
            )


#: Requests a busy connection keeps in flight (ABP-CONN-7, below): changes,
#: so that the server holds work for it whenever its idle timer fires.
BUSY_BATCH = 50


@pytest.mark.requirement("ABP-CONN-7")
def test_connection_busy_then_silent_is_closed_after_the_idle_timeout(
    abp: ServerSession,
) -> None:
    """ABP-CONN-7: "A server SHOULD close a connection that has been idle for
    longer than its idle timeout (configurable)." A connection kept busy for
    one and a half idle timeouts (batches of pipelined changes, the next sent
    before the answers to the last are read), then silent, is closed one idle
    timeout after it went silent (found by a mutant of the reference server
    that lost the idle timer of a connection once it fired while busy).
    Needs --idle-timeout; line framing."""
    idle = abp.target.idle_timeout
    if idle is None:
        pytest.skip("needs the server's idle timeout: --idle-timeout S")
    if idle > LONGEST_IDLE_TO_OUTLIVE:
        pytest.skip(f"an idle timeout over {LONGEST_IDLE_TO_OUTLIVE:g}s takes too long to outlive")
    if abp.target.legacy:
        pytest.skip("pipelines requests, which needs line framing (the target: --framing legacy)")
    name = abp.name("busy")
    conn = abp.raw("ABP-CONN-7")
    batch = b"".join(encode_request(Add(name, f"v{i}")) for i in range(BUSY_BATCH))
    answers = [ANY_OK] * BUSY_BATCH
    started = time.monotonic()
    conn.send(batch, f"{BUSY_BATCH} changes")
    while time.monotonic() - started < 1.5 * idle:
        conn.send(batch, f"{BUSY_BATCH} changes, before the answers to the last")
        abp.expect_lines("ABP-CONN-7", conn, answers, "a batch of changes")
    abp.expect_lines("ABP-CONN-7", conn, answers, "the last batch")
    abp.transcript.note(conn.name, f"busy {time.monotonic() - started:.1f}s; silent from now on")
    wait = idle + budget(IDLE_GRACE, abp.target.timeout)
    if not conn.is_closed(wait):
        fail(
            "ABP-CONN-7",
            f"a connection busy for {1.5 * idle:g}s, then silent, was still open {wait:g}s later"
            f" (idle timeout {idle:g}s)",
        )


#: The client that stops reading (below) asks for this many bytes of answers:
#: more than the socket buffers of both sides hold (Linux autotunes a
#: loopback send buffer up to 4 MB), so that some stay with the server.
UNREAD_ANSWERS = 8 * 2**20
#: Its SO_RCVBUF, set before it connects: the window it offers the server
#: stays a few kilobytes (the window scale is chosen in the SYN).
UNREAD_RCVBUF = 4096
#: ... raised to this to read what the server held: 8 MB then take a tenth
#: of a second on loopback.
DRAIN_RCVBUF = 4 * 2**20
#: The longest idle timeout (s) for which a first, early look is taken: two
#: looks take two idle timeouts, and past this they could outlast the test's
#: hard deadline (``timing.hard_deadline``); one look, after the grace, then.
EARLY_LOOK_UP_TO = LONGEST_IDLE_TO_OUTLIVE


@dataclass(frozen=True)
class Stalled:
    """One client that flooded and stopped reading, and what became of it."""

    sent: int  # lookups sent
    waited: float  # seconds from the flood to the look
    drained: Drained | None  # None: reset or ended before any read


def stall(abp: ServerSession, request: bytes, asked: int, grace: float) -> Stalled:
    """A new client sends ``asked`` copies of ``request`` and then neither
    sends nor reads for the idle timeout and ``grace``; then it looks for a
    reset without reading and, if none came, reads what the server held for
    it, counting bytes, until the end of stream, a reset or a silence."""
    timeout, idle = abp.target.timeout, abp.target.idle_timeout
    assert idle is not None
    conn = abp.raw("ABP-CONN-7", recv_buffer=UNREAD_RCVBUF)
    sent = conn.send_some(request * asked, budget(FLOOD, timeout)) // len(request)
    stopped = time.monotonic()
    abp.transcript.note(
        conn.name, f"{sent} lookups sent; from now on this client sends nothing and reads nothing"
    )
    wait = idle + grace
    if conn.hung_up(wait):
        abp.transcript.note(conn.name, f"closed {time.monotonic() - stopped:.2f}s after the flood")
        return Stalled(sent, wait, None)
    sock = conn.wire.sock
    assert sock is not None
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, DRAIN_RCVBUF)
    drained = conn.drain(budget(IDLE_DRAIN_QUIET, timeout), budget(IDLE_DRAIN, timeout))
    conn.close()
    return Stalled(sent, wait, drained)


@pytest.mark.requirement("ABP-CONN-7")
def test_client_that_stops_reading_is_closed_after_the_idle_timeout(abp: ServerSession) -> None:
    """ABP-CONN-7: "A server SHOULD close a connection that has been idle for
    longer than its idle timeout (configurable). A connection is idle while
    its client sends nothing and takes none of the answers waiting for it: a
    client that stops reading does not keep its connection busy."
    A client asks, in one write, for megabytes of 4 KB answers, then neither
    sends nor reads (found by a mutant of the reference server that kept
    such a connection for ever). The server may close it by a reset, seen
    at once without reading, or by an end of stream queued behind what it
    still holds, seen only by reading that: so once the idle timeout is
    over, the client reads, counting bytes, until the end of stream or a
    reset (closed), or until the answers stop coming with no close (not
    closed). Reading is activity: a first look comes soon after the idle
    timeout; a connection still open then proves nothing yet, and a second
    client does it all again and looks only after the whole grace
    (IDLE_GRACE; only that look past EARLY_LOOK_UP_TO). Needs --idle-timeout;
    line framing."""
    timeout, idle = abp.target.timeout, abp.target.idle_timeout
    if idle is None:
        pytest.skip("needs the server's idle timeout: --idle-timeout S")
    if abp.target.legacy:
        pytest.skip("pipelines requests, which needs line framing (the target: --framing legacy)")
    name = abp.name("unread")
    entry = "u" * (MAX_REQUEST_LINE - len(line_content(encode_request(Add(name, "")))))
    abp.expect(
        "ABP-CONN-7", Add(name, entry), ANY_OK, f"add of a {len(entry)}-byte entry", by="meaning"
    )
    request = encode_request(Find(name))
    answer = len(encode_response(Ok(entry)))
    asked = math.ceil(UNREAD_ANSWERS / answer)
    if idle <= EARLY_LOOK_UP_TO:
        early = stall(abp, request, asked, budget(IDLE_EARLY, timeout))
        if early.drained is None or early.drained.closed:
            return
        abp.transcript.note(
            "--", "not closed at the first look: once more, looking after the grace"
        )
    late = stall(abp, request, asked, budget(IDLE_GRACE, timeout))
    drained = late.drained
    if drained is None or drained.closed:
        return
    if drained.ended_by == DEADLINE:
        pytest.skip(
            f"the answers were still coming {drained.seconds:.1f}s after the client began to "
            f"read them ({drained.count} bytes so far): whether a close waits behind them "
            "cannot be told in time"
        )
    fail(
        "ABP-CONN-7",
        f"a client that sent {late.sent} lookups (answers of {answer} bytes) and then neither "
        f"sent nor read was not closed within {late.waited:g}s (idle timeout {idle:g}s): no "
        f"reset by then, and reading then brought {drained.count} bytes of answers and no "
        f"end of stream ({budget(IDLE_DRAIN_QUIET, timeout):g}s of silence after them)",
        expected="a reset, or an end of stream after the answers the server still held",
        actual=drained.tail,
    )
