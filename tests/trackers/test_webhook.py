"""The webhook tracker against a loopback HTTP server: the request, and every way a
server can fail (429, 5xx, 401, a timeout, nobody listening) ending in one delivery."""

from __future__ import annotations

import dataclasses
import json
import socket
import threading
import time
from collections.abc import Iterator
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dasct.notify import Outbox, Report
from dasct.qaconfig import QaConfig, WebhookTracker
from dasct.trackers import CredentialsRefused, Filed, RetryLater, Ticket, TrackerError, make
from dasct.trackers.transport import TicketTransport, regression_notification, ticket_notification
from dasct.trackers.webhook import SHORT_BODY, retry_after, slack_escape, text_of

TOKEN_PATH = "/services/T0001/B0002/xoxb-webhook-token-0123456789"
TICKET = Ticket(
    key="MNG-3@feed5678", defect="MNG-3", commit="feed5678" * 5,
    title="Revalidate MNG-3: feed567 changed <its> protected lines & more",
    body="```diff\n-a < b\n+a <= b\n```", assignee="qa@example.com",
)


@dataclasses.dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    delay: float = 0.0
    reason: str | None = None


class Receiver:
    """A webhook receiver that answers from a script, then 200, and (as a relay that
    honours Idempotency-Key would) processes each key once."""

    def __init__(self) -> None:
        self.script: list[Answer] = []
        self.requests: list[dict[str, Any]] = []
        self.processed: dict[str, dict[str, Any]] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                answer = receiver.script.pop(0) if receiver.script else Answer()
                receiver.requests.append({"method": "POST", "path": self.path,
                                          "headers": dict(self.headers),
                                          "json": json.loads(body), "answer": answer.status})
                if answer.status == 200:  # acted upon, even if the answer comes late
                    receiver.processed.setdefault(self.headers["Idempotency-Key"],
                                                  json.loads(body))
                time.sleep(answer.delay)
                self.send_response(answer.status, answer.reason)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "2")
                self.end_headers()
                try:
                    self.wfile.write(b"ok")
                except OSError:  # the client gave up waiting
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{TOKEN_PATH}"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    thread = threading.Thread(target=r.server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()


def config(url: str = "", url_env: str = "", timeout: float = 5.0) -> QaConfig:
    return QaConfig(trackers=("webhook",), webhook=WebhookTracker(
        url=url, url_env=url_env, timeout_seconds=timeout))


def test_the_request(receiver: Receiver) -> None:
    hook = make("webhook", config(url_env="HOOK_URL"), {"HOOK_URL": receiver.url})
    assert hook.file(TICKET) == Filed("webhook", TICKET.key)
    (req,) = receiver.requests
    assert req["method"] == "POST" and req["path"] == TOKEN_PATH
    assert req["headers"]["Content-Type"] == "application/json; charset=utf-8"
    assert req["headers"]["Idempotency-Key"] == TICKET.key
    assert req["headers"]["User-Agent"].startswith("dasct/")
    assert req["json"] == {
        "text": "*Revalidate MNG-3: feed567 changed &lt;its&gt; protected lines &amp; more*\n"
                "```diff\n-a &lt; b\n+a &lt;= b\n```",
        "dasct": TICKET.to_dict(),
    }


def test_text() -> None:
    assert slack_escape("<@U1> & <!here>") == "&lt;@U1&gt; &amp; &lt;!here&gt;"
    assert text_of("two\nlines", "b") == "*two lines*\nb"
    long = text_of("t", "x" * (SHORT_BODY + 50))
    assert long == "*t*\n" + "x" * SHORT_BODY + "\n…"


def test_retry_after() -> None:
    assert retry_after("120") == 120.0
    assert retry_after(formatdate(1000 + 90, usegmt=True), now=1000) == 90.0
    assert retry_after(formatdate(1000 - 90, usegmt=True), now=1000) == 0.0  # past
    assert [retry_after(v) for v in ("", "soon", "-5", "1.5")] == [0.0, 0.0, 0.0, 0.0]


def test_url_from_the_environment_first(receiver: Receiver) -> None:
    cfg = config(url="http://127.0.0.1:1/never", url_env="HOOK_URL")
    make("webhook", cfg, {"HOOK_URL": receiver.url}).file(TICKET)
    assert len(receiver.requests) == 1
    make("webhook", config(url=receiver.url, url_env="HOOK_URL"), {}).file(TICKET)
    assert len(receiver.requests) == 2  # the variable unset: [qa.webhook] url
    with pytest.raises(TrackerError) as raised:
        make("webhook", config(url_env="HOOK_URL"), {}).file(TICKET)
    assert str(raised.value) == "webhook: $HOOK_URL is not set and [qa.webhook] url is empty"
    with pytest.raises(TrackerError, match=r"^webhook: the URL \(\$HOOK_URL\): not an http"):
        make("webhook", config(url_env="HOOK_URL"),
             {"HOOK_URL": "file:///etc/passwd"}).file(TICKET)


def _outbox_with_ticket(tmp_path: Path) -> Outbox:
    outbox = Outbox(tmp_path / "state", base_delay=10, max_delay=10_000)
    outbox.enqueue(ticket_notification(TICKET, "webhook"), key="webhook:" + TICKET.key, now=0)
    return outbox


def test_every_failure_waits_then_one_delivery(receiver: Receiver, tmp_path: Path) -> None:
    env = {"HOOK_URL": receiver.url}
    port = receiver.server.server_address[1]
    hook = make("webhook", config(url_env="HOOK_URL", timeout=0.5), env)

    def flush(now: float) -> Report:  # each flush its own transport, as `dasct qa flush`
        return outbox.deliver(TicketTransport({"webhook": hook}), now=now)
    outbox = _outbox_with_ticket(tmp_path)
    shown = f"http://127.0.0.1:{port} ($HOOK_URL)"

    receiver.script = [Answer(429, {"Retry-After": "120"})]
    assert flush(0).waiting == 1
    (row,) = outbox.waiting()
    assert row.next_try >= 120 and row.last_error == (
        f"webhook: {shown} answered HTTP 429; retry after 120 s")

    receiver.script = [Answer(500)]
    assert flush(120).failed == 1
    (row,) = outbox.waiting()
    assert row.next_try == 120 + outbox.backoff(2) and row.last_error == (
        f"webhook: {shown} answered HTTP 500 Internal Server Error")

    receiver.script = [Answer(503, {"Retry-After": formatdate(time.time() + 3000,
                                                             usegmt=True)})]
    now = row.next_try
    assert flush(now).failed == 1
    assert outbox.waiting()[0].next_try >= now + 2990  # the date, not the 40 s backoff

    receiver.script = [Answer(200, delay=2.0)]  # answers, but too late
    now = outbox.waiting()[0].next_try
    assert flush(now).failed == 1
    assert outbox.waiting()[0].last_error == f"webhook: {shown} did not answer within 0.5 s"

    receiver.server.shutdown()
    receiver.server.server_close()  # an outage: nothing listens on the port
    now = outbox.waiting()[0].next_try
    assert flush(now).failed == 1
    (row,) = outbox.waiting()
    assert row.attempts == 5 and row.last_error is not None
    assert row.last_error.startswith(f"webhook: cannot reach {shown}: ")

    well = Receiver()  # the same service back, on a new port: the variable says where
    threading.Thread(target=well.server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        env["HOOK_URL"] = well.url
        assert flush(row.next_try).delivered == 1
        assert flush(1e12).delivered == 0
    finally:
        well.server.shutdown()
        well.server.server_close()
    keys = {r["headers"]["Idempotency-Key"] for r in receiver.requests + well.requests}
    assert keys == {TICKET.key}  # every try the same request
    # The one that timed out did arrive: the key makes the retry the same request.
    assert [*receiver.processed, *well.processed] == [TICKET.key, TICKET.key]
    assert len(well.requests) == 1 and well.processed[TICKET.key]["dasct"] == TICKET.to_dict()
    for path in (tmp_path / "state").iterdir():  # the token never reached the outbox
        assert b"xoxb-webhook-token" not in path.read_bytes()


def test_refused_credentials_name_the_variable(receiver: Receiver, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    port = receiver.server.server_address[1]
    for status in (401, 403):
        receiver.script = [Answer(status)]
        with pytest.raises(CredentialsRefused) as raised:
            make("webhook", config(url_env="HOOK_URL"), {"HOOK_URL": receiver.url}
                 ).file(TICKET)
        assert str(raised.value) == (
            f"webhook: http://127.0.0.1:{port} ($HOOK_URL) refused the request "
            f"(HTTP {status}): check the URL in $HOOK_URL")
    receiver.script = [Answer(401)]
    with pytest.raises(CredentialsRefused, match=r"check \[qa.webhook\] url$"):
        make("webhook", config(url=receiver.url), {}).file(TICKET)
    outbox = _outbox_with_ticket(tmp_path)
    receiver.script = [Answer(403)]
    transport = TicketTransport({"webhook": make("webhook", config(url=receiver.url), {})})
    assert outbox.deliver(transport, now=0).waiting == 1
    assert "refused the request (HTTP 403)" in (outbox.waiting()[0].last_error or "")
    assert "xoxb" not in "".join(capsys.readouterr())


def test_the_url_never_appears_in_an_error(receiver: Receiver) -> None:
    # A reason phrase quoting the path (the token) comes back redacted.
    receiver.script = [Answer(404, reason=f"no hook at {TOKEN_PATH}")]
    with pytest.raises(TrackerError) as raised:
        make("webhook", config(url=receiver.url), {}).file(TICKET)
    assert "xoxb" not in str(raised.value) and "HTTP 404 no hook at [redacted]" in str(
        raised.value)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


def test_a_redirect_is_not_followed(receiver: Receiver) -> None:
    receiver.script = [Answer(302, {"Location": "http://127.0.0.1:1/elsewhere"})]
    with pytest.raises(TrackerError, match="answered HTTP 302"):
        make("webhook", config(url=receiver.url), {}).file(TICKET)
    assert len(receiver.requests) == 1


def test_rate_limit_is_retry_later(receiver: Receiver) -> None:
    receiver.script = [Answer(429)]  # no Retry-After: the outbox's backoff alone
    with pytest.raises(RetryLater) as raised:
        make("webhook", config(url=receiver.url), {}).file(TICKET)
    assert raised.value.seconds == 0.0


def test_regressed(receiver: Receiver, tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "state")
    outbox.enqueue(regression_notification("MNG-3", "fails <again>", "MNG-3@r", "webhook"),
                   key="webhook:MNG-3@r", now=0)
    transport = TicketTransport({"webhook": make("webhook", config(url=receiver.url), {})})
    assert outbox.deliver(transport, now=0).delivered == 1
    (req,) = receiver.requests
    assert req["headers"]["Idempotency-Key"] == "MNG-3@r"
    assert req["json"] == {"text": "*MNG-3 regressed*\nfails &lt;again&gt;", "dasct": {
        "defect": "MNG-3", "regressed": True, "text": "fails <again>", "key": "MNG-3@r"}}


def test_nothing_listening(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(TrackerError, match=rf"^webhook: cannot reach http://127.0.0.1:{port}: "):
        make("webhook", config(url=f"http://127.0.0.1:{port}{TOKEN_PATH}"), {}).file(TICKET)


@given(title=st.text(), body=st.text(max_size=SHORT_BODY))
def test_text_is_shown_literally(title: str, body: str) -> None:
    text = text_of(title, body)
    # Nothing Slack would read as a link, a mention or a command; unescaped, the words.
    assert "<" not in text and ">" not in text
    unescaped = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    assert unescaped == f"*{' '.join(title.split())}*\n{body}"


def test_a_refusing_tracker_is_asked_once_per_flush(receiver: Receiver, tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "state", base_delay=10)
    tickets = [Ticket(**{**TICKET.to_dict(), "key": f"MNG-{i}@feed5678"}) for i in range(5)]
    for t in tickets:
        outbox.enqueue(ticket_notification(t, "webhook"), key="webhook:" + t.key, now=0)
    outbox.enqueue(ticket_notification(TICKET, "local"), key="local:" + TICKET.key, now=0)
    hook = make("webhook", config(url=receiver.url), {})
    local = make("local", config(), {})

    receiver.script = [Answer(429, {"Retry-After": "120"})]
    report = outbox.deliver(TicketTransport({"webhook": hook, "local": local}), now=0)
    assert (report.delivered, report.failed) == (1, 5)  # the local one went
    assert len(receiver.requests) == 1  # the other four never hit the rate limit
    assert all(w.next_try >= 119 and "HTTP 429" in (w.last_error or "")
               for w in outbox.waiting())

    receiver.script = [Answer(401)]
    report = outbox.deliver(TicketTransport({"webhook": hook}), now=200)
    assert (report.delivered, report.failed) == (0, 5) and len(receiver.requests) == 2
    assert all("refused the request (HTTP 401)" in (w.last_error or "")
               for w in outbox.waiting())

    report = outbox.deliver(TicketTransport({"webhook": hook}), now=1000)  # a new flush
    assert (report.delivered, report.waiting) == (5, 0)
    assert [r["answer"] for r in receiver.requests] == [429, 401, 200, 200, 200, 200, 200]
