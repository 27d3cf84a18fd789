"""Mutation run of the reference server's request handling (issue 9 item 4).

One command (run from the repository root, in the project's venv with the dev
extras, which pin cosmic-ray)::

    python benchmarks/mutation.py --ref HEAD --sample 200 --seed 9

What it does:

1. extracts the commit ``--ref`` into a scratch tree (``--work``, default
   ``/tmp/abp-mutation/<sha>``), so the measurement names a commit and the
   checkout is never mutated in place;
2. ``cosmic-ray init`` with ``benchmarks/cosmic-ray.toml`` over
   ``reference_server/{connection,store,server}.py``;
3. marks as skipped, without running them, the mutants inside a type
   annotation (these modules use ``from __future__ import annotations``: an
   annotation is never evaluated, so such a mutant is equivalent by
   construction), then keeps a seeded sample (``random.Random(seed)``) of the
   rest, drawn from the mutants sorted by ``path:operator:occurrence``;
4. checks that the unmutated tree passes (the baseline), then runs
   ``cosmic-ray exec`` (one worker: cosmic-ray's local distributor is
   sequential) under ``nice``;
5. runs the named mutants below (statement deletions, which no cosmic-ray 8.7.0
   operator makes: the three the issue names);
6. writes ``report.json`` and ``report.md`` (every survivor with its diff) in
   the work directory and prints the summary.

The test command cosmic-ray runs is ``python benchmarks/mutation.py suite``:
the conformance suite, ``--strict``, told the server's idle timeout, against
the scratch tree's server started by ``--server-cmd``, told its connection
limit; then the limit test alone, the server given a per-address limit under
the global one (see ``suite_argvs``).
A mutant counts as killed when that exits non-zero or times out.

``--only KEY`` re-runs chosen mutants (a key is ``path:operator:occurrence``
as printed in the report, or a named mutant's name), e.g. to show a gap
killed once its test exists.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "benchmarks" / "cosmic-ray.toml"

#: What the suite is told and the server is started with.
IDLE_TIMEOUT = 2.0
#: The server's connection limit (for one address as for all), told to the
#: suite (``--max-conns``): above the 100 that ABP-CONN-4 demands and below
#: the suite's crowd of 200, so that refusals (ABP-CONN-8) happen.
MAX_CONNS = 150
#: The per-address limit of the second run (the limit test alone): under the
#: global one, so that a mutant of the per-address count is seen too.
PER_IP = 140
SUITE_SEED = 1
#: Bound on the scratch suite run that checks the unmutated tree.
BASELINE_TIMEOUT = 300.0
NICE = 10


@dataclass(frozen=True)
class Named:
    """A mutant no cosmic-ray operator makes: ``old`` replaced by ``new`` once."""

    name: str
    path: str
    old: str
    new: str
    what: str


NAMED = (
    Named(
        "drop-feed-eof",
        "reference_server/connection.py",
        "                self._feed(data, self._loop.time())\n            self._feed_eof()\n",
        "                self._feed(data, self._loop.time())\n            pass\n",
        "eof_received no longer hands the end of stream to the protocol (ABP-FRAME-5)",
    ),
    Named(
        "drop-idle-abort",
        "reference_server/connection.py",
        "            self.abort()  # it does not read: what we hold for it would never leave",
        "            pass  # it does not read: what we hold for it would never leave",
        "the idle timer no longer aborts a connection with unsent output (ABP-CONN-7)",
    ),
    Named(
        "drop-busy-write",
        "reference_server/connection.py",
        "            transport.write(self._protocol.send(_BUSY))\n",
        "",
        "a refused connection no longer gets `ERROR: Server busy` (ABP-CONN-8)",
    ),
)


def server_command(python: str, per_ip: int) -> str:
    return (
        f"{python} -m reference_server --port {{port}} --db {{tmpdir}}/book.sqlite3"
        f" --idle-timeout {IDLE_TIMEOUT:g} --max-conns {MAX_CONNS} --max-conns-per-ip {per_ip}"
    )


def suite_argvs(python: str) -> list[list[str]]:
    """The test command: the whole conformance suite against the tree's server
    (one address may use every slot: the global limit is what it meets); then
    the limit test alone, with a per-address limit under the global one (what
    one address meets is then the per-address limit)."""
    common = [python, "-m", "conformance", "run", "--idle-timeout", f"{IDLE_TIMEOUT:g}",
              "--strict", "-n", "1", "--seed", str(SUITE_SEED)]  # fmt: skip
    return [
        [*common, "--server-cmd", server_command(python, MAX_CONNS),
         "--max-conns", str(MAX_CONNS)],
        [*common, "--server-cmd", server_command(python, PER_IP), "--max-conns", str(PER_IP),
         "--requirement", "ABP-CONN-8"],
    ]  # fmt: skip


def run_suite(tree: Path, timeout: float | None = None) -> tuple[int, str]:
    """Run the suite with ``tree`` first on the import path; (exit status, output):
    the first run that fails, else the last."""
    env = dict(os.environ, PYTHONPATH=str(tree), PYTHONDONTWRITEBYTECODE="1")
    status, output = 0, ""
    for argv in suite_argvs(sys.executable):
        try:
            done = subprocess.run(
                argv, cwd=tree, env=env, capture_output=True, text=True, timeout=timeout,
                check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            return -1, "timeout"
        status, output = done.returncode, done.stdout + done.stderr
        if status != 0:
            break
    return status, output


def failed_requirements(output: str) -> list[str]:
    """The requirement IDs the suite's summary shows as FAIL (or WARN)."""
    return re.findall(r"^\s*(ABP-[A-Z]+-\d+)\s+\w+\s+(?:FAIL|WARN)", output, re.MULTILINE)


def annotation_spans(source: str) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """(start, end) of every annotation and of ``if TYPE_CHECKING:`` blocks."""
    spans = []
    for node in ast.walk(ast.parse(source)):
        parts: list[ast.AST] = []
        if isinstance(node, ast.arg) and node.annotation is not None:
            parts.append(node.annotation)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.returns:
            parts.append(node.returns)
        elif isinstance(node, ast.AnnAssign):
            parts.append(node.annotation)
        elif (
            isinstance(node, ast.If)
            and isinstance(node.test, ast.Name)
            and node.test.id == "TYPE_CHECKING"
        ):
            parts.append(node)
        for part in parts:
            start = (part.lineno, part.col_offset)  # type: ignore[attr-defined]
            end = (part.end_lineno, part.end_col_offset)  # type: ignore[attr-defined]
            spans.append((start, end))
    return spans


def key_of(mutation: Any) -> str:
    return f"{mutation.module_path}:{mutation.operator_name}:{mutation.occurrence}"


def extract(ref: str, work: Path) -> tuple[str, Path]:
    sha = subprocess.run(
        ["git", "rev-parse", "--verify", f"{ref}^{{commit}}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    base = work / sha[:12]
    tree = base / "tree"
    if tree.exists():
        shutil.rmtree(tree)
    tree.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "archive", "--format=tar", sha], cwd=ROOT, capture_output=True, check=True
    ).stdout
    tar_path = base / "tree.tar"
    tar_path.write_bytes(archive)
    with tarfile.open(tar_path) as tar:
        tar.extractall(tree, filter="data")
    tar_path.unlink()
    (tree / "benchmarks").mkdir(exist_ok=True)
    shutil.copy2(Path(__file__), tree / "benchmarks" / "mutation.py")
    shutil.copy2(CONFIG, tree / "benchmarks" / "cosmic-ray.toml")
    return sha, tree


def cosmic_ray(tree: Path, *args: str) -> None:
    tool = str(Path(sys.executable).with_name("cosmic-ray"))
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    subprocess.run([tool, *args], cwd=tree, env=env, check=True)


def select(
    session: Path, tree: Path, sample: int | None, seed: int, only: set[str]
) -> dict[str, int]:
    """Mark annotation mutants and unsampled ones as skipped; return counts."""
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import WorkerOutcome, WorkResult

    spans: dict[str, list[tuple[tuple[int, int], tuple[int, int]]]] = {}
    with use_db(str(session), WorkDB.Mode.open) as db:
        items = list(db.pending_work_items)
        in_annotation, candidates = [], []
        for item in items:
            (mutation,) = item.mutations
            path = str(mutation.module_path)
            if path not in spans:
                spans[path] = annotation_spans((tree / path).read_text())
            start, end = tuple(mutation.start_pos), tuple(mutation.end_pos)
            if any(a <= start and end <= b for a, b in spans[path]):
                in_annotation.append(item)
            else:
                candidates.append(item)
        for item in in_annotation:
            db.set_result(
                item.job_id,
                WorkResult(worker_outcome=WorkerOutcome.SKIPPED, output="annotation"),
            )
        candidates.sort(key=lambda item: key_of(item.mutations[0]))
        if only:
            chosen = [item for item in candidates if key_of(item.mutations[0]) in only]
        elif sample is not None and sample < len(candidates):
            chosen = random.Random(seed).sample(candidates, sample)
        else:
            chosen = candidates
        keep = {item.job_id for item in chosen}
        for item in candidates:
            if item.job_id not in keep:
                db.set_result(
                    item.job_id,
                    WorkResult(worker_outcome=WorkerOutcome.SKIPPED, output="not sampled"),
                )
    return {
        "generated": len(items),
        "annotation": len(in_annotation),
        "candidates": len(candidates),
        "run": len(keep),
    }


def run_named(tree: Path, only: set[str]) -> list[dict[str, Any]]:
    """Apply each named mutant in turn and run the suite; outputs go to ``outputs/``."""
    outputs = tree.parent / "outputs"
    outputs.mkdir(exist_ok=True)
    results = []
    for named in NAMED:
        if only and named.name not in only:
            continue
        path = tree / named.path
        original = path.read_text()
        if original.count(named.old) != 1:
            results.append({"key": named.name, "outcome": "not applicable", "what": named.what})
            continue
        path.write_text(original.replace(named.old, named.new))
        try:
            started = time.monotonic()
            status, output = run_suite(tree, timeout=BASELINE_TIMEOUT)
        finally:
            path.write_text(original)
        (outputs / f"{named.name}.txt").write_text(output)
        results.append(
            {
                "key": named.name,
                "outcome": "survived" if status == 0 else "killed",
                "exit": status,
                "failed": failed_requirements(output),
                "seconds": round(time.monotonic() - started, 1),
                "what": named.what,
            }
        )
    return results


def collect(session: Path) -> list[dict[str, Any]]:
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import WorkerOutcome

    rows = []
    outputs = session.parent / "outputs"
    outputs.mkdir(exist_ok=True)
    with use_db(str(session), WorkDB.Mode.open) as db:
        for item, result in db.completed_work_items:
            if result.worker_outcome == WorkerOutcome.SKIPPED:
                continue
            (mutation,) = item.mutations
            output = result.output or ""
            (outputs / f"{key_of(mutation).replace('/', '_')}.txt").write_text(output)
            status = re.search(r"^exit status (-?\d+)$", output, re.MULTILINE)
            rows.append(
                {
                    "key": key_of(mutation),
                    "line": mutation.start_pos[0],
                    "outcome": str(result.test_outcome.value) if result.test_outcome else "error",
                    "exit": int(status.group(1)) if status else None,
                    "timeout": output == "timeout",
                    "failed": failed_requirements(output),
                    "diff": "\n".join(
                        line
                        for line in (result.diff or "").splitlines()
                        if line[:1] in "+-" and line[:3] not in ("+++", "---")
                    ),
                }
            )
    rows.sort(key=lambda row: row["key"])
    return rows


def write_report(base: Path, summary: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    (base / "report.json").write_text(json.dumps({"summary": summary, "mutants": rows}, indent=1))
    lines = [f"# mutation run of {summary['sha']}", "", "```", json.dumps(summary), "```", ""]
    lines += ["| mutant | line | outcome | diff |", "| --- | --- | --- | --- |"]
    for row in rows:
        if row["outcome"] != "killed":
            diff = row.get("diff", row.get("what", "")).replace("\n", " / ").replace("|", "\\|")
            lines.append(
                f"| `{row['key']}` | {row.get('line', '')} | {row['outcome']} | `{diff}` |"
            )
    (base / "report.md").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", nargs="?", choices=["run", "suite"], default="run")
    parser.add_argument("--ref", default="HEAD", help="the commit to measure (default: HEAD)")
    parser.add_argument("--sample", type=int, default=None, help="mutants to run (default: all)")
    parser.add_argument("--seed", type=int, default=9, help="sampling seed (default: 9)")
    parser.add_argument("--only", action="append", default=[], help="run only this mutant key")
    parser.add_argument("--no-named", action="store_true", help="skip the named mutants")
    parser.add_argument("--work", type=Path, default=Path("/tmp/abp-mutation"))
    args = parser.parse_args(argv)

    if args.command == "suite":  # cosmic-ray's test command, cwd = the scratch tree
        status, output = run_suite(Path.cwd())
        print(output)
        print(f"exit status {status}")
        return status

    os.nice(NICE)
    sha, tree = extract(args.ref, args.work)
    base = tree.parent
    print(f"measuring {sha} in {tree}", flush=True)
    started = time.monotonic()
    status, output = run_suite(tree, timeout=BASELINE_TIMEOUT)
    if status != 0:
        print(output)
        print(f"baseline failed (exit {status}): the unmutated tree must pass", file=sys.stderr)
        return 1
    baseline = round(time.monotonic() - started, 1)
    print(f"baseline passes in {baseline}s", flush=True)

    session = base / "session.sqlite"
    session.unlink(missing_ok=True)
    cosmic_ray(tree, "init", "benchmarks/cosmic-ray.toml", str(session))
    only = set(args.only)
    counts = select(session, tree, args.sample, args.seed, only)
    print(json.dumps(counts), flush=True)
    if counts["run"]:
        cosmic_ray(tree, "exec", "benchmarks/cosmic-ray.toml", str(session))
    rows = collect(session)
    named = [] if args.no_named else run_named(tree, only)
    outcomes = [row["outcome"] for row in rows + named]
    summary = {
        "sha": sha,
        "commands": suite_argvs("python"),
        "sample": args.sample,
        "seed": args.seed,
        "only": sorted(only),
        "baseline_seconds": baseline,
        **counts,
        "killed": outcomes.count("killed"),
        "survived": outcomes.count("survived"),
        "other": len(outcomes) - outcomes.count("killed") - outcomes.count("survived"),
        "minutes": round((time.monotonic() - started) / 60, 1),
    }
    write_report(base, summary, rows + named)
    print(json.dumps(summary, indent=1))
    print(f"survivors: {base / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
