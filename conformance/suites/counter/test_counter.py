"""Section 7 of docs/spec.md: The counter service.

Every request line is answered ``Thankyou!, processed connection number N``,
the tutorial's wording; N numbers the connection and stays the same for all
its answers; later connections get greater numbers. Framing as section 2.
Other clients (other xdist workers) may take numbers in between, so the
shared server is judged on order and distinctness; exact numbering needs a
private server (``--server-cmd``).
"""

from __future__ import annotations

import contextlib
import itertools
import threading

import pytest

from conformance.harness.raw import RawConnection, Unterminated
from conformance.harness.timing import SETTLE
from conformance.harness.wire import WireClosed, WireError
from conformance.judging.session import ServerSession
from conformance.judging.verdict import fail
from protocol import MAX_REQUEST_LINE, CounterReply, Error, RemoteProtocolError
from protocol.codec import REQUEST_TOO_LONG, decode_counter_reply, encode_response, line_content

WORDING = encode_response(CounterReply(7)).replace(b"7", b"N")
TOO_LONG = encode_response(Error(REQUEST_TOO_LONG))


def number_of(abp: ServerSession, requirement: str, answer: bytes) -> int:
    """N of one answer; any other text fails ``requirement``."""
    try:
        return decode_counter_reply(line_content(answer)).number
    except RemoteProtocolError:
        fail(
            requirement,
            "the answer is not the tutorial's wording",
            expected=WORDING,
            actual=answer,
        )


def ask(abp: ServerSession, requirement: str, line: bytes, conn: RawConnection) -> int:
    """One request line in the server's framing; N of its answer."""
    return number_of(abp, requirement, abp.answer(requirement, line, conn=conn))


def lines(abp: ServerSession, requirement: str, conn: RawConnection, count: int) -> list[int]:
    """``count`` LF-terminated answers on a line-framed connection; their Ns."""
    raw = abp.read_lines(requirement, conn, count, f"{count} counter answers")
    return [number_of(abp, requirement, line) for line in raw]


def check_one_number(abp: ServerSession, numbers: list[int]) -> None:
    """ABP-COUNTER-2: the answers on one connection all carry its number."""
    if len(set(numbers)) != 1:
        fail(
            "ABP-COUNTER-2",
            "answers on one connection carry different numbers",
            expected=[numbers[0]] * len(numbers),
            actual=numbers,
        )


# ------------------------------------------------------------- ABP-COUNTER-1

REQUEST_LINES = {
    "tutorial's request": b"dummy request",
    "address-book request": b"add:x,y",
    "looks like an answer": b"Thankyou!, processed connection number 1",
    "error-like": b"ERROR: x",
    "not UTF-8": b"\xff\xfe\xfd",
    "NUL": b"a\x00b",
    "unicode": "\u00e9\U0001f600".encode(),
}


@pytest.mark.requirement("ABP-COUNTER-1")
def test_answer_is_the_tutorials_wording(abp: ServerSession) -> None:
    """ABP-COUNTER-1: "A counter server MUST answer every request line, whatever
    it holds, with `Thankyou!, processed connection number N`, where N is a
    decimal number: the tutorial's wording, byte for byte." """
    conn = abp.raw("ABP-COUNTER-1")
    number = ask(abp, "ABP-COUNTER-1", b"dummy request", conn)
    if number < 1:
        fail("ABP-COUNTER-2", f"N must count from 1, got {number}")


@pytest.mark.requirement("ABP-COUNTER-1")
@pytest.mark.parametrize("line", REQUEST_LINES.values(), ids=REQUEST_LINES.keys())
def test_every_request_line_whatever_it_holds_is_answered(abp: ServerSession, line: bytes) -> None:
    """ABP-COUNTER-1: "A counter server MUST answer every request line, whatever
    it holds, with `Thankyou!, processed connection number N`" """
    conn = abp.raw("ABP-COUNTER-1")
    ask(abp, "ABP-COUNTER-1", line, conn)
    abp.probe()


@pytest.mark.requirement("ABP-COUNTER-1", "ABP-COUNTER-4")
def test_empty_line_is_answered(abp: ServerSession) -> None:
    """ABP-COUNTER-1: "every request line, whatever it holds", the empty line
    included (sent as a bare LF: it exists only in line framing)."""
    conn = abp.raw("ABP-COUNTER-1")
    conn.send(b"\n")
    lines(abp, "ABP-COUNTER-1", conn, 1)


# ------------------------------------------------------------- ABP-COUNTER-2


@pytest.mark.requirement("ABP-COUNTER-2")
def test_all_answers_on_one_connection_carry_the_same_number(abp: ServerSession) -> None:
    """ABP-COUNTER-2: "... every answer on one connection MUST carry the same
    N." Five requests one after the other (and five pipelined)."""
    conn = abp.raw("ABP-COUNTER-2")
    numbers = [ask(abp, "ABP-COUNTER-2", f"request {i}".encode(), conn) for i in range(5)]
    if not abp.target.legacy:
        conn.send(b"".join(f"pipelined {i}\n".encode() for i in range(5)))
        numbers += lines(abp, "ABP-COUNTER-2", conn, 5)
    check_one_number(abp, numbers)


@pytest.mark.requirement("ABP-COUNTER-2", "ABP-COUNTER-3")
def test_private_server_numbers_connections_one_by_one(abp: ServerSession) -> None:
    """ABP-COUNTER-2: "N MUST be the 1-based number of the connection since the
    server started": on a private server that nobody else talks to, each new
    connection gets the next number."""
    with abp.private_server() as server:
        if server is None:
            pytest.skip(
                "needs --server-cmd (pytest: --abp-server-cmd): a server no other client uses"
            )
        numbers = []
        for i in range(4):
            conn = abp.raw("ABP-COUNTER-2", address=server.address)
            numbers.append(ask(abp, "ABP-COUNTER-2", f"connection {i}".encode(), conn))
            conn.close()
        expected = list(range(numbers[0], numbers[0] + len(numbers)))
        if numbers != expected or numbers[0] < 1:
            fail(
                "ABP-COUNTER-2",
                "consecutive connections to a fresh server are not numbered one by one",
                expected=expected,
                actual=numbers,
            )


# ------------------------------------------------------------- ABP-COUNTER-3


@pytest.mark.requirement("ABP-COUNTER-3")
def test_each_new_connection_gets_a_greater_number(abp: ServerSession) -> None:
    """ABP-COUNTER-3: "Every new connection MUST get a greater N than every
    connection accepted before it". Other clients may take numbers in
    between; the order must still be strictly increasing."""
    numbers = []
    for i in range(5):
        conn = abp.raw("ABP-COUNTER-3")
        numbers.append(ask(abp, "ABP-COUNTER-3", f"connection {i}".encode(), conn))
        conn.close()
    if any(later <= earlier for earlier, later in itertools.pairwise(numbers)):
        fail(
            "ABP-COUNTER-3",
            "a later connection did not get a greater number",
            expected="strictly increasing numbers",
            actual=numbers,
        )


@pytest.mark.requirement("ABP-COUNTER-3")
def test_concurrent_connections_get_distinct_numbers(abp: ServerSession) -> None:
    """ABP-COUNTER-3: "... so that concurrent connections get distinct
    numbers." Twenty clients connect and ask at once (each closes after its
    answer, so a server that serves one client at a time still gets through
    them)."""
    clients = 20
    conns = [abp.raw("ABP-COUNTER-3", connect=False) for _ in range(clients)]
    numbers: list[int | None] = [None] * clients
    errors: list[str] = []

    def client(i: int) -> None:
        conn = conns[i]
        try:
            conn.wire.connect()
            conn.send(b"concurrent" if abp.target.legacy else b"concurrent\n")
            answer = conn.read_legacy() if abp.target.legacy else conn.read_line()
            numbers[i] = decode_counter_reply(line_content(answer)).number
        except (WireError, RemoteProtocolError) as exc:
            errors.append(f"{conn.name}: {exc}")
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(abp.target.timeout * 2)
    if errors or any(n is None for n in numbers):
        fail(
            "ABP-COUNTER-3",
            f"{len(errors)} of {clients} concurrent clients got no counter answer: {errors[:3]}",
        )
    if len(set(numbers)) != clients:
        fail(
            "ABP-COUNTER-3",
            "concurrent connections got the same number",
            expected=f"{clients} distinct numbers",
            actual=sorted(n for n in numbers if n is not None),
        )


# ------------------------------------------------------------- ABP-COUNTER-4


@pytest.mark.requirement("ABP-COUNTER-4")
def test_lf_and_crlf_lines_get_one_lf_terminated_answer_each(abp: ServerSession) -> None:
    """ABP-COUNTER-4: "A counter server MUST frame as section 2 says: one
    LF-terminated answer per request line, LF or CRLF accepted, ..." Three
    lines in one write, then one more sent a byte at a time."""

    def attempt() -> tuple[list[int], bytes]:
        conn = abp.raw("ABP-COUNTER-4")
        conn.send(b"lf\ncrlf\r\nlf again\n")
        numbers = lines(abp, "ABP-COUNTER-4", conn, 3)
        trickle = b"trickle\r\n"
        conn.trickle(trickle, [1] * len(trickle))
        numbers += lines(abp, "ABP-COUNTER-4", conn, 1)
        return numbers, conn.quiet_for(SETTLE)

    result: list[tuple[list[int], bytes]] = []
    abp.attempts(lambda: result.append(attempt()))
    numbers, extra = result[-1]
    if extra:
        fail(
            "ABP-COUNTER-4",
            "more answers than lines (a CR taken as a line end?)",
            expected=b"",
            actual=extra,
        )
    check_one_number(abp, numbers)


@pytest.mark.requirement("ABP-COUNTER-4")
def test_unterminated_line_is_answered_at_half_close_then_closed(abp: ServerSession) -> None:
    """ABP-COUNTER-4: "... unterminated requests answered after the quiet
    period or at half-close" (and, as ABP-FRAME-5 says, then closed)."""
    abp.needs_half_close()
    conn = abp.raw("ABP-COUNTER-4")
    conn.send(b"dummy request")
    conn.shutdown_write()
    lines(abp, "ABP-COUNTER-4", conn, 1)
    if not conn.is_closed(abp.target.timeout):
        fail(
            "ABP-COUNTER-4",
            "after answering a half-closed client, the server did not close",
        )


@pytest.mark.requirement("ABP-COUNTER-4")
def test_unterminated_line_is_answered_after_the_quiet_period(abp: ServerSession) -> None:
    """ABP-COUNTER-4: "... unterminated requests answered after the quiet
    period" (the tutorial's counter client sends ``dummy request`` and waits)."""
    conn = abp.raw("ABP-COUNTER-4")
    conn.send(b"dummy request")
    lines(abp, "ABP-COUNTER-4", conn, 1)


@pytest.mark.requirement("ABP-COUNTER-4")
def test_line_of_4096_bytes_is_answered(abp: ServerSession) -> None:
    """ABP-COUNTER-4: "A counter server MUST frame as section 2 says" (and a
    server MUST accept request lines of up to 4096 bytes, ABP-FRAME-9)."""
    conn = abp.raw("ABP-COUNTER-4")
    conn.send(b"x" * MAX_REQUEST_LINE + b"\n")
    lines(abp, "ABP-COUNTER-4", conn, 1)


@pytest.mark.requirement("ABP-COUNTER-4")
def test_line_over_4096_bytes_is_refused(abp: ServerSession) -> None:
    """ABP-COUNTER-4: "... lines over 4096 bytes answered `ERROR: Request too
    long`." Then, as ABP-FRAME-11 allows, closed, or answering the next line
    with the connection's number."""
    conn = abp.raw("ABP-COUNTER-4")
    with contextlib.suppress(WireClosed):
        conn.send(b"y" * (MAX_REQUEST_LINE + 1) + b"\nnext\n")
    first = abp.read_lines("ABP-COUNTER-4", conn, 1, "an over-long line")[0]
    if line_content(first) != line_content(TOO_LONG):
        fail(
            "ABP-COUNTER-4",
            "a line over 4096 bytes must be answered `ERROR: Request too long`",
            expected=TOO_LONG,
            actual=first,
        )
    try:
        after = conn.read_line()
    except WireClosed:
        after = None  # closed after the error: allowed
    except (Unterminated, WireError) as exc:
        fail(
            "ABP-FRAME-11",
            f"after `Request too long`, neither closed nor the next answer ({exc})",
        )
    if after is not None:
        number_of(abp, "ABP-FRAME-11", after)
    abp.probe()
