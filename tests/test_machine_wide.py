"""The suite runs in several processes (Makefile `test`: pytest-xdist, `--dist loadgroup`); a test module that uses
something the whole machine shares must be in a group of tests/conftest.py MACHINE_WIDE, so that such tests run one
after another in one worker: the cluster tests shut the machine's Redis down and start it again ("stores": every
Redis user), and network namespaces, HAProxy and coturn ports are the machine's (either group: each keeps its own
namespace names and address ranges)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import MACHINE_WIDE

ROOT = Path(__file__).resolve().parent.parent
STORES = ("6379", "redis-server", "haproxy", "\"veth\"")  # must be in "stores" (veth pairs: 10.76.*)
SHARED = (*STORES, "ip netns", "\"netns\"", "turnserver")  # must be in a group


def _users(words: tuple[str, ...]) -> list[str]:
    return sorted(
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "tests").rglob("*.py")
        if p.name.startswith("test_") and p.name != "test_machine_wide.py"
        and any(word in p.read_text(encoding="utf-8") for word in words)
    )


def test_every_module_using_machine_wide_resources_is_grouped() -> None:
    everything = tuple(prefix for prefixes in MACHINE_WIDE.values() for prefix in prefixes)
    users, store_users = _users(SHARED), _users(STORES)
    assert users and store_users, "the scan found none: the markers above are stale"
    assert [u for u in users if not u.startswith(everything)] == [], "add these to tests/conftest.py MACHINE_WIDE"
    assert [u for u in store_users if not u.startswith(MACHINE_WIDE["stores"])] == [], \
        "add these to MACHINE_WIDE['stores']: they share the Redis the cluster tests restart"


def test_the_group_takes_effect_in_workers(request: pytest.FixtureRequest) -> None:
    """Under `--dist loadgroup` each worker marks grouped tests by a nodeid suffix the scheduler reads; pytest 9.2
    silently stopped that (pytest-xdist issue #1386), which is why pyproject.toml keeps pytest below 9.2."""
    if not getattr(request.config.option, "loadgroup", False):
        pytest.skip("not running in pytest-xdist workers with --dist loadgroup")
    grouped = [(group, i.nodeid) for group, prefixes in MACHINE_WIDE.items() for i in request.session.items
               if i.path.relative_to(ROOT).as_posix().startswith(prefixes)]
    if not grouped:
        pytest.skip("no grouped test collected in this run")
    assert [n for group, n in grouped if not n.endswith(f"@{group}")] == []


def test_the_real_time_tests_are_the_links_group(request: pytest.FixtureRequest) -> None:
    """`make test` runs the tests marked `realtime` alone after the rest (`-m "not realtime"`, then `-m realtime`):
    exactly the "links" group, so none is run twice or left out."""
    links = MACHINE_WIDE["links"]
    wrong = [i.nodeid for i in request.session.items
             if i.path.relative_to(ROOT).as_posix().startswith(links) != (i.get_closest_marker("realtime") is not None)]
    assert wrong == []
