"""The court portal's export job (issue 14 item 5) in real Chromium at 1366x768: the judge of the court an
application was sent to prepares the playable file of the session's recording from the application view, sees it
prepared, and downloads it; the download is the job's file (SHA-256) and the request is on the audit log (R10)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from playwright.async_api import ViewportSize, expect

from mediation import audit
from tests.conftest import PASSWORD, World, record_trio
from tests.court.helpers import COURT, party_sign, sealed
from tests.web.helpers import Opener, shot

LAPTOP = ViewportSize(width=1366, height=768)


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_court_prepares_and_downloads_the_recording(web_world: World, open_page: Opener,
                                                           tmp_path: Path) -> None:
    w = web_world
    m, a, b, _ = await sealed(w)
    rid = await record_trio(m, a, b, 3.0)
    med = await w.staff("mediator", session=False)
    await med.api("POST", f"/api/cases/{w.case_code}/application", {"court_id": COURT})
    await party_sign(a, "application")
    await party_sign(b, "application")
    await m.call("session:end", {"reason": "调解结束"})

    court = await open_page(f"{w.base_url}/court", viewport=LAPTOP)
    await court.fill("#username", "judge")
    await court.fill("#password", PASSWORD)
    await court.get_by_role("button", name="登录").click()
    await court.locator("#queue tr[data-application]").get_by_role("link").click()
    job = court.locator(f".export-job[data-recording='{rid}']")
    await expect(job).to_be_visible()
    await job.get_by_role("button", name="生成可播放文件").click()
    await expect(job.locator(".export-download")).to_be_visible(timeout=90_000)
    await expect(job.locator(".export-status")).to_contain_text("已生成")
    await job.scroll_into_view_if_needed()
    await shot(court, "court-export-job-ready-1366")
    async with court.expect_download() as info:
        await job.locator(".export-download").click()
    path = tmp_path / "download.mp4"
    await (await info.value).save_as(str(path))
    data = path.read_bytes()
    assert data[4:8] == b"ftyp"
    href = await job.locator(".export-download").get_attribute("href")
    assert href is not None
    status = await court.evaluate(f"fetch('/api/exports/{href.split('/')[3]}').then((r) => r.json())")
    assert hashlib.sha256(data).hexdigest() == status["job"]["sha256"]
    async with w.services.db.session() as s:
        actions = [e.action for e in await audit.entries_for(s, f"recording:{rid}")]
    assert "recording.export_requested" in actions and "recording.export_download" in actions, actions
    assert not court.js_errors, court.js_errors  # type: ignore[attr-defined]
