"""Model-based test of the agreement → application → ruling workflow through the REAL server (issue 11, style 15).

A hypothesis RuleBasedStateMachine plays the mediator (in the session over Socket.IO, or the console over HTTP),
both parties and B's agent (each with its own device key, over Socket.IO) and the judge (HTTP), in random orders,
with random refusals, bad signatures, edits (also after finalization), withdrawals of consent, reloads
(reconnects), session ends and new sessions. Each run has its own server and case (tests/agreements/
model_harness.py). After every step it checks, against the server's own `next_actions` (mediation/agreements/
lifecycle.py):

- nothing is accepted out of turn: an action the server accepted was offered (`ready`) to that person before it;
- nothing offered is refused: a well-formed attempt at a `ready` action succeeds (the pages never show a dead button);
- every signature is bound to the right key: the key of the device that signed as that person (the mediator's
  key for `staff:<id>`), and the server's integrity check finds nothing;
- the audit chain verifies (`GET /api/audit/verify`);
- NO DEAD END: from every state someone has a ready next action that leads on, or the workflow is closed with a
  reason.

The number of runs and the distinct states visited are printed at the end.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import os
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
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

from mediation.devicekeys import DeviceKey
from signaling.client import ProtocolError, SessionClient
from tests.court.helpers import filled

from .model_harness import COURT, WHO, Run, Template, make_template

ACTIONS = ("draft_agreement", "edit_draft", "finalize", "sign_as_mediator", "sign_agreement", "refuse",
           "start_application", "add_power_of_attorney", "sign_application", "accept", "decline", "rule", "extend")
# `make test`: 30 generated runs in 3 parts (test items the workers share); `make soak`: ONEDOOR_MODEL_RUNS in one
SOAK = os.environ.get("ONEDOOR_MODEL_RUNS")
RUNS = int(SOAK) if SOAK else 30
PARTS = 1 if SOAK else 3
STEPS = 30
LIMIT = 30.0  # seconds for one step's calls


class Stats:
    runs = 0
    steps = 0
    setup = 0.0
    teardown = 0.0
    took: ClassVar[dict[str, float]] = {}
    states: ClassVar[set[tuple[Any, ...]]] = set()
    stages: ClassVar[set[str]] = set()


class WorkflowModel(RuleBasedStateMachine):
    """One generated run. `template` and `loop` are set by the test before the machine runs."""

    template: ClassVar[Template]
    loop: ClassVar[asyncio.AbstractEventLoop]

    def __init__(self) -> None:
        super().__init__()
        Stats.runs += 1
        self.run = Run(self.template, Stats.runs)
        self.bad_key = DeviceKey()  # a key nobody bound
        self.signed_keys: dict[str, str] = {}  # signer -> base64 SPKI of the key that signed as them
        self.state: dict[str, Any] = {}
        self.agreement_id: int | None = None
        self.history: list[str] = []
        t0 = time.monotonic()
        self.do(self.run.start())
        Stats.setup += time.monotonic() - t0
        self.refresh()

    # ---- plumbing --------------------------------------------------------------------------------------------
    def do(self, coro: Awaitable[Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(LIMIT)  # type: ignore[arg-type]

    def teardown(self) -> None:
        t0 = time.monotonic()
        self.do(self.run.stop())
        # Between runs, in the model's thread: collect this run's garbage and freeze what survives, so that a full
        # collection over the harness's growing heap (hypothesis, a server per run) does not land in one of the
        # next server's callbacks and count as blocking the event loop (tests/loopblock.py).
        gc.collect()
        gc.freeze()
        Stats.teardown += time.monotonic() - t0

    def refresh(self) -> None:
        t0 = time.monotonic()
        self.state = self.do(self.template.consoles["mediator"].api("GET", f"/api/cases/{self.run.code}/agreement"))
        a_id = (self.state.get("agreement") or {}).get("id")
        if a_id != self.agreement_id:  # a new draft after a refusal: nobody has signed it
            self.agreement_id, self.signed_keys = a_id, {}
        Stats.stages.add(self.state["workflow"]["stage"])
        Stats.states.add(self.key())
        Stats.took["(refresh)"] = Stats.took.get("(refresh)", 0.0) + time.monotonic() - t0

    def label(self, actor: str) -> str:
        for who, p in self.run.parties.items():
            if actor == f"person:{p.person_id}":
                return who
        return actor.split(":", 1)[0]

    def key(self) -> tuple[Any, ...]:
        """The state, with people named by their part (A, B, Bagent, staff, court)."""
        acts = sorted((self.label(a["actor"]), a["action"], a["ready"]) for a in self.state["next_actions"])
        return (self.state["workflow"]["stage"], self.state["workflow"]["closed"], tuple(acts))

    def actor(self, who: str) -> str:
        if who == "mediator":
            return f"staff:{self.template.mediator_id}"
        if who == "judge":
            return f"court:{COURT}"
        return f"person:{self.run.parties[who].person_id}"

    def ready(self, who: str, action: str) -> bool:
        me = {self.actor(who), "mediator"} if who == "mediator" else {self.actor(who)}  # "mediator": none named yet
        return any(a["actor"] in me and a["action"] == action and a["ready"] for a in self.state["next_actions"])

    def attempt(self, who: str, action: str, call: Callable[[], Awaitable[Any]], *, legit: bool = True) -> Any:
        """Try `action` as `who`; compare the server's answer with what the previous state offered."""
        offered, stage = self.ready(who, action), self.state["workflow"]["stage"]
        Stats.steps += 1
        t0 = time.monotonic()
        try:
            out = self.do(call())
        except ProtocolError as e:
            self.history.append(f"{who} {action} (legit={legit}) -> refused {e.code}")
            assert not (offered and legit), (
                f"{action} was offered to {who} in stage {stage} but refused: {e.code} {e.error.get('message')}\n"
                + "\n".join(self.history))
            out = None
        else:
            Stats.took[action] = Stats.took.get(action, 0.0) + time.monotonic() - t0
            self.history.append(f"{who} {action} (legit={legit}) -> ok")
            assert offered, f"{action} by {who} accepted out of turn in stage {stage}\n" + "\n".join(self.history)
            assert legit, f"{action} by {who} accepted although it was malformed\n" + "\n".join(self.history)
        self.refresh()
        return out

    def party(self, who: str) -> SessionClient | None:
        return self.run.parties[who].client

    def app_id(self) -> int | None:
        app = self.state.get("application")
        return int(app["id"]) if app else None

    # ---- what each person can do ---------------------------------------------------------------------------------
    def perform(self, who: str, action: str, variant: int) -> None:
        """`who` tries `action` the way the pages would; `variant` picks the transport and the mistakes (a vague
        term, a key nobody bound, a court without jurisdiction) and the outcome of a ruling."""
        code, m_sio, console = self.run.code, self.run.mediator, self.template.consoles["mediator"]
        sio = m_sio if m_sio is not None and variant % 2 else None  # the mediator in the session, or the console
        base = f"/api/cases/{code}/agreement"
        legit = True
        call: Callable[[], Awaitable[Any]]
        if who == "mediator":
            if action == "draft_agreement":
                body: dict[str, Any] = {"template": "neighbours"}
                call = (lambda: sio.call("agreement:draft", body)) if sio else (lambda: console.api("POST", base, body))
            elif action == "edit_draft":
                a = self.state.get("agreement")
                if a is None:
                    return
                parties = {"A": self.run.parties["A"].person_id, "B": self.run.parties["B"].person_id}
                body = {"content": filled(a["content"], parties, vague=variant % 4 == 0),
                        "base_version": a["current_version"], "note": "编辑"}
                call = ((lambda: sio.call("agreement:update", body)) if sio
                        else (lambda: console.api("POST", base + "/draft", body)))
            elif action == "finalize":
                call = ((lambda: sio.call("agreement:finalize")) if sio
                        else (lambda: console.api("POST", base + "/finalize")))
            elif action == "sign_as_mediator":
                call = ((lambda: sio.call("agreement:sign-mediator")) if sio
                        else (lambda: console.api("POST", base + "/sign")))
            elif action == "start_application":
                court = "court-chengdong" if variant % 5 == 0 else COURT
                legit = court == COURT
                call = lambda: console.api("POST", f"/api/cases/{code}/application", {"court_id": court})  # noqa: E731
            elif action == "add_power_of_attorney":
                body = {"kind": "power_of_attorney", "filename": "授权委托书.pdf", "person_id":
                        self.run.parties["Bagent"].person_id, "data": base64.b64encode(b"%PDF-1.4 poa").decode()}
                call = lambda: console.api("POST", f"/api/cases/{code}/application/documents", body)  # noqa: E731
            elif action == "schedule_session":
                if self.run.mediator is None:
                    self.history.append("mediator schedules a new session; everyone joins with a new device")
                    self.do(self.run.new_session())
                    self.refresh()
                return
            else:
                return
            out = self.attempt(who, action, call, legit=legit)
            if out is not None and action == "sign_as_mediator":
                self.signed_keys[self.actor("mediator")] = "mediator"
            return
        if who == "judge":
            app = self.app_id()
            if app is None or action not in ("accept", "decline", "rule", "extend"):
                return
            judge, path = self.template.consoles["judge"], f"/api/court/applications/{app}/{action}"
            bodies: dict[str, dict[str, Any] | None] = {
                "accept": None, "decline": {"ground": "out_of_scope", "note": "不属于受理范围"},
                "rule": {"outcome": "rejected", "ground": "not_voluntary", "reasoning": "经审查，违背自愿原则。"}
                if variant % 3 == 0 else {"outcome": "confirmed", "reasoning": "经审查，协议系双方自愿达成。"},
                "extend": {"reason": "院长批准延长"}}
            jbody = bodies[action]
            self.attempt(who, action, lambda: judge.api("POST", path, jbody))
            return
        c = self.party(who)
        if c is None or action not in ("sign_agreement", "sign_application", "refuse"):
            return
        if action == "refuse":
            self.attempt(who, action, lambda: c.call("agreement:refuse", {"note": "我不同意"}))
            return
        event = "agreement" if action == "sign_agreement" else "application"
        good = variant % 5 != 0

        async def sign() -> Any:
            got = await c.call(f"{event}:payload")
            key = c.device_key if good else self.bad_key
            return await c.call(f"{event}:sign", {"signature": key.sign(base64.b64decode(got["payload"]))})

        if self.attempt(who, action, sign, legit=good) is not None and event == "agreement":
            self.signed_keys[self.actor(who)] = c.device_key.spki_b64

    def offered(self) -> list[tuple[str, str]]:
        """(who, action) of every ready next action a person can take here (not offline, not the system's)."""
        names = {self.actor(w): w for w in ("mediator", "judge", *WHO)} | {"mediator": "mediator"}
        return [(names[a["actor"]], a["action"]) for a in self.state["next_actions"]
                if a["ready"] and not a.get("offline") and a["actor"] in names]

    @precondition(lambda self: bool(self.offered()))
    @rule(data=st.data(), variant=st.integers(0, 59))
    def someone_does_what_is_offered(self, data: st.DataObject, variant: int) -> None:
        """A person does one of the things the pages offer them now (a refusal, a declined application and a
        rejection rarely: they end the run)."""
        choices = self.offered()
        ending = [c for c in choices if c[1] in ("refuse", "decline")]
        if len(ending) < len(choices) and variant % 6:
            choices = [c for c in choices if c not in ending]
        who, action = data.draw(st.sampled_from(sorted(choices)))
        self.perform(who, action, variant)

    @rule(who=st.sampled_from(("mediator", "judge", *WHO)), action=st.sampled_from(ACTIONS),
          variant=st.integers(0, 59))
    def anyone_tries_anything(self, who: str, action: str, variant: int) -> None:
        """Out of turn or not: the server must refuse whatever is not offered to that person now."""
        self.perform(who, action, variant)

    @precondition(lambda self: self.run.mediator is not None)
    @rule()
    def end_session(self) -> None:
        self.history.append("mediator ends the session")
        self.do(self.run.end_session())
        self.refresh()

    @rule(who=st.sampled_from(WHO))
    def reload(self, who: str) -> None:
        if self.party(who) is None:
            return
        self.history.append(f"{who} reloads the page")
        self.do(self.run.reload(who))

    @rule(who=st.sampled_from(WHO))
    def withdraw_recording_consent(self, who: str) -> None:
        c = self.party(who)
        if c is None:
            return
        self.history.append(f"{who} withdraws recording consent")
        self.do(c.call("lobby:consent", {"kind": "recording", "granted": False}))

    # ---- invariants --------------------------------------------------------------------------------------------
    @invariant()
    def no_dead_end(self) -> None:
        flow, acts = self.state["workflow"], self.state["next_actions"]
        leads_on = any(a["ready"] and not a.get("offline") and a["role"] != "system" for a in acts)
        assert leads_on or (flow["closed"] and flow["reason"]), (
            f"dead end in stage {flow['stage']}: {acts}\n" + "\n".join(self.history))

    @invariant()
    def signatures_bound_to_the_right_keys(self) -> None:
        a = self.state.get("agreement")
        if a is None:
            return
        assert self.state.get("integrity", []) == [], self.state["integrity"]
        if a["status"] in ("refused", "void", "draft"):
            return
        sigs = {s["signer"]: s for s in a["signatures"]}
        assert set(sigs) == set(self.signed_keys), (set(sigs), set(self.signed_keys), self.history)
        for signer, s in sigs.items():
            if signer.startswith("person:"):
                assert s["public_key"] == self.signed_keys[signer], f"{signer} signed with another key"
            else:
                assert signer == self.actor("mediator") and s["role"] == "mediator"

    @invariant()
    def audit_chain_verifies(self) -> None:
        t0 = time.monotonic()
        report = self.do(self.template.consoles["admin"].api("GET", "/api/audit/verify"))
        assert report["ok"], report
        Stats.took["(audit)"] = Stats.took.get("(audit)", 0.0) + time.monotonic() - t0


def _scratch(tmp_path: Path) -> Path:
    shm = Path("/dev/shm")
    return Path(tempfile.mkdtemp(prefix="onedoor-model-", dir=shm)) if shm.is_dir() else tmp_path


@pytest.fixture
async def template(tmp_path: Path) -> AsyncIterator[Template]:
    """Migrated and seeded once (fixture setup: migrations are known to take the loop a while). The databases live
    in memory-backed /dev/shm when there is one: a run commits often, and SQLite's fsyncs dominate on a disk."""
    root = _scratch(tmp_path)
    t = await make_template(root)
    gc.collect()
    gc.freeze()
    yield t
    for c in t.consoles.values():
        await c.close()
    gc.unfreeze()
    if root != tmp_path:
        await asyncio.to_thread(shutil.rmtree, root, True)


@pytest.mark.slow
@pytest.mark.timeout(max(600, RUNS // PARTS * 8))
@pytest.mark.parametrize("part", range(PARTS))
async def test_workflow_model(template: Template, capsys: pytest.CaptureFixture[str], part: int) -> None:
    WorkflowModel.template, WorkflowModel.loop = template, asyncio.get_running_loop()
    Stats.runs = Stats.steps = 0
    Stats.setup = Stats.teardown = 0.0
    Stats.states.clear()
    Stats.stages.clear()
    started = time.monotonic()
    try:
        await asyncio.to_thread(run_state_machine_as_test, WorkflowModel, settings=settings(
            max_examples=RUNS // PARTS, stateful_step_count=STEPS, deadline=None, database=None,
            suppress_health_check=list(HealthCheck)))
    finally:
        with capsys.disabled():
            print(f"\nworkflow model (part {part + 1} of {PARTS}): {Stats.runs} runs, {Stats.steps} attempted "
                  f"actions, {len(Stats.states)} distinct states, stages {sorted(Stats.stages)}, setup {Stats.setup:.0f} s, teardown {Stats.teardown:.0f} s, in {time.monotonic() - started:.0f} s")
            print("  time in accepted actions:", {k: round(v, 1) for k, v in sorted(Stats.took.items())})
