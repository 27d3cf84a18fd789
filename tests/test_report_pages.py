"""The HTML pages in a real browser: headless Chromium from the distribution.

A copy of each page gets a probe script at its end that does what a reader
does (clicks each filter choice) and writes what the browser then lays out
(which cards are displayed, the target block's text, the cards' titles) into
the DOM; ``chromium --dump-dom`` prints it. The pages themselves hold no
script: the filter is CSS, and only a browser can say that it works. A
screenshot checks that the page renders at all.

CI installs the browser with ``apt-get install -y chromium`` (Debian/Ubuntu);
these tests skip, saying why, only where no Chromium is installed.
"""

from __future__ import annotations

import contextlib
import html as htmllib
import json
import os
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
from test_matrix_ci import document
from test_report_formats import mixed_result

from conformance.matrix.reports import Dashboard, html_report
from conformance.reports import FAIL, PASS, SKIP, WARN, RunResult, TestRecord, html

BROWSER_TIMEOUT = 60.0
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
)

PROBE = """
<script>
(function () {
  const seen = {};
  const shown = () => Array.from(document.querySelectorAll('.card'))
    .filter(c => getComputedStyle(c).display !== 'none' && c.getBoundingClientRect().height > 0)
    .map(c => c.dataset.test || c.id);
  for (const choice of ['failed', 'warned', 'skipped', 'all']) {
    const radio = document.getElementById('show-' + choice);
    if (!radio) { seen[choice] = null; continue; }
    radio.click();
    seen[choice] = shown();
  }
  const facts = {};
  for (const dl of document.querySelectorAll('dl.facts')) facts[dl.id] = dl.innerText;
  seen.facts = facts;
  seen.titles = Array.from(document.querySelectorAll('.card > summary')).map(s => s.innerText);
  seen.order = Array.from(document.querySelectorAll('.card')).map(c => c.className);
  const probe = document.createElement('pre');
  probe.id = 'abp-probe';
  probe.textContent = JSON.stringify(seen);
  document.body.appendChild(probe);
})();
</script>
"""


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def run_browser(args: list[str], profile: Path) -> subprocess.CompletedProcess[str]:
    """Chromium in its own session, killed as a group by its PID at the end
    (its renderer and helper processes with it)."""
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("no Chromium installed (apt-get install -y chromium)")
    argv = [chromium, *FLAGS, f"--user-data-dir={profile}", *args]
    process = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=BROWSER_TIMEOUT)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=BROWSER_TIMEOUT)
    return subprocess.CompletedProcess(argv, process.returncode, out, err)


def probe_page(page: str, tmp_path: Path) -> dict[str, Any]:
    """What the browser shows of ``page`` (see PROBE)."""
    assert "</body>" in page
    path = tmp_path / "probed.html"
    path.write_text(page.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    done = run_browser(["--dump-dom", path.as_uri()], tmp_path / "profile")
    marker = '<pre id="abp-probe">'
    assert marker in done.stdout, done.stderr[-2000:]
    text = done.stdout.split(marker, 1)[1].split("</pre>", 1)[0]
    data: dict[str, Any] = json.loads(htmllib.unescape(text))
    return data


def test_run_page_filter_hides_the_other_cards(tmp_path: Path) -> None:
    result = mixed_result()
    nodeids = {r.outcome: r.nodeid for r in result.records}
    seen = probe_page(html.render(result), tmp_path)
    assert seen["failed"] == [nodeids[FAIL]]  # the passed (and other) cards are hidden
    assert seen["warned"] == [nodeids[WARN]]
    assert seen["skipped"] == [nodeids[SKIP]]
    assert seen["all"] == [nodeids[o] for o in (FAIL, WARN, SKIP, PASS)]  # failures first
    assert seen["order"][0] == "card FAIL"


def test_run_page_target_block_and_titles_read_well(tmp_path: Path) -> None:
    seen = probe_page(html.render(mixed_result()), tmp_path)
    target = seen["facts"]["target"]
    assert "127.0.0.1:2007" in target
    assert "None" not in target
    assert "False" not in target
    run = seen["facts"]["run"]
    assert "conformance run --server 127.0.0.1:2007" in run
    assert "2026-01-02T03:04:05" in run
    assert seen["titles"][0].startswith("FAIL ABP-REQ-2 ")  # the requirement it broke


def test_run_page_renders(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    html.write(mixed_result(), page)
    shot = tmp_path / "shot.png"
    done = run_browser(
        ["--screenshot=" + str(shot), "--window-size=1200,1600", page.as_uri()],
        tmp_path / "profile",
    )
    assert shot.is_file(), done.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 10_000  # a rendered page, not a blank one


def test_a_page_with_hostile_text_stays_inert(tmp_path: Path) -> None:
    evil = "<img src=x onerror=\"document.title='owned'\"><script>document.title='owned'</script>"
    record = TestRecord(
        "conformance/suites/server/test_x.py::test_evil", ["ABP-REQ-1"], FAIL, message=evil
    )
    page = html.render(RunResult([record], target={"address": evil}))
    path = tmp_path / "evil.html"
    path.write_text(page.replace("</body>", "<pre id='t'></pre></body>"), encoding="utf-8")
    done = run_browser(["--dump-dom", path.as_uri()], tmp_path / "profile")
    assert "<title>ABP/1 conformance" in done.stdout, done.stderr[-2000:]  # no script ran
    assert "<img" not in done.stdout  # the text stayed text


def test_matrix_page_in_the_same_style(tmp_path: Path) -> None:
    doc = document([("c1", "s1", True), ("c1", "s2", False), ("c2", "s2", False)])
    doc["provenance"]["command"] = "conformance matrix --json m.json"
    board = Dashboard.from_document(doc, "m.json")
    seen = probe_page(html_report(board), tmp_path)
    assert seen["failed"] == ["cell-c1--s2", "cell-c2--s2"]  # the passing cell is hidden
    assert seen["all"] == ["cell-c1--s1", "cell-c1--s2", "cell-c2--s2"]
    run = seen["facts"]["run"]
    assert "conformance matrix --json m.json" in run
    assert "2026-01-01T00:00:00" in run
