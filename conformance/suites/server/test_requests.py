"""Section 3 of docs/spec.md: Requests.

``COMMAND ":" ARGUMENT`` split at the first colon; ``add:NAME,ENTRY`` split
at the first comma; names compared exactly; lowercase commands; the standard
errors for lines with no colon, empty names and unknown commands. Every
request goes out in the framing the server handles (``abp.expect``, with a
message or a raw line) and is judged ``by="meaning"``, so a tutorial-style
server is judged on its semantics here, not on its framing.
"""

from __future__ import annotations

import pytest

from conformance.judging.session import ANY_OK, ServerSession, refusal
from protocol import Add, Error, Find, Ok, Remove
from protocol.codec import MALFORMED_REQUEST, no_entry, unrecognised

MALFORMED = Error(MALFORMED_REQUEST)


# ----------------------------------------------------------------- ABP-REQ-1


@pytest.mark.requirement("ABP-REQ-1")
def test_request_is_split_at_its_first_colon_only(abp: ServerSession) -> None:
    """ABP-REQ-1: "A server MUST split a request at its first `:` only: COMMAND
    is the text before it and ARGUMENT all the text after it, further `:`
    included." A NAME and an ENTRY full of colons (the tutorial's
    ``split(':')`` drops this connection)."""
    name = abp.name("a:b") + ":c"
    abp.expect(
        "ABP-REQ-1", Add(name, "x:y::z"), ANY_OK, "add with colons in NAME and ENTRY", by="meaning"
    )
    abp.expect("ABP-REQ-1", Find(name), Ok("x:y::z"), "fnd of a NAME holding colons", by="meaning")
    abp.expect("ABP-REQ-1", Remove(name), ANY_OK, "rem of a NAME holding colons", by="meaning")


@pytest.mark.requirement("ABP-REQ-1", "ABP-REQ-11")
def test_unknown_command_is_the_text_before_the_first_colon(abp: ServerSession) -> None:
    """ABP-REQ-1: "COMMAND is the text before [the first `:`]": ``get:a:b`` is
    the unknown command ``get``."""
    abp.expect(
        "ABP-REQ-1",
        b"get:" + abp.name().encode() + b":b",
        unrecognised("get"),
        "an unknown command whose argument holds a colon",
        by="meaning",
    )


@pytest.mark.requirement("ABP-REQ-1", "ABP-RESP-4")
def test_lookup_of_a_missing_name_with_colons(abp: ServerSession) -> None:
    """ABP-REQ-1: "... ARGUMENT all the text after it, further `:` included":
    the error repeats the whole NAME, colons and all."""
    name = abp.name("fnd:") + ":rem:x"
    abp.expect(
        "ABP-REQ-1", Find(name), no_entry(name), "fnd of a missing NAME with colons", by="meaning"
    )


# ----------------------------------------------------------------- ABP-REQ-2

ENTRIES_WITH_SEPARATORS = {
    "commas": "12 High Street, Springfield, 555-1234",
    "leading comma": ",x",
    "only commas": ",,,",
    "commas and colons": "a,b:c,d:e",
    "looks like a request": "add:other,entry",
}


@pytest.mark.requirement("ABP-REQ-2")
@pytest.mark.parametrize(
    "entry", ENTRIES_WITH_SEPARATORS.values(), ids=ENTRIES_WITH_SEPARATORS.keys()
)
def test_add_splits_argument_at_first_comma(abp: ServerSession, entry: str) -> None:
    """ABP-REQ-2: "For `add`, a server MUST take NAME as the text of ARGUMENT
    before its first `,` and ENTRY as all the text after that `,`, further `,`
    and `:` included, and store ENTRY under NAME." """
    name = abp.name()
    abp.expect("ABP-REQ-2", Add(name, entry), ANY_OK, "add with commas in the entry", by="meaning")
    abp.expect("ABP-REQ-2", Find(name), Ok(entry), "the entry was not kept whole", by="meaning")


# ----------------------------------------------------------------- ABP-REQ-3


@pytest.mark.requirement("ABP-REQ-3", "ABP-RESP-2")
def test_add_without_comma_stores_an_empty_entry(abp: ServerSession) -> None:
    """ABP-REQ-3: "A server MUST treat `add:NAME` with no `,` as `add:NAME,`
    (an empty entry), as the tutorial does." """
    name = abp.name()
    abp.expect("ABP-REQ-3", b"add:" + name.encode(), ANY_OK, "add:NAME with no comma", by="meaning")
    abp.expect(
        "ABP-REQ-3", Find(name), Ok(""), "add:NAME must store an empty entry (`OK: `)", by="meaning"
    )


@pytest.mark.requirement("ABP-REQ-3", "ABP-REQ-4")
def test_add_without_comma_empties_an_existing_entry(abp: ServerSession) -> None:
    """ABP-REQ-3: "`add:NAME` with no `,` [is] `add:NAME,`": it replaces an
    existing entry with the empty one."""
    name = abp.name()
    abp.expect("ABP-REQ-3", Add(name, "old"), ANY_OK, "add", by="meaning")
    abp.expect("ABP-REQ-3", b"add:" + name.encode(), ANY_OK, "add:NAME with no comma", by="meaning")
    abp.expect("ABP-REQ-3", Find(name), Ok(""), "add:NAME did not empty the entry", by="meaning")


# ------------------------------------------------------------ ABP-REQ-4 .. -6


@pytest.mark.requirement("ABP-REQ-4")
def test_add_of_an_existing_name_replaces_its_entry(abp: ServerSession) -> None:
    """ABP-REQ-4: "An `add` of a NAME that already has an entry MUST replace
    that entry." """
    name = abp.name()
    for entry in ("first", "second, longer entry", "3"):
        abp.expect("ABP-REQ-4", Add(name, entry), ANY_OK, "add", by="meaning")
        abp.expect("ABP-REQ-4", Find(name), Ok(entry), "the entry was not replaced", by="meaning")


@pytest.mark.requirement("ABP-REQ-5", "ABP-RESP-4")
def test_rem_removes_the_entry(abp: ServerSession) -> None:
    """ABP-REQ-5: "`rem:NAME` MUST remove the entry of NAME, so that a later
    `fnd:NAME` finds none." """
    name = abp.name()
    abp.expect("ABP-REQ-5", Add(name, "doomed"), ANY_OK, "add", by="meaning")
    abp.expect("ABP-REQ-5", Remove(name), ANY_OK, "rem of an existing name", by="meaning")
    abp.expect(
        "ABP-REQ-5", Find(name), no_entry(name), "fnd after rem still finds it", by="meaning"
    )
    abp.expect(
        "ABP-REQ-5", Remove(name), no_entry(name), "a second rem of the same name", by="meaning"
    )


@pytest.mark.requirement("ABP-REQ-5")
def test_name_can_be_added_again_after_rem(abp: ServerSession) -> None:
    """ABP-REQ-5: "`rem:NAME` MUST remove the entry of NAME": removing leaves no
    trace that stops the NAME from being used again."""
    name = abp.name()
    for entry in ("one", "two"):
        abp.expect("ABP-REQ-5", Add(name, entry), ANY_OK, "add", by="meaning")
        abp.expect("ABP-REQ-5", Find(name), Ok(entry), "fnd after add", by="meaning")
        abp.expect("ABP-REQ-5", Remove(name), ANY_OK, "rem", by="meaning")


@pytest.mark.requirement("ABP-REQ-6")
def test_fnd_looks_up_the_entry_stored_under_its_name(abp: ServerSession) -> None:
    """ABP-REQ-6: "`fnd:NAME` MUST look up the entry stored under NAME" (and
    not a neighbour's)."""
    names = [abp.name() for _ in range(3)]
    for i, name in enumerate(names):
        abp.expect("ABP-REQ-6", Add(name, f"entry {i}"), ANY_OK, "add", by="meaning")
    for i, name in reversed(list(enumerate(names))):
        abp.expect(
            "ABP-REQ-6", Find(name), Ok(f"entry {i}"), "fnd found the wrong entry", by="meaning"
        )


# ----------------------------------------------------------------- ABP-REQ-7

NAME_PAIRS = {
    "case": ("Smith-{u}", "smith-{u}"),
    "leading space": (" {u}", "{u}"),
    "trailing space": ("{u} ", "{u}"),
    "trailing tab": ("{u}\t", "{u}"),
    "NFC vs NFD": ("caf\u00e9-{u}", "cafe\u0301-{u}"),
    "ligature vs letters": ("\ufb01-{u}", "fi-{u}"),
    "sharp s vs SS": ("stra\u00dfe-{u}", "STRASSE-{u}"),
    "Kelvin sign vs K": ("\u212a-{u}", "K-{u}"),
    "fullwidth vs ASCII": ("\uff21-{u}", "A-{u}"),
}


@pytest.mark.requirement("ABP-REQ-7")
@pytest.mark.parametrize("pair", NAME_PAIRS.values(), ids=NAME_PAIRS.keys())
def test_names_are_compared_exactly(abp: ServerSession, pair: tuple[str, str]) -> None:
    """ABP-REQ-7: "Names MUST be compared exactly: case-sensitive, with no
    trimming, no case folding and no Unicode normalisation." Two names that
    some library would call equal hold two entries."""
    unique = abp.name()
    first, second = (template.format(u=unique) for template in pair)
    abp.expect("ABP-REQ-7", Add(first, "first"), ANY_OK, "add of the first name", by="meaning")
    abp.expect(
        "ABP-REQ-7", Find(second), no_entry(second), "the second name found the first", by="meaning"
    )
    abp.expect("ABP-REQ-7", Add(second, "second"), ANY_OK, "add of the second name", by="meaning")
    abp.expect(
        "ABP-REQ-7",
        Find(first),
        Ok("first"),
        "the second add replaced the first name",
        by="meaning",
    )
    abp.expect("ABP-REQ-7", Find(second), Ok("second"), "fnd of the second name", by="meaning")


# ----------------------------------------------------------------- ABP-REQ-8

UPPERCASE_COMMANDS = ["ADD", "Add", "aDD", "FND", "Fnd", "REM", "Rem"]


@pytest.mark.requirement("ABP-REQ-8", "ABP-REQ-11")
@pytest.mark.parametrize("command", UPPERCASE_COMMANDS)
def test_commands_are_lowercase_and_case_sensitive(abp: ServerSession, command: str) -> None:
    """ABP-REQ-8: "Commands are lowercase and case-sensitive: a server MUST
    answer `ADD:x` or `Fnd:x` as an unknown command." """
    name = abp.name()
    abp.expect(
        "ABP-REQ-8",
        command.encode() + b":" + name.encode() + b",entry",
        unrecognised(command),
        f"`{command}` is not a command",
        by="meaning",
    )
    abp.expect(
        "ABP-REQ-8", Find(name), no_entry(name), f"`{command}` acted as a command", by="meaning"
    )


# ----------------------------------------------------------------- ABP-REQ-9

LINES_WITHOUT_COLON = {
    "word": b"hello",
    "bare command": b"fnd",
    "space instead of colon": b"fnd NAME",
    "comma only": b"add NAME,entry",
    "looks like an answer": b"OK",
    "blank": b" ",
    "semicolon": b"fnd;NAME",
}


@pytest.mark.requirement("ABP-REQ-9", "ABP-RESP-3")
@pytest.mark.parametrize("line", LINES_WITHOUT_COLON.values(), ids=LINES_WITHOUT_COLON.keys())
def test_line_without_colon_is_malformed(abp: ServerSession, line: bytes) -> None:
    """ABP-REQ-9: "A server MUST answer a line that holds no `:` (the empty line
    included) with `ERROR: Malformed request`." (The tutorial's server drops
    the connection without a word.)"""
    line = line.replace(b"NAME", abp.name().encode())
    abp.expect("ABP-REQ-9", line, MALFORMED, "a line with no colon", by="meaning")


@pytest.mark.requirement("ABP-REQ-9", "ABP-CONN-3")
def test_empty_line_is_malformed(abp: ServerSession) -> None:
    """ABP-REQ-9: "... (the empty line included) with `ERROR: Malformed
    request`." An empty request exists only in line framing, so it is sent as
    bare LF and CRLF whatever the server's framing."""
    name = abp.name()
    conn = abp.raw("ABP-REQ-9")
    conn.send(b"\n\r\n" + b"fnd:" + name.encode() + b"\n")
    abp.expect_lines(
        "ABP-REQ-9",
        conn,
        [refusal(b""), refusal(b""), no_entry(name)],
        "an empty line, LF and CRLF",
    )


# ---------------------------------------------------------------- ABP-REQ-10

EMPTY_NAMES = {
    "fnd": b"fnd:",
    "rem": b"rem:",
    "add": b"add:",
    "add with entry": b"add:,x",
    "add with empty entry": b"add:,",
}


@pytest.mark.requirement("ABP-REQ-10", "ABP-RESP-3")
@pytest.mark.parametrize("line", EMPTY_NAMES.values(), ids=EMPTY_NAMES.keys())
def test_empty_name_is_malformed(abp: ServerSession, line: bytes) -> None:
    """ABP-REQ-10: "A server MUST answer a request whose NAME is empty (`fnd:`,
    `rem:`, `add:`, `add:,x`) with `ERROR: Malformed request`." """
    abp.expect("ABP-REQ-10", line, MALFORMED, "a request with an empty NAME", by="meaning")


# ---------------------------------------------------------------- ABP-REQ-11

UNKNOWN_COMMANDS = {
    "word": "get",
    "longer word": "delete",
    "non-ASCII": "\u00e4dd",
    "emoji": "\U0001f4d6",
    "trailing space": "fnd ",
    "leading space": " fnd",
    "tab": "add\t",
    "digits": "123",
    "long": "x" * 200,
    "empty": "",
}


@pytest.mark.requirement("ABP-REQ-11", "ABP-RESP-3")
@pytest.mark.parametrize("command", UNKNOWN_COMMANDS.values(), ids=UNKNOWN_COMMANDS.keys())
def test_unknown_command_is_named_byte_for_byte(abp: ServerSession, command: str) -> None:
    """ABP-REQ-11: "A server MUST answer an unknown COMMAND with `ERROR:
    Unrecognised command: COMMAND`, COMMAND repeated byte for byte: the
    tutorial's wording." """
    abp.expect(
        "ABP-REQ-11",
        command.encode() + b":" + abp.name().encode(),
        unrecognised(command),
        "the unknown command must be repeated exactly",
        by="meaning",
    )
