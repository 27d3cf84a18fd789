"""How the scripted server answers: the book, delivery plans, named scenarios.

A scenario has two halves. ``respond`` picks the answer (by default the
spec's, from an in-memory ``Book``); ``deliver`` turns the answer's bytes, as
``ServerConnection.send`` built them, into actions: send these bytes, pause,
hold the request forever, close or reset. Scenarios only cut bytes up and drop
the final LF; they never write wire text.

``SCENARIOS`` are the named ones ``conformance serve --scenario`` offers; the
tests build their own from the same parts.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from protocol import Add, Error, Find, Ok, Remove, Request, Response
from protocol.codec import no_entry

#: The free text of the suite's ``OK: TEXT`` answers to add and rem (ABP-RESP-1):
#: a client must show it (ABP-CLIENT-2).
ADD_TEXT = "entry stored"
REM_TEXT = "entry removed"


class Book:
    """The address book the scripted server answers from, as the spec says."""

    def __init__(self, entries: Mapping[str, str] | None = None) -> None:
        self.entries: dict[str, str] = dict(entries or {})
        self._lock = threading.Lock()

    def answer(self, request: Request) -> Response:
        with self._lock:
            if isinstance(request, Add):  # ABP-REQ-2, ABP-REQ-4
                self.entries[request.name] = request.entry
                return Ok(ADD_TEXT)
            if isinstance(request, Remove):  # ABP-REQ-5, ABP-RESP-4
                if self.entries.pop(request.name, None) is None:
                    return no_entry(request.name)
                return Ok(REM_TEXT)
            assert isinstance(request, Find)  # ABP-REQ-6, ABP-RESP-2
            entry = self.entries.get(request.name)
            return no_entry(request.name) if entry is None else Ok(entry)


# ------------------------------------------------------------------ actions


@dataclass(frozen=True)
class Send:
    """Write these bytes."""

    data: bytes
    note: str = ""


@dataclass(frozen=True)
class Pause:
    """Wait before the next action (the scenario's timing, not synchronisation)."""

    seconds: float


@dataclass(frozen=True)
class Hold:
    """Never answer; keep the connection open until the client gives up."""


@dataclass(frozen=True)
class Shut:
    """Close the connection: FIN, or RST with ``reset``."""

    reset: bool = False


Action = Send | Pause | Hold | Shut
Delivery = Callable[[bytes], list[Action]]
Responder = Callable[[Request, Book], Response]


def whole(data: bytes) -> list[Action]:
    return [Send(data)]


def segmented(size: int, pause: float) -> Delivery:
    """The answer in ``size``-byte pieces, ``pause`` s apart (ABP-FRAME-7)."""

    def deliver(data: bytes) -> list[Action]:
        actions: list[Action] = []
        for start in range(0, len(data), size):
            if start:
                actions.append(Pause(pause))
            piece = data[start : start + size]
            actions.append(Send(piece, f"segment {start // size + 1} of {-(-len(data) // size)}"))
        return actions

    deliver.__name__ = f"segmented({size} bytes, {pause * 1000:g} ms apart)"
    return deliver


def eof_ended(data: bytes) -> list[Action]:
    """A legacy server: the answer without its LF, then the end of the stream (ABP-FRAME-8)."""
    return [Send(data.removesuffix(b"\n"), "no LF: a legacy answer"), Shut()]


def delayed(seconds: float) -> Delivery:
    def deliver(data: bytes) -> list[Action]:
        return [Pause(seconds), Send(data, f"after {seconds:g}s")]

    deliver.__name__ = f"delayed({seconds:g}s)"
    return deliver


def silent(data: bytes) -> list[Action]:
    """Accept, read, never answer (ABP-CONN-10)."""
    return [Hold()]


def close_before_answer(data: bytes) -> list[Action]:
    return [Shut()]


def reset_mid_answer(data: bytes) -> list[Action]:
    """Half the answer, then RST: closed before a complete answer (ABP-CONN-10)."""
    return [Send(data[: max(1, len(data) // 2)], "half the answer"), Pause(0.05), Shut(reset=True)]


# ------------------------------------------------------------- responders


def long_entry(line_bytes: int) -> str:
    """An ASCII entry that makes ``OK: ENTRY`` exactly ``line_bytes`` long (LF
    excluded), ending in a marker so that a truncated copy shows."""
    body = line_bytes - len("OK: ") - len("<END>")
    pattern = "0123456789abcdefghijklmnopqrstuvwxyz"
    return (pattern * (body // len(pattern) + 1))[:body] + "<END>"


def find_answers(entry: str) -> Responder:
    """``fnd`` of any name finds ``entry``; add and rem as the book says."""

    def respond(request: Request, book: Book) -> Response:
        return Ok(entry) if isinstance(request, Find) else book.answer(request)

    respond.__name__ = f"find_answers({len(entry.encode())}-byte entry)"
    return respond


def always(response: Response) -> Responder:
    def respond(request: Request, book: Book) -> Response:
        return response

    respond.__name__ = f"always({response!r})"
    return respond


# --------------------------------------------------------------- scenarios


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    deliver: Delivery = whole
    responder: Responder | None = field(default=None)

    def respond(self, request: Request, book: Book) -> Response:
        return book.answer(request) if self.responder is None else self.responder(request, book)

    def but(
        self, *, deliver: Delivery | None = None, responder: Responder | None = None
    ) -> Scenario:
        """The same scenario with another delivery or responder (named after them)."""
        changes = [f.__name__ for f in (deliver, responder) if f is not None]
        return Scenario(
            f"{self.name} + {' + '.join(changes)}" if changes else self.name,
            self.summary,
            deliver if deliver is not None else self.deliver,
            responder if responder is not None else self.responder,
        )


SPEC = Scenario("spec", "answers by the spec from an in-memory book, each answer in one write")

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        SPEC,
        Scenario(
            "segmented", "spec answers sent 3 bytes at a time, 20 ms apart", segmented(3, 0.02)
        ),
        Scenario(
            "long",
            "every fnd finds a 4000-byte answer line, sent in 1000-byte pieces",
            segmented(1000, 0.03),
            find_answers(long_entry(4000)),
        ),
        Scenario(
            "longest",
            "every fnd finds an 8192-byte answer line (the ABP-FRAME-14 limit)",
            segmented(1000, 0.03),
            find_answers(long_entry(8192)),
        ),
        Scenario("eof", "spec answers with no LF, then close: a legacy server", eof_ended),
        Scenario("delayed", "spec answers, each after 0.5 s", delayed(0.5)),
        Scenario("silent", "accepts and reads, never answers", silent),
        Scenario("close", "reads the request, closes without answering", close_before_answer),
        Scenario("reset", "sends half the answer, then resets the connection", reset_mid_answer),
        Scenario(
            "error",
            "answers every request with an ERROR line",
            whole,
            always(Error("Scripted failure: this server answers every request with an error")),
        ),
    )
}
