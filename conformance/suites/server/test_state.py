"""Sections 3, 4 and 5 of docs/spec.md, by property: a model book and fuzzing.

A hypothesis state machine drives random ``add``/``rem``/``fnd`` sequences
over several connections and checks every answer against a dict; random bad
lines derived from the construct schemas (``protocol.strategies``) must each
get the standard error and leave the connection usable. Examples and their
number come from ``--seed`` and ``--fuzz-examples``; see ``conformance.judging.fuzz``.
"""

from __future__ import annotations

import pytest
from hypothesis import assume, example, given
from hypothesis.stateful import run_state_machine_as_test

from conformance.harness.raw import RawConnection
from conformance.judging.fuzz import fresh_example, fuzz_settings, run_seeded, seeded
from conformance.judging.session import ANY_OK, ServerSession, decode, line_matches, refusal
from conformance.judging.stateful import book_machine
from conformance.judging.verdict import fail
from protocol import MAX_REQUEST_LINE, Add, Find, Ok
from protocol.codec import (
    applicable_errors,
    encode_request,
    encode_response,
    line_content,
    no_entry,
)
from protocol.strategies import byte_streams, entries, malformed_lines, names


@pytest.mark.requirement(
    "ABP-REQ-4", "ABP-REQ-5", "ABP-REQ-6", "ABP-RESP-2", "ABP-DUR-4", "ABP-CONN-1", "ABP-CONN-2"
)
def test_random_operations_over_several_connections_match_a_model_book(
    abp: ServerSession,
) -> None:
    """ABP-REQ-4..6 and ABP-DUR-4: "An `add` of a NAME that already has an entry
    MUST replace that entry", "`rem:NAME` MUST remove the entry", "`fnd:NAME`
    MUST look up the entry stored under NAME", and "A `fnd` sent after the
    `OK` of an `add` or `rem`, on any connection, MUST see that change":
    random sequences over three connections, pipelined batches included. A
    wrong answer fails the rule it breaks (``conformance.judging.stateful.blame``):
    an entry found altered is ABP-RESP-2, answers out of order ABP-CONN-2."""
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
    that names the line's condition (ABP-REQ-9, ABP-FRAME-12, ...); a line that
    breaks several rules may get any error that applies (section 4:
    ``refusal``: every error ``applicable_errors`` names)."""

    @given(line=malformed_lines())
    @example(line=b"fnd:\xf4\x86\x00\xb7\x82\n")  # NUL and invalid UTF-8: either error
    def malformed(line: bytes) -> None:
        request = line_content(line)
        assume(b"\n" not in request and abp.line_seen(request) == request)
        assume(request or not abp.target.legacy)  # no empty request without a terminator
        assume(applicable_errors(request))
        want = refusal(request)
        fresh_example(abp)
        conn = None if abp.target.legacy else abp.raw("ABP-CONN-3")
        abp.expect(want.requirement, request, want, "a malformed line", conn=conn, by="bytes")
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
    """Every line of ``stream`` (LF-terminated) gets one answer in order: one of
    the errors section 4 allows for a bad line (``refusal``), any ``OK`` or
    ``ERROR: `` line for a request; then the sentinel's."""
    requests = [line_content(line + b"\n") for line in stream.split(b"\n")[:-1]]
    lines = abp.read_lines("ABP-FRAME-1", conn, len(requests) + 1, "one answer per line")
    for i, (request, line) in enumerate(zip(requests, lines, strict=False)):
        if applicable_errors(request):
            want = refusal(request)
            if not line_matches(want, line):
                fail(
                    want.requirement,
                    f"answer {i + 1} of {len(requests)} to a random byte stream",
                    expected=want,
                    actual=line,
                )
        elif decode(line) is None or not line.endswith(b"\n"):
            fail(
                "ABP-FRAME-1",
                f"answer {i + 1} of {len(requests)} to a random byte stream",
                expected="an OK or ERROR line",
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
