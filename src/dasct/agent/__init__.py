"""The pull-mode agent (docs/agent.md). Placeholder until the agent-publish branch lands:
that branch owns this module; only AgentError is relied on here."""

from __future__ import annotations

from dasct.errors import DasctError


class AgentError(DasctError):
    """The agent cannot check, download or install; the message is one line."""
