"""The email tracker against a real SMTP server on loopback (smtp_server.py)."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dasct.notify import Outbox
from dasct.qaconfig import EmailTracker as EmailConfig
from dasct.qaconfig import QaConfig
from dasct.trackers import CredentialsRefused, Filed, Ticket, TrackerError, make
from dasct.trackers.email import message_id, recipients
from dasct.trackers.transport import TicketTransport, regression_notification, ticket_notification

sys.path.insert(0, str(Path(__file__).parent))  # smtp_server.py, with or without a package
from smtp_server import Server, free_port, smtp_server

# aiosmtpd warns of AUTH without STARTTLS: meant, over implicit TLS and in the plain tests.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
PASSWORD = "s3cret-smtp-password-4711"
TICKET = Ticket(
    key="MNG-7@cafe1234", defect="MNG-7", commit="cafe1234" * 5,
    title="Revalidate MNG-7: cafe123 changed\nits protected lines",
    body="Zeilen geändert ✓\n```diff\n-a\n+b\n```\n",
    assignee="QA@example.com", notify=("dev@example.com", "qa@example.com", "not-an-address"),
)


def tracker(server: Server, **fields: object) -> tuple[QaConfig, dict[str, str]]:
    security = str(fields.pop("security", "none"))
    cfg = EmailConfig(host=server.host, port=server.port, security=security,
                      ca_file=server.ca_file, to=("team@example.com",), timeout_seconds=5)
    return QaConfig(trackers=("email",), email=dataclasses.replace(cfg, **fields)), {}


@pytest.mark.parametrize("security", ["none", "starttls", "ssl"])
def test_a_ticket_arrives(tmp_path: Path, security: str) -> None:
    with smtp_server(tmp_path, security) as server:
        cfg, env = tracker(server, security=security)
        filed = make("email", cfg, env).file(TICKET)
    assert filed == Filed("email", message_id(TICKET.key))
    (got,) = server.messages
    assert got.mail_from == "dasct@localhost"
    # The assignee (an address), notify (addresses only), [qa.email] to, each once.
    assert got.rcpt_tos == ["QA@example.com", "dev@example.com", "team@example.com"]
    msg = got.message
    assert msg["Subject"] == "Revalidate MNG-7: cafe123 changed its protected lines"
    assert msg["To"] == "QA@example.com, dev@example.com, team@example.com"
    assert msg["Message-ID"] == filed.id and msg["X-Dasct-Key"] == TICKET.key
    assert msg.get_content_type() == "multipart/mixed"
    text = msg.get_body(("plain",))
    assert text is not None and text.get_content_charset() == "utf-8"
    assert text.get_content().replace("\r\n", "\n") == TICKET.body  # CRLF on the wire
    (attachment,) = msg.iter_attachments()
    assert attachment.get_filename() == "dasct-ticket.json"
    assert Ticket.from_dict(json.loads(attachment.get_content())) == TICKET


def test_message_id() -> None:
    assert message_id("MNG-7.cafe1234") == "<MNG-7.cafe1234@dasct>"
    # An @ (or anything else a Message-ID cannot hold left of its @): the key's hash.
    assert message_id("MNG-7@cafe") == message_id("MNG-7@cafe") != message_id("MNG-7@caff")
    hashed = message_id("MNG-7@cafe")
    assert len(hashed) == len("<@dasct>") + 32 and hashed.count("@") == 1
    assert message_id("x" * 64) == f"<{'x' * 64}@dasct>"
    assert message_id("x" * 65) != message_id("x" * 66) and len(message_id("x" * 65)) == 40


@given(st.lists(st.one_of(st.emails(), st.text(max_size=12))))
def test_recipients_are_addresses_each_once(candidates: list[str]) -> None:
    got = recipients(candidates)
    assert len({r.lower() for r in got}) == len(got)
    assert all("@" in r and r in [c.strip() for c in candidates] for r in got)
    assert {r.lower() for r in got} == {r.lower() for r in recipients(got)}  # stable


def test_recipients() -> None:
    assert recipients(["A@x.org", " a@x.org ", "bob", "", "c@y", "A@X.ORG"]) == ["A@x.org",
                                                                                 "c@y"]


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_auth(tmp_path: Path, security: str, mechanism: str) -> None:
    with smtp_server(tmp_path, security, users={"dasct": PASSWORD},
                     mechanisms=(mechanism,)) as server:
        cfg, env = tracker(server, security=security, user_env="SMTP_USER")
        env.update(SMTP_USER="dasct", DASCT_SMTP_PASSWORD=PASSWORD)
        make("email", cfg, env).file(TICKET)
    assert server.logins == [(mechanism, "dasct", True)]
    assert len(server.messages) == 1


def test_bad_password_is_refused_credentials_and_the_request_waits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DASCT_SMTP_PASSWORD", "wrong-password-0815")
    with smtp_server(tmp_path, "starttls", users={"dasct": PASSWORD}) as server:
        cfg, _ = tracker(server, security="starttls", user_env="SMTP_USER")
        env = {"SMTP_USER": "dasct", "DASCT_SMTP_PASSWORD": "wrong-password-0815"}
        email = make("email", cfg, env)
        with pytest.raises(CredentialsRefused) as refused:
            email.file(TICKET)
        assert str(refused.value) == (
            f"email: 127.0.0.1:{server.port} refused the login of $SMTP_USER with the "
            "password in $DASCT_SMTP_PASSWORD")
        state = tmp_path / "state"
        outbox = Outbox(state)
        outbox.enqueue(ticket_notification(TICKET, "email"), key="email:" + TICKET.key, now=0)
        report = outbox.deliver(TicketTransport({"email": email}), now=0)
        assert (report.delivered, report.waiting) == (0, 1)
        assert outbox.waiting()[0].last_error == str(refused.value)
        # The password is put right: the same row goes out, once.
        env["DASCT_SMTP_PASSWORD"] = PASSWORD
        assert outbox.deliver(TicketTransport({"email": email}), now=1e9).delivered == 1
        assert outbox.deliver(TicketTransport({"email": email}), now=2e9).delivered == 0
    assert len(server.messages) == 1
    # smtplib tries each mechanism offered in turn: two refusals per try.
    refused = [("PLAIN", "dasct", False), ("LOGIN", "dasct", False)]
    assert server.logins == [*refused, *refused, ("PLAIN", "dasct", True)]
    for path in state.iterdir():
        assert b"wrong-password-0815" not in path.read_bytes()
        assert PASSWORD.encode() not in path.read_bytes()
    assert "wrong-password" not in "".join(capsys.readouterr())


def test_missing_variables_are_named(tmp_path: Path) -> None:
    with smtp_server(tmp_path, "none") as server:
        cfg, _ = tracker(server, user_env="SMTP_USER")
        with pytest.raises(TrackerError, match=r"^email: \$SMTP_USER is not set"):
            make("email", cfg, {}).file(TICKET)
        with pytest.raises(TrackerError, match=r"^email: \$DASCT_SMTP_PASSWORD is not set"):
            make("email", cfg, {"SMTP_USER": "dasct"}).file(TICKET)
    assert server.messages == []


def test_an_unverifiable_certificate_is_refused(tmp_path: Path) -> None:
    with smtp_server(tmp_path, "starttls") as server:
        cfg, env = tracker(server, security="starttls", ca_file="")  # the system's CAs
        with pytest.raises(TrackerError, match=r"CERTIFICATE_VERIFY_FAILED"):
            make("email", cfg, env).file(TICKET)
    assert server.messages == []


def test_nobody_to_send_to(tmp_path: Path) -> None:
    lonely = Ticket(key="K-1", defect="K-1", commit="0" * 40, title="t", body="b",
                    assignee="jira-account-5b10a2844c20165700ede21g")
    cfg = QaConfig(email=EmailConfig(host="127.0.0.1", port=free_port()))
    with pytest.raises(TrackerError) as raised:
        make("email", cfg, {}).file(lonely)
    assert str(raised.value) == ("email: nobody to send to (no assignee address, no one "
                                 "to notify, [qa.email] to is empty)")


def test_server_down_waits_then_goes_out(tmp_path: Path) -> None:
    port = free_port()
    cfg = QaConfig(email=EmailConfig(host="127.0.0.1", port=port, security="none",
                                     timeout_seconds=5))
    email = make("email", cfg, {})
    outbox = Outbox(tmp_path / "state")
    outbox.enqueue(ticket_notification(TICKET, "email"), key="email:" + TICKET.key, now=0)
    assert outbox.deliver(TicketTransport({"email": email}), now=0).waiting == 1
    error = outbox.waiting()[0].last_error
    assert error is not None and error.startswith(f"email: 127.0.0.1:{port}: ConnectionRefused")
    with smtp_server(tmp_path, "none") as server:
        server_port = server.port
        email = make("email", dataclasses.replace(cfg, email=dataclasses.replace(
            cfg.email, port=server_port)), {})
        assert outbox.deliver(TicketTransport({"email": email}), now=1e9).delivered == 1
    assert len(server.messages) == 1


def test_regressed_mails_to(tmp_path: Path) -> None:
    with smtp_server(tmp_path, "none") as server:
        cfg, env = tracker(server)
        outbox = Outbox(tmp_path / "state")
        outbox.enqueue(regression_notification("MNG-7", "fails again", "MNG-7.r1", "email"),
                       key="email:MNG-7.r1", now=0)
        assert outbox.deliver(TicketTransport({"email": make("email", cfg, env)}),
                              now=0).delivered == 1
        cfg = dataclasses.replace(cfg, email=dataclasses.replace(cfg.email, to=()))
        with pytest.raises(TrackerError, match="nobody to send to"):
            make("email", cfg, env).regressed("MNG-7", "x", "k")
    (got,) = server.messages
    assert got.rcpt_tos == ["team@example.com"]
    assert got.message["Subject"] == "MNG-7 regressed"
    assert got.message["Message-ID"] == "<MNG-7.r1@dasct>"
    assert got.message.get_content().strip() == "fails again"


def test_a_refused_login_is_tried_once_per_flush(tmp_path: Path) -> None:
    with smtp_server(tmp_path, "starttls", users={"dasct": PASSWORD}) as server:
        cfg, _ = tracker(server, security="starttls", user_env="SMTP_USER")
        env = {"SMTP_USER": "dasct", "DASCT_SMTP_PASSWORD": "wrong-password-0815"}
        outbox = Outbox(tmp_path / "state")
        for i in range(4):
            ticket = Ticket(**{**TICKET.to_dict(), "key": f"MNG-{i}.cafe1234"})
            outbox.enqueue(ticket_notification(ticket, "email"), key=f"email:{i}", now=0)
        email = make("email", cfg, env)
        report = outbox.deliver(TicketTransport({"email": email}), now=0)
        assert (report.failed, report.waiting) == (4, 4)
        # One try (smtplib's PLAIN, then LOGIN), not four: servers lock accounts.
        assert [m for m, _, _ in server.logins] == ["PLAIN", "LOGIN"]
        assert {w.last_error for w in outbox.waiting()} == {
            f"email: 127.0.0.1:{server.port} refused the login of $SMTP_USER with the "
            "password in $DASCT_SMTP_PASSWORD"}
        env["DASCT_SMTP_PASSWORD"] = PASSWORD
        assert outbox.deliver(TicketTransport({"email": email}), now=1e9).delivered == 4
    assert sorted(m.message["Message-ID"] for m in server.messages) == [
        f"<MNG-{i}.cafe1234@dasct>" for i in range(4)]


def test_a_server_that_never_answers_times_out(tmp_path: Path) -> None:
    import socket
    import time

    with socket.socket() as silent:  # listens, never greets
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        cfg = QaConfig(email=EmailConfig(host="127.0.0.1", port=port, security="none",
                                         timeout_seconds=0.5))
        outbox = Outbox(tmp_path / "state")
        outbox.enqueue(ticket_notification(TICKET, "email"), key="email:k", now=0)
        started = time.monotonic()
        assert outbox.deliver(TicketTransport({"email": make("email", cfg, {})}),
                              now=0).waiting == 1
        assert time.monotonic() - started < 5
    error = outbox.waiting()[0].last_error
    assert error is not None and error.startswith(f"email: 127.0.0.1:{port}: ")
    assert "timed out" in error
