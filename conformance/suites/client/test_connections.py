"""Connections and network failures (docs/spec.md sections 5 and 8).

ABP-CONN-10: a client gives up, with an error and in bounded time, when the
server is silent, refuses the connection, or closes before a complete answer.
The suite kills a client that is still running at its deadline and reports a
hang. ABP-CLIENT-4: an argv-contract client then exits non-zero with a message
on stderr, never a traceback. ABP-CONN-9: a client reads the answer to what
it sent before closing, and closes its connection when done.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from conformance.harness.wire import Transcript
from conformance.judging.verdict import fail
from conformance.suites.client import checks
from conformance.suites.client.conftest import Serve
from conformance.suites.client.contracts import ArgvClient, ClientUnderTest, MenuClient, Op, Outcome
from conformance.suites.client.scenarios import (
    SPEC,
    Book,
    close_before_answer,
    delayed,
    reset_mid_answer,
    silent,
)

NAME = "Alan Turing"
ENTRY = "Hollymeade, Adlington Road, Wilmslow"
FAILURES = {
    "silent": silent,  # accepts, reads, never answers
    "close": close_before_answer,  # reads the request, closes without a byte
    "reset": reset_mid_answer,  # half the answer, then RST
}
Refused = Callable[[ClientUnderTest], tuple[str, int]]


def _give_up(
    client: ClientUnderTest, case: str, serve: Serve, refused: Refused, transcript: Transcript
) -> Outcome:
    if case == "refused":
        host, port = refused(client)
        transcript.note("--", f"nothing listens on {host}:{port}: the connection is refused")
    else:
        server = serve(client, scenario=SPEC.but(deliver=FAILURES[case]), book=Book({NAME: ENTRY}))
        host, port = server.host, server.port
    return client.perform(host, port, [Op("fnd", NAME)], transcript)


@pytest.mark.requirement("ABP-CONN-10", "ABP-CLIENT-4")
@pytest.mark.parametrize("case", ["refused", *FAILURES])
def test_gives_up_with_an_error(
    case: str, argv_client: ArgvClient, serve: Serve, refused: Refused, transcript: Transcript
) -> None:
    """ABP-CONN-10: give up, with an error, in bounded time; ABP-CLIENT-4: a
    non-zero exit and a message on stderr, never a traceback."""
    outcome = _give_up(argv_client, case, serve, refused, transcript)
    run = outcome.runs[0]
    if run.timed_out:
        checks.completed("ABP-CONN-10", outcome)
    if run.traceback:
        checks.completed("ABP-CLIENT-4", outcome)
    checks.exit_nonzero("ABP-CONN-10", run, f"when the server {_what(case)}")
    if not run.stderr.strip():
        fail(
            "ABP-CLIENT-4",
            f"no message on stderr when the server {_what(case)}",
            expected="a one-line message on stderr",
            actual=run.stderr,
        )
    if ENTRY in run.stdout:
        fail(
            "ABP-CONN-10",
            "the client printed the entry although no complete answer came",
        )


@pytest.mark.requirement("ABP-CONN-10")
@pytest.mark.parametrize("case", ["refused", *FAILURES])
def test_menu_gives_up(
    case: str, menu_client: MenuClient, serve: Serve, refused: Refused, transcript: Transcript
) -> None:
    """ABP-CONN-10: a menu client also gives up in bounded time (and then may
    go on with its menu); it must not show the entry as if it had been found."""
    outcome = _give_up(menu_client, case, serve, refused, transcript)
    checks.completed("ABP-CONN-10", outcome)
    if ENTRY in outcome.output:
        fail(
            "ABP-CONN-10",
            "the client showed the entry although no complete answer came",
        )


def _what(case: str) -> str:
    return {
        "refused": "refuses the connection",
        "silent": "never answers",
        "close": "closes without answering",
        "reset": "resets the connection mid-answer",
    }[case]


@pytest.mark.requirement("ABP-CONN-9")
def test_reads_the_answer_then_closes(
    client: ClientUnderTest, serve: Serve, transcript: Transcript
) -> None:
    """ABP-CONN-9: with the answer 0.5 s late, the client still reads it before
    closing (it shows the entry), and it closes every connection it opened."""
    server = serve(client, scenario=SPEC.but(deliver=delayed(0.5)), book=Book({NAME: ENTRY}))
    outcome = client.perform(server.host, server.port, [Op("fnd", NAME)], transcript)
    checks.completed("ABP-CONN-9", outcome)
    if client.contract == "argv":
        checks.exit_zero("ABP-CONN-9", outcome.runs[0], "on a late OK answer")
    checks.shown("ABP-CONN-9", ENTRY, "stdout", outcome.stdout)
    checks.no_violation("ABP-CONN-9", server)
    if not server.wait_all_closed():
        fail(
            "ABP-CONN-9",
            f"a connection was still open {server.closing:g} s after the client exited",
        )
