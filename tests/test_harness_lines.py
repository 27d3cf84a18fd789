"""``conformance.harness.lines``: the suite's one bounded line reader, on real
loopback sockets."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from conformance.harness.lines import (
    BUFFER_CAP,
    CLOSE,
    LF,
    LINE_CAP,
    SILENCE,
    TIMEOUT,
    LineBuffer,
    LineOverflow,
    split_lines,
)

WAIT = 5.0


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A connected TCP pair on 127.0.0.1: (ours, the peer's)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(WAIT)
        ours = socket.create_connection(listener.getsockname(), timeout=WAIT)
        peer, _ = listener.accept()
    peer.settimeout(WAIT)
    try:
        yield ours, peer
    finally:
        ours.close()
        peer.close()


def reader(sock: socket.socket) -> LineBuffer:
    def recv(wait: float) -> bytes:
        sock.settimeout(wait)
        return sock.recv(65536)

    return LineBuffer(recv)


def test_lines_come_one_at_a_time_with_their_terminator(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, peer = pair
    peer.sendall(b"OK\r\nERROR: x\nrest")
    lines = reader(ours)
    assert lines.read(WAIT).data == b"OK\r\n"
    heard = lines.read(WAIT)
    assert (heard.data, heard.ended_by) == (b"ERROR: x\n", LF)
    peer.close()
    assert lines.read(WAIT) == type(heard)(b"rest", CLOSE)


def test_silence_ends_a_read_only_once_a_byte_came(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, peer = pair
    lines = reader(ours)
    assert lines.read(0.05, quiet=0.01).ended_by == TIMEOUT  # nothing at all: the deadline
    peer.sendall(b"no terminator")
    heard = lines.read(WAIT, quiet=0.05)
    assert (heard.data, heard.ended_by) == (b"no terminator", SILENCE)


def test_the_deadline_does_not_restart_with_every_byte(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    """A peer trickling one byte every 20 ms: the call's own deadline ends
    the read (a deadline restarted by every byte never would), and the bytes
    stay buffered."""
    ours, peer = pair
    stop = threading.Event()

    def trickle() -> None:
        while not stop.wait(0.02):
            peer.sendall(b"x")

    thread = threading.Thread(target=trickle)
    thread.start()
    try:
        lines = reader(ours)
        start = time.monotonic()
        heard = lines.read(0.3, quiet=1.0)
        took = time.monotonic() - start
    finally:
        stop.set()
        thread.join(WAIT)
    assert heard.ended_by == TIMEOUT
    assert heard.data
    assert set(heard.data) == {ord("x")}
    assert 0.3 <= took < WAIT
    assert bytes(lines.buffer).startswith(heard.data)


def test_more_than_the_cap_with_no_lf_fails_showing_the_first_bytes(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, peer = pair
    flood = b"A" * (LINE_CAP + 1000)

    def send() -> None:
        with contextlib.suppress(OSError):  # we stop reading and close: that is the point
            peer.sendall(flood)

    sender = threading.Thread(target=send)
    sender.start()
    try:
        with pytest.raises(LineOverflow) as caught:
            reader(ours).read(WAIT)
    finally:
        ours.close()  # the peer's sendall ends, whatever it was doing
        sender.join(WAIT)
    assert caught.value.count > LINE_CAP
    assert caught.value.partial == b"A" * 60
    assert f"the cap is {LINE_CAP}" in str(caught.value)


def test_split_lines_keeps_the_tail() -> None:
    assert split_lines(b"a\nb\r\nc") == ([b"a\n", b"b\r\n"], b"c")
    assert split_lines(b"") == ([], b"")


def test_what_is_buffered_unread_is_capped_too(pair: tuple[socket.socket, socket.socket]) -> None:
    """Complete lines nobody takes (a read to the end of the stream) stop at
    ``BUFFER_CAP``."""
    ours, peer = pair
    flood = b"OK\n" * (BUFFER_CAP // 3 + 1000)

    def send() -> None:
        with contextlib.suppress(OSError):
            peer.sendall(flood)

    sender = threading.Thread(target=send)
    sender.start()
    lines = reader(ours)

    def fill_for(seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            lines.fill(deadline - time.monotonic())

    try:
        with pytest.raises(LineOverflow, match="buffered unread"):
            fill_for(WAIT)
    finally:
        ours.close()
        sender.join(WAIT)
    assert len(lines.buffer) > BUFFER_CAP
