"""Revalidation requests POSTed as JSON (`[qa.webhook]`, docs/trackers.md).

The body has a Slack-compatible `text` (an incoming webhook shows it as is) and the whole
ticket under `dasct` for anything else; every request carries `Idempotency-Key: <key>`,
so a receiver that honours it (and a relay in front of Slack can) sees a retry as one
request. The URL may carry a token (Slack's do): it is never part of a message.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

from dasct import __version__, redact
from dasct.trackers import (
    CredentialsRefused,
    Decision,
    Env,
    Filed,
    RetryLater,
    Ticket,
    TrackerError,
)

SHORT_BODY = 1000  # characters of the ticket's body in `text`; the rest is in `dasct`


def slack_escape(text: str) -> str:
    """text as Slack mrkdwn shows it literally (its three control characters escaped)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def text_of(title: str, body: str) -> str:
    """The `text` field: the title in bold, then the body, cut after SHORT_BODY."""
    short = body if len(body) <= SHORT_BODY else body[:SHORT_BODY].rstrip() + "\n…"
    return f"*{slack_escape(' '.join(title.split()))}*\n{slack_escape(short)}"


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # urllib turns a redirected POST into a GET without the body: a 200 from that would
    # pass for a delivery. A redirect is an error here, and the URL is not followed.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class WebhookTracker:
    """POSTs each request to one URL; decisions are not read back (QA uses the CLI)."""

    name = "webhook"

    def __init__(self, cfg: Any, env: Env) -> None:
        self.cfg = cfg  # a qaconfig.WebhookTracker
        self.env = env

    def file(self, ticket: Ticket) -> Filed:
        """POST the ticket; its id is its key (the receiver keeps no id we could read)."""
        self._post({"text": text_of(ticket.title, ticket.body), "dasct": ticket.to_dict()},
                   ticket.key)
        return Filed(self.name, ticket.key)

    def regressed(self, defect: str, text: str, key: str) -> None:
        """POST that defect regressed, and why."""
        self._post({"text": text_of(f"{defect} regressed", text),
                    "dasct": {"defect": defect, "regressed": True, "text": text, "key": key}},
                   key)

    def decision(self, filed: Filed) -> Decision | None:
        """None: a webhook answers nothing back."""
        return None

    def owner(self, defect: str) -> str | None:
        """None: a webhook knows no owners."""
        return None

    def url(self) -> str:
        """The URL requests go to: $url_env when set, else [qa.webhook] url."""
        cfg = self.cfg
        url = self.env.get(cfg.url_env, "") if cfg.url_env else ""
        url = url or cfg.url
        if not url:
            named = f"${cfg.url_env} is not set and " if cfg.url_env else ""
            raise TrackerError(f"webhook: {named}[qa.webhook] url is empty")
        if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
            # urllib would also read file:// and ftp://; a webhook is HTTP.
            raise TrackerError(f"webhook: {self._where(url)}: not an http(s) URL")
        return url

    def _where(self, url: str) -> str:
        # What a message may say of the URL: where the token is not (scheme and host),
        # and the variable it came from.
        parts = urlsplit(url)
        shown = f"{parts.scheme}://{parts.hostname}" if parts.hostname else "the URL"
        if parts.port:
            shown += f":{parts.port}"
        return f"{shown} (${self.cfg.url_env})" if self.cfg.url_env else shown

    def _post(self, payload: dict[str, Any], key: str) -> None:
        url = self.url()
        where = self._where(url)
        body = json.dumps(redact.scrub(payload), ensure_ascii=False).encode()
        request = urllib.request.Request(url, data=body, method="POST", headers={
            "Content-Type": "application/json; charset=utf-8",
            "Idempotency-Key": key,
            "User-Agent": f"dasct/{__version__}",
        })
        opener = urllib.request.build_opener(_NoRedirects)
        try:
            with opener.open(request, timeout=self.cfg.timeout_seconds) as response:
                response.read(65536)  # drained so the connection closes cleanly
        except urllib.error.HTTPError as exc:
            raise _refusal(exc, where, self.cfg.url_env, url) from None
        except TimeoutError:
            raise TrackerError(f"webhook: {where} did not answer within "
                               f"{self.cfg.timeout_seconds:g} s") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, TimeoutError):
                raise TrackerError(f"webhook: {where} did not answer within "
                                   f"{self.cfg.timeout_seconds:g} s") from None
            raise TrackerError(_line(f"webhook: cannot reach {where}: {reason}", url)) from None


def _refusal(exc: urllib.error.HTTPError, where: str, url_env: str, url: str) -> TrackerError:
    code = exc.code
    if code in (429, 503):
        seconds = retry_after(exc.headers.get("Retry-After", "") if exc.headers else "")
        return RetryLater(f"webhook: {where} answered HTTP {code}; retry after "
                          f"{seconds:g} s", seconds)
    if code in (401, 403):
        which = f"the URL in ${url_env}" if url_env else "[qa.webhook] url"
        return CredentialsRefused(f"webhook: {where} refused the request (HTTP {code}): "
                                  f"check {which}")
    return TrackerError(_line(f"webhook: {where} answered HTTP {code} {exc.reason}", url))


def retry_after(value: str, now: float | None = None) -> float:
    """Seconds a Retry-After header asks to wait (delta-seconds or an HTTP date); 0 if none."""
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return 0.0
    return max(0.0, when - (time.time() if now is None else now))


def _line(text: str, url: str) -> str:
    # A server's reason phrase or an OS error could quote the URL: its parts are secrets
    # here even when it came from the config rather than a secret variable.
    parts = urlsplit(url)
    extra = [s for s in (url, parts.path, parts.query) if len(s) >= redact.MIN_SECRET]
    return redact.redact(" ".join(text.split()), [*redact.secret_values(), *extra])


def make(cfg: Any, env: Env) -> WebhookTracker:
    """The webhook tracker of a qaconfig.QaConfig."""
    return WebhookTracker(cfg.webhook, env)
