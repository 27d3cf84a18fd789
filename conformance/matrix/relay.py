"""A recording TCP relay between a client and a server of the matrix.

The client under test connects to the relay, which opens a connection to the
server for each one and passes bytes both ways as they come, writing each
chunk into the current scenario's transcript: ``>>`` what the client sent,
``<<`` what the server answered. An end of stream is passed on as a
half-close, a reset as a reset; nothing is parsed or changed.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from types import TracebackType

from conformance.harness.wire import Transcript

#: How often blocked threads look at the stop flag, in seconds.
POLL = 0.05


def _reset(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()


class Relay:
    """Listens on ``host`` (a free port), relays every connection to ``upstream``."""

    def __init__(self, upstream: tuple[str, int], *, host: str = "127.0.0.1") -> None:
        self.upstream = upstream
        self.host = host
        self.transcript = Transcript()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sockets: set[socket.socket] = set()
        self._count = 0
        self._answers = 0
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._listener = socket.socket(family, socket.SOCK_STREAM)
        self.port = 0

    # ------------------------------------------------------------ lifecycle
    def start(self) -> Relay:
        self._listener.bind((self.host, 0))
        self._listener.listen(64)
        self._listener.settimeout(POLL)
        self.port = int(self._listener.getsockname()[1])
        self._spawn(self._accept_loop, "abp-relay-accept")
        return self

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        for thread in list(self._threads):
            thread.join(timeout=5.0)
        with contextlib.suppress(OSError):
            self._listener.close()

    def __enter__(self) -> Relay:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --------------------------------------------------------------- state
    def use(self, transcript: Transcript) -> None:
        """Record from now on into ``transcript`` (one per scenario)."""
        self.transcript = transcript

    @property
    def answers(self) -> int:
        """Chunks the server has sent so far, over every connection."""
        with self._lock:
            return self._answers

    # ------------------------------------------------------------ internals
    def _spawn(self, target: object, name: str, *args: object) -> None:
        assert callable(target)
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self._count += 1
                channel = f"c{self._count}"
            self._spawn(self._open, f"abp-relay-{channel}", client, channel)

    def _open(self, client: socket.socket, channel: str) -> None:
        transcript = self.transcript
        host, port = self.upstream
        try:
            server = socket.create_connection((host, port), timeout=5.0)
        except OSError as exc:
            transcript.note(channel, f"relay cannot reach the server at {host}:{port}: {exc}")
            _reset(client)
            return
        transcript.note(channel, "client connected (relayed to the server)")
        with self._lock:
            self._sockets.update((client, server))
        done = threading.Event()
        self._spawn(self._pump, f"abp-relay-{channel}-up", client, server, channel, ">>", done)
        self._pump(server, client, channel, "<<", done)

    def _pump(
        self,
        source: socket.socket,
        sink: socket.socket,
        channel: str,
        direction: str,
        other_done: threading.Event,
    ) -> None:
        """Copy ``source`` to ``sink`` until end of stream; the second pump to
        finish closes both sockets."""
        transcript = self.transcript
        who = "client" if direction == ">>" else "server"
        source.settimeout(POLL)
        try:
            while not self._stopping.is_set():
                try:
                    data = source.recv(65536)
                except TimeoutError:
                    continue
                except OSError as exc:
                    transcript.note(
                        channel, f"{who} connection broken ({exc}): resetting the other"
                    )
                    _reset(sink)
                    return
                if not data:
                    transcript.note(channel, f"{who} closed its side (end of stream)")
                    with contextlib.suppress(OSError):
                        sink.shutdown(socket.SHUT_WR)
                    return
                transcript.add(channel, direction, data)
                if direction == "<<":
                    with self._lock:
                        self._answers += 1
                try:
                    sink.sendall(data)
                except OSError as exc:
                    transcript.note(channel, f"relay could not pass it on: {exc}")
                    _reset(source)
                    return
        finally:
            with self._lock:
                last = other_done.is_set()
                other_done.set()
                if last:
                    self._sockets.difference_update((source, sink))
            if last:
                for sock in (source, sink):
                    with contextlib.suppress(OSError):
                        sock.close()
