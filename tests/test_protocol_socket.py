"""The sans-I/O connections over a real loopback socket.

A tiny threaded address-book server on 127.0.0.1, port 0, written on
``ServerConnection`` the way h11's examples are: read a chunk, feed it, answer
the events, write the bytes. Every socket operation has a timeout.
"""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator

import pytest

from protocol import (
    Add,
    ClientConnection,
    ClientEvent,
    ConnectionClosed,
    Error,
    Find,
    InvalidRequest,
    LegacyReply,
    Ok,
    Remove,
    Request,
    Response,
    ServerConnection,
)
from protocol.codec import no_entry

TIMEOUT = 5.0  # no operation of these tests takes anywhere near this long
QUIET = 0.05


class AddressBookHandler(socketserver.BaseRequestHandler):
    server: AddressBookServer

    def handle(self) -> None:
        sock: socket.socket = self.request
        conn = ServerConnection(quiet_period=QUIET)
        while not conn.peer_closed:
            deadline = conn.deadline()
            wait = TIMEOUT if deadline is None else max(0.0, deadline - time.monotonic())
            sock.settimeout(wait)
            try:
                data = sock.recv(4096)
            except TimeoutError:
                if deadline is None:
                    return  # idle for TIMEOUT: give up on this client
                events = conn.expire(time.monotonic())
            except OSError:
                return
            else:
                events = conn.receive_data(data, time.monotonic())
            sock.settimeout(TIMEOUT)
            for event in events:
                if not isinstance(event, ConnectionClosed):
                    sock.sendall(conn.send(self.server.answer(event)))

    def finish(self) -> None:
        self.request.close()


class AddressBookServer(socketserver.ThreadingTCPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), AddressBookHandler)
        self.book: dict[str, str] = {}
        self.lock = threading.Lock()

    def answer(self, event: Request | object) -> Response:
        if isinstance(event, InvalidRequest):
            return event.reply
        with self.lock:
            if isinstance(event, Add):
                self.book[event.name] = event.entry
                return Ok()
            if isinstance(event, Find):
                entry = self.book.get(event.name)
                return no_entry(event.name) if entry is None else Ok(entry)
            if isinstance(event, Remove):
                if self.book.pop(event.name, None) is None:
                    return no_entry(event.name)
                return Ok()
        raise AssertionError(f"unexpected event {event!r}")


@pytest.fixture
def address() -> Iterator[tuple[str, int]]:
    server = AddressBookServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield str(host), int(port)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(TIMEOUT)
        assert not thread.is_alive()


def exchange(
    sock: socket.socket, client: ClientConnection, *requests: Request
) -> list[ClientEvent]:
    """Send all requests in one write, read until every one is answered."""
    sock.sendall(b"".join(client.send(r) for r in requests))
    return read_answers(sock, client)


def read_answers(sock: socket.socket, client: ClientConnection) -> list[ClientEvent]:
    events: list[ClientEvent] = []
    while client.outstanding:
        events += client.receive_data(sock.recv(4096), time.monotonic())
        if events and isinstance(events[-1], ConnectionClosed):
            break
    return events


def read_line(sock: socket.socket) -> bytes:
    """Raw bytes up to an LF: one recv() is not one message (ABP-FRAME-7)."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(4096)
        assert chunk, f"connection closed after {data!r}"
        data += chunk
    return data


def connect(address: tuple[str, int]) -> socket.socket:
    sock = socket.create_connection(address, timeout=TIMEOUT)
    sock.settimeout(TIMEOUT)
    return sock


def test_conversation_over_a_socket(address: tuple[str, int]) -> None:
    client = ClientConnection()
    with connect(address) as sock:
        assert exchange(sock, client, Add("\U0001f600 a:b", "1 High St, Leeds: \U0010ffff")) == [
            Ok()
        ]
        assert exchange(sock, client, Find("\U0001f600 a:b")) == [
            Ok("1 High St, Leeds: \U0010ffff")
        ]
        # ABP-CONN-2: pipelined, answered in order.
        events = exchange(sock, client, Remove("\U0001f600 a:b"), Find("\U0001f600 a:b"))
        assert events == [Ok(), no_entry("\U0001f600 a:b")]
        sock.sendall(b"ADD:x\n")  # a raw bad line: the connection stays usable
        assert read_line(sock) == b"ERROR: Unrecognised command: ADD\n"
        assert exchange(sock, client, Find("nobody")) == [Error("No entry for nobody")]
        sock.shutdown(socket.SHUT_WR)
        assert client.receive_data(sock.recv(4096)) == [ConnectionClosed()]


def test_legacy_request_answered_after_the_quiet_period(address: tuple[str, int]) -> None:
    """ABP-FRAME-6 over a real socket: no terminator, no half-close."""
    client = ClientConnection(legacy=True)
    with connect(address) as sock:
        exchange(sock, ClientConnection(), Add("tut", "orial"))
        sent = client.send(Find("tut"))
        assert not sent.endswith(b"\n")
        sock.sendall(sent)
        assert read_answers(sock, client) == [Ok("orial")]


def test_legacy_request_answered_at_half_close(address: tuple[str, int]) -> None:
    """ABP-FRAME-5: the tutorial's client, and an answer ended by end of stream."""
    client = ClientConnection(legacy=True, quiet_period=TIMEOUT)
    with connect(address) as sock:
        sock.sendall(client.send(Find("nobody")))
        sock.shutdown(socket.SHUT_WR)
        events = read_answers(sock, client)
        assert events == [no_entry("nobody")]
        assert client.receive_data(sock.recv(4096)) == [ConnectionClosed()]


def test_legacy_client_reads_a_tutorial_style_answer() -> None:
    """A tutorial-era server: free text, no terminator, then close."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(TIMEOUT)

        def tutorial_server() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.settimeout(TIMEOUT)
                conn.recv(4096)
                conn.sendall(b"12 High St, Leeds")

        thread = threading.Thread(target=tutorial_server)
        thread.start()
        client = ClientConnection(legacy=True, quiet_period=TIMEOUT)
        with connect(listener.getsockname()) as sock:
            sock.sendall(client.send(Find("alice")))
            events: list[ClientEvent] = []
            while not events or not isinstance(events[-1], ConnectionClosed):
                events += client.receive_data(sock.recv(4096), time.monotonic())
        thread.join(TIMEOUT)
        assert not thread.is_alive()
    assert events == [LegacyReply("12 High St, Leeds"), ConnectionClosed()]
