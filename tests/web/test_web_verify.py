"""Where people meet copies and verification, in real Chromium: the judge reads the ruling back before signing it;
after the session a party's page offers "my documents" (consent asked once), downloads the sealed agreement and
the ruling from the device its link is bound to (another device gets nothing); /verify/<code> shows the facts
without personal data and checks a real PDF in the browser; /c/<code> says what happens next and whom to call."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from tests.conftest import PASSWORD, World
from tests.court.helpers import COURT, http_status, party_sign, sealed
from tests.web.helpers import Opener, shot

pytestmark = pytest.mark.browser
DESKTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}
PERSONAL = ("张三", "李四", "13800000001", "13800000002", "630122199001010000", "鲁沙尔镇和平村", "邻里漏水纠纷")


async def no_personal_data(page: Page) -> None:
    text = await page.locator("body").inner_text()
    for secret in PERSONAL:
        assert secret not in text, secret


async def judge_rules_in_the_page(court: Page, app_id: int) -> None:
    await court.fill("#username", "judge")
    await court.fill("#password", PASSWORD)
    await court.get_by_role("button", name="登录").click()
    await expect(court.locator("#queue tr[data-application]")).to_have_count(1)
    await court.locator(f"a[href='#/app/{app_id}']").click()
    await expect(court.locator("#application-status")).to_have_text("法院已受理")
    await court.click("#court-confirm")  # no reasoning yet: refused in the page, nothing sent
    await expect(court.get_by_role("alert")).to_have_text("请先填写裁定理由。")
    await expect(court.locator("#rule-confirm")).to_be_hidden()
    await court.fill("#reasoning", "经审查，双方系自愿达成调解协议，内容明确，不违反法律强制性规定。")
    await court.click("#court-confirm")
    await expect(court.locator("#rule-confirm")).to_contain_text("裁定确认调解协议有效")
    await expect(court.locator("#rule-confirm")).to_contain_text("不违反法律强制性规定")
    await expect(court.locator("#rule-confirm")).not_to_contain_text("null")
    await shot(court, "verify-1-court-ruling-readback-1366")
    await court.click("#rule-sign")
    await expect(court.locator("#application-status")).to_have_text("法院裁定协议有效")
    await expect(court.locator("#objection-windows")).to_contain_text("15 日内")
    await expect(court.locator("#ruling-pdf")).to_be_visible()


async def download(page: Page, kind: str, dest: Path) -> bytes:
    async with page.expect_download() as info:
        await page.locator(f"#my-documents li[data-doc={kind}] button").click()
    d = await info.value
    await d.save_as(dest)
    return await asyncio.to_thread(dest.read_bytes)


@pytest.mark.timeout(300)
async def test_copies_ruling_and_verification_in_chromium(web_world: World, open_page: Opener, tmp_path: Path
                                                          ) -> None:
    w = web_world
    m, a, b, _ = await sealed(w)
    med = await w.staff("mediator", session=False)
    app_id = (await med.api("POST", f"/api/cases/{w.case_code}/application", {"court_id": COURT}))[
        "application"]["id"]
    await party_sign(a, "application")
    await party_sign(b, "application")
    judge = await w.staff("judge", session=False)
    await judge.api("POST", f"/api/court/applications/{app_id}/accept")

    # the judge: reasoning required, read back, then signed
    court = await open_page(f"{w.base_url}/court", viewport=DESKTOP)
    await judge_rules_in_the_page(court, app_id)

    # party A gets a new link while the session is live (lost phone): the browser binds it; then the session ends
    out = await med.api("POST", f"/api/sessions/{w.session_id}/invites/{w.invite_ids['A']}/reissue")
    link = out["invite"]["link"]
    phone = await open_page(link, viewport=PHONE)
    await expect(phone.locator("[data-step=identity]")).to_be_visible()
    await m.call("session:end", {"reason": "调解结束"})
    docs = phone.locator("#my-documents")
    await expect(docs.locator("#service-consent")).to_be_visible()
    await shot(phone, "verify-2-party-documents-consent-390")
    await docs.locator("#consent-yes").click()
    await expect(docs.locator("#service-consent")).to_have_count(0)  # the answer is recorded (before any reload)
    await expect(docs.locator("li[data-doc=ruling]")).to_contain_text("裁定确认调解协议有效")
    await expect(docs.locator("#objection-windows")).to_contain_text("15 日内")

    # after reloading, the ended session still opens the documents (no live session needed)
    await phone.reload()
    await expect(phone.locator("#error-text")).to_contain_text("本次调解已经结束。")
    await expect(docs.locator("#service-consent")).to_have_count(0)  # asked once
    sealed_pdf = await download(phone, "agreement", tmp_path / "sealed.pdf")
    ruling_pdf = await download(phone, "ruling", tmp_path / "ruling.pdf")
    assert sealed_pdf[:5] == ruling_pdf[:5] == b"%PDF-"
    _, center_copy = await http_status(med, "GET", f"/api/cases/{w.case_code}/agreement/pdf?sealed=1")
    assert sealed_pdf == center_copy
    await expect(docs.locator("li[data-doc=ruling]")).to_contain_text("已于")
    await shot(phone, "verify-3-party-documents-390")
    desk = await open_page(link, viewport=DESKTOP)  # same link, another device: nothing
    await expect(desk.locator("#docs-error")).to_contain_text("设备验证失败")
    assert await desk.locator("#my-documents button.primary").count() == 0
    await shot(desk, "verify-4-other-device-refused-1366")

    # the public verification page: facts, no personal data, a real PDF checked in the browser
    for size, tag in ((DESKTOP, "1366"), (PHONE, "390")):
        v = await open_page(f"{w.base_url}/verify/{w.case_code}", viewport=size)
        await expect(v.locator("#agreement-facts")).to_contain_text("已生效并封存")
        await expect(v.locator("#agreement-facts")).to_contain_text(hashlib.sha256(sealed_pdf).hexdigest())
        await expect(v.locator("#ruling-facts")).to_contain_text("裁定确认调解协议有效")
        await no_personal_data(v)
        await v.set_input_files("#pdf-file", str(tmp_path / "sealed.pdf"))
        await expect(v.locator("#check-result")).to_have_attribute("data-match", "sealed")
        await expect(v.locator("#check-result")).to_contain_text("一致")
        await shot(v, f"verify-5-verify-page-{tag}")
        assert v.js_errors == []  # type: ignore[attr-defined]
    tampered = tmp_path / "tampered.pdf"
    await asyncio.to_thread(tampered.write_bytes, sealed_pdf[:-20] + b"%tampered-trailer%\n")
    await v.set_input_files("#pdf-file", str(tampered))
    await expect(v.locator("#check-result")).to_have_attribute("data-match", "none")
    await v.set_input_files("#pdf-file", str(tmp_path / "ruling.pdf"))
    await expect(v.locator("#check-result")).to_have_attribute("data-match", "ruling")

    # the case QR page: stage, next step, whom to call; no personal data
    admin = await w.staff("admin", session=False)
    await admin.api("PUT", "/api/center/contact", {"phone": "0971-2231234", "hours": "工作日 8:30-17:30"})
    for size, tag in ((PHONE, "390"), (DESKTOP, "1366")):
        c = await open_page(f"{w.base_url}/c/{w.case_code}", viewport=size)
        await expect(c.locator("#contact")).to_contain_text("湟中区社会治理综合服务中心")
        await expect(c.locator("#center-phone")).to_have_attribute("href", "tel:09712231234")
        await expect(c.locator("#next")).not_to_be_empty()
        await no_personal_data(c)
        await shot(c, f"verify-6-case-page-{tag}")
    missing = await open_page(f"{w.base_url}/verify/QH-HX-1999-000999", viewport=PHONE)
    await expect(missing.locator("#verify-error")).to_contain_text("未找到")
    await missing.locator("[data-lang-switch]").click()
    await expect(missing.locator("#verify-error")).to_contain_text("No case has this code")
