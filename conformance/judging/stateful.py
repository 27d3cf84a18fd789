"""A model of the address book, checked against a live server by hypothesis.

``book_machine(abp)`` builds a ``RuleBasedStateMachine`` whose rules send
random ``add``/``rem``/``fnd`` (and pipelined batches of them) over several
connections and compare each answer with a dict. Every example draws a small
pool of names (any Unicode the schema allows) made unique by ``abp.name()``,
so examples never see each other's entries, nor other tests'.
"""

from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule

from conformance.harness.raw import RawConnection
from conformance.judging.fuzz import fresh_example
from conformance.judging.session import ANY_OK, Expected, ServerSession
from protocol import Add, Find, Ok, Remove, Request
from protocol.codec import encode_request, no_entry
from protocol.strategies import entries, names

POOL = 4  # names per example: small, so that adds replace and rems find
CONNECTIONS = 3

_slot = st.integers(min_value=0, max_value=POOL - 1)
_conn = st.integers(min_value=0, max_value=CONNECTIONS - 1)
_entry = entries(max_size=8)
_operation = st.tuples(st.sampled_from(["add", "rem", "fnd"]), _slot, _entry)

#: Which requirement a wrong answer to each request breaks.
REQUIREMENT = {Add: "ABP-REQ-4", Remove: "ABP-REQ-5", Find: "ABP-REQ-6"}


def book_machine(abp: ServerSession) -> type[RuleBasedStateMachine]:
    """A state machine class bound to one test's session."""

    class BookMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            fresh_example(abp)
            self.model: dict[str, str] = {}
            self.pool: list[str] = []
            self.conns: list[RawConnection | None] = [None] * CONNECTIONS

        @initialize(suffixes=st.lists(names(max_size=3), min_size=POOL, max_size=POOL))
        def pick_names(self, suffixes: list[str]) -> None:
            self.pool = [f"{abp.name('sm')}/{suffix}" for suffix in suffixes]
            if not abp.target.legacy:  # legacy framing: one connection per request
                self.conns = [abp.raw("ABP-CONN-1") for _ in range(CONNECTIONS)]

        def expected(self, request: Request) -> Expected:
            """The model's answer, and the model updated as the server must be."""
            name = request.name
            if isinstance(request, Add):
                self.model[name] = request.entry
                return ANY_OK
            if name not in self.model:
                return no_entry(name)
            if isinstance(request, Remove):
                del self.model[name]
                return ANY_OK
            return Ok(self.model[name])

        def ask(self, request: Request, conn: int) -> None:
            want = self.expected(request)
            abp.expect(
                REQUIREMENT[type(request)],
                request,
                want,
                f"{request!r} on connection {conn}: the answer disagrees with the model book",
                conn=self.conns[conn],
                by="meaning",
            )

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
            target = self.conns[conn]
            assert target is not None
            target.send(b"".join(encode_request(request) for request in requests))
            abp.expect_lines(
                "ABP-CONN-2", target, wanted, f"{len(requests)} pipelined requests vs the model"
            )

        @precondition(lambda self: not abp.target.legacy)
        @rule(conn=_conn)
        def reconnect(self, conn: int) -> None:
            old = self.conns[conn]
            if old is not None:
                old.close()
            self.conns[conn] = abp.raw("ABP-CONN-1")

        def teardown(self) -> None:
            abp.close()

    return BookMachine
