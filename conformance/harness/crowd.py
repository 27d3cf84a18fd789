"""Many connections at once, from one thread: the concurrency requirements.

Opening 200 connections one by one with blocking sockets would let a server
that serves one client at a time stall the suite for a timeout per
connection. Here every socket is non-blocking and one selector drives them all
under a single deadline, so such a server fails quickly, with the count of
connections it never served. Everything sent and received goes into the
test's transcript, as with ``Wire``. Over TLS (``tls``), a member counts as
connected once its handshake is done, driven by the same selector; a read or
write that TLS must retry later (``SSLWantReadError``, ``SSLWantWriteError``)
waits for the next turn, as a blocking one would.
"""

from __future__ import annotations

import contextlib
import errno
import selectors
import socket
import ssl
import struct
import time
from dataclasses import dataclass, field

from conformance.harness import tls as tls_
from conformance.harness.lines import LINE_CAP, split_lines
from conformance.harness.timing import LEGACY_QUIET, TLS_HANDSHAKE
from conformance.harness.wire import Transcript

#: Bytes one member may receive in all: a few answers per member is what a
#: crowd test asks for (200 members stay under 30 MiB against a flood of lines).
MEMBER_CAP = 4 * LINE_CAP
#: The most connections one test opens together: a ``--max-conns`` the suite
#: is told, plus one (each a descriptor here and one at the server).
MAX_MEMBERS = 1001


@dataclass
class Member:
    """One connection of the crowd."""

    index: int
    name: str
    sock: socket.socket
    connected: bool = False
    error: str = ""
    outgoing: bytearray = field(default_factory=bytearray)
    received: bytearray = field(default_factory=bytearray)
    eof: bool = False
    last_data: float | None = None
    handshaking: bool = False

    def lines(self) -> list[bytes]:
        """The complete lines received so far, LF included."""
        return split_lines(bytes(self.received))[0]

    @property
    def partial(self) -> bytes:
        """Received bytes after the last LF."""
        return split_lines(bytes(self.received))[1]


class Crowd:
    """``count`` connections to one server, driven together."""

    def __init__(
        self,
        host: str,
        port: int,
        transcript: Transcript,
        *,
        prefix: str = "m",
        legacy: bool = False,
        quiet: float = LEGACY_QUIET,
        detail: int = 4,
        tls: tls_.TlsSettings | None = None,
    ) -> None:
        self.tls = tls
        self.host, self.port = host, port
        self.transcript = transcript
        self.prefix = prefix
        self.legacy = legacy
        self.quiet = quiet
        self.detail = detail  # members recorded byte for byte; the rest only on trouble
        self.members: list[Member] = []
        self._selector = selectors.DefaultSelector()

    def __enter__(self) -> Crowd:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- connecting
    def open(self, count: int, timeout: float) -> list[Member]:
        """Start ``count`` connects at once; wait (at most ``timeout``, and
        ``TLS_HANDSHAKE`` more per connection over TLS) for them. Returns the
        members that connected."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        start = len(self.members)
        for i in range(start, start + count):
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setblocking(False)
            member = Member(i, f"{self.prefix}{i + 1}", sock)
            self.members.append(member)
            code = sock.connect_ex((self.host, self.port))
            if code == 0:
                self._tcp_connected(member)
            elif code in (errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN):
                self._selector.register(sock, selectors.EVENT_WRITE, member)
            else:
                member.error = errno.errorcode.get(code, str(code))
        handshakes = 0.0 if self.tls is None else count * TLS_HANDSHAKE
        deadline = time.monotonic() + timeout + handshakes
        while self._selector.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            for key, _ in self._selector.select(remaining):
                member = key.data
                self._selector.unregister(member.sock)
                if member.handshaking:
                    self._handshake(member)
                    continue
                code = member.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if code == 0:
                    self._tcp_connected(member)
                else:
                    member.error = errno.errorcode.get(code, str(code))
                    self.transcript.note(member.name, f"connect failed: {member.error}")
        for key in list(self._selector.get_map().values()):
            member = key.data
            self._selector.unregister(member.sock)
            what = "TLS handshake" if member.handshaking else "connect"
            member.error = f"{what} did not complete before the deadline"
        return [m for m in self.members[start:] if m.connected]

    def _tcp_connected(self, member: Member) -> None:
        if self.tls is None:
            self._connected(member)
            return
        try:
            member.sock = self.tls.wrap_later(member.sock, self.host)
        except (OSError, tls_.TlsSetupError) as exc:
            member.error = f"TLS: {tls_.describe(exc)}"
            return
        member.handshaking = True
        self._handshake(member)

    def _handshake(self, member: Member) -> None:
        """One step of the member's TLS handshake; registers it for the next."""
        sock = member.sock
        assert isinstance(sock, ssl.SSLSocket)
        try:
            sock.do_handshake()
        except ssl.SSLWantReadError:
            self._selector.register(sock, selectors.EVENT_READ, member)
            return
        except ssl.SSLWantWriteError:
            self._selector.register(sock, selectors.EVENT_WRITE, member)
            return
        except OSError as exc:
            member.handshaking = False
            member.error = f"TLS handshake failed: {tls_.describe(exc)}"
            self.transcript.note(member.name, member.error)
            return
        member.handshaking = False
        self._connected(member)
        if member.index < self.detail:
            self.transcript.note(member.name, tls_.session_note(sock))

    def _connected(self, member: Member) -> None:
        member.connected = True
        with contextlib.suppress(OSError):
            member.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if member.index < self.detail:
            self.transcript.note(member.name, f"connected to {self.host}:{self.port}")

    # -- talking
    def send(self, member: Member, data: bytes, note: str = "") -> None:
        """Queue ``data``; it leaves during ``exchange``."""
        if member.index < self.detail:
            self.transcript.add(member.name, ">>", data, note)
        member.outgoing += data

    def exchange(self, lines: int, timeout: float, members: list[Member] | None = None) -> None:
        """Send what is queued and read until each member holds ``lines``
        answers (legacy: until an answer ended by LF, end of stream or a quiet
        gap), or has been closed, or the deadline passes."""
        group = [m for m in (self.members if members is None else members) if m.connected]
        deadline = time.monotonic() + timeout
        while True:
            now = time.monotonic()
            waiting = [m for m in group if not self._done(m, lines, now)]
            if not waiting or now >= deadline:
                break
            for member in waiting:
                events = selectors.EVENT_READ | (selectors.EVENT_WRITE if member.outgoing else 0)
                self._selector.register(member.sock, events, member)
            wait = deadline - now
            if self.legacy:
                wait = min(wait, self.quiet / 2)
            try:
                ready = self._selector.select(wait)
            finally:
                for member in waiting:
                    self._selector.unregister(member.sock)
            for key, mask in ready:
                member = key.data
                if mask & selectors.EVENT_WRITE:
                    self._write(member)
                if mask & selectors.EVENT_READ:
                    self._read(member)

    def _done(self, member: Member, lines: int, now: float) -> bool:
        if member.eof or not member.connected:
            return True
        if member.outgoing:
            return False
        if member.received.count(b"\n") >= lines:
            return True
        return (
            self.legacy
            and member.last_data is not None
            and bool(member.partial)
            and now - member.last_data >= self.quiet
        )

    def _write(self, member: Member) -> None:
        try:  # over TLS a retried write must offer at least what the last one did
            sent = member.sock.send(member.outgoing)
        except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return
        except OSError as exc:
            member.outgoing.clear()
            member.eof = True
            self.transcript.note(member.name, f"send failed: {exc}")
            return
        del member.outgoing[:sent]

    def _read(self, member: Member) -> None:
        try:
            data = member.sock.recv(65536)
            sock = member.sock  # TLS: decrypted bytes the selector cannot see
            while data and isinstance(sock, ssl.SSLSocket) and sock.pending():
                data += sock.recv(65536)
        except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return
        except OSError as exc:
            member.eof = True
            self.transcript.note(member.name, f"receive failed: {exc}")
            return
        if not data:
            member.eof = True
            if member.index < self.detail:
                self.transcript.note(member.name, "end of stream from server")
            return
        member.received += data
        member.last_data = time.monotonic()
        pending = len(member.received) - member.received.rfind(b"\n") - 1
        if pending > LINE_CAP:  # bound what a member buffers: stop reading it
            member.eof = True
            member.error = f"{pending} bytes with no LF (the cap is {LINE_CAP})"
            self.transcript.note(member.name, member.error)
        elif len(member.received) > MEMBER_CAP:  # lines, but more than any test asks for
            member.eof = True
            member.error = f"{len(member.received)} bytes received (the cap is {MEMBER_CAP})"
            self.transcript.note(member.name, member.error)
        if member.index < self.detail:
            self.transcript.add(member.name, "<<", data)

    # -- ending
    def close(self) -> None:
        for member in self.members:
            with contextlib.suppress(OSError):
                member.sock.close()
        self.members.clear()
        self._selector.close()

    def drop(self, member: Member) -> None:
        """Close one member (FIN): it takes no further part."""
        with contextlib.suppress(OSError):
            member.sock.close()
        member.connected = False
        if member.index < self.detail:
            self.transcript.note(member.name, "closed")

    def reset(self, member: Member) -> None:
        """Close with RST (SO_LINGER 0)."""
        with contextlib.suppress(OSError):
            member.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with contextlib.suppress(OSError):
            member.sock.close()
        member.connected = False
        if member.index < self.detail:
            self.transcript.note(member.name, "reset (RST)")
