"""The suite runs in two processes (Makefile `test`: pytest-xdist, `--dist loadgroup`); a test module that uses
something the whole machine shares must be in tests/conftest.py MACHINE_WIDE, so that such tests run one after
another in one worker: the cluster tests shut the machine's Redis down and start it again, and network namespaces,
HAProxy and coturn ports are the machine's."""

from __future__ import annotations

from pathlib import Path

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
