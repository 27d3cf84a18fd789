"""The reports of a conformance run: the result model and its renderers
(console, JUnit XML, JSON, HTML), and the pytest plugin that gathers it."""

from conformance.reports.collector import ResultCollector
from conformance.reports.model import (
    BLOCKED,
    EXIT_FAILED,
    EXIT_INTERNAL,
    EXIT_OK,
    EXIT_USAGE,
    FAIL,
    PASS,
    SKIP,
    UNTESTED,
    WARN,
    RequirementRow,
    RunResult,
    TestRecord,
    classify,
)

__all__ = [
    "BLOCKED",
    "EXIT_FAILED",
    "EXIT_INTERNAL",
    "EXIT_OK",
    "EXIT_USAGE",
    "FAIL",
    "PASS",
    "SKIP",
    "UNTESTED",
    "WARN",
    "RequirementRow",
    "ResultCollector",
    "RunResult",
    "TestRecord",
    "classify",
]
