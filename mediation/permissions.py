"""The one permission table (deny by default, R10). Every HTTP route and Socket.IO event names an Action.

Two kinds of role meet here: staff roles (an account's role in the center) and session roles (what a person is
inside one mediation session). A staff member joining a session gets a session role from `session_role_for_staff`.
"""

from __future__ import annotations

from enum import StrEnum

from mediation.errors import Forbidden


class Role(StrEnum):
    # session roles
    HOST = "host"  # the mediator hosting (or the judge hosting a questioning session)
    CO_MEDIATOR = "co_mediator"
    PARTY = "party"
    AGENT = "agent"
    JUDGE = "judge"
    PSYCHOLOGIST = "psychologist"
    INTERPRETER = "interpreter"
    OBSERVER = "observer"
    # staff roles (accounts)
    INTAKE_CLERK = "intake_clerk"
    MEDIATOR = "mediator"
    ADMIN = "admin"
    COURT_JUDGE = "court_judge"  # a judge's staff account (court portal)
    STAFF_PSYCHOLOGIST = "staff_psychologist"
    # nobody
    OUTSIDER = "outsider"


STAFF_ROLES = {Role.INTAKE_CLERK, Role.MEDIATOR, Role.ADMIN, Role.COURT_JUDGE, Role.STAFF_PSYCHOLOGIST}
MEDIATORS = {Role.HOST, Role.CO_MEDIATOR}
SIDES = {Role.PARTY, Role.AGENT}
THIRD_PARTIES = {Role.JUDGE, Role.PSYCHOLOGIST, Role.INTERPRETER, Role.OBSERVER}
IN_SESSION = MEDIATORS | SIDES | THIRD_PARTIES


class Action(StrEnum):
    # HTTP, staff
    CASE_CREATE = "case.create"
    CASE_READ = "case.read"
    CASE_LIST = "case.list"
    CASE_STAGE = "case.stage"
    CASE_TERMINATE = "case.terminate"
    CASE_FLAG = "case.flag"
    SESSION_CREATE = "session.create"
    SESSION_READ = "session.read"
    USER_CREATE = "user.create"
    AUDIT_READ = "audit.read"
    RECORDING_EXPORT = "recording.export"
    AGREEMENT_VIEW = "agreement.view"  # the console: the case's agreement, versions, PDFs, application status
    AGREEMENT_EDIT = "agreement.edit"  # the console: draft from a template, edit, finalize
    APPLICATION_START = "application.start"  # prepare the joint application for the parties, attach documents
    COURT_QUEUE = "court.queue"
    COURT_VIEW = "court.view"  # an application sent to the judge's court (each view logged)
    COURT_DECIDE = "court.decide"  # accept, decline, extend, schedule a questioning
    COURT_RULE = "court.rule"
    COURT_BUNDLE = "court.bundle"  # the evidence bundle (only the receiving court's judges; audited)
    # Socket.IO, inside a session
    IDENTITY_SELF = "identity.self"  # start/answer one's own identity check
    IDENTITY_ATTEST = "identity.attest"
    LOBBY_CONSENT = "lobby.consent"  # notices acknowledgement and consents
    LOBBY_ADMIT = "lobby.admit"  # admit, refuse, admit all
    MEDIA = "media"  # offer/answer/renegotiate, audio-only
    CAUCUS_OPEN = "caucus.open"
    PRIVATE_TALK = "caucus.private_talk"  # psychologist with one party (R7 mechanism)
    MUTE_SELF = "mute.self"
    MUTE_OTHER = "mute.other"
    HAND = "hand"
    CHAT = "chat"
    RECORDING_CONTROL = "recording.control"
    SESSION_END = "session.end"
    AGREEMENT_DRAFT = "agreement.draft"
    AGREEMENT_READ = "agreement.read"
    AGREEMENT_SIGN_PARTY = "agreement.sign_party"
    AGREEMENT_SIGN_MEDIATOR = "agreement.sign_mediator"  # in a session: the host; over HTTP: a mediator
    APPLICATION_SIGN = "application.sign"  # a party or agent signs the joint application with its device key


_ADMITTED = frozenset(IN_SESSION)
TABLE: dict[Action, frozenset[Role]] = {
    Action.CASE_CREATE: frozenset({Role.INTAKE_CLERK, Role.MEDIATOR, Role.ADMIN}),
    Action.CASE_READ: frozenset({Role.INTAKE_CLERK, Role.MEDIATOR, Role.ADMIN}),
    Action.CASE_LIST: frozenset({Role.INTAKE_CLERK, Role.MEDIATOR, Role.ADMIN}),
    Action.CASE_STAGE: frozenset({Role.INTAKE_CLERK, Role.MEDIATOR, Role.ADMIN}),
    Action.CASE_TERMINATE: frozenset({Role.MEDIATOR, Role.ADMIN}),
    Action.CASE_FLAG: frozenset({Role.MEDIATOR}),
    Action.SESSION_CREATE: frozenset({Role.MEDIATOR, Role.COURT_JUDGE}),
    Action.SESSION_READ: frozenset({Role.MEDIATOR, Role.ADMIN, Role.COURT_JUDGE}),
    Action.USER_CREATE: frozenset({Role.ADMIN}),
    Action.AUDIT_READ: frozenset({Role.ADMIN}),
    Action.RECORDING_EXPORT: frozenset({Role.MEDIATOR, Role.ADMIN, Role.COURT_JUDGE}),
    Action.AGREEMENT_VIEW: frozenset({Role.MEDIATOR, Role.ADMIN}),
    Action.AGREEMENT_EDIT: frozenset({Role.MEDIATOR}),
    Action.APPLICATION_START: frozenset({Role.MEDIATOR}),
    Action.COURT_QUEUE: frozenset({Role.COURT_JUDGE}),
    Action.COURT_VIEW: frozenset({Role.COURT_JUDGE}),
    Action.COURT_DECIDE: frozenset({Role.COURT_JUDGE}),
    Action.COURT_RULE: frozenset({Role.COURT_JUDGE}),
    Action.COURT_BUNDLE: frozenset({Role.COURT_JUDGE}),
    Action.IDENTITY_SELF: frozenset(SIDES | THIRD_PARTIES),
    Action.IDENTITY_ATTEST: frozenset(MEDIATORS),
    Action.LOBBY_CONSENT: frozenset(SIDES | THIRD_PARTIES),
    Action.LOBBY_ADMIT: frozenset(MEDIATORS),
    Action.MEDIA: _ADMITTED,
    Action.CAUCUS_OPEN: frozenset({Role.HOST}),
    Action.PRIVATE_TALK: frozenset({Role.PSYCHOLOGIST, Role.HOST}),
    Action.MUTE_SELF: _ADMITTED,
    Action.MUTE_OTHER: frozenset(MEDIATORS),
    Action.HAND: frozenset(SIDES | THIRD_PARTIES),
    Action.CHAT: _ADMITTED - {Role.OBSERVER},
    Action.RECORDING_CONTROL: frozenset({Role.HOST}),
    Action.SESSION_END: frozenset({Role.HOST}),
    Action.AGREEMENT_DRAFT: frozenset(MEDIATORS),
    Action.AGREEMENT_READ: _ADMITTED,  # R15: every participant sees the draft live
    Action.AGREEMENT_SIGN_PARTY: frozenset(SIDES),
    Action.AGREEMENT_SIGN_MEDIATOR: frozenset({Role.HOST, Role.MEDIATOR}),
    Action.APPLICATION_SIGN: frozenset(SIDES),
}


def allowed(role: Role | str, action: Action) -> bool:
    return role in TABLE.get(action, frozenset())


def require(role: Role | str, action: Action) -> None:
    if not allowed(role, action):
        raise Forbidden(f"role {role!s} may not {action.value}", code="forbidden", action=action.value)


def session_role_for_staff(staff_role: str, staff_id: int, host_id: int) -> Role:
    """What a logged-in staff member is inside a session; OUTSIDER means they may not join."""
    if staff_id == host_id:
        return Role.HOST
    return {
        Role.MEDIATOR: Role.CO_MEDIATOR,
        Role.COURT_JUDGE: Role.JUDGE,
        Role.STAFF_PSYCHOLOGIST: Role.PSYCHOLOGIST,
    }.get(Role(staff_role), Role.OUTSIDER)
