"""`dasct agent install`: the waiting release, installed through the migration engine.

The deliberate act first (dasct.agent.consent: passphrase or signed policy), then the
release verified again and extracted into the environment's staging directory
(release.extract), then the same engine as every other target (dasct.migrate.engine.run:
archive, apply, verify, rollback on failure; the release's restart commands restart what
needs it). The engine's archives are the uninstall version: with an uninstall period the
install records a window (dasct.agent.review takes it back); with none, they are deleted.

An install the agent refuses before the engine runs (wrong passphrase, a bad policy, a
release that does not verify) keeps a forensic trace as the engine does around its own
failures (dasct.migrate.trace: traces/, a `trace-kept` audit record), so
`dasct migrate trace --env ENV` shows it. An engine failure was rolled back by the engine
(which kept its trace); the agent records it and keeps the download for another try.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dasct.agent import AgentError, consent, history
from dasct.agent import release as releases
from dasct.agent import state as st
from dasct.agent.local import Local
from dasct.agent.release import Release
from dasct.errors import DasctError

Write = Callable[[str], None]


def release_dict(release: Release) -> dict[str, Any]:
    """A release as the state keeps it (JSON)."""
    doc = release.manifest()
    doc.pop("format", None)
    return {**doc, "target": release.target, "length": release.length,
            "sha256": release.sha256}


def release_of(doc: dict[str, Any]) -> Release:
    """The Release the state kept (release_dict's inverse)."""
    return Release(env=doc["env"], system=doc["system"], version=int(doc["version"]),
                   target=doc["target"], length=int(doc["length"]), sha256=doc["sha256"],
                   created=doc["created"], triggers=tuple(doc["triggers"]),
                   new_triggers=tuple(doc["new_triggers"]), defects=tuple(doc["defects"]),
                   restart=bool(doc["restart"]))


@dataclass(frozen=True)
class Act:
    """The deliberate act the person gave: a passphrase (install = passphrase) or nothing
    (install = policy: the signed policy file is the act)."""

    passphrase: str | None = None


class _Trace:
    """The forensic trace of one agent install, kept when the agent refuses it."""

    def __init__(self, local: Local) -> None:
        from dasct.migrate.trace import Trace

        cfg = local.env.config
        self.local = local
        self.trace = Trace(records=cfg.trace_records, minutes=cfg.trace_minutes)
        self.trace.add("session", environment=local.env.name, root=str(local.env.root),
                       agent=True, home=str(local.home), pid=os.getpid())

    def step(self, name: str, **fields: Any) -> None:
        self.trace.add("agent", step=name, **fields)

    def keep(self, version: int, why: str, write: Write) -> None:
        """Keep the trace and record its digest in the environment's audit log."""
        from dasct.migrate.report import Reporter
        from dasct.migrate.trace import keep_recorded

        env = self.local.env
        self.trace.failed(f"release-{version}", f"agent-install-refused: {why}")
        env.state_dir.mkdir(parents=True, exist_ok=True)
        report = Reporter(env.state_dir, environment=env.name, recipients=(),
                          anchor=env.anchor)
        report.audit("agent-install-refused", version=version, reason=why)
        try:
            _, told = keep_recorded(self.trace, env.state_dir, env.name, report.audit)
        except OSError as exc:  # lost detail, never a second failure
            write(f"note: the trace of this install was not kept: {exc}")
            return
        report.checkpoint()
        write(told)


def _authorize(local: Local, release: Release, act: Act, keep_for: float | None,
               chosen: bool, tr: _Trace) -> float | None:
    """Raise AgentError unless the act allows this install; return the uninstall period:
    the command's, else the policy's; AgentError when neither chose one."""
    cfg = local.cfg
    if cfg.install == "passphrase":
        tr.step("consent", mode="passphrase", given=act.passphrase is not None)
        if act.passphrase is None:
            raise AgentError("an install needs the passphrase (from the terminal, or "
                             "--passphrase-fd N)")
        consent.check_passphrase(local.state_dir, act.passphrase)
        if not chosen:
            raise AgentError("choose an uninstall period (--keep-for 3d|12h|90m) or "
                             "--no-uninstall")
        return keep_for
    path = Path(cfg.policy_file) if cfg.policy_file else None
    if path is None:
        raise AgentError("install = \"policy\" needs [agent] policy_file")
    if not path.is_absolute():
        path = local.home / path
    tr.step("consent", mode="policy", policy=str(path))
    policy = consent.load_policy(path, cfg.policy_public_keys)
    tr.step("policy", signers=list(policy.signers), environment=policy.environment,
            not_after=policy.not_after.isoformat())
    consent.check_policy(policy, environment=local.env.name, system=release.system,
                         restart=release.restart)
    return keep_for if chosen else policy.keep_for


def _pinned(state: st.State, release: Release, period: float | None) -> list[str]:
    """The archives retention must keep at the end of this install: those of every open
    uninstall window, and, when this install opens one, those of this release."""
    pinned = [t for w in state.windows for t in w.triggers]
    return pinned + list(release.triggers) if period is not None else pinned


def install(local: Local, *, act: Act, keep_for: float | None = None, chosen: bool = True,
            write: Write = print, now: float | None = None) -> Release:
    """Install the waiting release; keep_for: the uninstall period in seconds (None: no
    uninstall); chosen False: the policy's period. Returns the release installed;
    AgentError (one line) otherwise."""
    from dasct.migrate import engine

    state = local.load()
    w = state.waiting
    if w is None:
        raise AgentError("nothing to install: no downloaded release is waiting (see "
                         "`dasct agent check`)")
    release = release_of(w.release)
    tr = _Trace(local)
    tr.step("install", version=release.version, target=release.target,
            sha256=release.sha256, triggers=list(release.triggers), tar=w.path)
    try:
        period = _authorize(local, release, act, keep_for, chosen, tr)
        tr.step("extract", staging=str(local.env.staging))
        written = releases.extract(Path(w.path), release, local.env.staging)
        tr.step("extracted", triggers=[p.stem for p in written])
    except AgentError as exc:
        history.add(local.state_dir, history.REFUSED, release.version, reason=str(exc))
        tr.keep(release.version, str(exc), write)
        raise
    try:
        # The person (or the signed policy) chose this moment, so no window holds it back
        # (a freeze still does); and the release's verified TUF metadata, not the
        # triggers' push-time expiry, bounds how old what is installed may be.
        result = engine.run(local.env, ignore_window=True, honour_expiry=False,
                            keep_archives=_pinned(state, release, period),
                            write=write)
    except DasctError as exc:  # the engine refused to start (locked, needs attention...)
        history.add(local.state_dir, history.INSTALL_FAILED, release.version, reason=str(exc))
        raise AgentError(f"version {release.version} was not installed: {exc}; the download "
                         "is kept") from None
    problem = _problem(result)
    if problem:
        history.add(local.state_dir, history.INSTALL_FAILED, release.version, reason=problem,
                    rolled_back=result.rolled_back)
        raise AgentError(f"version {release.version} was not installed: {problem}; the "
                         "engine put the environment back as it was and kept a trace "
                         f"(`dasct migrate trace --env {local.env.name}`); the download "
                         "is kept")
    return _installed(local, release, result.migrated, period, write, now)


def _problem(result: Any) -> str | None:
    s = result.stats
    if result.not_run:
        return f"not run: {result.not_run}"
    if s.rolled_back or s.escalated:
        what = ", ".join(result.rolled_back) or "a trigger"
        return f"{what} failed and was {'escalated' if s.escalated else 'rolled back'}"
    if s.refused or s.held or s.expired:
        return (f"the engine refused {s.refused}, held {s.held} and found {s.expired} "
                "expired trigger(s)")
    return None


def _installed(local: Local, release: Release, migrated: list[str], period: float | None,
               write: Write, now: float | None) -> Release:
    at = time.time() if now is None else now
    with st.update(local.state_path) as change:
        s = change.state
        windows = s.windows
        if period is not None and migrated:
            windows = st.with_window(s, st.Window(release.version, tuple(migrated),
                                                  s.installed, at, at + period))
        # A background check may have downloaded a newer release meanwhile: it stays.
        mine = s.waiting is not None and s.waiting.version == release.version
        change.set(installed=release.version, waiting=None if mine else s.waiting,
                   windows=windows, noticed=max(s.noticed, release.version))
        previous = s.installed
        tar = s.waiting.path if mine and s.waiting else ""
    if tar:
        Path(tar).unlink(missing_ok=True)
    ends = None if period is None else at + period
    history.add(local.state_dir, history.INSTALLED, release.version, now=at,
                previous=previous, triggers=migrated, restart=release.restart,
                uninstall_until=None if ends is None else _iso(ends))
    if period is None:
        gone = forget_archives(local, migrated)
        write(f"installed version {release.version}; no uninstall version is kept"
              + (f" ({len(gone)} archive(s) deleted)" if gone else ""))
    else:
        write(f"installed version {release.version}; it can be taken back until "
              f"{_iso(at + period)} (`dasct agent review`)")
    return release


def forget_archives(local: Local, triggers: list[str] | tuple[str, ...]) -> list[str]:
    """Delete the engine's archives of triggers (the uninstall version, example 5 step
    11); return those deleted. An audit record names each."""
    from dasct.migrate import archive
    from dasct.migrate.archive import ArchiveError
    from dasct.migrate.report import Reporter

    env = local.env
    report = Reporter(env.state_dir, environment=env.name, recipients=(), anchor=env.anchor)
    gone = []
    for tid in triggers:
        try:
            archive.remove(archive.load(env.state_dir, tid))
        except (ArchiveError, OSError):
            continue
        report.audit("archive-deleted", trigger=tid, reason="agent: no uninstall kept")
        gone.append(tid)
    if gone:
        report.checkpoint()
    return gone


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


__all__ = ["Act", "forget_archives", "install", "release_dict", "release_of"]
