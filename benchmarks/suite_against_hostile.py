"""The suite against hostile servers: wall time, exit status and peak memory.

    python benchmarks/suite_against_hostile.py [--timeout 1] [--workers 2]
        [--kinds flood,garbage,silent,trickle] [--framings auto,line] [--honest 0,2]

For each hostile server of ``conformance.corpus.hostile_servers`` (``--honest 2``: it
answers the readiness check and the framing probe, and attacks the tests),
each ``--framing`` and each ``--honest`` count, runs ``conformance run
--server-cmd ...`` as a real subprocess and reports the wall time, the exit
status, the last line of stderr, and the peak RSS of the suite's process tree
(the conformance process and its xdist workers, sampled from /proc every
50 ms; the hostile server itself is not counted). A run is killed at
``--deadline`` seconds. Linux only (reads /proc).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PAGE = os.sysconf("SC_PAGE_SIZE")
SERVER_MARK = b"ABP_CONFORMANCE_SERVER="


def tree(root: int) -> list[int]:
    """``root`` and its descendants, from /proc."""
    parent: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_bytes()
                parent[int(entry.name)] = int(stat[stat.rfind(b")") + 2 :].split()[1])
    found, stack = [root], [root]
    while stack:
        pid = stack.pop()
        for child, ppid in parent.items():
            if ppid == pid:
                found.append(child)
                stack.append(child)
    return found


def suite_rss(root: int) -> int:
    """Bytes resident in the suite's tree, servers under test excluded."""
    total = 0
    for pid in tree(root):
        with contextlib.suppress(OSError):
            if any(
                v.startswith(SERVER_MARK)
                for v in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            ):
                continue
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
    return total


def run_one(
    kind: str, framing: str, honest: int, timeout: float, workers: int, deadline: float
) -> str:
    command = shlex.join(
        [sys.executable, "-m", "conformance.corpus.hostile_servers", kind, "--honest", str(honest)]
    )
    argv = [sys.executable, "-m", "conformance", "run", "--server-cmd",
            command + " --port {port}", "--framing", framing,
            "--timeout", f"{timeout:g}", "--workers", str(workers)]  # fmt: skip
    started = time.monotonic()
    peak = 0
    # output to files, not pipes: a pipe nobody reads would stall the run
    with tempfile.TemporaryFile() as out_file, tempfile.TemporaryFile() as err_file:
        with subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out_file,
                              stderr=err_file, start_new_session=True) as process:  # fmt: skip
            while process.poll() is None:
                peak = max(peak, suite_rss(process.pid))
                if time.monotonic() - started > deadline:
                    for pid in reversed(tree(process.pid)):
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(pid, signal.SIGKILL)
                    break
                time.sleep(0.05)  # the sampling interval, not a synchronisation
        out_file.seek(0)
        err_file.seek(0)
        out, err = out_file.read(), err_file.read()
    seconds = time.monotonic() - started
    lines = out.decode(errors="replace").splitlines()
    verdict = next((line for line in reversed(lines) if line.startswith("verdict:")), "")
    said = err.decode(errors="replace").strip().splitlines()
    last = verdict or (said[-1] if said else "")
    return (f"| {kind} | {framing} | {honest} | {seconds:.1f} | {process.returncode} "
            f"| {peak / 2**20:.0f} | {last[:110]} |")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--timeout", type=float, default=1.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--deadline", type=float, default=300.0)
    parser.add_argument("--kinds", default="flood,garbage,silent,trickle")
    parser.add_argument("--framings", default="auto,line")
    parser.add_argument("--honest", default="0,2")
    args = parser.parse_args()
    print("| server | --framing | --honest | seconds | exit | peak RSS MB | verdict or error |")
    print("|---|---|---|---|---|---|---|")
    for kind in args.kinds.split(","):
        for framing in args.framings.split(","):
            for honest in (int(n) for n in args.honest.split(",")):
                print(
                    run_one(kind, framing, honest, args.timeout, args.workers, args.deadline),
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
