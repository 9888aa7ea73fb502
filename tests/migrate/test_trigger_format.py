"""The trigger file format: writing, reading back, and refusing what cannot be trusted."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from dasct.migrate import trigger as t
from dasct.migrate import trigger_check as trigc
from dasct.migrate import trigger_read as trigr
from dasct.migrate import trigger_write as tw
from dasct.migrate.trigger import FileChange, SqlChange, StepCommand, TriggerError

KEY = b"not-a-real-key"
T0 = datetime(2026, 11, 23, 23, 0, tzinfo=timezone.utc)


def make(staging: Path, *, key: bytes | None = None, env: str = "model") -> t.Trigger:
    """A trigger with one SQL change, three file operations and a command."""
    deploy = tw.write_payload(staging, b"create table x (a int);\n")
    revert = tw.write_payload(staging, b"drop table x;\n")
    new = tw.write_payload(staging, b"print('new')\n")
    old = t.sha256_hex(b"print('old')\n")
    doc = tw.document(
        id="E-1", system="app", environment=env, not_before=T0,
        expires=T0 + timedelta(hours=72), defects=["PROJ-1"], commits=["a" * 40],
        sql=[SqlChange("x", deploy, revert, None)],
        files=[
            FileChange("modify", "src/app.py", None, old, new, 0o644),
            FileChange("add", "bin/run", None, None, new, 0o755),
            FileChange("delete", "old.txt", None, old, None, 0o644),
        ],
        commands=[StepCommand("restart", ("true",), "restart", 30.0)],
        key=key,
    )
    return tw.write(staging, doc, key=key)


def test_round_trip(tmp_path: Path) -> None:
    trig = make(tmp_path)
    again = trigr.load(trig.path, environments=["model"], key=None, require_signature=False)
    assert again == trig
    assert again.path == tmp_path / "triggers" / "model" / "E-1.json"
    assert again.staging == tmp_path
    assert again.not_before == T0 and again.not_before.tzinfo is not None
    assert again.files[1].mode == 0o755
    assert t.pending(tmp_path, "model") == [trig.path]
    assert t.pending(tmp_path, "production") == []
    trigc.check_payloads(trig)


def test_file_is_canonical_json(tmp_path: Path) -> None:
    trig = make(tmp_path)
    text = trig.path.read_text()
    doc = json.loads(text)
    assert text == json.dumps(doc, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    assert doc["digest"] == t.compute_digest(doc)


def test_rewriting_the_same_trigger_is_idempotent(tmp_path: Path) -> None:
    first = make(tmp_path)
    assert make(tmp_path) == first


def test_signature(tmp_path: Path) -> None:
    trig = make(tmp_path, key=KEY)
    assert trig.signature == t.sign(trig.digest, KEY)
    trigr.load(trig.path, environments=["model"], key=KEY, require_signature=True)
    with pytest.raises(TriggerError, match="bad signature"):
        trigr.load(trig.path, environments=["model"], key=b"other", require_signature=True)
    with pytest.raises(TriggerError, match="no signing key"):
        trigr.load(trig.path, environments=["model"], key=None, require_signature=True)


def test_unsigned_refused_when_required(tmp_path: Path) -> None:
    trig = make(tmp_path)
    with pytest.raises(TriggerError, match="unsigned"):
        trigr.load(trig.path, environments=["model"], key=KEY, require_signature=True)


def test_unknown_environment(tmp_path: Path) -> None:
    trig = make(tmp_path)
    with pytest.raises(TriggerError, match="not one of: production"):
        trigr.load(trig.path, environments=["production"], key=None, require_signature=False)


def test_copied_into_another_environment_folder_is_refused(tmp_path: Path) -> None:
    trig = make(tmp_path)
    copy = tmp_path / "triggers" / "production" / "E-1.json"
    copy.parent.mkdir(parents=True)
    copy.write_bytes(trig.path.read_bytes())
    with pytest.raises(TriggerError, match="lies under triggers/production/"):
        trigr.load(copy, environments=["model", "production"], key=None, require_signature=False)


def rewrite(path: Path, change: Any) -> None:
    """Edit a trigger and re-seal its digest, as a forger without the key would."""
    doc = json.loads(path.read_text())
    change(doc)
    doc["digest"] = t.compute_digest(doc)
    path.write_text(json.dumps(doc))


def test_edit_without_resealing_breaks_the_digest(tmp_path: Path) -> None:
    trig = make(tmp_path)
    doc = json.loads(trig.path.read_text())
    doc["steps"]["files"][0]["path"] = "src/other.py"
    trig.path.write_text(json.dumps(doc))
    with pytest.raises(TriggerError, match="digest mismatch"):
        trigr.load(trig.path, environments=["model"], key=None, require_signature=False)


def test_resealed_forgery_fails_the_signature(tmp_path: Path) -> None:
    trig = make(tmp_path, key=KEY)
    rewrite(trig.path, lambda d: d["steps"]["files"][0].update(path="src/evil.py"))
    with pytest.raises(TriggerError, match="bad signature"):
        trigr.load(trig.path, environments=["model"], key=KEY, require_signature=True)


def test_unknown_version(tmp_path: Path) -> None:
    trig = make(tmp_path)
    rewrite(trig.path, lambda d: d.update(version=2))
    with pytest.raises(TriggerError, match="unknown trigger format version 2"):
        trigr.load(trig.path, environments=["model"], key=None, require_signature=False)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("../etc/passwd", "has a . or .. component"),
        ("/etc/passwd", "is absolute"),
        ("src\\app.py", "backslash"),
        ("src/\x00app.py", "NUL"),
        ("C:/x", "drive letter"),
        ("src//app.py", "empty component"),
        ("", "is empty"),
    ],
)
def test_unsafe_paths(tmp_path: Path, bad: str, message: str) -> None:
    trig = make(tmp_path)
    rewrite(trig.path, lambda d: d["steps"]["files"][0].update(path=bad))
    with pytest.raises(TriggerError, match=message) as info:
        trigr.load(trig.path, environments=["model"], key=None, require_signature=False)
    assert "\n" not in str(info.value)


def test_retarget(tmp_path: Path) -> None:
    trig = make(tmp_path, key=KEY)
    prod_staging = tmp_path / "prod-staging"
    later = T0 + timedelta(days=7)
    promoted = tw.retarget(trig, "production", staging=prod_staging, not_before=later, key=KEY)
    assert promoted.environment == "production"
    assert promoted.path == prod_staging / "triggers" / "production" / "E-1.json"
    assert (promoted.sql, promoted.files, promoted.commands) == (
        trig.sql, trig.files, trig.commands)
    assert promoted.not_before == later
    assert promoted.expires - promoted.not_before == trig.expires - trig.not_before
    assert promoted.digest != trig.digest
    trigr.load(promoted.path, environments=["production"], key=KEY, require_signature=True)
    trigc.check_payloads(promoted)


def test_write_refuses_an_invalid_document_and_writes_nothing(tmp_path: Path) -> None:
    trig = make(tmp_path)
    doc = tw.as_document(trig)
    doc["id"] = "E-2"
    doc["defects"] = ["PROJ-1\nInjected: yes"]
    doc["digest"] = t.compute_digest(doc)
    with pytest.raises(TriggerError, match="defects"):
        tw.write(tmp_path, doc, key=None)
    assert not t.trigger_path(tmp_path, "model", "E-2").exists()
    doc["environment"] = "../../outside"
    with pytest.raises(TriggerError, match="not an environment name"):
        tw.write(tmp_path, doc, key=None)


def test_write_refuses_missing_payloads(tmp_path: Path) -> None:
    trig = make(tmp_path)
    doc = tw.as_document(trig)
    doc["id"] = "E-3"
    doc["steps"]["files"][0]["post_sha256"] = "f" * 64
    doc["digest"] = t.compute_digest(doc)
    with pytest.raises(TriggerError, match="payload missing"):
        tw.write(tmp_path, doc, key=None)
    assert t.pending(tmp_path, "model") == [trig.path]
