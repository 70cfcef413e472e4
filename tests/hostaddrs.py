"""ICE host addresses in the test processes (media/config.py HostAddressPolicy).

Test rigs add and remove addresses on this machine while other workers' tests run: the cluster tests' veth pairs
(10.76.k.0/24, tests/cluster/test_balancer.py) and the link emulator's (10.77-10.82.n.0/24, tests/netem/
harness.py). aioice offers every local address as a host candidate, so an in-process hub and bot could settle
on a rig address of ANOTHER test, which vanishes when that test ends: the media of that participant then stops
for good (seen with three workers: the clean mediator bot of the weak-link test lost all media when the
simulate test of the other group removed its veths). So every test process offers no rig address except those
of its own rig, for the rig's lifetime (`own`), and the servers they start as processes are told the same
(`serve_options`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from media.config import HostAddressPolicy
from media.passthrough import host_address_policy, restrict_host_addresses

RIGS = ("10.76.0.0/16", "10.77.0.0/16", "10.78.0.0/15", "10.80.0.0/15", "10.82.0.0/16")
TEST_POLICY = HostAddressPolicy.parse(exclude=RIGS)


def serve_options(*but: str) -> list[str]:
    """`onedoor serve` options for a server process a test starts (it has no test policy of its own): no host
    candidate on any rig's addresses but those of the rigs in `but` (the test's own, or one it tests)."""
    return [arg for rig in RIGS if rig not in but for arg in ("--ice-exclude", rig)]


def install() -> None:
    restrict_host_addresses(TEST_POLICY)


@contextmanager
def own(*networks: str) -> Iterator[None]:
    """While inside: this process also offers addresses in `networks` (its own rig's)."""
    before = host_address_policy()
    policy = before
    for network in networks:
        policy = policy.but_not(network)
    restrict_host_addresses(policy)
    try:
        yield
    finally:
        restrict_host_addresses(before)
