"""The hash-chained audit log: appends, and every kind of tampering is detected."""

from __future__ import annotations

import json
import multiprocessing
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dasct import audit, cli
from dasct.audit import AuditError, AuditLog


def filled(state: Path, count: int = 5) -> AuditLog:
    log = AuditLog(state)
    for i in range(count):
        log.append("migrate.step", trigger="E-1", step=i)
    return log


def lines(state: Path) -> list[bytes]:
    return (state / audit.LOG).read_bytes().splitlines(keepends=True)


def put(state: Path, new: list[bytes]) -> None:
    (state / audit.LOG).write_bytes(b"".join(new))


def test_append_chains_records(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "state")
    first = log.append("migrate.start", trigger="E-1", files=("a", "b"))
    second = log.append("migrate.done", trigger="E-1")
    assert first["seq"] == 1 and first["prev"] == audit.GENESIS
    assert second["seq"] == 2 and second["prev"] == first["hash"]
    assert first["fields"] == {"trigger": "E-1", "files": ["a", "b"]}
    assert "@" in first["actor"]
    assert audit.verify(tmp_path / "state") == []
    head = json.loads((tmp_path / "state" / audit.HEAD).read_text())
    assert head == {"seq": 2, "hash": second["hash"]}
    assert [r["event"] for r in audit.records(tmp_path / "state")] == [
        "migrate.start", "migrate.done"]


def test_secrets_are_never_written(tmp_path: Path) -> None:
    log = AuditLog(tmp_path)
    log.append("notify.sent", token="tok-123", smtp={"password": "pw-456", "host": "mx"},
               signing_key="k-789", author="Ada")
    text = (tmp_path / audit.LOG).read_text()
    for secret in ("tok-123", "pw-456", "k-789"):
        assert secret not in text
    assert '"author":"Ada"' in text and '"host":"mx"' in text


def test_secret_values_from_the_environment_are_redacted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DASCT_TRIGGER_KEY", "hmac-key-0123456789")
    monkeypatch.setenv("JIRA_TOKEN", "jira-token-abcdef")
    AuditLog(tmp_path).append(
        "migrate.failed", error="GET https://x/?t=jira-token-abcdef: 401",
        nested={"why": ["key was hmac-key-0123456789"]},
    )
    text = (tmp_path / audit.LOG).read_text()
    assert "jira-token-abcdef" not in text and "hmac-key-0123456789" not in text
    assert "[redacted]" in text
    assert audit.verify(tmp_path) == []


def test_no_log_is_fine(tmp_path: Path) -> None:
    assert audit.verify(tmp_path) == []


def test_edited_record(tmp_path: Path) -> None:
    filled(tmp_path)
    rows = lines(tmp_path)
    rows[2] = rows[2].replace(b'"step":2', b'"step":7')
    put(tmp_path, rows)
    problems = audit.verify(tmp_path)
    assert any("seq 3 was edited" in p for p in problems)


def test_edited_and_rehashed_record_breaks_the_chain(tmp_path: Path) -> None:
    filled(tmp_path)
    rows = lines(tmp_path)
    record = json.loads(rows[1])
    record["fields"]["step"] = 9
    record["hash"] = audit.record_hash(record)
    rows[1] = json.dumps(record).encode() + b"\n"
    put(tmp_path, rows)
    assert any("does not chain" in p for p in audit.verify(tmp_path))


def test_deleted_record(tmp_path: Path) -> None:
    filled(tmp_path)
    rows = lines(tmp_path)
    del rows[2]
    put(tmp_path, rows)
    assert any("records missing" in p for p in audit.verify(tmp_path))


def test_reordered_records(tmp_path: Path) -> None:
    filled(tmp_path)
    rows = lines(tmp_path)
    rows[1], rows[2] = rows[2], rows[1]
    put(tmp_path, rows)
    assert any("out of order" in p or "missing" in p for p in audit.verify(tmp_path))


def test_truncated_log(tmp_path: Path) -> None:
    filled(tmp_path)
    put(tmp_path, lines(tmp_path)[:3])
    problems = audit.verify(tmp_path)
    assert any("truncated: ends at seq 3, its head says seq 5" in p for p in problems)
    with pytest.raises(AuditError, match="truncated or rewritten"):
        AuditLog(tmp_path).append("migrate.step")


def test_deleted_log_and_deleted_head(tmp_path: Path) -> None:
    filled(tmp_path)
    (tmp_path / audit.LOG).unlink()
    assert any("missing" in p for p in audit.verify(tmp_path))
    with pytest.raises(AuditError, match="gone"):
        AuditLog(tmp_path).append("migrate.step")
    other = tmp_path / "other"
    filled(other)
    (other / audit.HEAD).unlink()
    assert any("missing" in p for p in audit.verify(other))


def test_garbage_line(tmp_path: Path) -> None:
    filled(tmp_path)
    rows = lines(tmp_path)
    rows.insert(2, b"{not json\n")
    put(tmp_path, rows)
    assert any("not a JSON record" in p for p in audit.verify(tmp_path))


def test_torn_tail_is_dropped_by_the_next_append(tmp_path: Path) -> None:
    log = filled(tmp_path, 2)
    with (tmp_path / audit.LOG).open("ab") as f:
        f.write(b'{"seq":3,"ti')
    assert any("torn" in p for p in audit.verify(tmp_path))
    record = log.append("migrate.step")
    assert record["seq"] == 3
    assert audit.verify(tmp_path) == []


def test_head_lagging_by_one_after_a_crash_is_accepted(tmp_path: Path) -> None:
    filled(tmp_path, 3)
    head = (tmp_path / audit.HEAD).read_bytes()
    AuditLog(tmp_path).append("migrate.step")
    (tmp_path / audit.HEAD).write_bytes(head)  # as if killed before the anchor was replaced
    assert audit.verify(tmp_path) == []
    assert AuditLog(tmp_path).append("migrate.step")["seq"] == 5
    assert audit.verify(tmp_path) == []


def _append_many(state: str, n: int) -> None:
    log = AuditLog(Path(state))
    for i in range(n):
        log.append("migrate.step", i=i)


def test_concurrent_appends_keep_one_chain(tmp_path: Path) -> None:
    procs = [multiprocessing.Process(target=_append_many, args=(str(tmp_path), 25))
             for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    assert audit.verify(tmp_path) == []
    assert len(audit.records(tmp_path)) == 100


def test_cli_verify(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    filled(tmp_path)
    assert cli.main(["audit", "verify", "--state-dir", str(tmp_path)]) == 0
    assert "audit log ok (5 record(s))" in capsys.readouterr().out
    rows = lines(tmp_path)
    del rows[0]
    put(tmp_path, rows)
    assert cli.main(["audit", "verify", "--state-dir", str(tmp_path)]) == 1
    assert "missing" in capsys.readouterr().out


def test_cli_verify_env(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                        monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess

    subprocess.run(("git", "init", "-q", str(tmp_path)), check=True)
    monkeypatch.chdir(tmp_path)
    filled(tmp_path / ".dasct" / "env" / "model" / "state")
    assert cli.main(["audit", "verify", "--env", "model"]) == 0
    assert "model: audit log ok" in capsys.readouterr().out
    assert cli.main(["audit", "verify"]) == 0
    # Item 25 of the Trust issue: the built-in production nobody uses is not reported.
    assert "production" not in capsys.readouterr().out
    assert cli.main(["audit", "verify", "--env", "qa"]) == 1


def _tampered(original: bytes, data: st.DataObject) -> bytes:
    rows = original.splitlines(keepends=True)
    action = data.draw(st.sampled_from(["flip", "delete", "swap", "truncate", "duplicate"]))
    if action == "flip":
        raw = bytearray(original)
        raw[data.draw(st.integers(0, len(raw) - 1))] ^= data.draw(st.integers(1, 255))
        return bytes(raw)
    i = data.draw(st.integers(0, len(rows) - 1))
    if action == "delete":
        del rows[i]
    elif action == "swap":
        j = data.draw(st.integers(0, len(rows) - 1).filter(lambda j: rows[j] != rows[i]))
        rows[i], rows[j] = rows[j], rows[i]
    elif action == "truncate":
        rows = rows[:i]
    else:
        rows.insert(i, rows[data.draw(st.integers(0, len(rows) - 1))])
    return b"".join(rows)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_tampering_is_detected(data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as where:
        state = Path(where)
        log = AuditLog(state)
        for i in range(6):
            log.append("migrate.step", trigger="E-1", step=i, note="é ünïcode")
        original = (state / audit.LOG).read_bytes()
        changed = _tampered(original, data)
        (state / audit.LOG).write_bytes(changed)
        problems = audit.verify(state)
        if changed == original:
            assert problems == []
        else:
            assert problems, "tampering went unnoticed"
            assert all("\n" not in p for p in problems)


def test_a_record_spelled_differently_is_an_edit(tmp_path: Path) -> None:
    # Found by test_any_tampering_is_detected: flipping the case of a \u escape changes
    # the bytes but not the parsed record, so the hash alone does not see it.
    log = AuditLog(tmp_path)
    log.append("migrate.step", note="é")
    raw = (tmp_path / audit.LOG).read_bytes()
    assert b"\\u00e9" in raw
    (tmp_path / audit.LOG).write_bytes(raw.replace(b"\\u00e9", b"\\u00E9"))
    assert audit.verify(tmp_path) == [
        f"{tmp_path / audit.LOG}:1: record seq 1 was edited (not as it was written)"]
    with pytest.raises(audit.AuditError, match="was altered"):
        log.append("migrate.step")
