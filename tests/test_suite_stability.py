"""No flaky verdicts: the whole suite, run five times in a row against the
reference server, gives every test the same outcome each time.

Each run is the real ``python -m conformance run`` (the embedded reference
server on a fresh port and a fresh database, default workers, default seed),
exactly what a user types. A difference names the tests that changed and what
they said in each run.
"""

from __future__ import annotations

from pathlib import Path

from conformance.corpus.servers.harness import SuiteRun, run_suite

RUNS = 5
#: The deadline of one run; the five together must stay well under a minute.
RUN_TIMEOUT = 60.0


def _differences(runs: list[SuiteRun]) -> str:
    first = runs[0].outcomes()
    lines = []
    for n, run in enumerate(runs[1:], start=2):
        other = run.outcomes()
        for nodeid in sorted(first.keys() | other.keys()):
            a, b = first.get(nodeid, "absent"), other.get(nodeid, "absent")
            if a != b:
                why = next((t["message"] for t in run.tests if t["nodeid"] == nodeid), "")
                lines.append(f"run 1: {a:6} run {n}: {b:6} {nodeid}\n    {why[:300]}")
    return "\n".join(lines)


def test_five_runs_against_the_reference_server_agree(tmp_path: Path) -> None:
    runs = [
        run_suite(json_path=tmp_path / f"run-{n}.json", timeout=RUN_TIMEOUT) for n in range(RUNS)
    ]
    for run in runs:
        assert run.report, f"no JSON report\n{run.explain()}"
    assert runs[0].outcomes(), "the suite ran no test"
    assert all(run.outcomes() == runs[0].outcomes() for run in runs), _differences(runs)
    assert len({run.returncode for run in runs}) == 1, [run.returncode for run in runs]
