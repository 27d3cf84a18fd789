"""How long the full conformance suite takes against the embedded reference server.

    python benchmarks/suite_time.py              # one run of `python -m conformance run`
    python benchmarks/suite_time.py --runs 3     # best and worst of three
    python benchmarks/suite_time.py -- --workers 0   # extra arguments for `conformance run`

The test count comes from the run's own ``--json`` report; the wall time is
measured here, around the whole command (interpreter start-up included).
Target (issue 5): under 10 s with at least 60 tests.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TARGET_SECONDS = 10.0
TARGET_TESTS = 60
#: One suite run may take at most this long before it counts as hung.
RUN_TIMEOUT = 300


def one_run(extra: list[str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="abp-suite-time-") as tmpdir:
        report = Path(tmpdir) / "report.json"
        argv = [sys.executable, "-m", "conformance", "run", "--json", str(report), *extra]
        started = time.perf_counter()
        try:
            done = subprocess.run(
                argv, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False
            )
        except subprocess.TimeoutExpired:
            return {"error": f"no result within {RUN_TIMEOUT} s", "argv": argv}
        wall = time.perf_counter() - started
        if not report.exists():
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            return {"error": f"exit {done.returncode}: {tail[0]}", "argv": argv}
        data = json.loads(report.read_text())
    summary = data.get("summary", {})
    return {
        "wall_s": wall,
        "suite_s": data.get("duration"),
        "tests": summary.get("tests"),
        "passed": summary.get("passed"),
        "failed": summary.get("failed"),
        "verdict": data.get("verdict"),
        "exit_code": done.returncode,
    }


def main(argv: list[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in args_list:
        cut = args_list.index("--")
        args_list, extra = args_list[:cut], args_list[cut + 1 :]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1, help="how many runs (1..10)")
    parser.add_argument("--json", help="write the runs here")
    args = parser.parse_args(args_list)
    if not 1 <= args.runs <= 10:
        parser.error("--runs must be 1..10")
    runs = []
    for index in range(args.runs):
        run = one_run(extra)
        runs.append(run)
        if "error" in run:
            print(f"suite_time: error: {run['error']}", file=sys.stderr)
            return 2
        print(
            f"run {index + 1}: {run['tests']} tests ({run['passed']} passed, {run['failed']} "
            f"failed), verdict {run['verdict']}, wall {run['wall_s']:.2f} s "
            f"(suite's own clock {run['suite_s']:.2f} s)"
        )
    walls = [run["wall_s"] for run in runs]
    tests = runs[0]["tests"] or 0
    best = min(walls)
    met = best < TARGET_SECONDS and tests >= TARGET_TESTS
    command = "python -m conformance run " + " ".join(extra)
    print(
        f"`{command.strip()}`: {tests} tests, wall {best:.2f} s best / {max(walls):.2f} s worst "
        f"of {len(walls)} on {os.cpu_count()} CPUs; target < {TARGET_SECONDS:g} s with >= "
        f"{TARGET_TESTS} tests: {'met' if met else 'MISSED'}"
    )
    if args.json:
        Path(args.json).write_text(json.dumps({"command": command, "runs": runs}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
