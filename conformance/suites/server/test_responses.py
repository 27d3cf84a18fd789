"""Section 4 of docs/spec.md: Responses.

``OK`` / ``OK: TEXT`` for changes, ``OK: ENTRY`` byte for byte for lookups,
and the standard ``ERROR: `` texts. Requests go out in the framing the server
handles.
"""

from __future__ import annotations

import pytest

from conformance.judging.session import ANY_OK, ServerSession, decode
from conformance.judging.verdict import fail
from protocol import MAX_REQUEST_LINE, Add, Error, Find, Ok, Remove
from protocol.codec import INVALID_UTF8, MALFORMED_REQUEST, REQUEST_TOO_LONG, no_entry, unrecognised


@pytest.mark.requirement("ABP-RESP-1")
def test_add_and_rem_answer_ok_or_ok_with_text(abp: ServerSession) -> None:
    """ABP-RESP-1: "A server MUST answer a successful `add` or `rem` with `OK` or
    with `OK: ` followed by free text." (Checked on the decoded line: `OK`,
    exactly, or `OK: ` then anything; `OK:x`, `Ok` or `OK!` are not.)"""
    name = abp.name()
    for request in (Add(name, "x"), Add(name, "y"), Remove(name)):
        answer = abp.answer("ABP-RESP-1", request)
        if not isinstance(decode(answer), Ok):
            fail(
                "ABP-RESP-1",
                f"a successful {type(request).__name__.lower()} must be answered `OK`",
                expected="OK or OK: TEXT",
                actual=answer,
            )


ROUND_TRIP_ENTRIES = {
    "empty": "",
    "spaces": "  two leading, two trailing  ",
    "only a space": " ",
    "tabs": "\tcol1\tcol2\t",
    "colons and commas": "a:b,c:,:d",
    "emoji": "call \U0001f600 \U0001f4de",
    "astral plane": "\U0001d11e \U00010000 \U0010fffd",
    "CJK": "\u96fb\u8a71\u5e33",
    "right-to-left": "\u05e2\u05d1\u05e8\u05d9\u05ea \u0627\u0644\u0639\u0631\u0628\u064a\u0629",
    "combining (NFD)": "cafe\u0301",
    "zero-width and BOM": "a\u200bb\ufeffc",
    "backslashes": "C:\\path\\n is not a newline",
    "looks like OK": "OK: nested",
    "looks like ERROR": "ERROR: No entry for x",
    "control characters": "\x01\x07\x08\x1b[0m\x7f",
    "C1 controls": "\x80\x9f",
    "noncharacters": "\ufdd0\ufffe\uffff",
    "replacement char": "\ufffd",
    "format strings": "%s %d {0} {name} $HOME",
    "long": "x" * 3000 + "\u00e9",
}


@pytest.mark.requirement("ABP-RESP-2")
@pytest.mark.parametrize("entry", ROUND_TRIP_ENTRIES.values(), ids=ROUND_TRIP_ENTRIES.keys())
def test_fnd_returns_the_entry_byte_for_byte(abp: ServerSession, entry: str) -> None:
    """ABP-RESP-2: "A server MUST answer a successful `fnd` with `OK: ` followed
    by ENTRY exactly as it was stored: a byte-exact round trip for any Unicode,
    `:` and `,` and spaces and tabs included." """
    name = abp.name()
    abp.expect("ABP-REQ-2", Add(name, entry), ANY_OK, "add", by="meaning")
    abp.expect(
        "ABP-RESP-2", Find(name), Ok(entry), "the entry did not come back byte for byte", by="bytes"
    )


@pytest.mark.requirement("ABP-RESP-2", "ABP-REQ-7")
def test_unicode_names_round_trip(abp: ServerSession) -> None:
    """ABP-RESP-2: "... a byte-exact round trip for any Unicode": names from
    every plane, stored and found."""
    for i, prefix in enumerate(("\u00e9l\u00e8ve", "\U0001f600", "\u96fb", "\U0010fffd", "a b")):
        name = f"{prefix}-{abp.name()}"
        abp.expect(
            "ABP-REQ-7", Add(name, f"entry {i}"), ANY_OK, "add of a Unicode name", by="meaning"
        )
        abp.expect("ABP-RESP-2", Find(name), Ok(f"entry {i}"), "fnd of a Unicode name", by="bytes")


def too_long_line() -> bytes:
    return b"fnd:" + b"x" * MAX_REQUEST_LINE


STANDARD_ERRORS = {
    "No entry for NAME": (b"fnd:NAME", Error("No entry for NAME")),
    "Unrecognised command": (b"nope:NAME", unrecognised("nope")),
    "Malformed request (no colon)": (b"no colon", Error(MALFORMED_REQUEST)),
    "Malformed request (empty name)": (b"rem:", Error(MALFORMED_REQUEST)),
    "Malformed request (NUL)": (b"fnd:NAME\x00", Error(MALFORMED_REQUEST)),
    "Invalid UTF-8": (b"fnd:NAME\xc3", Error(INVALID_UTF8)),
    "Request too long": (too_long_line(), Error(REQUEST_TOO_LONG)),
}


@pytest.mark.requirement("ABP-RESP-3")
@pytest.mark.parametrize("case", STANDARD_ERRORS.values(), ids=STANDARD_ERRORS.keys())
def test_error_answers_use_the_standard_texts(
    abp: ServerSession, case: tuple[bytes, Error]
) -> None:
    """ABP-RESP-3: "Every error response MUST be `ERROR: ` followed by the
    standard text of the table above for the conditions it lists." """
    line, error = case
    name = abp.name()
    expected = Error(error.text.replace("NAME", name))
    abp.expect(
        "ABP-RESP-3", line.replace(b"NAME", name.encode()), expected, "error text", by="bytes"
    )
    abp.probe()


MISSING_NAMES = {
    "plain": "{u}",
    "spaces": "Mr {u} Jr ",
    "colons": "{u}:x:y",
    "Unicode": "\u00e9\u00e8-{u}-\U0001f600",
}


@pytest.mark.requirement("ABP-RESP-4")
@pytest.mark.parametrize("template", MISSING_NAMES.values(), ids=MISSING_NAMES.keys())
def test_missing_name_is_answered_no_entry_for_name(abp: ServerSession, template: str) -> None:
    """ABP-RESP-4: "A server MUST answer `rem:NAME` and `fnd:NAME` of a NAME that
    has no entry with `ERROR: No entry for NAME`." """
    name = template.format(u=abp.name())
    abp.expect(
        "ABP-RESP-4", Find(name), no_entry(name), "fnd of a name that has no entry", by="bytes"
    )
    abp.expect(
        "ABP-RESP-4", Remove(name), no_entry(name), "rem of a name that has no entry", by="bytes"
    )
