"""What the server must hold: each load connection's names and their expected entries.

Every load connection owns its names (no other connection writes them), so
the order of its answers is the order its changes took effect, and the
expected state of each name is known exactly: the entry of the last ``add``
answered ``OK``, or nothing after an ``OK``'d ``rem``. An ``add`` answered
``ERROR`` changes nothing (it must not be stored). A change whose answer never
came (timeout, connection lost) leaves the name *uncertain*: either state is
accepted afterwards.

Successive writes of a name cycle through ``ENTRIES``, so a lost last write
shows as the previous value, while the requests stay few enough to encode
once, before the clock starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from protocol import ClientEvent, Error, LegacyReply, Ok
from protocol.codec import no_entry

FND, ADD, REM = 0, 1, 2
OP_NAMES = ("fnd", "add", "rem")
#: The entries successive writes of one name cycle through.
ENTRIES = tuple(f"v{n}" for n in range(8))
#: Examples of each failure kept for the report.
MAX_EXAMPLES = 5


@dataclass
class Tally:
    """Counts from one process's connections; summed across processes."""

    answered: list[int] = field(default_factory=lambda: [0, 0, 0])  # by FND, ADD, REM
    acked_adds: int = 0
    not_found: int = 0  # ``ERROR: No entry for NAME``: a normal answer
    legacy_answers: int = 0  # free text, neither OK nor ERROR (tutorial-style servers)
    errors: dict[str, int] = field(default_factory=dict)  # by kind
    malformed: int = 0
    wrong: int = 0  # well-formed answers that contradict the acknowledged state
    examples: list[str] = field(default_factory=list)

    def error(self, kind: str, count: int = 1) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + count

    def bad(self, what: str, example: str) -> None:
        if what == "malformed":
            self.malformed += 1
        else:
            self.wrong += 1
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(f"{what}: {example}")

    def merge(self, other: Tally) -> None:
        for op in (FND, ADD, REM):
            self.answered[op] += other.answered[op]
        self.acked_adds += other.acked_adds
        self.not_found += other.not_found
        self.legacy_answers += other.legacy_answers
        for kind, count in other.errors.items():
            self.error(kind, count)
        self.malformed += other.malformed
        self.wrong += other.wrong
        room = MAX_EXAMPLES - len(self.examples)
        self.examples.extend(other.examples[: max(room, 0)])


def error_kind(event: Error) -> str:
    text = event.text
    return f"ERROR: {text[:60]}"


class KeySpace:
    """The names one connection owns and what each must hold."""

    __slots__ = ("checking", "expected", "missing", "names", "uncertain", "writes")

    def __init__(self, names: list[str], *, checking: bool = True) -> None:
        self.names = names
        #: False: answers are classified, never compared (a server that stores nothing).
        self.checking = checking
        self.missing = [no_entry(name).text for name in names]
        self.expected: list[str | None] = [None] * len(names)
        self.uncertain: dict[int, set[str | None]] = {}
        self.writes = [0] * len(names)

    def next_entry(self, index: int) -> int:
        """The ``ENTRIES`` index of the next write of name ``index``."""
        n = self.writes[index]
        self.writes[index] = n + 1
        return n % len(ENTRIES)

    def unknown(self, op: int, index: int, value: str | None) -> None:
        """A change was sent and its answer never came: it may or may not hold."""
        if op == FND:
            return
        candidates = self.uncertain.setdefault(index, {self.expected[index]})
        candidates.add(value if op == ADD else None)

    def settle(
        self, op: int, index: int, value: str | None, event: ClientEvent, tally: Tally
    ) -> None:
        """Account for one answer, in the order the connection got them."""
        tally.answered[op] += 1
        if op == FND:
            self._found(index, event, tally)
        elif isinstance(event, Ok):
            if op == ADD:
                tally.acked_adds += 1
                self.expected[index] = value
            else:
                self.expected[index] = None
            self.uncertain.pop(index, None)
        elif isinstance(event, Error):
            if op == REM and event.text == self.missing[index]:
                tally.not_found += 1
                if (
                    self.checking
                    and self.expected[index] is not None
                    and index not in self.uncertain
                ):
                    tally.bad(
                        "wrong answer",
                        f"rem:{self.names[index]} said no entry, but it was acknowledged "
                        f"with {self.expected[index]!r}",
                    )
                self.expected[index] = None
                self.uncertain.pop(index, None)
            else:
                tally.error(error_kind(event))  # the change did not happen
        elif isinstance(event, LegacyReply):
            # A tutorial-style server answers free text: an answered change is
            # taken as done (the tutorial's server saves before it answers).
            tally.legacy_answers += 1
            if op == ADD:
                tally.acked_adds += 1
            self.expected[index] = value if op == ADD else None
            self.uncertain.pop(index, None)
        else:
            tally.bad("malformed", f"{OP_NAMES[op]}:{self.names[index]} answered {event!r}")

    def _found(self, index: int, event: ClientEvent, tally: Tally) -> None:
        name = self.names[index]
        found: str | None
        if isinstance(event, Ok):
            if event.text is None:
                tally.bad("wrong answer", f"fnd:{name} answered a bare OK, not 'OK: ENTRY'")
                return
            found = event.text
        elif isinstance(event, Error):
            if event.text != self.missing[index]:
                tally.error(error_kind(event))
                return
            tally.not_found += 1
            found = None
        elif isinstance(event, LegacyReply):
            tally.legacy_answers += 1
            if self.expected[index] is None or index in self.uncertain:
                return  # a legacy "not found" text cannot be told from an entry
            found = event.text
        else:
            tally.bad("malformed", f"fnd:{name} answered {event!r}")
            return
        if self.checking and not self.accepts(index, found):
            tally.bad(
                "wrong answer",
                f"fnd:{name} found {found!r}, expected {self.expected[index]!r}",
            )

    def accepts(self, index: int, found: str | None) -> bool:
        candidates = self.uncertain.get(index)
        if candidates is not None:
            return found in candidates
        return found == self.expected[index]


@dataclass
class Verification:
    """The check afterwards, on fresh connections: is every name as acknowledged?"""

    names: int = 0  # names asked
    verified: int = 0  # answers that match the acknowledged state
    lost: int = 0  # acknowledged entry missing or different
    unexpected: int = 0  # an entry where none may be (ERROR'd add, OK'd rem)
    unverified: int = 0  # no usable answer (timeout, error, legacy "not found")
    examples: list[str] = field(default_factory=list)

    def merge(self, other: Verification) -> None:
        self.names += other.names
        self.verified += other.verified
        self.lost += other.lost
        self.unexpected += other.unexpected
        self.unverified += other.unverified
        room = MAX_EXAMPLES - len(self.examples)
        self.examples.extend(other.examples[: max(room, 0)])

    def check(self, space: KeySpace, index: int, event: ClientEvent) -> None:
        """One answer to ``fnd`` of name ``index`` after the run."""
        expected = space.expected[index]
        found: str | None
        if isinstance(event, Ok) and event.text is not None:
            found = event.text
        elif isinstance(event, Error) and event.text == space.missing[index]:
            found = None
        elif isinstance(event, LegacyReply) and expected is not None:
            found = event.text
        else:
            self.unverified += 1
            return
        if space.accepts(index, found):
            self.verified += 1
            return
        if expected is not None:
            self.lost += 1
            what = "lost"
        else:
            self.unexpected += 1
            what = "unexpected"
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(
                f"{what}: {space.names[index]} holds {found!r}, acknowledged {expected!r}"
            )


__all__ = [
    "ADD",
    "ENTRIES",
    "FND",
    "OP_NAMES",
    "REM",
    "KeySpace",
    "Tally",
    "Verification",
    "error_kind",
]
