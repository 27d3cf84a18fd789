"""The sharded matrix, end to end, as CI runs it.

The `run:` steps of ``.github/workflows/conformance-matrix.yml`` are read from
the file itself and run here in bash: three shards side by side (as three CI
jobs), their JSON gathered as the artifact download does, then the merge
step. The merged cells must be exactly those of one unsharded run. Also: the
shards split the pairs stably and completely, and ``report merge`` refuses
inputs that cannot be joined, in one line.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conformance.matrix.config import load
from conformance.matrix.reports import Dashboard, console, merge
from conformance.matrix.runner import pairs_of
from conformance.reports.cli import merge_command

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / ".github" / "workflows" / "conformance-matrix.yml"
SHARDS = 3
STEP_TIMEOUT = 240.0


def workflow_steps(text: str) -> dict[str, str]:
    """``name`` -> the ``run: |`` script of every named step (a small reader
    for the block style the workflow uses; no YAML library needed)."""
    steps: dict[str, str] = {}
    lines = text.splitlines()
    for n, line in enumerate(lines):
        named = re.match(r"^(\s*)- name: (.+)$", line)
        if not named:
            continue
        indent = len(named[1]) + 2
        for m in range(n + 1, len(lines)):
            if lines[m].strip() and len(lines[m]) - len(lines[m].lstrip()) < indent:
                break
            if lines[m].strip() == "run: |":
                body = []
                for body_line in lines[m + 1 :]:
                    if body_line.strip() and len(body_line) - len(body_line.lstrip()) <= indent:
                        break
                    body.append(body_line[indent + 2 :])
                steps[named[2].strip()] = "\n".join(body).strip() + "\n"
                break
    return steps


def fill(script: str, values: dict[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        key = match[1].strip()
        assert key in values, f"the workflow uses ${{{{ {key} }}}}: the test must know it"
        return values[key]

    return re.sub(r"\$\{\{(.+?)\}\}", one, script)


def bash(script: str, cwd: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ["bash", "-eo", "pipefail", "-c", script],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def finish(process: subprocess.Popen[str]) -> tuple[int, str]:
    try:
        out, _ = process.communicate(timeout=STEP_TIMEOUT)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=STEP_TIMEOUT)
    return process.returncode, out


def environment(tmp_path: Path) -> dict[str, str]:
    """The installed toolkit first on PATH, as after the workflow's install step."""
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["GITHUB_STEP_SUMMARY"] = str(tmp_path / "step-summary.md")
    env.pop("PYTEST_ADDOPTS", None)
    return env


def outcomes(cells: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, bool]]:
    return {
        (c["client"], c["server"]): {s["name"]: s["passed"] for s in c["scenarios"]} for c in cells
    }


def test_workflow_steps_locally(tmp_path: Path) -> None:
    assert shutil.which("conformance", path=environment(tmp_path)["PATH"]), "not installed"
    steps = workflow_steps(WORKFLOW.read_text("utf-8"))
    shard_step = steps["run one shard of the matrix"]
    merge_step = steps["merge the shards into one dashboard"]
    summary_step = steps["show the dashboard in the step summary"]
    assert "--shard ${{ matrix.shard }}/${{ strategy.job-total }}" in shard_step
    env = environment(tmp_path)

    # the shard jobs, side by side, each in its own checkout-like directory
    jobs = {}
    for k in range(1, SHARDS + 1):
        workdir = tmp_path / f"job-{k}"
        workdir.mkdir()
        script = fill(shard_step, {"matrix.shard": str(k), "strategy.job-total": str(SHARDS)})
        jobs[k] = (workdir, bash(script, workdir, env))
    # one unsharded run to compare with, meanwhile
    full = tmp_path / "full"
    full.mkdir()
    whole = bash(
        "conformance matrix --workers 2 --quiet --json full.json || test $? -eq 1", full, env
    )
    # the artifact download: every shard's JSON into shards/
    merge_dir = tmp_path / "merge"
    (merge_dir / "shards").mkdir(parents=True)
    for k, (workdir, process) in jobs.items():
        status, out = finish(process)
        assert status == 0, out
        shutil.copy(workdir / f"shard-{k}.json", merge_dir / "shards")
    status, out = finish(whole)
    assert status == 0, out

    status, out = finish(bash(merge_step, merge_dir, env))
    assert status == 1, out  # the bundled matrix has pairs that do not interoperate
    assert "Traceback" not in out
    status, out = finish(bash(summary_step, merge_dir, env))
    assert status == 0, out

    merged = json.loads((merge_dir / "matrix.json").read_text("utf-8"))
    single = json.loads((full / "full.json").read_text("utf-8"))
    assert outcomes(merged["cells"]) == outcomes(single["cells"])
    assert merged["missing"] == []
    assert sorted(i["shard"] for i in merged["inputs"]) == [f"{k}/{SHARDS}" for k in (1, 2, 3)]
    assert {"role": "server", "name": "tutorial", "scenario": "separators", "peers": 3} in (
        merged["culprits"]
    )
    page = (merge_dir / "matrix.html").read_text("utf-8")
    for cell in single["cells"]:
        assert f'id="{cell["anchor"]}"' in page
    assert "likely the culprit" in page
    summary = Path(env["GITHUB_STEP_SUMMARY"]).read_text("utf-8")
    assert summary == (merge_dir / "matrix.md").read_text("utf-8")
    assert "| client \\ server | reference | tutorial |" in summary
    assert "3 shards joined" in summary


def test_shards_split_the_pairs_stably_and_completely() -> None:
    config = load()
    every = [(c.name, s.name) for c, s in pairs_of(config)]
    for n in (1, 2, 3, 4, 7):
        parts = [[(c.name, s.name) for c, s in pairs_of(config, (k, n))] for k in range(1, n + 1)]
        assert sorted(p for part in parts for p in part) == sorted(every)
        assert max(map(len, parts)) - min(map(len, parts)) <= 1
        again = [[(c.name, s.name) for c, s in pairs_of(config, (k, n))] for k in range(1, n + 1)]
        assert again == parts


def document(
    cells: list[tuple[str, str, bool]], shard: str = "1/1", spec: str = "ab"
) -> dict[str, Any]:
    return {
        "kind": "matrix",
        "config": "t.toml",
        "shard": shard,
        "provenance": {"spec_sha256": spec, "started": "2026-01-01T00:00:00+00:00"},
        "servers": [{"name": s, "command": ["srv", s]} for s in ("s1", "s2")],
        "clients": [{"name": c, "contract": "argv", "command": ["cli"]} for c in ("c1", "c2")],
        "scenarios": [{"name": "add", "summary": "add"}],
        "cells": [
            {
                "client": c,
                "server": s,
                "duration": 1.0,
                "scenarios": [
                    {"name": "add", "passed": ok, "message": "" if ok else "no", "transcript": ""}
                ],
            }
            for c, s, ok in cells
        ],
    }


def test_merge_marks_missing_pairs_and_culprits() -> None:
    one = Dashboard.from_document(document([("c1", "s1", True), ("c2", "s1", True)]), "a.json")
    two = Dashboard.from_document(document([("c1", "s2", False)], "2/2"), "b.json")
    assert one.missing == []  # one shard's own view: the others run elsewhere
    assert "missing" not in console(one)
    board = merge([("a.json", one), ("b.json", two)])
    assert board.missing == [("c2", "s2")]
    assert "1 pair(s) in no input: c2 x s2" in console(board)
    assert board.exit_code == 1
    assert board.culprits() == []  # s2 failed against one peer only: not enough to say
    three = Dashboard.from_document(document([("c2", "s2", False)], "3/3"), "c.json")
    board = merge([("a.json", one), ("b.json", two), ("c.json", three)])
    assert board.missing == []
    (culprit,) = board.culprits()
    assert (culprit.role, culprit.name, culprit.scenario, culprit.peers) == (
        "server",
        "s2",
        "add",
        2,
    )


@pytest.mark.parametrize(
    ("second", "why"),
    [
        (document([("c1", "s1", True)]), "the cell c1 x s1 is in both a.json and b.json"),
        (document([("c2", "s1", True)], spec="cd"), "judged against different spec texts"),
        ({**document([]), "servers": []}, "come from different matrix configs"),
        ({"cells": [{"client": "x"}]}, "b.json: not a matrix report"),
        ([1, 2], "b.json: not a conformance report"),
    ],
)
def test_merge_refuses_what_cannot_be_joined(
    tmp_path: Path,
    second: object,
    why: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "a.json").write_text(json.dumps(document([("c1", "s1", True)])), "utf-8")
    (tmp_path / "b.json").write_text(json.dumps(second), "utf-8")
    monkeypatch.chdir(tmp_path)
    status = merge_command(["a.json", "b.json"], out=sys.stdout, err=sys.stderr)
    err = capsys.readouterr().err
    assert status == 2
    assert err.count("\n") == 1
    assert why in err


def test_merge_takes_server_runs_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from conformance.reports import FAIL, RunResult, TestRecord, json_report

    run = RunResult(
        [TestRecord("t.py::test_a", ["ABP-REQ-1"], FAIL, message="broken")],
        target={"address": "127.0.0.1:2007", "service": "abp"},
    )
    json_report.write(run, tmp_path / "run.json")
    (tmp_path / "m.json").write_text(
        json.dumps(document([(c, s, True) for c in ("c1", "c2") for s in ("s1", "s2")])), "utf-8"
    )
    html, md = tmp_path / "d.html", tmp_path / "d.md"
    status = merge_command(
        [str(tmp_path / "m.json"), str(tmp_path / "run.json")],
        html=str(html),
        markdown=str(md),
        out=sys.stdout,
        err=sys.stderr,
    )
    assert status == 1  # the server run failed
    assert "abp server at 127.0.0.1:2007" in md.read_text("utf-8")
    assert "ABP-REQ-1" in html.read_text("utf-8")
    assert "server run" in capsys.readouterr().out


@pytest.mark.parametrize("bad", ["0/3", "4/3", "1/0", "x", "1-3", "1/3/3"])
def test_a_bad_shard_is_a_usage_error(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    from conformance.matrix.cli import main

    with pytest.raises(SystemExit) as info:
        main(["--shard", bad])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--shard: must be K/N with 1 <= K <= N" in err
