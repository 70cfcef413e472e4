"""The workflow's state machine on facts built by hand (mediation/agreements/lifecycle.py): the stages after the
ruling (R26 objection windows counted from service) and the application's optional power of attorney (R23)."""

from __future__ import annotations

import datetime as dt

from mediation.agreements.lifecycle import OBJECTION_PARTY, OBJECTION_THIRD, Facts, Someone, evaluate

RULED = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)
PEOPLE = (Someone(1, "party"), Someone(2, "party"), Someone(3, "agent", 2))


def ruled(now: dt.datetime, served: tuple[tuple[int, dt.datetime], ...] = ()) -> Facts:
    return Facts(mediator="staff:1", people=PEOPLE, now=now, agreement="sealed", mediator_signed=True,
                 effective_at=RULED - dt.timedelta(days=5), application="confirmed", court="court-x",
                 ruled_at=RULED, served=served)


def objections(f: Facts) -> dict[str, dt.datetime | None]:
    st = evaluate(f)
    return {a.actor: a.until for a in st.next_actions if a.action == "raise_objection"}


def test_a_partys_fifteen_days_run_from_when_the_ruling_reached_it() -> None:
    # not served yet: both parties may object, no date yet (the window has not started)
    assert objections(ruled(RULED + dt.timedelta(days=20))) == {"person:1": None, "person:2": None}
    # A received it on day 10: its window ends on day 25, B's has not started
    served = ((1, RULED + dt.timedelta(days=10)),)
    assert objections(ruled(RULED + dt.timedelta(days=20), served)) == {
        "person:1": RULED + dt.timedelta(days=10) + OBJECTION_PARTY, "person:2": None}
    assert objections(ruled(RULED + dt.timedelta(days=26), served)) == {"person:2": None}
    st = evaluate(ruled(RULED + dt.timedelta(days=26), served))
    assert st.stage == "objection_window" and st.closed and st.reason == "ruling_confirmed"
    assert st.until == RULED + OBJECTION_THIRD  # the third party's six months
    assert not st.leads_on()  # objections are raised at the court (offline): closed with its reason, no dead end


def test_archived_after_every_window_closed() -> None:
    late = RULED + OBJECTION_THIRD - dt.timedelta(days=3)  # served three days before the six months end
    st = evaluate(ruled(RULED + OBJECTION_THIRD + dt.timedelta(days=1), ((2, late),)))
    assert st.stage == "objection_window" and st.until == late + OBJECTION_PARTY  # B's 15 days outlast it
    st = evaluate(ruled(late + OBJECTION_PARTY + dt.timedelta(days=1), ((2, late),)))
    assert st.stage == "archived" and st.closed and st.next_actions == ()


def test_power_of_attorney_is_offered_while_an_applying_agent_has_none() -> None:
    base = Facts(mediator="staff:1", people=PEOPLE, now=RULED, agreement="sealed", mediator_signed=True,
                 effective_at=RULED, application="draft", court="court-x", app_unsigned=(1, 2))
    st = evaluate(Facts(**{**base.__dict__, "poa_open": (3,)}))
    assert st.ready("staff:1", "add_power_of_attorney")
    accept = next(a for a in st.next_actions if a.action == "accept")
    assert not accept.ready and any(w.action == "add_power_of_attorney" for w in accept.waits_for)
    assert not evaluate(base).ready("staff:1", "add_power_of_attorney")  # on file: nothing to add
