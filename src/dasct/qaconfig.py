"""The `[qa]` section of the configuration: the QA loop's ledger, trackers, owners and
evidence (docs/qa.md, docs/trackers.md)."""

from __future__ import annotations

from dataclasses import dataclass, field

from dasct.config_base import (
    DEFAULT_TEST_PATHS,
    _between,
    _env_var,
    _jira_project,
    _matching,
    _recipient,
    checked,
)

_tracker_name = _matching(r"local|jira|github|email|webhook",
                          "a tracker (local, jira, github, email, webhook)")


@dataclass(frozen=True)
class JiraTracker:
    """Revalidation tickets as Jira issues (docs/qa.md); credentials from the environment."""

    url: str = ""  # https://jira.example.com or https://example.atlassian.net
    project: str = field(default="", metadata=checked(_jira_project))  # where tickets go
    issue_type: str = "Task"
    link_type: str = "Relates"  # the issue link type joining ticket and defect
    # Cloud: email + API token (basic auth); Server/Data Center: a personal access token.
    email_env: str = field(default="", metadata=checked(_env_var))  # set: Cloud
    token_env: str = field(default="DASCT_JIRA_TOKEN", metadata=checked(_env_var))
    owner_field: str = ""  # a custom field holding the defect's QA owner (else reporter)
    accept_statuses: tuple[str, ...] = ("Done", "Closed", "Resolved")
    reject_resolutions: tuple[str, ...] = ("Regression",)  # or a label below
    reject_labels: tuple[str, ...] = ("regression",)
    timeout_seconds: float = 20.0


@dataclass(frozen=True)
class GithubTracker:
    """Revalidation tickets as GitHub issues (docs/qa.md)."""

    repository: str = field(default="", metadata=checked(_matching(
        r"([\w.-]+/[\w.-]+)?", "owner/name")))
    base_url: str = ""  # GitHub Enterprise: https://HOST/api/v3; empty: api.github.com
    token_env: str = field(default="DASCT_GITHUB_TOKEN", metadata=checked(_env_var))
    labels: tuple[str, ...] = ("dasct-revalidation",)
    reject_labels: tuple[str, ...] = ("regression",)
    timeout_seconds: float = 20.0


@dataclass(frozen=True)
class EmailTracker:
    """Revalidation requests by email (smtplib)."""

    host: str = ""
    port: int = field(default=0, metadata=checked(_between(0, 65535)))  # 0: by security
    security: str = field(default="starttls", metadata=checked(_matching(
        r"starttls|ssl|none", "starttls, ssl or none")))
    user_env: str = field(default="", metadata=checked(_env_var))
    password_env: str = field(default="DASCT_SMTP_PASSWORD", metadata=checked(_env_var))
    sender: str = "dasct@localhost"
    to: tuple[str, ...] = field(default=(), metadata=checked(_recipient))  # besides owners
    # A PEM file of the CA that signed the server's certificate (an internal CA); empty:
    # the system's. Certificates are always verified.
    ca_file: str = ""
    timeout_seconds: float = 20.0


@dataclass(frozen=True)
class WebhookTracker:
    """Revalidation requests POSTed as JSON with a Slack-compatible `text` field."""

    url: str = ""
    # The whole URL may be a secret (Slack's carry their token): read from here when set.
    url_env: str = field(default="", metadata=checked(_env_var))
    timeout_seconds: float = 10.0


@dataclass(frozen=True)
class QaConfig:
    """The QA loop: ledger, trackers, owners and evidence (docs/qa.md)."""

    trackers: tuple[str, ...] = field(default=("local",), metadata=checked(_tracker_name))
    ledger_branch: str = field(default="dasct-ledger", metadata=checked(_matching(
        r"[A-Za-z0-9][A-Za-z0-9._/-]{0,99}", "a branch name")))
    ledger_remote: str = "origin"  # where CI pushes the ledger; "" keeps it local
    # QA owners: defect key or glob -> owner, when the tracker names none.
    owners: dict[str, str] = field(default_factory=dict)
    default_assignee: str = ""
    # Tests: paths of a fix commit matching these are its tests (globs as [paths] exclude).
    test_globs: tuple[str, ...] = DEFAULT_TEST_PATHS
    # Run at the touching commit: {tests} (paths), {classes} (file stems), e.g.
    # "python -m pytest {tests}"; empty: no evidence is run.
    test_command: str = ""
    test_timeout_seconds: float = 600.0
    verify_trigger_tests: bool = False  # run only tests that fail before the fix, pass at it
    record_post_commit: bool = False  # a local post-commit recorder (off: CI records)
    jira: JiraTracker = field(default_factory=JiraTracker)
    github: GithubTracker = field(default_factory=GithubTracker)
    email: EmailTracker = field(default_factory=EmailTracker)
    webhook: WebhookTracker = field(default_factory=WebhookTracker)
