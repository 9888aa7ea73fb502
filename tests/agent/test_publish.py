"""dasct publish: the TUF repository it writes, read back by the real ngclient."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from agent_kit import ENV, SYSTEM, Kit, hours, new_key, staged

from dasct import config
from dasct.agent import AgentError, client, release, tufkeys
from hidden_module import hiding

SRC = Path(__file__).resolve().parents[2] / "src"


def test_first_publish_writes_release_1_and_the_four_roles(kit: Kit) -> None:
    out = kit.publish(staged("E1", b"one"))
    assert (out.version, out.new_triggers, out.signed) == (1, ("E1",),
                                                           ["targets", "snapshot", "timestamp"])
    names = sorted(p.name for p in kit.meta.iterdir())
    assert names == ["1.root.json", "1.snapshot.json", "1.targets.json", "root.json",
                     "timestamp.json"]
    info = kit.md("1.targets.json").signed.targets[f"{ENV}/releases/1.tar"]
    # consistent snapshot: the tar is stored under its hash prefix
    assert (kit.tmp / "served" / ENV / "targets" / ENV / "releases"
            / f"{info.hashes['sha256']}.1.tar").is_file()
    assert info.custom["dasct"]["new_triggers"] == ["E1"]


def test_the_client_finds_downloads_and_extracts_the_newest(kit: Kit) -> None:
    kit.publish(staged("E1", b"one", defects=("PROJ-1",)))
    kit.publish(staged("E2", b"two", defects=("PROJ-2",), restart=True))
    src = kit.source()
    found = client.check(src, installed=0)
    assert found is not None
    assert (found.version, found.triggers, found.new_triggers) == (2, ("E1", "E2"), ("E2",))
    assert (found.defects, found.restart, found.system) == (("PROJ-2",), True, SYSTEM)
    tar = client.download(src, found, kit.tmp / "dl")
    staging = kit.tmp / "staging"
    written = release.extract(tar, found, staging)
    assert [p.name for p in written] == ["E1.json", "E2.json"]
    from dasct.migrate.trigger import pending
    assert pending(staging, ENV) == written
    assert client.check(src, installed=2) is None
    # a verified file already there is reused, not fetched again
    before = kit.server.requests[f"{ENV}/targets/{ENV}/releases/{found.sha256}.2.tar"]
    assert client.download(src, found, kit.tmp / "dl") == tar
    assert kit.server.requests[f"{ENV}/targets/{ENV}/releases/{found.sha256}.2.tar"] == before


def test_nothing_new_writes_nothing_until_an_expiry_nears(kit: Kit) -> None:
    kit.publish(staged("E1", b"one"))
    out = kit.publish()
    assert (out.version, out.new_triggers, out.signed) == (1, (), [])
    out = kit.publish(now=kit.now + hours(13))  # timestamp (1 day) past half its life
    assert out.signed == ["timestamp"]
    assert kit.md("timestamp.json").signed.version == 2
    out = kit.publish(now=kit.now + hours(24 * 4))  # snapshot (7 days) too
    assert out.signed == ["snapshot", "timestamp"]


def test_a_published_trigger_cannot_change(kit: Kit) -> None:
    kit.publish(staged("E1", b"one"))
    kit.staged = [staged("E1", b"other")]
    with pytest.raises(AgentError, match=r"E1 .* differs from the one published in release 1"):
        kit.publish()


def test_threshold_above_the_key_count_is_refused(kit: Kit) -> None:
    from dataclasses import replace
    kit.cfg = replace(kit.cfg, targets=replace(kit.cfg.targets, threshold=2))
    with pytest.raises(AgentError, match=r"targets.threshold 2 is more than its 1"):
        kit.publish(staged("E1", b"one"))


def test_a_key_from_the_environment_and_errors_that_never_show_it(
        kit: Kit, monkeypatch: pytest.MonkeyPatch) -> None:
    from dataclasses import replace
    pem = Path(kit.cfg.timestamp.keys[0][5:]).read_text()
    monkeypatch.setenv("TS_KEY", pem)
    kit.cfg = replace(kit.cfg, timestamp=replace(kit.cfg.timestamp, keys=("env:TS_KEY",)))
    assert kit.publish(staged("E1", b"one")).version == 1
    monkeypatch.setenv("TS_KEY", pem.replace("A", "B", 3))
    with pytest.raises(AgentError) as err:
        kit.publish(staged("E2", b"two"))
    assert str(err.value) == ("[publish] timestamp key env:TS_KEY: not an unencrypted PEM "
                              "private key (Ed25519, ECDSA or RSA)")
    monkeypatch.delenv("TS_KEY")
    with pytest.raises(AgentError, match="env:TS_KEY: the variable is not set"):
        kit.publish(staged("E3", b"three"))


def test_a_configured_key_root_does_not_trust_is_refused(kit: Kit) -> None:
    from dataclasses import replace
    kit.publish(staged("E1", b"one"))
    kit.cfg = replace(kit.cfg, snapshot=replace(
        kit.cfg.snapshot, keys=(new_key(kit.base / "keys", "stray"),)))
    with pytest.raises(AgentError, match="--rotate snapshot"):
        kit.publish(staged("E2", b"two"))


def test_root_keys_stay_offline_unless_root_is_signed(kit: Kit) -> None:
    from dataclasses import replace
    kit.publish(staged("E1", b"one"))
    kit.cfg = replace(kit.cfg, root=replace(kit.cfg.root, keys=("file:/offline/root.pem",)))
    assert kit.publish(staged("E2", b"two")).signed == ["targets", "snapshot", "timestamp"]
    assert kit.publish(now=kit.now + hours(13)).signed == ["timestamp"]
    late = kit.publish(staged("E3", b"three"), now=kit.now + hours(24 * 200))
    assert late.version == 3 and late.root_version == 1  # published; root not renewed
    assert len(late.warnings) == 1
    assert "root v1 expires" in late.warnings[0]
    assert late.warnings[0].endswith("root key file:/offline/root.pem: cannot read: "
                                     "No such file or directory")
    with pytest.raises(AgentError, match=r"root key file:/offline/root\.pem: cannot read"):
        kit.publish(now=kit.now + hours(24 * 366))  # root expired: nothing can be published


@pytest.mark.parametrize("role", ["root", "timestamp"])
def test_rotation_is_followed_and_the_retired_key_is_refused(kit: Kit, role: str) -> None:
    from dataclasses import replace
    kit.publish(staged("E1", b"one"))
    src = kit.source()
    assert client.check(src, installed=0) is not None  # trusts root v1
    retired = kit.signer(role)
    fresh = new_key(kit.base / "keys", f"{role}2")
    out = kit.publish(rotate=(role, [fresh]))
    assert out.root_version == 2
    kit.cfg = replace(kit.cfg, **{role: replace(getattr(kit.cfg, role), keys=(fresh,))})
    kit.publish(staged("E2", b"two"))
    found = client.check(src, installed=1)
    assert found is not None and found.version == 2
    from tuf.api.metadata import Metadata
    trusted = Metadata.from_bytes((src.metadata_dir / "root.json").read_bytes())
    assert trusted.signed.version == 2
    if role == "root":  # a root v3 signed by the retired root key alone
        md = kit.md("2.root.json")
        md.signed.version = 3
        kit.server.substitutes[kit.url_path("3.root.json")] = kit.resign(md, retired)
    else:  # a newer timestamp signed by the retired timestamp key
        md = kit.md("timestamp.json")
        md.signed.version += 1
        kit.server.substitutes[kit.url_path("timestamp.json")] = kit.resign(md, retired)
    with pytest.raises(AgentError, match=r"cannot update production from .*: not signed by "
                       r"enough trusted keys"):
        client.check(src, installed=1)


def test_generate_keys_prints_a_table_that_loads(tmp_path: Path) -> None:
    table = tufkeys.generate(tmp_path / "keys")
    for role in tufkeys.ROLES:
        assert stat.S_IMODE(os.stat(tmp_path / "keys" / f"{role}.pem").st_mode) == 0o600
    assert "PRIVATE KEY" not in table
    (tmp_path / ".dasct.toml").write_text(table + "\n")
    cfg = config.load(tmp_path)
    assert cfg.publish.root.keys == (f"file:{tmp_path / 'keys' / 'root.pem'}",)
    with pytest.raises(AgentError, match="exists; not overwriting"):
        tufkeys.generate(tmp_path / "keys")


def _cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    return subprocess.run([sys.executable, "-m", "dasct", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, check=False)


def test_cli_publishes_what_promotion_staged(tmp_path: Path) -> None:
    from datetime import datetime, timedelta, timezone

    from dasct.migrate import trigger_write as trigw
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    keys = _cli(repo, "publish", "--generate-keys", str(tmp_path / "keys"))
    assert keys.returncode == 0, keys.stderr
    (repo / ".dasct.toml").write_text(
        f'[migrate]\nsystem = "{SYSTEM}"\n[environments.{ENV}]\nstaging = "staging"\n'
        + keys.stdout)
    start = datetime.now(timezone.utc) - timedelta(hours=1)
    doc = trigw.document(
        id="E1", system=SYSTEM, environment=ENV, not_before=start,
        expires=start + timedelta(days=3), defects=["PROJ-7"], commits=[], sql=[],
        files=[], commands=[])
    trigw.write(repo / "staging", doc, key=None)
    first = _cli(repo, "publish", "--env", ENV)
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines()[0] == ("published release 1 of production: "
                                            "1 new trigger(s): E1")
    again = _cli(repo, "publish", "--env", ENV, "--format", "json")
    assert again.returncode == 0, again.stderr
    assert '"version": 1' in again.stdout and '"new_triggers": []' in again.stdout
    text = _cli(repo, "publish", "--env", ENV)
    assert text.stdout == "nothing new to publish for production: release 1 is current\n"
    info = __import__("json").loads(
        (repo / ".dasct/publish" / ENV / "metadata/1.targets.json").read_text())
    assert info["signed"]["targets"][f"{ENV}/releases/1.tar"]["custom"]["dasct"][
        "defects"] == ["PROJ-7"]
    half = _cli(repo, "publish", "--env", ENV, "--rotate", "timestamp")
    assert (half.returncode, half.stderr.strip()) == (
        1, "dasct: dasct publish: --rotate ROLE and --new-key SOURCE go together")
    fresh = new_key(tmp_path, "timestamp2")
    rotated = _cli(repo, "publish", "--env", ENV, "--rotate", "timestamp", "--new-key", fresh)
    assert rotated.returncode == 0, rotated.stderr
    assert rotated.stdout.splitlines()[1:] == [
        "rotated the timestamp keys: root is now version 2", "signed: timestamp"]
    doc = trigw.document(
        id="E2", system=SYSTEM, environment=ENV, not_before=start,
        expires=start + timedelta(days=3), defects=[], commits=[], sql=[], files=[],
        commands=[])
    trigw.write(repo / "staging", doc, key=None)
    stale = _cli(repo, "publish", "--env", ENV)  # [publish] still names the retired key
    assert stale.returncode == 1 and "--rotate timestamp" in stale.stderr


def test_a_role_signed_below_roots_threshold_is_refused_before_writing(kit: Kit) -> None:
    from dataclasses import replace
    two = (*kit.cfg.targets.keys, new_key(kit.base / "keys", "targets-b"))
    kit.cfg = replace(kit.cfg, targets=replace(kit.cfg.targets, keys=two, threshold=2))
    kit.publish(staged("E1", b"one"))
    kit.cfg = replace(kit.cfg, targets=replace(kit.cfg.targets, keys=two[:1], threshold=1))
    served = kit.tmp / "served"
    before = sorted(str(p) for p in served.rglob("*"))
    with pytest.raises(AgentError, match=r"\[publish\] targets: its keys do not reach the "
                       "threshold of 2 root requires"):
        kit.publish(staged("E2", b"two"))
    assert sorted(str(p) for p in served.rglob("*")) == before  # not even the tar


def test_a_root_rotation_with_keys_that_are_not_roots_is_refused(kit: Kit) -> None:
    from dataclasses import replace
    kit.publish(staged("E1", b"one"))
    kit.cfg = replace(kit.cfg, root=replace(
        kit.cfg.root, keys=(new_key(kit.base / "keys", "not-root"),)))
    with pytest.raises(AgentError, match=r"root: a configured key is not a root key of root v1"):
        kit.publish(rotate=("root", [new_key(kit.base / "keys", "root2")]))
    assert not (kit.meta / "2.root.json").exists()


def test_without_consistent_snapshots_the_client_still_updates(kit: Kit) -> None:
    from dataclasses import replace
    kit.cfg = replace(kit.cfg, consistent_snapshot=False)
    kit.publish(staged("E1", b"one"))
    kit.publish(staged("E2", b"two"))
    assert {"targets.json", "snapshot.json"} <= {p.name for p in kit.meta.iterdir()}
    src = kit.source()
    found = client.check(src, installed=0)
    assert found is not None and found.version == 2
    assert (kit.tmp / "served" / ENV / "targets" / ENV / "releases" / "2.tar").is_file()
    tar = client.download(src, found, kit.tmp / "dl")
    assert [p.name for p in release.extract(tar, found, kit.tmp / "st")] == ["E1.json",
                                                                              "E2.json"]




def test_without_the_agent_extra_one_line_names_it(tmp_path: Path) -> None:
    site = hiding("tuf", tmp_path)
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / ".dasct.toml").write_text(f"[environments.{ENV}]\n")
    env = {**os.environ, "PYTHONPATH": f"{site}:{SRC}"}
    proc = subprocess.run([sys.executable, "-m", "dasct", "publish", "--env", ENV], cwd=repo,
                          env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.strip().endswith(
        "pull-mode updates need tuf, which is not installed: pip install 'dasct[agent]'")


def test_tuf_key_variables_are_secrets_everywhere(tmp_path: Path) -> None:
    from dasct import redact
    (tmp_path / ".dasct.toml").write_text(
        '[publish]\ntimestamp = { keys = ["env:CI_TUF_TS"] }\n')
    assert not redact.is_secret_var("CI_TUF_TS")
    redact.configure(config.load(tmp_path))
    try:
        assert redact.is_secret_var("CI_TUF_TS")
    finally:
        redact.configure(config.Config())
