"""Flake hunt under CPU load (issue 9 item 3): the suite run N times against
the same server while background processes burn the cores; every test whose
verdict changes between runs is reported.

One command (repository root, project venv)::

    python benchmarks/flake_hunt.py --repeat 20 --burn 2

Targets (``--target``, repeatable; default: ``reference``) are a name from
``TARGETS`` below or ``NAME=SERVER_CMD`` (a ``--server-cmd`` template). Each
run is ``conformance run --server-cmd CMD --seed S --json PATH`` plus the
target's own options; the seed is fixed (``--seed``) so that a changed verdict
is timing, not a different fuzz example.

The burners are ``timeout BUDGET python -c 'while 1: pass'``: bounded even if
this script dies, and stopped by PID when it ends. Results (per target: runs,
exit statuses, changed tests with their outcomes per run) are printed and
written to ``--out`` as JSON.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

PY = sys.executable

#: name -> (server command template, extra ``conformance run`` arguments).
TARGETS: dict[str, tuple[str, list[str]]] = {
    "reference": (
        f"{PY} -m reference_server --port {{port}} --db {{tmpdir}}/book.sqlite3 --idle-timeout 2",
        ["--idle-timeout", "2"],
    ),
}


def parse_target(text: str) -> tuple[str, str, list[str]]:
    if text.startswith("variant:"):  # a server of the acquittal corpus
        import conformance.corpus.servers.variants  # noqa: F401  (registers them)
        from conformance.corpus.servers.registry import VARIANTS

        name = text.removeprefix("variant:")
        if name not in VARIANTS:
            raise argparse.ArgumentTypeError(f"{name!r}: not a variant of the acquittal corpus")
        found = VARIANTS[name]
        command = (
            f"{PY} -m conformance.corpus.servers --variant {name} --port {{port}} "
            f"--data {{tmpdir}} {' '.join(found.server_args)}"
        ).strip()
        extra = [*found.suite_args]
        if found.service != "abp":
            extra += ["--service", found.service]
        return text, command, extra
    if text in TARGETS:
        command, extra = TARGETS[text]
        return text, command, extra
    name, sep, command = text.partition("=")
    if not sep or not name or "{port}" not in command:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected one of {sorted(TARGETS)} or NAME=CMD with {{port}}"
        )
    return name, command, []


def start_burners(count: int, budget: float) -> list[subprocess.Popen[bytes]]:
    return [
        subprocess.Popen(["timeout", f"{budget:g}", PY, "-c", "while 1: pass"])
        for _ in range(count)
    ]


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()  # timeout passes SIGTERM on to its child
    for process in processes:
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def run_once(
    command: str, extra: list[str], seed: int, workers: int, scratch: Path
) -> dict[str, Any]:
    report = scratch / "run.json"
    report.unlink(missing_ok=True)
    argv = [PY, "-m", "conformance", "run", "--server-cmd", command, "--seed", str(seed)]
    argv += ["-n", str(workers), "--json", str(report), *extra]
    started = time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=900, check=False)
    seconds = time.monotonic() - started
    tests: dict[str, str] = {}
    messages: dict[str, str] = {}
    if report.exists():
        for test in json.loads(report.read_text())["tests"]:
            tests[test["nodeid"]] = test["outcome"]
            if test.get("message"):
                messages[test["nodeid"]] = test["message"]
    return {
        "exit": done.returncode,
        "seconds": round(seconds, 1),
        "tests": tests,
        "messages": messages,
        "stderr": done.stderr[-2000:] if done.returncode not in (0, 1) else "",
    }


def suite_repeat(command: str, extra: list[str], args: argparse.Namespace) -> dict[str, Any]:
    """``conformance run --repeat N``: the suite compares the runs itself."""
    argv = [PY, "-m", "conformance", "run", "--server-cmd", command, "--seed", str(args.seed)]
    argv += ["-n", str(args.workers), "--repeat", str(args.repeat), *extra]
    started = time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=3600, check=False)
    return {
        "command": command,
        "extra": extra,
        "exit": done.returncode,
        "seconds": round(time.monotonic() - started, 1),
        "output": (done.stdout + done.stderr)[-6000:],
        "changed": {} if done.returncode == 0 else {"see output": ["exit", str(done.returncode)]},
        "exits": [done.returncode],
    }


def changed(runs: list[dict[str, Any]]) -> dict[str, list[str]]:
    """nodeid -> its outcome in each run, for every test not always the same."""
    ids = sorted({nodeid for run in runs for nodeid in run["tests"]})
    seen: dict[str, list[str]] = defaultdict(list)
    for nodeid in ids:
        for run in runs:
            seen[nodeid].append(run["tests"].get(nodeid, "absent"))
    return {nodeid: outcomes for nodeid, outcomes in seen.items() if len(set(outcomes)) > 1}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", type=parse_target, action="append", default=[])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--burn", type=int, default=2, help="busy-loop processes (default: 2)")
    parser.add_argument("--burn-budget", type=float, default=2400.0, help="their bound, s")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("-n", "--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("/tmp/abp-flake-hunt.json"))
    parser.add_argument(
        "--suite-repeat",
        action="store_true",
        help="one `conformance run --repeat N` per target instead of N runs",
    )
    args = parser.parse_args(argv)
    targets = args.target or [parse_target("reference")]

    results: dict[str, Any] = {"repeat": args.repeat, "burn": args.burn, "seed": args.seed}
    burners = start_burners(args.burn, args.burn_budget)
    try:
        with tempfile.TemporaryDirectory(prefix="abp-flake-") as scratch:
            for name, command, extra in targets:
                if args.suite_repeat:
                    results[name] = suite_repeat(command, extra, args)
                    print(f"{name}: exit {results[name]['exit']}", flush=True)
                    continue
                runs = []
                for index in range(args.repeat):
                    run = run_once(command, extra, args.seed, args.workers, Path(scratch))
                    runs.append(run)
                    print(
                        f"{name} run {index + 1}/{args.repeat}: exit {run['exit']}, "
                        f"{len(run['tests'])} tests, {run['seconds']}s",
                        flush=True,
                    )
                flips = changed(runs)
                results[name] = {
                    "command": command,
                    "extra": extra,
                    "exits": [run["exit"] for run in runs],
                    "seconds": [run["seconds"] for run in runs],
                    "tests": len({nodeid for run in runs for nodeid in run["tests"]}),
                    "changed": flips,
                    "messages": {
                        nodeid: sorted({run["messages"].get(nodeid, "") for run in runs} - {""})
                        for nodeid in flips
                    },
                    "stderr": [run["stderr"] for run in runs if run["stderr"]],
                }
                print(f"{name}: {len(flips)} test(s) changed verdict", flush=True)
    finally:
        stop(burners)
    args.out.write_text(json.dumps(results, indent=1))
    print(json.dumps({k: v for k, v in results.items()}, indent=1)[:20000])
    flaky = any(results[name]["changed"] for name, _, _ in targets)
    unstable = any(len(set(results[name]["exits"])) > 1 for name, _, _ in targets)
    return 1 if flaky or unstable else 0


if __name__ == "__main__":
    sys.exit(main())
