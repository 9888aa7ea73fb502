"""Remote targets in the config: parsing, hosts files, refusals (no network)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dasct import config
from dasct.errors import ConfigError
from dasct.migrate.environment import environment
from dasct.remote import hosts
from dasct.remote.hosts import RemoteError


def test_parse_names_every_part() -> None:
    t = hosts.parse("ssh://deploy@app1.example.com:2222/srv/app")
    assert (t.user, t.host, t.port, str(t.root)) == ("deploy", "app1.example.com", 2222,
                                                     "/srv/app")
    assert t.known_hosts_name == "[app1.example.com]:2222"
    assert hosts.parse("ssh://d@h/srv/x").known_hosts_name == "h"
    assert hosts.parse("ssh://d@[::1]:22/srv/x").host == "[::1]"


@pytest.mark.parametrize("bad, why", [
    ("http://h/srv", "must start with ssh://"),
    ("ssh://h/srv", "needs a login user"),
    ("ssh://u:secret@h/srv", "takes no password"),
    ("ssh://u@h", "absolute root"),
    ("ssh://u@h/", "absolute root"),
    ("ssh://u@h/srv/../etc", "absolute root"),
    ("ssh://u@h:99999/srv", "invalid port"),
])
def test_bad_targets_are_one_line(bad: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        hosts.parse(bad)


def test_config_refuses_a_bad_target_naming_the_key() -> None:
    with pytest.raises(ConfigError, match=r"environments\.p\.hosts.*ssh://"):
        config.parse({"environments": {"p": {"hosts": ["ftp://x"]}}}, "f.toml")
    with pytest.raises(ConfigError, match="on_failure"):
        config.parse({"environments": {"p": {"on_failure": "pray"}}}, "f.toml")


def _env(tmp: Path, body: str) -> object:
    (tmp / ".dasct.toml").write_text("[environments.production]\n" + body)
    return environment(config.load(tmp), "production", tmp)


def test_hosts_file_and_refusals(tmp_path: Path) -> None:
    (tmp_path / "hosts.txt").write_text("# the fleet\nssh://d@a:22/srv/app\n\n"
                                        "ssh://d@b:22/srv/app  # second\n")
    env = _env(tmp_path, 'hosts_file = "hosts.txt"\nknown_hosts = "kh"\n')
    remote = env.remote  # type: ignore[attr-defined]
    assert [t.host for t in remote.targets] == ["a", "b"]
    assert env.state_dir == hosts.mirror_dir(tmp_path / ".dasct", "production",  # type: ignore[attr-defined]
                                             remote.targets[0])
    (tmp_path / "bad.txt").write_text("ssh://d@a:22/srv/app\nnot a url\n")
    with pytest.raises(RemoteError, match=r"bad.txt:2: must start with ssh://"):
        _env(tmp_path, 'hosts_file = "bad.txt"\nknown_hosts = "kh"\n')
    with pytest.raises(RemoteError, match="needs `known_hosts`"):
        _env(tmp_path, 'target = "ssh://d@a/srv/app"\n')
    with pytest.raises(RemoteError, match="not both"):
        _env(tmp_path, 'target = "ssh://d@a/srv/app"\nhosts = ["ssh://d@b/srv/app"]\n'
             'known_hosts = "kh"\n')
    with pytest.raises(RemoteError, match="remove `root`"):
        _env(tmp_path, 'target = "ssh://d@a/srv/app"\nroot = "x"\nknown_hosts = "kh"\n')
    with pytest.raises(RemoteError, match="listed twice"):
        _env(tmp_path, 'hosts = ["ssh://d@a/srv/app", "ssh://d@a:22/srv/app"]\n'
             'known_hosts = "kh"\n')


def test_fleet_waves() -> None:
    from dasct.remote.fleet import waves

    ts = tuple(hosts.parse(f"ssh://d@h{i}/srv") for i in range(6))
    assert [[t.host for t in w] for w in waves(ts, 1, 2)] == [
        ["h0"], ["h1", "h2"], ["h3", "h4"], ["h5"]]
    assert [len(w) for w in waves(ts, 0, 4)] == [4, 2]
