"""The party's whole story on a 390x844 phone, in natural order, in real Chromium against a real server (issue 12):
join, identity (asking the mediator to check the ID: the step stays amber until it is checked), the notices read
aloud (speechSynthesis.speak is called with the notice text), the large-text switch (remembered), the lobby,
admission, a caucus seen from outside, the main prompt from next_actions, signing first (asked in the page, the
outcome on screen without scrolling), the application, the end of the session and "my documents". Every state is
read in zh-CN and in English for raw keys, developer strings and the other language; no state scrolls sideways.
The other party and the mediator act through the real protocol client. Screenshots: test-artifacts/web/party-*."""

from __future__ import annotations

import pytest
from playwright.async_api import Page, expect

from signaling.client import SessionClient
from tests.conftest import World
from tests.court.helpers import COURT, complete_people, draft_and_finalize, party_sign
from tests.web.helpers import ARTIFACTS, CONFIRM, Opener, shot
from tests.web.wording import both_languages

pytestmark = pytest.mark.browser
PHONE = {"width": 390, "height": 844}
SMALL = {"width": 360, "height": 640}
CENTER = "湟中区社会治理综合服务中心"
PHONE_NO = "0971-2231234"
HOURS = "工作日 8:30-17:30"


def allowed(w: World) -> tuple[str, ...]:
    """Names and data people gave (not the page's own words): allowed in either language."""
    return ("张三", "李四", "赵心理", "邻里漏水纠纷", w.case_code, CENTER, PHONE_NO, HOURS, "西宁市湟中区",
            "西宁市湟中区人民法院", "mediator", "调解结束")


async def fits(page: Page) -> None:
    """No sideways scrolling on the phone."""
    assert await page.evaluate("document.scrollingElement.scrollWidth <= window.innerWidth"), "scrolls sideways"


async def view_shot(page: Page, name: str) -> None:
    """What the person sees without scrolling (not the full page)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


async def in_view(page: Page, selector: str) -> None:
    box = await page.locator(selector).bounding_box()
    assert box is not None, selector
    height = await page.evaluate("window.innerHeight")
    assert 0 <= box["y"] and box["y"] + box["height"] <= height, (selector, box, height)


async def spy_speech(page: Page) -> None:
    """Record what is handed to window.speechSynthesis.speak (and still pass it on): no stub, a spy."""
    await page.evaluate("""() => {
      window.__spoken = [];
      const s = window.speechSynthesis;
      const speak = s.speak.bind(s);
      s.speak = (u) => { window.__spoken.push({ text: u.text, lang: u.lang }); try { speak(u); } catch (e) {} };
    }""")


def lobby_id(m: SessionClient, name: str) -> str:
    return str(next(p["id"] for p in m.state.get("lobby", []) if p["name"] == name))


def participant_id(m: SessionClient, name: str) -> str:
    return str(next(p["id"] for p in m.state.get("participants", []) if p["name"] == name))


async def step_state(page: Page, index: int) -> str | None:
    return await page.locator(".stepper li").nth(index).get_attribute("data-step-state")


@pytest.mark.timeout(240)
async def test_party_story_on_a_phone(web_world: World, open_page: Opener) -> None:
    w = web_world
    allow = allowed(w)
    people = await complete_people(w)
    admin = await w.staff("admin", session=False)
    await admin.api("PUT", "/api/center/contact", {"phone": PHONE_NO, "hours": HOURS})
    m = await w.staff("mediator")
    b = await w.party("B")
    await w.ready(b, "B")

    # 1. join: the identity step
    page = await open_page(f"{w.base_url}/join#{w.tokens['A']}", viewport=PHONE)
    await expect(page.locator("[data-step=identity]")).to_be_visible()
    await fits(page)
    await shot(page, "party-01-identity-390")
    await both_languages(page, allow, "identity")

    # 2. "ask the mediator to check my ID": the step is waiting (amber), not done (green)
    await page.click("#attest-start")
    await expect(page.locator("[data-step=notices]")).to_be_visible()
    assert await step_state(page, 0) == "waiting"
    await expect(page.locator(".stepper li").nth(0)).to_contain_text("待调解员核验")

    # 3. the notices, read aloud with the text beside the button
    await spy_speech(page)
    await page.click("[data-notice=rights] button.read-aloud")
    spoken = await page.evaluate("window.__spoken")
    assert "您有权自愿参加调解" in spoken[-1]["text"] and spoken[-1]["lang"] == "zh-CN", spoken
    await page.click("#read-all")
    spoken = await page.evaluate("window.__spoken")
    assert "禁止私自录音录像" in spoken[-1]["text"] and "调解协议的法律效力" in spoken[-1]["text"]  # R3 and R13
    # (headless Chromium has no speech engine: the utterance ends at once and the button is "read aloud" again)
    await expect(page.locator("#read-all")).to_have_attribute("aria-pressed", "false")
    await fits(page)
    await shot(page, "party-02-notices-read-aloud-390")
    await both_languages(page, allow, "notices")
    await page.locator("[data-lang-switch]").click()  # in English the notice is read in English
    await page.click("[data-notice=norec] button.read-aloud")
    spoken = await page.evaluate("window.__spoken")
    assert "No recording on your side" in spoken[-1]["text"] and spoken[-1]["lang"].startswith("en")
    await page.locator("[data-lang-switch]").click()

    # 4. the large-text switch: bigger, still no sideways scrolling, remembered
    await page.click("#text-size")
    assert await page.evaluate("document.documentElement.classList.contains('large-text')")
    await expect(page.locator("#text-size")).to_have_attribute("aria-pressed", "true")
    assert await page.evaluate("getComputedStyle(document.documentElement).fontSize") == "21px"
    await fits(page)
    await shot(page, "party-03-notices-large-text-390")
    assert await page.evaluate("localStorage.getItem('onedoor.largeText')") == "1"

    await page.check("#ack")
    await page.get_by_role("button", name="继续").click()
    await expect(page.locator("[data-step=consents]")).to_be_visible()
    for box in await page.locator("fieldset input[value=yes]").all():
        await box.check()
    await fits(page)
    await shot(page, "party-04-consents-large-text-390")
    await both_languages(page, allow, "consents")
    await page.get_by_role("button", name="确认并进入等候").click()

    # 5. the lobby: what she waits for, and from whom
    await expect(page.locator("[data-step=lobby]")).to_be_visible()
    await expect(page.locator("#next-prompt")).to_contain_text("调解员查看您的身份证件")
    assert await step_state(page, 0) == "waiting"
    await fits(page)
    await shot(page, "party-05-lobby-waiting-for-id-check-390")
    await both_languages(page, allow, "lobby")
    await page.click("#text-size")  # large text off again for the session screenshots
    await m.wait(lambda c: any(p["name"] == "张三" for p in c.state.get("lobby", [])))
    await m.call("identity:attest", {"participant": lobby_id(m, "张三"), "document": "居民身份证", "matched": True})
    await expect(page.locator("#id-done")).to_be_visible()
    assert await step_state(page, 0) == "done"
    await shot(page, "party-06-lobby-id-checked-390")

    # 6. admitted: the session, with the main prompt
    await m.call("lobby:admit-all")
    await expect(page.locator(".session #next-prompt")).to_be_visible()
    await expect(page.locator(".tile.local")).to_be_visible()
    await expect(page.locator("#next-prompt")).to_contain_text("协议会显示在这里")
    await fits(page)
    await shot(page, "party-07-admitted-390")
    await both_languages(page, allow, "session")

    # 7. a caucus with B, seen from outside: the notice, and B's and the mediator's tiles say "in private talk"
    await m.wait(lambda c: any(p["name"] == "李四" for p in c.state.get("participants", [])))
    b_id, m_id = participant_id(m, "李四"), str(m.state["you"]["id"])
    await m.call("caucus:open", {"members": [m_id, b_id]})
    await expect(page.locator(".caucus.outside")).to_contain_text("李四")
    await expect(page.locator(f".tile[data-participant='{b_id}'] .flags")).to_contain_text("单独谈话中")
    await expect(page.locator(".tile.local .flags")).not_to_contain_text("单独谈话")
    await fits(page)
    await shot(page, "party-08-caucus-seen-from-outside-390")
    await both_languages(page, allow, "caucus")
    await m.call("caucus:close")
    await expect(page.locator(".caucus")).to_be_hidden()

    # a notice the page writes for an event (here the mediator mutes her) is written again in a new language
    await m.call("mute:other", {"participant": participant_id(m, "张三")})
    await expect(page.locator(".session .notice")).to_contain_text("已将您静音")
    await both_languages(page, allow, "muted by the mediator")
    await page.click("#btn-mute")  # she unmutes herself

    # 8. the agreement is final: the prompt says it is her turn; refusing and signing both ask first
    await draft_and_finalize(m, people)
    prompt = page.locator("#next-prompt")
    await expect(prompt).to_have_attribute("data-tone", "do")
    await expect(prompt).to_contain_text("请阅读调解协议全文")
    await view_shot(page, "party-09-prompt-read-and-sign-390")
    await page.click("#prompt-go")
    await page.click("#agreement-refuse")
    await expect(page.locator("#confirm-panel")).to_contain_text("拒绝签字后，本次调解就结束了")
    await in_view(page, "#confirm-panel")
    await view_shot(page, "party-10-refuse-asks-first-390")
    await both_languages(page, allow, "refuse confirmation")
    await page.click("#confirm-no")  # not now: nothing was sent
    await expect(page.locator("#agreement-sign")).to_be_visible()
    await page.click("#agreement-sign")
    await expect(page.locator("#confirm-panel")).to_contain_text("签名后就不能撤回了")
    await in_view(page, "#confirm-yes")
    await view_shot(page, "party-11-sign-asks-first-390")
    await both_languages(page, allow, "sign confirmation")
    await page.click("#confirm-yes")
    outcome = page.locator("#sign-outcome")
    await expect(outcome).to_contain_text("签名成功")
    await expect(outcome).to_have_attribute("data-ok", "true")
    await in_view(page, "#sign-outcome")  # success where she is looking, no scrolling
    await view_shot(page, "party-12-signed-first-390")
    await expect(prompt).to_contain_text("正在等待 李四 签名")
    await fits(page)
    await both_languages(page, allow, "signed")

    # 9. B and the mediator sign; the application is prepared; she signs it (asked first)
    await party_sign(b)
    await m.call("agreement:sign-mediator")
    await expect(page.locator("#agreement-status")).to_have_attribute("data-status", "sealed")
    med = await w.staff("mediator", session=False)
    await med.api("POST", f"/api/cases/{w.case_code}/application", {"court_id": COURT})
    await expect(prompt).to_have_attribute("data-action", "sign_application")
    await page.click("#prompt-go")
    # before signing she is told what the court will receive, and that nothing of a private talk goes (R9)
    receives = page.locator("#court-receives")
    await expect(receives).to_contain_text("盖章的调解协议")
    await expect(receives).to_contain_text("身份信息")
    await expect(receives).to_contain_text("背靠背（单独谈话）时的录音录像、笔录和只在单独谈话中出示的材料不会交给法院")
    await receives.scroll_into_view_if_needed()
    await view_shot(page, "party-13a-what-the-court-receives-390")
    await page.click("#application-sign")
    await expect(page.locator("#confirm-panel")).to_contain_text("申请就会和对方的签名一起提交法院")
    await in_view(page, "#confirm-yes")
    await view_shot(page, "party-13-application-asks-first-390")
    await page.click("#confirm-yes")
    await expect(outcome).to_contain_text("您已在申请书上签名")
    await in_view(page, "#sign-outcome")
    await view_shot(page, "party-14-application-signed-390")
    await party_sign(b, "application")
    await expect(page.locator("#court-notices")).to_contain_text("司法确认申请已提交")
    await expect(prompt).to_contain_text("正在等待法院受理")
    await fits(page)
    await shot(page, "party-15-waiting-for-the-court-390")
    await both_languages(page, allow, "applied")

    # 10. the session ends: documents after the session; large text is remembered after a reload
    await m.call("session:end", {"reason": "调解结束"})
    await expect(page.locator("[data-final=ended]")).to_be_visible()
    await expect(page.locator("#my-documents #service-consent")).to_be_visible()
    await fits(page)
    await shot(page, "party-16-ended-documents-390")
    await both_languages(page, allow, "ended")
    await page.click("#text-size")
    await page.reload()
    await expect(page.locator("#my-documents")).to_be_visible()
    assert await page.evaluate("document.documentElement.classList.contains('large-text')")
    await fits(page)
    await shot(page, "party-17-documents-large-text-after-reload-390")
    assert page.js_errors == []  # type: ignore[attr-defined]


@pytest.mark.timeout(120)
async def test_refused_party_is_told_whom_to_call(web_world: World, open_page: Opener) -> None:
    """Refused in the lobby: the center's phone (a tel: link) and how to ask for a new link, on a 360x640 phone."""
    w = web_world
    admin = await w.staff("admin", session=False)
    await admin.api("PUT", "/api/center/contact", {"phone": PHONE_NO, "hours": HOURS})
    m = await w.staff("mediator")
    page = await open_page(f"{w.base_url}/join#{w.tokens['B']}", viewport=SMALL)
    await expect(page.locator("[data-step=identity]")).to_be_visible()
    await page.click("#otp-start")
    await expect(page.locator("#otp")).to_be_visible()
    await page.fill("#otp", w.codes[f"invite:{w.invite_ids['B']}"])
    await page.get_by_role("button", name="确认", exact=True).click()
    await expect(page.locator("[data-step=notices]")).to_be_visible()
    assert await step_state(page, 0) == "done"  # the code was checked: green
    await page.check("#ack")
    await page.get_by_role("button", name="继续").click()
    await expect(page.locator("[data-step=consents]")).to_be_visible()
    for box in await page.locator("fieldset input[value=yes]").all():
        await box.check()
    await page.get_by_role("button", name="确认并进入等候").click()
    await expect(page.locator("[data-step=lobby]")).to_be_visible()
    await m.wait(lambda c: any(p["name"] == "李四" for p in c.state.get("lobby", [])))
    await m.call("lobby:refuse", {"participant": lobby_id(m, "李四"), "reason": "调解结束"})
    final = page.locator("[data-final=refused]")
    await expect(final).to_be_visible()
    await expect(page.locator("#center-phone")).to_have_attribute("href", "tel:09712231234")
    await expect(page.locator("#new-link-help")).to_contain_text(w.case_code)
    await in_view(page, "#center-phone")
    await fits(page)
    await view_shot(page, "party-18-refused-whom-to-call-360")
    await both_languages(page, allow=allowed(w), where="refused")
    # reloading does not bring them back to the lobby: the link stays shut until the center sends a new one
    await page.reload()
    await expect(page.locator("[data-code=refused]")).to_be_visible()
    await expect(page.locator("#new-link-help")).to_contain_text(w.case_code)
    assert await page.get_by_role("button", name="重试").count() == 0
    await view_shot(page, "party-19-refused-reloaded-360")


@pytest.mark.timeout(120)
async def test_leaving_is_asked_in_the_page(web_world: World, open_page: Opener) -> None:
    """"Leave" on a 390x844 phone asks in the page (web/js/confirm.js): the dialog fits the screen, the focus starts
    on "cancel"; cancelling keeps the party in the session (the mediator still sees them connected); confirming
    leaves and says so, with how to come back."""
    w = web_world
    m = await w.staff("mediator")
    page = await open_page(f"{w.base_url}/join#{w.tokens['B']}", viewport=PHONE)
    await expect(page.locator("[data-step=identity]")).to_be_visible()
    await page.click("#otp-start")
    await expect(page.locator("#otp")).to_be_visible()
    await page.fill("#otp", w.codes[f"invite:{w.invite_ids['B']}"])
    await page.get_by_role("button", name="确认", exact=True).click()
    await expect(page.locator("[data-step=notices]")).to_be_visible()
    await page.check("#ack")
    await page.get_by_role("button", name="继续").click()
    await expect(page.locator("[data-step=consents]")).to_be_visible()
    for box in await page.locator("fieldset input[value=yes]").all():
        await box.check()
    await page.get_by_role("button", name="确认并进入等候").click()
    await expect(page.locator("[data-step=lobby]")).to_be_visible()
    await m.wait(lambda c: any(p["name"] == "李四" for p in c.state.get("lobby", [])))
    await m.call("lobby:admit", {"participant": lobby_id(m, "李四")})
    leave = page.locator("#btn-leave")
    await expect(leave).to_be_visible()

    def connected(c: SessionClient) -> bool:
        return any(p["name"] == "李四" and p["connected"] and not p.get("reconnecting")
                   for p in c.state.get("participants", []))

    await m.wait(connected)
    await expect(page.locator(".session p.notice")).to_be_hidden()  # media joined: "connecting…" is gone
    # asked first: legible on the phone, nothing cut off, the safe answer chosen
    await leave.click()
    dlg = page.locator(CONFIRM)
    await expect(dlg).to_be_visible()
    await expect(dlg.get_by_role("heading")).to_have_text("离开调解？")
    await expect(dlg).to_contain_text("刷新页面即可重新进入")
    await expect(page.locator("#confirm-dialog-no")).to_be_focused()
    assert await dlg.get_attribute("aria-labelledby") and await dlg.get_attribute("aria-describedby")
    rect = await dlg.bounding_box()
    assert rect and rect["x"] >= 0 and rect["y"] >= 0, rect
    assert rect["x"] + rect["width"] <= PHONE["width"] and rect["y"] + rect["height"] <= PHONE["height"], rect
    await in_view(page, "#confirm-dialog-yes")
    await view_shot(page, "party-19-leave-asks-first-390")
    # cancelled: nothing happens, the focus is back on "leave", the mediator still has the party
    await page.click("#confirm-dialog-no")
    await expect(dlg).to_have_count(0)
    await expect(leave).to_be_focused()
    await expect(page.locator("#btn-mute")).to_be_visible()
    assert connected(m)
    # Escape is "no" too
    await leave.click()
    await expect(dlg).to_be_visible()
    await page.keyboard.press("Escape")
    await expect(dlg).to_have_count(0)
    assert connected(m)
    # confirmed: the page says what happened and how to come back
    await leave.click()
    await page.click("#confirm-dialog-yes")
    final = page.locator("[data-final=left]")
    await expect(final).to_contain_text("您已离开调解")
    await in_view(page, "[data-final=left]")
    await expect(final).to_contain_text("重新进入")
    await view_shot(page, "party-20-left-390")
    await both_languages(page, allow=allowed(w), where="left")
    assert page.js_errors == []  # type: ignore[attr-defined]
