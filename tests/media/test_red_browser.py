"""RED with real Chromium (issue 15 item 3): two headless Chromium pages and one aiortc bot in a real Hub over
loopback. The hub offers red before Opus; Chromium keeps it and sends RED, the bot (aiortc, no RED) keeps Opus.
(a) the bot gets Chromium's audio as plain Opus: its aiortc receiver accepts only the Opus payload type, and the
packets are the primary blocks (about half the size of the RED packets the hub received); (b) between the two
pages RED is negotiated and forwarded unchanged: the receiving page's inbound-rtp discards every redundant copy
as a duplicate while nothing is lost, and with 10 % loss on the hub's downlink to it, recovers the lost packets
from the next packet's redundancy (received - discarded = lost)."""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser

from media import passthrough
from media.bots import Bot
from media.channels import DirectChannel
from media.recorder import RecorderParticipant
from media.sdpmunge import RED_PT
from mediation.db import Base, Database
from mediation.keyring import KeyRing
from recordings.export import export
from recordings.mkvred import RedUnwrappedStream
from recordings.reader import authorize_read
from recordings.recorder import Participant, Recorder
from recordings.storage import LocalStorage
from tests.media.chromium_peer import ChromiumPeer
from tests.media.conftest import PC_SETUP_BLOCKS, MediaSession, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90), PC_SETUP_BLOCKS]


async def chromium(browser: Browser, session: MediaSession, pid: str) -> ChromiumPeer:
    page = await (await browser.new_context()).new_page()
    peer = ChromiumPeer(page, session.hub, session.router, pid)
    await peer.join()
    return peer


def inbound_from(stats: dict[str, Any], mid: str) -> dict[str, Any]:
    return next(s for s in stats["inbound"] if s.get("mid") == mid)


async def test_chromium_sends_red_to_red_peers_and_opus_to_a_bot(browser: Browser, make_session: Any) -> None:
    session: MediaSession = make_session()
    a = await chromium(browser, session, "a")
    b = await chromium(browser, session, "b")
    await session.hub.add("bot", {"name": "bot"})
    bot = Bot("bot", session.router.attach(DirectChannel(session.hub, "bot")), session.config, video=False)
    session.bots["bot"] = bot
    await bot.join()
    hub_b = session.hub._peers["b"]  # the hub's side of b: its downlink gets 10 % loss (after gathering)
    assert hub_b.pc is not None
    assert passthrough.drop_outgoing_rtp(hub_b.pc, lambda: random.random() < 0.10) > 0

    pub_a = session.hub._peers["a"].publications["audio"]
    await wait_until(lambda: bot.receiving_from("a", ("audio",)) and pub_a.red_in > 100, within=30)
    await asyncio.sleep(3)  # a few seconds of audio everywhere
    assert not a.errors and not b.errors

    # negotiated: both pages kept red first for what they send and receive, the bot dropped it
    assert pub_a.red_pt == RED_PT and session.hub._peers["b"].publications["audio"].red_pt == RED_PT
    assert session.hub._peers["bot"].red_in is None
    for page in (a, b):
        audio_lines = [line for line in (await page.answer_sdp()).splitlines() if line.startswith("m=audio")]
        assert audio_lines and all(line.split()[3] == str(RED_PT) for line in audio_lines)

    # (a) the bot: Opus only, the primary blocks (half the size of the RED packets: one redundant copy each)
    slot_to_bot = next(s for s in session.hub._peers["bot"].slots if s.publication is pub_a)
    assert slot_to_bot.forwarder.red_payload_type is None and slot_to_bot.forwarder.packets > 100
    got = bot.received[("a", "audio")]
    assert got.frames > 100
    red_mean = pub_a.bytes_in / pub_a.packets_in
    assert got.nbytes / got.frames < 0.7 * red_mean, (got.nbytes / got.frames, red_mean)
    assert pub_a.red_malformed == 0

    # (b) a -> b: forwarded as RED under b's red payload type; b's NetEq splits it
    slot_to_b = next(s for s in hub_b.slots if s.publication is pub_a)
    assert slot_to_b.forwarder.red_payload_type == RED_PT and slot_to_b.forwarder.packets > 100
    # a's downlink is clean: every redundant copy arrives after its original and is discarded as a duplicate
    at_a = inbound_from(
        await a.stats(),
        str(
            next(
                s
                for s in session.hub._peers["a"].slots
                if s.publication is not None and s.publication.owner == "b"
            ).mid
        ),
    )
    assert at_a["packetsReceived"] > 100 and at_a["packetsDiscarded"] > 0.8 * at_a["packetsReceived"], at_a
    # b's downlink loses 10 %: the lost packets come back from the next packet's redundant copy, so fewer are
    # discarded than received by about the number lost, and little is concealed
    at_b = inbound_from(await b.stats(), str(slot_to_b.mid))
    received, discarded, lost = at_b["packetsReceived"], at_b["packetsDiscarded"], at_b["packetsLost"]
    assert lost > 5, at_b
    assert received - discarded >= 0.6 * lost, at_b
    print(
        f"\nRED a->b with 10 % loss: received {received}, lost {lost}, redundant copies discarded {discarded}, "
        f"so {received - discarded} lost packets recovered from redundancy; concealed samples "
        f"{at_b['concealedSamples']} of {at_b['totalSamplesReceived']}"
    )


async def run(*args: str, stderr: bool = False) -> str:
    done = await asyncio.to_thread(subprocess.run, args, check=True, capture_output=True, text=True)
    return done.stderr if stderr else done.stdout


@pytest.fixture
async def rec_world(tmp_path: Path) -> AsyncIterator[tuple[Database, KeyRing, LocalStorage]]:
    data = tmp_path / "data"
    data.mkdir()
    db = Database(f"sqlite+aiosqlite:///{data}/t.db")
    async with db.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    yield db, KeyRing.load_or_create(tmp_path / "keys"), LocalStorage(data / "recordings")
    await db.close()


async def test_recording_of_a_chromium_party_exports_to_playable_audio(
    browser: Browser, make_session: Any, rec_world: tuple[Database, KeyRing, LocalStorage], tmp_path: Path
) -> None:
    """(c) the recorder stores the RED it receives; the export unwraps it: Opus that plays, as long as recorded."""
    db, keyring, storage = rec_world
    session: MediaSession = make_session()
    await chromium(browser, session, "a")
    pub_a = session.hub._peers["a"].publications["audio"]
    await wait_until(lambda: pub_a.red_in > 20, within=30)
    rec = await Recorder.start(
        db=db,
        storage=storage,
        keyring=keyring,
        session_id="s1",
        case_code="QH-HX-2026-000901",
        participants=[Participant("a", "Party A", True)],
        actor="mediator:1",
        reason="all parties consented",
    )
    rp = RecorderParticipant(session.hub, rec)
    rp.start()
    await wait_until(lambda: rp.frames_from.get("a", 0) > 200, within=30)  # ~4 s of 20 ms packets
    doc = await rp.stop("session ended", actor="mediator:1")
    stream = next(st for st in doc["manifest"]["streams"] if st["source_id"] == "a")

    key = await authorize_read(db, keyring, rec.recording_id, actor="test", reason="check the recording")
    reader = RedUnwrappedStream(storage, key, rec.recording_id, stream["stream_id"])
    async for _ in reader:
        pass
    assert (
        reader.filter is not None and reader.filter.red > 150 and reader.filter.malformed == 0
    )  # stored as RED

    out = tmp_path / "raw.mkv"
    await export(db, storage, keyring, rec.recording_id, out, actor="judge:3", reason="review", raw=True)
    probe = json.loads(
        await run(
            "ffprobe",
            "-v",
            "error",
            "-show_streams",
            "-show_format",
            "-count_packets",
            "-of",
            "json",
            str(out),
        )
    )
    audio = next(st for st in probe["streams"] if st["codec_type"] == "audio")
    assert audio["codec_name"] == "opus" and int(audio["nb_read_packets"]) >= reader.filter.red
    recorded_s = doc["manifest"]["duration_ms"] / 1000
    assert abs(float(probe["format"]["duration"]) - recorded_s) < 1.0, (probe["format"], recorded_s)
    report = await run(
        "ffmpeg", "-v", "info", "-i", str(out), "-af", "volumedetect", "-vn", "-f", "null", "-", stderr=True
    )
    assert "Invalid data" not in report and "Error while decoding" not in report, report[-2000:]
    mean = float(report.split("mean_volume:")[1].split("dB")[0])
    assert mean > -40, report[-800:]  # the page's 440 Hz tone, decoded (silence is -91 dB)
    print(
        f"\nrecorded {reader.filter.red} RED packets of Chromium's audio ({recorded_s:.1f} s); the export: "
        f"{audio['nb_read_packets']} Opus packets, {float(probe['format']['duration']):.2f} s, mean volume {mean} dB"
    )
