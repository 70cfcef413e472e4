"""Which local addresses media is offered on (media/config.py HostAddressPolicy, `onedoor serve --ice-network/
--ice-exclude`; tests/hostaddrs.py for the test processes).

Found with three test workers: a clean bot's peer connection with the hub had settled on a veth address of
another worker's cluster test; when that test removed its veths the bot's media stopped for good (aioice never
moves to another candidate pair). Here a real veth pair comes and goes beside a real hub and bot: under the
policy its address is never offered, and the media outlives the interface."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aioice
import pytest

from media.bots import Bot
from media.config import HostAddressPolicy
from media.passthrough import host_address_policy
from signaling.client import SessionClient, join_everyone, start_demo_server
from tests import hostaddrs
from tests.cluster.test_metrics import free_port
from tests.media.conftest import PC_SETUP_BLOCKS, MediaSession, wait_until

VETH = ("odhaddr0", "odhaddr1")
ADDRESS = "10.76.252.1"  # in the cluster rig's range; the cluster tests take 10.76.1-250 (the same group)


def test_policy_allows_includes_and_excludes() -> None:
    p = HostAddressPolicy.parse(include=["192.0.2.0/24", "fd00::/64"], exclude=["192.0.2.128/25"])
    assert p.allows("192.0.2.2") and p.allows("fd00::2") and p.allows("fd00::2%eth0")
    assert not p.allows("192.0.2.200") and not p.allows("10.0.0.1") and not p.allows("fe80::1")
    assert HostAddressPolicy().allows("10.76.1.1")  # no policy: every address (aioice's own choice)
    with pytest.raises(ValueError):
        HostAddressPolicy.parse(exclude=["10.76.0.0/33"])


def test_own_network_is_cut_out_of_the_excluded_ranges() -> None:
    p = HostAddressPolicy.parse(exclude=["10.76.0.0/16", "10.77.0.0/16"]).but_not("10.77.33.0/24")
    assert p.allows("10.77.33.1") and p.allows("10.77.33.2")
    assert not p.allows("10.77.34.1") and not p.allows("10.76.33.1")
    assert p.but_not("10.0.0.0/8").exclude == ()  # a network that covers them all lifts them all


def test_serve_refuses_a_malformed_network() -> None:
    r = subprocess.run([sys.executable, "-m", "signaling.cli", "serve", "--ice-exclude", "10.76.0.0/33"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "not a network (CIDR such as 192.0.2.0/24): '10.76.0.0/33'" in r.stderr


@pytest.fixture
def veth() -> Iterator[str]:
    """A veth pair whose host end has ADDRESS, as a container's or a test rig's would; removed afterwards."""
    if shutil.which("ip") is None or subprocess.run(["ip", "link", "show"], capture_output=True).returncode:
        pytest.skip("no 'ip' command")
    subprocess.run(["ip", "link", "del", VETH[0]], capture_output=True)  # left by a killed run
    made = subprocess.run(["ip", "link", "add", VETH[0], "type", "veth", "peer", "name", VETH[1]],
                          capture_output=True, text=True)
    if made.returncode:
        pytest.skip(f"cannot make a veth pair here: {made.stderr.strip()}")
    try:
        subprocess.run(["ip", "addr", "add", f"{ADDRESS}/30", "dev", VETH[0]], check=True)
        subprocess.run(["ip", "link", "set", VETH[0], "up"], check=True)
        yield ADDRESS
    finally:
        subprocess.run(["ip", "link", "del", VETH[0]], capture_output=True)


def _candidates(sdp: str) -> set[str]:
    return set(re.findall(r"a=candidate:\S+ \d+ udp \d+ (\S+) \d+ typ host", sdp))


@PC_SETUP_BLOCKS
async def test_media_outlives_an_interface_the_policy_leaves_out(veth: str, make_session) -> None:
    assert host_address_policy() == hostaddrs.TEST_POLICY  # tests/conftest.py installed it
    session: MediaSession = make_session()
    a = await session.join("a")
    b = await session.join("b")
    await session.flowing(within=20)
    offered = {pid: _candidates(peer.pc.localDescription.sdp) for pid, peer in session.hub._peers.items()
               if peer.pc is not None and peer.pc.localDescription is not None}
    assert offered and all(addrs and veth not in addrs for addrs in offered.values()), offered

    # the interface goes away mid-session
    await asyncio.to_thread(subprocess.run, ["ip", "link", "del", VETH[0]], check=True)
    since = [b.received[("a", "camera")].packets, a.received[("b", "audio")].packets]
    await wait_until(lambda: b.received[("a", "camera")].packets > since[0] + 60
                     and a.received[("b", "audio")].packets > since[1] + 100, within=20)



@PC_SETUP_BLOCKS
async def test_gathering_offers_the_interface_only_where_the_policy_allows_it(veth: str) -> None:
    async def gathered() -> set[str]:
        connection = aioice.Connection(ice_controlling=True, components=1)
        await connection.gather_candidates()
        hosts = {c.host for c in connection.local_candidates}
        await connection.close()
        assert hosts  # the machine's own address at least
        return hosts

    assert veth not in await gathered()
    with hostaddrs.own("10.76.252.0/24"):  # a rig's own network is offered (while the rig lives)
        assert veth in await gathered()
    assert veth not in await gathered()


@PC_SETUP_BLOCKS
@pytest.mark.timeout(330)  # the demo (<= 120 s), the server up (<= 30 s), the session (<= 150 s)
async def test_serve_offers_no_media_on_an_excluded_network(veth: str, tmp_path: Path) -> None:
    """`onedoor serve --ice-exclude`: the node's own process (no test policy there) offers no host candidate in
    the excluded network (without the option it offers the veth's address), and the media flows on the others."""
    # (the other rigs' ranges are left out too: the link emulator's veths come and go in another worker)
    began = time.monotonic()
    phases: list[tuple[str, float]] = []  # printed on failure: it hung here twice under load (120 s, no bound hit)
    srv = await start_demo_server(tmp_path / "data", free_port(), "--ice-exclude", "10.76.252.0/24",
                                  *hostaddrs.serve_options("10.76.0.0/16"))
    phases.append(("demo and serve up", time.monotonic() - began))
    clients: list[SessionClient] = []
    bots: list[Bot] = []
    try:
        async with asyncio.timeout(150):  # (inside pytest-timeout's bound, so that the phases get printed)
            await join_everyone(srv, clients, bots)
            phases.append(("everyone joined", time.monotonic() - began))
            await wait_until(lambda: all(len(b.received) >= 2 for b in bots), within=30)  # media from the others
            phases.append(("media from the others", time.monotonic() - began))
        offered = set().union(*(_candidates(b.pc.remoteDescription.sdp) for b in bots
                                if b.pc is not None and b.pc.remoteDescription is not None))
        assert offered and veth not in offered, offered
    except BaseException:
        print(f"phases (s since start): {phases}; joined bots: {len(bots)}, clients {len(clients)}; "
              f"load {os.getloadavg()[0]:.1f}\nserver log:\n{srv.log_tail()}")
        raise
    finally:
        # each close bounded: once (CI, 2026-12-01) the test hung here past its 330 s with the body done and the
        # loop idle (no phase printed). The test's own peers' teardown is not what it checks: what does not close
        # in time is printed with the tasks still pending (they are cancelled with the loop), and the test goes on
        for what, closing in [*((f"bot {b.pid}", b.close) for b in bots), *((f"client {i}", c.close)
                                                                           for i, c in enumerate(clients))]:
            try:
                async with asyncio.timeout(20):
                    await closing()
            except TimeoutError:
                pending = [t.get_coro() for t in asyncio.all_tasks() if t is not asyncio.current_task()]
                print(f"{what} did not close within 20 s (phases {phases}); pending tasks: {pending}")
        stopping = time.monotonic()
        srv.process.terminate()
        try:
            async with asyncio.timeout(90):  # aiohttp's graceful shutdown waits up to 60 s for open connections
                await srv.process.wait()
        except TimeoutError:
            srv.process.kill()
            await srv.process.wait()
            raise AssertionError(f"the server did not stop within 90 s of SIGTERM:\n{srv.log_tail()}") from None
        print(f"phases: {phases}; the server stopped {time.monotonic() - stopping:.1f} s after SIGTERM")
