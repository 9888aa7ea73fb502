"""The customer's sign-off: `dasct signoff ID --env production --as customer`.

The integration of an enhancement ends when the customer, after its migration into the
final environment (one that gates none) succeeded and was tested there, signs off. With a
`customer` role configured ([promotion.roles]) that sign-off, not the migration, starts
the warranty (warranty.begin, since = the sign-off). One `customer-signoff` record in the
environment's own audit log (roles.CUSTOMER_SIGNOFF), then `warranty-start`, under the
environment's lock: a sign-off that dies between the two gets its start from the next
`migrate run` or `dasct warranty check` (warranty.check), from the sign-off's time.

Notified (kind `customer-signoff`) to the developers (the authors of the enhancement's
commits, as a rejection is), QA (the `qa` role's members and the gate environment's
recipients) and the users of the changed system (the environment's recipients).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from dasct import audit, notify
from dasct.migrate import inventory, lock, promotion, roles, warranty
from dasct.migrate import trigger as trig
from dasct.migrate.environment import Environment
from dasct.migrate.report import Reporter

KIND = notify.CUSTOMER_SIGNOFF
Write = Callable[[str], None]


def _owner() -> str:
    return f"dasct signoff ({audit.actor()})"


def signoff(env: Environment, tid: str, *, repo_root: Path, comment: str = "",
            role: str | None = roles.CUSTOMER, write: Write = print,
            now: datetime | None = None, identity: tuple[str, str] | None = None,
            developers: dict[str, str] | None = None) -> roles.Signed:
    """Record the customer's sign-off of tid in env and start its warranty; refused (one
    line) unless tid's migration into env succeeded and stands, and it is not signed yet.

    On a remote target (dasct.remote) there is no repository: the controller passes the
    signer's identity and the enhancement's developers it read from its own git.
    """
    if not trig.ID_PATTERN.fullmatch(tid):
        raise promotion.PromotionError(f"not a trigger id: {tid!r}")
    who, email = identity or promotion.identity(repo_root)
    roles.require(env, email, who, role or roles.CUSTOMER)
    now = now or warranty.clock()
    env.state_dir.mkdir(parents=True, exist_ok=True)
    with lock.held(env.state_dir, owner=_owner()):
        why = promotion.untrusted(env) or promotion.not_migrated(env, tid)
        if why:
            raise promotion.PromotionError(f"cannot sign off: {why}")
        done = roles.customer_signed(env).get(tid)
        if done is not None:
            raise promotion.PromotionError(f"cannot sign off: {tid} was already signed off in "
                                           f"{env.name} by {done.approver} at "
                                           f"{done.when[:19]}Z")
        dep = inventory.load(env.state_dir)["deployments"][tid]
        if developers is None:
            developers = promotion.authors(repo_root, tid, dep.get("commits", []))
        if email.lower() in developers:
            raise promotion.PromotionError(f"cannot sign off: {who} is an author of {tid} "
                                           f"({developers[email.lower()]}); an author "
                                           "cannot approve")
        report = Reporter(env.state_dir, environment=env.name,
                          recipients=env.config.recipients, anchor=env.anchor)
        report.audit(roles.CUSTOMER_SIGNOFF, trigger=tid, approver=who, email=email,
                     comment=comment)
        # A warranty started before the customer role was configured keeps its start.
        starts = warranty.state(env, tid) is None
        if starts:
            warranty.begin(env, report, tid, now)
        qa = [*roles.members(env, roles.QA),
              *(env.gate.config.recipients if env.gate is not None else ())]
        promotion.send(report, KIND, f"[{env.name}] {tid} signed off by the customer",
                       f"Enhancement {tid} was signed off in {env.name} by {who}"
                       + (f": {comment}" if comment else ".")
                       + "\nIts integration is closed"
                       + (f"; its warranty runs {env.config.warranty_days} day(s) from now"
                          if starts else "")
                       + f". Defects: "
                       f"{', '.join(dep.get('defects', [])) or '-'}",
                       [*sorted(developers), *qa], trigger=tid, by=who)
        report.checkpoint()
        report.flush()
    signed = roles.customer_signed(env)[tid]
    write(f"{tid}: signed off by the customer {who} in {env.name}; its integration is closed"
          + ("; its warranty starts now" if starts else ""))
    return signed
