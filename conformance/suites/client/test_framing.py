"""Framing as a client sees it (docs/spec.md section 2).

ABP-FRAME-2: every request ends with LF and nothing but requests is sent.
ABP-FRAME-7: an answer is read up to its LF however it is segmented (the
tutorial's one ``recv()`` fails here). ABP-FRAME-14: answer lines of up to
8192 bytes, however slowly they come. ABP-FRAME-8 (SHOULD): the end of the
stream ends an answer that has no LF, as the tutorial's servers send.
"""

from __future__ import annotations

import pytest

from conformance.harness.wire import Transcript
from conformance.judging.verdict import fail
from conformance.suites.client import checks
from conformance.suites.client.conftest import Serve
from conformance.suites.client.contracts import Address, ClientUnderTest, Op
from conformance.suites.client.scenarios import (
    SPEC,
    Book,
    eof_ended,
    find_answers,
    long_entry,
    segmented,
)

NAME = "Grace Hopper"
HOME = Address("1", "Navy Yard: Bldg 7, Room 2", "Arlington", "+1 703 555 0100")
#: Multi-byte UTF-8, so that 3-byte segments cut characters in two.
UNICODE_ENTRY = "Zoë 李小龍 ☎ +33 1 — Rue: de la Paix, 75002 Paris 🙂"


@pytest.mark.requirement("ABP-FRAME-2")
def test_requests_are_lf_terminated_and_nothing_else(
    client: ClientUnderTest, serve: Serve, transcript: Transcript
) -> None:
    """ABP-FRAME-2: each request the client sends (add, fnd, rem) is one line
    ended by LF (CRLF allowed), and the client sends nothing but requests."""
    server = serve(client)
    ops = [Op.add(NAME, HOME), Op("fnd", NAME), Op("rem", NAME)]
    outcome = client.perform(server.host, server.port, ops, transcript)
    checks.completed("ABP-FRAME-2", outcome)
    server.wait_all_closed()
    checks.no_violation("ABP-FRAME-2", server)
    if len(server.requests) != len(ops):
        fail(
            "ABP-FRAME-2",
            "the client did not send one request line per operation",
            expected=f"{len(ops)} request lines",
            actual=f"{len(server.requests)} request lines",
        )


@pytest.mark.requirement("ABP-FRAME-7")
def test_answer_in_many_small_segments(
    client: ClientUnderTest, serve: Serve, transcript: Transcript
) -> None:
    """ABP-FRAME-7: an answer sent 3 bytes at a time, 20 ms apart, UTF-8
    characters cut between segments, is read up to its LF."""
    server = serve(
        client, scenario=SPEC.but(deliver=segmented(3, 0.02)), book=Book({NAME: UNICODE_ENTRY})
    )
    outcome = client.perform(server.host, server.port, [Op("fnd", NAME)], transcript)
    checks.completed("ABP-FRAME-7", outcome)
    if client.contract == "argv":
        checks.exit_zero("ABP-FRAME-7", outcome.runs[0], "on a segmented OK answer")
    checks.shown("ABP-FRAME-7", UNICODE_ENTRY, "stdout", outcome.stdout)


@pytest.mark.requirement("ABP-FRAME-14")
@pytest.mark.parametrize("size", [4000, 8192])
def test_long_answer_line(
    size: int, client: ClientUnderTest, serve: Serve, transcript: Transcript
) -> None:
    """ABP-FRAME-14: an answer line of ``size`` bytes, sent in 1000-byte pieces
    30 ms apart, is read whole."""
    entry = long_entry(size)
    scenario = SPEC.but(deliver=segmented(1000, 0.03), responder=find_answers(entry))
    server = serve(client, scenario=scenario)
    outcome = client.perform(server.host, server.port, [Op("fnd", NAME)], transcript)
    checks.completed("ABP-FRAME-14", outcome)
    if client.contract == "argv":
        checks.exit_zero("ABP-FRAME-14", outcome.runs[0], f"on a {size}-byte answer")
    checks.shown("ABP-FRAME-14", entry, "stdout", outcome.stdout)


@pytest.mark.requirement("ABP-FRAME-8")
def test_answer_ended_by_end_of_stream(
    client: ClientUnderTest, serve: Serve, transcript: Transcript
) -> None:
    """ABP-FRAME-8 (SHOULD): a legacy server sends its answer with no LF and
    closes; the end of the stream ends the answer."""
    server = serve(client, scenario=SPEC.but(deliver=eof_ended), book=Book({NAME: HOME.entry}))
    outcome = client.perform(server.host, server.port, [Op("fnd", NAME)], transcript)
    checks.completed("ABP-FRAME-8", outcome)
    if client.contract == "argv":
        checks.exit_zero("ABP-FRAME-8", outcome.runs[0], "on an answer ended by EOF")
    checks.shown("ABP-FRAME-8", HOME.entry, "stdout", outcome.stdout)
