"""Fixtures for browser tests: a real server on 127.0.0.1 whose links carry its real port, and Debian's Chromium
driven by Playwright with a fake camera and microphone (media-notes.md)."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Dialog, Page, async_playwright, expect

from signaling.app import create_app
from signaling.config import Settings
from signaling.services import SERVICES
from tests.conftest import World, seed
from tests.web.helpers import CHROMIUM, FLAGS, WEB_DIR, Opener

expect.set_options(timeout=15_000)  # two shared cores: give the pages time, never a fixed sleep


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def web_world(aiohttp_server: Any, settings: Settings) -> AsyncIterator[World]:
    """Like `world`, but the server's base URL is its real address, so the invite links it prints open."""
    if not (WEB_DIR / "node_modules" / "socket.io-client" / "dist").is_dir():
        pytest.fail("run `npm ci --prefix web` first: the pages need socket.io-client")
    port = _free_port()
    settings.base_url = f"http://127.0.0.1:{port}"
    app = create_app(settings)
    server = await aiohttp_server(app, host="127.0.0.1", port=port)
    sv = app[SERVICES]
    w = World(str(server.make_url("")).rstrip("/"), sv)
    seeded = await seed(sv)
    w.case_code, w.session_id, w.tokens, w.invite_ids = (
        seeded["case"],
        seeded["session"],
        seeded["tokens"],
        seeded["ids"],
    )
    yield w
    for c in w.clients:
        await c.close()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            yield b
        finally:
            await b.close()


@pytest.fixture
async def open_page(browser: Browser) -> AsyncIterator[Opener]:
    """open_page(url, viewport=...) -> a page in its OWN browser context (its own device key store)."""
    contexts: list[BrowserContext] = []

    async def open_(url: str, *, viewport: dict[str, int] | None = None, name: str = "") -> Page:
        size = viewport or {"width": 1000, "height": 760}
        ctx = await browser.new_context(viewport={"width": size["width"], "height": size["height"]}, locale="zh-CN")
        contexts.append(ctx)
        page = await ctx.new_page()
        page.set_default_timeout(15_000)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.js_errors = errors  # type: ignore[attr-defined]
        # The pages ask "are you sure?" in the page (web/js/confirm.js, tests answer it with helpers.confirm_in_page).
        # A browser dialog (window.confirm/alert) is a bug now: it is answered no and reported as a page error.
        async def native_dialog(d: Dialog) -> None:
            errors.append(f"native dialog: {d.message}")
            await d.dismiss()

        page.on("dialog", native_dialog)
        await page.goto(url)
        return page

    yield open_
    for ctx in contexts:
        await ctx.close()
