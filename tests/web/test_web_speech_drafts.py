"""Speech drafts in real Chromium (issue 13 item 4): with a recognizer configured (a test double that records what
it is given and ends an utterance after N frames: no recognition faked), the party page's microphone (Chromium's
fake device) is decoded per speaker and the mediator's console lists the suggestions apart from the transcript;
"use" puts one in the form, and only "add" writes it, as an entry from speech-to-text."""

from __future__ import annotations

import asyncio

import pytest
from playwright.async_api import expect

from tests.conftest import World
from tests.media.test_speech_tap import RecordingRecognizer
from tests.web.helpers import Opener
from tests.web.test_web_story import host_admits_one_party

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]
DESKTOP = {"width": 1366, "height": 768}


async def test_console_shows_speech_suggestions_and_writes_only_what_is_added(web_world: World,
                                                                               open_page: Opener) -> None:
    made: list[RecordingRecognizer] = []

    def factory() -> RecordingRecognizer:
        made.append(RecordingRecognizer())
        return made[-1]

    web_world.services.speech = factory
    med, _party = await host_admits_one_party(web_world, open_page, DESKTOP)

    drafts = med.locator("#transcript-drafts li", has_text="王五")
    await expect(drafts.first).to_be_visible(timeout=60_000)
    await expect(med.locator("#transcript-drafts h3")).to_have_text("语音转写建议（尚未记入笔录）")
    assert await med.locator("#transcript .tr-list li:not(.draft)").count() == 0  # a suggestion is no entry
    await drafts.first.get_by_role("button", name="采用").click()
    await expect(med.locator("#transcript-text")).to_have_value("endpoint")
    await med.fill("#transcript-text", "我同意先还一半。")
    # suggestions keep arriving while the writer types: the box keeps its text and its focus (a page that rebuilt
    # the form lost both, and "add" wrote the suggestion instead of what was typed)
    await med.evaluate("window.__drafts = document.querySelector('#transcript-drafts')")
    for _ in range(150):  # polled from here: the pages' CSP (no eval) refuses wait_for_function's predicate
        if await med.evaluate("document.querySelector('#transcript-drafts') !== window.__drafts"):
            break
        await asyncio.sleep(0.2)
    else:
        raise AssertionError("no new speech suggestion within 30 s")
    assert await med.evaluate("document.activeElement.id") == "transcript-text"
    await expect(med.locator("#transcript-text")).to_have_value("我同意先还一半。")
    await med.click("#transcript-add")
    entry = med.locator("#transcript-entries li", has_text="我同意先还一半")
    await expect(entry).to_be_visible()
    await expect(entry).to_contain_text("语音转写")
    await expect(entry).to_contain_text("王五")
    assert made and all(r.rates == {16000} for r in made)
