"""``conformance.matrix.cells``: a cell written as JSON reads back equal.

The JSON the reports and ``conformance report merge`` read is fixed: a cell
as an earlier run wrote it (no ``source``), and as an earlier merge wrote it
(a ``source``, no ``transcript_records``), must still load.
"""

from __future__ import annotations

import json
from dataclasses import replace

from conformance.harness.wire import Transcript
from conformance.matrix.cells import Cell, ScenarioResult, anchor_for
from conformance.matrix.config import load
from conformance.matrix.reports import Dashboard, document, joined_document, merge

RECORDS = (
    {"t": 0.0001, "conn": "c1", "dir": "--", "data": "", "note": "client connected"},
    {"t": 0.0002, "conn": "c1", "dir": ">>", "data": "fnd:a\\n", "note": ""},
    {"t": 0.0003, "conn": "c1", "dir": "<<", "data": "OK: x\\n", "note": ""},
)


def a_cell(client: str = "reference --legacy", server: str = "tutorial", source: str = "") -> Cell:
    return Cell(
        client,
        server,
        (
            ScenarioResult("add", True, "", 0.125),
            ScenarioResult(
                "rem", False, "rem b: expected an error", 1.5, "+ 0.0001s c1 --", RECORDS
            ),
        ),
        2.75,
        source,
    )


def through_json(data: object) -> object:
    return json.loads(json.dumps(data, ensure_ascii=True))


def test_a_cell_written_and_read_back_is_the_same() -> None:
    for cell in (a_cell(), a_cell(source="shard-2.json")):
        data = through_json(cell.as_json())
        assert isinstance(data, dict)
        assert Cell.from_json(data) == cell
        assert Cell.from_json(data).as_json() == data


def test_the_json_of_a_cell() -> None:
    data = a_cell().as_json()
    assert (data["client"], data["server"], data["passed"], data["total"]) == (
        "reference --legacy",
        "tutorial",
        1,
        2,
    )
    assert data["anchor"] == anchor_for("reference --legacy", "tutorial")
    assert data["anchor"] == "cell-reference-legacy--tutorial"
    assert "source" not in data  # a run's own cells come from no file
    rem = data["scenarios"][1]
    assert rem == {
        "name": "rem",
        "passed": False,
        "message": "rem b: expected an error",
        "duration": 1.5,
        "transcript": "+ 0.0001s c1 --",
        "transcript_records": list(RECORDS),
    }
    assert a_cell(source="a.json").as_json()["source"] == "a.json"


def test_a_recorded_scenario_keeps_its_transcript() -> None:
    transcript = Transcript()
    transcript.note("c1", "client connected")
    transcript.add("c1", ">>", b"fnd:a\n")
    result = ScenarioResult.recorded("fnd", True, "", 0.5, transcript)
    assert result.transcript == transcript.render()
    assert [dict(r) for r in result.records] == transcript.as_json()
    assert ScenarioResult.from_json(result.as_json()) == result


def test_durations_are_written_to_the_millisecond() -> None:
    cell = Cell("c", "s", (ScenarioResult("add", True, duration=0.1234567),), 1.0004999)
    data = cell.as_json()
    assert data["duration"] == 1.0
    assert data["scenarios"][0]["duration"] == 0.123


def test_cells_as_earlier_runs_and_merges_wrote_them_still_load() -> None:
    run = {
        "client": "c1",
        "server": "s1",
        "passed": 0,
        "total": 1,
        "duration": 1.0,
        "scenarios": [
            {
                "name": "add",
                "passed": False,
                "message": "no",
                "duration": 0.5,
                "transcript": "t",
                "transcript_records": [dict(RECORDS[0])],
            }
        ],
        "anchor": "cell-c1--s1",
    }
    merged = {**run, "source": "a.json"}
    merged["scenarios"] = [
        {"name": "add", "passed": False, "message": "no", "duration": 0.5, "transcript": "t"}
    ]
    bare = {"client": "c1", "server": "s1", "scenarios": [{"name": "add", "passed": False}]}
    scenario = ScenarioResult("add", False, "no", 0.5, "t")
    assert Cell.from_json(run) == Cell("c1", "s1", (replace(scenario, records=(RECORDS[0],)),), 1.0)
    assert Cell.from_json(merged) == Cell("c1", "s1", (scenario,), 1.0, "a.json")
    assert Cell.from_json(merged, "b.json").source == "b.json"  # the file it was read from
    assert Cell.from_json(bare) == Cell("c1", "s1", (ScenarioResult("add", False),))


def test_a_run_document_and_a_merged_one_read_back_their_cells() -> None:
    config = load()
    cells = [
        a_cell(c.name, s.name) if n % 2 else Cell(c.name, s.name, (ScenarioResult("add", True),))
        for n, (c, s) in enumerate((c, s) for c in config.clients for s in config.servers)
    ]
    doc = through_json(document(config, cells, 3.0, 1))
    assert isinstance(doc, dict)
    board = Dashboard.from_document(doc, "")
    assert board.cells == cells
    again = through_json(
        joined_document(merge([("m.json", Dashboard.from_document(doc, "m.json"))]))
    )
    assert isinstance(again, dict)
    assert [Cell.from_json(c) for c in again["cells"]] == [
        replace(c, source="m.json") for c in cells
    ]
    # a dashboard's cells come from the file it read: a merge names the input
    assert {c.source for c in Dashboard.from_document(again, "all.json").cells} == {"all.json"}
