"""Signed checkpoints anchor the audit log where a writer of the state directory cannot forge.

The note format is checked against golang.org/x/mod/sumdb/note's published vector, the
Merkle tree hash against RFC 6962's (transparency-dev/merkle testonly); the rest drives
real logs, real engine runs and the real CLI.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dasct import audit, checkpoint, cli, config, note
from dasct.audit import AuditError, AuditLog
from dasct.checkpoint import CHECKPOINT, Anchor
from dasct.migrate import engine, manual, session
from dasct.migrate import trigger as trig
from dasct.migrate import trigger_write as trigw
from dasct.migrate.environment import EngineError, Environment, environment

# golang.org/x/mod/sumdb/note: the package documentation's example, signed by PeterNeumann.
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = ("If you think cryptography is the answer to your problem,\n"
           "then you don't know what your problem is.\n")
GO_NOTE = (GO_TEXT + "\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1"
           "FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n")
# RFC 6962 leaves and the tree hash of each prefix (transparency-dev/merkle testonly).
CT_LEAVES = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657",
             "606162636465666768696a6b6c6d6e6f"]
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
HMAC_SECRET = "audit-hmac-secret-0123456789"
NOW = datetime(2026, 11, 24, 1, 0, tzinfo=timezone.utc)


# ------------------------------------------------------------------ format and hashing


def test_note_reproduces_the_go_vector_byte_for_byte() -> None:
    signer = note.ed25519_signer(GO_SKEY)
    assert signer.public == GO_VKEY
    assert note.sign(GO_TEXT, [signer]) == GO_NOTE
    text, by = note.open_note(GO_NOTE, [note.ed25519_verifier(GO_VKEY)])
    assert text == GO_TEXT and [k.label for k in by] == ["PeterNeumann+c74f20a3"]
    with pytest.raises(note.NoteError, match="does not verify"):
        note.open_note(GO_NOTE.replace("cryptography", "cryptographY"),
                       [note.ed25519_verifier(GO_VKEY)])


def test_keys_whose_id_does_not_match_are_refused() -> None:
    with pytest.raises(note.NoteError, match="key id"):
        note.ed25519_verifier(GO_VKEY.replace("c74f20a3", "c74f20a4"))
    with pytest.raises(note.NoteError, match="key name"):
        note.hmac_key("has space", b"x")


def test_merkle_tree_hash_matches_rfc6962() -> None:
    leaves = [bytes.fromhex(x) for x in CT_LEAVES]
    got = checkpoint.roots(leaves, set(range(9)))
    assert [got[n].hex() for n in range(9)] == CT_ROOTS


def _mth(leaves: list[bytes]) -> bytes:
    # RFC 6962 section 2.1, literally.
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + _mth(leaves[:k]) + _mth(leaves[k:])).digest()


@settings(max_examples=200, deadline=None)
@given(leaves=st.lists(st.binary(max_size=8), max_size=70), data=st.data())
def test_one_pass_roots_are_the_rfc_definition(leaves: list[bytes], data: st.DataObject) -> None:
    sizes = set(data.draw(st.lists(st.integers(0, len(leaves)), min_size=1, max_size=4)))
    assert checkpoint.roots(leaves, sizes) == {n: _mth(leaves[:n]) for n in sizes}


def test_checkpoint_text_round_trips_and_rejects_malformed() -> None:
    cp = checkpoint.Checkpoint("dasct/audit/model", 40, bytes(range(32)))
    assert cp.text() == f"dasct/audit/model\n40\n{base64.b64encode(bytes(range(32))).decode()}\n"
    assert checkpoint.parse(cp.text()) == cp
    for bad in ("o\n040\n" + cp.text().split("\n")[2] + "\n", "o\n4\nAAAA\n", "o\n4\n"):
        with pytest.raises(note.NoteError, match="checkpoint"):
            checkpoint.parse(bad)


# ------------------------------------------------------------------ a log and its anchor


def anchor(copy: Path | None = None) -> Anchor:
    return Anchor(origin="dasct/audit/model", key_env="DASCT_AUDIT_KEY", copy=copy)


def signed_log(state: Path, records: int, a: Anchor) -> None:
    log = AuditLog(state)
    for i in range(records):
        log.append("migrate.step", trigger="E-1", step=i)
    assert checkpoint.sign_log(state, a, first_ok=log.started) is not None


def rewind(state: Path, keep: int) -> None:
    """The issue's attack: keep the first `keep` lines, rewrite audit.head from the last."""
    rows = (state / audit.LOG).read_bytes().splitlines(keepends=True)[:keep]
    (state / audit.LOG).write_bytes(b"".join(rows))
    last = json.loads(rows[-1])
    (state / audit.HEAD).write_text(json.dumps({"seq": last["seq"], "hash": last["hash"]}))


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("DASCT_AUDIT_KEY", HMAC_SECRET)
    return HMAC_SECRET


def test_truncation_with_a_rewritten_head_is_caught_by_the_checkpoint(
        tmp_path: Path, key: str) -> None:
    signed_log(tmp_path, 45, anchor())
    rewind(tmp_path, 40)
    assert audit.verify(tmp_path) == []  # the head alone is fooled, as the issue shows
    problems, _ = checkpoint.check(tmp_path, anchor())
    assert problems == [f"{tmp_path / CHECKPOINT}: signed for 45 record(s) but the log has 40: "
                        "truncated or deleted"]
    with pytest.raises(AuditError, match="signed for 45"):
        checkpoint.sign_log(tmp_path, anchor(), first_ok=True)  # never re-signs a truncation


def test_a_rewritten_log_of_the_same_length_is_caught(tmp_path: Path, key: str) -> None:
    signed_log(tmp_path, 6, anchor())
    other = tmp_path / "other"
    log = AuditLog(other)
    for i in range(6):
        log.append("migrate.step", trigger="E-2", step=i)
    for name in (audit.LOG, audit.HEAD):
        (tmp_path / name).write_bytes((other / name).read_bytes())
    assert audit.verify(tmp_path) == []
    problems, _ = checkpoint.check(tmp_path, anchor())
    assert problems == [f"{tmp_path / CHECKPOINT}: the first 6 record(s) do not hash to the "
                        "signed root: the log was rewritten"]


def test_a_forged_signature_is_refused(tmp_path: Path, key: str) -> None:
    signed_log(tmp_path, 3, anchor())
    path = tmp_path / CHECKPOINT
    text = path.read_text()
    body, sig = text.rsplit(" ", 1)
    raw = bytearray(base64.b64decode(sig))
    raw[-1] ^= 1
    path.write_text(f"{body} {base64.b64encode(bytes(raw)).decode()}\n")
    problems, _ = checkpoint.check(tmp_path, anchor())
    assert len(problems) == 1 and "does not verify (forged, or the note was edited)" in problems[0]
    # The text re-signed for a longer log without the key: same refusal.
    path.write_text(text.replace("\n3\n", "\n2\n"))
    assert "does not verify" in checkpoint.check(tmp_path, anchor())[0][0]


def test_a_checkpoint_signed_by_another_key_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DASCT_AUDIT_KEY", "someone-elses-secret-key")
    signed_log(tmp_path, 3, anchor())
    monkeypatch.setenv("DASCT_AUDIT_KEY", HMAC_SECRET)
    problems, _ = checkpoint.check(tmp_path, anchor())
    assert len(problems) == 1 and "signed only by unknown key(s) dasct-audit+" in problems[0]
    with pytest.raises(AuditError, match="unknown key"):
        checkpoint.sign_log(tmp_path, anchor(), first_ok=False)


def test_a_checkpoint_of_another_environment_is_refused(tmp_path: Path, key: str) -> None:
    signed_log(tmp_path, 3, Anchor(origin="dasct/audit/production", key_env="DASCT_AUDIT_KEY"))
    problems, _ = checkpoint.check(tmp_path, anchor())
    assert problems and "another log ('dasct/audit/production'" in problems[0]


def test_a_deleted_checkpoint_is_tampering_and_is_not_silently_re_signed(
        tmp_path: Path, key: str) -> None:
    signed_log(tmp_path, 3, anchor())
    (tmp_path / CHECKPOINT).unlink()
    problems, _ = checkpoint.check(tmp_path, anchor())
    assert problems == [f"{tmp_path / CHECKPOINT}: missing although a checkpoint key is "
                        "configured and the log has 3 record(s): deleted"]
    with pytest.raises(AuditError, match="run `dasct audit checkpoint` once"):
        checkpoint.sign_log(tmp_path, anchor(), first_ok=False)


def test_the_copy_catches_what_the_state_directory_alone_cannot(
        tmp_path: Path, key: str) -> None:
    state, copy = tmp_path / "state", tmp_path / "elsewhere" / "model.checkpoint"
    signed_log(state, 45, anchor(copy))
    assert copy.read_bytes() == (state / CHECKPOINT).read_bytes()
    assert checkpoint.check(state, anchor(copy)) == (
        [], "signed checkpoint covers 45 of 45 record(s) and agrees with its copy")
    # Truncate, rewrite the head, delete the local checkpoint: only the copy remembers.
    rewind(state, 40)
    (state / CHECKPOINT).unlink()
    problems, _ = checkpoint.check(state, anchor(copy))
    assert problems == [
        f"{copy}: signed for 45 record(s) but the log has 40: truncated or deleted",
        f"{state / CHECKPOINT}: missing, but its copy covers 45 record(s): deleted"]
    with pytest.raises(AuditError, match="signed for 45"):
        checkpoint.sign_log(state, anchor(copy), first_ok=True)


def test_a_copy_that_disagrees_or_is_older_is_reported(tmp_path: Path, key: str) -> None:
    state, copy = tmp_path / "state", tmp_path / "copy" / "model.checkpoint"
    signed_log(state, 4, anchor(copy))
    older = copy.read_bytes()
    AuditLog(state).append("migrate.step")
    checkpoint.sign_log(state, anchor(copy), first_ok=False)
    (state / CHECKPOINT).write_bytes(older)  # the local one put back to an older one
    assert checkpoint.check(state, anchor(copy))[0] == [
        f"{state / CHECKPOINT}: older than its copy (4 < 5 records): put back"]
    # A copy signed over another history of the same length (a fork).
    fork = tmp_path / "fork"
    signed_log(fork, 5, anchor())
    copy.write_bytes((fork / CHECKPOINT).read_bytes())
    checkpoint.sign_log(state, anchor(), first_ok=False)
    problems, _ = checkpoint.check(state, anchor(copy))
    assert problems == [
        f"{copy}: the first 5 record(s) do not hash to the signed root: the log was rewritten",
        f"{state / CHECKPOINT}: disagrees with its copy {copy} at 5 records"]


def test_without_a_key_verify_says_what_the_chain_proves(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DASCT_AUDIT_KEY", raising=False)
    AuditLog(tmp_path).append("migrate.step")
    assert checkpoint.sign_log(tmp_path, anchor(), first_ok=True) is None
    problems, proves = checkpoint.check(tmp_path, anchor())
    assert problems == [] and "tamper-evident only against edits of the log alone" in proves


def test_ed25519_checkpoints_verify_with_the_public_key_alone(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    skey, vkey = note.generate_ed25519("example.com/dasct-audit")
    monkeypatch.setenv("DASCT_AUDIT_KEY", skey)
    signed_log(tmp_path, 5, anchor())
    assert "\u2014 example.com/dasct-audit " in (tmp_path / CHECKPOINT).read_text()
    monkeypatch.delenv("DASCT_AUDIT_KEY")
    public = Anchor(origin="dasct/audit/model", key_env="DASCT_AUDIT_KEY", public_keys=(vkey,))
    assert checkpoint.check(tmp_path, public) == (
        [], "signed checkpoint covers 5 of 5 record(s)")
    rewind(tmp_path, 3)
    assert "signed for 5 record(s)" in checkpoint.check(tmp_path, public)[0][0]


# ------------------------------------------------------------------ the engine and the CLI


def _repo(tmp_path: Path, extra: str = "") -> Environment:
    subprocess.run(("git", "init", "-q", str(tmp_path)), check=True)
    (tmp_path / ".dasct.toml").write_text(
        '[environments.model]\nroot = "target"\nstate_dir = "state"\nstaging = "staging"\n'
        + extra)
    (tmp_path / "target").mkdir()
    return environment(config.load(tmp_path), "model", tmp_path)


def _deploy(env: Environment, tid: str) -> None:
    payload = trigw.write_payload(env.staging, f"{tid}\n".encode())
    doc = trigw.document(
        id=tid, system="app", environment=env.name, not_before=NOW - timedelta(hours=1),
        expires=NOW + timedelta(days=1), defects=[], commits=[], sql=[],
        files=[trig.FileChange("add", f"{tid}.txt", None, None, payload, 0o644)], commands=[])
    trigw.write(env.staging, doc, key=None)
    result = engine.run(env, now=NOW, write=lambda _: None)
    assert result.migrated == [tid]


def _verify(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    capsys.readouterr()
    code = cli.main(["audit", "verify", *args])
    return code, capsys.readouterr().out


def test_deleting_log_and_head_with_deployments_present_is_tampering(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Item 11, first reproduction; no key needed: the state shows what the log lost.
    monkeypatch.delenv("DASCT_AUDIT_KEY", raising=False)
    env = _repo(tmp_path)
    _deploy(env, "E-1")
    monkeypatch.chdir(tmp_path)
    assert _verify(capsys, "--env", "model")[0] == 0
    (env.state_dir / audit.LOG).unlink()
    (env.state_dir / audit.HEAD).unlink()
    code, out = _verify(capsys, "--env", "model")
    assert code == 1
    assert out == (f"model: {env.state_dir}: outcomes/ (E-1); inventory.json (E-1); archives/ "
                   "(E-1) show deployments the audit log does not record: the log was deleted "
                   "or truncated\n")


def test_a_run_signs_and_verify_catches_the_rewound_log(
        tmp_path: Path, key: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    # Item 11, second reproduction, end to end: engine runs, the CLI verifies.
    env = _repo(tmp_path, '[audit]\ncheckpoint_copy = "../copies"\n')
    _deploy(env, "E-1")
    size = len(checkpoint.log_leaves(env.state_dir))
    _deploy(env, "E-2")
    assert len(checkpoint.log_leaves(env.state_dir)) > size
    monkeypatch.chdir(tmp_path)
    code, out = _verify(capsys)
    total = len(audit.records(env.state_dir))
    assert (code, out) == (0, f"model: audit log ok ({total} record(s)); signed checkpoint "
                              f"covers {total} of {total} record(s) and agrees with its copy\n")
    rewind(env.state_dir, size)
    (env.state_dir / CHECKPOINT).unlink()
    code, out = _verify(capsys)
    assert code == 1
    assert f"signed for {total} record(s) but the log has {size}" in out
    assert "inventory.json (E-2)" in out
    # The next run starts (the head matches) but refuses to sign over the truncation.
    with pytest.raises(AuditError, match=f"signed for {total}"):
        engine.run(env, now=NOW, write=lambda _: None)


def test_a_new_key_on_an_existing_log_is_adopted_on_purpose(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("DASCT_AUDIT_KEY", raising=False)
    env = _repo(tmp_path)
    _deploy(env, "E-1")
    monkeypatch.setenv("DASCT_AUDIT_KEY", HMAC_SECRET)
    with pytest.raises(AuditError, match="run `dasct audit checkpoint` once"):
        engine.run(env, now=NOW, write=lambda _: None)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["audit", "checkpoint", "--env", "model"]) == 0
    assert "model: signed a checkpoint of" in capsys.readouterr().out
    assert audit.records(env.state_dir)[-1]["event"] == "checkpoint-adopted"
    engine.run(env, now=NOW, write=lambda _: None)
    assert _verify(capsys)[0] == 0


def test_keygen_writes_the_secret_to_a_file_and_prints_only_the_public_key(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "audit.key"
    assert cli.main(["audit", "keygen", "example.com/dasct-audit", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    skey = out.read_text().strip()
    assert out.stat().st_mode & 0o777 == 0o600
    assert skey.startswith("PRIVATE+KEY+example.com/dasct-audit+") and skey not in printed
    assert note.ed25519_signer(skey).public in printed
    assert cli.main(["audit", "keygen", "x", "--out", str(out)]) == 1  # never overwrites


def test_verify_lists_configured_environments_and_those_with_state(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    # Item 25: nothing about a default environment nobody configured or used.
    monkeypatch.delenv("DASCT_AUDIT_KEY", raising=False)
    subprocess.run(("git", "init", "-q", str(tmp_path)), check=True)
    monkeypatch.chdir(tmp_path)
    assert _verify(capsys) == (
        0, "no environment is configured or has state on disk: no audit log to verify\n")
    (tmp_path / ".dasct.toml").write_text("[environments.qa]\n")
    code, out = _verify(capsys)
    assert code == 0 and out.startswith("qa: no audit log yet") and "production" not in out


def _rechained(rows: list[bytes]) -> list[bytes]:
    """The strongest attacker without the key: every record re-numbered and re-hashed."""
    out, prev = [], audit.GENESIS
    for seq, row in enumerate(rows, start=1):
        record = {**json.loads(row), "seq": seq, "prev": prev}
        record["hash"] = audit.record_hash(record)
        prev = record["hash"]
        out.append(json.dumps(record, sort_keys=True, separators=(",", ":")).encode() + b"\n")
    return out


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_any_rewrite_of_a_signed_prefix_is_caught_even_with_a_consistent_chain(
        data: st.DataObject) -> None:
    import os
    import tempfile

    os.environ["DASCT_AUDIT_KEY"] = HMAC_SECRET
    try:
        with tempfile.TemporaryDirectory() as where:
            state = Path(where)
            signed_log(state, 6, anchor())
            original = (state / audit.LOG).read_bytes().splitlines(keepends=True)
            rows = list(original)
            for _ in range(data.draw(st.integers(1, 3))):
                action = data.draw(st.sampled_from(["edit", "delete", "swap", "truncate",
                                                    "duplicate", "append"]))
                i = data.draw(st.integers(0, max(len(rows) - 1, 0)))
                if action == "edit" and rows:
                    record = json.loads(rows[i])
                    record["fields"]["step"] = data.draw(st.integers(-5, 50))
                    rows[i] = json.dumps(record).encode() + b"\n"
                elif action == "delete" and rows:
                    del rows[i]
                elif action == "swap" and rows:
                    j = data.draw(st.integers(0, len(rows) - 1))
                    rows[i], rows[j] = rows[j], rows[i]
                elif action == "truncate":
                    rows = rows[:i]
                elif action == "duplicate" and rows:
                    rows.insert(i, rows[data.draw(st.integers(0, len(rows) - 1))])
                elif action == "append":
                    rows.append(original[0])
            rows = _rechained(rows)
            (state / audit.LOG).write_bytes(b"".join(rows))
            if rows:
                last = json.loads(rows[-1])
                (state / audit.HEAD).write_text(json.dumps({"seq": last["seq"],
                                                            "hash": last["hash"]}))
            else:
                (state / audit.HEAD).unlink()
            assert audit.verify(state) == []  # the chain alone cannot tell
            problems, _ = checkpoint.check(state, anchor())
            if rows[:6] == original:
                assert problems == []  # records after the checkpoint: the head's to guard
            else:
                assert len(problems) == 1, problems
    finally:
        del os.environ["DASCT_AUDIT_KEY"]


def test_a_failed_run_and_a_decision_outside_a_run_are_signed_too(
        tmp_path: Path, key: str) -> None:
    env = _repo(tmp_path)
    _deploy(env, "E-1")
    (env.state_dir / session.NEEDS_ATTENTION).write_text(
        json.dumps({"trigger": "E-1", "problems": ["hand-made"]}))
    with pytest.raises(EngineError, match="needs attention"):
        engine.run(env, now=NOW, write=lambda _: None)
    events = [r["event"] for r in audit.records(env.state_dir)]
    # the refusal keeps a forensic trace, and its record is signed like the rest
    assert events[-2:] == ["refused", "trace-kept"]
    assert checkpoint.check(env.state_dir, env.anchor or anchor())[1] == (
        f"signed checkpoint covers {len(events)} of {len(events)} record(s)")
    assert manual.resolve(env, note="checked by hand", write=lambda _: None)
    assert audit.records(env.state_dir)[-1]["event"] == "resolved"
    assert checkpoint.check(env.state_dir, env.anchor or anchor())[1] == (
        f"signed checkpoint covers {len(events) + 1} of {len(events) + 1} record(s)")


def test_a_malformed_key_is_one_line_naming_where_it_came_from(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DASCT_AUDIT_KEY", "PRIVATE+KEY+name+00000000+AQ==")
    AuditLog(tmp_path).append("migrate.step")
    with pytest.raises(AuditError, match=r"^\$DASCT_AUDIT_KEY: signer key name: not an Ed25519"):
        checkpoint.sign_log(tmp_path, anchor(), first_ok=True)
    monkeypatch.delenv("DASCT_AUDIT_KEY")
    bad = Anchor(origin="", key_env="DASCT_AUDIT_KEY", public_keys=("not-a-key",))
    assert checkpoint.check(tmp_path, bad)[0] == [
        "[audit] checkpoint_public_keys[0]: not a verifier key (want ...+...+...)"]
