"""Model-based test of the live session through the REAL server: the lobby, admission, refusal and a reissued
link, reloads and closed pages, the caucus (背靠背, R7/R9), recording and its consent (R1, P2), chat and muting.

A hypothesis RuleBasedStateMachine plays the mediator (in the session over Socket.IO) and the parties A, B and
B's agent (each on its own device), who act in any order: open the link, check identity, consent or withdraw,
close the page, come back; the mediator joins late or leaves, admits one or all, refuses, reissues a link, opens
and closes a caucus, records, pauses, mutes, chats. Each run has its own server and case (tests/agreements/
model_harness.py). After every step:

- every page shows the truth: each connected person's last `session:state` matches the server's live session (who
  is admitted, who they see, the lobby, the caucus, the recording, whether the mediator is present) within a
  bounded wait: no page lies, however the events interleave;
- no dead button: the mediator's admit succeeds exactly when the lobby shows the person ready (nothing blocking),
  and a caucus opens exactly when the console's participant list allows it;
- nothing is recorded without consent: while the recording runs, everyone admitted has consented (R1, P2);
- caucus privacy: a chat message reaches exactly the admitted people on the sender's side of the caucus (R9);
- the server logs no error, whatever the order.

The audit chain is verified at the end of each run. The number of runs and distinct states are printed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from mediation import recording_policy
from mediation.devicekeys import DeviceKey
from mediation.live import LiveSession
from signaling.client import ProtocolError, SessionClient
from signaling.services import SERVICES, Services
from tests.agreements.model_harness import WHO, Run, Template, make_template
from tests.agreements.test_workflow_model import _scratch

RUNS = int(os.environ.get("ONEDOOR_SESSION_RUNS", "30"))  # make test; `make soak` runs MODEL_RUNS
STEPS = 25
LIMIT = 30.0  # seconds for one step's calls
SETTLE = 10.0  # seconds the pages may take to show a change
CONSENTS = ("notices", "online", "recording")


class Stats:
    runs = 0
    steps = 0
    states: ClassVar[set[tuple[Any, ...]]] = set()
    refusals: ClassVar[dict[str, int]] = {}
    done: ClassVar[dict[str, int]] = {}


class Errors(logging.Handler):
    """ERROR records of the server's own code and its web and Socket.IO layers while a run's server serves (not
    the connection pool's complaints when the previous run's server is shut down under it)."""

    SOURCES = ("signaling", "mediation", "media", "recordings", "aiohttp", "socketio", "engineio")

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.split(".")[0] in self.SOURCES:
            self.records.append(record)


# the rules that act on a party the mediator sees: both have a page open
with_mediator_and_party = precondition(lambda self: self.client("mediator") is not None and bool(self.here()))


class LobbyRun(Run):
    """A run whose session is scheduled but nobody has joined: the model decides who comes when."""

    async def enter(self, session_id: int, tokens: dict[str, tuple[str, int]]) -> None:
        self.session_id = session_id
        for who, p in self.parties.items():
            p.token, p.invite_id = tokens[self.names()[who]]


class SessionModel(RuleBasedStateMachine):
    template: ClassVar[Template]
    loop: ClassVar[asyncio.AbstractEventLoop]
    errors: ClassVar[Errors]

    def __init__(self) -> None:
        super().__init__()
        Stats.runs += 1
        self.run = LobbyRun(self.template, Stats.runs)
        self.do(self.run.start())
        self.keys = {who: DeviceKey() for who in WHO}  # each party's device (a reissued link: a new one)
        self.refused: set[str] = set()
        self.ended = False
        self.mediator: SessionClient | None = None
        self.history: list[str] = []
        self.errors.records.clear()

    # ---- plumbing --------------------------------------------------------------------------------------------
    def do(self, coro: Awaitable[Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(LIMIT)  # type: ignore[arg-type]

    def services(self) -> Services:
        assert self.run.server is not None
        sv: Services = self.run.server.app[SERVICES]
        return sv

    def live(self) -> LiveSession | None:
        return self.services().live.get(self.run.session_id)

    def not_consented(self, live: LiveSession) -> list[str]:
        """The admitted people without recording consent (the server's own rule, mediation/recording_policy)."""
        missing: list[str] = self.do(recording_policy.not_consented(self.services().db, live.admitted()))
        return missing

    def client(self, who: str) -> SessionClient | None:
        c = self.run.parties[who].client if who != "mediator" else self.mediator
        return c if c is not None and c.sio.connected else None

    def pid(self, who: str) -> str | None:
        c = self.client(who)
        return c.state.get("you", {}).get("id") if c is not None else None

    def attempt(self, what: str, coro: Awaitable[Any], expect: bool | None) -> Any:
        """Do one step; `expect` True/False: the pages offered it / did not (None: not predicted)."""
        Stats.steps += 1
        try:
            out = self.do(coro)
        except ProtocolError as e:
            self.history.append(f"{what} -> refused {e.code}")
            key = f"{what.split(' (')[0]}: {e.code}"
            Stats.refusals[key] = Stats.refusals.get(key, 0) + 1
            assert expect is not True, f"{what} was offered but refused: {e.code} {e.error}\n" + self.story()
            return None
        self.history.append(f"{what} -> ok")
        key = " ".join(w for w in what.split(" (")[0].split() if w not in WHO and not w.startswith("["))
        Stats.done[key] = Stats.done.get(key, 0) + 1
        assert expect is not False, f"{what} was accepted although the pages did not offer it\n" + self.story()
        return out

    def here(self) -> list[str]:
        """The parties whose page is connected."""
        return [w for w in WHO if self.client(w) is not None]

    def story(self) -> str:
        return "\n".join(self.history)

    def teardown(self) -> None:
        try:
            if not self.ended:
                report = self.do(self.template.consoles["admin"].api("GET", "/api/audit/verify"))
                assert report["ok"], report
        finally:
            self.do(self._close())

    async def _close(self) -> None:
        if self.mediator is not None and self.mediator.sio.connected:
            await self.mediator.sio.disconnect()
        self.mediator = None
        await self.run.stop()

    # ---- the mediator ----------------------------------------------------------------------------------------
    @rule()
    def mediator_joins_or_leaves(self) -> None:
        if self.client("mediator") is None:
            async def join() -> None:
                m = SessionClient(self.run.base)
                await m.http.close()
                console = self.template.consoles["mediator"]
                m.http, m.csrf = console.http, console.csrf
                await m.join_staff(self.run.session_id)
                self.mediator = m
            self.attempt("mediator joins", join(), not self.ended)
        else:
            assert self.mediator is not None
            self.attempt("mediator leaves", self.mediator.sio.disconnect(), True)

    def mediator_and_party(self, data: st.DataObject) -> tuple[str, SessionClient, str] | None:
        """A party with a page open, drawn; with the mediator's client and the party's id (None: not known yet)."""
        who = data.draw(st.sampled_from(self.here()))
        m, pid = self.client("mediator"), self.pid(who)
        return None if m is None or pid is None else (who, m, pid)

    def lobby_entry(self, who: str) -> dict[str, Any] | None:
        m, pid = self.client("mediator"), self.pid(who)
        if m is None or pid is None:
            return None
        return next((x for x in m.state.get("lobby", []) if x["id"] == pid), None)

    @with_mediator_and_party
    @rule(data=st.data())
    def mediator_admits(self, data: st.DataObject) -> None:
        got = self.mediator_and_party(data)
        if got is None:
            return
        who, m, pid = got
        entry = self.lobby_entry(who)
        expect = None if entry is None else not entry["blocking"]  # (admitted already: not in the lobby)
        self.attempt(f"mediator admits {who} (lobby showed {entry and entry['blocking']})",
                     m.call("lobby:admit", {"participant": pid}), expect)

    @precondition(lambda self: self.client("mediator") is not None)
    @rule()
    def mediator_admits_everyone_ready(self) -> None:
        m = self.client("mediator")
        if m is None:
            return
        ready = sorted(x["id"] for x in m.state.get("lobby", []) if not x["blocking"])
        out = self.attempt("mediator admits everyone ready", m.call("lobby:admit-all"), True)
        assert out is not None and sorted(out["admitted"]) == ready, (out, ready, self.story())

    @with_mediator_and_party
    @rule(data=st.data())
    def mediator_refuses(self, data: st.DataObject) -> None:
        got = self.mediator_and_party(data)
        if got is None:
            return
        who, m, pid = got
        # the console offers refusal in the lobby list only: someone admitted is not "not let in"
        if self.attempt(f"mediator refuses {who}", m.call("lobby:refuse", {"participant": pid, "reason": "请改日"}),
                        self.lobby_entry(who) is not None) is not None:
            self.refused.add(who)

    @rule(who=st.sampled_from(WHO), now=st.integers(0, 3))
    def mediator_reissues_the_link(self, who: str, now: int) -> None:
        """The party asks for a new link (a new phone, or after a refusal): the old one stops working."""
        if self.ended or (now and who not in self.refused):  # (now and then; a refused party asks for one)
            return
        p = self.run.parties[who]
        path = f"/api/sessions/{self.run.session_id}/invites/{p.invite_id}/reissue"
        out = self.attempt(f"mediator reissues {who}'s link",
                           self.template.consoles["mediator"].api("POST", path), None)
        if out is not None:
            p.token = out["invite"]["link"].split("#", 1)[1]
            self.keys[who] = DeviceKey()
            self.refused.discard(who)
            self.do(self.settle())  # the old device is dropped

    @with_mediator_and_party
    @rule(data=st.data())
    def mediator_attests_identity(self, data: st.DataObject) -> None:
        got = self.mediator_and_party(data)
        if got is None:
            return
        who, m, pid = got
        self.attempt(f"mediator attests {who}", m.call(
            "identity:attest", {"participant": pid, "document": "居民身份证", "matched": True}), None)

    def admitted_here(self) -> list[str]:
        """The parties the mediator's console lists as participants (whom a caucus is chosen from)."""
        m = self.client("mediator")
        shown = {x["id"] for x in m.state.get("participants", [])} if m is not None else set()
        return [w for w in self.here() if self.pid(w) in shown]

    @with_mediator_and_party
    @rule(data=st.data(), chosen=st.booleans())
    def mediator_opens_a_caucus(self, data: st.DataObject, chosen: bool) -> None:
        """From the participant list (chosen), or anyone with a page open (a stale list, a late click)."""
        here = (self.admitted_here() if chosen else []) or self.here()
        members = data.draw(st.lists(st.sampled_from(here), min_size=1, max_size=len(here), unique=True))
        m = self.client("mediator")
        if m is None:
            return
        me = m.state.get("you", {}).get("id")
        ids = [self.pid(w) for w in members]
        shown = {x["id"] for x in m.state.get("participants", [])}
        group = {me, *ids}
        expect = (not m.state.get("caucus", {}).get("active") and None not in ids and group <= shown
                  and not shown <= group)
        self.attempt(f"mediator opens a caucus with {members}",
                     m.call("caucus:open", {"members": sorted(x for x in group if x)}), expect)

    @precondition(lambda self: self.client("mediator") is not None)
    @rule()
    def mediator_closes_the_caucus(self) -> None:
        m = self.client("mediator")
        if m is None:
            return
        self.attempt("mediator closes the caucus", m.call("caucus:close"),
                     bool(m.state.get("caucus", {}).get("active")))

    @precondition(lambda self: self.client("mediator") is not None)
    @rule(action=st.sampled_from(("start", "pause", "resume", "stop")))
    def mediator_records(self, action: str) -> None:
        m = self.client("mediator")
        if m is None:
            return
        shown = m.state.get("recording")
        body = {} if action == "start" else {"reason": "调解员操作"}
        plausible = {"start": shown == "off", "pause": shown == "running", "resume": shown == "paused",
                     "stop": shown in ("running", "paused")}[action]
        # start and resume also need everyone's consent, which the console does not show: only refusals for that
        out = self.attempt(f"mediator {action}s the recording (showed {shown})", m.call(f"recording:{action}", body),
                           False if not plausible else (True if action in ("pause", "stop") else None))
        if out is None and plausible and action in ("start", "resume"):
            live = self.live()
            assert live is not None
            assert self.not_consented(live), f"{action} refused with everyone's consent\n" + self.story()

    @with_mediator_and_party
    @rule(data=st.data())
    def mediator_mutes(self, data: st.DataObject) -> None:
        got = self.mediator_and_party(data)
        if got is None:
            return
        who, m, pid = got
        self.attempt(f"mediator mutes {who}", m.call("mute:other", {"participant": pid}), None)

    @precondition(lambda self: not self.ended and self.client("mediator") is not None)
    @rule(now=st.integers(0, 9))
    def mediator_ends_the_session(self, now: int) -> None:
        m = self.client("mediator")
        if m is None or now:  # rarely: it ends the run
            return
        self.attempt("mediator ends the session", m.call("session:end", {"reason": "今天先到这里"}), True)
        self.ended = True
        self.do(m.sio.disconnect())  # the console leaves the ended session (the server has dropped the others)

    # ---- the parties -----------------------------------------------------------------------------------------
    @rule(who=st.sampled_from(WHO))
    def party_opens_or_closes_the_page(self, who: str) -> None:
        p = self.run.parties[who]
        if self.client(who) is not None:
            assert p.client is not None
            self.attempt(f"{who} closes the page", p.client.close(), True)
            return

        async def open_link() -> bool:
            if p.client is not None:
                await p.client.close()
            p.client = SessionClient(self.run.base, device_key=self.keys[who])
            await p.client.join_invite(p.token)
            return True

        ok = self.attempt(f"{who} opens the link", open_link(),
                          False if (self.ended or who in self.refused) else True)
        if ok is None and p.client is not None:
            self.do(p.client.close())
            p.client = None

    @precondition(lambda self: bool(self.here()))
    @rule(data=st.data(), use_code=st.booleans())
    def party_checks_identity(self, data: st.DataObject, use_code: bool) -> None:
        who = data.draw(st.sampled_from(self.here()))
        c, p = self.client(who), self.run.parties[who]
        if c is None:
            return

        async def check() -> None:
            started = await c.call("identity:start", {"method": "otp" if use_code else "attestation"})
            if use_code and not started.get("passed"):  # (the mediator may have attested already)
                await c.call("identity:answer", {"code": self.run.sender.sent[f"invite:{p.invite_id}"]})
        self.attempt(f"{who} checks identity ({'code' if use_code else 'asks the mediator'})", check(), None)

    @precondition(lambda self: bool(self.here()))
    @rule(data=st.data())
    def party_does_every_lobby_step(self, data: st.DataObject) -> None:
        """What the party page walks a person through: the identity code, the notices, online mediation and
        recording (each one a step the pages offer until it is done)."""
        who = data.draw(st.sampled_from(self.here()))
        c, p = self.client(who), self.run.parties[who]
        assert c is not None

        async def steps() -> None:
            started = await c.call("identity:start", {"method": "otp"})
            if not started.get("passed"):
                await c.call("identity:answer", {"code": self.run.sender.sent[f"invite:{p.invite_id}"]})
            for kind in CONSENTS:
                await c.call("lobby:consent", {"kind": kind, "granted": True})
        self.attempt(f"{who} does every lobby step", steps(), True)

    @precondition(lambda self: bool(self.here()))
    @rule(data=st.data(), kind=st.sampled_from(CONSENTS), granted=st.booleans())
    def party_consents(self, data: st.DataObject, kind: str, granted: bool) -> None:
        who = data.draw(st.sampled_from(self.here()))
        c = self.client(who)
        if c is None:
            return
        # the notices (R1) are acknowledged, not consented to: there is nothing to withdraw
        self.attempt(f"{who} {'gives' if granted else 'withdraws'} {kind} consent",
                     c.call("lobby:consent", {"kind": kind, "granted": granted}), granted or kind != "notices")

    @rule(who=st.sampled_from(("mediator", *WHO)))
    def someone_chats(self, who: str) -> None:
        c = self.client(who)
        if c is None or not c.state.get("you", {}).get("admitted"):
            return
        text = f"消息 {Stats.steps}"
        out = self.attempt(f"{who} chats", c.call("chat:send", {"text": text}), True)
        live = self.live()
        assert out is not None and live is not None
        me = c.state["you"]["id"]
        should = {p.pid for p in live.admitted() if p.connected and live.same_side_of_caucus(me, p.pid)}
        clients = [x for x in (self.mediator, *(p.client for p in self.run.parties.values()))
                   if x is not None and x.sio.connected]

        def got(x: SessionClient) -> bool:
            return any(m.get("id") == out["id"] for m in x.events["chat:message"])

        async def delivered() -> None:
            for _ in range(int(SETTLE / 0.05)):
                if all(got(x) for x in clients if x.state["you"]["id"] in should):
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.1)  # and a moment for a message that should not arrive
        self.do(delivered())
        reached = {x.state["you"]["id"] for x in clients if got(x)}
        assert reached == should, (f"chat {out['id']} reached {reached}, should {should} (caucus "
                                   f"{sorted(live.caucus)})\n" + self.story())

    # ---- invariants --------------------------------------------------------------------------------------------
    async def settle(self) -> list[str]:
        """Wait until every connected page shows the server's truth; what still differs after SETTLE."""
        deadline = time.monotonic() + SETTLE
        while True:
            wrong = self.differences()
            if not wrong or time.monotonic() > deadline:
                return wrong
            await asyncio.sleep(0.05)

    def differences(self) -> list[str]:
        live = self.live()
        if live is None:
            return []
        wrong = []
        admitted = sorted(p.pid for p in live.admitted())
        waiting = sorted(p.pid for p in live.lobby())
        members = sorted(m for m in live.caucus if m in live.people)
        for who in ("mediator", *WHO):
            c = self.client(who)
            if c is None or not c.state:
                continue
            you = c.state["you"]
            truth = live.people.get(you["id"])
            if truth is None or not truth.connected:
                continue  # being dropped (refused, reissued)
            seen = {
                "admitted": you["admitted"],
                "participants": sorted(x["id"] for x in c.state["participants"]),
                "recording": c.state["recording"],
                "caucus": c.state["caucus"]["member_ids"],
                "inside": c.state["caucus"]["you_inside"],
                "mediator_present": c.state["mediator_present"],
            }
            real = {"admitted": truth.admitted, "participants": admitted if truth.admitted else [],
                    "recording": live.recording, "caucus": members, "inside": truth.pid in live.caucus,
                    "mediator_present": live.mediator_present()}
            if who == "mediator":
                seen["lobby"] = sorted(x["id"] for x in c.state.get("lobby", []))
                real["lobby"] = waiting
            if seen != real:
                wrong.append(f"{who}'s page shows {seen}, the server has {real}")
        return wrong

    @invariant()
    def every_page_shows_the_truth(self) -> None:
        wrong = self.do(self.settle())
        live = self.live()
        if live is not None:
            Stats.states.add((live.recording, bool(live.caucus), live.mediator_present(),
                              tuple(sorted((p.role.value, p.connected, p.admitted) for p in live.people.values()))))
        assert not wrong, "\n".join(wrong) + "\n" + self.story()

    @invariant()
    def nothing_recorded_without_consent(self) -> None:
        live = self.live()
        if live is None or live.recording != "running":
            return
        missing = self.not_consented(live)
        assert not missing, f"recording runs without the consent of {missing}\n" + self.story()

    @invariant()
    def no_error_logged(self) -> None:
        assert not self.errors.records, [r.getMessage() for r in self.errors.records] + [self.story()]


@pytest.fixture
async def template(tmp_path: Any) -> AsyncIterator[Template]:
    root = _scratch(tmp_path)
    t = await make_template(root)
    yield t
    for c in t.consoles.values():
        await c.close()


@pytest.mark.slow
@pytest.mark.timeout(max(600, RUNS * 20))
async def test_session_model(template: Template, capsys: pytest.CaptureFixture[str]) -> None:
    SessionModel.template, SessionModel.loop = template, asyncio.get_running_loop()
    SessionModel.errors = Errors()
    logging.getLogger().addHandler(SessionModel.errors)
    Stats.runs = Stats.steps = 0
    Stats.states.clear()
    Stats.refusals.clear()
    Stats.done.clear()
    started = time.monotonic()
    try:
        await asyncio.to_thread(run_state_machine_as_test, SessionModel, settings=settings(
            max_examples=RUNS, stateful_step_count=STEPS, deadline=None, database=None,
            suppress_health_check=list(HealthCheck)))
    finally:
        logging.getLogger().removeHandler(SessionModel.errors)
        with capsys.disabled():
            print(f"\nsession model: {Stats.runs} runs, {Stats.steps} attempted steps, {len(Stats.states)} distinct "
                  f"states, in {time.monotonic() - started:.0f} s\n  accepted: {dict(sorted(Stats.done.items()))}"
                  f"\n  refused: {dict(sorted(Stats.refusals.items()))}")
