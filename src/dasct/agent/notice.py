"""Telling the user that a verified release is waiting (example 4, step 7).

Once per release: at the moment `when` allows (dasct.agent.schedule.notice_now), the
details are printed (version, defects fixed, size, whether a restart is needed, how to
install it) and queued through the one notifier (dasct.notify) for `[agent] recipients`.
"""

from __future__ import annotations

from collections.abc import Callable

from dasct.agent.local import Local
from dasct.agent.state import State, Waiting

KIND = "agent-release-ready"


def _size(length: int) -> str:
    return f"{length / 2**20:.1f} MiB" if length >= 2**20 else f"{length / 1024:.1f} KiB"


def details(local: Local, w: Waiting) -> list[str]:
    """The lines that describe a waiting release."""
    r = w.release
    defects = ", ".join(r.get("defects") or ()) or "none named"
    restart = ("needs a restart (its restart commands run as it is installed)"
               if r.get("restart") else "needs no restart")
    how = f"dasct agent install --home {local.home}"
    return [f"version {r['version']} of {r.get('system', '?')} for {local.env.name} is "
            f"downloaded and verified ({_size(int(r.get('length', 0)))}); it fixes {defects}; "
            f"it {restart}",
            f"install it with `{how}` (a passphrase or a signed policy is asked for)"
            if local.cfg.install == "passphrase" else
            f"install it with `{how}` (under the signed install policy)"]


def tell(local: Local, state: State, say: Callable[[str], None]) -> None:
    """Say the waiting release's details and queue the notification (once per release)."""
    from dasct import notify

    w = state.waiting
    assert w is not None
    lines = details(local, w)
    for line in lines:
        say(f"dasct agent: {line}")
    if local.cfg.recipients:
        notify.enqueue(local.state_dir, notify.Notification(
            kind=KIND, subject=f"{local.env.name}: version {w.version} is ready to install",
            body="\n".join(lines), recipients=local.cfg.recipients,
            environment=local.env.name, data=dict(w.release)),
            key=f"agent-release-{local.env.name}-{w.version}")
