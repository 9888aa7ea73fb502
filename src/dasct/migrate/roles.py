"""Who may sign as what (`[promotion.roles]`), and the customer's sign-off as recorded.

Two roles, each signing in one kind of environment:
- `qa` signs off in a gate environment (one that gates another: model); that sign-off
  promotes (promotion.signoff);
- `customer` signs off in an environment that gates none (production), after the
  enhancement's migration there succeeded; that closes its integration and starts its
  warranty (customer.signoff).

An empty role restricts nothing: without `[promotion.roles]` anyone but an author signs
off in model, as before roles existed. A configured `customer` role also means production's
migration no longer starts the warranty: it waits for the customer (`awaits_customer`).

Audit event, in the final environment's own log: `customer-signoff` (trigger, approver,
email, comment). Read API (no lock, no write): `customer_signed(env) -> {tid: Signed}`.
"""

from __future__ import annotations

from dataclasses import dataclass

from dasct import audit
from dasct.errors import DasctError
from dasct.migrate.environment import Environment

QA, CUSTOMER = "qa", "customer"
ROLES = (QA, CUSTOMER)
CUSTOMER_SIGNOFF = "customer-signoff"


class RoleError(DasctError):
    """The caller may not sign as the role asked for, here; one line saying why."""


@dataclass(frozen=True)
class Signed:
    """The customer's recorded sign-off of one migrated enhancement."""

    approver: str
    email: str
    when: str  # ISO 8601 UTC, the audit record's time
    comment: str


def role_of(env: Environment) -> str:
    """The role that signs off in env: qa in a gate environment, customer in a final one."""
    return QA if env.gates else CUSTOMER


def members(env: Environment, role: str) -> tuple[str, ...]:
    """The identities (e-mail addresses) configured for role."""
    return env.roles.qa if role == QA else env.roles.customer


def awaits_customer(env: Environment) -> bool:
    """Whether env's warranties start at the customer's sign-off, not at the migration."""
    return not env.gates and bool(env.roles.customer)


def require(env: Environment, email: str, who: str, asked: str | None) -> str:
    """The role the caller signs as in env; RoleError when `asked` is unknown or not env's,
    or when the role has members and the caller is not one of them."""
    if asked is not None and asked not in ROLES:
        raise RoleError(f"not a role: {asked!r} (roles: {', '.join(ROLES)})")
    role = role_of(env)
    if asked is not None and asked != role:
        where = ("a gate environment (one that gates another, e.g. model)" if asked == QA
                 else "an environment that gates none (e.g. production)")
        raise RoleError(f"{asked} signs off in {where}, and {env.name} takes the {role}'s "
                        f"sign-off (`--as {role}`)")
    listed = {m.lower() for m in members(env, role)}
    if not listed and asked is None:
        return role  # no one configured: anyone but an author, as without roles
    if email.lower() not in listed:
        why = "lists no one" if not listed else "does not list you"
        raise RoleError(f"{who} may not sign off as {role} in {env.name}: "
                        f"[promotion.roles] {role} {why}")
    return role


def customer_signed(env: Environment) -> dict[str, Signed]:
    """tid -> the customer's sign-off recorded in env since tid's last migration there."""
    found: dict[str, Signed] = {}
    for record in audit.records(env.state_dir):
        f, event = record.get("fields") or {}, record.get("event")
        tid = str(f.get("trigger"))
        if event == "migrated" and f.get("kind") in ("migrate", None):
            found.pop(tid, None)  # migrated again: a sign-off of an earlier one is not this
        elif event == CUSTOMER_SIGNOFF and tid not in found:
            found[tid] = Signed(str(f.get("approver")), str(f.get("email")),
                                str(record.get("time")), str(f.get("comment", "")))
    return found
