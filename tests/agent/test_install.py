"""`dasct agent install`: the deliberate act, then the engine; refusals keep a trace."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest
from life_kit import PASSPHRASE, SEED_FILES, Publisher, health, home, snapshot

from dasct import audit, note
from dasct.agent import AgentError, consent, history, review
from dasct.agent.install import Act, install
from dasct.agent.local import Local, locate
from dasct.migrate import archive, trace

V2 = [("modify", "app/main.py", b"print('v2')\n", None)]
DAY = 86400.0


def quiet(local: Local, **kw: object) -> None:
    install(local, write=lambda _: None, **kw)  # type: ignore[arg-type]


@pytest.fixture
def local(tmp_path: Path) -> Local:
    loc = home(tmp_path)
    consent.set_passphrase(loc.state_dir, PASSPHRASE)
    return loc


def _events(local: Local) -> list[str]:
    return [e["event"] for e in history.entries(local.state_dir)]


def test_the_right_passphrase_installs_through_the_engine(local: Local) -> None:
    before = snapshot(local.env.root)
    rel = Publisher(local).downloaded(SEED_FILES)
    quiet(local, act=Act(PASSPHRASE), keep_for=3 * DAY)
    assert snapshot(local.env.root) != before
    assert (local.env.root / "app" / "main.py").read_text() == "print('v2')\n"
    assert (local.env.root / "app" / "new" / "deep" / "feature.py").is_file()
    s = local.load()
    assert s.installed == rel.version == 1 and s.waiting is None
    assert [(w.version, w.triggers, w.previous) for w in s.windows] == [(1, ("rel-1",), 0)]
    assert archive.load(local.state_dir, "rel-1")  # the uninstall version
    assert not list((local.state_dir / "agent" / "downloads").glob("*.tar"))
    assert _events(local) == ["installed"]


def test_a_trigger_past_its_push_time_expiry_installs(local: Local) -> None:
    # A machine may look for updates weeks after CI built the trigger: the release's TUF
    # metadata (verified at download) bounds its age, not the trigger's `expires`.
    Publisher(local).downloaded(SEED_FILES, expires_in=timedelta(minutes=-10))
    quiet(local, act=Act(PASSPHRASE), keep_for=3 * DAY)
    assert (local.env.root / "app" / "main.py").read_text() == "print('v2')\n"
    assert local.load().installed == 1 and _events(local) == ["installed"]
    start = [r for r in audit.records(local.state_dir) if r["event"] == "run-start"]
    assert start[-1]["fields"]["honour_expiry"] is False


def test_a_wrong_passphrase_installs_nothing_and_keeps_a_trace(local: Local) -> None:
    before = snapshot(local.env.root)
    Publisher(local).downloaded(SEED_FILES)
    with pytest.raises(AgentError, match="wrong passphrase"):
        quiet(local, act=Act("not the passphrase"), keep_for=DAY)
    assert snapshot(local.env.root) == before
    assert local.load().waiting is not None and local.load().installed == 0
    assert _events(local) == ["refused"]
    [entry] = trace.find(local.state_dir, "release-1")
    head, rows = trace.load(local.state_dir, entry)
    steps = [r["fields"].get("step") for r in rows if r["record"] == "agent"]
    assert steps == ["install", "consent"]  # the steps before the refusal
    assert "wrong passphrase" in head["failures"][0]


def test_no_passphrase_no_install(local: Local) -> None:
    Publisher(local).downloaded(SEED_FILES)
    with pytest.raises(AgentError, match="needs the passphrase"):
        quiet(local, act=Act(None), keep_for=DAY)
    assert local.load().installed == 0


def test_no_passphrase_set_is_refused(tmp_path: Path) -> None:
    loc = home(tmp_path)
    Publisher(loc).downloaded(SEED_FILES)
    with pytest.raises(AgentError, match="no install passphrase is set"):
        quiet(loc, act=Act(PASSPHRASE), keep_for=DAY)


def test_the_uninstall_period_must_be_chosen(local: Local) -> None:
    Publisher(local).downloaded(SEED_FILES)
    with pytest.raises(AgentError, match="choose an uninstall period"):
        quiet(local, act=Act(PASSPHRASE), chosen=False)


def test_a_tampered_download_is_refused_with_a_trace(local: Local) -> None:
    before = snapshot(local.env.root)
    Publisher(local).downloaded(SEED_FILES)
    tar = Path(local.load().waiting.path)  # type: ignore[union-attr]
    data = bytearray(tar.read_bytes())
    data[600] ^= 1
    tar.write_bytes(bytes(data))
    with pytest.raises(AgentError, match="differs from its signed target"):
        quiet(local, act=Act(PASSPHRASE), keep_for=DAY)
    assert snapshot(local.env.root) == before
    assert not list((local.env.staging / "triggers").rglob("*.json"))  # nothing extracted
    assert trace.find(local.state_dir, "release-1")


def test_a_failed_verify_is_rolled_back_recorded_and_the_download_kept(local: Local) -> None:
    before = snapshot(local.env.root)
    Publisher(local).downloaded(SEED_FILES, commands=[health(1)])
    with pytest.raises(AgentError, match="rolled back") as info:
        quiet(local, act=Act(PASSPHRASE), keep_for=DAY)
    assert "\n" not in str(info.value)
    assert snapshot(local.env.root) == before
    s = local.load()
    assert s.installed == 0 and s.waiting is not None and Path(s.waiting.path).is_file()
    [failed] = history.entries(local.state_dir)
    assert failed["event"] == "install-failed" and failed["rolled_back"] == ["rel-1"]
    assert trace.find(local.state_dir, "rel-1")  # the engine's own trace


def test_retention_keeps_every_archive_an_open_uninstall_window_needs(tmp_path: Path) -> None:
    # The tightest retention: without the agent's pins each install would prune its own
    # archive, and the releases could not be taken back.
    home(tmp_path)
    toml = tmp_path / ".dasct.toml"
    toml.write_text(toml.read_text().replace('staging = "staging"\n', 'staging = "staging"\n'
                    'retention_count = 0\nretention_days = 0\nwarranty_days = 0\n'))
    loc = locate(tmp_path)
    consent.set_passphrase(loc.state_dir, PASSPHRASE)
    before = snapshot(loc.env.root)
    publisher = Publisher(loc)
    publisher.downloaded(SEED_FILES)
    quiet(loc, act=Act(PASSPHRASE), keep_for=3 * DAY)
    publisher.downloaded([("modify", "app/main.py", b"print('v3')\n", None)])
    quiet(loc, act=Act(PASSPHRASE), keep_for=3 * DAY)
    assert archive.load(loc.state_dir, "rel-1") and archive.load(loc.state_dir, "rel-2")
    review.uninstall(loc, 2, write=lambda _: None)
    review.uninstall(loc, 1, write=lambda _: None)
    assert snapshot(loc.env.root) == before and loc.load().installed == 0


def test_no_uninstall_deletes_the_archive(local: Local) -> None:
    Publisher(local).downloaded(SEED_FILES)
    quiet(local, act=Act(PASSPHRASE), keep_for=None)
    assert local.load().windows == ()
    with pytest.raises(archive.ArchiveError):
        archive.load(local.state_dir, "rel-1")


# --------------------------------------------------------------------------- policy


def _policy(tmp: Path, signer: note.Key | None, **fields: object) -> Path:
    doc = {"environment": "model", "systems": ["app"], "restart": False, "keep_for": "2d",
           "not_after": (date.today() + timedelta(days=30)).isoformat(), **fields}
    text = json.dumps(doc, indent=1) + "\n"
    path = tmp / "policy.note"
    path.write_text(note.sign(text, [signer]) if signer else text)
    return path


@pytest.fixture
def keys() -> tuple[note.Key, str]:
    skey, vkey = note.generate_ed25519("admin")
    return note.ed25519_signer(skey), vkey


def _policy_home(tmp: Path, vkey: str) -> Local:
    return home(tmp, f'install = "policy"\npolicy_file = "policy.note"\n'
                     f'policy_public_keys = ["{vkey}"]\n')


def test_a_signed_policy_installs_unattended(tmp_path: Path, keys: tuple[note.Key, str]) -> None:
    loc = _policy_home(tmp_path, keys[1])
    _policy(tmp_path, keys[0])
    Publisher(loc).downloaded(SEED_FILES)
    quiet(loc, act=Act(), chosen=False)
    s = loc.load()
    assert s.installed == 1
    assert s.windows[0].ends - s.windows[0].installed_at == pytest.approx(2 * DAY)


@pytest.mark.parametrize(("fields", "signed", "match"), [
    ({}, False, "not signed by an administrator"),
    ({"environment": "production"}, True, "for environment 'production'"),
    ({"not_after": "2020-01-01"}, True, "expired on 2020-01-01"),
    ({"systems": ["other"]}, True, "does not allow system 'app'"),
])
def test_a_bad_policy_is_refused(tmp_path: Path, keys: tuple[note.Key, str],
                                 fields: dict[str, object], signed: bool, match: str) -> None:
    loc = _policy_home(tmp_path, keys[1])
    _policy(tmp_path, keys[0] if signed else None, **fields)
    before = snapshot(loc.env.root)
    Publisher(loc).downloaded(SEED_FILES)
    with pytest.raises(AgentError, match=match):
        quiet(loc, act=Act(), chosen=False)
    assert snapshot(loc.env.root) == before
    assert [e["event"] for e in history.entries(loc.state_dir)] == ["refused"]
    assert trace.find(loc.state_dir, "release-1")


def test_a_policy_signed_by_another_key_is_refused(tmp_path: Path,
                                                   keys: tuple[note.Key, str]) -> None:
    loc = _policy_home(tmp_path, keys[1])
    other = note.ed25519_signer(note.generate_ed25519("mallory")[0])
    _policy(tmp_path, other)
    Publisher(loc).downloaded(SEED_FILES)
    with pytest.raises(AgentError, match="unknown key"):
        quiet(loc, act=Act(), chosen=False)


def test_a_restart_the_policy_does_not_allow_is_refused(tmp_path: Path,
                                                        keys: tuple[note.Key, str]) -> None:
    loc = _policy_home(tmp_path, keys[1])
    _policy(tmp_path, keys[0])
    Publisher(loc).downloaded(SEED_FILES, restart=True)
    with pytest.raises(AgentError, match="needs a restart"):
        quiet(loc, act=Act(), chosen=False)


def test_periods() -> None:
    assert consent.parse_period("90m") == 5400
    assert consent.parse_period("12h") == 43200
    assert consent.parse_period("3d") == 3 * DAY
    for bad in ("", "3", "0d", "1w", "-1d"):
        with pytest.raises(AgentError):
            consent.parse_period(bad)
