"""Building trigger files from a real git range, and the `dasct trigger` command."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from dasct import cli
from dasct.config import DefectsConfig, MigrateConfig
from dasct.migrate import trigger as t
from dasct.migrate import trigger_check as trigc
from dasct.migrate.create import baseline, create, find_defects, parse_time
from dasct.migrate.trigger import TriggerError

AT = datetime(2026, 11, 23, 23, 0, tzinfo=timezone.utc)


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty repository as a plain path (git is isolated by tests/conftest.py)."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    monkeypatch.chdir(root)
    return root


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ("git", *args), cwd=root, check=True, capture_output=True, text=True
    ).stdout.strip()


def commit(
    root: Path, message: str, files: dict[str, str | None], exe: frozenset[str] = frozenset()
) -> str:
    """Write (None: delete) files and commit them; return the commit sha."""
    for name, content in files.items():
        path = root / name
        if content is None:
            git(root, "rm", "-q", name)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        if name in exe:
            path.chmod(0o755)
        git(root, "add", name)
    git(root, "commit", "-q", "--allow-empty", "-m", message)
    return git(root, "rev-parse", "HEAD")


def build(root: Path, rev_range: str, staging: Path, **kw: object) -> t.Trigger:
    return create(
        repo_root=root, rev_range=rev_range, environment="model", staging=staging,
        migrate=MigrateConfig(system="app", sql_dir="db", expiry_hours=72),
        defect_patterns=DefectsConfig().compiled(), at=AT, **kw,  # type: ignore[arg-type]
    )


LONG = "".join(f"line {i} of a file long enough for rename detection\n" for i in range(40))


@pytest.fixture
def history(repo: Path) -> tuple[Path, str, str]:
    base = commit(repo, "initial", {
        "src/app.py": "print('v1')\n",
        "src/old_name.py": LONG,
        "README": "hello\n",
        "gone.txt": "bye\n",
        "db/sqitch.plan": "%project=app\n\nusers 2026-01-01 Ada <a@b>\n@v1\n",
        "db/deploy/users.sql": "create table users (id int);\n",
        "db/revert/users.sql": "drop table users;\n",
    })
    commit(repo, "PROJ-7: new orders table\n\nFixes #12", {
        "db/deploy/orders.sql": "create table orders (id int);\n",
        "db/revert/orders.sql": "drop table orders;\n",
        "db/verify/orders.sql": "select id from orders where false;\n",
        "db/deploy/accounts.sql": "create table accounts (id int);\n",
        "db/revert/accounts.sql": "drop table accounts;\n",
        "db/sqitch.plan": "%project=app\n\nusers 2026-01-01 Ada <a@b>\n@v1\n"
                          "orders 2026-01-02 Ada <a@b>\naccounts 2026-01-03 Ada <a@b>\n",
    })
    head = commit(repo, "Rename, add a script, drop a file (UTF-8 is not a defect)", {
        "src/app.py": "print('v2')\n",
        "bin/run": "#!/bin/sh\necho run\n",
        "gone.txt": None,
        "deploy/commands.toml": '[[restart]]\nname = "app"\nargv = ["true"]\n\n'
                                '[[health]]\nname = "ping"\nargv = ["true", "ok"]\ntimeout = 5\n',
    }, exe=frozenset({"bin/run"}))
    git(repo, "mv", "src/old_name.py", "src/new_name.py")
    head = commit(repo, "Move the module (PROJ-8)", {})
    return repo, base, head


def test_create_from_range(history: tuple[Path, str, str], tmp_path: Path) -> None:
    root, base, head = history
    staging = tmp_path / "staging"
    trig = build(root, f"{base}..{head}", staging, depends_on=["E-0"])
    assert trig.id == f"PROJ-7-issue12-PROJ-8-{head[:7]}"  # what a person recognises
    assert trig.path == staging / "triggers" / "model" / f"{trig.id}.json"
    assert trig.defects == ("PROJ-7", "#12", "PROJ-8")
    assert len(trig.commits) == 3 and trig.commits[-1] == head
    assert trig.not_before == AT and trig.expires == AT + timedelta(hours=72)
    assert trig.depends_on == ("E-0",)
    # Plan order, not name order; users was not touched by the range.
    assert [c.name for c in trig.sql] == ["orders", "accounts"]
    orders = trig.sql[0]
    assert trigc.read_payload(staging, orders.deploy) == b"create table orders (id int);\n"
    assert orders.verify is not None and trig.sql[1].verify is None
    files = {f.path: f for f in trig.files}
    assert set(files) == {"src/app.py", "bin/run", "gone.txt", "src/new_name.py"}
    app = files["src/app.py"]
    assert app.op == "modify" and app.mode == 0o644
    assert app.pre_sha256 == t.sha256_hex(b"print('v1')\n")
    assert app.post_sha256 is not None
    assert trigc.read_payload(staging, app.post_sha256) == b"print('v2')\n"
    assert files["bin/run"].op == "add" and files["bin/run"].mode == 0o755
    assert files["gone.txt"].op == "delete" and files["gone.txt"].post_sha256 is None
    moved = files["src/new_name.py"]
    assert (moved.op, moved.old_path) == ("rename", "src/old_name.py")
    assert moved.pre_sha256 == moved.post_sha256 == t.sha256_hex(LONG.encode())
    assert [(c.kind, c.name, c.argv, c.timeout) for c in trig.commands] == [
        ("restart", "app", ("true",), 60.0), ("health", "ping", ("true", "ok"), 5.0)]


def test_create_is_repeatable(history: tuple[Path, str, str], tmp_path: Path) -> None:
    root, base, head = history
    first = build(root, f"{base}..{head}", tmp_path / "s")
    assert build(root, f"{base}..{head}", tmp_path / "s") == first
    with pytest.raises(TriggerError, match="different trigger with this id"):
        build(root, f"{base}..{head}", tmp_path / "s", depends_on=["X"])


def test_created_trigger_applies_to_the_base_tree(
    history: tuple[Path, str, str], tmp_path: Path
) -> None:
    root, base, head = history
    trig = build(root, f"{base}..{head}", tmp_path / "s")
    target = tmp_path / "target"
    git(root, "worktree", "add", "-q", "--detach", str(target), base)
    trigc.check_target(trig, target)
    (target / "src" / "app.py").write_text("hand edit\n")
    with pytest.raises(TriggerError, match="changed on the target by hand"):
        trigc.check_target(trig, target)


def test_sql_without_plan_in_name_order(repo: Path, tmp_path: Path) -> None:
    base = commit(repo, "initial", {"x": "1\n"})
    head = commit(repo, "two changes", {
        "db/deploy/b.sql": "b", "db/revert/b.sql": "-b",
        "db/deploy/a.sql": "a", "db/revert/a.sql": "-a",
    })
    trig = build(repo, f"{base}..{head}", tmp_path / "s")
    assert [c.name for c in trig.sql] == ["a", "b"]
    assert trig.files == ()


def test_reworked_sqitch_change_is_the_change_itself(repo: Path, tmp_path: Path) -> None:
    base = commit(repo, "initial", {
        "db/deploy/f.sql": "create function f v1", "db/revert/f.sql": "drop function f",
    })
    head = commit(repo, "sqitch rework f", {
        "db/deploy/f@v1.sql": "create function f v1", "db/revert/f@v1.sql": "drop function f",
        "db/deploy/f.sql": "create or replace function f v2",
        "db/revert/f.sql": "create or replace function f v1",
    })
    trig = build(repo, f"{base}..{head}", tmp_path / "s")
    assert [c.name for c in trig.sql] == ["f"]
    assert (trigc.read_payload(trig.staging, trig.sql[0].deploy)
            == b"create or replace function f v2")


def test_sql_change_without_revert_is_refused(repo: Path, tmp_path: Path) -> None:
    base = commit(repo, "initial", {"x": "1\n"})
    head = commit(repo, "no revert", {"db/deploy/a.sql": "a"})
    with pytest.raises(TriggerError, match=r"no db/revert/a\.sql"):
        build(repo, f"{base}..{head}", tmp_path / "s")


def test_symlink_in_range_is_refused(repo: Path, tmp_path: Path) -> None:
    base = commit(repo, "initial", {"x": "1\n"})
    (repo / "link").symlink_to("x")
    git(repo, "add", "link")
    head = commit(repo, "link", {})
    with pytest.raises(TriggerError, match="'link' is a symlink"):
        build(repo, f"{base}..{head}", tmp_path / "s")


def test_moved_file_with_a_new_one_in_its_place(repo: Path, tmp_path: Path) -> None:
    base = commit(repo, "initial", {"a.txt": LONG})
    git(repo, "mv", "a.txt", "b.txt")
    head = commit(repo, "move and replace", {"a.txt": "new\n"})
    trig = build(repo, f"{base}..{head}", tmp_path / "s")
    assert sorted((f.op, f.path) for f in trig.files) == [("add", "b.txt"), ("modify", "a.txt")]


@pytest.mark.parametrize("bad", ["HEAD", "A...B", "..HEAD", "HEAD.."])
def test_bad_range(repo: Path, tmp_path: Path, bad: str) -> None:
    commit(repo, "initial", {"x": "1\n"})
    with pytest.raises(TriggerError, match=r"expected A\.\.B"):
        build(repo, bad, tmp_path / "s")


def test_empty_range(repo: Path, tmp_path: Path) -> None:
    commit(repo, "initial", {"x": "1\n"})
    with pytest.raises(TriggerError, match="no commits"):
        build(repo, "HEAD..HEAD", tmp_path / "s")


def test_bad_commands_file(repo: Path, tmp_path: Path) -> None:
    base = commit(repo, "initial", {"x": "1\n"})
    head = commit(repo, "bad", {"deploy/commands.toml": "[[restart]]\nname = 'x'\n"})
    with pytest.raises(TriggerError, match=r"deploy/commands.toml at .*argv"):
        build(repo, f"{base}..{head}", tmp_path / "s")


def test_cli_create_show_verify(
    history: tuple[Path, str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root, base, head = history
    monkeypatch.setenv("DASCT_TRIGGER_KEY", "s3cret-key")
    code = cli.main(["trigger", "create", "--range", f"{base}..{head}", "--env", "model",
                     "--id", "ENH-1", "--at", "2026-11-23T23:00Z"])
    out, err = capsys.readouterr()
    assert code == 0, err
    path = Path(out.strip())
    assert path == root / ".dasct" / "staging" / "triggers" / "model" / "ENH-1.json"
    assert "s3cret" not in path.read_text() and "s3cret" not in out + err
    assert "2 SQL change(s), 4 file change(s), 2 command(s)" in err

    assert cli.main(["trigger", "show", str(path)]) == 0
    text = capsys.readouterr().out
    assert "rename   src/old_name.py -> src/new_name.py" in text
    assert "signature valid (current key $DASCT_TRIGGER_KEY)" in text
    assert cli.main(["trigger", "show", str(path), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["id"] == "ENH-1"

    assert cli.main(["trigger", "verify", str(path), "--env", "model"]) == 0
    assert "ok" in capsys.readouterr().out
    assert cli.main(["trigger", "verify", str(path), "--env", "production"]) == 1
    assert "not one of: production" in capsys.readouterr().err
    monkeypatch.setenv("DASCT_TRIGGER_KEY", "wrong")
    assert cli.main(["trigger", "verify", str(path), "--env", "model"]) == 1
    assert "bad signature" in capsys.readouterr().err


def test_cli_unknown_environment(
    history: tuple[Path, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    _, base, head = history
    assert cli.main(["trigger", "create", "--range", f"{base}..{head}", "--env", "qa"]) == 1
    assert "unknown environment 'qa'" in capsys.readouterr().err


def test_cli_verify_against_a_target(
    history: tuple[Path, str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, base, head = history
    assert cli.main(["trigger", "create", "--range", f"{base}..{head}", "--env", "model",
                     "--id", "ENH-2", "--staging", str(tmp_path / "s")]) == 0
    path = Path(capsys.readouterr().out.strip())
    target = tmp_path / "target"
    git(root, "worktree", "add", "-q", "--detach", str(target), base)
    assert cli.main(["trigger", "verify", str(path), "--env", "model", "--root",
                     str(target)]) == 0
    assert f"target: {target} ready" in capsys.readouterr().out
    (target / "bin").symlink_to(tmp_path)  # bin/run would be written outside the target
    assert cli.main(["trigger", "verify", str(path), "--env", "model", "--root",
                     str(target)]) == 1
    assert "symlink 'bin'" in capsys.readouterr().err


def test_cli_show_refuses_a_tampered_trigger(
    history: tuple[Path, str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, base, head = history
    trig = build(history[0], f"{base}..{head}", tmp_path / "s")
    trig.path.write_text(trig.path.read_text().replace("src/app.py", "src/evil.py"))
    assert cli.main(["trigger", "show", str(trig.path)]) == 1
    err = capsys.readouterr().err
    assert "digest mismatch" in err and len(err.strip().splitlines()) == 1


def test_non_utf8_path_is_refused(repo: Path, tmp_path: Path) -> None:
    base = commit(repo, "initial", {"x": "1\n"})
    name = os.fsdecode(b"caf\xe9.txt")
    (repo / name).write_text("latin-1 name\n")
    git(repo, "add", "--", name)
    head = commit(repo, "latin-1 file name", {})
    with pytest.raises(TriggerError, match="not UTF-8"):
        build(repo, f"{base}..{head}", tmp_path / "s")


def test_defects_whole_match_or_key_group() -> None:
    import re

    patterns = [re.compile(r"BUG\d+"), re.compile(r"ticket (?P<key>T-\d+)")]
    messages = ["fix BUG12 and BUG7", "see ticket T-3, BUG12 again"]
    assert find_defects(messages, patterns) == ["BUG12", "BUG7", "T-3"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-23T23:00Z", AT),
        ("2026-11-23T23:00:00", AT),
        ("2026-11-24T00:00:00+01:00", AT),
        ("2026-11-23 23:00:00.999999z", AT.replace(second=0)),
    ],
)
def test_parse_time(text: str, expected: datetime) -> None:
    assert parse_time(text) == expected


def test_parse_time_refuses_garbage() -> None:
    with pytest.raises(TriggerError, match="not a time"):
        parse_time("tonight")


def test_no_sql_dir_means_sql_scripts_are_files(repo: Path, tmp_path: Path) -> None:
    base = commit(repo, "initial", {"x": "1\n"})
    head = commit(repo, "sql", {"db/deploy/a.sql": "a", "db/revert/a.sql": "-a"})
    trig = create(
        repo_root=repo, rev_range=f"{base}..{head}", environment="model",
        staging=tmp_path / "s", migrate=MigrateConfig(system="app", sql_dir="", expiry_hours=1),
        defect_patterns=DefectsConfig().compiled(), at=AT,
    )
    assert trig.sql == () and sorted(f.path for f in trig.files) == [
        "db/deploy/a.sql", "db/revert/a.sql"]


def test_paths_git_quotes_come_through_exactly(repo: Path, tmp_path: Path) -> None:
    base = commit(repo, "initial", {"x": "1\n"})
    odd = 'we"ird\tname with\nnewline é.txt'
    head = commit(repo, "odd names", {odd: "odd\n", "dir with space/ü.txt": "u\n"})
    trig = build(repo, f"{base}..{head}", tmp_path / "s")
    assert sorted(f.path for f in trig.files) == sorted([odd, "dir with space/ü.txt"])
    later = commit(repo, "a backslash", {"back\\slash.txt": "b\n"})
    with pytest.raises(TriggerError, match="contains a backslash"):
        build(repo, f"{head}..{later}", tmp_path / "s")


def test_commands_file_comes_from_the_config(repo: Path, tmp_path: Path) -> None:
    base = commit(repo, "initial", {"x": "1\n"})
    head = commit(repo, "commands elsewhere", {
        "ops/commands.toml": '[[health]]\nname = "ping"\nargv = ["true"]\n',
        "deploy/commands.toml": "not read: an ordinary file here\n",
    })
    trig = create(
        repo_root=repo, rev_range=f"{base}..{head}", environment="model",
        staging=tmp_path / "s", migrate=MigrateConfig(commands_file="ops/commands.toml"),
        defect_patterns=DefectsConfig().compiled(), at=AT,
    )
    assert [(c.kind, c.name) for c in trig.commands] == [("health", "ping")]
    assert [f.path for f in trig.files] == ["deploy/commands.toml"]


def test_baseline_is_everything_at_rev_as_adds(repo: Path, tmp_path: Path) -> None:
    plan = "%project=app\nusers 2026-01-01T00:00:00Z a <a@b>\nitems 2026-01-02T00:00:00Z a <a@b>\n"
    first = commit(repo, "PROJ-1: first", {
        "src/app.py": "print('v1')\n", "bin/run": "#!/bin/sh\n", "db/sqitch.plan": plan,
        "db/deploy/users.sql": "u", "db/revert/users.sql": "-u", "db/verify/users.sql": "?u",
        "db/deploy/items.sql": "i", "db/revert/items.sql": "-i",
        "db/deploy/extra.sql": "e", "db/revert/extra.sql": "-e",
        "deploy/commands.toml": '[[health]]\nname = "up"\nargv = ["true"]\n',
    }, exe=frozenset({"bin/run"}))
    commit(repo, "later", {"src/app.py": "print('v2')\n"})
    staging = tmp_path / "s"
    trig = baseline(repo_root=repo, rev=first[:12], environment="model", staging=staging,
                    migrate=MigrateConfig(system="app", sql_dir="db", expiry_hours=72), at=AT)
    assert trig.id == f"baseline-{first[:10]}"
    assert trig.commits == (first,) and trig.defects == ()
    assert [c.name for c in trig.sql] == ["users", "items", "extra"]  # plan order, then name
    assert trigc.read_payload(staging, trig.sql[0].verify or "") == b"?u"
    assert sorted((f.op, f.path, f.mode, f.pre_sha256) for f in trig.files) == [
        ("add", "bin/run", 0o755, None), ("add", "src/app.py", 0o644, None)]
    assert trigc.read_payload(staging, trig.files[1].post_sha256 or "") == b"print('v1')\n"
    assert [c.name for c in trig.commands] == ["up"]
    target = tmp_path / "target"
    target.mkdir()
    trigc.check_target(trig, target)  # an empty target takes it
    (target / "src").mkdir()
    (target / "src/app.py").write_text("anything\n")
    with pytest.raises(TriggerError, match=r"1 of its 2 new file\(s\) already exist on the "
                       r"target \('src/app.py'\); a trigger that only adds files, like a "
                       "baseline, applies only to a target that has none of them"):
        trigc.check_target(trig, target)


def test_cli_create_takes_a_range_or_a_baseline_not_both(repo: Path) -> None:
    commit(repo, "initial", {"x": "1\n"})
    with pytest.raises(SystemExit):
        cli.main(["trigger", "create", "--range", "HEAD~1..HEAD", "--baseline", "HEAD",
                  "--env", "model"])
    with pytest.raises(SystemExit):
        cli.main(["trigger", "create", "--env", "model"])


def test_default_ids() -> None:
    from dasct.migrate.create import default_id

    head = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"
    assert default_id([], head) == "a1b2c3d"
    assert default_id(["PROJ-42"], head) == "PROJ-42-a1b2c3d"
    assert default_id(["#7", "PROJ-1", "PROJ-2", "PROJ-3"], head) == (
        "issue7-PROJ-1-PROJ-2-and1more-a1b2c3d")
