"""Section 2 of docs/spec.md: Encoding and framing, the limits of a line.

How long a request line may be (ABP-FRAME-9 .. -11) and which bytes it may
not hold (ABP-FRAME-12, -13); the rest of section 2 is in ``test_framing``.
Raw bytes on a line-framed connection, always (``abp.raw()``), as there.
"""

from __future__ import annotations

import contextlib

import pytest

from conformance.harness.raw import RawConnection, Unterminated
from conformance.harness.wire import WireClosed, WireError
from conformance.judging.session import ANY_OK, ServerSession, refusal
from conformance.judging.verdict import fail
from conformance.suites.server.request_lines import crlf, unterminated
from protocol import MAX_REQUEST_LINE, Add, Error, Find, Ok
from protocol.codec import (
    INVALID_UTF8,
    MALFORMED_REQUEST,
    REQUEST_TOO_LONG,
    encode_request,
    encode_response,
    line_content,
    no_entry,
)

TOO_LONG = Error(REQUEST_TOO_LONG)
MALFORMED = Error(MALFORMED_REQUEST)
NOT_UTF8 = Error(INVALID_UTF8)


def add_line_of_size(name: str, size: int) -> tuple[bytes, str]:
    """An ``add`` line of exactly ``size`` bytes (LF excluded), ending with a
    multi-byte character, and its entry."""
    prefix = len(encode_request(Add(name, ""))) - 1
    filler = size - prefix - len("€".encode())
    entry = "x" * filler + "€"
    line = encode_request(Add(name, entry))
    assert len(line) == size + 1
    return line, entry


# ---------------------------------------------------- ABP-FRAME-9 .. -11


@pytest.mark.requirement("ABP-FRAME-9")
@pytest.mark.parametrize("terminator", ["LF", "CRLF"])
def test_request_line_of_4096_bytes_is_accepted(abp: ServerSession, terminator: str) -> None:
    """ABP-FRAME-9: "A server MUST accept request lines of up to 4096 bytes,
    the terminator excluded." The line ends with a 3-byte character."""
    name = abp.name("max")
    line, entry = add_line_of_size(name, MAX_REQUEST_LINE)
    conn = abp.raw()
    conn.send(crlf(line) if terminator == "CRLF" else line)
    abp.expect_lines("ABP-FRAME-9", conn, [ANY_OK], f"a 4096-byte add line + {terminator}")
    conn.send(encode_request(Find(name)))
    abp.expect_lines("ABP-FRAME-9", conn, [Ok(entry)], "the 4096-byte line's entry, read back")


@pytest.mark.requirement("ABP-FRAME-9", "ABP-RESP-4")
def test_lookup_line_of_4096_bytes_is_accepted(abp: ServerSession) -> None:
    """ABP-FRAME-9: "A server MUST accept request lines of up to 4096 bytes":
    a 4096-byte ``fnd`` of a long name that has no entry."""
    name = abp.name("long")
    name += "y" * (MAX_REQUEST_LINE - len(encode_request(Find(name))) + 1)
    line = encode_request(Find(name))
    assert len(line) == MAX_REQUEST_LINE + 1
    conn = abp.raw()
    conn.send(line)
    abp.expect_lines("ABP-FRAME-9", conn, [no_entry(name)], "a 4096-byte fnd line")


@pytest.mark.requirement("ABP-FRAME-10", "ABP-FRAME-11")
@pytest.mark.parametrize("size", [MAX_REQUEST_LINE + 1, 3 * MAX_REQUEST_LINE, 100_000])
def test_request_line_over_4096_bytes_is_refused(abp: ServerSession, size: int) -> None:
    """ABP-FRAME-10: "A server MUST answer a request line longer than 4096
    bytes with `ERROR: Request too long`, once per such line." Then
    ABP-FRAME-11: closed, or the next request answered normally."""
    name = abp.name("long")
    line, _ = add_line_of_size(name, size)
    sentinel = abp.name("after")
    conn = abp.raw("ABP-FRAME-10")
    with contextlib.suppress(WireClosed):  # it may close after the error (ABP-FRAME-11)
        conn.send(line + encode_request(Find(sentinel)))
    abp.expect_lines("ABP-FRAME-10", conn, [TOO_LONG], f"a {size}-byte request line")
    check_usable_or_closed(abp, conn, sentinel)
    abp.expect(
        "ABP-FRAME-10", Find(name), no_entry(name), "the over-long add was stored", by="bytes"
    )
    abp.probe()


@pytest.mark.requirement("ABP-FRAME-11")
def test_rest_of_a_long_line_is_discarded_not_answered(abp: ServerSession) -> None:
    """ABP-FRAME-11: "After `ERROR: Request too long` a server MAY close the
    connection; if it keeps it open, it MUST discard the rest of the long line
    and answer the following requests normally." The long line's tail looks
    like requests; none of them may be answered."""
    decoy = abp.name("decoy")
    tail = b"".join(unterminated(encode_request(Add(decoy, "no"))) + b"\r" for _ in range(3))
    line = b"fnd:" + b"z" * (MAX_REQUEST_LINE + 10) + b"\r" + tail + b"\n"
    sentinel = abp.name("after")
    conn = abp.raw("ABP-FRAME-11")
    with contextlib.suppress(WireClosed):
        conn.send(line + encode_request(Find(sentinel)))
    abp.expect_lines("ABP-FRAME-10", conn, [TOO_LONG], "a long line with a request-like tail")
    check_usable_or_closed(abp, conn, sentinel)
    abp.expect(
        "ABP-FRAME-11", Find(decoy), no_entry(decoy), "the long line's tail was obeyed", by="bytes"
    )
    abp.probe()


def check_usable_or_closed(abp: ServerSession, conn: RawConnection, sentinel: str) -> None:
    """ABP-FRAME-11: after `Request too long`, end of stream, or the answer to
    the next request (and nothing in between)."""
    try:
        line = conn.read_line()
    except WireClosed:
        return  # closed: allowed
    except Unterminated as exc:
        fail(
            "ABP-FRAME-1",
            "after `Request too long`, an answer with no LF",
            actual=exc.partial,
        )
    except WireError as exc:
        fail(
            "ABP-FRAME-11",
            f"after `Request too long` the connection neither closed nor answered ({exc})",
        )
    if line_content(line) != line_content(no_entry_line(sentinel)):
        fail(
            "ABP-FRAME-11",
            "kept open after `Request too long`, but the next request was not answered "
            "normally (the rest of the long line was not discarded?)",
            expected=no_entry_line(sentinel),
            actual=line,
        )


def no_entry_line(missing: str) -> bytes:
    """The answer line to ``fnd`` of a name that has no entry."""
    return encode_response(no_entry(missing))


# ------------------------------------------------------ ABP-FRAME-12, -13


INVALID_UTF8_LINES = {
    "lone 0xFF": b"\xff",
    "lone continuation byte": b"\x80",
    "truncated 2-byte sequence": b"\xc3",
    "truncated 3-byte sequence mid-line": b"\xe2\x82x",
    "overlong '/'": b"\xc0\xaf",
    "UTF-16 surrogate": b"\xed\xa0\x80",
    "beyond U+10FFFF": b"\xf4\x90\x80\x80",
    "Latin-1 e-acute": b"caf\xe9",
}


@pytest.mark.requirement("ABP-FRAME-12", "ABP-CONN-3")
@pytest.mark.parametrize("junk", INVALID_UTF8_LINES.values(), ids=INVALID_UTF8_LINES.keys())
def test_invalid_utf8_is_refused_and_the_connection_stays_usable(
    abp: ServerSession, junk: bytes
) -> None:
    """ABP-FRAME-12: "A server MUST answer a request line that is not valid
    UTF-8 with `ERROR: Invalid UTF-8` and keep the connection usable." """
    name = abp.name()
    conn = abp.raw()
    add = b"add:" + name.encode() + b"," + junk
    conn.send(add + b"\n")
    abp.expect_lines("ABP-FRAME-12", conn, [refusal(add)], "an add whose entry is not UTF-8")
    conn.send(b"fnd:" + junk + b"\n" + encode_request(Find(name)))
    abp.expect_lines(
        "ABP-FRAME-12",
        conn,
        [refusal(b"fnd:" + junk), no_entry(name)],
        "after `Invalid UTF-8` the connection must stay usable (and nothing stored)",
    )
    abp.probe()


NUL_LINES = {
    "in the name": b"fnd:ab\x00cd",
    "in the entry": b"add:NAME,ab\x00cd",
    "in the command": b"f\x00nd:NAME",
    "alone": b"\x00",
    "at the end": b"fnd:NAME\x00",
}


CR_LINES = {
    "in the name": b"fnd:ab\rcd",
    "in the entry": b"add:NAME,ab\rcd",
    "before a CRLF": b"add:NAME,entry\r\r",
}


@pytest.mark.requirement("ABP-FRAME-13", "ABP-CONN-3")
@pytest.mark.parametrize("line", CR_LINES.values(), ids=CR_LINES.keys())
def test_cr_inside_a_request_is_refused_and_the_connection_stays_usable(
    abp: ServerSession, line: bytes
) -> None:
    """ABP-FRAME-13: "A server MUST answer a request line that holds [...] a CR
    anywhere but right before its LF, with `ERROR: Malformed request` and keep
    the connection usable." A stored CR could not be read back byte for byte."""
    name = abp.name()
    conn = abp.raw()
    line = line.replace(b"NAME", name.encode())
    conn.send(line + b"\n" + encode_request(Find(name)))
    abp.expect_lines(
        "ABP-FRAME-13",
        conn,
        [refusal(line_content(line + b"\n")), no_entry(name)],
        "a line holding a CR, then a lookup on the same connection",
    )
    abp.probe()


@pytest.mark.requirement("ABP-FRAME-13", "ABP-CONN-3")
@pytest.mark.parametrize("line", NUL_LINES.values(), ids=NUL_LINES.keys())
def test_nul_byte_is_refused_and_the_connection_stays_usable(
    abp: ServerSession, line: bytes
) -> None:
    """ABP-FRAME-13: "A server MUST answer a request line that holds a NUL byte
    with `ERROR: Malformed request` and keep the connection usable." """
    name = abp.name()
    conn = abp.raw()
    line = line.replace(b"NAME", name.encode())
    conn.send(line + b"\n" + encode_request(Find(name)))
    abp.expect_lines(
        "ABP-FRAME-13",
        conn,
        [refusal(line), no_entry(name)],
        "a line holding NUL, then a lookup on the same connection",
    )
    abp.probe()
