"""Weak-link logic with deterministic numbers: net loss, windows that forget, a stepwise ladder with hysteresis."""

import pytest

from media.config import MediaConfig
from media.weaklink import LinkMeter, LinkState, LossWindow, SlotReport, net_counts

pytestmark = pytest.mark.timeout(10)

CFG = MediaConfig(
    loss_window=2.0, recover_after=2.0, loss_min_packets=20, report_timeout=1.5, probe_window=5.0,
    recover_backoff_max=8.0,
)


def run(state: LinkState, t0: float, seconds: int, lost_per_s: int, recv_per_s: int, base=(0, 0), fresh=True):
    """Feed `seconds` one-second samples; returns the levels decided at each sample (None: no change)."""
    lost, recv = base
    out = []
    for i in range(seconds + 1):
        state.window.add(t0 + i, lost, recv, fresh)
        out.append(state.decide(t0 + i))
        lost += lost_per_s
        recv += recv_per_s
    return out, (lost, recv)


def test_net_counts_remove_what_the_hub_never_received():
    # the subscriber reports 30 lost of 100 sent; 25 of them never reached the hub (publisher's uplink)
    assert net_counts(SlotReport(lost=30, received=70, upstream_missing=25, stamp=1)) == (5, 95)
    # a late fill can make the hub's count exceed what the subscriber reported: never negative
    assert net_counts(SlotReport(lost=3, received=97, upstream_missing=5, stamp=1)) == (0, 100)
    assert net_counts(SlotReport(lost=0, received=0, upstream_missing=0, stamp=None)) == (0, 0)


def test_meter_sums_deltas_per_slot_and_ignores_new_slots_and_restarts():
    m = LinkMeter()
    assert m.update({"a": SlotReport(50, 950, 0, 1)}) is True  # first report: a baseline only
    assert (m.lost, m.received) == (0, 0)
    assert m.update({"a": SlotReport(60, 1040, 0, 2), "b": SlotReport(500, 10, 490, 1)}) is True
    assert (m.lost, m.received) == (10, 90)  # b's history is not a jump
    # b's publisher loses 100 more upstream; b's subscriber reports them: nothing is the subscriber's fault
    assert m.update({"a": SlotReport(60, 1140, 0, 3), "b": SlotReport(600, 110, 590, 2)}) is True
    assert (m.lost, m.received) == (10, 390)  # a: +100, b: +200 sent and received, its 100 lost upstream
    assert m.update({"a": SlotReport(60, 1140, 0, 3), "b": SlotReport(600, 110, 590, 2)}) is False  # no news
    m.update({"a": SlotReport(0, 5, 0, 4)})  # a's sender restarted: counters went back, a new baseline
    assert (m.lost, m.received) == (10, 390)


def test_a_weak_publisher_never_degrades_a_clean_subscriber():
    state, m = LinkState(CFG, top=3), LinkMeter()
    lost = missing = 0
    for t in range(30):
        lost += 30
        missing += 30  # all of the reported loss is the publisher's uplink
        m.update({"slot": SlotReport(lost, 100 * t, missing, t)})
        state.window.add(float(t), m.lost, m.received, True)
        assert state.decide(float(t)) is None
    assert state.level == 3 and state.last_loss == 0.0


def test_sustained_loss_steps_down_one_level_at_a_time_and_brief_loss_does_not():
    state = LinkState(CFG, top=3)
    levels, _ = run(state, 0, 10, 2, 98)  # 2 % loss
    assert set(levels) == {None}
    levels, _ = run(state, 20, 12, 30, 70)  # 30 % loss
    steps = [level for level in levels if level is not None]
    assert steps == [2, 1, 0]  # one step per filled window, never a jump
    assert levels[0] is None  # the window must fill first
    assert state.level == 0


def test_recovery_is_stepwise_after_a_sustained_good_period_with_hysteresis():
    state = LinkState(CFG, top=2)
    state.reset(level=0)
    levels, base = run(state, 0, 4, 8, 92)  # 8 %: between recover (6 %) and degrade (10 %): hold
    assert set(levels) == {None}
    levels, _ = run(state, 5, 14, 0, 50, base)
    steps = [(i, level) for i, level in enumerate(levels) if level is not None]
    assert [level for _, level in steps] == [1, 2]
    # recover_after (2 s) of good data before the first step; the window refills (2 s) before the next
    assert steps[0][0] >= 2 and steps[1][0] - steps[0][0] >= 4


def test_a_failed_probe_doubles_the_wait_and_a_held_level_resets_it():
    state = LinkState(CFG, top=1)
    state.reset(level=0)
    levels, _ = run(state, 0, 4, 0, 50)
    assert state.level == 1 and levels[-1] == 1  # stepped up at t=4
    run(state, 5, 3, 40, 60)  # the probe fails within probe_window
    assert state.level == 0 and state.recover_wait == 4.0
    levels, _ = run(state, 20, 5, 0, 50)  # 2 s to fill the window + 4 s of waiting: not yet
    assert state.level == 0 and set(levels) == {None}
    run(state, 26, 8, 0, 50)
    assert state.level == 1
    run(state, 40, 6, 0, 50)  # held for probe_window (5 s): the next probe waits the base time again
    assert state.recover_wait == 2.0


def test_window_resets_when_reports_stop_so_an_outage_is_not_acted_on_afterwards():
    state = LinkState(CFG, top=1)
    _, (lost, recv) = run(state, 0, 3, 0, 50)
    # a 5 s outage: no new report arrives
    for t in range(4, 9):
        state.window.add(float(t), lost, recv, fresh=False)
        assert state.decide(float(t)) is None
    assert state.window.loss() is None
    # the first report after the outage carries the outage's whole loss: it is the new base, not a decision
    lost += 250
    levels, _ = run(state, 9, 4, 1, 50, base=(lost, recv))
    assert set(levels) == {None} and state.level == 1 and state.last_loss is not None and state.last_loss < 0.05


def test_no_step_up_while_reports_have_paused():
    """An outage begins: the window still holds good data for `report_timeout`, but nothing new came; the level
    must not go up on it (a netem run once went to full video 1.4 s into a 5 s outage)."""
    state = LinkState(CFG, top=2)
    state.move(1)
    levels, (lost, recv) = run(state, 0, 3, 0, 50)  # good from t=2 (a full window), not yet long enough
    assert set(levels) == {None}
    for t in (4.0, 4.4):  # long enough now, but no new report since t=3 (still within report_timeout)
        state.window.add(t, lost, recv, fresh=False)
        assert state.decide(t) is None and state.level == 1
    levels, _ = run(state, 5, 0, 0, 50, base=(lost, recv))  # a report again, still good: now it goes up
    assert levels == [2]


def test_too_few_packets_means_no_decision():
    state = LinkState(CFG, top=1)
    levels, _ = run(state, 0, 6, 5, 0)  # 100 % loss, but only 10 packets per 2 s window
    assert set(levels) == {None}
    window = LossWindow(CFG)
    window.add(0, 0, 0)
    window.add(1, 1, 1)
    window.add(2, 2, 2)
    assert window.loss() is None
