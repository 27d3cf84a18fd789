"""``abp-client replay FILE``: send a recording's client bytes to a server again,
and say where the answers differ from the recorded ones.

The connections of the recording are replayed one after the other, in the
order they opened (concurrency is not reproduced). Within one, the client's
chunks are sent as they were split, and before each chunk the replay waits
until the server has given as many answers as it had given at that point of
the recording, so that requests with no LF (ended by the server's quiet period)
are not run together. Answers are compared line by line, terminator included.
"""

from __future__ import annotations

import math
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import zip_longest
from typing import Any

from protocol import DEFAULT_QUIET_PERIOD, MAX_REQUEST_LINE, MAX_RESPONSE_LINE
from protocol.codec import Frame, LineFrame, LineReader
from protocol.escape import EscapeError, escape, unescape
from reference_client.endpoint import Address
from reference_client.link import CHUNK, NetworkError, connect
from reference_client.trace import Tracer

#: Silence after the last expected answer during which extra answers are awaited.
LINGER = 0.2


@dataclass
class Step:
    """What the client did, and how many answers the server had given before."""

    data: bytes | None  # None: the client half-closed
    answers_before: int


@dataclass
class RecordedConnection:
    conn: int
    steps: list[Step] = field(default_factory=list)
    requests: list[bytes] = field(default_factory=list)
    answers: list[bytes] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Difference:
    conn: int
    index: int  # 1-based answer number on its connection
    request: bytes | None
    recorded: bytes | None
    got: bytes | None

    def as_json(self) -> dict[str, Any]:
        def shown(data: bytes | None) -> str | None:
            return None if data is None else escape(data)

        return {
            "conn": self.conn,
            "answer": self.index,
            "request": shown(self.request),
            "recorded": shown(self.recorded),
            "got": shown(self.got),
        }

    def render(self) -> str:
        to = "" if self.request is None else f" (to '{escape(self.request)}')"
        recorded = "nothing" if self.recorded is None else f"'{escape(self.recorded)}'"
        got = "nothing" if self.got is None else f"'{escape(self.got)}'"
        return f"#{self.conn} answer {self.index}{to}: recorded {recorded}, got {got}"


def _frames(frames: list[Frame]) -> list[bytes]:
    return [f.data + f.terminator for f in frames if isinstance(f, LineFrame)]


def parse(records: list[dict[str, Any]]) -> list[RecordedConnection]:
    """The recording's connections, in the order they first appear."""
    conns: dict[int, RecordedConnection] = {}
    readers: dict[int, tuple[LineReader, LineReader]] = {}
    for record in records:
        try:
            number, side = int(record["conn"]), record["from"]
            data = None if record.get("eof") else unescape(str(record["data"]))
        except (KeyError, TypeError, ValueError, EscapeError) as exc:
            raise ValueError(f"bad record in the recording: {record!r} ({exc})") from None
        if side not in ("client", "server"):
            raise ValueError(f"bad record in the recording: {record!r}")
        conn = conns.setdefault(number, RecordedConnection(number))
        requests, answers = readers.setdefault(
            number,
            (
                LineReader(MAX_REQUEST_LINE, DEFAULT_QUIET_PERIOD),
                LineReader(MAX_RESPONSE_LINE, DEFAULT_QUIET_PERIOD),
            ),
        )
        if side == "client":
            # An unterminated answer before this chunk was a whole answer.
            conn.answers += _frames(answers.expire(math.inf))
            conn.steps.append(Step(data, len(conn.answers)))
            frames = requests.feed_eof() if data is None else requests.feed(data, 0.0)
            conn.requests += _frames(frames)
        else:
            conn.requests += _frames(requests.expire(math.inf))
            frames = answers.feed_eof() if data is None else answers.feed(data, 0.0)
            conn.answers += _frames(frames)
    for number, (requests, answers) in readers.items():
        conns[number].requests += _frames(requests.expire(math.inf))
        conns[number].answers += _frames(answers.expire(math.inf))
    return list(conns.values())


class _Replayed:
    """The replayed connection's answers, read with every wait bounded."""

    def __init__(self, sock: socket.socket, clock: Callable[[], float]) -> None:
        self.sock = sock
        self.clock = clock
        self.reader = LineReader(MAX_RESPONSE_LINE, DEFAULT_QUIET_PERIOD)
        self.answers: list[bytes] = []
        self.closed = False

    def wait_for(self, count: int, deadline: float) -> None:
        """Read until ``count`` answers came, the server closed, or ``deadline``."""
        while len(self.answers) < count and not self.closed:
            if not self._read_once(deadline):
                return

    def linger(self, deadline: float) -> None:
        """Read what else comes until ``LINGER`` of silence, a close, or ``deadline``."""
        while not self.closed:
            if not self._read_once(min(deadline, self.clock() + LINGER)):
                return

    def _read_once(self, deadline: float) -> bool:
        now = self.clock()
        quiet = self.reader.deadline()
        if quiet is not None and now >= quiet:
            self.answers += _frames(self.reader.expire(now))
            return True
        wake = deadline if quiet is None else min(deadline, quiet)
        if now >= wake:
            return False
        self.sock.settimeout(wake - now)
        try:
            chunk = self.sock.recv(CHUNK)
        except TimeoutError:
            return True  # the next turn decides: quiet period or deadline
        except OSError:
            chunk = b""
        if not chunk:
            self.closed = True
            self.answers += _frames(self.reader.feed_eof())
            return False
        self.answers += _frames(self.reader.feed(chunk, self.clock()))
        return True


def replay_connection(
    recorded: RecordedConnection,
    address: Address,
    *,
    timeout: float,
    tls: ssl.SSLContext | None,
    tracer: Tracer,
    clock: Callable[[], float],
) -> list[Difference]:
    """Replay one connection; the answers that differ (``NetworkError`` if none came)."""
    sock = connect(address, timeout, tracer, tls)
    try:
        replayed = _Replayed(sock, clock)
        for step in recorded.steps:
            replayed.wait_for(step.answers_before, clock() + timeout)
            if replayed.closed:
                break
            try:
                if step.data is None:
                    sock.shutdown(socket.SHUT_WR)
                else:
                    sock.settimeout(timeout)
                    sock.sendall(step.data)
            except OSError:
                break  # the server closed: what it answered is compared below
        replayed.wait_for(len(recorded.answers), clock() + timeout)
        replayed.linger(clock() + timeout)
    finally:
        sock.close()
    differences = []
    pairs = zip_longest(recorded.answers, replayed.answers)
    for index, (before, now) in enumerate(pairs, 1):
        if before != now:
            request = recorded.requests[index - 1] if index <= len(recorded.requests) else None
            differences.append(Difference(recorded.conn, index, request, before, now))
    return differences


@dataclass
class ReplayResult:
    connections: int = 0
    answers: int = 0
    differences: list[Difference] = field(default_factory=list)


def replay(
    records: list[dict[str, Any]],
    address: Address,
    *,
    timeout: float,
    tls: ssl.SSLContext | None = None,
    tracer: Tracer | None = None,
    clock: Callable[[], float],
    on_difference: Callable[[Difference], None] = lambda d: None,
) -> ReplayResult:
    """Replay every connection of a recording against ``address``."""
    result = ReplayResult()
    for recorded in parse(records):
        found = replay_connection(
            recorded,
            address,
            timeout=timeout,
            tls=tls,
            tracer=tracer if tracer is not None else Tracer(None),
            clock=clock,
        )
        result.connections += 1
        result.answers += len(recorded.answers)
        result.differences += found
        for difference in found:
            on_difference(difference)
    return result


__all__ = ["Difference", "NetworkError", "ReplayResult", "parse", "replay"]
