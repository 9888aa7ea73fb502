"""`dasct inventory --env`, `inventory diff A B` and `inventory verify --env` on two real
environments filled by `dasct trigger create` and `dasct migrate run` (inventory_kit)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from engine_kit import cli, make_env, quiet, stage
from inventory_kit import FEATURE, FIX, Sample, dasct, sha


def test_inventory_lists_item_enhancement_hash_and_when(built: Sample) -> None:
    sample = built
    doc = json.loads(dasct(sample, "inventory", "--env", "model", "--format", "json"))
    assert doc["format"] == "dasct-inventory" and doc["version"] == 1
    assert doc["environment"] == "model"
    got = {i["item"]: (i["enhancement"], i["sha256"]) for i in doc["items"]}
    assert got == {
        "file:app/main.py": ("feat-8", sha(FEATURE["app/main.py"])),
        "file:app/feature.py": ("feat-8", sha(FEATURE["app/feature.py"])),
        "sql:items": ("fix-7", sha(FIX["db/deploy/items.sql"])),
    }
    assert all(set(i) == {"item", "enhancement", "sha256", "deployed_at"} for i in doc["items"])
    assert all(i["deployed_at"].endswith("Z") and "T" in i["deployed_at"] for i in doc["items"])
    text = dasct(sample, "inventory", "--env", "production").splitlines()
    assert text[0] == "production: 2 deployed item(s) (dates UTC):"
    assert text[1].split() == ["ITEM", "ENHANCEMENT", "SHA256", "DEPLOYED"]
    row = next(line for line in text if "file:app/main.py" in line)
    assert "fix-7" in row and sha(FIX["app/main.py"])[:12] in row
    # Columns line up: every row's hash starts where the header's SHA256 does.
    column = text[1].index("SHA256")
    assert all(len(line[column:].split()[0]) == 12 for line in text[2:])


def test_diff_names_missing_different_and_extra_items(sample: Sample) -> None:
    proc = cli(sample.repo.path, "inventory", "diff", "model", "production", "--format", "json")
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    assert (doc["format"], doc["a"], doc["b"]) == ("dasct-inventory-diff", "model", "production")
    kinds = {d["item"]: d["kind"] for d in doc["differences"]}
    assert kinds == {"file:app/feature.py": "missing", "file:app/main.py": "different"}
    main = next(d for d in doc["differences"] if d["item"] == "file:app/main.py")
    assert main["a"]["enhancement"] == "feat-8" and main["b"]["enhancement"] == "fix-7"
    back = json.loads(cli(sample.repo.path, "inventory", "diff", "production", "model", "--format",
                          "json").stdout)
    assert {d["item"]: d["kind"] for d in back["differences"]}["file:app/feature.py"] == "extra"
    text = cli(sample.repo.path, "inventory", "diff", "model", "production")
    assert text.returncode == 1
    assert "missing in production" in text.stdout and "different hash" in text.stdout
    # Once production has feat-8 too, the two agree.
    dasct(sample, "trigger", "withdraw", "feat-8", "--env", "production")
    dasct(sample, "trigger", "create", "--range", f"{sample.fix}..{sample.feature}", "--env",
          "production", "--id", "feat-8b")
    dasct(sample, "migrate", "run", "--env", "production", "--now")
    same = cli(sample.repo.path, "inventory", "diff", "model", "production")
    assert same.returncode == 0, same.stdout + same.stderr
    assert same.stdout == "model and production have the same 3 item(s)\n"


def test_verify_is_one_line_when_clean(built: Sample) -> None:
    sample = built
    out = dasct(sample, "inventory", "verify", "--env", "model")
    assert out == ("model: 2 file(s) match the inventory, 1 SQL change(s) pass their verify "
                   "script\n")


def hand_edit(sample: Sample) -> None:
    (sample.root("model") / "app/main.py").write_text("print('hot fix by hand')\n")
    conn = sqlite3.connect(sample.db("model"))
    conn.execute("DROP TABLE items")
    conn.commit()
    conn.close()


def test_verify_names_a_hand_edited_file_and_a_dropped_table(sample: Sample) -> None:
    hand_edit(sample)
    proc = cli(sample.repo.path, "inventory", "verify", "--env", "model")
    assert proc.returncode == 1
    assert "drift: file:app/main.py: content changed" in proc.stdout
    assert "drift: sql:items: its verify script fails now" in proc.stdout
    assert "no such table: items" in proc.stdout
    assert proc.stderr == ("dasct: model: 2 item(s) no longer match the inventory: "
                           "file:app/main.py, sql:items\n")
    # production was not touched
    assert cli(sample.repo.path, "inventory", "verify", "--env", "production").returncode == 0


def test_verify_names_a_deleted_file_and_says_what_it_could_not_check(sample: Sample) -> None:
    (sample.root("model") / "app/feature.py").unlink()
    for path in (sample.repo.path / ".dasct/staging/objects").rglob("*"):
        if path.is_file() and path.read_bytes() == FIX["db/verify/items.sql"].encode():
            path.unlink()
    proc = cli(sample.repo.path, "inventory", "verify", "--env", "model")
    assert proc.returncode == 1
    assert "drift: file:app/feature.py: missing on the target" in proc.stdout
    assert "also: sql:items not checked: its verify script is no longer in staging" \
        in proc.stdout


def test_unknown_environment_and_missing_env_are_one_line(built: Sample) -> None:
    proc = cli(built.repo.path, "inventory", "--env", "staging")
    assert proc.returncode == 1
    assert proc.stderr.startswith("dasct: ") and proc.stderr.count("\n") == 1
    assert "unknown environment 'staging'" in proc.stderr
    bare = cli(built.repo.path, "inventory")
    assert bare.returncode == 1 and "--env ENV is required" in bare.stderr


def test_verify_runs_the_verify_scripts_on_postgresql(tmp_path: Path, pg_url: str) -> None:
    import psycopg

    from dasct.migrate import drift

    env = make_env(tmp_path, database=pg_url)
    stage(env, "E1", sql=[("items", "CREATE TABLE items (id int, name text);",
                           "DROP TABLE items;", "SELECT id, name FROM items WHERE false;")])
    assert quiet(env).migrated == ["E1"]
    clean = drift.verify(env)
    assert (clean.sql_checked, clean.drift, clean.unchecked) == (1, [], [])
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE items RENAME COLUMN name TO label")
    found = drift.verify(env)
    assert [item for item, _ in found.drift] == ["sql:items"]
    assert "name" in found.drift[0][1]
