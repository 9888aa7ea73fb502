"""Revalidation requests and regressions by email (smtplib; `[qa.email]`, docs/trackers.md).

One message per request: a text/plain part (the ticket's body, UTF-8) and the ticket as a
JSON attachment. Its Message-ID derives from the request's key, so a retry whose first
try did reach the server is recognisable (and threaded) as the same message. SMTP has no
way to ask "did you get this one?", so email is the one tracker that is at least once.
"""

from __future__ import annotations

import json
import re
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate
from hashlib import sha256
from typing import Any

from dasct import redact
from dasct.trackers import CredentialsRefused, Decision, Env, Filed, Ticket, TrackerError

PORTS = {"starttls": 587, "ssl": 465, "none": 25}
# Good enough to tell an address from a user name (a Jira account id, a GitHub login).
_ADDRESS = re.compile(r"[^@\s<>,;\"]+@[^@\s<>,;\"]+")
# RFC 5322 dot-atom-text: what may stand left of the @ in a Message-ID as it is.
_DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")


def message_id(key: str) -> str:
    """`<KEY@dasct>`; with a key a Message-ID cannot hold as it is (an @, a space), or
    one so long the header would be folded, its SHA-256 (32 hex digits) stands for it."""
    fits = len(key) <= 64 and _DOT_ATOM.fullmatch(key)
    return f"<{key if fits else sha256(key.encode()).hexdigest()[:32]}@dasct>"


class EmailTracker:
    """Sends mail through one SMTP server; decisions are not read back (QA uses the CLI)."""

    name = "email"

    def __init__(self, cfg: Any, env: Env) -> None:
        self.cfg = cfg  # a qaconfig.EmailTracker
        self.env = env

    def file(self, ticket: Ticket) -> Filed:
        """Mail the ticket to its assignee (if an address), notify and `to`."""
        to = recipients((ticket.assignee, *ticket.notify, *self.cfg.to))
        attachment = json.dumps(redact.scrub(ticket.to_dict()), indent=2, sort_keys=True,
                                ensure_ascii=False)
        msg = self._message(ticket.key, ticket.title, ticket.body, to)
        msg.add_attachment(attachment.encode(), maintype="application", subtype="json",
                           filename="dasct-ticket.json")
        self._send(msg, to)
        return Filed(self.name, msg["Message-ID"])

    def regressed(self, defect: str, text: str, key: str) -> None:
        """Mail `to` that defect regressed (the ticket's people were told on filing)."""
        to = recipients(self.cfg.to)
        self._send(self._message(key, f"{defect} regressed", text, to), to)

    def decision(self, filed: Filed) -> Decision | None:
        """None: a mail cannot be resolved; QA answers with `dasct qa accept/reject`."""
        return None

    def owner(self, defect: str) -> str | None:
        """None: a mail server knows no owners."""
        return None

    def _message(self, key: str, subject: str, body: str, to: list[str]) -> EmailMessage:
        if not to:
            raise TrackerError("email: nobody to send to (no assignee address, no one to "
                               "notify, [qa.email] to is empty)")
        msg = EmailMessage()
        # A header holds one line: a title with a line break would be refused (or worse).
        msg["Subject"] = " ".join(redact.redact(subject).split())
        msg["From"] = self.cfg.sender
        msg["To"] = ", ".join(to)
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = message_id(key)
        msg["X-Dasct-Key"] = key
        msg.set_content(redact.redact(body), charset="utf-8")
        return msg

    def _secret(self, name: str) -> str:
        value = self.env.get(name, "")
        if not value:
            raise TrackerError(f"email: ${name} is not set ([qa.email] needs it to log in "
                               f"to {self.cfg.host})")
        return value

    def _send(self, msg: EmailMessage, to: list[str]) -> None:
        cfg = self.cfg
        if not cfg.host:
            raise TrackerError("email: [qa.email] host is not set")
        port = cfg.port or PORTS[cfg.security]
        where = f"{cfg.host}:{port}"
        login = None
        if cfg.user_env:
            login = self._secret(cfg.user_env), self._secret(cfg.password_env)
        # Verified against the system's CAs (or ca_file), host name included: a password
        # or a ticket body must not go to whoever answers on the port.
        context = ssl.create_default_context(cafile=cfg.ca_file or None)
        secrets = [login[1]] if login else []
        try:
            smtp: smtplib.SMTP
            if cfg.security == "ssl":
                smtp = smtplib.SMTP_SSL(cfg.host, port, timeout=cfg.timeout_seconds,
                                        context=context)
            else:
                smtp = smtplib.SMTP(cfg.host, port, timeout=cfg.timeout_seconds)
            with smtp:
                if cfg.security == "starttls":
                    smtp.starttls(context=context)
                if login:
                    smtp.login(*login)
                # Some recipients refused, some not: delivered (a retry would mail the
                # others twice); all refused raises SMTPRecipientsRefused.
                smtp.send_message(msg, from_addr=cfg.sender, to_addrs=to)
        except smtplib.SMTPAuthenticationError:
            raise CredentialsRefused(
                f"email: {where} refused the login of ${cfg.user_env} with the password "
                f"in ${cfg.password_env}") from None
        except (smtplib.SMTPException, OSError) as exc:
            # OSError: refused, unreachable, timed out, a certificate that does not verify.
            raise TrackerError(_line(f"email: {where}: {type(exc).__name__}: {exc}",
                                     secrets)) from None


def recipients(candidates: Any) -> list[str]:
    """The addresses among candidates, in order, each once (case-insensitively)."""
    seen: dict[str, str] = {}
    for c in candidates:
        c = c.strip()
        if _ADDRESS.fullmatch(c):
            seen.setdefault(c.lower(), c)
    return list(seen.values())


def _line(text: str, secrets: list[str]) -> str:
    # The server's answer is quoted: redacted with what this process knows, plus the
    # password read from a caller's own environment mapping.
    extra = [s for s in secrets if len(s) >= redact.MIN_SECRET]
    return redact.redact(" ".join(text.split()), [*redact.secret_values(), *extra])


def make(cfg: Any, env: Env) -> EmailTracker:
    """The email tracker of a qaconfig.QaConfig."""
    return EmailTracker(cfg.email, env)
