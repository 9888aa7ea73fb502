"""From an HTTP answer of a remote tracker (Jira, GitHub) to the Protocol's errors.

One mapping for both REST trackers, so 401, 429 and 5xx mean the same thing wherever
they come from. Messages are built here from the status and the names in config, never
from the client library's exception text: `jira.JIRAError` quotes the request headers
(the Authorization header among them), so it must not reach a message.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

from dasct import redact
from dasct.trackers import CredentialsRefused, RetryLater, TrackerError


class NotFound(TrackerError):
    """404/410: the issue is not there (or not visible to the token). Where it is the
    defect, the tracker carries on without it: retrying would not make it appear."""


# A 429 without Retry-After: GitHub advises waiting at least a minute; Jira names no figure.
DEFAULT_WAIT = 60.0


def require(tracker: str, module: str, package: str, extra: str) -> None:
    """TrackerError naming the extra to install when the client library is missing
    (found without importing it: make() stays cheap)."""
    from importlib.util import find_spec

    try:
        found = find_spec(module) is not None
    except ValueError:  # sys.modules[module] is None: imports of it are blocked
        found = False
    if not found:
        raise TrackerError(f"{tracker}: {package} is not installed "
                           f"(pip install 'dasct[{extra}]')")


def retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float:
    """Seconds to wait from Retry-After (seconds) or X-RateLimit-Reset (epoch), else 60."""
    lower = {k.lower(): v for k, v in headers.items()}
    value = lower.get("retry-after", "").strip()
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            pass  # an HTTP date: rare from these services; the default is as safe
    reset = lower.get("x-ratelimit-reset", "").strip()
    if reset:
        try:
            return max(0.0, float(reset) - (time.time() if now is None else now))
        except ValueError:
            pass
    return DEFAULT_WAIT


def clean(text: str, secrets: Iterable[str]) -> str:
    """One line without a secret: the given values, the process's, and URL passwords."""
    known = sorted({s for s in (*secrets, *redact.secret_values()) if s}, key=len, reverse=True)
    return " ".join(redact.redact(text, known).split())


def status_error(tracker: str, status: int | None, headers: Mapping[str, str], *,
                 what: str, url: str, token_env: str, secrets: Iterable[str] = (),
                 rate_limited: bool = False, detail: str = "") -> TrackerError:
    """The Protocol error for an HTTP status (None: no answer at all).

    401/403 refuse the credentials, unless the 403 is a rate limit (GitHub's primary and
    secondary limits answer 403); 429 and 503 ask to wait.
    """
    secrets = tuple(secrets)
    if status == 429 or rate_limited or (status == 503 and any(
            k.lower() == "retry-after" for k in headers)):
        seconds = retry_after(headers)
        return RetryLater(clean(f"{tracker}: {what}: rate limited by {url}, retry in "
                                f"{seconds:g}s", secrets), seconds)
    if status in (401, 403):
        return CredentialsRefused(clean(
            f"{tracker}: credentials refused for {url} (check {token_env})", secrets))
    said = f": {detail}" if detail else ""
    if status in (404, 410):
        return NotFound(clean(f"{tracker}: {what}: HTTP {status} from {url}{said}", secrets))
    return TrackerError(clean(f"{tracker}: {what}: HTTP {status} from {url}{said}", secrets))
