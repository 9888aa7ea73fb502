"""What a migration tells people and the audit log: one Reporter per run.

Every decision and step goes to the environment's audit log (dasct.audit) at once.
Notifications (nothing-to-migrate, moved, rolled-back, escalation, held, withdrawn) go
through the one notifier interface, dasct.notify, into its durable outbox: `flush`
delivers what it can at the end of a run, and whatever cannot be delivered waits there
for the next run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dasct import checkpoint, notify
from dasct.audit import AuditLog
from dasct.migrate import inventory
from dasct.migrate import trigger as trig


class Reporter:
    """The audit log and the notifications of one run against one environment."""

    def __init__(self, state_dir: Path, *, environment: str, recipients: tuple[str, ...],
                 transport: notify.Transport | None = None,
                 anchor: checkpoint.Anchor | None = None) -> None:
        self.state_dir = state_dir
        self.environment = environment
        self.recipients = tuple(recipients)
        self.log = AuditLog(state_dir)
        self.transport = transport
        self.anchor = anchor
        self.outbox = notify.Outbox(state_dir)
        self.sent: list[notify.Notification] = []

    def audit(self, event: str, **fields: Any) -> None:
        """Append one record to the audit log, naming the environment."""
        self.log.append(event, environment=self.environment, **fields)

    def checkpoint(self) -> None:
        """Sign a checkpoint of the audit log as it is now, when a key is configured."""
        if self.anchor is not None:
            checkpoint.sign_log(self.state_dir, self.anchor, first_ok=self.log.started)

    def _send(self, kind: str, subject: str, body: str, **data: Any) -> None:
        note = notify.Notification(kind=kind, subject=subject, body=body,
                                   recipients=self.recipients, environment=self.environment,
                                   data=data)
        self.outbox.enqueue(note)
        self.sent.append(note)
        self.audit("notification-queued", kind=kind, subject=subject)

    def nothing_to_migrate(self, *, waiting: list[str]) -> None:
        """No trigger was due."""
        later = f" ({len(waiting)} waiting for their time)" if waiting else ""
        self._send(notify.NOTHING_TO_MIGRATE, f"[{self.environment}] nothing to migrate",
                   f"No trigger was due in {self.environment}{later}.", waiting=waiting)

    def moved(self, t: trig.Trigger, *, env_root: str,
              verify: list[dict[str, Any]] | None = None) -> None:
        """The move notification: what changed, for whom (the seed's step 24/38), and how
        the system answered its verify commands."""
        lines = [f"Enhancement {t.id} was migrated into {self.environment} ({env_root})."]
        if t.defects:
            lines.append(f"Defects: {', '.join(t.defects)}")
        lines += [f"SQL change {c.name}" for c in t.sql]
        lines += [f"{f.op} {f.label}" for f in t.files]
        for check in verify or ():
            limit = check.get("max_seconds")
            lines.append(f"verify {check['name']}: passed in {check['seconds']:.3f}s"
                         + (f" (max {limit:g}s)" if limit is not None else ""))
        self._send(notify.MOVED, f"[{self.environment}] {t.id} moved", "\n".join(lines),
                   trigger=t.id, defects=list(t.defects), commits=list(t.commits),
                   items=inventory.items_of(t), verify=list(verify or ()))

    def rolled_back(self, tid: str, *, reason: str) -> None:
        """A trigger failed and the environment was restored from its archive."""
        self._send(notify.ROLLED_BACK, f"[{self.environment}] {tid} rolled back",
                   f"Enhancement {tid} failed in {self.environment} and was rolled back: "
                   f"{reason}\nThe environment is as it was before (checked against the "
                   "archive).", trigger=tid, reason=reason)

    def reverted(self, tid: str, *, via: str) -> None:
        """An enhancement was reverted on request (dasct migrate revert)."""
        self._send(notify.ROLLED_BACK, f"[{self.environment}] {tid} reverted",
                   f"Enhancement {tid} was reverted in {self.environment} on request.",
                   trigger=tid, via=via, reason="revert requested")

    def escalation(self, tid: str, *, reason: str, problems: list[str]) -> None:
        """A restore did not match its archive: a person must look now."""
        self._send(notify.ESCALATION, f"[{self.environment}] CRITICAL: restore of {tid} failed",
                   f"Enhancement {tid} failed ({reason}) and the restore does not match the "
                   f"archive:\n" + "\n".join(problems) + f"\n{self.environment} refuses "
                   "further migrations until `dasct migrate resolve`.",
                   trigger=tid, reason=reason, problems=problems)

    def held(self, tid: str, *, reason: str) -> None:
        """A trigger was held (conflict, dependency, expiry, refusal)."""
        self._send(notify.HELD, f"[{self.environment}] {tid} held", f"{tid} was not run: {reason}",
                   trigger=tid, reason=reason)

    def withdrawn(self, tid: str, *, reason: str) -> None:
        """A pending trigger was withdrawn on request (dasct trigger withdraw); never run."""
        self._send(notify.WITHDRAWN, f"[{self.environment}] {tid} withdrawn",
                   f"{tid} was withdrawn from {self.environment} and will not run: {reason}",
                   trigger=tid, reason=reason)

    def flush(self) -> None:
        """Deliver the outbox now; undelivered notifications stay queued."""
        report = self.outbox.deliver(self.transport or notify.local_transport(self.state_dir))
        if report.failed or report.waiting:
            self.audit("notifications-waiting", failed=report.failed, waiting=report.waiting)
