"""Warranty: a successful production migration is WP for warranty_days, then CP, a recorded
(audited, notified) transition made by the next run or `dasct warranty check`, on the real
clock (the tests replace warranty.clock, the one clock it is decided on)."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

import pytest
from engine_kit import cli
from promo_kit import Setup, later

from dasct import audit, notify
from dasct.migrate import promotion, revert, warranty

QA = ("Quinn Assurance", "qa@example.com")


@pytest.fixture
def s(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Setup:
    s = Setup(tmp_path, monkeypatch)
    s.stage_model()
    assert s.run("model").migrated == ["E1"]
    with s.person(*QA):
        promotion.signoff(s.model, "E1", into=[s.production], repo_root=s.root,
                          write=lambda _: None)
    assert s.run("production").migrated == ["E1"]
    return s


def _events(s: Setup, env: str) -> list[str]:
    return [str(r["event"]) for r in audit.records(s.env(env).state_dir)
            if str(r["event"]).startswith("warranty")]


def _notes(s: Setup, kind: str) -> list[dict[str, object]]:
    path = s.production.state_dir / notify.DELIVERED
    return [n for n in map(json.loads, path.read_text().splitlines()) if n["kind"] == kind]


def _at(monkeypatch: pytest.MonkeyPatch, when: datetime) -> None:
    monkeypatch.setattr(warranty, "clock", lambda: when)


def test_production_starts_the_warranty_model_keeps_none(s: Setup) -> None:
    state = warranty.state(s.production, "E1")
    assert state is not None and (state.state, state.claims) == ("WP", 0)
    since, until = datetime.fromisoformat(state.since), datetime.fromisoformat(state.until)
    assert (until - since).days == 30  # production's warranty_days
    assert _events(s, "production") == ["warranty-start"]
    assert [n["subject"] for n in _notes(s, "warranty")] == [
        "[production] E1 under warranty (WP)"]
    assert warranty.state(s.model, "E1") is None and _events(s, "model") == []
    prod = cli(s.root, "migrate", "status", "--env", "production").stdout
    assert re.search(r"^  E1\s+deployed\s+WP\s", prod, re.MULTILINE), prod
    model = cli(s.root, "migrate", "status", "--env", "model").stdout
    assert re.search(r"^  E1\s+deployed\s+signed off\s", model, re.MULTILINE), model


def test_the_next_run_completes_a_due_warranty(s: Setup,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    _at(monkeypatch, later(29))
    s.run("production")
    assert warranty.state(s.production, "E1").state == "WP"  # type: ignore[union-attr]
    _at(monkeypatch, later(31))
    s.run("production")
    state = warranty.state(s.production, "E1")
    assert state is not None and state.state == "CP"
    assert _events(s, "production") == ["warranty-start", "warranty-complete"]
    assert "[production] E1 complete (CP)" in [n["subject"] for n in _notes(s, "warranty")]
    s.run("production")  # recorded once
    assert _events(s, "production").count("warranty-complete") == 1
    assert audit.verify(s.production.state_dir) == []


def test_warranty_check_command(s: Setup, monkeypatch: pytest.MonkeyPatch) -> None:
    lines: list[str] = []
    assert warranty.check_now(s.production, write=lines.append) == []
    assert lines == ["production: no warranty was due to complete"]
    assert warranty.check_now(s.production, now=later(31), write=lines.append) == ["E1"]
    assert lines[-1] == "E1: warranty complete in production (CP)"
    out = cli(s.root, "warranty", "show", "--env", "production")
    assert out.returncode == 0 and out.stdout.startswith("E1  CP  since ")
    out = cli(s.root, "warranty", "show", "--env", "model")
    assert out.stdout.strip() == "model keeps no warranties: it gates production"


def test_a_claim_is_recorded_notified_and_extends_nothing(
        s: Setup, monkeypatch: pytest.MonkeyPatch) -> None:
    before = warranty.state(s.production, "E1")
    assert before is not None
    out = cli(s.root, "warranty", "claim", "E1", "--env", "production", "--reason",
              "PROJ-9: totals off by one")
    assert out.returncode == 0, out.stderr
    assert f"the warranty still ends at {before.until}" in out.stdout
    state = warranty.state(s.production, "E1")
    assert state is not None and (state.state, state.claims, state.until) == (
        "claimed", 1, before.until)
    [note] = _notes(s, "warranty-claim")
    assert note["recipients"] == ["dev@example.com"] and "totals off by one" in str(note["body"])
    # The claim moved nothing: the warranty completes when it was due, saying so.
    _at(monkeypatch, later(31))
    s.run("production")
    state = warranty.state(s.production, "E1")
    assert state is not None and (state.state, state.claims) == ("CP", 1)
    assert "1 claim(s) were made during it" in str(_notes(s, "warranty")[-1]["body"])
    late = cli(s.root, "warranty", "claim", "E1", "--env", "production", "--reason", "again")
    assert late.returncode == 1 and "ended at" in late.stderr and "(CP)" in late.stderr


def test_no_claim_and_no_completion_after_a_revert(s: Setup) -> None:
    revert.revert(s.production, "E1", write=lambda _: None)
    assert warranty.state(s.production, "E1") is None
    with pytest.raises(warranty.WarrantyError, match="has no warranty in production"):
        warranty.claim(s.production, "E1", reason="x", repo_root=s.root, write=lambda _: None)
    assert warranty.check_now(s.production, now=later(31), write=lambda _: None) == []
    assert "warranty-complete" not in _events(s, "production")


def test_ci_record_claims_for_a_fix_naming_a_defect_under_warranty(s: Setup) -> None:
    """A commit that lands fixing PROJ-7 again while E1 (which brought PROJ-7) is under
    warranty in production: `ci record` records the claim there, once."""
    s.repo.commit("PROJ-7: the report page crashed on empty reports", {
        "app/report.py": "print('report' or 'empty')\n"})
    done = cli(s.root, "ci", "record", "--range", "HEAD~1..HEAD", "--format", "json")
    assert done.returncode == 0, done.stderr
    (line,) = json.loads(done.stdout)["warranty_claims"]
    assert line.startswith("E1: claim recorded in production (1 so far)")
    state = warranty.state(s.production, "E1")
    assert state is not None and (state.state, state.claims) == ("claimed", 1)
    assert _events(s, "production") == ["warranty-start", "warranty-claim"]
    [note] = _notes(s, "warranty-claim")
    assert f"fix commit {s.repo.head()[:12]} names PROJ-7" in str(note["body"])
    # The same commit again claims nothing; the enhancement's own commits never did.
    again = cli(s.root, "ci", "record", "--range", f"{s.base}..HEAD", "--format", "json")
    assert json.loads(again.stdout)["warranty_claims"] == []
    assert warranty.state(s.production, "E1").claims == 1  # type: ignore[union-attr]
