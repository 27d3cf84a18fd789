"""Turns pytest's reports into ``TestRecord``s, in the controlling process.

Registered by ``conformance run`` (``pytest.main(..., plugins=[collector])``).
With xdist the tests run in worker processes, but every ``TestReport`` (and
its ``user_properties``, where ``conformance.plugin`` puts the requirement
IDs, the failure text and the transcript) travels back to the controller and
reaches ``pytest_runtest_logreport`` here.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from conformance.reports.model import TestRecord, classify

#: user_properties keys written by conformance.plugin
REQUIREMENTS = "requirements"
FAILURE = "failure"
FAILED_REQUIREMENT = "failed_requirement"
TRANSCRIPT = "transcript"
TRANSCRIPT_RECORDS = "transcript_records"


@dataclass
class _Pending:
    """The phases of one test seen so far."""

    properties: dict[str, str] = field(default_factory=dict)
    failed: bool = False
    skipped: bool = False
    skip_reason: str = ""
    details: list[str] = field(default_factory=list)
    duration: float = 0.0


def skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    reason = ""
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        reason = str(longrepr[2])
    elif longrepr is not None:
        reason = str(longrepr)
    reason = reason.removeprefix("Skipped: ")
    wasxfail = getattr(report, "wasxfail", None)
    if wasxfail is not None:
        reason = f"expected failure: {wasxfail or reason}"
    return reason


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "failed"


class ResultCollector:
    """A pytest plugin object: one ``TestRecord`` per finished test."""

    def __init__(self, on_record: Callable[[TestRecord], None] | None = None) -> None:
        self.records: list[TestRecord] = []
        self.total = 0  # tests to run, once collection is done
        self.collection_errors: list[str] = []
        self.internal_errors: list[str] = []
        self.warnings: list[str] = []
        self.interrupted = False
        self.stopped_early = ""  # why pytest stopped before the end (-x, --maxfail)
        self.started = time.monotonic()
        self._pending: dict[str, _Pending] = {}
        self._on_record = on_record
        self.items: list[pytest.Item] = []  # when collection ran in this process

    # -- collection
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if session.items:
            self.items = list(session.items)
            self.total = len(session.items)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: object, ids: list[str]) -> None:
        self.total = max(self.total, len(ids))

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.collection_errors.append(f"{report.nodeid or '<session>'}: {report.longreprtext}")

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        value = excinfo.value
        # -x / --maxfail: pytest's Session.Interrupted, xdist's own Interrupted;
        # both subclass KeyboardInterrupt, which Ctrl-C and SIGTERM raise as is
        if isinstance(value, KeyboardInterrupt) and type(value) is not KeyboardInterrupt:
            self.stopped_early = str(value) or "stopped early"
        else:
            self.interrupted = True

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        reason = session.shouldfail or session.shouldstop  # -x / --maxfail in this process
        if reason and not self.stopped_early:
            self.stopped_early = str(reason)

    def pytest_internalerror(self, excrepr: object) -> None:
        self.internal_errors.append(str(excrepr))

    def pytest_warning_recorded(
        self, warning_message: Any, when: str, nodeid: str, location: object
    ) -> None:
        text = f"{warning_message.category.__name__}: {warning_message.message}"
        self.warnings.append(f"{nodeid}: {text}" if nodeid else text)

    # -- results
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        pending = self._pending.setdefault(report.nodeid, _Pending())
        for key, value in report.user_properties:
            if key in (FAILURE, FAILED_REQUIREMENT) and key in pending.properties:
                continue  # the first failure is the one to explain
            pending.properties[str(key)] = str(value)
        pending.duration += report.duration
        if report.failed:
            pending.failed = True
            pending.details.append(f"[{report.when}] {report.longreprtext}")
        elif report.skipped:  # pytest.skip, a skipping fixture, or an expected failure
            pending.skipped = True
            pending.skip_reason = skip_reason(report)
        if report.when == "teardown":
            self._finish(report.nodeid)

    def _finish(self, nodeid: str) -> None:
        pending = self._pending.pop(nodeid)
        props = pending.properties
        ids = props.get(REQUIREMENTS, "").split()
        failed_requirement = props.get(FAILED_REQUIREMENT) or None
        try:
            transcript_records = json.loads(props.get(TRANSCRIPT_RECORDS, "[]"))
        except ValueError:
            transcript_records = []
        details = "\n".join(pending.details)
        record = TestRecord(
            nodeid=nodeid,
            requirements=ids,
            outcome=classify(
                failed=pending.failed,
                skipped=pending.skipped,
                requirement_ids=ids,
                failed_requirement=failed_requirement,
            ),
            message=(props.get(FAILURE) or _last_line(details)) if pending.failed else "",
            failed_requirement=failed_requirement,
            details=details,
            skip_reason=pending.skip_reason if pending.skipped and not pending.failed else "",
            transcript=props.get(TRANSCRIPT, ""),
            transcript_records=transcript_records,
            duration=pending.duration,
        )
        self.records.append(record)
        if self._on_record is not None:
            self._on_record(record)
