"""Helpers shared by the browser tests (importable; fixtures live in conftest.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from playwright.async_api import Page, expect

from tests.conftest import World

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "web"
WEB_DIR = ROOT / "web"

Opener = Callable[..., Awaitable[Page]]


async def shot(page: Page, name: str, *, full_page: bool = True) -> None:
    """Save a screenshot under test-artifacts/web/ (the whole page, or what the viewport shows)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=full_page)


CONFIRM = "dialog.confirm-dialog[open]"


async def confirm_in_page(page: Page, contains: str = "", *, answer: bool = True, shot_name: str = "") -> str:
    """Answer the page's own "are you sure?" (web/js/confirm.js): a modal <dialog> whose focus starts on the cancel
    button. Checks its text, optionally keeps a screenshot, then confirms (or cancels); returns the dialog's text."""
    dlg = page.locator(CONFIRM)
    await expect(dlg).to_be_visible()
    await expect(dlg.locator("#confirm-dialog-no")).to_be_focused()
    text = await dlg.inner_text()
    if contains:
        assert contains in text, text
    if shot_name:
        await shot(page, shot_name, full_page=False)
    await dlg.locator("#confirm-dialog-yes" if answer else "#confirm-dialog-no").click()
    await expect(page.locator(CONFIRM)).to_have_count(0)
    return text


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
