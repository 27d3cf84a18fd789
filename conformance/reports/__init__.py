"""The reports of a conformance run: the result model and its renderers
(console, JUnit XML, JSON, HTML, Markdown, the SVG badge), the provenance
every report carries, baselines, and the pytest plugin that gathers it."""

from conformance.reports.collector import ResultCollector
from conformance.reports.model import (
    BLOCKED,
    EXIT_FAILED,
    EXIT_INTERNAL,
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
from protocol.program import EXIT_OK, EXIT_USAGE

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
