"""`dasct agent` from the command line; `used` and `run` never break the application."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from life_kit import PASSPHRASE, SEED_FILES, SRC, Publisher, cli, fd_with, home

from dasct.agent import history
from dasct.agent import state as st
from dasct.agent.local import Local


@pytest.fixture
def local(tmp_path: Path) -> Local:
    return home(tmp_path, 'uses = 3\nevery_hours = 1000\n')


def _corrupt(local: Local) -> None:
    st.save(local.state_path, st.State(uses=1))
    local.state_path.write_text(local.state_path.read_text().replace('"uses": 1', '"uses": 9'))


def test_used_counts_a_use(local: Local) -> None:
    for _ in range(2):
        r = cli(local.home, "used", "editor")
        assert r.returncode == 0, r.stderr
        assert r.stderr == ""
    assert local.load().uses == 2


def test_used_with_a_broken_state_still_exits_0_with_one_line(local: Local) -> None:
    _corrupt(local)
    r = cli(local.home, "used", "editor")
    assert r.returncode == 0
    assert len(r.stderr.splitlines()) == 1 and "damaged or was edited" in r.stderr


def test_used_without_an_agent_configured_exits_0(tmp_path: Path) -> None:
    r = cli(tmp_path, "used", "editor")
    assert r.returncode == 0 and len(r.stderr.splitlines()) == 1


def test_run_passes_the_exit_code_and_output_through(local: Local) -> None:
    r = cli(local.home, "run", "editor", "--", sys.executable, "-c",
            "import sys; print('hello'); sys.exit(3)")
    assert (r.returncode, r.stdout, r.stderr) == (3, "hello\n", "")
    assert local.load().uses == 1


def test_run_with_a_broken_state_still_runs_the_command(local: Local) -> None:
    _corrupt(local)
    r = cli(local.home, "run", "editor", "--", sys.executable, "-c", "print('ran')")
    assert r.returncode == 0 and r.stdout == "ran\n"
    assert len(r.stderr.splitlines()) == 1 and "not affected" in r.stderr


def test_check_that_cannot_reach_the_server_never_says_current(local: Local) -> None:
    (local.home / "root.json").write_text("{}")
    r = cli(local.home, "check", "--now", "--foreground")
    assert r.returncode == 1
    assert r.stderr.startswith("dasct: cannot update: ") and len(r.stderr.splitlines()) == 1
    assert "up to date" not in r.stdout + r.stderr and "nothing new" not in r.stdout
    s = local.load()
    assert s.last_result.startswith("cannot update") and s.uses == 0


def test_check_not_due_says_when(local: Local) -> None:
    cli(local.home, "used", "editor")
    r = cli(local.home, "check")
    assert r.returncode == 0 and r.stdout.startswith("no check due: next after 2 more use(s)")


def test_status_and_notice_of_a_waiting_release(local: Local) -> None:
    Publisher(local).downloaded(SEED_FILES, restart=True)
    doc = json.loads(cli(local.home, "status", "--format", "json").stdout)
    assert doc["installed"] == 0 and doc["waiting"]["version"] == 1
    assert "needs a restart" in doc["waiting"]["details"][0]
    # The notice comes once, at the next use (when = uses), not at every use.
    first = cli(local.home, "used", "editor")
    assert "version 1 of app for model is downloaded and verified" in first.stderr
    assert "PROJ-1" in first.stderr and "dasct agent install" in first.stderr
    assert cli(local.home, "used", "editor").stderr == ""
    text = cli(local.home, "status").stdout
    assert "waiting: version 1" in text and "uninstall windows: none" in text


def test_a_notice_goes_to_the_outbox_once(tmp_path: Path) -> None:
    from dasct.notify import Outbox

    loc = home(tmp_path, 'recipients = ["ops@example.com"]\n')
    Publisher(loc).downloaded(SEED_FILES)
    cli(loc.home, "used", "editor")
    cli(loc.home, "status")
    [row] = Outbox(loc.state_dir).waiting()
    n = row.notification
    assert n.kind == "agent-release-ready" and "version 1" in n.subject
    assert n.recipients == ("ops@example.com",) and row.key == "agent-release-model-1"


def test_install_needs_a_period_when_stdin_is_no_terminal(local: Local) -> None:
    Publisher(local).downloaded(SEED_FILES)
    r = cli(local.home, "install")
    assert r.returncode == 1 and "choose an uninstall period" in r.stderr
    r = cli(local.home, "install", "--keep-for", "1d")  # no terminal, no fd: no passphrase
    assert r.returncode == 1 and "needs the passphrase" in r.stderr
    assert local.load().installed == 0


def test_passphrase_install_review_history(local: Local) -> None:
    fd = fd_with(PASSPHRASE, "typo " + PASSPHRASE)
    r = cli(local.home, "passphrase", "--passphrase-fd", str(fd), pass_fds=[fd])
    assert r.returncode == 1 and "differ" in r.stderr
    fd = fd_with(PASSPHRASE, PASSPHRASE)
    r = cli(local.home, "passphrase", "--passphrase-fd", str(fd), pass_fds=[fd])
    assert r.returncode == 0, r.stderr
    Publisher(local).downloaded(SEED_FILES)
    fd = fd_with(PASSPHRASE)
    r = cli(local.home, "install", "--keep-for", "90m", "--passphrase-fd", str(fd),
            pass_fds=[fd])
    assert r.returncode == 0, r.stderr
    assert "installed version 1; it can be taken back until" in r.stdout
    r = cli(local.home, "review")
    assert r.returncode == 0 and r.stdout.startswith("no uninstall period has ended")
    r = cli(local.home, "keep", "1", "--for", "2d")
    assert r.returncode == 0 and "kept version 1" in r.stdout
    r = cli(local.home, "review", "--version", "1", "--uninstall")
    assert r.returncode == 0, r.stderr
    assert (local.home / "target" / "app" / "main.py").read_text() == "print('v1')\n"
    doc = json.loads(cli(local.home, "history", "--format", "json").stdout)
    assert [e["event"] for e in doc["entries"]] == ["installed", "kept", "uninstalled"]
    assert "uninstalled" in cli(local.home, "history").stdout


def test_an_ended_window_is_asked_about(local: Local) -> None:
    fd = fd_with(PASSPHRASE, PASSPHRASE)
    cli(local.home, "passphrase", "--passphrase-fd", str(fd), pass_fds=[fd])
    Publisher(local).downloaded(SEED_FILES)
    fd = fd_with(PASSPHRASE)
    cli(local.home, "install", "--keep-for", "1m", "--passphrase-fd", str(fd), pass_fds=[fd])
    with st.update(local.state_path) as change:  # the minute passed
        w = change.state.windows[0]
        change.set(windows=(st.Window(w.version, w.triggers, w.previous, w.installed_at, 0.0),))
    assert "uninstall period of version 1 has ended" in cli(local.home, "used", "x").stderr
    r = cli(local.home, "review")
    assert r.returncode == 1 and "decide with --uninstall" in r.stdout
    r = cli(local.home, "review", "--keep-forever")
    assert r.returncode == 0 and "kept version 1 for good" in r.stdout
    assert [e["event"] for e in history.entries(local.state_dir)] == ["installed",
                                                                      "kept-forever"]


def test_a_refused_install_shows_in_agent_trace(local: Local) -> None:
    fd = fd_with(PASSPHRASE, PASSPHRASE)
    cli(local.home, "passphrase", "--passphrase-fd", str(fd), pass_fds=[fd])
    Publisher(local).downloaded(SEED_FILES)
    fd = fd_with("wrong wrong wrong")
    r = cli(local.home, "install", "--keep-for", "1d", "--passphrase-fd", str(fd),
            pass_fds=[fd])
    assert r.returncode == 1 and "wrong passphrase" in r.stderr
    r = cli(local.home, "trace", "release-1")
    assert r.returncode == 0 and "wrong passphrase" in r.stdout


def test_used_and_run_import_nothing_of_tuf_when_no_check_is_due(local: Local) -> None:
    Publisher(local).downloaded(SEED_FILES)  # a notice is due: still no tuf
    st.save(local.state_path, st.State(uses=0, last_check=1e12, since=1e12,
                                       waiting=local.load().waiting))
    script = ("import sys; from dasct import cli; cli.main(['agent', 'used', 'x']); "
              "cli.main(['agent', 'run', 'x', '--', sys.executable, '-c', '0']); "
              "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
              "('tuf', 'securesystemslib', 'urllib3', 'cryptography', 'requests')); "
              "print('IMPORTED', bad)")
    import os
    import subprocess


    r = subprocess.run([sys.executable, "-c", script], cwd=local.home, text=True,
                       capture_output=True, env={**os.environ, "PYTHONPATH": str(SRC)},
                       check=False)
    assert "IMPORTED []" in r.stdout, r.stdout + r.stderr


def _wait_checked(local: Local) -> st.State:
    import time

    from dasct.agent import download

    for _ in range(200):
        s = local.load()
        if s.last_check is not None and not download.running(st.agent_dir(local.state_dir)):
            return s
        time.sleep(0.05)
    raise AssertionError("the background check did not end")


def test_when_shutdown_checks_after_the_command_not_before(tmp_path: Path) -> None:
    loc = home(tmp_path, 'uses = 1\nwhen = ["shutdown"]\n')
    (loc.home / "root.json").write_text("{}")
    marker = loc.home / "checked-before"
    script = ("import json, pathlib, sys; p = pathlib.Path(sys.argv[1]); "
              "s = json.loads(p.read_text())['body'] if p.exists() else {}; "
              "pathlib.Path(sys.argv[2]).write_text(str(s.get('last_check')))")
    r = cli(loc.home, "run", "editor", "--", sys.executable, "-c", script,
            str(loc.state_path), str(marker))
    assert r.returncode == 0, r.stderr
    assert marker.read_text() == "None"  # nothing had checked while the command ran
    s = _wait_checked(loc)  # the check started at shutdown (and could not update)
    assert s.last_result.startswith("cannot update") and s.uses == 0


def test_when_startup_checks_before_the_command(tmp_path: Path) -> None:
    loc = home(tmp_path, 'uses = 1\nwhen = ["startup"]\n')
    (loc.home / "root.json").write_text("{}")
    r = cli(loc.home, "run", "editor", "--", sys.executable, "-c", "0")
    assert r.returncode == 0, r.stderr
    assert _wait_checked(loc).last_result.startswith("cannot update")
