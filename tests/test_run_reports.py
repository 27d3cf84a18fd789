"""``conformance run`` with the CI options, end to end, as real subprocesses:
``--markdown``, ``--badge``, ``--baseline`` (and ``conformance baseline
write``), ``-q``, ``--no-transcripts``, ``-x`` / ``--maxfail``, ``--test`` and
the rerun command each failure prints, ``conformance --version``.

The target is the tutorial-style server of the corpus, started by the suite
(``--server-cmd``), judged on ABP-REQ-1 and ABP-REQ-2 only: it fails some of
those tests and passes others, the same ones on every run.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.reports.provenance import spec_sha256, toolkit_version

PY = sys.executable
RUN_TIMEOUT = 240.0
TUTORIAL = f"{shlex.quote(PY)} -m conformance.corpus.tutorial.addressbook_server"
TARGET = ["--server-cmd", TUTORIAL + " --port {port} --book {tmpdir}/book.json"]
SUBSET = ["--requirement", "ABP-REQ-1", "--requirement", "ABP-REQ-2", "-n", "2"]


def conformance(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PY, "-m", "conformance", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )


@pytest.fixture(scope="module")
def first_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """One run with every report; several tests read it."""
    where = tmp_path_factory.mktemp("first")
    reports = ["--json", "r.json", "--markdown", "r.md", "--badge", "r.svg", "--junit-xml", "r.xml"]
    done = conformance("run", *TARGET, *SUBSET, *reports, "--html", "r.html", cwd=where)
    return where, done


def test_version(tmp_path: Path) -> None:
    done = conformance("--version", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"conformance (abp-toolkit) {toolkit_version()}"


def test_every_report_travels(first_run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    where, done = first_run
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr
    data = json.loads((where / "r.json").read_text("utf-8"))
    prov = data["provenance"]
    assert prov["command"].startswith("conformance run --server-cmd")
    assert "--requirement ABP-REQ-1" in prov["command"]
    assert prov["spec_sha256"] == spec_sha256()
    assert prov["seed"] == 0
    assert data["summary"]["failed"] > 0
    assert data["summary"]["passed"] > 0
    md = (where / "r.md").read_text("utf-8")
    assert md.startswith("## ❌ ABP/1 conformance: FAIL")
    assert prov["command"].replace("|", "\\|") in md or "conformance run --server-cmd" in md
    assert 'aria-label="ABP/1: ' in (where / "r.svg").read_text("utf-8")
    assert "MUST" in (where / "r.svg").read_text("utf-8")
    xml = (where / "r.xml").read_text("utf-8")
    assert 'name="run.spec"' in xml
    page = (where / "r.html").read_text("utf-8")
    assert 'id="show-failed"' in page
    # the summary comes last, after the files are written
    assert done.stdout.rstrip().splitlines()[-1].startswith("verdict: FAIL")


def test_the_rerun_command_reruns_just_that_test(
    first_run: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    where, done = first_run
    reruns = [line.split("rerun: ", 1)[1] for line in done.stdout.splitlines() if "rerun: " in line]
    assert reruns, done.stdout[-3000:]
    words = shlex.split(reruns[0])
    assert words[:2] == ["conformance", "run"]
    assert "--json" not in words
    assert "--requirement" not in words
    nodeid = words[words.index("--test") + 1]
    again = conformance(*words[1:], cwd=where)
    assert again.returncode == 1, again.stdout[-3000:] + again.stderr
    assert "1 tests: 0 passed, 1 failed" in again.stdout
    assert nodeid in again.stdout


def test_quiet_and_no_transcripts(first_run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    where, done = first_run
    assert "transcript (time since the test began" in done.stdout
    quiet = conformance("run", *TARGET, *SUBSET, "-q", cwd=where)
    assert quiet.returncode == 1
    assert "rerun:" not in quiet.stdout
    assert "ABP-REQ-1" in quiet.stdout
    bare = conformance("run", *TARGET, *SUBSET, "--no-transcripts", cwd=where)
    assert "rerun:" in bare.stdout
    assert "transcript (time since the test began" not in bare.stdout


def test_a_baseline_gates_on_new_failures_only(
    first_run: tuple[Path, subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    where, _ = first_run
    baseline = tmp_path / "baseline.toml"
    done = conformance(
        "baseline", "write", str(baseline), "--from", str(where / "r.json"), cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert "baseline written" in done.stdout

    again = conformance("run", *TARGET, *SUBSET, "--baseline", str(baseline), "-q", cwd=tmp_path)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr
    assert "no failure beyond those the baseline expects" in again.stdout

    data = json.loads((where / "r.json").read_text("utf-8"))
    passing = next(t["nodeid"] for t in data["tests"] if t["outcome"] == "PASS")
    with baseline.open("a", encoding="utf-8") as stream:
        stream.write(f'\n[[expected]]\ntest = "{passing}"\nreason = "was broken"\n')
    fixed = conformance("run", *TARGET, *SUBSET, "--baseline", str(baseline), cwd=tmp_path)
    assert fixed.returncode == 1, fixed.stdout[-3000:]
    assert "Unexpected passes" in fixed.stdout
    assert passing in fixed.stdout

    with baseline.open("a", encoding="utf-8") as stream:
        stream.write('\n[[expected]]\ntest = "conformance/no_such_test.py::x"\nreason = "r"\n')
    unknown = conformance("run", *TARGET, *SUBSET, "--baseline", str(baseline), cwd=tmp_path)
    assert unknown.returncode == 2
    assert unknown.stderr.count("\n") == 1
    assert "no test conformance/no_such_test.py::x in the suite" in unknown.stderr
    assert "starting the server" not in unknown.stdout  # refused before anything ran


def test_maxfail_stops_early(tmp_path: Path) -> None:
    done = conformance("run", *TARGET, *SUBSET[:-2], "-n", "0", "--maxfail", "2", cwd=tmp_path)
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr
    assert "stopped early" in done.stdout
    assert "0 passed, 2 failed" in done.stdout or ", 2 failed," in done.stdout


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--test", "conformance/nowhere.py::test_x"], "no such test file"),
        (["--baseline", "missing.toml"], "cannot read the baseline missing.toml"),
        (
            ["--badge", "no/such/dir/b.svg"],
            "--badge no/such/dir/b.svg: the directory does not exist",
        ),
        (["-x", "--maxfail", "2"], "not allowed with argument"),
        (["--maxfail", "0"], "--maxfail"),
    ],
)
def test_usage_errors_are_one_line(tmp_path: Path, args: list[str], said: str) -> None:
    done = conformance("run", *TARGET, *args, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1, done.stderr
    assert said in done.stderr


# ------------------------------------------------------------------ the docs


def documented_commands() -> list[str]:
    """Every ``conformance run|baseline|report|matrix`` command line in the
    README's and the guide's code (the CI recipe's folded ``run: >`` joined)."""
    root = Path(__file__).resolve().parent.parent
    found = []
    for doc in (root / "README.md", root / "docs" / "conformance-guide.md"):
        lines = doc.read_text("utf-8").splitlines()
        for n, line in enumerate(lines):
            text = line.strip().removeprefix("$ ")
            if text.startswith("run: >"):  # a folded YAML scalar: the next indented lines
                indent = len(lines[n + 1]) - len(lines[n + 1].lstrip())
                body = []
                for more in lines[n + 1 :]:
                    if len(more) - len(more.lstrip()) < indent or not more.strip():
                        break
                    body.append(more.strip())
                text = " ".join(body)
            if re.match(r"conformance (run|baseline|report|matrix)\b", text) and "…" not in text:
                found.append(text)
    return found


def test_the_documented_ci_commands_parse() -> None:
    from conformance.cli import build_parser
    from conformance.matrix.cli import build_parser as matrix_parser
    from conformance.reports.cli import baseline_parser, report_parser

    commands = documented_commands()
    assert any("--baseline" in c and "--markdown" in c and "--badge" in c for c in commands)
    assert any(c.startswith("conformance report merge") for c in commands)
    assert any(c.startswith("conformance baseline write") for c in commands)
    parsers = {"run": build_parser, "matrix": matrix_parser, "report": report_parser,
               "baseline": baseline_parser}  # fmt: skip
    for command in commands:
        words = shlex.split(command, comments=True)[1:]
        kind = words[0]
        argv = words if kind == "run" else words[1:]
        try:
            parsers[kind]().parse_args(argv)
        except SystemExit as exc:
            pytest.fail(f"the docs show a command that does not parse ({exc.code}): {command}")
