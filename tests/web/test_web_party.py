"""The party page in real Chromium against a real server: a phone-sized screen, and a forwarded link."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from tests.conftest import World
from tests.web.helpers import Opener, shot

pytestmark = pytest.mark.browser


@pytest.mark.timeout(45)
async def test_party_page_fits_a_phone(web_world: World, open_page: Opener) -> None:
    page = await open_page(
        f"{web_world.base_url}/join#{web_world.tokens['B']}", viewport={"width": 360, "height": 740}
    )
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
    await expect(
        owner.locator("[data-step=identity]")
    ).to_be_visible()  # first use binds the link to this device
    other = await open_page(link)  # another browser context: another device key
    alert = other.locator("[data-code=device_mismatch]")
    await expect(alert).to_be_visible()
    await expect(alert).to_contain_text("此链接已在另一台设备上使用过")
    await shot(other, "party-forwarded-link-refused")
    # the owner's device still gets in
    await owner.reload()
    await expect(owner.locator("[data-step=identity]")).to_be_visible()
