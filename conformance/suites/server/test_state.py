"""Sections 3, 4 and 5 of docs/spec.md, by property: a model book and fuzzing.

A hypothesis state machine drives random ``add``/``rem``/``fnd`` sequences
over several connections and checks every answer against a dict; random bad
lines derived from the construct schemas (``protocol.strategies``) must each
get the standard error and leave the connection usable. Examples and their
number come from ``--seed`` and ``--fuzz-examples``; see ``conformance.judging.fuzz``.
"""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis.stateful import run_state_machine_as_test

from conformance.harness.raw import RawConnection
from conformance.judging.fuzz import (
    allowed_refusals,
    expected_refusal,
    fresh_example,
    fuzz_settings,
    oracle,
    run_seeded,
    seeded,
)
from conformance.judging.session import ANY_OK, ServerSession, decode
from conformance.judging.stateful import book_machine
from conformance.judging.verdict import fail
from protocol import MAX_REQUEST_LINE, Add, Find, InvalidRequest, Ok
from protocol.codec import encode_request, encode_response, line_content, no_entry
from protocol.strategies import byte_streams, entries, malformed_lines, names


@pytest.mark.requirement(
    "ABP-REQ-4", "ABP-REQ-5", "ABP-REQ-6", "ABP-DUR-4", "ABP-CONN-1", "ABP-CONN-2"
)
def test_random_operations_over_several_connections_match_a_model_book(
    abp: ServerSession,
) -> None:
    """ABP-REQ-4..6 and ABP-DUR-4: "An `add` of a NAME that already has an entry
    MUST replace that entry", "`rem:NAME` MUST remove the entry", "`fnd:NAME`
    MUST look up the entry stored under NAME", and "A `fnd` sent after the
    `OK` of an `add` or `rem`, on any connection, MUST see that change":
    random sequences over three connections, pipelined batches included."""
    machine = seeded(abp.target, book_machine(abp))
    steps = 10
    settings = fuzz_settings(abp.target, stateful_step_count=steps)
    run_state_machine_as_test(machine, settings=settings)


@pytest.mark.requirement("ABP-RESP-2")
def test_any_name_and_entry_round_trip(abp: ServerSession) -> None:
    """ABP-RESP-2: "A server MUST answer a successful `fnd` with `OK: ` followed
    by ENTRY exactly as it was stored: a byte-exact round trip for any
    Unicode": names and entries drawn from every plane the schema allows."""

    @given(name=names(max_size=12), entry=entries(max_size=60))
    def round_trip(name: str, entry: str) -> None:
        fresh_example(abp)
        unique = f"{abp.name('rt')}{name}"
        abp.expect(
            "ABP-REQ-2", Add(unique, entry), ANY_OK, "add of a generated entry", by="meaning"
        )
        abp.expect(
            "ABP-RESP-2", Find(unique), Ok(entry), "the entry did not round-trip", by="bytes"
        )

    run_seeded(abp, round_trip)


@pytest.mark.requirement("ABP-RESP-3", "ABP-CONN-3")
def test_malformed_lines_get_the_standard_error_and_keep_the_connection(
    abp: ServerSession,
) -> None:
    """ABP-RESP-3: "Every error response MUST be `ERROR: ` followed by the
    standard text of the table above for the conditions it lists", and
    ABP-CONN-3: "An error response MUST NOT close the connection". Lines from
    ``protocol.strategies.malformed_lines()``: unknown commands, no colon,
    empty names, NUL, invalid UTF-8. A wrong answer fails the requirement
    that names the line's condition (ABP-REQ-9, ABP-FRAME-12, ...)."""

    @given(line=malformed_lines())
    def malformed(line: bytes) -> None:
        refusal = expected_refusal(line)
        request = line_content(line)
        assume(refusal is not None)
        assume(request or not abp.target.legacy)  # no empty request without a terminator
        assert refusal is not None
        fresh_example(abp)
        conn = None if abp.target.legacy else abp.raw("ABP-CONN-3")
        abp.expect(
            refusal.error.requirement,
            request,
            refusal.reply,
            "a malformed line",
            conn=conn,
            by="bytes",
        )
        sentinel = abp.name("after")
        abp.expect(
            "ABP-CONN-3",
            Find(sentinel),
            no_entry(sentinel),
            "the connection must stay usable after the error",
            conn=conn,
            by="meaning",
        )

    run_seeded(abp, malformed)
    abp.probe()


def check_stream_answers(
    abp: ServerSession, conn: RawConnection, stream: bytes, sentinel: str
) -> None:
    """Every line of ``stream`` gets one answer in order: a standard error for
    a bad line (``allowed_refusals``), any ``OK``/``ERROR: `` line for a
    request; then the sentinel's."""
    events = oracle(stream)
    lines = abp.read_lines("ABP-FRAME-1", conn, len(events) + 1, "one answer per line")
    for i, (event, line) in enumerate(zip(events, lines, strict=False)):
        allowed = allowed_refusals(event) if isinstance(event, InvalidRequest) else None
        answer = decode(line)
        if allowed is None:
            ok = answer is not None
            want: object = "an OK or ERROR line"
        else:
            ok = answer in allowed
            want = b" or ".join(sorted(encode_response(error) for error in allowed))
        if not ok or not line.endswith(b"\n"):
            fail(
                "ABP-FRAME-1" if allowed is None else "ABP-RESP-3",
                f"answer {i + 1} of {len(events)} to a random byte stream",
                expected=want,
                actual=line,
            )
    if line_content(lines[-1]) != line_content(encode_response(no_entry(sentinel))):
        fail(
            "ABP-FRAME-1",
            "after a random byte stream, the answers are out of step (one per line)",
            expected=encode_response(no_entry(sentinel)),
            actual=lines[-1],
        )


@pytest.mark.requirement("ABP-FRAME-1", "ABP-CONN-2", "ABP-CONN-3", "ABP-RESP-3")
def test_random_byte_streams_are_answered_one_line_per_line(abp: ServerSession) -> None:
    """ABP-FRAME-1: "a server MUST send exactly one response per request":
    random bytes biased towards the protocol's separators
    (``protocol.strategies.byte_streams()``), in one write, then a lookup
    whose answer must come right after theirs."""

    @given(data=byte_streams())
    def stream(data: bytes) -> None:
        data += b"\n"
        assume(
            all(len(line_content(line + b"\n")) <= MAX_REQUEST_LINE for line in data.split(b"\n"))
        )
        fresh_example(abp)
        sentinel = abp.name("after")
        conn = abp.raw("ABP-FRAME-1")
        conn.send(data + encode_request(Find(sentinel)))
        check_stream_answers(abp, conn, data, sentinel)

    run_seeded(abp, stream)
    abp.probe()
