"""Taking an upgrade back (example 5): uninstall to the exact previous version, keep for a
new period, keep for good."""

from __future__ import annotations

from pathlib import Path

import pytest
from life_kit import PASSPHRASE, SEED_FILES, Publisher, home, snapshot

from dasct.agent import AgentError, consent, history, review
from dasct.agent.install import Act, install
from dasct.agent.local import Local
from dasct.migrate import archive

DAY = 86400.0
V3 = [("modify", "app/main.py", b"print('v3')\n", None),
      ("add", "app/extra.py", b"extra = 3\n", None)]


def _quiet(_: str) -> None:
    pass


@pytest.fixture
def local(tmp_path: Path) -> Local:
    loc = home(tmp_path)
    consent.set_passphrase(loc.state_dir, PASSPHRASE)
    return loc


def _install(local: Local, pub: Publisher, files: object, keep: float | None = DAY) -> None:
    pub.downloaded(files)  # type: ignore[arg-type]
    install(local, act=Act(PASSPHRASE), keep_for=keep, write=_quiet)


def test_uninstall_goes_back_to_the_exact_previous_version(local: Local) -> None:
    pub = Publisher(local)
    original = snapshot(local.env.root)
    _install(local, pub, SEED_FILES)
    after_one = snapshot(local.env.root)
    _install(local, pub, V3)
    assert (local.env.root / "app" / "main.py").read_text() == "print('v3')\n"
    review.uninstall(local, 2, write=_quiet)
    assert snapshot(local.env.root) == after_one  # byte-identical, modes included
    s = local.load()
    assert s.installed == 1 and s.declined == (2,) and [w.version for w in s.windows] == [1]
    review.uninstall(local, 1, write=_quiet)
    assert snapshot(local.env.root) == original
    assert local.load().installed == 0


def test_only_the_installed_version_can_be_taken_back(local: Local) -> None:
    pub = Publisher(local)
    _install(local, pub, SEED_FILES)
    _install(local, pub, V3)
    with pytest.raises(AgentError, match="newest first"):
        review.uninstall(local, 1, write=_quiet)
    with pytest.raises(AgentError, match="no uninstall window"):
        review.uninstall(local, 7, write=_quiet)


def test_ended_windows_newest_first(local: Local) -> None:
    pub = Publisher(local)
    _install(local, pub, SEED_FILES, keep=60.0)
    _install(local, pub, V3, keep=60.0)
    s = local.load()
    assert review.ended(s, s.windows[0].installed_at + 30) == []
    assert [w.version for w in review.ended(s, s.windows[1].ends + 1)] == [2, 1]


def test_keep_for_changes_the_window(local: Local) -> None:
    _install(local, Publisher(local), SEED_FILES, keep=60.0)
    new = review.keep(local, 1, 3 * DAY, now=5000.0, write=_quiet)
    assert new.ends == 5000.0 + 3 * DAY
    assert local.load().windows[0].ends == new.ends


def test_keep_forever_forgets_the_window_and_deletes_the_archive(local: Local) -> None:
    _install(local, Publisher(local), SEED_FILES)
    assert review.keep_forever(local, 1, write=_quiet) == ["rel-1"]
    assert local.load().windows == ()
    with pytest.raises(archive.ArchiveError):
        archive.load(local.state_dir, "rel-1")
    with pytest.raises(AgentError, match="no uninstall window"):
        review.uninstall(local, 1, write=_quiet)


def test_history_lists_every_decision(local: Local) -> None:
    pub = Publisher(local)
    _install(local, pub, SEED_FILES)
    _install(local, pub, V3)
    review.keep(local, 2, DAY, write=_quiet)
    review.uninstall(local, 2, write=_quiet)
    review.keep_forever(local, 1, write=_quiet)
    pub.downloaded([("modify", "app/main.py", b"print('v4')\n", None)])
    with pytest.raises(AgentError):
        install(local, act=Act("wrong passphrase"), keep_for=DAY, write=_quiet)
    got = [(e["event"], e["version"]) for e in history.entries(local.state_dir)]
    assert got == [("installed", 1), ("installed", 2), ("kept", 2), ("uninstalled", 2),
                   ("kept-forever", 1), ("refused", 3)]
    assert all(e["time"].endswith("Z") for e in history.entries(local.state_dir))


def test_history_is_redacted(local: Local, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UPDATES_TOKEN", "s3cr3t-value-42")
    history.add(local.state_dir, history.REFUSED, 1, reason="server said s3cr3t-value-42")
    text = history.path_of(local.state_dir).read_text()
    assert "s3cr3t-value-42" not in text and "[redacted]" in text
