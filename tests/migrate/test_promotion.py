"""Promotion through the same engine: model migrates, QA signs off, production takes the
trigger sign-off wrote (same steps and payload digests) and refuses anything else, from
records in model's hash-chained audit log."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from engine_kit import cli
from promo_kit import Setup, tables

from dasct import audit, notify
from dasct.errors import DasctError
from dasct.migrate import inventory, promotion, revert
from dasct.migrate import trigger as trig
from dasct.migrate import trigger_read as trigr
from dasct.migrate import trigger_write as trigw

QA = ("Quinn Assurance", "qa@example.com")
QA2 = ("Rita Review", "rita@example.com")


@pytest.fixture
def s(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Setup:
    return Setup(tmp_path, monkeypatch)


def _sign(s: Setup, who: tuple[str, str] = QA, tid: str = "E1", comment: str = "ok"
          ) -> list[trig.Trigger]:
    with s.person(*who):
        return promotion.signoff(s.model, tid, into=[s.production], repo_root=s.root,
                                 comment=comment, write=lambda _: None)


def _migrated_in_model(s: Setup) -> None:
    s.stage_model()
    assert s.run("model").migrated == ["E1"]


def test_model_signoff_production_the_whole_way(s: Setup) -> None:
    _migrated_in_model(s)
    model_t = promotion.migrated_trigger(s.model, "E1")
    assert promotion.state(s.model, "E1").state == promotion.AWAITING  # type: ignore[union-attr]
    [prod_t] = _sign(s, comment="tested the report page")
    # Promoted, not rebuilt: same id, steps and payload digests; only env and schedule differ.
    assert prod_t.path == s.root / "staging" / "triggers" / "production" / "E1.json"
    assert (prod_t.id, prod_t.sql, prod_t.files, prod_t.commands, prod_t.commits,
            prod_t.defects) == (model_t.id, model_t.sql, model_t.files, model_t.commands,
                                model_t.commits, model_t.defects)
    assert prod_t.environment == "production" and prod_t.digest != model_t.digest
    state = promotion.state(s.model, "E1")
    assert state is not None and state.state == promotion.SIGNED_OFF
    assert state.who == "Quinn Assurance <qa@example.com>"
    [so] = promotion.signoffs(s.model, "E1")
    assert (so.email, so.comment, so.digest) == ("qa@example.com", "tested the report page",
                                                 model_t.digest)
    result = s.run("production")
    assert result.migrated == ["E1"], result.lines  # type: ignore[attr-defined]
    assert (s.root / "prod/root/app/report.py").read_text() == "print('report')\n"
    assert tables(s.root / "prod/db.sqlite") == ["reports"]
    assert audit.verify(s.model.state_dir) == [] and audit.verify(s.production.state_dir) == []


def test_production_refuses_what_model_has_not_migrated(s: Setup) -> None:
    _migrated_in_model(s)
    _sign(s)
    # A second enhancement staged for production by hand (here: a copy of the promoted one
    # under another id, as a rebuild from git would be): model never saw it.
    doc = json.loads((s.root / "staging/triggers/production/E1.json").read_text())
    t = trigr.parse(doc, s.root / "x.json", environments=["production"], key=None,
                   require_signature=False)
    trigw.write(s.root / "staging", trigw.retargeted(replace(t, id="E2"), "production"),
                key=None)
    result = s.run("production")
    assert result.migrated == ["E1"]
    assert result.stats.refused == 1 and result.exit_code == 1
    line = next(x for x in result.lines if x.startswith("refused"))  # type: ignore[attr-defined]
    assert line == ("refused: E2 has not been migrated in model; production takes only what "
                    "model migrated and signed off")
    assert inventory.outcome(s.production.state_dir, "E2") is None  # nothing touched


def test_trigger_create_refuses_a_gated_environment(s: Setup) -> None:
    out = cli(s.root, "trigger", "create", "--range", f"{s.base}..{s.head}", "--env",
              "production")
    assert out.returncode == 1
    assert "production is gated by model: its triggers are written by `dasct signoff" in (
        out.stderr)
    assert not (s.root / "staging/triggers/production").exists()


def test_a_rebuilt_trigger_is_refused_even_with_the_sign_off(s: Setup) -> None:
    _migrated_in_model(s)
    [prod_t] = _sign(s)
    # Someone replaces the promoted file with one built anew (other schedule, so other
    # digest): the sign-off recorded the promoted digest, not the id.
    prod_t.path.unlink()
    longer = prod_t.expires - prod_t.not_before + timedelta(hours=1)
    trigw.write(s.root / "staging", trigw.retargeted(prod_t, "production", expiry=longer),
                key=None)
    result = s.run("production")
    assert result.migrated == [] and result.stats.refused == 1
    assert "is not the trigger `dasct signoff` promoted from model" in "\n".join(
        result.lines)  # type: ignore[attr-defined]


def test_signoff_refuses_before_model_migrated(s: Setup) -> None:
    s.stage_model()
    with pytest.raises(promotion.PromotionError,
                       match=r"^cannot sign off: E1 has not been migrated in model$"):
        _sign(s)
    assert not (s.root / "staging/triggers/production").exists()


def test_signoff_refuses_a_rolled_back_migration(s: Setup) -> None:
    s.repo.write("db/verify/reports.sql", "SELECT missing FROM reports;\n")
    head = s.repo.commit("PROJ-7: a verify that fails")
    s.stage_model(rev_range=f"{s.base}..{head}")
    assert s.run("model").rolled_back == ["E1"]
    with pytest.raises(promotion.PromotionError,
                       match=r"^cannot sign off: E1 failed in model and was rolled back"):
        _sign(s)


def test_production_refuses_what_was_reverted_in_model_since(s: Setup) -> None:
    _migrated_in_model(s)
    _sign(s)
    revert.revert(s.model, "E1", write=lambda _: None)
    result = s.run("production")
    assert result.migrated == [] and result.stats.refused == 1
    assert ("refused: E1 was reverted in model since its migration; production takes only "
            "what model migrated and signed off") in result.lines  # type: ignore[attr-defined]
    assert not (s.root / "prod/root/app/report.py").exists()
    assert promotion.state(s.model, "E1") is None


def test_rejection_notifies_the_developers_and_blocks(s: Setup) -> None:
    _migrated_in_model(s)
    _sign(s)  # signed off, then a second look finds a problem
    with s.person(*QA2):
        promotion.reject(s.model, "E1", reason="totals are wrong", repo_root=s.root,
                         write=lambda _: None)
    sent = [json.loads(line) for line in
            (s.model.state_dir / notify.DELIVERED).read_text().splitlines()]
    [note] = [n for n in sent if n["kind"] == "rejected"]
    assert note["recipients"] == ["dev@example.com"]  # the author of E1's commit
    assert "totals are wrong" in note["body"]
    state = promotion.state(s.model, "E1")
    assert state is not None and (state.state, state.who, state.reason) == (
        "rejected", "Rita Review <rita@example.com>", "totals are wrong")
    result = s.run("production")
    assert result.migrated == [] and result.stats.refused == 1
    assert any("E1 was rejected in model by Rita Review" in x
               for x in result.lines)  # type: ignore[attr-defined]
    with pytest.raises(promotion.PromotionError, match="rejected"):
        _sign(s, QA2)


def test_the_author_cannot_approve(s: Setup) -> None:
    _migrated_in_model(s)
    with pytest.raises(promotion.PromotionError, match=r"^cannot sign off: Dev Eloper "
                       r"<dev@example.com> is an author of E1 .*an author cannot approve$"):
        promotion.signoff(s.model, "E1", into=[s.production], repo_root=s.root,
                          write=lambda _: None)
    assert promotion.signoffs(s.model, "E1") == []


def test_too_few_approvers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = Setup(tmp_path, monkeypatch, approvals=2)
    _migrated_in_model(s)
    assert _sign(s) == []  # one of two: nothing promoted yet
    with pytest.raises(promotion.PromotionError, match="already signed off E1; it needs 2"):
        _sign(s)
    # A production trigger put there by hand is refused for the missing sign-off.
    model_t = promotion.migrated_trigger(s.model, "E1")
    trigw.retarget(model_t, "production", staging=s.production.staging)
    result = s.run("production")
    assert result.migrated == [] and any("E1 has 1 of the 2 sign-off(s) it needs in model" in x
                                         for x in result.lines)  # type: ignore[attr-defined]
    (s.production.staging / "triggers/production/E1.json").unlink()
    [prod_t] = _sign(s, QA2)
    assert s.run("production").migrated == ["E1"]
    assert prod_t.id == "E1"


def test_a_forged_audit_file_is_detected(s: Setup) -> None:
    _migrated_in_model(s)
    _sign(s)
    log = s.model.state_dir / audit.LOG
    lines = log.read_text().splitlines()
    # Edit the sign-off record: a different approver, nothing else.
    at = next(i for i, x in enumerate(lines) if '"event":"signoff"' in x)
    lines[at] = lines[at].replace("qa@example.com", "boss@example.com")
    log.write_text("\n".join(lines) + "\n")
    result = s.run("production")
    assert result.migrated == [] and result.stats.refused == 1
    line = next(x for x in result.lines if x.startswith("refused"))  # type: ignore[attr-defined]
    assert "model's audit log does not verify" in line and "was edited" in line


def test_a_deleted_outcome_or_inventory_entry_is_not_believed(s: Setup) -> None:
    _migrated_in_model(s)
    _sign(s)
    (s.model.state_dir / inventory.INVENTORY).unlink()  # one file gone: records disagree
    result = s.run("production")
    assert result.migrated == [] and any("audit log and inventory disagree" in x
                                         for x in result.lines)  # type: ignore[attr-defined]


def test_production_without_a_window_needs_now(s: Setup) -> None:
    _migrated_in_model(s)
    _sign(s)
    waited = s.run("production", force=False)
    assert waited.migrated == [] and waited.exit_code == 0
    assert waited.not_run is not None
    assert "production has no window configured, so it runs only when asked explicitly" in (
        waited.not_run)
    assert s.run("model", force=False).not_run is None  # model stays permissive
    assert s.run("production", force=True).migrated == ["E1"]


def test_a_configured_window_lets_production_run(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    s = Setup(tmp_path, monkeypatch, production='windows = ["Mon-Sun 00:00-24:00"]')
    _migrated_in_model(s)
    _sign(s)
    assert s.run("production", force=False).migrated == ["E1"]


def test_promote_from_none_removes_the_gate(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    s = Setup(tmp_path, monkeypatch, production='promote_from = "none"')
    assert s.production.gate is None and s.model.gates == ()
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / ".dasct.toml").write_text('[environments.production]\npromote_from = "qa"\n')
    from dasct import config

    with pytest.raises(DasctError, match=r"`environments\.production\.promote_from`: 'qa' is "
                       r"not a configured environment"):
        config.load(bad)


def test_signoff_cli_one_line_refusal_and_success(s: Setup) -> None:
    s.stage_model()
    qa = {"GIT_COMMITTER_NAME": QA[0], "GIT_COMMITTER_EMAIL": QA[1]}
    early = cli(s.root, "signoff", "E1", "--env", "model", env=qa)
    assert early.returncode == 1
    assert early.stderr.strip().splitlines() == [
        "dasct: cannot sign off: E1 has not been migrated in model"]
    assert cli(s.root, "migrate", "run", "--env", "model").returncode == 0
    done = cli(s.root, "signoff", "E1", "--env", "model", "--comment", "fine", env=qa)
    assert done.returncode == 0, done.stderr
    assert "E1: signed off by Quinn Assurance <qa@example.com> in model (1 of 1)" in done.stdout
    assert "E1: promoted to production" in done.stdout
    prod = cli(s.root, "migrate", "run", "--env", "production", "--now")
    assert prod.returncode == 0, prod.stdout + prod.stderr
    assert "migrated E1" in prod.stdout


def test_the_promoted_trigger_is_signed_with_the_key(s: Setup,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DASCT_TRIGGER_KEY", "k3y-for-tests")
    _migrated_in_model(s)
    [prod_t] = _sign(s)
    loaded = trigr.load(prod_t.path, environments=["production"], key=b"k3y-for-tests",
                       require_signature=True)
    assert loaded.signed_by == 0
    with pytest.raises(trig.TriggerError, match="bad signature"):
        trigr.load(prod_t.path, environments=["production"], key=b"another key",
                  require_signature=True)
    assert s.run("production").migrated == ["E1"]


def test_a_sign_off_that_died_before_writing_writes_the_same_trigger(s: Setup) -> None:
    _migrated_in_model(s)
    [first] = _sign(s)
    data = first.path.read_bytes()
    first.path.unlink()  # as if the process died between the `promoted` record and the file
    assert s.run("production").migrated == []  # nothing staged: nothing runs
    [again] = _sign(s)  # the same approver again: nothing new recorded, the file rewritten
    assert again.path.read_bytes() == data
    assert len(promotion.signoffs(s.model, "E1")) == 1
    assert [r["event"] for r in audit.records(s.model.state_dir)].count("promoted") == 1
    assert s.run("production").migrated == ["E1"]


def test_status_shows_sign_off_and_warranty_states(s: Setup) -> None:
    """`dasct status` from the same records: awaiting sign-off and signed off in model, the
    recorded warranty (WP, then claimed) in production."""
    from dasct import config
    from dasct.migrate import status, warranty

    _migrated_in_model(s)
    cfg = config.load(s.root)
    assert status.report(cfg, s.root).state("E1", "model").state == "awaiting sign-off"
    assert status.report(cfg, s.root).state("E1", "production").state == "absent"
    _sign(s)
    signed = status.report(cfg, s.root).state("E1", "model")
    assert signed.state == "signed off" and "Quinn Assurance" in signed.detail
    assert status.report(cfg, s.root).state("E1", "production").state == "due"
    assert s.run("production").migrated == ["E1"]
    prod = status.report(cfg, s.root).state("E1", "production")
    assert (prod.state, prod.warranty) == ("migrated", "WP")
    warranty.claim(s.production, "E1", reason="totals wrong again", repo_root=s.root,
                   write=lambda _: None)
    claimed = status.report(cfg, s.root).state("E1", "production")
    assert claimed.warranty == "claimed" and "1 claim(s)" in claimed.detail
