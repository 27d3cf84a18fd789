"""Answers: what the client does with OK and ERROR (docs/spec.md sections 4 and 8).

ABP-CLIENT-1 .. ABP-CLIENT-3 bind argv-contract clients: one operation per
run, the answer printed, exit 0 on OK and non-zero on ERROR. ABP-RESP-5 and
ABP-RESP-6 bind every client: ``ERROR:`` whatever follows is an error, ``OK``
and ``OK: ...`` a success (for a menu client: the answer is shown).
"""

from __future__ import annotations

import pytest

from conformance.harness.wire import Transcript
from conformance.suites.client import checks
from conformance.suites.client.conftest import Serve
from conformance.suites.client.contracts import Address, ArgvClient, ClientUnderTest, Op
from conformance.suites.client.scenarios import ADD_TEXT, REM_TEXT, SPEC, Book, always
from protocol import Add, Error, Find, Ok, Remove, Response

NAME = "Ada Lovelace"
HOME = Address("12", "St James's Square", "London", "+44 20 7946 0000")


@pytest.mark.requirement("ABP-CLIENT-1")
def test_performs_exactly_the_given_operation(
    argv_client: ArgvClient, serve: Serve, transcript: Transcript
) -> None:
    """ABP-CLIENT-1: exactly the one operation, with the name and entry given,
    against the host and port given: add, then fnd, then rem; one request each."""
    server = serve(argv_client)
    ops = [Op.add(NAME, HOME), Op("fnd", NAME), Op("rem", NAME)]
    outcome = argv_client.perform(server.host, server.port, ops, transcript)
    checks.completed("ABP-CLIENT-1", outcome)
    checks.sent("ABP-CLIENT-1", server, [Add(NAME, HOME.entry), Find(NAME), Remove(NAME)])


OK_CASES = {
    # op: (the book before, the operation, the text the client must print)
    "add": ({}, Op("add", NAME, HOME.entry), ADD_TEXT),
    "rem": ({NAME: HOME.entry}, Op("rem", NAME), REM_TEXT),
    "fnd": ({NAME: HOME.entry}, Op("fnd", NAME), HOME.entry),
}


@pytest.mark.requirement("ABP-CLIENT-2", "ABP-CLIENT-3")
@pytest.mark.parametrize("op", list(OK_CASES))
def test_ok_answer_printed_and_exit_0(
    op: str, argv_client: ArgvClient, serve: Serve, transcript: Transcript
) -> None:
    """ABP-CLIENT-2: the answer on stdout (for fnd the entry, for add and rem the
    text after ``OK: ``); ABP-CLIENT-3: exit 0 on an OK answer."""
    entries, operation, text = OK_CASES[op]
    server = serve(argv_client, book=Book(entries))
    outcome = argv_client.perform(server.host, server.port, [operation], transcript)
    checks.completed("ABP-CLIENT-3", outcome)
    run = outcome.runs[0]
    checks.exit_zero("ABP-CLIENT-3", run, f"on an OK answer to {op}")
    checks.shown("ABP-CLIENT-2", text, "stdout", run.stdout)


@pytest.mark.requirement("ABP-CLIENT-2", "ABP-CLIENT-3")
@pytest.mark.parametrize("op", ["fnd", "rem"])
def test_error_answer_shown_and_exit_nonzero(
    op: str, argv_client: ArgvClient, serve: Serve, transcript: Transcript
) -> None:
    """ABP-CLIENT-3: non-zero exit on ``ERROR: No entry for NAME``;
    ABP-CLIENT-2: the error text on stdout or stderr."""
    server = serve(argv_client)  # an empty book: the name has no entry
    outcome = argv_client.perform(server.host, server.port, [Op(op, NAME)], transcript)
    checks.completed("ABP-CLIENT-3", outcome)
    run = outcome.runs[0]
    checks.exit_nonzero("ABP-CLIENT-3", run, f"on an ERROR answer to {op}")
    checks.shown("ABP-CLIENT-2", f"No entry for {NAME}", "stdout or stderr", run.output)


ODD_ERRORS = {
    "unknown-text": Error("Disk on fire: 42% left, try later"),
    "looks-like-ok": Error("OK: this is still an error"),
}


@pytest.mark.requirement("ABP-RESP-5")
@pytest.mark.parametrize("case", list(ODD_ERRORS))
def test_any_error_line_is_an_error(
    case: str, client: ClientUnderTest, serve: Serve, transcript: Transcript
) -> None:
    """ABP-RESP-5: every response that starts with ``ERROR:`` is an error,
    whatever text follows (argv: a non-zero exit; menu: the text is shown)."""
    error = ODD_ERRORS[case]
    server = serve(client, scenario=SPEC.but(responder=always(error)))
    outcome = client.perform(server.host, server.port, [Op("fnd", NAME)], transcript)
    checks.completed("ABP-RESP-5", outcome)
    if client.contract == "argv":
        checks.exit_nonzero("ABP-RESP-5", outcome.runs[0], f"on 'ERROR: {error.text}'")
    checks.shown("ABP-RESP-5", error.text, "stdout or stderr", outcome.output)


OK_FORMS: dict[str, tuple[Op, Response, str]] = {
    # case: (operation, the answer, what must be shown)
    "bare-ok-add": (Op.add(NAME, HOME), Ok(), ""),
    "bare-ok-rem": (Op("rem", NAME), Ok(), ""),
    "empty-entry": (Op("fnd", NAME), Ok(""), ""),
    "entry-looks-like-error": (Op("fnd", NAME), Ok("ERROR: not an error"), "ERROR: not an error"),
    "entry-with-ok-prefix": (Op("fnd", NAME), Ok("OK: nested"), "OK: nested"),
}


@pytest.mark.requirement("ABP-RESP-6")
@pytest.mark.parametrize("case", list(OK_FORMS))
def test_ok_forms_are_success(
    case: str, client: ClientUnderTest, serve: Serve, transcript: Transcript
) -> None:
    """ABP-RESP-6: ``OK`` and every ``OK: ...`` is a success, and the text after
    ``OK: `` is the answer (for fnd the entry, which may be empty)."""
    operation, answer, text = OK_FORMS[case]
    server = serve(client, scenario=SPEC.but(responder=always(answer)))
    outcome = client.perform(server.host, server.port, [operation], transcript)
    checks.completed("ABP-RESP-6", outcome)
    if client.contract == "argv":
        checks.exit_zero("ABP-RESP-6", outcome.runs[0], f"on the success {case}")
    if text:
        checks.shown("ABP-RESP-6", text, "stdout", outcome.stdout)
