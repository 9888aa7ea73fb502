"""End to end over loopback: CI publishes signed releases, the agent checks, downloads,
installs with a passphrase and takes the upgrade back."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from agent_kit import ENV, Kit
from life_kit import PASSPHRASE, SEED_FILES, cli, fd_with, snapshot

from dasct import config
from dasct.agent import publish
from dasct.commands.publish import staged
from dasct.migrate.environment import Environment, environment

pytestmark = pytest.mark.slow


def _target(folder: Path, extra: str = "") -> Environment:
    """An environment ENV in folder, its root holding the files SEED_FILES change."""
    (folder / "target" / "app").mkdir(parents=True)
    (folder / ".dasct.toml").write_text(
        f'[environments.{ENV}]\nroot = "target"\ndatabase = "sqlite:///db.sqlite"\n'
        f'state_dir = "state"\nstaging = "staging"\n{extra}')
    for name, text in (("main.py", "print('v1')\n"), ("old.py", "old\n"), ("gone.py", "gone\n")):
        (folder / "target" / "app" / name).write_text(text)
    return environment(config.load(folder), ENV, folder)


def _publish(kit: Kit, ci: Environment, tid: str, files: object) -> publish.Outcome:
    from engine_kit import stage

    now = datetime.now(timezone.utc)
    stage(ci, tid, files=files, not_before=now - timedelta(hours=1),  # type: ignore[arg-type]
          expires=now + timedelta(days=30))
    found = staged(ENV, config.load(ci.root.parent), ci.root.parent)
    return publish.publish(kit.cfg, env=ENV, system="app", staged=found, base=kit.base,
                           now=kit.now)


def test_publish_check_install_uninstall(kit: Kit, tmp_path: Path) -> None:
    out = kit.tmp / "ci"
    home = tmp_path / "agent-home"
    url = f"{kit.server.url}{ENV}/metadata/"
    # The target: its own config, [agent] pointing at the served repository.
    _target(home, f'\n[agent]\nenvironment = "{ENV}"\nmetadata_url = "{url}"\n'
                  f'trusted_root = "{kit.meta / "1.root.json"}"\nuses = 2\n')
    # CI: the same environment's content, where triggers are staged and published.
    ci = _target(out)
    r = cli(home, "check", "--now", "--foreground")
    assert r.returncode == 1 and "cannot update" in r.stderr  # nothing published yet
    assert _publish(kit, ci, "enh-1", SEED_FILES).version == 1
    before = snapshot(home / "target")

    r = cli(home, "check", "--now", "--foreground")
    assert r.returncode == 0, r.stderr
    assert "downloaded version 1" in r.stdout and "fixes PROJ-1" in r.stderr
    r = cli(home, "check", "--now", "--foreground")
    assert "already downloaded" in r.stdout

    fd = fd_with(PASSPHRASE, PASSPHRASE)
    assert cli(home, "passphrase", "--passphrase-fd", str(fd), pass_fds=[fd]).returncode == 0
    fd = fd_with(PASSPHRASE)
    r = cli(home, "install", "--keep-for", "3d", "--passphrase-fd", str(fd), pass_fds=[fd])
    assert r.returncode == 0, r.stdout + r.stderr
    assert (home / "target" / "app" / "main.py").read_text() == "print('v2')\n"
    r = cli(home, "check", "--now", "--foreground")
    assert r.stdout.startswith("nothing new: checked http://127.0.0.1")

    r = cli(home, "review", "--version", "1", "--uninstall")
    assert r.returncode == 0, r.stdout + r.stderr
    assert snapshot(home / "target") == before
    # The version taken back is not offered again; the next one is.
    r = cli(home, "check", "--now", "--foreground")
    assert "nothing new" in r.stdout and "declined: 1" in r.stdout
    (out / "target" / "app" / "main.py").write_text("print('v2')\n")  # CI's view: 1 applied
    _publish(kit, ci, "enh-2", [("modify", "app/old.py", b"new\n", None)])
    r = cli(home, "check", "--now", "--foreground")
    assert "downloaded version 2" in r.stdout
    events = cli(home, "history").stdout
    assert "installed" in events and "uninstalled" in events


def test_uses_start_a_background_download_and_the_next_use_tells(kit: Kit,
                                                                tmp_path: Path) -> None:
    home = tmp_path / "agent-home"
    url = f"{kit.server.url}{ENV}/metadata/"
    _target(home, f'\n[agent]\nenvironment = "{ENV}"\nmetadata_url = "{url}"\n'
                  f'trusted_root = "{kit.meta / "1.root.json"}"\nuses = 2\n'
                  'every_hours = 1000\nbandwidth_kib = 512\n')
    _publish(kit, _target(kit.tmp / "ci"), "enh-1", SEED_FILES)
    assert cli(home, "used", "editor").stderr == ""  # 1 use: first check not due yet
    assert cli(home, "status", "--format", "json").stdout.count('"installed": 0') == 1
    r = cli(home, "used", "editor")  # the 2nd use: due, the check starts in the background
    assert r.returncode == 0 and r.stderr == ""
    doc: dict[str, object] = {}
    for _ in range(100):
        doc = json.loads(cli(home, "status", "--format", "json").stdout)
        if doc["waiting"] and not doc["checking"]:
            break
        time.sleep(0.1)
    assert doc["waiting"], doc
    assert doc["uses_since_last_check"] == 0
    log = (home / "state" / "agent" / "download.log").read_text()
    assert "nice +19" in log and "downloaded version 1" in log
    r = cli(home, "used", "editor")
    assert "version 1 of app for production is downloaded and verified" in r.stderr
    assert cli(home, "used", "editor").stderr == ""  # once per release (a 2nd check starts)
    for _ in range(100):  # let that check end while the server still serves
        if not json.loads(cli(home, "status", "--format", "json").stdout)["checking"]:
            break
        time.sleep(0.1)
