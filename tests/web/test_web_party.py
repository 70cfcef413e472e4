"""The party page in real Chromium against a real server: link → device key → identity → notices → lobby."""

from __future__ import annotations

import pytest
from playwright.async_api import Page, expect

from tests.conftest import PASSWORD, World
from tests.web.helpers import Opener, shot

pytestmark = pytest.mark.browser


async def party_through_lobby(page: Page, world: World, who: str, *, attestation: bool = False) -> None:
    """What a party does on the page: identity check (one-time code, or asking the mediator to attest),
    notices, consents → waiting in the lobby."""
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
    await page.get_by_role("button", name="确认并进入等候").click()
    await expect(page.locator("[data-step=lobby]")).to_be_visible()


@pytest.mark.timeout(60)
async def test_party_lobby_flow_and_admission(web_world: World, open_page: Opener) -> None:
    page = await open_page(f"{web_world.base_url}/join#{web_world.tokens['A']}")
    await expect(page.locator(".casehead")).to_contain_text("张三")
    await party_through_lobby(page, web_world, "A")
    await expect(page.locator("#lobby-status")).to_contain_text("调解员尚未上线")
    m = await web_world.staff("mediator")
    await expect(page.locator("#lobby-status")).to_contain_text("调解员已在线")
    await shot(page, "party-lobby")
    await m.wait(lambda c: any(p["name"] == "张三" and not p["blocking"] for p in c.state.get("lobby", [])))
    pid = next(p["id"] for p in m.state["lobby"] if p["name"] == "张三")
    await m.call("lobby:admit", {"participant": pid})
    await expect(page.locator("#btn-mute")).to_be_visible()
    await shot(page, "party-session")
    assert page.js_errors == []  # type: ignore[attr-defined]


@pytest.mark.timeout(45)
async def test_party_page_fits_a_phone(web_world: World, open_page: Opener) -> None:
    page = await open_page(f"{web_world.base_url}/join#{web_world.tokens['B']}", viewport={"width": 360, "height": 740})
    await expect(page.locator("[data-step=identity]")).to_be_visible()
    await shot(page, "party-phone-identity")
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    await page.click("#otp-start")
    await expect(page.locator("#otp")).to_be_visible()
    await page.fill("#otp", web_world.codes[f"invite:{web_world.invite_ids['B']}"])
    await page.get_by_role("button", name="确认", exact=True).click()
    await expect(page.locator("[data-step=notices]")).to_be_visible()
    await shot(page, "party-phone-notices")
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    # the English switch translates the page
    await page.get_by_role("button", name="Switch to English").click()
    await expect(page.locator("[data-step=notices] h2")).to_have_text("Step 2: please read these notices")
    assert await page.evaluate("document.documentElement.lang") == "en"


@pytest.mark.timeout(45)
async def test_forwarded_link_is_refused_on_another_device(web_world: World, open_page: Opener) -> None:
    link = f"{web_world.base_url}/join#{web_world.tokens['A']}"
    owner = await open_page(link)
    await expect(owner.locator("[data-step=identity]")).to_be_visible()  # first use binds the link to this device
    other = await open_page(link)  # another browser context: another device key
    alert = other.locator("[data-code=device_mismatch]")
    await expect(alert).to_be_visible()
    await expect(alert).to_contain_text("此链接已在另一台设备上使用过")
    await shot(other, "party-forwarded-link-refused")
    # the owner's device still gets in
    await owner.reload()
    await expect(owner.locator("[data-step=identity]")).to_be_visible()


@pytest.mark.timeout(45)
async def test_court_portal_login_and_empty_queue(web_world: World, open_page: Opener) -> None:
    page = await open_page(f"{web_world.base_url}/court")
    await page.fill("#username", "judge")
    await page.fill("#password", "wrong-password-here")
    await page.get_by_role("button", name="登录").click()
    await expect(page.get_by_role("alert")).to_have_text("用户名或密码错误。")
    await page.fill("#password", PASSWORD)
    await page.get_by_role("button", name="登录").click()
    await expect(page.locator("#queue-empty")).to_contain_text("暂无司法确认申请")
    await shot(page, "court-queue")
