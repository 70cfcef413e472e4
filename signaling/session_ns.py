"""The `/session` namespace: authentication in `connect`, presence, and state pushes (protocol.md)."""

from __future__ import annotations

import asyncio
import logging
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlsplit

import socketio
from sqlalchemy import select

from mediation import accounts, audit, sessions
from mediation.errors import Forbidden, OneDoorError, Unauthenticated
from mediation.models import Case, Guest, Invite, MediationSession, Person
from mediation.permissions import THIRD_PARTIES, Role, session_role_for_staff
from signaling.rooms import Participant, Room
from signaling.services import Services
from signaling.sockets import NS, Conn, dispatch

log = logging.getLogger(__name__)


def room_name(session_id: int) -> str:
    return f"s{session_id}"


class SessionNamespace(socketio.AsyncNamespace):
    def __init__(self, services: Services) -> None:
        super().__init__(NS)
        self.services = services
        self.conns: dict[str, Conn] = {}
        self.tasks: set[asyncio.Task[Any]] = set()

    async def trigger_event(self, event: str, *args: Any) -> Any:
        if event == "connect":
            return await self.on_connect(*args)
        if event == "disconnect":
            return await self.on_disconnect(args[0])
        sio = self.server
        assert isinstance(sio, socketio.AsyncServer)
        return await dispatch(self.services, sio, self.conns, event, args[0], args[1:])

    # ---- connect ------------------------------------------------------------------------------------------

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> bool:
        try:
            _same_origin(environ)
            if not isinstance(auth, dict):
                raise Unauthenticated("missing credentials", code="auth_required")
            if "invite" in auth:
                room, p = await self._join_invite(auth)
            elif "session" in auth:
                room, p = await self._join_staff(auth, environ)
            else:
                raise Unauthenticated("missing credentials", code="auth_required")
        except OneDoorError as e:
            raise socketio.exceptions.ConnectionRefusedError(e.message, e.to_dict()) from None
        except Exception:
            log.exception("connect failed")
            err = {"code": "internal", "message": "internal error"}
            raise socketio.exceptions.ConnectionRefusedError(err["message"], err) from None
        old = p.sid
        p.sid = sid
        self.conns[sid] = Conn(sid, room.session_id, p.pid, tokens=float(self.services.settings.event_burst))
        await self.enter_room(sid, room_name(room.session_id))
        if old is not None:  # the same person on a new connection (network change, reload): drop the old one
            self.conns.pop(old, None)
            self._spawn(self._replace(old))
        self._spawn(push_state(self.services, self.server, room))
        return True

    async def _join_invite(self, auth: dict[str, Any]) -> tuple[Room, Participant]:
        sv = self.services
        fields = {k: auth.get(k) for k in ("invite", "challenge", "signature", "public_key")}
        if not all(isinstance(v, str) and len(v) < 400 for k, v in fields.items() if k != "public_key") or \
                not (fields["public_key"] is None or (isinstance(fields["public_key"], str)
                                                      and len(fields["public_key"]) < 400)):
            raise Unauthenticated("malformed credentials", code="auth_required")
        async with sv.db.session() as s:
            inv = await sessions.invite_by_token(s, fields["invite"])  # type: ignore[arg-type]
            if not sv.use_challenge(fields["challenge"]):  # type: ignore[arg-type]
                raise Unauthenticated("this join challenge was already used", code="challenge_used")
            await sessions.prove_device(s, inv, challenge=fields["challenge"], signature=fields["signature"],  # type: ignore[arg-type]
                                        public_key=fields["public_key"], secret=sv.challenge_secret)
            sess = await sessions.get_session(s, inv.session_id)
            if sess.state == sessions.SessionState.ENDED:
                raise Forbidden("this session has ended", code="session_ended")
            case = await s.get(Case, sess.case_id)
            person = await s.get(Person, inv.person_id) if inv.person_id else None
            guest = await s.get(Guest, inv.guest_id) if inv.guest_id else None
            assert case
            await audit.append(s, actor=sessions.participant_id(inv), action="session.connect",
                               subject=f"session:{sess.id}")
        room = sv.rooms.open(sess.id, case.code, sess.host_id)
        pid = sessions.participant_id(inv)
        p = room.people.get(pid)
        if p is None:
            p = room.people[pid] = Participant(pid, Role(inv.role), sessions.invite_name(inv, person, guest),
                                               invite_id=inv.id, side=person.side if person else None,
                                               person_id=inv.person_id)
        return room, p

    async def _join_staff(self, auth: dict[str, Any], environ: dict[str, Any]) -> tuple[Room, Participant]:
        sv = self.services
        sid_raw = auth.get("session")
        if not isinstance(sid_raw, int) or isinstance(sid_raw, bool):
            raise Unauthenticated("session must be a number", code="auth_required")
        cookie = SimpleCookie(environ.get("HTTP_COOKIE", ""))
        token = cookie["od_session"].value if "od_session" in cookie else None
        async with sv.db.session() as s:
            user, _ = await accounts.by_cookie(s, token)
            sess = await sessions.get_session(s, sid_raw)
            case = await s.get(Case, sess.case_id)
            assert case
            role = session_role_for_staff(user.role, user.id, sess.host_id)
            if role is Role.OUTSIDER or (role is Role.CO_MEDIATOR and case.center_id != user.center_id):
                raise Forbidden("you are not part of this session", code="forbidden")
            if sess.state == sessions.SessionState.ENDED:
                raise Forbidden("this session has ended", code="session_ended")
            if role is Role.HOST and sess.state == sessions.SessionState.SCHEDULED:
                await sessions.set_state(s, sess, sessions.SessionState.OPEN, actor=f"staff-{user.id}")
            await audit.append(s, actor=f"staff-{user.id}", action="session.connect", subject=f"session:{sess.id}",
                               detail={"role": role.value})
        room = sv.rooms.open(sess.id, case.code, sess.host_id)
        pid = f"staff-{user.id}"
        p = room.people.get(pid)
        if p is None:
            p = room.people[pid] = Participant(pid, role, user.display_name, staff_id=user.id)
        p.admitted = p.admitted or p.is_mediator  # mediators never wait in the lobby (P3)
        return room, p

    async def _replace(self, old_sid: str) -> None:
        """The old connection goes; the participant's media stays until the new connection's `media:join`
        replaces its peer connection (removing it here could race with, and remove, the new one)."""
        await self.emit("session:replaced", {"message": "you joined from another connection"}, to=old_sid)
        await self.disconnect(old_sid)

    # ---- disconnect -----------------------------------------------------------------------------------------

    async def on_disconnect(self, sid: str) -> None:
        conn = self.conns.pop(sid, None)
        if conn is None:
            return
        room = self.services.rooms.get(conn.session_id)
        if room is None:
            return
        p = room.people.get(conn.pid)
        if p is not None and p.sid == sid:
            p.sid = None
            p.hand = False
            await on_leave_media(room, p)
            self._spawn(push_state(self.services, self.server, room))

    def _spawn(self, coro: Any) -> None:
        t = asyncio.ensure_future(coro)
        self.tasks.add(t)
        t.add_done_callback(self.tasks.discard)


async def on_leave_media(room: Room, p: Participant) -> None:
    """Drop the participant's peer connection (a rejoin makes a new one, P5)."""
    if room.hub is not None:
        try:
            await room.hub.remove(p.pid)
        except Exception:
            log.exception("hub.remove failed for %s", p.pid)


def _same_origin(environ: dict[str, Any]) -> None:
    origin = environ.get("HTTP_ORIGIN")
    if origin is None:  # non-browser clients (bots, CLI) send none; browsers always do on websockets
        return
    host = environ.get("HTTP_HOST", "")
    if urlsplit(origin).netloc != host:
        raise Forbidden("cross-origin connection refused", code="bad_origin")


# ---- state pushes ---------------------------------------------------------------------------------------------

async def push_state(services: Services, sio: Any, room: Room) -> None:
    """Send each connected participant the state they may see; mediators also get the lobby with readiness."""
    lobby = await lobby_view(services, room) if room.lobby() else []
    guests = [{"id": p.pid, "role": p.role.value, "name": p.name} for p in room.people.values()
              if p.role in THIRD_PARTIES]
    visible = [p.public() for p in room.admitted()]
    names = [room.people[m].name for m in sorted(room.caucus) if m in room.people]
    mine = {x["id"]: x for x in lobby}
    for p in room.connected():
        you = p.public()
        if p.pid in mine:  # a person in the lobby sees their own progress (restored after a reload)
            you["readiness"] = {k: mine[p.pid][k] for k in ("identity", "notices", "online_consent",
                                                              "recording_consent", "third_party_ok", "blocking")}
        state: dict[str, Any] = {
            "session": room.session_id, "case": room.case_code, "you": you,
            "mediator_present": room.mediator_present(), "recording": room.recording,
            "caucus": {"active": bool(room.caucus), "kind": room.caucus_kind, "members": names,
                       "member_ids": sorted(m for m in room.caucus if m in room.people),
                       "you_inside": p.pid in room.caucus},
            "participants": visible if p.admitted else [],
        }
        if p.role in (Role.PARTY, Role.AGENT):
            state["third_parties"] = guests
        if p.is_mediator:
            state["lobby"] = lobby
        await sio.emit("session:state", state, to=p.sid, namespace=NS)


async def lobby_view(services: Services, room: Room) -> list[dict[str, Any]]:
    out = []
    async with services.db.session() as s:
        party_ids = await party_invite_ids(s, room.session_id)
        for p in room.lobby():
            if p.invite_id is None:
                ok = await sessions.parties_consented(s, p.pid, party_ids)
                out.append({**p.public(), "identity": True, "notices": True, "online_consent": True,
                            "recording_consent": None,
                            "third_party_ok": ok, "blocking": [] if ok else ["party_consent_to_third_party"]})
                continue
            inv = await s.get(Invite, p.invite_id)
            assert inv
            r = await sessions.readiness(s, inv, party_ids)
            out.append({**p.public(), "identity": r.identity, "notices": r.notices, "online_consent": r.online,
                        "recording_consent": r.recording, "third_party_ok": r.third_party_ok,
                        "blocking": r.blocking(room.recording != "off")})
    return out


async def party_invite_ids(s: Any, session_id: int) -> list[int]:
    q = select(Invite.id).where(Invite.session_id == session_id, Invite.role == "party")
    return list((await s.scalars(q)).all())


async def session_row(s: Any, room: Room) -> MediationSession:
    return await sessions.get_session(s, room.session_id)
