"""The console's export job (issue 14 item 5) in real Chromium at 1366×768: a mediator prepares the playable file
of a recording, sees its progress, and downloads it when it is ready; the download is the job's file."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pytest
from playwright.async_api import ViewportSize, expect

from mediation.db import utcnow
from recordings import export_job
from tests.conftest import PASSWORD, World
from tests.recordings.test_export_jobs import record
from tests.web.helpers import Opener, shot

LAPTOP = ViewportSize(width=1366, height=768)


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_console_prepares_and_downloads_an_export(web_world: World, open_page: Opener, tmp_path: Path) -> None:
    _, rid = await record(web_world, seconds=3.0)
    med = await open_page(f"{web_world.base_url}/console", viewport=LAPTOP)
    await med.fill("#username", "mediator")
    await med.fill("#password", PASSWORD)
    await med.get_by_role("button", name="登录").click()
    await expect(med.get_by_role("heading", name="案件列表")).to_be_visible()
    await med.evaluate(f"location.hash = '#/case/{web_world.case_code}'")
    job = med.locator(f".export-job[data-recording='{rid}']")
    await expect(job).to_be_visible()
    await job.get_by_role("button", name="生成可播放文件").click()
    await expect(job.locator(".export-status")).to_contain_text("生成")  # queued / preparing: n%
    await expect(job.locator(".export-download")).to_be_visible(timeout=90_000)
    await expect(job.locator(".export-status")).to_contain_text("已生成")
    await shot(med, "console-export-job-ready-1366")
    async with med.expect_download() as info:
        await job.locator(".export-download").click()
    download = await info.value
    path = tmp_path / "download.mp4"
    await download.save_as(str(path))
    data = path.read_bytes()
    assert data[4:8] == b"ftyp"
    href = await job.locator(".export-download").get_attribute("href")
    assert href is not None
    job_id = href.split("/")[3]
    status = await med.evaluate(f"fetch('/api/exports/{job_id}').then((r) => r.json())")
    assert hashlib.sha256(data).hexdigest() == status["job"]["sha256"]

    # the page stays open past the keeping time: the next click says so in Chinese, and offers to prepare it again
    sv = web_world.services
    assert sv.export_store is not None
    later = utcnow() + dt.timedelta(days=sv.settings.export_keep_days, hours=1)
    assert await export_job.expire(sv.db, sv.export_store, keep=dt.timedelta(days=sv.settings.export_keep_days),
                                   now=later) == [job_id]
    await job.locator(".export-download").click()
    await expect(job.locator(".export-status")).to_have_text("已过期，请重新生成")
    await expect(job.locator(".export-download")).to_be_hidden()
    await expect(job.get_by_role("button", name="生成可播放文件")).to_be_enabled()
    assert not med.js_errors, med.js_errors  # type: ignore[attr-defined]
