"""Names and entries, sent exactly or not at all (docs/spec.md section 3).

ABP-REQ-12: NAME and ENTRY go out exactly as given: no trimming, no case
change, no escaping, ``:`` and ``,`` kept, any Unicode. ABP-REQ-13: a NAME
that is empty or holds CR LF or NUL, an ``add`` NAME with ``,``, or an ENTRY
with CR LF or NUL, is refused without sending anything. ABP-REQ-14 (SHOULD):
so is a ``rem``/``fnd`` NAME with ``,``; sending it changes no meaning, so a
client that does is warned, not failed.
"""

from __future__ import annotations

import pytest

from conformance.harness.wire import Transcript
from conformance.suites.client import checks
from conformance.suites.client.conftest import Serve
from conformance.suites.client.contracts import Address, ArgvClient, ClientUnderTest, MenuClient, Op
from conformance.suites.client.scenarios import Book
from protocol import Add, Find

#: Every ASCII character a NAME (but for ``,``) or an ENTRY may hold: all but NUL, CR and LF;
#: the control characters that other line-splitters take for a line break included.
ASCII_ALLOWED = "".join(chr(c) for c in range(1, 128) if chr(c) not in "\r\n")

#: case: (name, the entry as a menu client is given it). argv clients get the
#: same entry as one string.
EXACT = {
    "colons-and-commas": (
        "Dr. Who: the 10th",
        Address("221b", "Baker St: rear", "London, UK", "tel: 555, ext 2"),
    ),
    "unicode": ("Zoë 李小龍 🙂", Address("7", "Straße der Einheit", "東京都", "☎ +81 3-1234")),
    "combining-and-rtl": ("e\u0301cole שלום", Address("3", "شارع الملك", "Zürich", "+41\u00a044")),
    "spaces-kept": (" padded  name ", Address(" 9 ", " Two  Spaces ", "\tTabbed\t", " ")),
    "case-kept": ("McDONALD", Address("1", "MiXeD CaSe", "UPPER", "lower")),
    "backslash-and-quotes": ('O\'Brien "Jr"', Address("5\\6", "a\\nb", "%s {name}", "$HOME")),
    "every-allowed-character": (
        "every " + ASCII_ALLOWED.replace(",", "") + " \x85\xa0\u2028\u2029\ufeff\U0010fffd",
        Address("1", ASCII_ALLOWED, "\x85\xa0\u2028\u2029\ufeff", "\U0001f642\U0010fffd e\u0301"),
    ),
}


@pytest.mark.requirement("ABP-REQ-12")
@pytest.mark.parametrize("case", list(EXACT))
def test_name_and_entry_sent_exactly(
    case: str, client: ClientUnderTest, serve: Serve, transcript: Transcript
) -> None:
    """ABP-REQ-12: ``add`` then ``fnd`` of a name and entry holding ``:``,
    ``,``, Unicode, spaces or quotes reach the server byte for byte; then the
    entry found is shown exactly (ABP-CLIENT-2; for a menu client ABP-CLIENT-6)."""
    name, address = EXACT[case]
    book = Book()
    server = serve(client, book=book)
    ops = [Op.add(name, address), Op("fnd", name)]
    outcome = client.perform(server.host, server.port, ops, transcript)
    checks.completed("ABP-REQ-12", outcome)
    checks.sent("ABP-REQ-12", server, [Add(name, address.entry), Find(name)])
    shows = "ABP-CLIENT-2" if client.contract == "argv" else "ABP-CLIENT-6"
    checks.shown(shows, address.entry, "stdout", outcome.stdout)


#: case: the operation an argv client must refuse.
INVALID_ARGV = {
    "empty-name-add": Op("add", "", "x"),
    "empty-name-fnd": Op("fnd", ""),
    "comma-in-name-add": Op("add", "Smith, John", "x"),
    "lf-in-name": Op("fnd", "two\nlines"),
    "cr-in-name": Op("add", "carriage\rreturn", "x"),
    "lf-in-entry": Op("add", "name", "two\nlines"),
    "cr-in-entry": Op("add", "name", "carriage\rreturn"),
}

#: case: the operation a menu client must refuse (its lines cannot carry CR/LF).
INVALID_MENU = {
    "empty-name-fnd": Op("fnd", ""),
    "comma-in-name-add": Op.add("Smith, John", Address("1", "High St", "Leeds", "555")),
}

#: case: the operation a client should refuse (ABP-REQ-14): a ``,`` in a NAME
#: that no ``add`` can store, harmless on the wire.
SHOULD_REFUSE = {
    "comma-in-name-fnd": Op("fnd", "Smith, John"),
    "comma-in-name-rem": Op("rem", "Smith, John"),
}


@pytest.mark.requirement("ABP-REQ-13")
@pytest.mark.parametrize("case", list(INVALID_ARGV))
def test_invalid_input_refused(
    case: str, argv_client: ArgvClient, serve: Serve, transcript: Transcript
) -> None:
    """ABP-REQ-13: nothing is sent for an invalid name or entry, and the refusal
    shows (a non-zero exit)."""
    server = serve(argv_client, book=Book({"name": "x"}))
    outcome = argv_client.perform(server.host, server.port, [INVALID_ARGV[case]], transcript)
    checks.completed("ABP-REQ-13", outcome)
    server.wait_all_closed()
    checks.nothing_sent("ABP-REQ-13", server)
    checks.exit_nonzero("ABP-REQ-13", outcome.runs[0], "on input it had to refuse")


@pytest.mark.requirement("ABP-REQ-13")
@pytest.mark.parametrize("case", list(INVALID_MENU))
def test_menu_invalid_input_refused(
    case: str, menu_client: MenuClient, serve: Serve, transcript: Transcript
) -> None:
    """ABP-REQ-13, menu contract: nothing is sent for an invalid name."""
    server = serve(menu_client)
    outcome = menu_client.perform(server.host, server.port, [INVALID_MENU[case]], transcript)
    checks.completed("ABP-REQ-13", outcome)
    server.wait_all_closed()
    checks.nothing_sent("ABP-REQ-13", server)


@pytest.mark.requirement("ABP-REQ-14")
@pytest.mark.parametrize("case", list(SHOULD_REFUSE))
def test_comma_in_rem_or_fnd_name_refused(
    case: str, client: ClientUnderTest, serve: Serve, transcript: Transcript
) -> None:
    """ABP-REQ-14 (SHOULD): nothing is sent for a ``rem``/``fnd`` NAME holding
    ``,``; an argv client shows the refusal with a non-zero exit."""
    server = serve(client, book=Book({"Smith, John": "x"}))
    outcome = client.perform(server.host, server.port, [SHOULD_REFUSE[case]], transcript)
    checks.completed("ABP-REQ-14", outcome)
    server.wait_all_closed(1.0)
    checks.nothing_sent("ABP-REQ-14", server)
    if client.contract == "argv":
        checks.exit_nonzero("ABP-REQ-14", outcome.runs[0], "on input it should refuse")
