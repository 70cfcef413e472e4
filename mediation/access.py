"""Deny by default: may this actor do this action to this object? (architecture.md, "Security model").

One function, `check(actor, action, resource)`, answers for every HTTP route and Socket.IO event: the role comes
from the one permission table (`mediation.permissions.RULES`) and the same row names the object scope — the
center that owns the case, the court the case was sent to, the host of the session, the session a connection is
bound to. Objects outside the actor's reach do not exist for them (404), so ids cannot be probed; a wrong role is
403 (and so is another court's application in the court portal: `other_court`). Privileged material (R9: caucus recordings and caucus chat) never reaches a court.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mediation.errors import Forbidden, NotFound
from mediation.permissions import RULES, Action, Role, Scope, SessionRole, StaffRole


@dataclass(frozen=True)
class Actor:
    """Who acts: a logged-in staff member (`staff-<id>`) or a session participant (`inv-<id>`, `staff-<id>`)."""

    id: str
    role: Role
    center_id: int | None = None  # staff of a center
    court_id: str | None = None  # judges: the court they sit in
    staff_id: int | None = None
    session_id: int | None = None  # participants: the session their connection is bound to

    @property
    def is_staff(self) -> bool:
        return self.staff_id is not None


PUBLIC = Actor("public", SessionRole.OUTSIDER)


@dataclass(frozen=True)
class Resource:
    """What the rules need to know about an object; loaded by the use case that owns the object."""

    kind: str  # "case", "session", "recording", "application", ... (names the 404)
    center_id: int | None = None
    courts: frozenset[str] = field(default_factory=frozenset)  # courts the case was sent to (or referred from)
    session_id: int | None = None
    host_id: int | None = None  # the session's host (a staff id)
    privileged: bool = False  # R9: caucus material


def check_role(actor: Actor, action: Action) -> None:
    """The role half alone: transports call it before parsing a body (a wrong role is refused early)."""
    rule = RULES.get(action)
    if rule is None or actor.role not in rule.roles:
        raise Forbidden(f"role {actor.role!s} may not {action.value}", code="forbidden", action=action.value)


def check(actor: Actor, action: Action, resource: Resource) -> None:
    """Role AND object. Raises Forbidden (role) or NotFound (the object is not this actor's)."""
    check_role(actor, action)
    scope = RULES[action].scope
    if reaches(actor, scope, resource):
        return
    if scope is Scope.COURT:  # the court portal says so: a judge knows applications go to several courts
        raise Forbidden("该申请不是向您所在法院提出的 / this application was sent to another court",
                        code="other_court")
    raise NotFound(f"no such {resource.kind}", code=f"{resource.kind}_not_found")


def reaches(actor: Actor, scope: Scope, r: Resource) -> bool:
    in_center = actor.center_id is not None and r.center_id == actor.center_id and actor.role != StaffRole.COURT_JUDGE
    at_court = (actor.role == StaffRole.COURT_JUDGE and actor.court_id is not None and actor.court_id in r.courts
                and not r.privileged)
    hosts = actor.staff_id is not None and r.host_id == actor.staff_id
    if scope is Scope.NONE:
        return True
    if scope is Scope.CENTER:
        return in_center or (hosts and r.session_id is not None)
    if scope is Scope.COURT:
        return at_court
    if scope is Scope.CENTER_OR_COURT:
        return in_center or at_court or hosts
    if scope is Scope.HOST:
        return hosts or (in_center and actor.role == StaffRole.ADMIN)
    if scope is Scope.SESSION:
        if actor.session_id is not None:
            return r.session_id == actor.session_id
        return in_center
    return False
