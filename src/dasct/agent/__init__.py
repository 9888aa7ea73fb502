"""Pull-mode updates (docs/agent.md): releases, their TUF repository and the client.

`release.py` is the release format (a deterministic tar of trigger files and payloads),
`publish.py` writes an environment's signed TUF repository (CI side), `client.py` checks
and downloads through python-tuf's ngclient (target side). Nothing here is imported on
the commit-time path: tuf and securesystemslib are imported only inside this package.
"""

from __future__ import annotations

from dasct.errors import DasctError


class AgentError(DasctError):
    """A release that cannot be published, checked, downloaded or trusted; one line."""

    def __init__(self, message: str) -> None:
        # Server answers and hostile member names may carry newlines; keep it one line.
        super().__init__(message.replace("\r", "\\r").replace("\n", "\\n"))


HINT = "pip install 'dasct[agent]'"


def require() -> None:
    """AgentError naming the extra to install when python-tuf or cryptography is missing."""
    import importlib

    for module in ("tuf.api.metadata", "securesystemslib.signer", "cryptography"):
        try:
            importlib.import_module(module)
        except ImportError:
            name = module.split(".")[0]
            raise AgentError(f"pull-mode updates need {name}, which is not installed: "
                             f"{HINT}") from None
