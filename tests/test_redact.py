"""The one redaction (dasct.redact): what is a secret, and that no sink writes one.

The property: for any secret value (printable, with quotes, backslashes, regex
metacharacters and non-ASCII letters), every sink — the terminal, the crash log, the
journal, outcomes, the outbox (payload and last error), delivered notifications, the
audit log — writes the message around it and never the secret, in any encoding JSON
might give it.
"""

from __future__ import annotations

import io
import json
import os
import string
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dasct import cli, config, notify, redact
from dasct.audit import AuditLog
from dasct.migrate import inventory, journal
from dasct.migrate.report import Reporter

VAR = "DASCT_TEST_API_TOKEN"


@contextmanager
def secret_in_env(value: str) -> Iterator[None]:
    # Not monkeypatch: hypothesis runs many examples in one test function.
    os.environ[VAR] = value
    try:
        yield
    finally:
        del os.environ[VAR]


class Refusing:
    """A transport whose error quotes what it was sent, as an HTTP client's may."""

    def send(self, notification: notify.Notification) -> None:
        raise ConnectionError(f"POST refused: {notification.body}")


def _note(message: str) -> notify.Notification:
    return notify.Notification(kind=notify.ROLLED_BACK, subject=message, body=message,
                               environment="model", data={"reason": message, "n": [message]})


def sink_journal(state: Path, message: str) -> None:
    j = journal.Journal.begin(state, trigger="E1", kind="migrate", steps=["archive"])
    j.record("rollback", "intent", cause="failure", reason=message)
    j.finish("rolled-back")


def sink_outcome(state: Path, message: str) -> None:
    inventory.set_outcome(state, "E1", "escalated", reason=message, problems=[message])


def sink_outbox(state: Path, message: str) -> None:
    notify.Outbox(state).enqueue(_note(message))


def sink_outbox_error(state: Path, message: str) -> None:
    outbox = notify.Outbox(state)
    outbox.enqueue(_note("plain"))
    outbox.deliver(Refusing())
    [waiting] = outbox.waiting()
    assert waiting.last_error is not None and "POST refused" in waiting.last_error
    outbox.enqueue(_note(message))
    outbox.deliver(Refusing())


def sink_delivered(state: Path, message: str) -> None:
    notify.notify(state, _note(message))


def sink_audit(state: Path, message: str) -> None:
    AuditLog(state).append("rolled-back", trigger="E1", reason=message, nested={"x": [message]})


def sink_reporter(state: Path, message: str) -> None:
    report = Reporter(state, environment="model", recipients=("qa@example.com",))
    report.rolled_back("E1", reason=message)
    report.escalation("E1", reason=message, problems=[message])
    report.flush()


SINKS: dict[str, Callable[[Path, str], None]] = {
    "journal": sink_journal, "outcome": sink_outcome, "outbox": sink_outbox,
    "outbox-error": sink_outbox_error, "delivered": sink_delivered, "audit": sink_audit,
    "reporter": sink_reporter,
}


def forms(secret: str) -> set[bytes]:
    """The ways a file may hold secret: raw, and as JSON spells it (escaped or not)."""
    return {secret.encode(), json.dumps(secret)[1:-1].encode(),
            json.dumps(secret, ensure_ascii=False)[1:-1].encode()}


def files_holding(root: Path, secret: str) -> list[str]:
    return [str(p.relative_to(root)) for p in sorted(root.rglob("*")) if p.is_file()
            and any(f in p.read_bytes() for f in forms(secret))]


# A fixed head keeps a random value from being a piece of the files' own structure (a
# hash, a timestamp), which would be no leak; the rest is anything printable.
secrets = st.text(
    alphabet=st.sampled_from(string.printable + "éß中\u00a0"), min_size=5, max_size=40
).map(lambda s: "Ks!" + s)


@pytest.mark.parametrize("sink", sorted(SINKS))
@settings(max_examples=25, deadline=None)
@given(secret=secrets)
def test_no_sink_writes_a_secret(sink: str, secret: str) -> None:
    with tempfile.TemporaryDirectory() as tmp, secret_in_env(secret):
        state = Path(tmp)
        SINKS[sink](state, f"before {secret} after")
        assert files_holding(state, secret) == []
        written = b"".join(p.read_bytes() for p in state.rglob("*") if p.is_file())
        assert b"before" in written  # the message itself was written


@settings(max_examples=30, deadline=None)
@given(secret=secrets)
def test_the_terminal_never_shows_a_secret(secret: str) -> None:
    out, err = io.StringIO(), io.StringIO()
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    try:
        with secret_in_env(secret), redact.guarded_streams():
            print(f"before {secret} after")
            print("one", secret, "two", file=sys.stderr)  # print writes each piece apart
            sys.stderr.write(f"no newline {secret}")
    finally:
        sys.stdout, sys.stderr = saved
    shown = out.getvalue() + err.getvalue()
    assert secret not in shown
    assert "before" in shown and "no newline" in shown


@settings(max_examples=15, deadline=None)
@given(secret=secrets)
def test_the_crash_log_never_holds_a_secret(secret: str) -> None:
    def crash() -> int:
        raise RuntimeError(f"boom {secret} bang")

    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["git", "init", "-q", tmp], check=True)
        err, saved, cwd = io.StringIO(), sys.stderr, os.getcwd()
        sys.stderr = err
        os.chdir(tmp)
        try:
            with secret_in_env(secret), redact.guarded_streams():
                assert cli._guarded(crash, fail_open=False) == 3
        finally:
            sys.stderr = saved
            os.chdir(cwd)
        log = Path(tmp) / ".git" / "dasct" / "crash.log"
        assert "RuntimeError: boom" in log.read_text()
        assert files_holding(Path(tmp) / ".git" / "dasct", secret) == []
        assert "boom" in err.getvalue() and secret not in err.getvalue()


# ----------------------------------------------------------------------- the redaction


def test_database_url_passwords_are_masked() -> None:
    cases = {
        "postgresql://bob:hunter2pass@db:5432/app": "postgresql://bob:***@db:5432/app",
        "postgres://bob:p@ss:w0rd@db/app?ssl=1": "postgres://bob:***@db/app?ssl=1",
        "connect to https://ci:tok3n@example.com/x": "connect to https://ci:***@example.com/x",
        "postgresql://bob@db/app": "postgresql://bob@db/app",
        "sqlite:///srv/app/db.sqlite": "sqlite:///srv/app/db.sqlite",
        "a ftp://u:1@h and smtp+tls://u:2@h": "a ftp://u:***@h and smtp+tls://u:***@h",
    }
    assert {url: redact.mask_urls(url) for url in cases} == cases
    # A long text (a walk's JSON) is scanned line by line: the same answer as at once.
    filler = "\n".join(f'{{"commit": "{n:040x}", "line": {n}}}' for n in range(4000))
    long = f"{filler}\r\n{' '.join(cases)}\n{filler}\nend https://ci:tok3n@h"
    assert len(long) > 1 << 16
    masked = redact.mask_urls(long)
    assert masked == long.replace("hunter2pass", "***").replace("p@ss:w0rd", "***").replace(
        "tok3n", "***").replace("u:1@", "u:***@").replace("u:2@", "u:***@")
    assert "hunter2pass" not in masked and masked.endswith("https://ci:***@h")
    assert redact.url_password("postgresql://bob:p%40ss@db/app") == "p%40ss"
    assert redact.url_password("postgresql://bob@db/app") is None


def test_configured_url_passwords_are_known_values(tmp_path: Path) -> None:
    (tmp_path / ".dasct.toml").write_text(
        '[environments.pg]\ndatabase = "postgresql://bob:long%40password@db/app"\n')
    redact.configure(config.load(tmp_path))
    try:
        # The decoded form too: that is what a command that connects would print.
        assert redact.redact("pw long@password / long%40password") == \
            "pw [redacted] / [redacted]"
    finally:
        redact.configure(config.Config())


@pytest.mark.parametrize("name", [
    "DASCT_TRIGGER_KEY", "PGPASSWORD", "JIRA_API_TOKEN", "GITHUB_TOKEN", "SMTP_PASSWORD",
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "OPENAI_API_KEY", "KEY", "SSH_KEYS",
    "DB_CREDENTIALS", "GPG_PASSPHRASE", "client_secret", "STRIPE_APIKEY"])
def test_secret_variable_names(name: str) -> None:
    assert redact.is_secret_var(name)


@pytest.mark.parametrize("name", [
    "PATH", "HOME", "PWD", "OLDPWD", "PIP_KEYRING_PROVIDER", "HOTKEY", "MONKEY_MODE",
    "DASCT_ENVIRONMENT", "LANG", "SSH_AUTH_SOCK"])
def test_ordinary_variable_names(name: str) -> None:
    assert not redact.is_secret_var(name)


def test_configured_names_are_secret_and_withheld(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".dasct.toml").write_text(
        '[migrate]\nsigning_key_env = "MY_HMAC"\nverify_key_envs = ["OLD_HMAC"]\n'
        '[audit]\ncheckpoint_key_env = "MY_ANCHOR"\n'
        '[security]\nsecret_env = ["DEPLOY_*", "EXACT"]\n'
        'pass_env = ["NEEDED_TOKEN", "MY_HMAC", "MY_ANCHOR", "DASCT_AUDIT_KEY", "OLD_HMAC"]\n')
    for name, value in {"MY_HMAC": "hmac-value-1", "DEPLOY_CERT": "deploy-value-1",
                        "EXACT": "exact-value-1", "NEEDED_TOKEN": "needed-value-1",
                        "OTHER": "other-value-1", "MY_ANCHOR": "anchor-value-1",
                        "DASCT_AUDIT_KEY": "audit-value-1", "OLD_HMAC": "old-hmac-value"}.items():
        monkeypatch.setenv(name, value)
    redact.configure(config.load(tmp_path))
    try:
        env = redact.child_env({"DASCT_ENVIRONMENT": "model"})
        # Signing keys (triggers', the audit anchor's) never reach a child, pass_env or not.
        assert {"MY_HMAC", "DEPLOY_CERT", "EXACT", "MY_ANCHOR", "DASCT_AUDIT_KEY",
                "OLD_HMAC"}.isdisjoint(env)
        assert env["NEEDED_TOKEN"] == "needed-value-1" and env["OTHER"] == "other-value-1"
        assert env["DASCT_ENVIRONMENT"] == "model"
        shown = redact.redact("hmac-value-1 deploy-value-1 exact-value-1 needed-value-1 "
                              "other-value-1 anchor-value-1 audit-value-1")
        assert shown == ("[redacted] [redacted] [redacted] [redacted] other-value-1 "
                         "[redacted] [redacted]")
    finally:
        redact.configure(config.Config())


def test_short_values_are_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(VAR, "1234567")  # 7 characters: too likely to occur by chance
    assert redact.redact("pin 1234567") == "pin 1234567"


def test_a_secret_inside_the_marker_does_not_come_back() -> None:
    assert "redacted" not in redact.redact("it was redacted here", ["redacted"])
    assert "acted]xy" not in redact.redact("acted]xyacted]xy", ["acted]xy"])


def test_overlapping_secrets_leave_no_fragment() -> None:
    text = redact.redact("xxabcdefgh12345678yy", ["abcdefgh1234", "gh12345678"])
    assert text == "xx[redacted]yy"


def test_scrub_keeps_identifiers_and_redacts_the_rest() -> None:
    doc = {"trigger": "E-sekrit-value", "reason": "E-sekrit-value failed",
           "problems": ["E-sekrit-value"], "n": 3}
    assert redact.scrub(doc, ["sekrit-value"], keep=("trigger",)) == {
        "trigger": "E-sekrit-value", "reason": "E-[redacted] failed",
        "problems": ["E-[redacted]"], "n": 3}
