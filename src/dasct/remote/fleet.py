"""A remote environment's rollout: one host, or a fleet in waves with a canary.

`migrate run` on a fleet migrates each host as its own target (its own lock, journal,
archive and audit log, on the host): first the canary hosts (`canary`, default 1), then
waves of `batch_size` hosts at once. Any host that fails — a trigger rolled back,
escalated, refused, held or expired (the engine's exit 1), or the host unreachable or its
connection lost — halts the rollout after its wave: the engine has already rolled that
host back; by `on_failure`, the hosts migrated earlier in this rollout stay as they are
("halt") or are reverted, newest enhancement first ("rollback-all"); hosts after the wave
are never touched and are reported as such. A dry run visits every host and halts on
nothing. Other actions (revert, resolve, unlock, status) go to every host, wave by wave.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from dasct.config import Config
from dasct.migrate.environment import Environment
from dasct.remote import runner
from dasct.remote.hosts import Target, rollout_dir
from dasct.remote.runner import HostResult, Write

_STATS = ("attempted", "migrated", "rolled_back", "escalated", "held", "expired", "refused",
          "waiting")


@dataclass
class Rollout:
    """What a rollout did, host by host."""

    results: list[HostResult] = field(default_factory=list)
    untouched: list[Target] = field(default_factory=list)
    reverted: dict[str, list[str]] = field(default_factory=dict)  # host label -> ids
    halted_by: str | None = None

    @property
    def exit_code(self) -> int:
        bad = any(not r.reached or r.exit_code for r in self.results)
        return 1 if bad or self.untouched else 0

    def totals(self) -> dict[str, int]:
        """The engine's statistics summed over the hosts reached."""
        sums = dict.fromkeys(_STATS, 0)
        for r in self.results:
            for key in _STATS:
                sums[key] += int(r.result.get("stats", {}).get(key, 0))
        return sums


def waves(targets: tuple[Target, ...], canary: int, batch_size: int) -> Iterator[list[Target]]:
    """The canary wave, then batches of batch_size, in configured order."""
    rest = list(targets)
    if canary:
        yield rest[:canary]
        rest = rest[canary:]
    for i in range(0, len(rest), batch_size):
        yield rest[i:i + batch_size]


def _writer(write: Write, target: Target, fleet: bool) -> Write:
    return (lambda line: write(f"[{target.label}] {line}")) if fleet else write


def _line(r: HostResult) -> str:
    if not r.reached:
        why = (r.error or "").removeprefix(f"{r.target.label}: ")
        return f"{r.target.label}: HELD, not migrated: {why}"
    s = r.result.get("stats")
    if s is None:
        return f"{r.target.label}: exit {r.exit_code}" + (
            f" ({r.result['error']})" if r.result.get("error") else "")
    return (f"{r.target.label}: migrated {s['migrated']}, rolled back {s['rolled_back']}, "
            f"escalated {s['escalated']}, held {s['held']}, refused {s['refused']}, "
            f"waiting {s['waiting']}")


async def _wave(cfg: Config, env: Environment, wave: list[Target], action: str,
                args: dict[str, Any], write: Write, fleet: bool) -> list[HostResult]:
    return list(await asyncio.gather(*(
        runner.call(cfg, env, t, action, args, write=_writer(write, t, fleet)) for t in wave)))


async def rollout(cfg: Config, env: Environment, action: str, args: dict[str, Any], *,
                  write: Write) -> Rollout:
    """Send action to every host of env, wave by wave (see the module docstring)."""
    remote = env.remote
    assert remote is not None
    fleet = len(remote.targets) > 1
    done = Rollout()
    halting = action == "run" and not args.get("dry_run")
    plan = list(waves(remote.targets, remote.canary if fleet else 0, remote.batch_size))
    for n, wave in enumerate(plan):
        results = await _wave(cfg, env, wave, action, args, write, fleet)
        done.results += results
        failed = [r for r in results if not r.reached or r.exit_code]
        if halting and failed:
            done.halted_by = failed[0].target.label
            done.untouched = [t for later in plan[n + 1:] for t in later]
            break
    if done.halted_by and remote.on_failure == "rollback-all":
        await _rollback_all(cfg, env, done, write, fleet)
    return done


async def _rollback_all(cfg: Config, env: Environment, done: Rollout, write: Write,
                        fleet: bool) -> None:
    """Revert what this rollout migrated on the hosts that succeeded, newest first."""
    for r in done.results:
        if not r.reached:
            continue
        for tid in reversed(list(r.result.get("migrated", []))):
            write(f"[{r.target.label}] rollback-all: reverting {tid}")
            back = await runner.call(cfg, env, r.target, "revert", {"id": tid},
                                     write=_writer(write, r.target, fleet))
            if back.reached and back.exit_code == 0:
                done.reverted.setdefault(r.target.label, []).append(tid)
            else:
                write(f"[{r.target.label}] rollback-all: revert of {tid} FAILED: "
                      f"{back.error or 'exit ' + str(back.exit_code)}; this host needs a person")


def report(done: Rollout, env: Environment, write: Write) -> None:
    """Per host, then in total."""
    for r in done.results:
        write(_line(r))
    for host in done.untouched:
        write(f"{host.label}: not started (the rollout halted after {done.halted_by} failed)")
    for label, ids in done.reverted.items():
        write(f"{label}: reverted by rollback-all: {', '.join(ids)}")
    if len(done.results) + len(done.untouched) > 1:
        reached = sum(1 for r in done.results if r.reached)
        t = done.totals()
        write(f"{env.name}: {len(done.results) + len(done.untouched)} host(s): reached "
              f"{reached}, held {len(done.results) - reached}, not started "
              f"{len(done.untouched)}; triggers: attempted {t['attempted']}, migrated "
              f"{t['migrated']}, rolled back {t['rolled_back']}, escalated {t['escalated']}, "
              f"refused {t['refused']}, held {t['held']}")


def record(env: Environment, action: str, args: dict[str, Any], done: Rollout) -> None:
    """One `rollout` record in the controller's audit log (hosts.rollout_dir): the action,
    and per host whether it was reached, its exit and statistics or why it was held; the
    hosts never started, the host that halted it, what rollback-all reverted. Each host's
    own audit log (mirrored) holds the detail; this one ties a rollout together."""
    from dasct.migrate.report import Reporter

    if env.home is None:
        return
    hosts = [{"host": r.target.label, "root": str(r.target.root), "reached": r.reached,
              "exit_code": r.exit_code, "stats": r.result.get("stats"),
              "migrated": r.result.get("migrated"), "error": r.error} for r in done.results]
    log = Reporter(rollout_dir(env.home, env.name), environment=env.name, recipients=(),
                   anchor=env.anchor)
    log.audit("rollout", action=action, args=args, hosts=hosts,
              not_started=[t.label for t in done.untouched], halted_by=done.halted_by,
              on_failure=env.remote.on_failure if env.remote else None,
              reverted=done.reverted, exit_code=done.exit_code)
    log.checkpoint()


def run(cfg: Config, env: Environment, action: str, args: dict[str, Any], *,
        write: Write = print) -> int:
    """The command's entry: the rollout, its record, its report, its exit code."""
    done = asyncio.run(rollout(cfg, env, action, args, write=write))
    if action not in ("status", "drift") and not args.get("dry_run"):
        record(env, action, args, done)
    if action == "run" or len(done.results) > 1 or done.untouched:
        report(done, env, write)
    else:
        for r in done.results:
            if not r.reached:
                write(f"dasct: {r.error}")
    return done.exit_code
