"""``conformance matrix``: every client against every server, and its reports.

The bundled matrix runs once as a real subprocess (``python -m conformance
matrix`` with all three report formats) and the tests read what it wrote.
What it must show, by pair:

- reference client x reference server: every scenario passes;
- reference client ``--legacy`` x tutorial server: 5/8. ``rem`` and
  ``missing`` fail (the tutorial server answers "No entry found for NAME",
  free text and not ``ERROR:``, so the client exits 0), ``separators`` fails
  (the tutorial server's ``split(':')`` drops the connection on an entry with
  a second ``:``);
- the tutorial menu client x reference server: every scenario passes (the
  reference server takes the unterminated requests after its quiet period).

Config errors are checked in-process through ``main``: they exit 2 before
anything runs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conformance.matrix.cli import main
from conformance.matrix.config import ConfigError, load, parse

RUN_TIMEOUT = 180.0
PY = sys.executable


@dataclass
class MatrixRun:
    returncode: int
    stdout: str
    stderr: str
    report: dict[str, Any]
    markdown: str
    html: str

    def cell(self, client: str, server: str) -> dict[str, Any]:
        return next(
            c for c in self.report["cells"] if c["client"] == client and c["server"] == server
        )

    @staticmethod
    def failed(cell: dict[str, Any]) -> set[str]:
        return {s["name"] for s in cell["scenarios"] if not s["passed"]}


def run_bundled(out: Path) -> MatrixRun:
    paths = {kind: out / f"matrix.{kind}" for kind in ("md", "json", "html")}
    argv = [PY, "-m", "conformance", "matrix", "--workers", "2"]
    argv += ["--markdown", str(paths["md"]), "--json", str(paths["json"])]
    argv += ["--html", str(paths["html"])]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False)
    report = json.loads(paths["json"].read_text("utf-8")) if paths["json"].exists() else {}
    texts = [p.read_text("utf-8") if p.exists() else "" for p in (paths["md"], paths["html"])]
    return MatrixRun(done.returncode, done.stdout, done.stderr, report, *texts)


def test_bundled_matrix(tmp_path: Path) -> None:
    """One run of the bundled matrix (it takes a while), every check on it."""
    bundled = run_bundled(tmp_path)
    check_every_pair_ran(bundled)
    check_cells(bundled)
    check_console(bundled)
    check_markdown(bundled)
    check_html(bundled)


def check_every_pair_ran(bundled: MatrixRun) -> None:
    assert bundled.report, bundled.stdout + bundled.stderr
    assert "Traceback" not in bundled.stderr, bundled.stderr
    names = {(c["client"], c["server"]) for c in bundled.report["cells"]}
    clients = {"reference", "reference --legacy", "tutorial"}
    assert names == {(c, s) for c in clients for s in ("reference", "tutorial")}
    assert all(c["total"] == 8 for c in bundled.report["cells"])
    # the tutorial programs do not interoperate everywhere: that is the point
    assert bundled.returncode == 1, bundled.stdout
    assert bundled.report["exit_code"] == 1


def check_cells(bundled: MatrixRun) -> None:
    cell = bundled.cell("reference", "reference")
    assert cell["passed"] == cell["total"] == 8, json.dumps(cell, indent=1)[:4000]
    cell = bundled.cell("tutorial", "reference")
    assert MatrixRun.failed(cell) == set(), json.dumps(cell, indent=1)[:4000]
    cell = bundled.cell("reference --legacy", "tutorial")
    assert MatrixRun.failed(cell) == {"rem", "missing", "separators"}, json.dumps(cell)[:4000]
    rem = next(s for s in cell["scenarios"] if s["name"] == "rem")
    assert "expected an error" in rem["message"]
    assert "No entry found for mx-rem" in rem["transcript"]  # the relay's wire record
    records = rem["transcript_records"]
    assert any(r["dir"] == ">>" and r["data"].startswith("fnd:mx-rem") for r in records)
    # issue 12: a cell says what actually arrived, not only "no answer"
    cell = bundled.cell("reference", "tutorial")
    add = next(s for s in cell["scenarios"] if s["name"] == "add")
    assert "with no LF: 'Entry for mx-add added'" in add["message"], add["message"]
    assert "try --legacy" in add["message"]


def check_console(bundled: MatrixRun) -> None:
    out = bundled.stdout
    assert "client \\ server" in out
    row = next(line for line in out.splitlines() if line.startswith("reference (argv)"))
    assert "8/8 ok" in row
    assert "failures:" in out
    assert "reference --legacy x tutorial: 5/8" in out
    assert "report written:" in out


def check_markdown(bundled: MatrixRun) -> None:
    """Failed cells link to their failures, each with its transcript."""
    md = bundled.markdown
    assert "| client \\ server | reference | tutorial |" in md
    cell = bundled.cell("reference --legacy", "tutorial")
    assert f"(#{cell['anchor']})" in md
    assert f'<a id="{cell["anchor"]}"></a>' in md
    assert "**separators**: " in md
    assert "```" in md


def check_html(bundled: MatrixRun) -> None:
    """One self-contained file: no scripts, nothing fetched."""
    page = bundled.html
    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in page
    assert "http://" not in page
    assert "https://" not in page
    cell = bundled.cell("reference --legacy", "tutorial")
    assert f'href="#{cell["anchor"]}"' in page
    assert f'id="{cell["anchor"]}"' in page
    assert "<pre>" in page


# ------------------------------------------------------------ configuration


def test_bundled_config_is_valid() -> None:
    config = load()
    assert [s.name for s in config.servers] == ["reference", "tutorial"]
    assert {c.contract for c in config.clients} == {"argv", "menu"}
    assert all(PY in c.command[0] for c in config.clients)


GOOD_SERVER = '[[server]]\nname = "s"\ncommand = "srv --port {port}"\n'
GOOD_CLIENT = '[[client]]\nname = "c"\nargv = "cli {host} {port} {op} {name} {entry}"\n'


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("not toml [", "not valid TOML"),
        (GOOD_CLIENT, "no [[server]]"),
        (GOOD_SERVER, "no [[client]]"),
        ('[[server]]\nname = "s"\ncommand = "srv"\n' + GOOD_CLIENT, "needs {port}"),
        (GOOD_SERVER + '[[client]]\nname = "c"\nargv = "cli {port}"\n', "needs {op}"),
        (GOOD_SERVER + '[[client]]\nname = "c"\nmenu = "m {port} {bogus}"\n', "{bogus}"),
        (GOOD_SERVER + '[[client]]\nname = "c"\nmenu = "m {port}"\nargv = "x"\n', "exactly one"),
        (GOOD_SERVER + GOOD_CLIENT + GOOD_CLIENT, "used twice"),
        (GOOD_SERVER + GOOD_CLIENT + "[matrix]\ntimeout = -1\n", "timeout"),
        (GOOD_SERVER + GOOD_CLIENT + "[extra]\n", "unknown section"),
    ],
)
def test_bad_configs_are_refused(text: str, why: str) -> None:
    with pytest.raises(ConfigError, match=".*" + why.replace("[", r"\[").replace("{", r"\{")):
        parse(text, "test.toml")


def test_config_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(GOOD_SERVER, encoding="utf-8")
    assert main(["--config", str(bad)]) == 2
    assert main(["--config", str(tmp_path / "missing.toml")]) == 2
    assert main(["--json", str(tmp_path / "no" / "such" / "dir.json")]) == 2
    missing = tmp_path / "missing-program.toml"
    missing.write_text(GOOD_SERVER + GOOD_CLIENT, encoding="utf-8")
    assert main(["--config", str(missing)]) == 2
    err = capsys.readouterr().err
    assert "no [[client]]" in err
    assert "cannot read" in err
    assert "cannot find the program 'srv'" in err
    assert "Traceback" not in err


def test_small_matrix_in_process(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A corpus client that passes, one that breaks ':' entries, and a server
    command that cannot start: its cells fail with the reason, exit 1."""
    py = f"'{PY}'"
    corpus = f"{py} -m conformance.corpus.clients"
    args = "-- {host} {port} {op} {name} {entry}"
    config = tmp_path / "interop.toml"
    config.write_text(
        f"""
[matrix]
timeout = 5
[[server]]
name = "reference"
command = "{py} -m reference_server --host {{host}} --port {{port}} --db {{tmpdir}}/b.db"
[[server]]
name = "broken"
command = "{py} -c 'raise SystemExit(3)' {{port}}"
[[client]]
name = "correct"
argv = "{corpus} --defect correct {args}"
[[client]]
name = "mangler"
argv = "{corpus} --defect mangles-colon {args}"
""",
        encoding="utf-8",
    )
    report = tmp_path / "m.json"
    assert main(["--config", str(config), "--json", str(report), "-n", "2", "-q"]) == 1
    data = json.loads(report.read_text("utf-8"))
    cells = {(c["client"], c["server"]): c for c in data["cells"]}
    assert cells["correct", "reference"]["passed"] == 8
    mangled = {s["name"] for s in cells["mangler", "reference"]["scenarios"] if not s["passed"]}
    assert mangled == {"separators"}
    broken = cells["correct", "broken"]["scenarios"]
    assert all("did not start" in s["message"] for s in broken)
    assert "correct (argv)" in capsys.readouterr().out
