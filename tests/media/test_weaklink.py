import pytest

from media.config import MediaConfig
from media.weaklink import DEGRADE, RECOVER, LossWindow

pytestmark = pytest.mark.timeout(10)

CFG = MediaConfig(loss_window=2.0, recover_after=2.0, loss_min_packets=20)


def feed(w: LossWindow, t0: float, seconds: int, lost_per_s: int, recv_per_s: int, base=(0, 0)):
    lost, recv = base
    decisions = []
    for i in range(seconds + 1):
        w.add(t0 + i, lost, recv)
        decisions.append(w.decide(t0 + i, degraded=False))
        lost += lost_per_s
        recv += recv_per_s
    return decisions, (lost, recv)


def test_sustained_loss_degrades_and_brief_loss_does_not():
    w = LossWindow(CFG)
    decisions, _ = feed(w, 0, 10, 2, 98)  # 2 % loss
    assert DEGRADE not in decisions
    w = LossWindow(CFG)
    decisions, _ = feed(w, 0, 10, 30, 70)  # 30 % loss
    assert decisions.count(DEGRADE) >= 1 and decisions[0] is None


def test_recovery_needs_sustained_good_period():
    w = LossWindow(CFG)
    lost, recv, t = 0, 0, 0.0
    out = []
    for _ in range(8):
        w.add(t, lost, recv)
        out.append(w.decide(t, degraded=True))
        t += 1
        recv += 50
    assert RECOVER in out
    assert out.index(RECOVER) >= 4  # window filled (2 s) plus recover_after (2 s)


def test_too_few_packets_means_no_decision():
    w = LossWindow(CFG)
    decisions, _ = feed(w, 0, 6, 5, 0)  # 100 % loss, but only 10 packets per 2 s window
    assert set(decisions) == {None}
    w = LossWindow(CFG)
    decisions, _ = feed(w, 0, 6, 1, 1)
    assert set(decisions) == {None}
