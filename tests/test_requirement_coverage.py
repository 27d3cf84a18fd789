"""Every requirement of docs/spec.md has a test that names it.

A static scan of the source for ``requirement(...)`` markers (write the IDs
literally: ``@pytest.mark.requirement("ABP-REQ-1")``). Requirements of the
roles server, counter and client must be named in the conformance suites;
those of the role program (conventions checked off the wire) in ``tests/``.
"""

from __future__ import annotations

import re
from pathlib import Path

from protocol import requirements

ROOT = Path(__file__).resolve().parent.parent
SUITES = ["conformance/suites/server", "conformance/suites/counter", "conformance/suites/client"]
MARKER = re.compile(r"\brequirement\(([^)]*)\)")
ID = re.compile(r"ABP-[A-Z]+-\d+")
#: Sections the suites cannot reach yet, tested in tests/ meanwhile (none: ABP
#: over TLS is in the server suite since ``--server tls://HOST:PORT``).
NOT_YET_IN_SUITES: tuple[str, ...] = ()


def marked_ids(directories: list[str]) -> dict[str, set[str]]:
    """requirement ID -> the files whose markers name it."""
    found: dict[str, set[str]] = {}
    for directory in directories:
        for path in sorted((ROOT / directory).rglob("*.py")):
            if path == Path(__file__).resolve():
                continue  # the sample markers below
            text = path.read_text(encoding="utf-8")
            for marker in MARKER.finditer(text):
                for rid in ID.findall(marker.group(1)):
                    found.setdefault(rid, set()).add(str(path.relative_to(ROOT)))
    return found


def test_the_scan_sees_markers() -> None:
    """The scanner reads this very module's markers (a sanity check of the regex)."""
    sample = (
        '@pytest.mark.requirement(\n    "ABP-REQ-1", "ABP-REQ-2"\n)\n'
        'pytestmark = mark.requirement("ABP-COUNTER-4")'
    )
    ids = [rid for m in MARKER.finditer(sample) for rid in ID.findall(m.group(1))]
    assert ids == ["ABP-REQ-1", "ABP-REQ-2", "ABP-COUNTER-4"]


def test_every_wire_requirement_has_a_conformance_test() -> None:
    marked = marked_ids(SUITES)
    wanted = [
        r.id
        for r in requirements.catalogue().values()
        if r.role != "program" and not r.id.startswith(NOT_YET_IN_SUITES)
    ]
    uncovered = [rid for rid in wanted if rid not in marked]
    assert not uncovered, (
        f"{len(uncovered)} requirement(s) of docs/spec.md have no test in "
        f"{', '.join(SUITES)}: {' '.join(uncovered)}"
    )


def test_every_program_requirement_has_a_project_test() -> None:
    marked = marked_ids(["tests"])
    wanted = [
        r.id
        for r in requirements.catalogue().values()
        if r.role == "program" or r.id.startswith(NOT_YET_IN_SUITES)
    ]
    uncovered = [rid for rid in wanted if rid not in marked]
    assert not uncovered, (
        f"program requirement(s) with no marked test in tests/: {' '.join(uncovered)}"
    )


def test_no_marker_names_an_unknown_requirement() -> None:
    known = requirements.catalogue()
    marked = marked_ids([*SUITES, "tests"])
    unknown = {rid: sorted(files) for rid, files in marked.items() if rid not in known}
    assert not unknown, f"markers name requirements docs/spec.md does not have: {unknown}"


def test_suite_markers_name_requirements_of_the_right_role() -> None:
    """A client requirement marked in the server suite would be judged against a server."""
    roles = {
        "conformance/suites/server": {"server"},
        "conformance/suites/counter": {"counter", "server"},
        "conformance/suites/client": {"client"},
    }
    catalogue = requirements.catalogue()
    wrong = []
    for directory, allowed in roles.items():
        for rid, files in marked_ids([directory]).items():
            if rid in catalogue and catalogue[rid].role not in allowed:
                wrong.append(f"{rid} ({catalogue[rid].role}) in {', '.join(sorted(files))}")
    assert not wrong, "markers in the wrong suite: " + "; ".join(wrong)
