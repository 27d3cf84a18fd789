"""The result of a conformance run, independent of how it is shown.

One ``TestRecord`` per test; a ``RunResult`` aggregates them by requirement
and decides the verdict. The rules, in one place:

- a test that failed is FAIL, unless the requirement it broke is a SHOULD
  (the ID of a ``RequirementFailed``, or, when the failure names none, every
  requirement of the test is a SHOULD): then it is WARN;
- a requirement's status is the worst of its tests': FAIL beats WARN beats
  PASS beats BLOCKED beats SKIP; a failed test counts against the requirement
  it found broken (when its failure names one), not against the others it
  covers, which it neither proved nor disproved: for them it is BLOCKED
  (never SKIP: the test ran, and failed);
- with a selection (``--requirement``), the table holds the selected
  requirements and any other that a test found broken, nothing else;
- the exit status is 1 when a test is FAIL (or WARN with ``strict``), else 0;
  with a baseline (``conformance.reports.baseline``), a failure the baseline
  expects does not count, and a baseline entry whose tests now pass does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from conformance.reports.provenance import Provenance
from protocol import requirements
from protocol.program import EXIT_OK

PASS, FAIL, WARN, SKIP = "PASS", "FAIL", "WARN", "SKIP"
UNTESTED = "UNTESTED"  # a requirement of the role under test that no test of the run covers
#: a requirement whose test failed first on another requirement: not judged
BLOCKED = "BLOCKED"
OUTCOMES = (PASS, FAIL, WARN, SKIP)
_SEVERITY = {SKIP: 0, BLOCKED: 1, PASS: 2, WARN: 3, FAIL: 4}
_STRENGTH = {"MUST": 3, "MAY": 2, "SHOULD": 1}  # a MAY is judged in its MUST form

EXIT_FAILED, EXIT_INTERNAL = 1, 3  # EXIT_OK and EXIT_USAGE: protocol.program


def selects(wanted: Sequence[str], ids: Sequence[str]) -> bool:
    """``--requirement`` matching: an exact ID, or a prefix such as ``ABP-FRAME``."""
    return any(rid == w or rid.startswith(w.rstrip("-") + "-") for w in wanted for rid in ids)


def level_of(requirement_id: str) -> str | None:
    try:
        return requirements.get(requirement_id).level
    except KeyError:
        return None


def strongest_level(requirement_ids: list[str]) -> str:
    """The binding level of a test: its strongest requirement (MUST for none)."""
    levels = [lvl for lvl in map(level_of, requirement_ids) if lvl is not None]
    return max(levels, key=_STRENGTH.__getitem__) if levels else "MUST"


def classify(
    *, failed: bool, skipped: bool, requirement_ids: list[str], failed_requirement: str | None
) -> str:
    """PASS, FAIL, WARN or SKIP for a test, from what pytest saw."""
    if failed:
        broken = level_of(failed_requirement) if failed_requirement else None
        if broken is None:
            broken = strongest_level(requirement_ids)
        return WARN if broken == "SHOULD" else FAIL
    return SKIP if skipped else PASS


def worst(outcomes: list[str]) -> str:
    return max(outcomes, key=_SEVERITY.__getitem__) if outcomes else UNTESTED


@dataclass
class TestRecord:
    """One test of the run."""

    __test__ = False  # not a pytest test class, despite the name

    nodeid: str
    requirements: list[str]
    outcome: str
    name: str = ""
    level: str = ""
    message: str = ""  # why it failed: the requirement, expected vs actual
    failed_requirement: str | None = None
    details: str = ""  # pytest's full failure text, for -v
    skip_reason: str = ""
    transcript: str = ""  # rendered, one line per record, bytes escaped
    transcript_records: list[dict[str, Any]] = field(default_factory=list)
    duration: float = 0.0
    expected_failure: str = ""  # a FAIL/WARN the baseline expects: its reason
    baseline_note: str = ""  # a baseline entry matched, but the failure changed

    def __post_init__(self) -> None:
        if not self.name:
            self.name = self.nodeid.rpartition("::")[2] or self.nodeid
        if not self.level:
            self.level = strongest_level(self.requirements)

    @property
    def judged(self) -> list[str]:
        """The requirements this test speaks about: its markers, and the one it
        found broken when that is another (e.g. the health probe's)."""
        ids = list(self.requirements)
        if self.failed_requirement and self.failed_requirement not in ids:
            ids.append(self.failed_requirement)
        return ids

    def outcome_for(self, requirement_id: str) -> str:
        """This test's say on one requirement (see the module docstring)."""
        if self.outcome in (FAIL, WARN) and self.failed_requirement:
            return self.outcome if requirement_id == self.failed_requirement else BLOCKED
        return self.outcome

    @property
    def counts_against(self) -> bool:
        """A failure or warning the baseline does not expect."""
        return self.outcome in (FAIL, WARN) and not self.expected_failure

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TestRecord:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class UnexpectedPass:
    """A baseline entry whose tests ran and passed: the fix should be noticed
    (and the entry removed from the baseline)."""

    entry: str  # "test X" or "requirement ABP-..."
    reason: str
    tests: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        return {"entry": self.entry, "reason": self.reason, "tests": list(self.tests)}


@dataclass
class RequirementRow:
    id: str
    level: str
    role: str
    section: str
    text: str
    status: str
    tests: list[str]


@dataclass
class RunResult:
    records: list[TestRecord]
    target: dict[str, Any] = field(default_factory=dict)
    started: str = ""  # ISO 8601, UTC
    duration: float = 0.0
    strict: bool = False
    roles: tuple[str, ...] = ("server",)  # whose requirements this run judges
    complete: bool = True  # no selection: list the role's untested requirements too
    selected: tuple[str, ...] = ()  # --requirement IDs or sections: the table's rows
    warnings: list[str] = field(default_factory=list)  # Python warnings raised by tests
    provenance: Provenance = field(default_factory=Provenance)
    baseline: str = ""  # the baseline file applied, if any
    unexpected_passes: list[UnexpectedPass] = field(default_factory=list)
    stopped_early: str = ""  # pytest's reason when -x / --maxfail stopped the run

    def summary(self) -> dict[str, int]:
        counts = {outcome: 0 for outcome in OUTCOMES}
        for record in self.records:
            counts[record.outcome] += 1
        return {
            "tests": len(self.records),
            "passed": counts[PASS],
            "failed": counts[FAIL],
            "warned": counts[WARN],
            "skipped": counts[SKIP],
            "expected": sum(1 for r in self.records if r.expected_failure),
            "unexpected_passes": len(self.unexpected_passes),
        }

    def provenance_items(self) -> list[tuple[str, str]]:
        """Where the result came from, as label/value pairs: the provenance,
        with the run's own start time and seed when the provenance lacks them."""
        items = dict(self.provenance.items())
        if "started" not in items and self.started:
            items["started"] = self.started
        if "seed" not in items and self.target.get("seed") is not None:
            items["seed"] = str(self.target["seed"])
        if self.baseline:
            items["baseline"] = self.baseline
        order = ("command", "started", "seed", "baseline", "toolkit", "spec", "python", "platform")
        return [(key, items[key]) for key in order if key in items]

    def broken_musts(self) -> list[str]:
        """The IDs of the requirements with status FAIL, in spec order."""
        return [row.id for row in self.requirement_rows() if row.status == FAIL]

    def requirement_rows(self) -> list[RequirementRow]:
        """One row per requirement judged (in spec order), with its status."""
        tests: dict[str, list[TestRecord]] = {}
        for record in self.records:
            for rid in record.judged:
                tests.setdefault(rid, []).append(record)
        rows = []
        for rid, req in requirements.catalogue().items():
            covering = tests.pop(rid, [])
            if not covering and not (self.complete and req.role in self.roles):
                continue
            status = worst([r.outcome_for(rid) for r in covering])
            if not self._shown(rid, status):
                continue
            rows.append(
                RequirementRow(
                    rid,
                    req.level,
                    req.role,
                    req.section,
                    req.text,
                    status,
                    sorted(r.nodeid for r in covering),
                )
            )
        for rid, covering in sorted(tests.items()):  # not in the spec (plain pytest use)
            outcome = worst([r.outcome_for(rid) for r in covering])
            rows.append(
                RequirementRow(rid, "?", "?", "?", "", outcome, [r.nodeid for r in covering])
            )
        return rows

    def _shown(self, requirement_id: str, status: str) -> bool:
        """With a selection: a selected requirement, or one found broken."""
        if not self.selected or status in (FAIL, WARN):
            return True
        return selects(self.selected, [requirement_id])

    def exit_code(self) -> int:
        outcomes = {record.outcome for record in self.records if record.counts_against}
        if FAIL in outcomes or (self.strict and WARN in outcomes) or self.unexpected_passes:
            return EXIT_FAILED
        return EXIT_OK

    def verdict(self) -> str:
        return "PASS" if self.exit_code() == EXIT_OK else "FAIL"

    def sorted_records(self) -> list[TestRecord]:
        """Records in spec order of their first requirement, then by test id."""
        order = {rid: n for n, rid in enumerate(requirements.catalogue())}
        return sorted(
            self.records,
            key=lambda r: (
                min((order.get(i, len(order)) for i in r.judged), default=len(order)),
                r.nodeid,
            ),
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": "run",
            "target": self.target,
            "started": self.started,
            "duration": round(self.duration, 3),
            "strict": self.strict,
            "roles": list(self.roles),
            "complete": self.complete,
            "verdict": self.verdict(),
            "exit_code": self.exit_code(),
            "summary": self.summary(),
            "provenance": self.provenance.as_json(),
            "baseline": self.baseline,
            "stopped_early": self.stopped_early,
            "unexpected_passes": [u.as_json() for u in self.unexpected_passes],
            "requirements": [asdict(row) for row in self.requirement_rows()],
            "tests": [r.as_json() for r in sorted(self.records, key=lambda r: r.nodeid)],
            "warnings": self.warnings,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunResult:
        """A result back from ``as_json`` (``ValueError`` if it is not one)."""
        tests = data.get("tests")
        if not isinstance(tests, list) or not all(isinstance(t, dict) for t in tests):
            raise ValueError("not a conformance run report (no list of tests)")
        try:
            records = [TestRecord.from_json(t) for t in tests]
            passes = [
                UnexpectedPass(str(u["entry"]), str(u["reason"]), tuple(u["tests"]))
                for u in data.get("unexpected_passes", [])
            ]
        except (TypeError, KeyError) as exc:
            raise ValueError(f"not a conformance run report: {exc}") from None
        strange = {r.outcome for r in records} - set(OUTCOMES)
        if strange:
            raise ValueError(f"not a conformance run report: outcome {sorted(strange)[0]!r}")
        return cls(
            records,
            target=dict(data.get("target") or {}),
            started=str(data.get("started", "")),
            duration=float(data.get("duration", 0.0)),
            strict=bool(data.get("strict", False)),
            roles=tuple(data.get("roles", ("server",))),
            complete=bool(data.get("complete", True)),
            warnings=list(data.get("warnings", [])),
            provenance=Provenance.from_json(data.get("provenance")),
            baseline=str(data.get("baseline", "")),
            unexpected_passes=passes,
            stopped_early=str(data.get("stopped_early", "")),
        )
