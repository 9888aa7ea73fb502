"""Signatures: `trigger verify` says exactly what was checked, and keys can be rotated.

The current key (`migrate.signing_key_env`) signs; it and the previous keys named by
`migrate.verify_key_envs` (values from the environment only) verify.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from engine_kit import cli
from hypothesis import given, settings
from hypothesis import strategies as st

from dasct.migrate import trigger as t
from dasct.migrate import trigger_read as trigr
from dasct.migrate import trigger_write as tw
from gitrepo import GitRepo

NEW, OLD = "new-key-2026", "old-key-2025"
ROTATING = '[migrate]\nrequire_signature = true\nverify_key_envs = ["DASCT_TRIGGER_KEY_OLD"]\n'


def keys(current: str = "", old: str = "") -> dict[str, str]:
    return {"DASCT_TRIGGER_KEY": current, "DASCT_TRIGGER_KEY_OLD": old}


def staged(repo: GitRepo, config: str, *, signed_with: str) -> Path:
    """A baseline trigger of a one-file repository, signed with signed_with (or unsigned)."""
    repo.commit("first version", {".dasct.toml": config, "app/main.py": "print('v1')\n"})
    made = cli(repo.path, "trigger", "create", "--baseline", "HEAD", "--env", "model",
               "--id", "B1", env=keys(signed_with))
    assert made.returncode == 0, made.stderr
    return Path(made.stdout.strip())


def verify(repo: GitRepo, path: Path, env: dict[str, str]) -> tuple[int, str]:
    proc = cli(repo.path, "trigger", "verify", str(path), "--env", "model", env=env)
    return proc.returncode, proc.stdout + proc.stderr


def test_verify_says_a_signature_was_not_checked_without_a_key(repo: GitRepo) -> None:
    path = staged(repo, "", signed_with=NEW)
    code, out = verify(repo, path, keys())
    assert code == 0, out
    assert "signature: NOT CHECKED (no key set: $DASCT_TRIGGER_KEY is empty)" in out
    assert "valid" not in out
    code, out = verify(repo, path, keys(NEW))
    assert code == 0 and "signature: valid (current key $DASCT_TRIGGER_KEY)" in out, out


def test_verify_says_unsigned_when_a_key_is_set_but_not_required(repo: GitRepo) -> None:
    path = staged(repo, "", signed_with="")
    code, out = verify(repo, path, keys(NEW))
    assert code == 0, out
    assert ("signature: none (unsigned; $DASCT_TRIGGER_KEY is set, but "
            "migrate.require_signature is false, so it is accepted)") in out
    code, out = verify(repo, path, keys())
    assert code == 0 and "signature: none (unsigned)" in out, out


def test_verify_names_the_previous_key_that_is_set_for_an_unsigned_trigger(
    repo: GitRepo
) -> None:
    path = staged(repo, '[migrate]\nverify_key_envs = ["DASCT_TRIGGER_KEY_OLD"]\n',
                  signed_with="")
    code, out = verify(repo, path, keys("", OLD))
    assert code == 0 and "signature: none (unsigned; $DASCT_TRIGGER_KEY_OLD is set" in out, out


def test_key_rotation_accepts_triggers_signed_with_the_previous_key(repo: GitRepo) -> None:
    path = staged(repo, ROTATING, signed_with=OLD)
    code, out = verify(repo, path, keys(NEW, OLD))
    assert code == 0 and "signature: valid (previous key $DASCT_TRIGGER_KEY_OLD)" in out, out
    # Once the previous key is dropped from the environment, its triggers are refused.
    code, out = verify(repo, path, {"DASCT_TRIGGER_KEY": NEW})
    assert code == 1 and "bad signature" in out, out
    run = cli(repo.path, "migrate", "run", "--env", "model", "--now", env=keys(NEW, OLD))
    assert run.returncode == 0 and "migrated B1" in run.stdout, run.stdout + run.stderr
    assert (repo.path / ".dasct/env/model/root/app/main.py").read_text() == "print('v1')\n"


def test_after_rotation_new_triggers_are_signed_with_the_current_key(repo: GitRepo) -> None:
    path = staged(repo, ROTATING, signed_with=NEW)
    code, out = verify(repo, path, keys(NEW, OLD))
    assert code == 0 and "signature: valid (current key $DASCT_TRIGGER_KEY)" in out, out
    # A previous key never signs: with only the old key set, create refuses to write.
    repo.commit("v2", {"app/main.py": "print('v2')\n"})
    made = cli(repo.path, "trigger", "create", "--range", "HEAD~1..HEAD", "--env", "model",
               env=keys("", OLD))
    assert made.returncode == 1
    assert "signatures are required but $DASCT_TRIGGER_KEY is not set" in made.stderr


def test_a_previous_key_that_is_unset_is_skipped(repo: GitRepo) -> None:
    path = staged(repo, ROTATING, signed_with=NEW)
    code, out = verify(repo, path, keys(NEW, ""))
    assert code == 0 and "signature: valid (current key $DASCT_TRIGGER_KEY)" in out, out


def document(key: bytes | None) -> dict[str, object]:
    start = datetime(2026, 11, 23, 23, 0, tzinfo=timezone.utc)
    return tw.document(id="E1", system="app", environment="model", not_before=start,
                      expires=start + timedelta(hours=1), defects=[], commits=[], sql=[],
                      files=[], commands=[], key=key)


_KEYS = st.lists(st.binary(min_size=1, max_size=8), max_size=4, unique=True)


@settings(max_examples=60, deadline=None)
@given(current=st.one_of(st.none(), st.binary(min_size=1, max_size=8)), previous=_KEYS,
       signer=st.binary(min_size=1, max_size=8))
def test_a_signature_verifies_exactly_when_one_of_the_keys_made_it(
    current: bytes | None, previous: list[bytes], signer: bytes
) -> None:
    doc = document(signer)
    given_keys = [k for k in (current, *previous) if k is not None]
    try:
        loaded = trigr.parse(doc, Path("E1.json"), environments=["model"], key=current,
                         previous_keys=previous, require_signature=True)
    except t.TriggerError as exc:
        assert signer not in given_keys
        assert ("no signing key" if not given_keys else "bad signature") in str(exc)
        return
    assert signer in given_keys
    assert loaded.signed_by is not None
    assert (current, *previous)[loaded.signed_by] == signer


def test_parse_reports_which_key_checked_the_signature() -> None:
    signed, unsigned = document(b"k-old"), document(None)
    where = Path("E1.json")
    loaded = trigr.parse(signed, where, environments=["model"], key=b"k-new",
                     previous_keys=[b"k-older", b"k-old"], require_signature=False)
    assert loaded.signed_by == 2
    loaded = trigr.parse(signed, where, environments=["model"], key=None, require_signature=False)
    assert loaded.signature is not None and loaded.signed_by is None
    loaded = trigr.parse(unsigned, where, environments=["model"], key=b"k-new",
                     require_signature=False)
    assert loaded.signature is None and loaded.signed_by is None
