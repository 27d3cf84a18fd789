"""A deliberately scripted TCP server for the abp-client tests.

The behaviour under test is the script: each server is one thread on
loopback, port 0, that serves its connections one at a time with a script (a
function of the connection) and records every byte it receives. Kept apart
from the test module so that the scripts, not the machinery, sit next to the
tests that use them.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Callable


class Peer:
    """The server's end of one connection; every byte received is kept."""

    def __init__(self, sock: socket.socket, log: bytearray, lock: threading.Lock) -> None:
        self.sock = sock
        self._log = log
        self._lock = lock

    def recv(self, size: int) -> bytes:
        data = self.sock.recv(size)
        with self._lock:
            self._log.extend(data)
        return data

    def sendall(self, data: bytes) -> None:
        self.sock.sendall(data)

    def reset_on_close(self) -> None:
        """SO_LINGER 0: closing sends RST instead of FIN."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


Script = Callable[[Peer], None]


# ------------------------------------------------------------ scripted server
class ScriptedServer:
    """A deliberately scripted server: the behaviour under test is the script."""

    def __init__(self, script: Script, family: socket.AddressFamily = socket.AF_INET) -> None:
        self.script = script
        self.listener = socket.socket(family, socket.SOCK_STREAM)
        self.listener.bind(("::1" if family == socket.AF_INET6 else "127.0.0.1", 0))
        self.listener.listen(16)
        self.listener.settimeout(0.05)
        self.port: int = self.listener.getsockname()[1]
        self.received: list[bytearray] = []  # one per accepted connection
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def accepted(self) -> int:
        with self._lock:
            return len(self.received)

    def data(self, index: int = 0) -> bytes:
        with self._lock:
            return bytes(self.received[index])

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(10.0)
                log = bytearray()
                with self._lock:
                    self.received.append(log)
                with contextlib.suppress(OSError):
                    self.script(Peer(conn, log, self._lock))
        self._drain()

    def _drain(self) -> None:
        """Connections still queued when stopped count too, with their bytes."""
        self.listener.setblocking(False)
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                break
            with conn:
                conn.setblocking(False)
                log = bytearray()
                with contextlib.suppress(OSError):
                    while chunk := conn.recv(65536):
                        log.extend(chunk)
                with self._lock:
                    self.received.append(log)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(15)
        self.listener.close()
        assert not self._thread.is_alive(), "scripted server thread did not stop"


StartServer = Callable[..., ScriptedServer]


def read_line(conn: Peer) -> bytes:
    """What a server reads as one request: up to LF, or to end of stream."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def read_until_eof(conn: Peer) -> bytes:
    data = b""
    while chunk := conn.recv(4096):
        data += chunk
    return data


def answer(*parts: bytes, pause: float = 0.0, close: bool = True) -> Script:
    """A server that reads one request line and sends ``parts`` as segments."""

    def script(conn: Peer) -> None:
        read_line(conn)
        for part in parts:
            conn.sendall(part)
            if pause:
                time.sleep(pause)  # the segmentation under test, not synchronisation
        if not close:
            read_until_eof(conn)

    return script
