"""A model of the address book, checked against a live server by hypothesis.

``book_machine(abp)`` builds a ``RuleBasedStateMachine`` whose rules send
random ``add``/``rem``/``fnd`` (and pipelined batches of them) over several
connections and compare each answer with a dict. Every example draws a small
pool of names (any Unicode the schema allows) made unique by ``abp.name()``,
so examples never see each other's entries, nor other tests'.

A connection is opened when a rule first uses it, and opened again when it
sat unused for half the server's idle timeout (``--idle-timeout``): a server
may close an idle connection (ABP-CONN-7), and a slow example must not take
that for a wrong answer.
"""

from __future__ import annotations

import time
from collections.abc import Collection

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule

from conformance.harness.raw import RawConnection
from conformance.judging.fuzz import fresh_example
from conformance.judging.session import (
    ANY_OK,
    Expected,
    ServerSession,
    decode,
    line_matches,
    wire_form,
)
from conformance.judging.verdict import fail
from protocol import Add, Error, Find, LegacyReply, Ok, Remove, Request, Response
from protocol.codec import encode_request, no_entry
from protocol.strategies import entries, names

POOL = 4  # names per example: small, so that adds replace and rems find
CONNECTIONS = 3

_slot = st.integers(min_value=0, max_value=POOL - 1)
_conn = st.integers(min_value=0, max_value=CONNECTIONS - 1)
_entry = entries(max_size=8)
_operation = st.tuples(st.sampled_from(["add", "rem", "fnd"]), _slot, _entry)

#: Which requirement a wrong answer to each request breaks, unless ``blame``
#: finds a closer one.
REQUIREMENT = {Add: "ABP-REQ-4", Remove: "ABP-REQ-5", Find: "ABP-REQ-6"}


def blame(
    request: Request, want: Expected, actual: Response | None, history: Collection[str]
) -> str:
    """The requirement a wrong answer ``actual`` to ``request`` breaks, where
    ``want`` was expected. ``history`` holds every entry stored under the
    request's NAME in this example. A found entry that was never stored is
    not the entry "exactly as it was stored" (ABP-RESP-2: a server that trims
    entries); an older entry is a replace (ABP-REQ-4) or a remove (ABP-REQ-5)
    that did not happen; anything else breaks the request's own rule."""
    if isinstance(request, Find) and isinstance(actual, Ok | LegacyReply):
        if actual.text not in history:
            return "ABP-RESP-2"
        return "ABP-REQ-4" if isinstance(want, Ok) else "ABP-REQ-5"
    return REQUIREMENT[type(request)]


def book_machine(abp: ServerSession) -> type[RuleBasedStateMachine]:
    """A state machine class bound to one test's session."""

    class BookMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            fresh_example(abp)
            self.model: dict[str, str] = {}
            self.history: dict[str, set[str]] = {}  # every entry stored under a name
            self.pool: list[str] = []
            self.conns: list[RawConnection | None] = [None] * CONNECTIONS
            self.used = [0.0] * CONNECTIONS  # when each connection last had an answer

        @initialize(suffixes=st.lists(names(max_size=3), min_size=POOL, max_size=POOL))
        def pick_names(self, suffixes: list[str]) -> None:
            self.pool = [f"{abp.name('sm')}/{suffix}" for suffix in suffixes]

        def connection(self, conn: int) -> RawConnection | None:
            """Connection ``conn``, opened now if it is not open or may have
            idled out; None in legacy framing (one connection per request)."""
            if abp.target.legacy:
                return None
            old = self.conns[conn]
            idle = abp.target.idle_timeout
            stale = idle is not None and time.monotonic() - self.used[conn] > idle / 2
            if old is None or stale:
                if old is not None:
                    old.close()
                self.conns[conn] = old = abp.raw("ABP-CONN-1")
            return old

        def expected(self, request: Request) -> Expected:
            """The model's answer, and the model updated as the server must be."""
            name = request.name
            if isinstance(request, Add):
                self.model[name] = request.entry
                self.history.setdefault(name, set()).add(request.entry)
                return ANY_OK
            if name not in self.model:
                return no_entry(name)
            if isinstance(request, Remove):
                del self.model[name]
                return ANY_OK
            return Ok(self.model[name])

        def judge(self, request: Request, want: Expected, line: bytes, summary: str) -> None:
            """Fail the requirement the wrong answer breaks (``blame``)."""
            if abp.accepts(want, line, by="meaning"):
                return
            actual = decode(line, legacy=True)
            requirement = blame(request, want, actual, self.history.get(request.name, ()))
            fail(requirement, summary, expected=wire_form(want), actual=line)

        def ask(self, request: Request, conn: int) -> None:
            want = self.expected(request)
            line = abp.answer(REQUIREMENT[type(request)], request, conn=self.connection(conn))
            summary = f"{request!r} on connection {conn}: the answer disagrees with the model book"
            self.judge(request, want, line, summary)
            self.used[conn] = time.monotonic()

        @rule(slot=_slot, conn=_conn, entry=_entry)
        def add(self, slot: int, conn: int, entry: str) -> None:
            self.ask(Add(self.pool[slot], entry), conn)

        @rule(slot=_slot, conn=_conn)
        def remove(self, slot: int, conn: int) -> None:
            self.ask(Remove(self.pool[slot]), conn)

        @rule(slot=_slot, conn=_conn)
        def find(self, slot: int, conn: int) -> None:
            self.ask(Find(self.pool[slot]), conn)

        @precondition(lambda self: not abp.target.legacy)
        @rule(conn=_conn, operations=st.lists(_operation, min_size=2, max_size=5))
        def pipeline(self, conn: int, operations: list[tuple[str, int, str]]) -> None:
            requests: list[Request] = []
            for kind, slot, entry in operations:
                name = self.pool[slot]
                request: Request = Find(name)
                if kind == "add":
                    request = Add(name, entry)
                elif kind == "rem":
                    request = Remove(name)
                requests.append(request)
            wanted = [self.expected(request) for request in requests]
            target = self.connection(conn)
            assert target is not None
            target.send(b"".join(encode_request(request) for request in requests))
            summary = f"{len(requests)} pipelined requests vs the model"
            # every answer must come (ABP-CONN-2); a wrong one breaks its own rule
            lines = abp.read_lines("ABP-CONN-2", target, len(requests), summary)
            for i, (request, want, line) in enumerate(zip(requests, wanted, lines, strict=True)):
                where = f"{summary}: answer {i + 1} of {len(requests)} ({request!r})"
                if abp.accepts(want, line, by="meaning"):
                    continue
                later = [
                    w
                    for w in wanted[i + 1 :]
                    if isinstance(w, Ok | Error) and line_matches(w, line)
                ]
                if later:  # the answer of a request sent after it: out of order
                    out_of_order = f"{where} is out of order"
                    fail("ABP-CONN-2", out_of_order, expected=wire_form(want), actual=line)
                self.judge(request, want, line, where)
            self.used[conn] = time.monotonic()

        @precondition(lambda self: not abp.target.legacy)
        @rule(conn=_conn)
        def reconnect(self, conn: int) -> None:
            old = self.conns[conn]
            if old is not None:
                old.close()
            self.conns[conn] = abp.raw("ABP-CONN-1")
            self.used[conn] = time.monotonic()

        def teardown(self) -> None:
            abp.close()

    return BookMachine
