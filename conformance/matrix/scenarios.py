"""The interop scenarios: what every client does against every server.

Each scenario is a few steps, each one client operation and what a person
would expect to see: ``ok`` (argv: exit 0; menu: no error shown), ``error``
(argv: a non-zero exit; menu: an error or "no entry" shown), and text that
must or must not appear in what the client printed. Every scenario uses its
own names, so that they can share one server. Entries are given as
``Address`` fields so that menu clients can type them too.
"""

from __future__ import annotations

from dataclasses import dataclass

from conformance.suites.client.contracts import Address, Op

OK, ERROR = "ok", "error"


@dataclass(frozen=True)
class Step:
    op: Op
    expect: str  # OK or ERROR
    shows: str = ""  # must appear in the client's output ("" for no check)
    hides: str = ""  # must not appear in it
    by: str = "A"  # which of two clients (the "turns" scenario)

    def describe(self) -> str:
        what = f"{self.op.op} {self.op.name!r}"
        if self.op.op == "add":
            what += f" {self.op.entry!r}"
        return f"client {self.by}: {what}"


@dataclass(frozen=True)
class InteropScenario:
    name: str
    summary: str
    steps: tuple[Step, ...]
    live: bool = False  # menu clients: two processes alive at once, taking turns


HOME = Address("12", "High Street", "Leeds", "0113 496 0000")
MOVED = Address("7", "Low Road", "York", "01904 555 000")
UNICODE = Address("7", "Straße der Einheit", "Zürich 東京", "☎ +41 44 🙂")
SEPARATORS = Address("221b", "Baker St: rear door", "London, UK", "tel: 555, ext 2")


def _add(name: str, address: Address, by: str = "A") -> Step:
    return Step(Op.add(name, address), OK, by=by)


SCENARIOS: tuple[InteropScenario, ...] = (
    InteropScenario("add", "add a new entry", (_add("mx-add", HOME),)),
    InteropScenario(
        "replace",
        "add twice, then fnd shows the second entry only",
        (
            _add("mx-replace", HOME),
            _add("mx-replace", MOVED),
            Step(Op("fnd", "mx-replace"), OK, shows=MOVED.entry, hides=HOME.entry),
        ),
    ),
    InteropScenario(
        "fnd",
        "add, then fnd shows the entry exactly",
        (_add("mx-fnd", HOME), Step(Op("fnd", "mx-fnd"), OK, shows=HOME.entry)),
    ),
    InteropScenario(
        "rem",
        "add, rem, then fnd is an error",
        (
            _add("mx-rem", HOME),
            Step(Op("rem", "mx-rem"), OK),
            Step(Op("fnd", "mx-rem"), ERROR, hides=HOME.entry),
        ),
    ),
    InteropScenario(
        "missing",
        "fnd and rem of a name never added are errors",
        (Step(Op("fnd", "mx-missing"), ERROR), Step(Op("rem", "mx-missing"), ERROR)),
    ),
    InteropScenario(
        "unicode",
        "a Unicode name and entry round-trip exactly",
        (
            _add("mx-Zoë 李", UNICODE),
            Step(Op("fnd", "mx-Zoë 李"), OK, shows=UNICODE.entry),
        ),
    ),
    InteropScenario(
        "separators",
        "an entry with ':' and ',' round-trips exactly",
        (
            _add("mx-sep", SEPARATORS),
            Step(Op("fnd", "mx-sep"), OK, shows=SEPARATORS.entry),
        ),
    ),
    InteropScenario(
        "turns",
        "two clients take turns: each sees the other's change",
        (
            _add("mx-turns", HOME, by="A"),
            Step(Op("fnd", "mx-turns"), OK, shows=HOME.entry, by="B"),
            _add("mx-turns", MOVED, by="B"),
            Step(Op("fnd", "mx-turns"), OK, shows=MOVED.entry, by="A"),
        ),
        live=True,
    ),
)
