"""Roles ([promotion.roles]: who may sign as what) and the customer's sign-off in production,
which closes the integration and starts the warranty; real repositories, real git, SQLite
targets, through the same engine."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

import pytest
from engine_kit import cli
from promo_kit import Setup, later

from dasct import audit, config, notify
from dasct.errors import DasctError
from dasct.migrate import customer, promotion, revert, roles, status, warranty

QA = ("Quinn Assurance", "qa@example.com")
RITA = ("Rita Review", "rita@example.com")
BUYER = ("Bea Buyer", "Buyer@Customer.example")
ROLES = ('[promotion.roles]\nqa = ["qa@example.com"]\n'
         'customer = ["buyer@customer.example"]')
USERS = 'recipients = ["users@customer.example"]'


def _as(who: tuple[str, str]) -> dict[str, str]:
    return {"GIT_COMMITTER_NAME": who[0], "GIT_COMMITTER_EMAIL": who[1]}


def _qa_signs(s: Setup, who: tuple[str, str] = QA) -> None:
    with s.person(*who):
        promotion.signoff(s.model, "E1", into=[s.production], repo_root=s.root,
                          write=lambda _: None)


def _customer_signs(s: Setup, who: tuple[str, str] = BUYER, comment: str = "") -> None:
    with s.person(*who):
        customer.signoff(s.production, "E1", repo_root=s.root, comment=comment,
                         write=lambda _: None)


def _events(s: Setup) -> list[str]:
    return [str(r["event"]) for r in audit.records(s.production.state_dir)
            if r["event"] in (roles.CUSTOMER_SIGNOFF, warranty.START)]


def _notes(s: Setup, kind: str) -> list[dict[str, object]]:
    path = s.production.state_dir / notify.DELIVERED
    return [n for n in map(json.loads, path.read_text().splitlines()) if n["kind"] == kind]


@pytest.fixture
def s(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Setup:
    """Roles configured; E1 migrated in model, signed off by QA, migrated in production."""
    s = Setup(tmp_path, monkeypatch, roles=ROLES, production=USERS)
    s.stage_model()
    assert s.run("model").migrated == ["E1"]
    _qa_signs(s)
    assert s.run("production").migrated == ["E1"]
    return s


def test_bad_roles_are_one_line_naming_the_key(tmp_path: Path) -> None:
    for body, message in [
        ('[promotion.roles]\nqa = ["nobody"]\n',
         r"`promotion\.roles\.qa\[0\]`: 'nobody' is not an e-mail address"),
        ('[promotion.roles]\nboss = ["b@example.com"]\n', r"unknown key `promotion\.roles\.boss`"),
        ('[promotion.roles]\ncustomer = "b@example.com"\n',
         r"`promotion\.roles\.customer` must be a list, not a string"),
    ]:
        (tmp_path / ".dasct.toml").write_text(body)
        with pytest.raises(DasctError, match=message) as exc:
            config.load(tmp_path)
        assert "\n" not in str(exc.value)


def test_qa_role_refuses_who_is_not_listed_and_the_wrong_role(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:
    s = Setup(tmp_path, monkeypatch, roles=ROLES)
    s.stage_model()
    assert s.run("model").migrated == ["E1"]
    refusals = {
        (RITA, None): "dasct: Rita Review <rita@example.com> may not sign off as qa in model: "
                      "[promotion.roles] qa does not list you",
        (QA, "customer"): "dasct: customer signs off in an environment that gates none (e.g. "
                          "production), and model takes the qa's sign-off (`--as qa`)",
        (QA, "boss"): "dasct: not a role: 'boss' (roles: qa, customer)",
        (BUYER, "qa"): "dasct: Bea Buyer <Buyer@Customer.example> may not sign off as qa in "
                       "model: [promotion.roles] qa does not list you",
    }
    for (who, role), line in refusals.items():
        args = ["signoff", "E1", "--env", "model", *(["--as", role] if role else [])]
        done = cli(s.root, *args, env=_as(who))
        assert (done.returncode, done.stderr.strip().splitlines()) == (1, [line])
    assert promotion.signoffs(s.model, "E1") == []  # nothing recorded by a refusal
    ok = cli(s.root, "signoff", "E1", "--env", "model", "--as", "qa", env=_as(QA))
    assert ok.returncode == 0, ok.stderr
    assert [so.email for so in promotion.signoffs(s.model, "E1")] == ["qa@example.com"]


def test_rejection_takes_the_role_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = Setup(tmp_path, monkeypatch, roles=ROLES)
    s.stage_model()
    assert s.run("model").migrated == ["E1"]
    with s.person(*RITA), pytest.raises(roles.RoleError, match="may not sign off as qa"):
        promotion.reject(s.model, "E1", reason="wrong totals", repo_root=s.root)
    assert promotion.state(s.model, "E1").state == promotion.AWAITING  # type: ignore[union-attr]


def test_the_customer_signs_off_after_production_and_starts_the_warranty(
        s: Setup, monkeypatch: pytest.MonkeyPatch) -> None:
    # Migrated, but no warranty yet: it waits for the customer.
    assert warranty.state(s.production, "E1") is None and warranty.awaiting(s.production, "E1")
    assert _events(s) == []
    cfg = config.load(s.root)
    waiting = status.report(cfg, s.root).state("E1", "production")
    assert waiting.state == "awaiting customer sign-off"
    shown = cli(s.root, "migrate", "status", "--env", "production").stdout
    assert re.search(r"^  E1\s+deployed\s+awaiting customer sign-off\s", shown, re.M), shown
    where = cli(s.root, "where", "E1").stdout
    assert "awaiting customer sign-off" in where, where
    # A later run starts nothing either.
    s.run("production")
    assert warranty.state(s.production, "E1") is None

    signed_at = later(3).replace(microsecond=0)
    monkeypatch.setattr(warranty, "clock", lambda: signed_at)
    _customer_signs(s, comment="remote tests passed")
    state = warranty.state(s.production, "E1")
    assert state is not None and state.state == warranty.WP
    assert datetime.fromisoformat(state.since) == signed_at  # from the sign-off, not the run
    assert (datetime.fromisoformat(state.until) - signed_at).days == 30
    assert _events(s) == [roles.CUSTOMER_SIGNOFF, warranty.START]
    done = roles.customer_signed(s.production)["E1"]
    assert (done.email, done.comment) == ("Buyer@Customer.example", "remote tests passed")
    assert audit.verify(s.production.state_dir) == []
    assert not warranty.awaiting(s.production, "E1")
    after = status.report(config.load(s.root), s.root).state("E1", "production")
    assert (after.state, after.warranty) == ("migrated", "WP")
    # Who is told: the developer (the commit's author), QA (the qa role), the users of the
    # changed system (production's recipients).
    [note] = _notes(s, notify.CUSTOMER_SIGNOFF)
    assert sorted(note["recipients"]) == [  # type: ignore[arg-type]
        "dev@example.com", "qa@example.com", "users@customer.example"]
    assert note["subject"] == "[production] E1 signed off by the customer"
    assert "remote tests passed" in str(note["body"])
    # Signed once.
    with pytest.raises(promotion.PromotionError, match=r"already signed off in production by "
                       r"Bea Buyer <Buyer@Customer.example>"):
        _customer_signs(s)
    # The warranty ends 30 days after the sign-off, not after the migration.
    monkeypatch.setattr(warranty, "clock", lambda: later(31))
    s.run("production")
    assert warranty.state(s.production, "E1").state == warranty.WP  # type: ignore[union-attr]
    monkeypatch.setattr(warranty, "clock", lambda: later(34))
    s.run("production")
    assert warranty.state(s.production, "E1").state == warranty.CP  # type: ignore[union-attr]


def test_the_customer_is_refused_before_the_production_migration(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = Setup(tmp_path, monkeypatch, roles=ROLES)
    s.stage_model()
    assert s.run("model").migrated == ["E1"]
    early = cli(s.root, "signoff", "E1", "--env", "production", "--as", "customer",
                env=_as(BUYER))
    assert early.returncode == 1
    assert early.stderr.strip().splitlines() == [
        "dasct: cannot sign off: E1 has not been migrated in production"]
    _qa_signs(s)
    assert s.run("production").migrated == ["E1"]
    # `--as customer` may be left out where the customer is the one who signs.
    done = cli(s.root, "signoff", "E1", "--env", "production", env=_as(BUYER))
    assert done.returncode == 0, done.stderr
    assert "E1: signed off by the customer Bea Buyer <Buyer@Customer.example> in production; " \
           "its integration is closed; its warranty starts now" in done.stdout


def test_only_the_customer_signs_in_production(s: Setup) -> None:
    for who, role, line in [
        (QA, None, "Quinn Assurance <qa@example.com> may not sign off as customer in "
                   "production: [promotion.roles] customer does not list you"),
        (BUYER, "qa", "qa signs off in a gate environment (one that gates another, e.g. "
                      "model), and production takes the customer's sign-off (`--as customer`)"),
    ]:
        args = ["signoff", "E1", "--env", "production", *(["--as", role] if role else [])]
        done = cli(s.root, *args, env=_as(who))
        assert (done.returncode, done.stderr.strip().splitlines()) == (1, [f"dasct: {line}"])
    assert _events(s) == [] and warranty.awaiting(s.production, "E1")


def test_the_customer_cannot_sign_what_was_reverted_or_rolled_back(
        s: Setup, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    revert.revert(s.production, "E1", write=lambda _: None)
    with pytest.raises(promotion.PromotionError,
                       match=r"cannot sign off: E1 was reverted in production since"):
        _customer_signs(s)
    assert not warranty.awaiting(s.production, "E1")

    failing = Setup(tmp_path / "failing", monkeypatch, roles=ROLES,
                    production='verify = ["false"]')
    failing.stage_model()
    assert failing.run("model").migrated == ["E1"]
    _qa_signs(failing)
    assert failing.run("production").rolled_back == ["E1"]
    with pytest.raises(promotion.PromotionError,
                       match=r"cannot sign off: E1 failed in production and was rolled back"):
        _customer_signs(failing)
    assert _events(failing) == []


def test_a_sign_off_that_died_before_the_start_gets_it_from_the_next_run(s: Setup) -> None:
    """The `customer-signoff` record without its `warranty-start` (a process that died in
    between): the next run starts the warranty from the sign-off's time."""
    from dasct.migrate.report import Reporter

    env = s.production
    with s.person(*BUYER):
        who, email = promotion.identity(s.root)
    report = Reporter(env.state_dir, environment=env.name, recipients=(), anchor=env.anchor)
    report.audit(roles.CUSTOMER_SIGNOFF, trigger="E1", approver=who, email=email, comment="")
    report.checkpoint()
    report.flush()
    when = roles.customer_signed(env)["E1"].when
    assert warranty.state(env, "E1") is None
    s.run("production")
    state = warranty.state(env, "E1")
    assert state is not None and datetime.fromisoformat(state.since) == \
        datetime.fromisoformat(when).replace(microsecond=0)


def test_qa_recipients_are_told_and_an_author_cannot_be_the_customer(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = Setup(tmp_path, monkeypatch, model='recipients = ["qa-team@example.com"]',
              roles='[promotion.roles]\ncustomer = ["dev@example.com", "buyer@customer.example"]')
    s.stage_model()
    assert s.run("model").migrated == ["E1"]
    _qa_signs(s)  # no qa role: anyone but an author
    assert s.run("production").migrated == ["E1"]
    with pytest.raises(promotion.PromotionError, match=r"is an author of E1"):
        _customer_signs(s, ("Dee Developer", "dev@example.com"))
    assert _events(s) == []
    _customer_signs(s)
    [note] = _notes(s, notify.CUSTOMER_SIGNOFF)
    assert sorted(note["recipients"]) == ["dev@example.com", "qa-team@example.com"]  # type: ignore[arg-type]


def test_without_roles_nothing_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = Setup(tmp_path, monkeypatch)
    s.stage_model()
    assert s.run("model").migrated == ["E1"]
    _qa_signs(s, RITA)  # anyone but an author signs off in model
    assert s.run("production").migrated == ["E1"]
    assert warranty.state(s.production, "E1").state == warranty.WP  # type: ignore[union-attr]
    assert not warranty.awaiting(s.production, "E1")
    there = cli(s.root, "signoff", "E1", "--env", "production", env=_as(BUYER))
    assert there.returncode == 1
    assert there.stderr.strip().startswith("dasct: production gates no environment")
    asked = cli(s.root, "signoff", "E1", "--env", "production", "--as", "customer",
                env=_as(BUYER))
    assert asked.stderr.strip().splitlines() == [
        "dasct: Bea Buyer <Buyer@Customer.example> may not sign off as customer in "
        "production: [promotion.roles] customer lists no one"]
