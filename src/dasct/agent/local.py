"""Where an agent lives: its home's `.dasct.toml` (`[agent]` and the local environment).

The target has its own configuration, not a repository's: `--home DIR` (default
`$DASCT_AGENT_HOME`, else the current directory) holds `.dasct.toml` with
`[environments.NAME]` (the local environment releases are installed into) and `[agent]`
(whose `environment` names it). The agent's own files are under that environment's
state directory, in agent/.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dasct.agent import AgentError
from dasct.agent import state as st
from dasct.agentconfig import AgentConfig

if TYPE_CHECKING:
    from dasct.migrate.environment import Environment

HOME_VAR = "DASCT_AGENT_HOME"


@dataclass(frozen=True)
class Local:
    """One agent: its home, its settings and its environment, resolved."""

    home: Path
    cfg: AgentConfig
    env: Environment

    @property
    def state_dir(self) -> Path:
        """The environment's state directory (the agent's files are in agent/)."""
        return self.env.state_dir

    @property
    def state_path(self) -> Path:
        """The agent's state file."""
        return st.path_of(self.env.state_dir)

    def load(self) -> st.State:
        """The agent's state (AgentError when it is damaged)."""
        return st.load(self.state_path)


def home_of(value: str | None) -> Path:
    """--home, else $DASCT_AGENT_HOME, else the current directory."""
    return Path(value or os.environ.get(HOME_VAR) or ".").resolve()


def locate(home: Path) -> Local:
    """The agent of home; AgentError when home configures none."""
    from dasct import config
    from dasct.migrate.environment import environment

    cfg = config.load(home)
    agent = cfg.agent
    if not agent.environment:
        raise AgentError(f"{home}: no agent is configured here ([agent] environment is "
                         "not set in .dasct.toml)")
    return Local(home, agent, environment(cfg, agent.environment, home))
