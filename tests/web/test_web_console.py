"""The mediator's whole day in the console, in real Chromium at 1366×768 (and the host view at 1920×1080): intake
(ID checksum, personal matter, referring court), correcting a person, scheduling with a third party, a new link
for a party, the lobby as a list (check an ID, refuse the observer with a reason after a confirmation, admit),
the main prompt, recording with a pause that needs a reason, a caucus, the transcript and the case file, the
agreement (problems worded from their codes, parties sign first and the mediator last), the application, the end
of the session and the recording history. Every page state is scanned: no raw catalogue key, no English in zh-CN
mode, no text squeezed to a few characters per line. Screenshots: test-artifacts/web/console-*.png."""

from __future__ import annotations

import datetime as dt
import re
import struct
import zlib
from pathlib import Path

import pytest
from playwright.async_api import Page, ViewportSize, expect

from tests.conftest import PASSWORD, World
from tests.web.helpers import CONFIRM, ROOT, Opener, confirm_in_page, shot
from tests.web.wording import scan

pytestmark = pytest.mark.browser

LAPTOP = ViewportSize(width=1366, height=768)
DESK = ViewportSize(width=1920, height=1080)
PHONE = {"width": 400, "height": 800}
# valid GB 11643 numbers (checksum right), and one with a wrong check digit
ID_A, ID_B, ID_BAD = "11010519491231002X", "110105194912310038", "110105194912310037"


def catalogue_keys() -> set[str]:
    keys: set[str] = set()
    for f in (ROOT / "web" / "js").glob("strings-*.js"):
        keys |= set(re.findall(r'^\s*"([a-z][\w.]*\.[\w.]+)":', f.read_text("utf-8"), re.M))
    return keys


KEYS = re.compile(r"(?<![\w.])(?:" + "|".join(sorted(map(re.escape, catalogue_keys()), key=len, reverse=True)) + r")(?![\w.])")
# Latin text a zh-CN page may show: case codes, links, file types, the language switch
ALLOWED = re.compile(r"https?://\S+|[A-Z]{2}-[A-Z]{2}-\d{4}-\d{6}|\b(?:PDF|JPEG|PNG|MB|KB|QR|English|X)\b|\S+\.png")

SQUEEZED = """() => {
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const text = n.textContent.replace(/\\s+/g, " ").trim();
    const el = n.parentElement;
    if (!el || text.length < 6 || !/\\s|[\\u3400-\\u9fff]/.test(text) || el.closest("option, script, style, code, .visually-hidden")) continue;
    const range = document.createRange();
    range.selectNodeContents(n);
    const rects = [...range.getClientRects()].filter((r) => r.width > 0 && r.height > 0);
    if (!rects.length) continue;
    const lines = new Set(rects.map((r) => Math.round(r.top))).size;
    if (lines > 1 && text.length / lines < 6) out.push({ text: text.slice(0, 40), lines, width: Math.round(Math.max(...rects.map((r) => r.width))) });
  }
  return out;
}"""


async def check_page(page: Page, where: str, *, zh: bool = True) -> None:
    """No raw key, no English in zh-CN mode (names and codes aside), no text squeezed to a few characters a line."""
    text = await page.evaluate("document.body.innerText")
    staff = (await page.evaluate("(document.getElementById('who') || {}).textContent || ''")).split(" · ")[0]
    if staff:  # a person's name is theirs (the seeded staff are named in Latin letters)
        text = text.replace(staff, " ")
    raw = sorted(set(KEYS.findall(text)))
    assert not raw, f"{where}: raw catalogue keys {raw}"
    if zh:
        latin = re.findall(r"[A-Za-z_]{2,}[A-Za-z_.\[\]0-9]*", ALLOWED.sub(" ", text))
        assert not latin, f"{where}: English in zh-CN mode: {sorted(set(latin))[:20]}"
    squeezed = await page.evaluate(SQUEEZED)
    assert not squeezed, f"{where}: squeezed text {squeezed[:5]}"


AGREEMENT_VERSION = """async (code) => {
  const r = await fetch(`/api/cases/${encodeURIComponent(code)}/agreement`);
  const d = await r.json();
  return (d.agreement && d.agreement.current_version) || 0;
}"""
SESSION_STATE = """async (id) => (await (await fetch(`/api/sessions/${id}`)).json()).session.state"""


def tiny_png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    raw = b"".join(b"\x00" + b"\xc0\x30\x30" * 8 for _ in range(8))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


async def party_signs(page: Page, button: str) -> None:
    """The party page asks "are you sure?" in the page (a "是的…" button) first."""
    await page.click(button)
    await page.get_by_role("button", name=re.compile("^是的")).first.click()


async def party_through_lobby(page: Page, world: World, who: str, *, attestation: bool = False) -> None:
    """As tests.web.helpers, and the party says no to the observer joining (the mediator then refuses them)."""
    await expect(page.locator("[data-step=identity]")).to_be_visible()
    if attestation:
        await page.click("#attest-start")
    else:
        await page.click("#otp-start")
        await expect(page.locator("#otp")).to_be_visible()
        await page.fill("#otp", world.codes[f"invite:{world.invite_ids[who]}"])
        await page.get_by_role("button", name="确认", exact=True).click()
    await expect(page.locator("[data-step=notices]")).to_be_visible()
    await page.check("#ack")
    await page.get_by_role("button", name="继续").click()
    await expect(page.locator("[data-step=consents]")).to_be_visible()
    await page.locator("[data-consent=online] input[value=yes]").check()
    await page.locator("[data-consent=recording] input[value=yes]").check()
    for box in await page.locator("fieldset[data-consent^='tp']").all():
        await box.locator("input[value=no]").check()
    await page.get_by_role("button", name="确认并进入等候").click()
    await expect(page.locator("[data-step=lobby]")).to_be_visible()


@pytest.mark.timeout(300)  # a hang guard: ~60 s alone, ~95 s on a busy two-core machine
async def test_console_whole_day(web_world: World, open_page: Opener, tmp_path: Path) -> None:
    med = await open_page(f"{web_world.base_url}/console", viewport=LAPTOP)

    # --- login and intake: the ID checksum is checked before sending, the court picker appears for court cases
    await med.fill("#username", "mediator")
    await med.fill("#password", PASSWORD)
    await med.get_by_role("button", name="登录").click()
    await expect(med.get_by_role("heading", name="案件列表")).to_be_visible()
    await check_page(med, "cases")
    await med.get_by_role("link", name="新建案件").first.click()
    await med.fill("#case-title", "宅基地通道纠纷")
    await med.select_option("[name=category]", "land")
    await med.select_option("[name=channel]", "court")
    await expect(med.locator("#referring-court option")).not_to_have_count(1)
    await med.select_option("#referring-court", "court-huangzhong")
    await expect(med.locator("#personal-matter")).to_have_value("none")
    rows = med.locator(".person-row")
    for i, (name, phone, idn) in enumerate((("王五", "13900000001", ID_A), ("赵六", "13900000002", ID_BAD))):
        await rows.nth(i).locator("[name=name]").fill(name)
        await rows.nth(i).locator("[name=phone]").fill(phone)
        await rows.nth(i).locator("[name=id_number]").fill(idn)
        await rows.nth(i).locator("[name=address]").fill(f"青海省西宁市湟中区鲁沙尔镇和平村{i + 1}号")
    await med.get_by_role("button", name="登记案件").click()
    await expect(med.locator("#intake .error")).to_contain_text("校验位")
    await shot(med, "console-1-intake-bad-id")
    await check_page(med, "intake")
    await rows.nth(1).locator("[name=id_number]").fill(ID_B)
    await med.select_option("[name=channel]", "walk_in")
    await med.get_by_role("button", name="登记案件").click()
    await expect(med.locator("#stage")).to_contain_text("受理")
    await expect(med.locator("#next-actions")).to_contain_text("起草调解协议")

    # --- correcting a person (PATCH people): the phone, with a reason
    await med.locator("#people-card li", has_text="赵六").get_by_role("button", name="更正信息").click()
    form = med.locator("#people-card li", has_text="赵六").locator("form.correct")
    await form.locator("[name=phone]").fill("13900000009")
    await form.locator("[name=reason]").fill("当事人更换了手机号")
    await form.get_by_role("button", name="保存更正").click()
    await expect(med.locator("#people-card")).to_contain_text("已更正 赵六 的信息")
    await expect(med.locator("#people-card")).to_contain_text("13900000009")

    # --- schedule with an observer; a new link for B (confirmation; the old one stops working)
    await med.click("button[data-to=triage]")
    await expect(med.locator("#stage")).to_contain_text("分流")
    await med.click("button[data-to=handling]")
    await expect(med.locator("#stage")).to_contain_text("处置")
    await med.get_by_role("button", name="添加第三方").click()
    await med.select_option(".guest select", "observer")
    await med.fill(".guest input", "孙旁听")
    await med.get_by_role("button", name="安排并生成邀请").click()
    await expect(med.locator(".invite")).to_have_count(3)
    links = {}
    for i in range(3):
        inv = med.locator(".invite").nth(i)
        name = (await inv.locator("strong").inner_text()).split(" · ")[0]
        links[name] = (await inv.locator("a.invite-link").get_attribute("href") or "", await inv.get_attribute("data-invite") or "")
    await shot(med, "console-2-case-invites")
    await check_page(med, "case view with invites")
    sid = int(await med.locator("[data-session]").first.get_attribute("data-session") or 0)
    await med.click(f"#manage-invites-{sid}")
    await med.click(f"#reissue-{links['赵六'][1]}")
    await confirm_in_page(med, "旧链接会立即失效", shot_name="console-3-reissue-asks-first-1366")
    new = med.locator(f"#invites-{sid} .reissued .invite")
    await expect(new).to_have_count(1)
    b_link = await new.locator("a.invite-link").get_attribute("href") or ""
    assert b_link and b_link != links["赵六"][0]
    await expect(med.locator(f"#invites-{sid}")).to_contain_text("已为 赵六 生成新链接")
    await shot(med, "console-3-reissued-link")

    # --- host view: the lobby is a list of people with readiness and actions
    await med.get_by_role("link", name="以主持人身份进入").click()
    await expect(med.locator("#lobby")).to_be_visible()
    await expect(med.locator("#next-actions")).to_contain_text("当事人：用邀请链接进入等候区")
    a = await open_page(links["王五"][0], viewport=PHONE)
    b = await open_page(b_link, viewport=PHONE)
    guest = await open_page(links["孙旁听"][0], viewport=PHONE)
    web_world.invite_ids.update({"王五": int(links["王五"][1]), "赵六": int(links["赵六"][1])})
    await party_through_lobby(a, web_world, "王五")
    await party_through_lobby(b, web_world, "赵六", attestation=True)
    b_item = med.locator("#lobby li.lobby-person", has_text="赵六")
    await expect(b_item).to_have_attribute("data-ready", "false")
    await expect(b_item).to_contain_text("还差：尚未核验身份")
    await expect(med.locator("#next-actions")).to_contain_text("王五 已准备好")
    g_item = med.locator("#lobby li.lobby-person", has_text="孙旁听")
    await expect(g_item).to_be_visible()
    await shot(med, "console-4-lobby")
    await check_page(med, "lobby")
    # refuse the observer: the reason box opens in full, then a plain-words confirmation
    await g_item.get_by_role("button", name="拒绝 孙旁听 进入").click()
    reason = g_item.locator("textarea")
    await expect(reason).to_be_focused()
    await reason.fill("本案当事人不同意旁听")
    box = await reason.bounding_box()
    assert box and box["width"] > 300, box
    await shot(med, "console-5-refuse-reason")
    await g_item.get_by_role("button", name="确认拒绝").click()
    await confirm_in_page(med, "孙旁听 不能进入本次调解")
    await expect(med.locator(".hostview > .okmsg")).to_contain_text("已拒绝 孙旁听 进入")
    await expect(g_item).to_have_count(0)
    await expect(guest.locator("body")).to_contain_text("本案当事人不同意旁听")
    # check B's ID, admit everyone ready
    await b_item.get_by_role("button", name="证件与本人一致").click()
    await expect(med.locator("#lobby li[data-ready=true]")).to_have_count(2)
    await med.click("#admit-all")
    for page in (a, b):
        await expect(page.locator("#btn-mute")).to_be_visible()
    await expect(med.locator("#people li")).to_have_count(3)
    await shot(med, "console-6-host-1366")
    height = await med.evaluate("document.documentElement.scrollHeight")
    await med.set_viewport_size(DESK)
    await shot(med, "console-6-host-1920")
    await check_page(med, "host view 1920")
    await med.set_viewport_size(LAPTOP)

    # --- recording: pausing without a reason says so in the recording box; the old reason never stays
    await med.click("#recording-start")
    await expect(med.locator("#recording .rec")).to_have_text("正在录音录像")
    await med.click("#recording-pause")
    await expect(med.locator("#rec-note")).to_contain_text("请先在上面的框中填写暂停录制的原因")
    await expect(med.locator("#rec-reason")).to_be_focused()
    await shot(med, "console-7-pause-needs-reason")
    await med.fill("#rec-reason", "当事人要求休息")
    await med.click("#recording-pause")
    await expect(med.locator("#recording .rec")).to_have_text("录制已暂停")
    await expect(med.locator("#rec-reason")).to_have_value("")
    await expect(med.locator("#rec-note")).to_contain_text("录制已暂停，原因已记录")
    await med.fill("#rec-reason", "休息结束")
    await med.click("#recording-resume")
    await expect(med.locator("#recording .rec")).to_have_text("正在录音录像")
    await expect(med.locator("#rec-reason")).to_have_value("")

    # --- caucus with side A: the banner names A, never the mediator to himself
    await med.click("#caucus-side-A")
    await expect(med.locator(".caucus.inside")).to_contain_text("王五")
    me = await med.evaluate("window.__onedoor.state.you.name")
    assert me not in await med.locator(".caucus.inside").inner_text()
    await shot(med, "console-8-caucus")
    await med.click("#caucus-close")
    await expect(med.locator(".caucus.inside")).to_be_hidden()

    # --- transcript (says why it is empty) and the case file (upload, show to everyone)
    await expect(med.locator("#transcript-empty")).to_contain_text("未开启语音转写")
    await med.fill("#transcript-text", "甲方表示愿意先清理通道。")
    await med.click("#transcript-add")
    await expect(med.locator("#transcript .tr-list")).to_contain_text("甲方表示愿意先清理通道")
    await expect(med.locator("#documents-empty")).to_be_visible()
    png = tmp_path / "现场照片.png"
    png.write_bytes(tiny_png())
    await med.set_input_files("#doc-file", str(png))
    await med.click("#doc-upload")
    await expect(med.locator("#documents")).to_contain_text("已上传")
    await med.locator("#documents li", has_text="现场照片").get_by_role("button", name="向所有人出示").click()
    await confirm_in_page(med, "出示后不能收回")
    await expect(med.locator("#documents")).to_contain_text("已出示")
    await shot(med, "console-9-transcript-documents")
    await check_page(med, "transcript and documents")

    # --- the agreement: problems in words, finalize (confirmation), parties sign first, the mediator last
    due = (dt.date.today() + dt.timedelta(days=20)).isoformat()
    await med.click("#agreement-start")
    form = med.locator("#agreement form.editor")
    await expect(form).to_be_visible()
    box = await form.bounding_box()
    assert box and box["width"] > 600, f"the editor is squeezed: {box}"
    await form.locator("[name=facts]").fill("乙方在共用通道堆放建材，致甲方无法通行。")
    await form.locator("[name='responsibility.A']").fill("甲方无过错。")
    await form.locator("[name='responsibility.B']").fill("乙方占用共用通道，应承担全部责任。")
    await form.locator("[name='terms[0].what']").fill("清除堆放于共用通道的建材")
    await form.locator("[name='terms[1].amount']").fill("1200.00")
    for i in (0, 1):
        await form.locator(f"[name='terms[{i}].place']").fill("湟中区鲁沙尔镇和平村")
        await form.locator(f"[name='terms[{i}].deadline']").fill(due)
    await form.locator("[name='performance.place']").fill("湟中区鲁沙尔镇和平村")
    await form.locator("[name='terms[1].method']").fill("尽快转账")
    await form.locator("[name='performance.deadline']").fill(due)
    await form.locator("[name='parties[1].address']").fill("青海省西宁市湟中区鲁沙尔镇和平村9号")  # a correction
    # cancelling the finalize confirmation changes nothing: not even a save (the server's version is unchanged)
    before = await med.evaluate(AGREEMENT_VERSION, web_world.case_code)
    await med.click("#agreement-finalize")
    await confirm_in_page(med, "定稿后不能再修改", answer=False)
    await expect(med.locator("#agreement-finalize")).to_be_focused()
    assert await med.evaluate(AGREEMENT_VERSION, web_world.case_code) == before
    await expect(med.locator("#agreement-status")).to_have_attribute("data-status", "draft")
    await med.click("#agreement-finalize")
    await med.keyboard.press("Escape")  # Escape is "no" too
    await expect(med.locator(CONFIRM)).to_have_count(0)
    assert await med.evaluate(AGREEMENT_VERSION, web_world.case_code) == before
    await med.click("#agreement-finalize")
    await confirm_in_page(med, "定稿后不能再修改", shot_name="console-10-finalize-asks-first-1366")
    await expect(med.locator("#agreement-error")).to_contain_text("没有定稿")
    await expect(med.locator("#agreement-status")).to_have_attribute("data-status", "draft")
    problems = await med.locator("#problems").inner_text()
    assert "尽快" in problems and "terms[" not in problems and " / " not in problems, problems
    await shot(med, "console-10-agreement-problems")
    drafting = await med.evaluate("document.documentElement.scrollHeight")
    assert drafting < 5400, f"the host page is {drafting}px tall at 1366×768 while drafting"
    await check_page(med, "agreement problems")
    await form.locator("[name='terms[1].method']").fill("银行转账至甲方账户")
    await med.click("#draft-save")
    await expect(med.locator("#agreement-msg")).to_have_text(re.compile(r"^已保存为第 \d+ 版。$"))
    badge = (await med.locator("#agreement .agreement-status .muted").inner_text()).strip()
    assert badge.replace("第 ", "").replace(" 版", "") in await med.locator("#agreement-msg").inner_text()
    await med.click("#agreement-finalize")
    await confirm_in_page(med, "定稿后不能再修改")
    await expect(med.locator("#agreement-status")).to_have_attribute("data-status", "final")
    await expect(med.locator("#agreement-msg")).to_contain_text("已定稿")
    await expect(med.locator("#next-actions")).to_contain_text("王五：签署调解协议")
    await shot(med, "console-11-agreement-final")
    for page in (a, b):
        await expect(page.locator("#agreement .agreement-doc")).to_contain_text("鲁沙尔镇和平村9号")  # typed = signed
        await party_signs(page, "#agreement-sign")
        await expect(page.locator("#agreement")).to_contain_text("签名")
    for page in (a, b, med):
        await expect(page.locator("#agreement-status")).to_have_attribute("data-status", "effective")
    await med.click("#mediator-sign")
    await confirm_in_page(med, "以调解员身份签署这份协议")
    await expect(med.locator("#agreement-status")).to_have_attribute("data-status", "sealed")
    await expect(med.locator("#agreement-msg")).to_contain_text("您已签名")
    await med.select_option("#court", "court-huangzhong")
    await med.click("#application-start")
    await expect(med.locator("#application-status")).to_have_text("待双方签名")
    await party_signs(a, "#application-sign")
    await expect(med.locator("#application-status")).to_have_text("待 赵六 签名")
    await party_signs(b, "#application-sign")
    await expect(med.locator("#application-status")).to_have_text("已提交法院")
    await expect(med.locator("#next-actions")).to_contain_text("法院：决定是否受理申请")
    await shot(med, "console-12-application")
    await check_page(med, "application")

    # --- English mode: no raw key either
    await med.click("[data-lang-switch]")
    await expect(med.locator("#lobby h2")).to_contain_text("Lobby")
    await check_page(med, "host view in English", zh=False)
    # and no Chinese in English mode but what people wrote and named (names, the court, a transcript line, a file)
    data = ("王五", "赵六", "西宁市湟中区人民法院", "甲方表示愿意先清理通道。", "现场照片.png")
    assert await scan(med, data) == []
    await shot(med, "console-13-host-english")
    await med.click("[data-lang-switch]")

    # --- end the session (confirmation), then the recording history in the case view
    await med.fill("#end-reason", "今日调解结束")
    # cancelled first: the session stays live on the server and nobody is disconnected
    await med.click("#end-session")
    await confirm_in_page(med, "会话结束后不能再重新开启", answer=False, shot_name="console-15-end-asks-first-1366")
    await expect(med.locator("#end-session")).to_be_focused()
    assert await med.evaluate(SESSION_STATE, sid) != "ended"
    await expect(a.locator("#btn-mute")).to_be_visible()
    await med.click("#end-session")
    await confirm_in_page(med, "所有人将被断开")
    await expect(med.locator("[data-ended]")).to_be_visible()
    await med.get_by_role("link", name="返回案件").click()
    await expect(med.locator("#recordings li").first).to_be_visible()
    await shot(med, "console-14-case-after")
    await check_page(med, "case view after the session")
    assert height < 5400, f"the host page is {height}px tall at 1366×768"
    assert not med.js_errors, med.js_errors  # type: ignore[attr-defined]
