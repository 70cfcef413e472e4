"""The court portal at 1366x768 in real Chromium (issue 12): the queue names each case (title, category, parties);
the grounds are labelled lists; not accepting is read back first; acceptance and the ruling report their outcome at
the top; the judge schedules a questioning, joins it as host in the page, lets a party in, and ends it (asked
first). Every state is read in zh-CN and English. Screenshots: test-artifacts/web/court-*."""

from __future__ import annotations

import pytest
from playwright.async_api import Page, expect

from tests.conftest import PASSWORD, World
from tests.court.helpers import COURT, party_sign, sealed
from tests.web.helpers import Opener, shot
from tests.web.wording import both_languages

pytestmark = pytest.mark.browser
DESKTOP = {"width": 1366, "height": 768}


def allowed(w: World) -> tuple[str, ...]:
    return ("张三", "李四", "邻里漏水纠纷", w.case_code, "西宁市湟中区人民法院", "judge", "mediator",
            "湟中区社会治理综合服务中心")


async def no_squeeze(page: Page) -> None:
    """At 1366x768 nothing scrolls sideways and no table cell is squeezed to a few characters per line."""
    assert await page.evaluate("document.scrollingElement.scrollWidth <= window.innerWidth")
    narrow = await page.evaluate("""() => [...document.querySelectorAll('td, th')]
      .filter((c) => c.offsetParent && c.innerText.trim().length > 6 && c.clientWidth < 64)
      .map((c) => c.innerText.trim())""")
    assert narrow == [], narrow


async def in_view(page: Page, selector: str) -> None:
    box = await page.locator(selector).bounding_box()
    assert box is not None and 0 <= box["y"] and box["y"] + box["height"] <= DESKTOP["height"], (selector, box)


@pytest.mark.timeout(240)
async def test_court_portal_at_laptop_size(web_world: World, open_page: Opener) -> None:
    w = web_world
    allow = allowed(w)
    m, a, b, _ = await sealed(w)
    med = await w.staff("mediator", session=False)
    await med.api("POST", f"/api/cases/{w.case_code}/application", {"court_id": COURT})
    await party_sign(a, "application")
    await party_sign(b, "application")
    await m.call("session:end", {"reason": "调解结束"})

    court = await open_page(f"{w.base_url}/court", viewport=DESKTOP)
    await court.fill("#username", "judge")
    await court.fill("#password", PASSWORD)
    await court.get_by_role("button", name="登录").click()

    # the queue: what a judge recognizes a case by
    row = court.locator("#queue tr[data-application]")
    await expect(row).to_have_count(1)
    await expect(row).to_contain_text("邻里漏水纠纷")
    await expect(row).to_contain_text("邻里纠纷")
    await expect(row).to_contain_text("甲方：张三")
    await expect(row).to_contain_text("乙方：李四")
    await no_squeeze(court)
    await shot(court, "court-1-queue-1366")
    await both_languages(court, allow, "queue")

    # one application: labelled ground list; not accepting is read back before anything is sent
    await row.get_by_role("link").click()
    await expect(court.locator("#application-view")).to_be_visible()
    await expect(court.get_by_label("不予受理的事由")).to_be_visible()
    await no_squeeze(court)
    await shot(court, "court-2-application-1366")
    await both_languages(court, allow, "application")
    await court.get_by_label("不予受理的事由").select_option("no_jurisdiction")
    await court.click("#court-decline")
    await expect(court.locator("#decline-confirm")).to_contain_text("不属于本院管辖")
    await expect(court.locator("#decline-confirm h3")).to_be_focused()
    await shot(court, "court-3-decline-asks-first-1366")
    await both_languages(court, allow, "decline read-back")  # (switching the language redraws the view)
    await court.click("#court-decline")
    await court.click("#decline-no")
    await expect(court.locator("#decline-confirm")).to_be_hidden()

    # accept: the outcome at the top, with the focus on it
    await court.click("#court-accept")
    flash = court.locator("#court-flash")
    await expect(flash).to_contain_text("已受理")
    await expect(flash).to_be_focused()
    await in_view(court, "#court-flash")
    await expect(court.locator("#application-status")).to_have_text("法院已受理")
    await expect(court.get_by_label("驳回申请的事由（仅驳回时需要）")).to_be_visible()
    await shot(court, "court-4-accepted-1366")
    await both_languages(court, allow, "accepted")

    # a questioning the judge hosts: scheduled, joined in the page, a party let in, ended (asked first)
    await court.click("#court-questioning")
    join = court.locator("#join-questioning")
    await expect(join).to_be_focused()
    link = await court.locator(".invite[data-role=party] a.invite-link").first.get_attribute("href")
    invite = await court.locator(".invite[data-role=party]").first.get_attribute("data-invite")
    assert link and invite
    await shot(court, "court-5-questioning-scheduled-1366")
    # a reload keeps the way in: the portal draws "join" from the application's questionings on the server
    href = await join.get_attribute("href")
    await court.reload()
    await expect(court.locator("#questioning-scheduled")).to_contain_text("已安排询问")
    await expect(join).to_have_attribute("href", href or "")
    await expect(court.locator(".invite-link")).to_have_count(0)  # the links themselves were shown once
    await shot(court, "court-5b-questioning-after-reload-1366")
    await both_languages(court, allow, "questioning after a reload")
    await join.click()
    view = court.locator("#questioning-view")
    await expect(view).to_be_visible()
    await expect(court.locator(".tile.local")).to_be_visible()
    party = w.client()
    await party.join_invite(link.split("#", 1)[1])
    await party.call("identity:start", {"method": "otp"})
    await party.call("identity:answer", {"code": w.codes[f"invite:{invite}"]})
    for kind in ("notices", "online", "recording"):
        await party.call("lobby:consent", {"kind": kind, "granted": True})
    person = court.locator("#q-lobby li.lobby-person")
    await expect(person).to_have_attribute("data-ready", "true")
    await shot(court, "court-6-questioning-lobby-1366")
    await both_languages(court, allow, "questioning lobby")
    await person.get_by_role("button", name="让").click()
    await expect(court.locator("#q-people li")).to_have_count(1)
    await party.wait(lambda c: c.state.get("you", {}).get("admitted") is True)
    # the judge's connection drops (signaling only, as on a flaky link): the page connects again by itself, the
    # judge is still the host with the party in the room, and the media's peer connection, still connected on the
    # same network, is resumed (web/js/media.js `join`)
    await court.wait_for_function("() => window.__onedoor.pc && window.__onedoor.pc.connectionState === 'connected'")
    await court.evaluate("window.__onedoor.dropConnection()")
    await court.wait_for_function("() => window.__onedoor.rejoins === 1 && window.__onedoor.pc"
                                  " && window.__onedoor.pc.connectionState === 'connected'")
    await expect(view.get_by_role("status").first).to_contain_text("您是主持人")
    await expect(court.locator("#q-people li")).to_have_count(1)
    # by keyboard (focus, Enter): the side column moves up as the lobby empties and the people list fills, and a
    # mouse click aimed a moment earlier can land beside the button on a busy machine
    await court.locator("#end-open").press("Enter")
    await expect(court.locator("#end-confirm h3")).to_be_focused()
    await shot(court, "court-7-questioning-end-asks-first-1366")
    await both_languages(court, allow, "questioning end")
    if not await court.locator("#end-yes").is_visible():
        await court.click("#end-open")
    await court.click("#end-yes")
    await expect(view.get_by_role("status").first).to_contain_text("询问已结束")

    # the ruling: reasoning, read back, signed; the outcome at the top
    await court.get_by_role("link", name="返回申请").click()
    await expect(court.locator("#reasoning")).to_be_visible()
    await expect(court.locator("#join-questioning")).to_have_count(0)  # the questioning is over
    await court.fill("#reasoning", "经询问，双方确认自愿达成协议，内容明确，不违反法律强制性规定。")
    await court.get_by_label("驳回申请的事由（仅驳回时需要）").select_option("unclear_content")
    await court.click("#court-reject")
    await expect(court.locator("#rule-confirm")).to_contain_text("内容不明确")
    await court.click("#rule-cancel")
    await court.click("#court-confirm")
    await expect(court.locator("#rule-confirm")).to_contain_text("裁定确认调解协议有效")
    await shot(court, "court-8-ruling-read-back-1366")
    await both_languages(court, allow, "ruling read-back")
    await court.click("#court-confirm")
    await court.click("#rule-sign")
    await expect(court.locator("#court-flash")).to_contain_text("裁定已签发")
    await in_view(court, "#court-flash")
    await expect(court.locator("#application-status")).to_have_text("法院裁定协议有效")
    await no_squeeze(court)
    await shot(court, "court-9-ruled-1366")
    await both_languages(court, allow, "ruled")
    assert court.js_errors == []  # type: ignore[attr-defined]
