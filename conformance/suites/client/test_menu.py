"""The menu contract (docs/spec.md section 8): tutorial-style interactive clients.

ABP-CLIENT-5: ``1`` reads name, house number, street, town and phone and
sends ``add:NAME,NUMBER STREET, TOWN, PHONE``. ABP-CLIENT-6: ``2`` and ``3``
read a name and send ``rem:NAME`` / ``fnd:NAME`` and show the answer; ``4``
exits 0. ABP-CLIENT-7 (SHOULD): any other choice shows the menu again and
sends nothing.
"""

from __future__ import annotations

import pytest

from conformance.harness.wire import Transcript
from conformance.judging.verdict import fail
from conformance.suites.client import checks
from conformance.suites.client.conftest import Serve
from conformance.suites.client.contracts import Address, MenuClient, Op
from conformance.suites.client.scenarios import REM_TEXT, Book
from protocol import Add, Find, Remove

NAME = "Linus Torvalds"
HOME = Address("42", "Kernel Road", "Portland", "+1 503 555 0199")


@pytest.mark.requirement("ABP-CLIENT-5")
def test_add_sends_the_tutorial_entry(
    menu_client: MenuClient, serve: Serve, transcript: Transcript
) -> None:
    """ABP-CLIENT-5: ``1`` then the five fields send exactly
    ``add:NAME,NUMBER STREET, TOWN, PHONE``."""
    server = serve(menu_client)
    outcome = menu_client.perform(server.host, server.port, [Op.add(NAME, HOME)], transcript)
    checks.completed("ABP-CLIENT-5", outcome)
    checks.sent("ABP-CLIENT-5", server, [Add(NAME, HOME.entry)])


@pytest.mark.requirement("ABP-CLIENT-6")
def test_find_delete_show_and_quit(
    menu_client: MenuClient, serve: Serve, transcript: Transcript
) -> None:
    """ABP-CLIENT-6: ``3`` NAME sends ``fnd:NAME`` and shows the entry, ``2``
    NAME sends ``rem:NAME`` and shows the answer, ``4`` exits with status 0."""
    server = serve(menu_client, book=Book({NAME: HOME.entry}))
    ops = [Op("fnd", NAME), Op("rem", NAME)]
    outcome = menu_client.perform(server.host, server.port, ops, transcript)
    checks.completed("ABP-CLIENT-6", outcome)
    checks.sent("ABP-CLIENT-6", server, [Find(NAME), Remove(NAME)])
    checks.shown("ABP-CLIENT-6", HOME.entry, "stdout", outcome.stdout)
    checks.shown("ABP-CLIENT-6", REM_TEXT, "stdout", outcome.stdout)
    checks.exit_zero("ABP-CLIENT-6", outcome.runs[0], "after '4' (quit)")


@pytest.mark.requirement("ABP-CLIENT-7")
def test_bad_choice_shows_the_menu_again(
    menu_client: MenuClient, serve: Serve, transcript: Transcript
) -> None:
    """ABP-CLIENT-7 (SHOULD): choices ``9``, ``x`` and ``0`` each show the menu
    again and send nothing; ``4`` then quits."""
    server = serve(menu_client)
    first = menu_client.run_script(server.host, server.port, "4\n", transcript)
    checks.completed("ABP-CLIENT-7", first)
    lines = [line.strip() for line in first.stdout.splitlines() if line.strip()]
    if not lines:
        fail("ABP-CLIENT-7", "the client showed no menu on stdout")
    menu_line = lines[0]
    outcome = menu_client.run_script(server.host, server.port, "9\nx\n0\n4\n", transcript)
    checks.completed("ABP-CLIENT-7", outcome)
    checks.nothing_sent("ABP-CLIENT-7", server)
    shown = outcome.stdout.count(menu_line)
    if shown < 4:
        fail(
            "ABP-CLIENT-7",
            f"the menu (its first line {menu_line!r}) was not shown again after each bad choice",
            expected="shown 4 times: at start and after each of 3 bad choices",
            actual=f"shown {shown} times",
        )
    checks.exit_zero("ABP-CLIENT-7", outcome.runs[0], "after '4' (quit)")
