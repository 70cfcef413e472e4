"""The one permission table (deny by default, R10). Every HTTP route and Socket.IO event names an Action.

Two kinds of role meet here: staff roles (an account's role in the center) and session roles (what a person is
inside one mediation session). A staff member joining a session gets a session role from `session_role_for_staff`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from mediation.errors import Forbidden


class SessionRole(StrEnum):
    """What a person is inside one mediation session."""

    HOST = "host"  # the mediator hosting (or the judge hosting a questioning session)
    CO_MEDIATOR = "co_mediator"
    PARTY = "party"
    AGENT = "agent"
    JUDGE = "judge"
    PSYCHOLOGIST = "psychologist"
    INTERPRETER = "interpreter"
    OBSERVER = "observer"
    CLERK = "clerk"  # the center's clerk (书记员) keeping the electronic transcript (issue 13 item 3)
    OUTSIDER = "outsider"  # nobody: may not join


class StaffRole(StrEnum):
    """An account's role: staff of one center, or a judge of one court, or the system administrator."""

    INTAKE_CLERK = "intake_clerk"
    MEDIATOR = "mediator"
    ADMIN = "admin"  # a center's administrator: its own staff, its own audit log
    COURT_JUDGE = "court_judge"  # a judge's staff account (court portal)
    STAFF_PSYCHOLOGIST = "staff_psychologist"
    SYSTEM_ADMIN = "system_admin"  # above centers: creates courts, centers, judges (issue 10)


Role = SessionRole | StaffRole

STAFF_ROLES = set(StaffRole)
MEDIATORS = {SessionRole.HOST, SessionRole.CO_MEDIATOR}
SIDES = {SessionRole.PARTY, SessionRole.AGENT}
# a clerk is one more person in the room: the parties consent to its presence (R8) as to a judge's or psychologist's
THIRD_PARTIES = {SessionRole.JUDGE, SessionRole.PSYCHOLOGIST, SessionRole.INTERPRETER, SessionRole.OBSERVER,
                 SessionRole.CLERK}
IN_SESSION = MEDIATORS | SIDES | THIRD_PARTIES


class Action(StrEnum):
    # HTTP, staff
    CASE_CREATE = "case.create"
    CASE_READ = "case.read"
    CASE_LIST = "case.list"
    CASE_STAGE = "case.stage"
    CASE_TERMINATE = "case.terminate"
    CASE_FLAG = "case.flag"
    PERSON_EDIT = "person.edit"  # correct a person's name, ID number, phone, address (audited; issue 11)
    CENTER_CONTACT = "center.contact"  # the center's public phone shown on the case QR page
    SESSION_CREATE = "session.create"
    SESSION_READ = "session.read"
    SESSION_JOIN = "session.join"  # a staff member connects (host, co-mediator, judge, psychologist, clerk)
    INVITE_REISSUE = "invite.reissue"  # only the host mediator or an admin of the center (issue 10)
    USER_CREATE = "user.create"
    COURT_CREATE = "court.create"  # a court with its public keys (the system administrator; issue 10 item 1)
    CENTER_CREATE = "center.create"  # a center under its parent level
    CENTER_LIST = "center.list"
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
    # HTTP, a party's own device after the session (invite token + device proof, no live session needed)
    PARTY_COPIES = "party.copies"  # R20: its own copy of the agreement, the application and the ruling
    # the case file and the electronic transcript (issue 13); staff over HTTP, participants in the session
    DOCUMENT_UPLOAD = "document.upload"  # a photo or PDF into the case file (staff, or a party/agent of a session)
    DOCUMENT_READ = "document.read"  # the case file's list and a document's content (every read logged)
    DOCUMENT_SHOW = "document.show"  # show a document to everyone who may see it under the current routing (R9)
    TRANSCRIPT_WRITE = "transcript.write"  # 电子笔录 (R11): write entries (the mediators, the center's clerk)
    TRANSCRIPT_CLOSE = "transcript.close"  # close it for the parties' review: the mediators decide, not the clerk
    TRANSCRIPT_READ = "transcript.read"  # what one may see of it (never caucus entries from outside, R9)
    TRANSCRIPT_RESPOND = "transcript.respond"  # a party confirms it or marks disputed passages (device key)


class Scope(StrEnum):
    """Which object an action is checked against, beside the role (mediation.access.check)."""

    NONE = "none"  # the role decides; the query itself is scoped to the actor (own center's list, own court's queue)
    CENTER = "center"  # the object belongs to the actor's center
    COURT = "court"  # the case was sent to the actor's court
    CENTER_OR_COURT = "center_or_court"  # center staff, or a judge of a court the case went to (never privileged, R9)
    HOST = "host"  # the session's host, or an admin of the session's center
    SESSION = "session"  # a participant of that session (the Socket.IO connection is bound to it)


@dataclass(frozen=True)
class Rule:
    roles: frozenset[Role]
    scope: Scope


_ADMITTED = frozenset(IN_SESSION)
RULES: dict[Action, Rule] = {
    Action.CASE_CREATE: Rule(frozenset({StaffRole.INTAKE_CLERK, StaffRole.MEDIATOR, StaffRole.ADMIN}), Scope.NONE),
    Action.CASE_READ: Rule(frozenset({StaffRole.INTAKE_CLERK, StaffRole.MEDIATOR, StaffRole.ADMIN}), Scope.CENTER),
    Action.CASE_LIST: Rule(frozenset({StaffRole.INTAKE_CLERK, StaffRole.MEDIATOR, StaffRole.ADMIN}), Scope.NONE),
    Action.CASE_STAGE: Rule(frozenset({StaffRole.INTAKE_CLERK, StaffRole.MEDIATOR, StaffRole.ADMIN}), Scope.CENTER),
    Action.CASE_TERMINATE: Rule(frozenset({StaffRole.MEDIATOR, StaffRole.ADMIN}), Scope.CENTER),
    Action.CASE_FLAG: Rule(frozenset({StaffRole.MEDIATOR}), Scope.CENTER),
    Action.PERSON_EDIT: Rule(frozenset({StaffRole.INTAKE_CLERK, StaffRole.MEDIATOR, StaffRole.ADMIN}), Scope.CENTER),
    Action.CENTER_CONTACT: Rule(frozenset({StaffRole.ADMIN}), Scope.NONE),
    Action.SESSION_CREATE: Rule(frozenset({StaffRole.MEDIATOR, StaffRole.COURT_JUDGE}), Scope.CENTER),
    Action.SESSION_READ: Rule(frozenset({StaffRole.MEDIATOR, StaffRole.ADMIN, StaffRole.COURT_JUDGE}), Scope.CENTER),
    Action.USER_CREATE: Rule(frozenset({StaffRole.ADMIN, StaffRole.SYSTEM_ADMIN}), Scope.NONE),
    Action.AUDIT_READ: Rule(frozenset({StaffRole.ADMIN}), Scope.NONE),
    # tenancy (mediation.tenancy): above every center, so no object scope; only the system administrator
    Action.COURT_CREATE: Rule(frozenset({StaffRole.SYSTEM_ADMIN}), Scope.NONE),
    Action.CENTER_CREATE: Rule(frozenset({StaffRole.SYSTEM_ADMIN}), Scope.NONE),
    Action.CENTER_LIST: Rule(frozenset({StaffRole.SYSTEM_ADMIN}), Scope.NONE),
    Action.RECORDING_EXPORT: Rule(frozenset({StaffRole.MEDIATOR, StaffRole.ADMIN, StaffRole.COURT_JUDGE}), Scope.CENTER_OR_COURT),
    Action.SESSION_JOIN: Rule(frozenset({StaffRole.MEDIATOR, StaffRole.COURT_JUDGE, StaffRole.STAFF_PSYCHOLOGIST,
                                         StaffRole.INTAKE_CLERK}), Scope.CENTER_OR_COURT),
    Action.INVITE_REISSUE: Rule(frozenset({StaffRole.MEDIATOR, StaffRole.ADMIN, StaffRole.COURT_JUDGE}), Scope.HOST),
    Action.AGREEMENT_VIEW: Rule(frozenset({StaffRole.MEDIATOR, StaffRole.ADMIN}), Scope.CENTER),
    Action.AGREEMENT_EDIT: Rule(frozenset({StaffRole.MEDIATOR}), Scope.CENTER),
    Action.APPLICATION_START: Rule(frozenset({StaffRole.MEDIATOR}), Scope.CENTER),
    Action.COURT_QUEUE: Rule(frozenset({StaffRole.COURT_JUDGE}), Scope.NONE),
    Action.COURT_VIEW: Rule(frozenset({StaffRole.COURT_JUDGE}), Scope.COURT),
    Action.COURT_DECIDE: Rule(frozenset({StaffRole.COURT_JUDGE}), Scope.COURT),
    Action.COURT_RULE: Rule(frozenset({StaffRole.COURT_JUDGE}), Scope.COURT),
    Action.COURT_BUNDLE: Rule(frozenset({StaffRole.COURT_JUDGE}), Scope.COURT),
    Action.IDENTITY_SELF: Rule(frozenset(SIDES | THIRD_PARTIES), Scope.SESSION),
    Action.IDENTITY_ATTEST: Rule(frozenset(MEDIATORS), Scope.SESSION),
    Action.LOBBY_CONSENT: Rule(frozenset(SIDES | THIRD_PARTIES), Scope.SESSION),
    Action.LOBBY_ADMIT: Rule(frozenset(MEDIATORS), Scope.SESSION),
    Action.MEDIA: Rule(_ADMITTED, Scope.SESSION),
    Action.CAUCUS_OPEN: Rule(frozenset({SessionRole.HOST}), Scope.SESSION),
    Action.PRIVATE_TALK: Rule(frozenset({SessionRole.PSYCHOLOGIST, SessionRole.HOST}), Scope.SESSION),
    Action.MUTE_SELF: Rule(_ADMITTED, Scope.SESSION),
    Action.MUTE_OTHER: Rule(frozenset(MEDIATORS), Scope.SESSION),
    Action.HAND: Rule(frozenset(SIDES | THIRD_PARTIES), Scope.SESSION),
    Action.CHAT: Rule(_ADMITTED - {SessionRole.OBSERVER}, Scope.SESSION),
    Action.RECORDING_CONTROL: Rule(frozenset({SessionRole.HOST}), Scope.SESSION),
    Action.SESSION_END: Rule(frozenset({SessionRole.HOST}), Scope.SESSION),
    Action.AGREEMENT_DRAFT: Rule(frozenset(MEDIATORS), Scope.SESSION),
    Action.AGREEMENT_READ: Rule(_ADMITTED, Scope.SESSION),  # R15: every participant sees the draft live
    Action.AGREEMENT_SIGN_PARTY: Rule(frozenset(SIDES), Scope.SESSION),
    # in a session: the host; over HTTP: a mediator of the case's center
    Action.AGREEMENT_SIGN_MEDIATOR: Rule(frozenset({SessionRole.HOST, StaffRole.MEDIATOR}), Scope.SESSION),
    Action.APPLICATION_SIGN: Rule(frozenset(SIDES), Scope.SESSION),
    Action.PARTY_COPIES: Rule(frozenset({SessionRole.PARTY, SessionRole.AGENT}), Scope.SESSION),
    # Scope.SESSION: a participant reaches its own session's case; staff over HTTP reach their center's cases
    Action.DOCUMENT_UPLOAD: Rule(frozenset({StaffRole.INTAKE_CLERK, StaffRole.MEDIATOR, StaffRole.ADMIN}
                                           | MEDIATORS | SIDES), Scope.SESSION),
    Action.DOCUMENT_READ: Rule(frozenset({StaffRole.INTAKE_CLERK, StaffRole.MEDIATOR, StaffRole.ADMIN})
                               | _ADMITTED - {SessionRole.OBSERVER}, Scope.SESSION),
    Action.DOCUMENT_SHOW: Rule(frozenset(MEDIATORS | SIDES), Scope.SESSION),
    # the mediators, or the case's center clerk in that session (a clerk joins only its own center's sessions)
    Action.TRANSCRIPT_WRITE: Rule(frozenset(MEDIATORS | {SessionRole.CLERK}), Scope.SESSION),
    Action.TRANSCRIPT_CLOSE: Rule(frozenset(MEDIATORS), Scope.SESSION),
    Action.TRANSCRIPT_READ: Rule(_ADMITTED, Scope.SESSION),
    Action.TRANSCRIPT_RESPOND: Rule(frozenset(SIDES), Scope.SESSION),
}


TABLE: dict[Action, frozenset[Role]] = {a: r.roles for a, r in RULES.items()}  # roles only, for the matrix tests


def allowed(role: Role | str, action: Action) -> bool:
    return role in TABLE.get(action, frozenset())


def require(role: Role | str, action: Action) -> None:
    if not allowed(role, action):
        raise Forbidden(f"role {role!s} may not {action.value}", code="forbidden", action=action.value)


def session_role_for_staff(staff_role: str, staff_id: int, host_id: int) -> SessionRole:
    """What a logged-in staff member is inside a session; OUTSIDER means they may not join."""
    if staff_id == host_id:
        return SessionRole.HOST
    return {
        StaffRole.MEDIATOR: SessionRole.CO_MEDIATOR,
        StaffRole.COURT_JUDGE: SessionRole.JUDGE,
        StaffRole.STAFF_PSYCHOLOGIST: SessionRole.PSYCHOLOGIST,
        StaffRole.INTAKE_CLERK: SessionRole.CLERK,
    }.get(StaffRole(staff_role), SessionRole.OUTSIDER)
