"""``--junit-xml``: the run as JUnit XML, for CI dashboards.

The legacy ("xunit1") layout that Jenkins, GitLab and most CI tools read:
one ``<testcase>`` per test, named ``ABP-REQ-1 test_split_at_first_colon``,
with a ``requirements`` property and the transcript in ``<system-out>``. A
FAIL is a ``<failure>``; a WARN (a broken SHOULD) is a ``<failure>`` only with
``--strict``, otherwise a passing testcase whose ``outcome`` property says
WARN and whose ``<system-err>`` holds the warning. A failure the baseline
expects is ``<skipped type="expected">``; a test the baseline expects to fail
that passed is a ``<failure type="UNEXPECTED_PASS">``. The suite's properties
carry the target (``target.*``) and the provenance (``run.command``,
``run.started``, ``run.seed``, ``run.toolkit``, ``run.spec``, ``run.python``,
``run.platform``).
"""

from __future__ import annotations

import socket
import xml.etree.ElementTree as ET
from pathlib import Path

from conformance.reports.model import FAIL, SKIP, WARN, RunResult, TestRecord
from conformance.reports.text import printable

_XML_FORBIDDEN = {chr(c) for c in range(0x20) if chr(c) not in "\t\n\r"} | {"\ufffe", "\uffff"}


def _xml_text(text: str) -> str:
    """XML 1.0 cannot hold most control characters, even escaped."""
    text = printable(text)
    if any(c in _XML_FORBIDDEN for c in text):
        text = "".join(f"\\x{ord(c):02x}" if c in _XML_FORBIDDEN else c for c in text)
    return text


def _classname(nodeid: str) -> str:
    path = nodeid.split("::", 1)[0]
    return path.removesuffix(".py").replace("/", ".")


def testcase_name(record: TestRecord) -> str:
    return " ".join([*record.requirements, record.name])


def _testcase(record: TestRecord, strict: bool) -> ET.Element:
    case = ET.Element(
        "testcase",
        classname=_classname(record.nodeid),
        name=_xml_text(testcase_name(record)),
        time=f"{record.duration:.3f}",
    )
    props = ET.SubElement(case, "properties")
    ET.SubElement(props, "property", name="requirements", value=" ".join(record.requirements))
    ET.SubElement(props, "property", name="level", value=record.level)
    ET.SubElement(props, "property", name="outcome", value=record.outcome)
    if record.failed_requirement:
        ET.SubElement(props, "property", name="failed_requirement", value=record.failed_requirement)
    message = _xml_text(record.message)
    first_line = message.splitlines()[0] if message else ""
    if record.outcome == FAIL or (record.outcome == WARN and strict):
        failure = ET.SubElement(case, "failure", message=first_line, type=record.outcome)
        failure.text = message
    elif record.outcome == SKIP:
        ET.SubElement(case, "skipped", message=_xml_text(record.skip_reason))
    if record.transcript:
        ET.SubElement(case, "system-out").text = _xml_text(record.transcript)
    if record.outcome == WARN and not strict:
        ET.SubElement(case, "system-err").text = f"WARN (a SHOULD is broken): {message}"
    return case


def _baseline_case(case: ET.Element, record: TestRecord, passes: dict[str, str]) -> None:
    """A failure the baseline expects is ``<skipped>`` (as pytest's xfail); a
    test the baseline expects to fail that passed is a ``<failure>``."""
    if record.expected_failure:
        for failure in case.findall("failure"):
            case.remove(failure)
        skipped = ET.Element(
            "skipped",
            type="expected",
            message=_xml_text(f"expected failure (baseline): {record.expected_failure}"),
        )
        case.insert(1, skipped)
    elif record.nodeid in passes:
        failure = ET.Element(
            "failure",
            type="UNEXPECTED_PASS",
            message=_xml_text(
                f"passes, but the baseline expects a failure ({passes[record.nodeid]})"
            ),
        )
        case.insert(1, failure)


def to_xml(result: RunResult) -> ET.ElementTree:
    summary = result.summary()
    passes = {t: u.entry for u in result.unexpected_passes for t in u.tests}
    failing = [
        r for r in result.records if r.counts_against and (r.outcome == FAIL or result.strict)
    ]
    failures = len(failing) + len(passes)
    root = ET.Element("testsuites")
    suite = ET.SubElement(
        root,
        "testsuite",
        name="abp-conformance",
        tests=str(summary["tests"]),
        failures=str(failures),
        errors="0",
        skipped=str(summary["skipped"] + summary["expected"]),
        time=f"{result.duration:.3f}",
        timestamp=result.started,
        hostname=socket.gethostname(),
    )
    props = ET.SubElement(suite, "properties")
    for key, value in result.target.items():
        ET.SubElement(props, "property", name=f"target.{key}", value=_xml_text(str(value)))
    for label, value in result.provenance_items():
        ET.SubElement(props, "property", name=f"run.{label}", value=_xml_text(value))
    ET.SubElement(props, "property", name="verdict", value=result.verdict())
    for record in sorted(result.records, key=lambda r: r.nodeid):
        case = _testcase(record, result.strict)
        _baseline_case(case, record, passes)
        suite.append(case)
    ET.indent(root)
    return ET.ElementTree(root)


def write(result: RunResult, path: str | Path) -> None:
    to_xml(result).write(path, encoding="utf-8", xml_declaration=True)
