"""`dasct where DEFECT|ID|PATH`: where an enhancement, a defect's fix or an item is, at
which revision, since when; on two real environments (inventory_kit)."""

from __future__ import annotations

import json

from engine_kit import cli
from inventory_kit import FEATURE, Sample, dasct, sha


def test_where_by_defect_id_and_path(built: Sample) -> None:
    sample = built
    by_defect = json.loads(dasct(sample, "where", "PROJ-7", "--format", "json"))
    assert by_defect["format"] == "dasct-where" and by_defect["version"] == 1
    assert by_defect["matches"] == {"enhancement": False, "defect": ["fix-7"], "item": None}
    assert {(loc["environment"], loc["enhancement"], loc["state"], loc["revision"])
            for loc in by_defect["locations"]} == {
        ("model", "fix-7", "migrated", sample.fix), ("production", "fix-7", "migrated", sample.fix)}
    model = next(loc for loc in by_defect["locations"] if loc["environment"] == "model")
    # feat-8 changed the fix's file again in model: where says so.
    assert model["replaced"] == {"file:app/main.py": "feat-8"}
    assert set(model) == {"environment", "enhancement", "state", "date", "revision", "item",
                          "sha256", "replaced"}

    by_id = json.loads(dasct(sample, "where", "feat-8", "--format", "json"))
    assert by_id["matches"]["enhancement"] is True
    assert {loc["environment"]: loc["state"] for loc in by_id["locations"]} == {
        "model": "migrated", "production": "scheduled"}

    by_path = json.loads(dasct(sample, "where", "app/feature.py", "--format", "json"))
    assert by_path["matches"]["item"] == "file:app/feature.py"
    assert [(loc["environment"], loc["enhancement"], loc["sha256"], loc["revision"])
            for loc in by_path["locations"]] == [
        ("model", "feat-8", sha(FEATURE["app/feature.py"]), sample.feature)]


def test_where_a_file_is_deployed_from_which_enhancement_in_each_environment(built: Sample) -> None:
    sample = built
    proc = cli(sample.repo.path / "app", "where", "main.py")  # typed in a subdirectory
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "main.py: item file:app/main.py (dates UTC)"
    rows = {line.split()[0]: line.split() for line in lines[2:]}
    assert rows["model"][1:3] == ["feat-8", "file:app/main.py"]
    assert rows["production"][1:3] == ["fix-7", "file:app/main.py"]
    assert rows["production"][5] == sample.fix[:12]
    assert rows["model"][4].endswith("Z")


def test_where_a_sql_change(built: Sample) -> None:
    sample = built
    doc = json.loads(dasct(sample, "where", "sql:items", "--format", "json"))
    assert {loc["environment"] for loc in doc["locations"]} == {"model", "production"}
    assert all(loc["enhancement"] == "fix-7" for loc in doc["locations"])


def test_where_nothing_known_is_one_line_and_exit_1(built: Sample) -> None:
    proc = cli(built.repo.path, "where", "PROJ-999")
    assert proc.returncode == 1
    assert proc.stderr == ("dasct: 'PROJ-999' is no enhancement, defect or item known in "
                           "model, production\n")
