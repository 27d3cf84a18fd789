"""Baselines: the failures an implementation expects today, so that its CI can
gate on "no new failures" while it is fixed (``conformance run --baseline``).

The file is TOML, one ``[[expected]]`` table per entry::

    [[expected]]
    test = "conformance/suites/server/test_framing.py::test_crlf_is_stripped"
    reason = "we keep the CR until #42 is merged"    # mandatory
    failure = "ABP-FRAME-2"                          # optional: text the failure must contain

    [[expected]]
    requirement = "ABP-CONN-7"                       # every failure against it
    reason = "no idle timeout yet"

``test`` is a test id as the reports show it (a parametrised test's base id,
without ``[...]``, names every parametrisation); ``requirement`` names every
failure or warning that counts against that requirement. Applied to a run:

- a FAIL or WARN an entry names is *expected*: it does not fail the run (when
  the entry has ``failure`` and the failure's text no longer contains it, the
  failure has changed: it is not expected, and the record says why);
- an entry whose tests ran and all passed is an *unexpected pass*: reported,
  and it fails the run, so that fixes are noticed and the file shrinks;
- an entry that names no known test or requirement is an error (``BaselineError``,
  exit 2). Which tests are known is the caller's to say (the collected suite).

``write`` makes a baseline from a run's JSON report: every failure and warning,
each with a placeholder reason to fill in.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only (tomli is a dependency there)
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

from conformance.reports.model import FAIL, PASS, WARN, RunResult, TestRecord, UnexpectedPass
from conformance.reports.text import printable
from protocol import requirements

PLACEHOLDER = "TODO: say why this fails, or fix it"
MAX_BYTES = 1 << 20  # a baseline is a list of a few hundred lines at most
_KEYS = {"test", "requirement", "reason", "failure"}


class BaselineError(ValueError):
    """The baseline cannot be used; the message (one line) says where and why."""


@dataclass(frozen=True)
class Entry:
    test: str = ""
    requirement: str = ""
    reason: str = ""
    failure: str = ""  # text the failure's message must contain ("" for any)
    where: str = ""  # "FILE: entry #N", for the errors

    @property
    def name(self) -> str:
        return f"test {self.test}" if self.test else f"requirement {self.requirement}"

    def names_test(self, nodeid: str) -> bool:
        return bool(self.test) and (nodeid == self.test or nodeid.split("[", 1)[0] == self.test)

    def names_failure(self, record: TestRecord) -> bool:
        """This entry speaks about this failing (or warning) record."""
        if self.test:
            return self.names_test(record.nodeid)
        return self.requirement in record.judged and record.outcome_for(self.requirement) in (
            FAIL,
            WARN,
        )

    def covers(self, record: TestRecord) -> bool:
        """This record's outcome says something about this entry."""
        if self.test:
            return self.names_test(record.nodeid)
        return self.requirement in record.judged


@dataclass(frozen=True)
class Baseline:
    entries: tuple[Entry, ...]
    source: str

    @property
    def placeholders(self) -> int:
        return sum(1 for entry in self.entries if entry.reason.strip() == PLACEHOLDER)


def _string(item: dict[str, object], key: str, where: str) -> str:
    value = item.get(key, "")
    if not isinstance(value, str):
        raise BaselineError(f"{where}: {key} must be a string")
    return value.strip() if key != "failure" else value


def parse(text: str, source: str = "<baseline>") -> Baseline:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BaselineError(f"{source}: not valid TOML: {exc}") from None
    unknown = set(data) - {"expected"}
    if unknown:
        raise BaselineError(
            f"{source}: unknown key(s) {', '.join(sorted(unknown))} (use [[expected]])"
        )
    items = data.get("expected", [])
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise BaselineError(f"{source}: expected must be an array of tables ([[expected]])")
    entries = []
    for n, item in enumerate(items, 1):
        where = f"{source}: entry #{n}"
        extra = set(item) - _KEYS
        if extra:
            raise BaselineError(f"{where}: unknown key(s) {', '.join(sorted(extra))}")
        test, requirement = _string(item, "test", where), _string(item, "requirement", where)
        if bool(test) == bool(requirement):
            raise BaselineError(f"{where}: give exactly one of test = '...' or requirement = '...'")
        reason = _string(item, "reason", where)
        if not reason:
            raise BaselineError(f"{where} ({test or requirement}): a reason is mandatory")
        entries.append(Entry(test, requirement, reason, _string(item, "failure", where), where))
    return Baseline(tuple(entries), source)


def load(path: str | Path) -> Baseline:
    try:
        with Path(path).open("rb") as stream:
            raw = stream.read(MAX_BYTES + 1)
    except OSError as exc:
        raise BaselineError(f"cannot read the baseline {path}: {exc.strerror or exc}") from None
    if len(raw) > MAX_BYTES:
        raise BaselineError(f"{path}: larger than {MAX_BYTES} bytes; not a baseline")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BaselineError(f"{path}: not UTF-8 text") from None
    return parse(text, str(path))


def check_known(baseline: Baseline, known_tests: Collection[str] | None) -> None:
    """Every entry names a requirement of the spec or one of ``known_tests``
    (``None``: the test entries are not checked, only the requirement IDs)."""
    catalogue = requirements.catalogue()
    bases = {nodeid.split("[", 1)[0] for nodeid in known_tests or ()}
    for entry in baseline.entries:
        if entry.requirement and entry.requirement not in catalogue:
            raise BaselineError(
                f"{entry.where}: no requirement {entry.requirement} in the spec "
                "(see 'conformance list')"
            )
        if known_tests is None or not entry.test:
            continue
        if entry.test not in known_tests and entry.test not in bases:
            raise BaselineError(f"{entry.where}: no test {entry.test} in the suite")


def apply(result: RunResult, baseline: Baseline) -> RunResult:
    """Marks the failures the baseline expects and finds the unexpected passes
    (in place; returns ``result``)."""
    result.baseline = baseline.source
    for record in result.records:
        if record.outcome not in (FAIL, WARN):
            continue
        named = [entry for entry in baseline.entries if entry.names_failure(record)]
        matching = [entry for entry in named if entry.failure in record.message]
        if matching:
            record.expected_failure = matching[0].reason
        elif named:
            record.baseline_note = (
                f"the baseline ({named[0].name}) expects a failure containing "
                f"{printable(named[0].failure)!r}: this failure has changed"
            )
    passes = []
    for entry in baseline.entries:
        covered = [r for r in result.records if entry.covers(r)]
        ran = [r for r in covered if r.outcome != "SKIP"]
        if ran and all(_passed_for(entry, r) for r in ran):
            passes.append(UnexpectedPass(entry.name, entry.reason, tuple(r.nodeid for r in ran)))
    result.unexpected_passes = passes
    return result


def _passed_for(entry: Entry, record: TestRecord) -> bool:
    if entry.test:
        return record.outcome == PASS
    return record.outcome_for(entry.requirement) == PASS


# ------------------------------------------------------------------ writing


def _toml_string(text: str) -> str:
    """A TOML basic string: JSON's escapes are TOML's once the text is printable."""
    return json.dumps(printable(text), ensure_ascii=False)


def from_records(records: Iterable[TestRecord], source: str = "") -> str:
    """A baseline expecting every failure and warning of ``records``."""
    bad = sorted((r for r in records if r.outcome in (FAIL, WARN)), key=lambda r: r.nodeid)
    out = [
        "# conformance baseline: failures expected today (conformance run --baseline FILE).",
        f"# Written from {source}." if source else "# Written by conformance baseline write.",
        "# Fill in every reason; remove an entry once its test passes (the run says so).",
        "# test = a test id; requirement = every failure against that requirement;",
        "# failure = text the failure must contain (optional: a changed failure is noticed).",
    ]
    for record in bad:
        rid = record.failed_requirement or " ".join(record.requirements)
        first = next((line for line in record.message.splitlines() if line.strip()), "")
        out += [
            "",
            "[[expected]]",
            f"test = {_toml_string(record.nodeid)}",
            f"reason = {_toml_string(PLACEHOLDER)}",
            f"# {record.outcome} {printable(rid)}",
        ]
        if first:
            out.append(f"# failure = {_toml_string(first.strip())}")
    return "\n".join(out) + "\n"


def write_from_report(report: str | Path, path: str | Path) -> int:
    """``conformance baseline write PATH --from REPORT``: returns the number of entries."""
    try:
        data = json.loads(Path(report).read_text(encoding="utf-8"))
    except OSError as exc:
        raise BaselineError(f"cannot read {report}: {exc.strerror or exc}") from None
    except (ValueError, UnicodeDecodeError):
        raise BaselineError(f"{report}: not a JSON file") from None
    if not isinstance(data, dict):
        raise BaselineError(f"{report}: not a conformance run report (JSON from --json)")
    try:
        result = RunResult.from_json(data)
    except ValueError as exc:
        raise BaselineError(f"{report}: {exc}") from None
    text = from_records(result.records, str(report))
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise BaselineError(f"cannot write {path}: {exc.strerror or exc}") from None
    return sum(1 for r in result.records if r.outcome in (FAIL, WARN))
