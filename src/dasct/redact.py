"""The one redaction: what dasct counts as a secret, and how every sink removes it.

A secret is known in two ways (docs/security.md):

- by **value**: the values, 8 characters or longer, of the secret environment variables of
  this process (the credential variables dasct knows of, `KNOWN_VARS`; the signing-key
  variable the config names; every name matching `SECRET_VAR`; the configured
  `[security] secret_env` names and globs) and the passwords of the configured database
  URLs. Each is replaced by `[redacted]` wherever it occurs.
- by **pattern**: the password of any `scheme://user:password@host` URL is masked
  (`postgresql://bob:***@host`), whatever it is.

Every sink goes through here: the terminal (`guarded_streams`), the crash log, the journal,
outcomes and inventory, the outbox and delivered notifications, and the audit log. The
same registry decides what a command dasct runs inherits (`child_env`).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any, TextIO, cast

if TYPE_CHECKING:
    from dasct.config import Config

REDACTED = "[redacted]"
URL_MASK = "***"
MIN_SECRET = 8  # shorter values are too likely to occur by chance to be worth replacing
# The credential variables dasct (or a library it drives) reads whatever their names look
# like; the tracker and SMTP integrations add theirs here.
KNOWN_VARS: tuple[str, ...] = ("DASCT_TRIGGER_KEY", "DASCT_AUDIT_KEY", "PGPASSWORD")
# Environment variable names whose values are secrets: tokens, passwords, keys... "KEY"
# only as a word of the name (DASCT_TRIGGER_KEY, AWS_ACCESS_KEY_ID), not inside one
# (PIP_KEYRING_PROVIDER, HOTKEY), whose values are ordinary words redaction would mangle.
SECRET_VAR = re.compile(
    r"(?i)passw|secret|token|credential|passphrase"
    r"|(?:^|_)(?:api_?|private_?|signing_?|access_?|auth_?)?keys?(?:_|$)"
)
# Field names (in audit records, journal records, ...) whose values are never written.
SECRET_FIELD = re.compile(
    r"(?i)(password|passwd|secret|token|credential|api_?key|signing_?key|private_?key"
    r"|authorization|cookie)"
)
# scheme://user:password@ — the userinfo ends at the last @ before the host (RFC 3986:
# it holds no / ? #), so a password with a raw @ is masked whole.
_URL_PASSWORD = re.compile(
    r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s/?#@:]*):(?P<password>[^\s/?#]*)@"
)


class _Policy:
    """What the configuration adds to the registry (see configure)."""

    # Keys that never reach a child, whatever pass_env says: triggers', the audit anchor's.
    signing: frozenset[str] = frozenset({"DASCT_TRIGGER_KEY", "DASCT_AUDIT_KEY"})
    globs: tuple[str, ...] = ()  # [security] secret_env
    passed: frozenset[str] = frozenset()  # [security] pass_env
    values: frozenset[str] = frozenset()  # passwords of configured database URLs


_policy = _Policy()
_verdicts: dict[str, bool] = {}  # is_secret_var's answers under the current policy


def configure(cfg: Config) -> None:
    """Make the secrets a configuration names known to every sink of this process.

    Called wherever an environment is resolved (dasct.migrate.environment): the signing-key
    variables (triggers' current and previous keys, audit checkpoints, [publish]'s TUF
    keys), `[security] secret_env` and `pass_env`, and the database URLs' passwords.
    """
    from urllib.parse import unquote

    values: set[str] = set()
    for env in cfg.environments.values():
        password = url_password(env.database)
        if password:
            values.update({password, unquote(password)})
    _policy.signing = frozenset({"DASCT_TRIGGER_KEY", cfg.migrate.signing_key_env,
                                 *cfg.migrate.verify_key_envs,
                                 "DASCT_AUDIT_KEY", cfg.audit.checkpoint_key_env,
                                 # the trackers' credentials ([qa.*]; empty: not set)
                                 *(n for n in (cfg.qa.jira.token_env, cfg.qa.github.token_env,
                                               cfg.qa.email.password_env,
                                               cfg.qa.webhook.url_env) if n),
                                 # the TUF keys [publish] reads from the environment
                                 *(k[4:] for r in (cfg.publish.root, cfg.publish.targets,
                                                   cfg.publish.snapshot, cfg.publish.timestamp)
                                   for k in r.keys if k.startswith("env:"))})
    _policy.globs = tuple(cfg.security.secret_env)
    _policy.passed = frozenset(cfg.security.pass_env)
    _policy.values = frozenset(values)
    _verdicts.clear()


def url_password(url: str) -> str | None:
    """The password of a `scheme://user:password@host` URL as written, or None."""
    match = _URL_PASSWORD.match(url)
    return (match.group("password") or None) if match else None


def is_secret_var(name: str) -> bool:
    """True when environment variable `name` holds a secret dasct knows of."""
    known = _verdicts.get(name)
    if known is None:
        # Cached per name: the terminal asks for every line it shows.
        known = _verdicts[name] = (
            name in KNOWN_VARS
            or name in _policy.signing
            or bool(SECRET_VAR.search(name))
            or any(fnmatchcase(name, glob) for glob in _policy.globs)
        )
    return known


def secret_values(environ: Mapping[str, str] | None = None) -> list[str]:
    """The secret values present in this process (8 characters or more), longest first."""
    env = os.environ if environ is None else environ
    found = {value for name, value in env.items() if is_secret_var(name)}
    found.update(_policy.values)
    return sorted((v for v in found if len(v) >= MIN_SECRET), key=len, reverse=True)


def child_env(extra: Mapping[str, str]) -> dict[str, str]:
    """The environment of a command dasct runs: its own minus every secret, plus extra.

    `[security] pass_env` lets a named variable through (its value is still redacted in
    all output); the signing key never is.
    """
    env = {
        name: value for name, value in os.environ.items()
        if not is_secret_var(name) or (name in _policy.passed and name not in _policy.signing)
    }
    env.update(extra)
    return env


def mask_urls(text: str) -> str:
    """text with the password of every `scheme://user:password@` URL replaced by ***."""
    # The pattern is slow to scan (it tries at every word's start: 0.2 s over the 10 MB
    # of a 1,000-commit `check --each`), and a match holds "://" and no whitespace, so
    # only the lines holding "://" are scanned.
    if "://" not in text:
        return text
    if len(text) <= 1 << 16:
        return _URL_PASSWORD.sub(_masked, text)
    return "\n".join(_URL_PASSWORD.sub(_masked, line) if "://" in line else line
                     for line in text.split("\n"))


def _masked(m: re.Match[str]) -> str:
    return f"{m.group('head')}:{URL_MASK}@"


def _spans(text: str, secrets: Sequence[str]) -> list[tuple[int, int]]:
    spans = []
    for secret in secrets:
        start = text.find(secret)
        while start >= 0:
            spans.append((start, start + len(secret)))
            start = text.find(secret, start + 1)
    spans.sort()
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def redact(text: str, secrets: Sequence[str] | None = None) -> str:
    """text without a secret: every known value replaced by [redacted], URL passwords masked.

    A secret can reach a message indirectly (a child's stderr, an exception quoting a URL
    with a token); this is the last line of defence before anything is shown or written.
    Overlapping occurrences are replaced as one, so no fragment of a secret survives.
    """
    secrets = secret_values() if secrets is None else secrets
    text = mask_urls(text)
    if not secrets or not any(s in text for s in secrets):
        return text
    # A secret that is part of the marker itself would come back with it.
    marker = URL_MASK if any(s in REDACTED for s in secrets) else REDACTED
    for _ in range(3):
        out, last = [], 0
        for start, end in _spans(text, secrets):
            out += [text[last:start], marker]
            last = end
        text = "".join(out) + text[last:]
        if not any(s in text for s in secrets):
            return text
    return marker  # the pieces keep re-forming a secret: show nothing of the text


_PLAIN = (int, float, type(None))  # scrub passes these through (bool is an int)


def scrub(value: Any, secrets: Sequence[str] | None = None, *,
          keep: Collection[str] = ()) -> Any:
    """A copy of a JSON-like value with every string redacted, to write *after* this.

    Redacting the serialized text would miss a secret whose quotes, backslashes or
    non-ASCII letters the serializer escapes. The top-level keys in keep are identifiers
    dasct reads back (a trigger id, a path), left as they are: redacting one would break
    the reading, and they come from a trigger, not from a command or an error.
    """
    secrets = secret_values() if secrets is None else secrets
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, Mapping):
        return {
            k if k in keep else redact(str(k), secrets): v if k in keep else scrub(v, secrets)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        # Numbers (a ticket's line ranges: thousands) are taken as they are, not each
        # passed down again.
        return [v if isinstance(v, _PLAIN) else scrub(v, secrets) for v in value]
    return value


class _RedactingStream:
    """A text stream that redacts whole lines before they reach the one it wraps."""

    def __init__(self, inner: TextIO) -> None:
        self.inner = inner
        self._pending = ""

    def write(self, text: str) -> int:
        self._pending += text
        if "\n" in text or "\r" in text:
            # Redacted first, cut after: a secret holding a line break is seen whole. Whole
            # lines (and progress lines ending in \r) go out; the rest waits, so a secret
            # that print() writes apart from the words around it is seen whole too.
            shown = redact(self._pending)
            cut = max(shown.rfind("\n"), shown.rfind("\r")) + 1
            self.inner.write(shown[:cut])
            self._pending = shown[cut:]
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if self._pending:
            self.inner.write(redact(self._pending))
            self._pending = ""
        self.inner.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@contextmanager
def guarded_streams() -> Iterator[None]:
    """Redact everything written to sys.stdout and sys.stderr inside the block."""
    saved = sys.stdout, sys.stderr
    out, err = _RedactingStream(saved[0]), _RedactingStream(saved[1])
    sys.stdout, sys.stderr = cast(TextIO, out), cast(TextIO, err)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved
        for stream in (out, err):
            try:
                stream.flush()
            except (OSError, ValueError):  # a closed pipe: git and shells go on quietly too
                pass
