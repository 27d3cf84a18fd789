"""Section 2 of docs/spec.md: Encoding and framing, lines and their segments.

Raw bytes on a line-framed connection, always (``abp.raw()``): these tests
judge the framing itself, so a server that only handles the tutorial's
framing fails them, quickly. Requests are built by the protocol package and
then cut, split, stretched or corrupted on purpose. The limits of a line
(ABP-FRAME-9 .. -13) are in ``test_framing_limits``.
"""

from __future__ import annotations

import random

import pytest

from conformance.harness.raw import RawConnection
from conformance.harness.timing import SETTLE
from conformance.harness.wire import WireError
from conformance.judging.session import ANY_OK, Expected, ServerSession, refusal
from conformance.judging.verdict import fail
from conformance.suites.server.request_lines import crlf, unterminated
from protocol import Add, Error, Find, Ok, Remove
from protocol.codec import INVALID_UTF8, MALFORMED_REQUEST, encode_request, no_entry

MALFORMED = Error(MALFORMED_REQUEST)
NOT_UTF8 = Error(INVALID_UTF8)


def send_trickle(abp: ServerSession, conn: RawConnection, data: bytes, sizes: list[int]) -> None:
    """Send ``data`` in pieces; an answer before the request is complete fails
    ABP-FRAME-4 (``RawConnection.trickle`` raises ``Inconclusive`` when this
    machine paused so long between pieces that the answer would be lawful)."""
    early = conn.trickle(data, sizes)
    if early and b"\n" not in data[: len(data) - sizes[-1]]:
        fail(
            "ABP-FRAME-4",
            "the server answered before the request was complete",
            expected=b"",
            actual=early,
        )


# ---------------------------------------------------------------- ABP-FRAME-1


@pytest.mark.requirement("ABP-FRAME-1", "ABP-RESP-3")
def test_every_answer_is_exactly_one_lf_terminated_line(abp: ServerSession) -> None:
    """ABP-FRAME-1: "Every response MUST be exactly one line terminated by LF,
    and a server MUST send exactly one response per request." One request of
    each kind, pipelined, then a sentinel: every answer in its place."""
    name, missing, sentinel = abp.name(), abp.name("missing"), abp.name("sentinel")
    cases: list[tuple[bytes, Expected]] = [
        (encode_request(Add(name, "a b")), ANY_OK),
        (encode_request(Find(name)), Ok("a b")),
        (encode_request(Add(name, "")), ANY_OK),
        (encode_request(Find(name)), Ok("")),
        (encode_request(Remove(name)), ANY_OK),
        (encode_request(Find(missing)), no_entry(missing)),
        (encode_request(Remove(missing)), no_entry(missing)),
        (b"xyz:" + name.encode() + b"\n", refusal(b"xyz:" + name.encode())),
        (b"no colon here\n", refusal(b"no colon here")),
        (b"fnd:\n", refusal(b"fnd:")),
        (b"fnd:\xff\n", refusal(b"fnd:\xff")),
        (b"fnd:a\x00b\n", refusal(b"fnd:a\x00b")),
        (encode_request(Find(sentinel)), no_entry(sentinel)),
    ]
    conn = abp.raw()
    conn.send(b"".join(line for line, _ in cases))
    abp.expect_lines(
        "ABP-FRAME-1",
        conn,
        [want for _, want in cases],
        "one answer line per request, in order",
    )
    extra = conn.quiet_for(SETTLE)
    if extra:
        fail(
            "ABP-FRAME-1",
            "bytes arrived after the answer to the last request",
            expected=b"",
            actual=extra,
        )
    abp.probe()


@pytest.mark.requirement("ABP-FRAME-1")
def test_answer_line_holds_no_stray_cr_or_second_line(abp: ServerSession) -> None:
    """ABP-FRAME-1: "Every response MUST be exactly one line terminated by LF":
    an entry holding the characters other software takes for line breaks
    (VT, FF, NEL, U+2028, U+2029) comes back as one line."""
    name = abp.name()
    entry = "a\x0bb\x0cc\x85d\u2028e\u2029f\x1cg"
    conn = abp.raw()
    conn.send(encode_request(Add(name, entry)) + encode_request(Find(name)))
    abp.expect_lines("ABP-FRAME-1", conn, [ANY_OK, Ok(entry)], "line breaks other than LF")


# ---------------------------------------------------------------- ABP-FRAME-3


@pytest.mark.requirement("ABP-FRAME-3")
def test_crlf_terminator_is_not_part_of_the_request(abp: ServerSession) -> None:
    """ABP-FRAME-3: "A server MUST accept both LF and CRLF as the terminator of
    a request; a CR right before the LF is not part of the request." """
    name = abp.name()
    conn = abp.raw()
    conn.send(crlf(encode_request(Add(name, "telnet"))))
    abp.expect_lines("ABP-FRAME-3", conn, [ANY_OK], "add terminated by CRLF")
    conn.send(encode_request(Find(name)))
    abp.expect_lines(
        "ABP-FRAME-3", conn, [Ok("telnet")], "the CR of CRLF was stored as part of the entry"
    )
    conn.send(crlf(encode_request(Find(name))))
    abp.expect_lines(
        "ABP-FRAME-3", conn, [Ok("telnet")], "fnd terminated by CRLF: CR taken as part of NAME"
    )


@pytest.mark.requirement("ABP-FRAME-3")
def test_lf_and_crlf_requests_mixed_in_one_pipeline(abp: ServerSession) -> None:
    """ABP-FRAME-3: "A server MUST accept both LF and CRLF as the terminator of
    a request" on one connection, alternating."""
    names = [abp.name() for _ in range(6)]
    data = b"".join(
        (crlf if i % 2 else bytes)(encode_request(Add(n, f"v{i}"))) for i, n in enumerate(names)
    ) + b"".join((bytes if i % 2 else crlf)(encode_request(Find(n))) for i, n in enumerate(names))
    conn = abp.raw()
    conn.send(data)
    abp.expect_lines(
        "ABP-FRAME-3",
        conn,
        [ANY_OK] * 6 + [Ok(f"v{i}") for i in range(6)],
        "LF and CRLF alternating",
    )


# ---------------------------------------------------------------- ABP-FRAME-4


@pytest.mark.requirement("ABP-FRAME-4")
def test_request_sent_one_byte_at_a_time(abp: ServerSession) -> None:
    """ABP-FRAME-4: "A server MUST NOT depend on how the bytes of a request are
    split into TCP segments: a request that arrives one byte at a time gets
    the same response as one that arrives whole." """
    entry = "é😀,: x"

    def attempt() -> None:
        name = abp.name("trickle")
        conn = abp.raw()
        add = encode_request(Add(name, entry))
        send_trickle(abp, conn, add, [1] * len(add))
        abp.expect_lines("ABP-FRAME-4", conn, [ANY_OK], "add sent one byte at a time")
        find = encode_request(Find(name))
        send_trickle(abp, conn, find, [1] * len(find))
        abp.expect_lines("ABP-FRAME-4", conn, [Ok(entry)], "fnd sent one byte at a time")

    abp.attempts(attempt)


@pytest.mark.requirement("ABP-FRAME-4", "ABP-FRAME-3")
def test_cr_and_lf_of_crlf_in_separate_segments(abp: ServerSession) -> None:
    """ABP-FRAME-4: "A server MUST NOT depend on how the bytes of a request are
    split into TCP segments", even between the CR and the LF of a CRLF."""

    def attempt() -> None:
        name = abp.name()
        conn = abp.raw()
        line = crlf(encode_request(Add(name, "split")))
        send_trickle(abp, conn, line, [len(line) - 1, 1])
        abp.expect_lines("ABP-FRAME-4", conn, [ANY_OK], "add with CR and LF in two segments")
        conn.send(encode_request(Find(name)))
        abp.expect_lines("ABP-FRAME-4", conn, [Ok("split")], "the CR was kept in the entry")

    abp.attempts(attempt)


@pytest.mark.requirement("ABP-FRAME-4")
def test_pipelined_requests_split_at_random_points(abp: ServerSession) -> None:
    """ABP-FRAME-4: "A server MUST NOT depend on how the bytes of a request are
    split into TCP segments": ten requests cut at random places (seeded by
    --seed), multi-byte characters included."""
    rng = random.Random(abp.target.seed)
    entries = [f"ü{i}:,€𝄞" for i in range(5)]

    def attempt() -> None:
        names = [abp.name("split") for _ in range(5)]
        data = b"".join(encode_request(Add(n, e)) for n, e in zip(names, entries, strict=True))
        data += b"".join(encode_request(Find(n)) for n in names)
        cuts = sorted(rng.sample(range(1, len(data)), 12))
        sizes = [b - a for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
        conn = abp.raw()
        conn.trickle(data, sizes)  # answers to complete lines may come early: that is fine
        abp.expect_lines(
            "ABP-FRAME-4",
            conn,
            [ANY_OK] * 5 + [Ok(e) for e in entries],
            f"requests cut at {cuts}",
        )

    abp.attempts(attempt)


# ------------------------------------------------------- ABP-FRAME-5, -6


@pytest.mark.requirement("ABP-FRAME-5")
def test_unterminated_request_is_answered_at_half_close_then_closed(abp: ServerSession) -> None:
    """ABP-FRAME-5: "A server MUST treat buffered bytes that hold no LF as one
    complete request when the client half-closes its side of the connection,
    answer it, and then close." """
    abp.needs_half_close()
    name = abp.name("legacy")
    conn = abp.raw()
    conn.send(unterminated(encode_request(Add(name, "tutorial client"))))
    conn.shutdown_write()
    abp.expect_lines("ABP-FRAME-5", conn, [ANY_OK], "unterminated add, then half-close")
    if not conn.is_closed(abp.target.timeout):
        fail(
            "ABP-FRAME-5",
            "after answering the half-closed client, the server did not close",
        )
    abp.expect(
        "ABP-FRAME-5",
        Find(name),
        Ok("tutorial client"),
        "the unterminated add was lost",
        by="bytes",
    )


#: Below this idle timeout (s), a close at the half-close and one at the idle
#: timeout are too close together to tell apart on a busy machine.
SHORTEST_IDLE_TO_JUDGE = 1.0


@pytest.mark.requirement("ABP-FRAME-5")
def test_half_close_closes_before_the_idle_timeout(abp: ServerSession) -> None:
    """ABP-FRAME-5: "A server MUST treat buffered bytes that hold no LF as one
    complete request when the client half-closes its side of the connection,
    answer it, and then close." The close follows the answer, not the idle
    timeout: a server that misses the half-close still answers once its quiet
    period is over (ABP-FRAME-6) and then holds the connection until it is
    idle, which a short idle timeout hides from a test that waits --timeout.
    Needs the server's idle timeout (--idle-timeout) of 1 s or more to tell
    the two apart."""
    abp.needs_half_close()
    idle = abp.target.idle_timeout
    if idle is None:
        pytest.skip("needs the server's idle timeout: --idle-timeout S")
    # Under SHORTEST_IDLE_TO_JUDGE the two closes are too near to tell apart:
    # then only the close itself is judged, within --timeout.
    bound = (
        abp.target.timeout if idle < SHORTEST_IDLE_TO_JUDGE else min(idle / 2, abp.target.timeout)
    )
    name = abp.name("legacy")
    conn = abp.raw()
    conn.send(unterminated(encode_request(Find(name))))
    conn.shutdown_write()
    abp.expect_lines("ABP-FRAME-5", conn, [no_entry(name)], "unterminated fnd, then half-close")
    if not conn.is_closed(bound):
        fail(
            "ABP-FRAME-5",
            f"the server answered the half-closed client but had not closed {bound:g}s later "
            f"(its idle timeout is {idle:g}s): the half-close was taken for a quiet period?",
        )


@pytest.mark.requirement("ABP-FRAME-5", "ABP-FRAME-1")
def test_half_close_answers_complete_and_unterminated_lines_then_closes(
    abp: ServerSession,
) -> None:
    """ABP-FRAME-5: "... answer it, and then close": a complete line and an
    unterminated one before the half-close get two answers, nothing more."""
    abp.needs_half_close()
    first, second = abp.name(), abp.name()
    conn = abp.raw()
    conn.send(encode_request(Find(first)) + unterminated(encode_request(Find(second))))
    conn.shutdown_write()
    abp.expect_lines(
        "ABP-FRAME-5", conn, [no_entry(first), no_entry(second)], "two lookups then half-close"
    )
    try:
        rest = conn.read_until_closed(abp.target.timeout)
    except WireError:
        fail("ABP-FRAME-5", "the server did not close after answering")
    if rest:
        fail(
            "ABP-FRAME-5",
            "bytes after the last answer (an empty request answered?)",
            expected=b"",
            actual=rest,
        )


@pytest.mark.requirement("ABP-FRAME-5", "ABP-FRAME-1")
def test_half_close_after_a_complete_line_sends_one_answer(abp: ServerSession) -> None:
    """ABP-FRAME-5 and ABP-FRAME-1: "exactly one response per request": a
    half-close with no unterminated bytes is no extra (empty) request."""
    abp.needs_half_close()
    name = abp.name()
    conn = abp.raw()
    conn.send(encode_request(Find(name)))
    conn.shutdown_write()
    abp.expect_lines("ABP-FRAME-5", conn, [no_entry(name)], "one lookup then half-close")
    try:
        rest = conn.read_until_closed(abp.target.timeout)
    except WireError:
        fail("ABP-FRAME-5", "the server did not close after answering")
    if rest:
        fail(
            "ABP-FRAME-1",
            "an answer with no request: the half-close was taken for an empty request",
            expected=b"",
            actual=rest,
        )


@pytest.mark.requirement("ABP-FRAME-6")
def test_unterminated_request_is_answered_after_the_quiet_period(abp: ServerSession) -> None:
    """ABP-FRAME-6: "A server MUST treat buffered bytes that hold no LF as one
    complete request when no further byte arrives within the quiet period
    (default 100 ms; configurable), and answer it." The answer may take the
    server's quiet period (``--quiet-period``) on top of ``--timeout``."""
    name = abp.name("quiet")
    conn = abp.raw()
    wait = abp.target.quiet_period + abp.target.timeout
    conn.send(unterminated(encode_request(Add(name, "waits for the answer"))))
    abp.expect_lines(
        "ABP-FRAME-6", conn, [ANY_OK], "unterminated add, the client waits", timeout=wait
    )
    conn.send(unterminated(encode_request(Find(name))))
    abp.expect_lines(
        "ABP-FRAME-6",
        conn,
        [Ok("waits for the answer")],
        "unterminated fnd on the same link",
        timeout=wait,
    )
    conn.send(encode_request(Find(name)))
    abp.expect_lines(
        "ABP-CONN-1",
        conn,
        [Ok("waits for the answer")],
        "after a quiet-period request, an LF request on the same connection",
    )
