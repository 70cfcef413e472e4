"""The suite runs in two processes (Makefile `test`: pytest-xdist, `--dist loadgroup`); a test module that uses
something the whole machine shares must be in tests/conftest.py MACHINE_WIDE, so that such tests run one after
another in one worker: the cluster tests shut the machine's Redis down and start it again, and network namespaces,
HAProxy and coturn ports are the machine's."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import MACHINE_WIDE

ROOT = Path(__file__).resolve().parent.parent
SHARED = ("6379", "ip netns", "\"netns\"", "haproxy", "turnserver")


def test_every_module_using_machine_wide_resources_is_grouped() -> None:
    users = sorted(
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "tests").rglob("*.py")
        if p.name.startswith("test_") and any(word in p.read_text(encoding="utf-8") for word in SHARED)
    )
    assert users, "the scan found none: the markers above are stale"
    ungrouped = [u for u in users if not u.startswith(MACHINE_WIDE) and u != "tests/test_machine_wide.py"]
    assert ungrouped == [], f"add these to tests/conftest.py MACHINE_WIDE: {ungrouped}"


def test_the_group_takes_effect_in_workers(request: pytest.FixtureRequest) -> None:
    """Under `--dist loadgroup` each worker marks grouped tests by a nodeid suffix the scheduler reads; pytest 9.2
    silently stopped that (pytest-xdist issue #1386), which is why pyproject.toml keeps pytest below 9.2."""
    if not getattr(request.config.option, "loadgroup", False):
        pytest.skip("not running in pytest-xdist workers with --dist loadgroup")
    grouped = [i.nodeid for i in request.session.items
               if i.path.relative_to(ROOT).as_posix().startswith(MACHINE_WIDE)]
    assert grouped and all(n.endswith("@machine") for n in grouped), grouped[:5]
