"""``--json``: the whole run, one record per test, for programs.

Schema (``RunResult.as_json``): ``target`` (address, service, framing, ...),
``started`` (ISO 8601, UTC), ``duration`` (s), ``strict``, ``verdict``,
``exit_code``, ``summary`` {tests, passed, failed, warned, skipped},
``requirements`` [{id, level, role, section, text, status, tests}],
``tests`` [{nodeid, name, requirements, level, outcome, message,
failed_requirement, details, skip_reason, transcript, transcript_records
[{t, conn, dir, data, note}], duration}], ``warnings``, ``diagnosis``
{failures, explained, causes [{title, evidence, tests, requirements,
example, excerpt}], unexplained, unexplained_requirements}
(``conformance.reports.diagnosis``; failures a baseline expects left out).
"""

from __future__ import annotations

import json
from pathlib import Path

from conformance.reports.diagnosis import diagnose
from conformance.reports.model import RunResult


def dumps(result: RunResult) -> str:
    data = result.as_json()
    data["diagnosis"] = diagnose(result).as_json()
    return json.dumps(data, indent=2, ensure_ascii=True) + "\n"


def write(result: RunResult, path: str | Path) -> None:
    Path(path).write_text(dumps(result), encoding="utf-8")
