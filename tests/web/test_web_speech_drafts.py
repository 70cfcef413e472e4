"""Speech drafts in real Chromium (issue 13 item 4): with a recognizer configured (a test double that records what
it is given and ends an utterance after N frames: no recognition faked), the party page's microphone (Chromium's
fake device) is decoded per speaker and the mediator's console lists the suggestions apart from the transcript;
"use" puts one in the form, and only "add" writes it, as an entry from speech-to-text."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from tests.conftest import World
from tests.media.test_speech_tap import RecordingRecognizer
from tests.web.helpers import Opener, party_through_lobby
from tests.web.test_web_story import mediator_opens_case

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]
DESKTOP = {"width": 1366, "height": 768}


async def test_console_shows_speech_suggestions_and_writes_only_what_is_added(web_world: World,
                                                                               open_page: Opener) -> None:
    made: list[RecordingRecognizer] = []

    def factory() -> RecordingRecognizer:
        made.append(RecordingRecognizer())
        return made[-1]

    web_world.services.speech = factory
    med = await open_page(f"{web_world.base_url}/console", viewport=DESKTOP)
    invites = await mediator_opens_case(med)
    await med.get_by_role("link", name="以主持人身份进入").click()
    await expect(med.locator("#lobby")).to_be_visible()
    a = await open_page(invites["王五"]["link"], viewport=DESKTOP)
    web_world.invite_ids["王五"] = int(invites["王五"]["invite"])
    await party_through_lobby(a, web_world, "王五")
    await expect(med.locator("#lobby li.lobby-person[data-ready=true]")).to_have_count(1)
    await med.click("#admit-all")
    await expect(a.locator("#btn-mute")).to_be_visible()

    drafts = med.locator("#transcript-drafts li", has_text="王五")
    await expect(drafts.first).to_be_visible(timeout=60_000)
    await expect(med.locator("#transcript-drafts h3")).to_have_text("语音转写建议（尚未记入笔录）")
    assert await med.locator("#transcript .tr-list li:not(.draft)").count() == 0  # a suggestion is no entry
    await drafts.first.get_by_role("button", name="采用").click()
    await expect(med.locator("#transcript-text")).to_have_value("endpoint")
    await med.fill("#transcript-text", "我同意先还一半。")
    await med.click("#transcript-add")
    entry = med.locator("#transcript > ol.tr-list li", has_text="我同意先还一半")
    await expect(entry).to_be_visible()
    await expect(entry).to_contain_text("语音转写")
    await expect(entry).to_contain_text("王五")
    assert made and all(r.rates == {16000} for r in made)
