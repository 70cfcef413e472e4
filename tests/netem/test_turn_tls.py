"""TURN that works (issue 15 item 5): a party behind a firewall that blocks UDP and opens only TCP 443 (and the
signaling port, which is HTTPS on 443 in production) joins through coturn over TLS on 443 and media flows.

coturn (Debian package) listens on the emulator's outer address with a self-signed certificate whose CA is given
to the bots through `Settings.turn_ca_file`/`MediaConfig.turn_ca_file`. The server's settings list the UDP TURN URL
first on purpose: `media:ice` orders `turns:` 443 first, which is the one aiortc (using only the first TURN URL)
can use. The party's bot makes its peer connection only after `media:ice` arrived. Before/after in the same run:
ICE gathering behind that firewall with the UDP URL first (as configured) and with the order `media:ice` gives.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection

from media import internals as ix
from media import passthrough
from media.bots import Bot
from media.channels import SocketIOChannel
from media.config import MediaConfig
from media.turn import turn_credentials
from signaling.app import create_app
from signaling.client import SessionClient
from signaling.config import Settings
from signaling.services import SERVICES
from tests.conftest import World, seed
from tests.media.conftest import PC_SETUP_BLOCKS, wait_until
from tests.netem.harness import LinkEmulator, NamespaceThread, emulated_link, netem_available

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.slow,
    PC_SETUP_BLOCKS,
    pytest.mark.skipif(netem_available() is not None, reason=str(netem_available())),
    pytest.mark.skipif(shutil.which("turnserver") is None, reason="coturn is not installed (make system-deps)"),
]
SECRET = "netem-turn-secret"
UDP = 17


@pytest.fixture
def emulator() -> Iterator[LinkEmulator]:
    with emulated_link("od15t", 79) as emu:
        yield emu


@pytest.fixture
def coturn(emulator: LinkEmulator, tmp_path: Path) -> Iterator[dict[str, str]]:
    ip = emulator.outer_address
    cert, key = tmp_path / "turn-cert.pem", tmp_path / "turn-key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=turn.test", "-addext", f"subjectAltName=IP:{ip}"],
                   check=True, capture_output=True)
    log = tmp_path / "turnserver.log"
    proc = subprocess.Popen(
        ["turnserver", "-n", "--no-cli", f"--listening-ip={ip}", f"--relay-ip={ip}", "--listening-port=3478",
         "--tls-listening-port=443", "--use-auth-secret", f"--static-auth-secret={SECRET}", "--realm=onedoor.test",
         f"--cert={cert}", f"--pkey={key}", "--no-dtls", "--no-multicast-peers", "--min-port=49160",
         "--max-port=49400", f"--log-file={log}", "--simple-log", "--no-stdout-log", f"--pidfile={tmp_path}/t.pid",
         f"--db={tmp_path}/turndb"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # listening on 443 once the log says so
            if log.exists() and "443" in log.read_text(errors="replace") and proc.poll() is None:
                break
            time.sleep(0.1)
        time.sleep(0.5)
        if proc.poll() is not None:
            raise RuntimeError(f"turnserver exited: {log.read_text(errors='replace')[-2000:] if log.exists() else ''}")
        yield {"ip": ip, "ca": str(cert), "log": str(log)}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
async def turn_world(aiohttp_server: Any, settings: Settings, emulator: LinkEmulator, coturn: dict[str, str]
                     ) -> AsyncIterator[World]:
    ip = coturn["ip"]
    settings.turn_secret = SECRET
    settings.turn_urls = [f"turn:{ip}:3478", f"turns:{ip}:443?transport=tcp"]  # UDP first, as people write it
    settings.turn_ca_file = coturn["ca"]
    app = create_app(settings)
    server = await aiohttp_server(app, host=ip)
    sv = app[SERVICES]
    w = World(str(server.make_url("")).rstrip("/"), sv)
    seeded = await seed(sv)
    w.case_code, w.session_id, w.tokens, w.invite_ids = (seeded["case"], seeded["session"], seeded["tokens"],
                                                         seeded["ids"])
    yield w
    for c in w.clients:
        await c.close()


async def _gather(urls: list[str], creds: dict[str, Any], ca: str) -> dict[str, Any]:
    """aiortc's own gathering with these TURN URLs in this order (what a client without our ordering does)."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[
        RTCIceServer(urls=urls, username=creds["username"], credential=creds["credential"])]))
    try:
        pc.addTransceiver("audio")
        context = MediaConfig(turn_ca_file=ca).turn_tls_context()
        assert context is not None
        passthrough.set_turn_tls_context(pc, context)
        t0 = time.monotonic()
        await pc.setLocalDescription(await pc.createOffer())
        return {"gathering_s": round(time.monotonic() - t0, 2),
                "relay_candidates": pc.localDescription.sdp.count("typ relay")}
    finally:
        await pc.close()


async def test_party_behind_udp_blocking_firewall_joins_through_turn_tls_443(
    turn_world: World, emulator: LinkEmulator, coturn: dict[str, str]
) -> None:
    w = turn_world
    port = int(w.base_url.rsplit(":", 1)[1])
    emulator.both(allow=[443, port], drop_protocols=[UDP])  # only TCP 443 (+ signaling) gets through
    ns = NamespaceThread(emulator.ns, "party-b")
    await ns.start()
    b_side: dict[str, Any] = {}
    bots: list[Bot] = []
    figures: dict[str, Any] = {}

    async def b_join() -> str:
        c = b_side["client"] = SessionClient(w.base_url)
        await c.join_invite(w.tokens["B"])
        await w.ready(c, "B")
        return c.pid

    async def b_media() -> dict[str, Any]:
        c: SessionClient = b_side["client"]
        bot = b_side["bot"] = Bot(c.pid, SocketIOChannel(c.sio), MediaConfig(turn_ca_file=coturn["ca"]))
        t0 = time.monotonic()
        await bot.join()
        assert bot.pc is not None
        return {"ice_servers": bot.ice_servers, "join_s": round(time.monotonic() - t0, 2)}

    async def b_pair() -> dict[str, Any]:
        bot: Bot = b_side["bot"]
        assert bot.pc is not None
        ice = bot.pc.getTransceivers()[0].receiver.transport.transport
        pair = ix.get(ix.get(ice, ix.ICE_CONNECTION), ix.CONNECTION_NOMINATED).get(1)
        return {"state": bot.pc.connectionState,
                "local": None if pair is None else pair.local_candidate.type,
                "received": bot.snapshot()}

    async def b_close() -> None:
        if "bot" in b_side:
            await b_side["bot"].close()
        if "client" in b_side:
            await b_side["client"].close()

    ns.on_stop = b_close
    try:
        creds = turn_credentials(SECRET, 600, "probe", [])
        ip = coturn["ip"]
        as_configured = [f"turn:{ip}:3478", f"turns:{ip}:443?transport=tcp"]
        figures["gathering_udp_url_first"] = await ns.run(lambda: _gather(as_configured, creds, coturn["ca"]))
        figures["gathering_turns_443_first"] = await ns.run(
            lambda: _gather(list(reversed(as_configured)), creds, coturn["ca"]))

        m = await w.staff("mediator")
        b_pid = await ns.run(b_join)
        await m.call("lobby:admit-all")
        bots.append(Bot(m.pid, SocketIOChannel(m.sio)))
        await bots[0].join()
        joined = await ns.run(b_media)
        figures["b_join"] = joined
        urls = joined["ice_servers"][0]["urls"]
        assert urls[0] == f"turns:{ip}:443?transport=tcp"  # media:ice put the usable URL first
        await wait_until(lambda: bots[0].receiving_from(b_pid), within=40)  # B -> m through the relay

        async def b_receives() -> bool:
            return bool(b_side["bot"].receiving_from(m.pid))

        deadline = time.monotonic() + 40
        while not await ns.run(b_receives):
            assert time.monotonic() < deadline, "B receives nothing from the mediator"
            await asyncio.sleep(0.2)
        pair = await ns.run(b_pair)
        figures["b_pair"] = {"state": pair["state"], "local_candidate": pair["local"]}
        link = emulator.stats()
        figures["firewall"] = {d: {k: link[d][k] for k in ("packets_out", "filtered")} for d in link}
        print("\nTURN FIGURES " + json.dumps(figures, indent=1))
        assert pair["state"] == "connected" and pair["local"] == "relay"
        assert figures["gathering_turns_443_first"]["relay_candidates"] >= 1
        assert figures["gathering_udp_url_first"]["relay_candidates"] == 0  # what the order fixes
        assert link["up"]["filtered"] > 0  # the firewall did block something (UDP)
    finally:
        for bot in bots:
            await bot.close()
        await ns.close()
