"""Delivering what happened: the live session's state to each client whenever it changes, and the domain events
the use cases return (agreement state, notices to the parties, a submission to the court).

Every participant has a Socket.IO room of their own (`s<session>:<participant id>`), so the live session and
this publisher address people by ids, never by socket ids (and across nodes through the Redis manager).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

import socketio

from mediation import lobby, notices
from mediation.agreements.confirmation import app_subject
from mediation.live import LiveSession
from mediation.notices import AgreementChanged, ApplicationSubmitted, Event, Notice
from signaling.services import Services
from signaling.sio_redis import RedisManager

log = logging.getLogger(__name__)
NS = "/session"


def session_room(session_id: int) -> str:
    return f"s{session_id}"


def person_room(session_id: int, pid: str) -> str:
    return f"s{session_id}:{pid}"


class Publisher:
    def __init__(self, sio: socketio.AsyncServer, services: Services) -> None:
        self.sio = sio
        self.services = services
        self._tasks: set[asyncio.Task[Any]] = set()
        self._pending: set[int] = set()  # sessions with a push scheduled

    # ---- the live session's state ----------------------------------------------------------------------------
    def watch(self, live: LiveSession) -> None:
        live.on_change = self._changed

    def _changed(self, live: LiveSession) -> None:
        """A change outside an event's dispatch (a connection, the hub, an HTTP route): push soon, once."""
        if live.session_id in self._pending:
            return
        self._pending.add(live.session_id)
        t = asyncio.get_running_loop().create_task(self._push_soon(live), name=f"push-{live.session_id}")
        self._tasks.add(t)
        t.add_done_callback(self._done)

    def _done(self, t: asyncio.Task[Any]) -> None:
        self._tasks.discard(t)
        if not t.cancelled() and t.exception() is not None:
            log.error("state push failed", exc_info=t.exception())

    async def _push_soon(self, live: LiveSession) -> None:
        self._pending.discard(live.session_id)
        await self.flush(live)

    async def flush(self, live: LiveSession) -> None:
        async with live.push_lock:  # after a push under way: it may have read the state before this change
            if live.dirty:
                live.dirty = False
                await self.push_state(live)

    async def close(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def push_state(self, live: LiveSession) -> None:
        """Each connected participant gets the state they may see; mediators also get the lobby with readiness."""
        waiting = await lobby.lobby_view(self.services.db, live)
        guests = [{"id": p.pid, "role": p.role.value, "name": p.name} for p in live.third_parties()]
        visible = [p.public() for p in live.admitted()]
        names = [live.people[m].name for m in sorted(live.caucus) if m in live.people]
        mine = {x["id"]: x for x in waiting}
        for p in live.connected():
            you = p.public()
            if p.pid in mine:  # a person in the lobby sees their own progress (restored after a reload)
                you["readiness"] = {k: mine[p.pid][k] for k in ("identity", "notices", "online_consent",
                                                                  "recording_consent", "third_party_ok", "blocking")}
            state: dict[str, Any] = {
                "session": live.session_id, "case": live.case_code, "you": you,
                "mediator_present": live.mediator_present(), "recording": live.recording,
                "caucus": {"active": bool(live.caucus), "kind": live.caucus_kind, "members": names,
                           "member_ids": sorted(m for m in live.caucus if m in live.people),
                           "you_inside": p.pid in live.caucus},
                "participants": visible if p.admitted else [],
            }
            if p.is_side:
                state["third_parties"] = guests
            if p.is_mediator:
                state["lobby"] = waiting
            await self.to_person(live, p.pid, "session:state", state)

    # ---- addressing ------------------------------------------------------------------------------------------
    async def to_person(self, live: LiveSession, pid: str, event: str, data: Any) -> None:
        await self.sio.emit(event, data, to=person_room(live.session_id, pid), namespace=NS)

    async def to_session(self, live: LiveSession, event: str, data: Any) -> None:
        await self.sio.emit(event, data, room=session_room(live.session_id), namespace=NS)

    async def drop(self, live: LiveSession, pid: str, *, keep: str | None = None) -> None:
        """Close a participant's connections (refused, link reissued, session ended), except `keep`."""
        room = person_room(live.session_id, pid)
        for sid, _ in list(self.sio.manager.get_participants(NS, room)):
            if sid != keep:
                await self.sio.disconnect(sid, namespace=NS)

    async def reissued(self, session_id: int, pid: str) -> None:
        """A participant's link was reissued: whoever holds the old one leaves and starts over, on whichever node
        owns the session."""
        await self._forget(session_id, pid)
        await self.tell_nodes({"op": "forget", "session": session_id, "pid": pid})

    async def _forget(self, session_id: int, pid: str) -> None:
        live = self.services.live.get(session_id)
        if live is not None and pid in live.people:
            await self.drop(live, pid)
            live.forget(pid)

    # ---- domain events ---------------------------------------------------------------------------------------
    async def deliver(self, events: Iterable[Event]) -> None:
        for ev in events:
            if isinstance(ev, AgreementChanged):
                await self._agreement(ev.case_code)
                await self.tell_nodes({"op": "agreement", "case": ev.case_code})
            elif isinstance(ev, Notice):
                await self._notice(ev)
            elif isinstance(ev, ApplicationSubmitted):
                await self._submitted(ev)

    async def _agreement(self, case_code: str) -> None:
        """`agreement:state` to every admitted participant of the case's live sessions on this node."""
        lives = self.services.live.of_case(case_code)
        if not lives:
            return
        state = await self.services.workflow.state(case_code)
        if state is None:
            return
        for live in lives:
            for p in live.admitted():
                await self.to_person(live, p.pid, "agreement:state", state)

    async def _notice(self, notice: Notice) -> None:
        """A `court:notice` to each connected party or agent of the case, here and on the other nodes; what was
        sent to whom is recorded (by the nodes that sent it: `record_notice`, `record_delivery`)."""
        body = notice.body()
        delivered = await self._notify_here(notice.case_code, body)
        await notices.record_notice(self.services.db, notice, body, delivered)
        await self.tell_nodes({"op": "notice", "case": notice.case_code, "subject": notice.subject, "body": body})

    async def _notify_here(self, case_code: str, body: dict[str, Any]) -> list[str]:
        delivered = []
        for live in self.services.live.of_case(case_code):
            for p in live.connected():
                if p.is_side:
                    await self.to_person(live, p.pid, "court:notice", body)
                    delivered.append(p.pid)
        return delivered

    # ---- between nodes ---------------------------------------------------------------------------------------
    async def tell_nodes(self, message: dict[str, Any]) -> None:
        """On a node of several, the same change for the live sessions the other nodes own (an HTTP route is
        served by whichever node the balancer chose; the session's people are connected to its owner)."""
        mgr = self.sio.manager
        if isinstance(mgr, RedisManager):
            await mgr.tell(message)

    async def from_node(self, m: dict[str, Any]) -> None:
        """What another node told (`tell_nodes`), for this node's live sessions; anything else is ignored."""
        op = m.get("op")
        if op == "forget" and isinstance(m.get("session"), int) and isinstance(m.get("pid"), str):
            await self._forget(m["session"], m["pid"])
        elif op == "agreement" and isinstance(m.get("case"), str):
            await self._agreement(m["case"])
        elif op == "notice" and isinstance(m.get("case"), str) and isinstance(m.get("body"), dict) \
                and isinstance(m.get("subject"), str):
            delivered = await self._notify_here(m["case"], m["body"])
            if delivered:
                cluster = self.services.cluster
                await notices.record_delivery(self.services.db, m["subject"], m["body"], delivered,
                                      cluster.node_id if cluster is not None else "-")
        else:
            log.warning("ignored a message from another node: %r", str(m)[:200])

    async def _submitted(self, ev: ApplicationSubmitted) -> None:
        """The case goes to the court: its recordings' keys are wrapped to the court, the parties are told."""
        wrapped = await self.services.court_share.wrap_case(ev.case_code, ev.court_id, actor="system")
        documents = await self.services.court_documents.wrap_case(ev.case_code, ev.court_id)
        await self._notice(Notice(ev.case_code, app_subject(ev.case_code, ev.application_id),
                                  "application_submitted",
                                  {"application_id": ev.application_id, "court_id": ev.court_id,
                                   "court": self.services.courts.get(ev.court_id).name,
                                   "recordings_shared": len(wrapped), "documents_shared": len(documents)}))
