"""``conformance.harness.raw``: the small-window connection, the hang-up seen
without reading, and the counting drain, on real loopback sockets (the tools
of ABP-CONN-7's client that stops reading)."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Iterator

import pytest

from conformance.harness.raw import (
    DEADLINE,
    DRAIN_TAIL,
    EOF_,
    QUIET,
    RESET,
    RawConnection,
)
from conformance.harness.wire import Wire

WAIT = 5.0
SMALL = 4096


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        sock.settimeout(WAIT)
        yield sock


def connect(
    listener: socket.socket, recv_buffer: int | None = SMALL
) -> tuple[RawConnection, socket.socket]:
    """Our small-window connection, and the peer's end of it."""
    host, port = listener.getsockname()
    wire = Wire(host, port, name="c1", timeout=WAIT)
    wire.recv_buffer = recv_buffer
    wire.connect()
    peer, _ = listener.accept()
    peer.settimeout(WAIT)
    return RawConnection(wire), peer


def reset(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def fill(peer: socket.socket) -> int:
    """The peer writes until our window and its send buffer are full."""
    peer.setblocking(False)
    sent = 0
    with contextlib.suppress(BlockingIOError):
        while True:
            sent += peer.send(b"x" * 65536)
    peer.settimeout(WAIT)
    return sent


def test_the_receive_buffer_is_set_before_connecting(listener: socket.socket) -> None:
    conn, peer = connect(listener)
    with peer:
        assert conn.wire.sock is not None
        # Linux doubles the value asked for (bookkeeping): still a few kilobytes
        assert conn.wire.sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) <= 4 * SMALL
        conn.close()


def test_a_reset_is_seen_without_reading(listener: socket.socket) -> None:
    conn, peer = connect(listener)
    sent = fill(peer)
    assert sent > 0
    assert not conn.hung_up(0.1)  # open, with unread bytes: no hang-up
    reset(peer)
    assert conn.hung_up(WAIT)
    conn.close()


def test_an_end_of_stream_behind_unread_bytes_is_seen_by_draining(
    listener: socket.socket,
) -> None:
    conn, peer = connect(listener)
    payload = bytes(range(256)) * 4096  # 1 MB, more than both buffers hold

    def write_then_close() -> None:
        with peer:
            peer.sendall(payload)

    writer = threading.Thread(target=write_then_close)
    writer.start()
    assert not conn.hung_up(0.2)  # the FIN waits behind what we have not read
    assert conn.wire.sock is not None
    conn.wire.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    drained = conn.drain(quiet=WAIT, timeout=WAIT)
    writer.join(WAIT)
    assert (drained.count, drained.ended_by) == (len(payload), EOF_)
    assert drained.closed
    assert drained.tail == payload[-DRAIN_TAIL:]
    conn.close()


def test_a_drain_ends_on_silence_when_the_peer_stays_open(listener: socket.socket) -> None:
    conn, peer = connect(listener, recv_buffer=None)
    with peer:
        peer.sendall(b"y" * 3000)
        drained = conn.drain(quiet=0.2, timeout=WAIT)
        assert (drained.count, drained.ended_by, drained.closed) == (3000, QUIET, False)
        assert drained.tail == b"y" * DRAIN_TAIL
        conn.close()


def test_a_drain_ends_on_a_reset(listener: socket.socket) -> None:
    conn, peer = connect(listener)
    fill(peer)
    reset(peer)
    assert conn.hung_up(WAIT)
    drained = conn.drain(quiet=WAIT, timeout=WAIT)
    assert drained.ended_by in (RESET, EOF_)  # the reset may drop what was unread
    assert drained.closed
    conn.close()


def test_a_drain_ends_at_its_deadline_while_bytes_still_come(listener: socket.socket) -> None:
    conn, peer = connect(listener, recv_buffer=None)
    stop = threading.Event()

    def trickle() -> None:
        with peer, contextlib.suppress(OSError):
            while not stop.wait(0.01):
                peer.send(b"z")

    writer = threading.Thread(target=trickle)
    writer.start()
    try:
        drained = conn.drain(quiet=WAIT, timeout=0.3)
    finally:
        stop.set()
        writer.join(WAIT)
    assert drained.ended_by == DEADLINE
    assert not drained.closed
    assert 0 < drained.count <= len(b"z") * 100
    conn.close()
