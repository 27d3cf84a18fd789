"""A cell of the matrix: one client against one server, scenario by scenario.

The one model of a result, whoever holds it: ``runner`` makes cells as the
pairs finish, ``reports`` reads them back from the JSON a run (or a merge)
wrote. ``Cell.as_json`` is the one writer and ``Cell.from_json`` the one
reader; they round-trip exactly (the writer rounds durations to the
millisecond, as every document holds them).

A cell's JSON object, as every matrix document holds it (``passed``,
``total`` and ``anchor`` are written for the reader's convenience and worked
out again on reading; ``source`` only in a merged document)::

    {"client": "...", "server": "...", "passed": 5, "total": 8,
     "duration": 1.234, "anchor": "cell-...--...", "source": "shard-1.json",
     "scenarios": [{"name": "add", "passed": true, "message": "",
                    "duration": 0.12, "transcript": ">> ...",
                    "transcript_records": [{"t": 0.0, "conn": "c1", ...}]}]}
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from conformance.harness.wire import Transcript


def anchor_for(client: str, server: str) -> str:
    """A stable id for a cell: ``cell-<client>--<server>``."""

    def slug(name: str) -> str:  # no "--" inside: the separator stays unambiguous
        text = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        return text or hashlib.sha256(name.encode("utf-8", "replace")).hexdigest()[:8]

    return f"cell-{slug(client)}--{slug(server)}"


@dataclass(frozen=True)
class ScenarioResult:
    """One interop scenario as it went in one cell."""

    name: str
    passed: bool
    message: str = ""  # why it failed: the step, expected and actual
    duration: float = 0.0
    transcript: str = ""  # rendered: ``>>`` sent, ``<<`` answered, ``--`` events
    records: tuple[dict[str, Any], ...] = ()  # the transcript as JSON records

    @classmethod
    def recorded(
        cls, name: str, passed: bool, message: str, duration: float, transcript: Transcript
    ) -> ScenarioResult:
        """A scenario that ran, with its transcript as it stands now."""
        return cls(
            name, passed, message, duration, transcript.render(), tuple(transcript.as_json())
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "passed": self.passed,
            "message": self.message,
            "duration": round(self.duration, 3),
            "transcript": self.transcript,
            "transcript_records": [dict(r) for r in self.records],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ScenarioResult:
        """Raises ``KeyError``, ``TypeError`` or ``ValueError`` on what is not one."""
        return cls(
            str(data["name"]),
            bool(data["passed"]),
            str(data.get("message", "")),
            float(data.get("duration", 0.0)),
            str(data.get("transcript", "")),
            tuple(dict(r) for r in data.get("transcript_records", ())),
        )


@dataclass(frozen=True)
class Cell:
    """One client against one server: every scenario's result."""

    client: str
    server: str
    scenarios: tuple[ScenarioResult, ...]
    duration: float = 0.0
    source: str = ""  # the input file it came from (merged dashboards)

    @property
    def passed(self) -> int:
        return sum(1 for s in self.scenarios if s.passed)

    @property
    def total(self) -> int:
        return len(self.scenarios)

    @property
    def ok(self) -> bool:
        return self.passed == self.total

    @property
    def anchor(self) -> str:
        return anchor_for(self.client, self.server)

    def failed(self, scenario: str) -> bool | None:
        """Whether the scenario failed in this cell (None: it did not run here)."""
        found = [s for s in self.scenarios if s.name == scenario]
        return (not found[0].passed) if found else None

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "client": self.client,
            "server": self.server,
            "passed": self.passed,
            "total": self.total,
            "duration": round(self.duration, 3),
            "anchor": self.anchor,
        }
        if self.source:
            data["source"] = self.source
        data["scenarios"] = [s.as_json() for s in self.scenarios]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any], source: str | None = None) -> Cell:
        """A cell back from its JSON; ``source`` (the file read) replaces the one
        it names. Raises ``KeyError``, ``TypeError`` or ``ValueError`` on what is
        not a cell."""
        return cls(
            str(data["client"]),
            str(data["server"]),
            tuple(ScenarioResult.from_json(s) for s in data["scenarios"]),
            float(data.get("duration", 0.0)),
            str(data.get("source", "")) if source is None else source,
        )
