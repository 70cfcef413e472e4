import pytest
from hypothesis import given
from hypothesis import strategies as st

from media.errors import CaucusConflict, UnknownParticipant
from media.routing import RoutingTable
from mediation.errors import OneDoorError

pytestmark = pytest.mark.timeout(10)


def table(*pids: str) -> RoutingTable:
    t = RoutingTable()
    for p in pids:
        t.add(p)
    return t


def test_joint_session_everyone_hears_everyone_but_self():
    t = table("m", "a", "b", "rec")
    for pub in t.participants:
        for sub in t.participants:
            assert t.may_forward(pub, sub) == (pub != sub)
            assert t.may_forward(pub, sub, "video") == (pub != sub)


def test_caucus_blocks_both_directions_and_closing_restores():
    t = table("m", "a", "b", "rec")
    t.open_caucus("side-a", ["m", "a"])
    assert t.may_forward("m", "a") and t.may_forward("a", "m")
    for member in ("m", "a"):
        for outsider in ("b", "rec"):
            assert not t.may_forward(member, outsider)
            assert not t.may_forward(outsider, member, "video")
    assert t.may_forward("b", "rec")  # the recorder stays in the joint session with b
    assert t.close_caucus("side-a") == {"m", "a"}
    assert t.may_forward("a", "b") and t.may_forward("m", "rec")


def test_private_talk_is_the_same_mechanism_and_two_caucuses_are_isolated():
    t = table("m", "psy", "a", "b")
    t.open_caucus("psy-a", ["psy", "a"])
    t.open_caucus("mediator-b", ["m", "b"])
    assert t.may_forward("psy", "a") and t.may_forward("m", "b")
    assert not t.may_forward("psy", "b") and not t.may_forward("m", "a")
    assert t.caucus_of("a") == "psy-a" and t.caucus_of("m") == "mediator-b"


def test_caucus_errors():
    t = table("m", "a", "b")
    t.open_caucus("x", ["m", "a"])
    with pytest.raises(CaucusConflict):
        t.open_caucus("x", ["b"])
    with pytest.raises(CaucusConflict) as exc:
        t.open_caucus("y", ["a", "b"])
    assert exc.value.detail["members"] == ["a"]
    with pytest.raises(UnknownParticipant):
        t.open_caucus("z", ["nobody"])
    with pytest.raises(CaucusConflict):
        t.close_caucus("nope")
    with pytest.raises(OneDoorError):
        t.open_caucus("empty", [])


def test_audio_only_stops_video_to_that_subscriber_only():
    t = table("m", "a", "b")
    assert t.set_audio_only("b", True)
    assert not t.set_audio_only("b", True)
    assert t.may_forward("a", "b", "audio") and not t.may_forward("a", "b", "video")
    assert t.may_forward("b", "a", "video")
    t.set_audio_only("b", False)
    assert t.may_forward("a", "b", "video")


def test_leaving_member_leaves_caucus_and_empty_caucus_closes():
    t = table("m", "a", "b")
    t.open_caucus("x", ["a"])
    v = t.version
    t.remove("a")
    assert t.caucuses() == {} and t.version > v
    t.add("a")
    assert t.may_forward("a", "b")


@given(
    st.sets(st.sampled_from("abcdefg"), min_size=1),
    st.sampled_from("abcdefg"),
    st.sampled_from("abcdefg"),
)
def test_may_forward_is_symmetric_and_matches_group_membership(members, x, y):
    t = table(*"abcdefg")
    t.open_caucus("c", members)
    same_group = (x in members) == (y in members)
    assert t.may_forward(x, y) == t.may_forward(y, x) == (same_group and x != y)
