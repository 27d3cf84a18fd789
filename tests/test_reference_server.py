"""The reference server on the wire: every command and error of docs/spec.md,
byte for byte, over real loopback sockets to a real server process."""

from __future__ import annotations

import itertools
import time
from typing import TYPE_CHECKING

import pytest

from protocol import Add, CounterReply, Error, Find, Ok, Remove

if TYPE_CHECKING:
    from conftest import Connect, ReferenceServer, StartServer

_names = itertools.count()


def unique(prefix: str = "n") -> str:
    """A name no other test of the shared book uses."""
    return f"{prefix}{next(_names)}-{time.monotonic_ns()}"


# ---------------------------------------------------------------- commands

# (request bytes, exact answer bytes) in order, on one connection; names are
# made unique per run by the "@" placeholder.
SCRIPT = [
    (b"fnd:@a\n", b"ERROR: No entry for @a\n"),  # ABP-RESP-4
    (b"add:@a,1 High St, Leeds, 0113\n", b"OK\n"),  # ABP-REQ-2
    (b"fnd:@a\n", b"OK: 1 High St, Leeds, 0113\n"),  # ABP-RESP-2
    (b"add:@a,2 Low Rd\n", b"OK\n"),  # ABP-REQ-4 replaces
    (b"fnd:@a\n", b"OK: 2 Low Rd\n"),
    (b"rem:@a\n", b"OK\n"),  # ABP-REQ-5
    (b"fnd:@a\n", b"ERROR: No entry for @a\n"),
    (b"rem:@a\n", b"ERROR: No entry for @a\n"),  # ABP-RESP-4
    (b"add:@b\n", b"OK\n"),  # ABP-REQ-3: no comma, empty entry
    (b"fnd:@b\n", b"OK: \n"),
    (b"add:@c:x,y:z,w\n", b"OK\n"),  # ABP-REQ-1: split at the first ':' only
    (b"fnd:@c:x\n", b"OK: y:z,w\n"),
    (b"fnd:@c\n", b"ERROR: No entry for @c\n"),
    (b"add:@d, \tpadded\t \n", b"OK\n"),
    (b"fnd:@d\n", b"OK:  \tpadded\t \n"),  # spaces and tabs kept
    (b"fnd:@D\n", b"ERROR: No entry for @D\n"),  # ABP-REQ-7: case-sensitive
    (b"fnd: @d\n", b"ERROR: No entry for  @d\n"),  # no trimming
    (b"ADD:@x\n", b"ERROR: Unrecognised command: ADD\n"),  # ABP-REQ-8
    (b"Fnd:@x\n", b"ERROR: Unrecognised command: Fnd\n"),
    (b"del:@x\n", b"ERROR: Unrecognised command: del\n"),  # ABP-REQ-11
    (b"hello\n", b"ERROR: Malformed request\n"),  # ABP-REQ-9
    (b"\n", b"ERROR: Malformed request\n"),
    (b"fnd:\n", b"ERROR: Malformed request\n"),  # ABP-REQ-10
    (b"rem:\n", b"ERROR: Malformed request\n"),
    (b"add:\n", b"ERROR: Malformed request\n"),
    (b"add:,x\n", b"ERROR: Malformed request\n"),
    (b"fnd:@a\x00\n", b"ERROR: Malformed request\n"),  # ABP-FRAME-13
    (b"fnd:\xff\xfe\n", b"ERROR: Invalid UTF-8\n"),  # ABP-FRAME-12
    (b"add:@e,crlf\r\n", b"OK\n"),  # ABP-FRAME-3
    (b"fnd:@e\r\n", b"OK: crlf\n"),
]


def test_every_command_and_error_byte_for_byte(
    shared_server: ReferenceServer, connect: Connect
) -> None:
    tag = unique("s").encode()
    client = connect(shared_server)
    for template, expected in SCRIPT:
        request = template.replace(b"@", tag)
        assert client.exchange(request) == expected.replace(b"@", tag), request


def test_errors_keep_the_connection_open(shared_server: ReferenceServer, connect: Connect) -> None:
    """ABP-CONN-3: after every kind of error the same connection still works."""
    client = connect(shared_server)
    name = unique()
    for bad in (
        b"x\n",
        b"zzz:1\n",
        b"fnd:\n",
        b"\xff\n",
        b"\x00\n",
        b"fnd:" + name.encode() + b"\n",
    ):
        assert client.exchange(bad).startswith(b"ERROR: ")
    assert client.request(Add(name, "still here")) == Ok()
    assert client.request(Find(name)) == Ok("still here")


@pytest.mark.parametrize(
    ("name", "entry"),
    [
        ("Zoë", "Straße 5, Köln"),
        ("名前", "東京都 1-2-3"),
        ("e\u0301", "NFD"),  # not the same name as "é" (ABP-REQ-7)
        ("rocket 🚀", "🚀🚀 , : ,"),
        ("tab\tname", "\t"),
    ],
)
def test_unicode_round_trip_is_byte_exact(
    shared_server: ReferenceServer, connect: Connect, name: str, entry: str
) -> None:
    name = unique(name)
    client = connect(shared_server)
    assert client.request(Add(name, entry)) == Ok()
    wire = client.exchange(b"fnd:" + name.encode() + b"\n")
    assert wire == b"OK: " + entry.encode() + b"\n"
    assert client.request(Find(name)) == Ok(entry)


def test_nfc_and_nfd_names_are_distinct(shared_server: ReferenceServer, connect: Connect) -> None:
    client = connect(shared_server)
    tag = unique()
    assert client.request(Add(tag + "\u00e9", "nfc")) == Ok()
    assert client.request(Add(tag + "e\u0301", "nfd")) == Ok()
    assert client.request(Find(tag + "\u00e9")) == Ok("nfc")
    assert client.request(Find(tag + "e\u0301")) == Ok("nfd")


def test_a_request_one_byte_at_a_time(shared_server: ReferenceServer, connect: Connect) -> None:
    """ABP-FRAME-4: segmentation does not matter."""
    client = connect(shared_server)
    name = unique()
    assert client.request(Add(name, "bytewise")) == Ok()
    for byte in b"fnd:" + name.encode() + b"\r\n":
        client.send_raw(bytes([byte]))
    assert client.read_line() == b"OK: bytewise\n"


def test_line_of_4096_bytes_is_accepted(shared_server: ReferenceServer, connect: Connect) -> None:
    """ABP-FRAME-9: 4096 bytes, terminator excluded."""
    client = connect(shared_server)
    name = unique()
    entry = "e" * (4096 - len("add:,") - len(name))
    line = b"add:" + name.encode() + b"," + entry.encode()
    assert len(line) == 4096
    assert client.exchange(line + b"\r\n") == b"OK\n"
    assert client.exchange(b"fnd:" + name.encode() + b"\n") == b"OK: " + entry.encode() + b"\n"


def test_request_too_long_then_the_connection_goes_on(
    shared_server: ReferenceServer, connect: Connect
) -> None:
    """ABP-FRAME-10, ABP-FRAME-11: one error per long line; the rest is discarded."""
    client = connect(shared_server)
    name = unique()
    client.send_raw(b"add:" + name.encode() + b"," + b"x" * 5000)
    client.send_raw(b"y" * 10000 + b"\n" + b"fnd:" + name.encode() + b"\n")
    assert client.read_line() == b"ERROR: Request too long\n"
    assert client.read_line() == b"ERROR: No entry for " + name.encode() + b"\n"
    assert client.exchange(b"z" * 4097 + b"\n") == b"ERROR: Request too long\n"
    assert client.request(Add(name, "ok")) == Ok()


def test_one_hundred_pipelined_requests_in_one_write(
    shared_server: ReferenceServer, connect: Connect
) -> None:
    """ABP-CONN-2: all answered, in order, a fnd seeing the add queued before it."""
    client = connect(shared_server)
    tag = unique()
    requests: list[bytes] = []
    expected: list[bytes] = []
    for i in range(25):
        name = f"{tag}-{i}".encode()
        requests += [b"add:" + name + b",v%d" % i, b"fnd:" + name, b"bogus:" + name, b"rem:" + name]
        expected += [b"OK\n", b"OK: v%d\n" % i, b"ERROR: Unrecognised command: bogus\n", b"OK\n"]
    client.send_raw(b"".join(line + b"\n" for line in requests))
    assert client.read_lines(100) == expected


def test_fnd_after_ok_on_another_connection_sees_it(
    shared_server: ReferenceServer, connect: Connect
) -> None:
    """ABP-DUR-4, for add and for rem, many times over."""
    writer, reader = connect(shared_server), connect(shared_server)
    for i in range(50):
        name = unique()
        assert writer.request(Add(name, str(i))) == Ok()
        assert reader.request(Find(name)) == Ok(str(i))
        assert writer.request(Remove(name)) == Ok()
        assert reader.request(Find(name)) == Error("No entry for " + name)


# ------------------------------------------------------- legacy framing


def test_tutorial_client_is_answered_after_the_quiet_period(
    shared_server: ReferenceServer, connect: Connect
) -> None:
    """ABP-FRAME-6: one connection per command, no terminator, then wait."""
    name = unique()
    for request, answer in [
        (b"add:" + name.encode() + b",10 Main St, Town, 555", b"OK\n"),
        (b"fnd:" + name.encode(), b"OK: 10 Main St, Town, 555\n"),
        (b"rem:" + name.encode(), b"OK\n"),
    ]:
        client = connect(shared_server)
        started = time.monotonic()
        assert client.exchange(request) == answer
        assert time.monotonic() - started >= 0.09  # not before the 100 ms quiet period
        client.close()


def test_unterminated_request_answered_at_half_close(
    start_server: StartServer, connect: Connect
) -> None:
    """ABP-FRAME-5: with a quiet period of a minute, only the half-close explains it."""
    server = start_server("--quiet-ms", "60000")
    client = connect(server)
    client.send_raw(b"add:legacy,half closed\r")
    client.half_close()
    assert client.read_line() == b"OK\n"
    assert client.at_eof()
    other = connect(server)
    other.send_raw(b"fnd:legacy")
    other.half_close()
    assert other.read_line() == b"OK: half closed\n"
    assert other.at_eof()


def test_half_close_after_pipelined_changes_answers_all_then_closes(
    start_server: StartServer, connect: Connect
) -> None:
    server = start_server()
    client = connect(server)
    client.send_raw(b"".join(b"add:h%d,%d\n" % (i, i) for i in range(50)) + b"fnd:h49")
    client.half_close()
    assert client.read_lines(51) == [b"OK\n"] * 50 + [b"OK: 49\n"]
    assert client.at_eof()


# ------------------------------------------------------------- counter


def test_counter_service_numbers_connections(start_server: StartServer, connect: Connect) -> None:
    """ABP-COUNTER-1..4: same N on a connection, each new connection the next N."""
    server = start_server(service="counter")
    first = connect(server, counter=True)
    answer = first.request(b"dummy request")
    assert isinstance(answer, CounterReply)
    n = answer.number
    second = connect(server, counter=True)
    assert second.exchange(b"anything at all\r\n") == (
        b"Thankyou!, processed connection number %d\n" % (n + 1)
    )
    assert first.request(b"again") == CounterReply(n)
    assert first.exchange(b"x" * 5000 + b"\n") == b"ERROR: Request too long\n"
    first.send_raw(b"legacy, no terminator")
    assert first.read_line() == b"Thankyou!, processed connection number %d\n" % n
    third = connect(server, counter=True)
    third.send_raw(b"a\nb\nc\n")
    assert third.read_lines(3) == [b"Thankyou!, processed connection number %d\n" % (n + 2)] * 3
