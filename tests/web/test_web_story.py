"""The whole story as far as the server supports it, in real Chromium with fake camera and microphone:
a mediator logs in, opens a case, schedules a session and reads the invite links; two parties open their links in
their own browser contexts, pass the identity check, acknowledge the notices, consent and wait; the mediator admits
them; every page decodes the others' video; a caucus with side A cuts B off from A and the mediator (R7); after a
network drop B's page rejoins by itself with a new peer connection (P5)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests.conftest import PASSWORD, World
from tests.web.helpers import Opener, shot
from tests.web.test_web_party import party_through_lobby

pytestmark = pytest.mark.browser

# Per remote participant: bytes and decoded frames received on this page's one RTCPeerConnection.
INBOUND = """async () => {
  const od = window.__onedoor;
  const out = {};
  if (!od || !od.pc) return out;
  const stats = await od.pc.getStats();
  stats.forEach((s) => {
    if (s.type !== "inbound-rtp") return;
    const info = od.media.tracks[s.mid];
    if (!info || !info.participant) return;
    const o = out[info.participant] || (out[info.participant] = {bytes: 0, frames: 0, audio: 0, video: 0});
    o.bytes += s.bytesReceived || 0;
    if (s.kind === "video") { o.frames += s.framesDecoded || 0; o.video += s.bytesReceived || 0; }
    else o.audio += s.bytesReceived || 0;
  });
  return out;
}"""


async def inbound(page: Page) -> dict[str, Any]:
    return await page.evaluate(INBOUND)


async def wait_frames_grow(page: Page, senders: set[str], within: float = 20) -> None:
    """Wait until this page decodes video from each sender, and the count keeps growing."""
    async with asyncio.timeout(within):
        while True:
            first = await inbound(page)
            if senders <= {p for p, v in first.items() if v["frames"] > 0 and v["audio"] > 0}:
                break
            await asyncio.sleep(0.3)
        await asyncio.sleep(1.0)
        later = await inbound(page)
    for p in senders:
        assert later[p]["frames"] > first[p]["frames"], f"video from {p} stopped"


async def growth(page: Page, seconds: float = 1.5, kind: str = "bytes") -> dict[str, int]:
    a = await inbound(page)
    await asyncio.sleep(seconds)
    b = await inbound(page)
    return {p: b[p][kind] - a.get(p, {}).get(kind, 0) for p in b}


async def mediator_opens_case(page: Page) -> dict[str, dict[str, str]]:
    await page.fill("#username", "mediator")
    await page.fill("#password", PASSWORD)
    await page.get_by_role("button", name="登录").click()
    await expect(page.get_by_role("heading", name="案件列表")).to_be_visible()
    await page.get_by_role("link", name="新建案件").first.click()
    await page.fill("#case-title", "宅基地边界纠纷")
    await page.select_option("[name=category]", "land")
    await page.select_option("[name=channel]", "walk_in")
    rows = page.locator(".person-row")
    await rows.nth(0).locator("[name=name]").fill("王五")
    await rows.nth(0).locator("[name=phone]").fill("13900000001")
    await rows.nth(1).locator("[name=name]").fill("赵六")
    await rows.nth(1).locator("[name=phone]").fill("13900000002")
    await shot(page, "story-1-intake")
    await page.get_by_role("button", name="登记案件").click()
    await expect(page.locator("#stage")).to_contain_text("受理")
    await page.get_by_role("button", name="安排并生成邀请").click()
    invites = page.locator(".invite[data-role=party]")
    await expect(invites).to_have_count(2)
    await shot(page, "story-2-invites")
    out = {}
    for i in range(2):
        inv = invites.nth(i)
        name = (await inv.locator("strong").inner_text()).split(" · ")[0]
        out[name] = {"link": await inv.locator("a.invite-link").get_attribute("href") or "",
                     "invite": await inv.get_attribute("data-invite") or ""}
    return out


@pytest.mark.timeout(90)
async def test_whole_story_in_the_browser(web_world: World, open_page: Opener) -> None:
    med = await open_page(f"{web_world.base_url}/console")
    invites = await mediator_opens_case(med)
    assert set(invites) == {"王五", "赵六"}
    await med.get_by_role("link", name="以主持人身份进入").click()
    await expect(med.locator("#lobby")).to_be_visible()

    a = await open_page(invites["王五"]["link"], viewport={"width": 400, "height": 800})
    b = await open_page(invites["赵六"]["link"], viewport={"width": 400, "height": 800})
    for name in ("王五", "赵六"):
        web_world.invite_ids[name] = int(invites[name]["invite"])
    # A takes the one-time code; B asks the mediator to check an ID document (R5, both built-in verifiers).
    await party_through_lobby(a, web_world, "王五")
    await party_through_lobby(b, web_world, "赵六", attestation=True)
    await expect(b.locator("[data-step=lobby] .notice")).to_contain_text("调解员会请您把身份证件对着摄像头")
    b_row = med.locator("#lobby tr", has_text="赵六")
    await expect(b_row).to_have_attribute("data-ready", "false")
    await b_row.get_by_role("button", name="证件与本人一致").click()
    await expect(med.locator("#lobby tr[data-ready=true]")).to_have_count(2)
    await shot(med, "story-3-lobby")
    await med.click("#admit-all")
    for page in (a, b):
        await expect(page.locator("#btn-mute")).to_be_visible()

    # Everyone consented: the mediator starts the recording and every page shows it.
    await med.click("#recording-start")
    for page in (med, a, b):
        await expect(page.locator("#rec")).to_have_text("正在录音录像")

    ids = await med.evaluate("window.__onedoor.state.participants.map(p => [p.name, p.id])")
    pid = {name: i for name, i in ids}
    mediator = pid["mediator"]
    await wait_frames_grow(med, {pid["王五"], pid["赵六"]})
    await wait_frames_grow(a, {mediator, pid["赵六"]})
    await wait_frames_grow(b, {mediator, pid["王五"]})
    for page, name in ((med, "story-4-mediator"), (a, "story-4-party-a"), (b, "story-4-party-b")):
        await shot(page, name)

    # Hands, chat, muting others.
    await a.click("#btn-hand")
    await expect(med.locator(f"#people li[data-participant={pid['王五']}]")).to_contain_text("举手")
    await a.fill(".chat-form input", "我同意先修好漏水的管子")
    await a.press(".chat-form input", "Enter")
    for page in (med, b):
        await expect(page.locator(".chat-list")).to_contain_text("我同意先修好漏水的管子")
    await med.click(f"#mute-{pid['赵六']}")
    await expect(b.locator(".session .notice")).to_contain_text("已将您静音")
    await expect(b.locator("#btn-mute")).to_have_text("取消静音")

    # Audio only (P5): A stops receiving video but still hears everyone; switching back brings video back.
    await a.click("#btn-audio-only")
    await expect(a.locator("#btn-audio-only")).to_have_attribute("aria-pressed", "true")
    await asyncio.sleep(1.0)
    video, audio = await growth(a, kind="video"), await growth(a, seconds=0.8, kind="audio")
    assert video.get(mediator, 0) == 0 and video.get(pid["赵六"], 0) == 0, video
    assert audio[mediator] > 0, audio
    await a.click("#btn-audio-only")
    await wait_frames_grow(a, {mediator, pid["赵六"]})

    # Caucus with side A: B receives nothing from A or the mediator; A still hears the mediator.
    await med.click("#caucus-side-A")
    await expect(b.locator(".caucus.outside")).to_contain_text("单独谈话")
    await asyncio.sleep(1.0)  # in-flight media drains
    got_b, got_a = await asyncio.gather(growth(b), growth(a))
    assert got_b.get(pid["王五"], 0) == 0 and got_b.get(mediator, 0) == 0, got_b
    assert got_a[mediator] > 0
    await a.fill(".chat-form input", "这是只给调解员说的")  # chat inside a caucus stays inside (R9)
    await a.press(".chat-form input", "Enter")
    await expect(med.locator(".chat-list li.private")).to_contain_text("这是只给调解员说的")
    await shot(b, "story-5-caucus-party-b")
    await shot(med, "story-5-caucus-mediator")

    # Back to the joint session: B gets A and the mediator again.
    await med.click("#caucus-close")
    await expect(b.locator(".caucus")).to_be_hidden()
    assert "这是只给调解员说的" not in await b.locator(".chat-list").inner_text()
    await wait_frames_grow(b, {mediator, pid["王五"]})

    # B's network drops: the page rejoins by itself (new challenge, new connection, new RTCPeerConnection),
    # without a new identity check, straight back into the session (P5).
    await b.evaluate("window.__onedoor.pc.__old = true; window.__onedoor.dropConnection()")
    await expect(b.locator("#conn")).to_contain_text("已重新连接")
    await b.wait_for_function("window.__onedoor.pc && !window.__onedoor.pc.__old")
    await expect(b.locator("#btn-mute")).to_be_visible()
    await wait_frames_grow(b, {mediator, pid["王五"]})
    await wait_frames_grow(a, {pid["赵六"]})
    # A withdraws recording consent: the recording pauses for everyone (R1, P2); the mediator stops it.
    await a.click("#btn-rec-consent")
    for page in (med, a, b):
        await expect(page.locator("#rec")).to_have_text("录制已暂停")
    await med.fill("#rec-reason", "当事人撤回录像同意")
    await med.click("#recording-stop")
    await expect(b.locator("#rec")).to_be_hidden()
    # The mediator ends the session: both parties are told, with the reason.
    med.once("dialog", lambda d: asyncio.ensure_future(d.accept()))
    await med.fill("#end-reason", "今日调解结束")
    await med.click("#end-session")
    await expect(med.locator("[data-ended]")).to_be_visible()
    for page in (a, b):
        await expect(page.locator("[data-final=ended]")).to_contain_text("今日调解结束")
    await shot(a, "story-6-ended-party-a")
    for page in (med, a, b):
        assert page.js_errors == [], page.js_errors  # type: ignore[attr-defined]
