"""The local tracker: the ledger is the tracker (`dasct qa list` reads it), no server."""

from __future__ import annotations

from typing import Any

from dasct.trackers import Decision, Env, Filed, Ticket


class LocalTracker:
    """Files nothing anywhere else: a ticket is its ledger record, keyed by ticket.key."""

    name = "local"

    def file(self, ticket: Ticket) -> Filed:
        """The ticket's place is its key: idempotent by construction."""
        return Filed(self.name, ticket.key)

    def decision(self, filed: Filed) -> Decision | None:
        """None: decisions on local tickets are made with `dasct qa accept/reject`."""
        return None

    def regressed(self, defect: str, text: str, key: str) -> None:
        """Nothing to tell: the rejection is already in the ledger."""

    def owner(self, defect: str) -> str | None:
        """None: owners come from `[qa] owners` and `default_assignee`."""
        return None


def make(cfg: Any, env: Env) -> LocalTracker:
    """The local tracker (it has no configuration)."""
    return LocalTracker()
