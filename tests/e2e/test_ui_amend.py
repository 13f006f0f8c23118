"""Correcting a signed report in the browser: the radiologist who signed it opens the correction
(the form editable again, a banner naming the version it will supersede), cancels it (the draft
goes back as it was), corrects the impression and signs the amendment with a reason, the
username and the password; the versions show v2 amended and v1 superseded, the amended PDF
downloads, an addendum signed through the form becomes v3, and a correction opened then says the
amendment carries the addenda over. The report is written and signed through the API
(test_ui_reading covers that in the browser); every wait is on something the page shows."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from playwright.async_api import Page, expect

from e2e.ui import fill_signer, sign_in
from test_reports import reading, sign, start, written
from test_worklist import reader

if TYPE_CHECKING:
    from conftest import Server, World  # tests/conftest.py

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="no /usr/bin/chromium"),
]

CORRECTED = (
    "右肺上叶实性小结节，直径约 6 mm，建议 6 个月后复查。Solid nodule, follow-up in 6 months."
)
REASON = "Follow-up interval corrected after review of the prior study."
ADDENDUM = "Prior study from 2025 reviewed: the nodule is stable."


async def test_radiologist_amends_the_signed_report_and_adds_an_addendum(
    page: Page,
    console,
    shots,
    assert_accessible,
    server: Server,
    world: World,
    tmp_path: Path,
) -> None:
    hospital = world.hospital()
    who = reader(world, [hospital], {"chest": 3})
    username = who.api.get("/api/me").json()["username"]
    case_id = reading(world, hospital, who)
    report = start(who, case_id)
    written(who, report)
    signed = sign(who, report["id"])
    assert signed["status"] == "final"
    original = signed["draft"]["texts"]["impression"]

    # 1. The signed report on the reading page: versions, and the correction offered.
    await sign_in(page, server.url, username, who.password)
    await page.goto(f"{server.url}/reading/{case_id}")
    await expect(page.get_by_role("heading", name="Signed versions")).to_be_visible()
    await expect(page.get_by_role("link", name="PDF of version 1")).to_be_visible()
    await expect(page.get_by_role("form", name="Report")).to_have_count(0)
    correct = page.get_by_role("button", name="Correct the report (amend)")

    # 2. Open the correction and cancel it: the draft on the server is as signed again.
    await correct.focus()
    await page.keyboard.press("Enter")
    banner = page.get_by_role(
        "region", name="Writing an amendment: signing it supersedes version 1"
    )
    await expect(banner).to_be_visible()
    await expect(banner).to_be_focused()
    resumed = banner.get_by_text(re.compile(r"saved after version 1 was signed"))
    await expect(resumed).to_have_count(0)
    form = page.get_by_role("form", name="Report")
    impression = form.get_by_label("Impression text", exact=True)
    await expect(impression).to_have_value(original)
    await expect(impression).to_be_editable()
    await impression.fill("A correction that is dropped.")
    status = page.get_by_role("status").filter(
        has_text=re.compile(r"^(Saved|Saving…|Unsaved changes)$")
    )
    await expect(status).to_have_text("Saved")
    await form.get_by_role("button", name="Cancel the correction").click()
    await expect(
        page.get_by_text("Correction cancelled: version 1 stands as signed.")
    ).to_be_visible()
    await expect(form).to_have_count(0)
    await expect(correct).to_be_focused()
    now = who.api.get(f"/api/reports/{report['id']}").json()
    assert now["draft"]["texts"]["impression"] == original
    assert [v["version"] for v in now["versions"]] == [1]

    # 3. Correct it again: the banner says the draft was saved since the signature; change the
    #    impression (autosaved), then sign the amendment (Ctrl+Enter) with a reason.
    await correct.click()
    await expect(banner).to_be_visible()
    await expect(resumed).to_be_visible()
    await impression.fill(CORRECTED)
    await expect(status).to_have_text("Saved")
    assert who.api.get(f"/api/reports/{report['id']}").json()["draft"]["texts"]["impression"] == (
        CORRECTED
    )
    await expect(page.get_by_title("Preview of the draft report (PDF)")).to_be_visible()
    await shots.take("amending")
    await assert_accessible(page, "the correction of a signed report", exclude=[".viewer canvas"])

    await impression.press("Control+Enter")
    dialog = page.get_by_role("dialog", name="Sign the amendment")
    await expect(dialog).to_be_visible()
    reason = dialog.get_by_label("Reason for the amendment")
    await expect(reason).to_be_focused()
    await assert_accessible(page, "the amendment dialog", exclude=[".viewer canvas"])
    # No reason, no signature: the field is required.
    await fill_signer(dialog, username, who.password)
    await dialog.get_by_role("button", name="Sign the amendment").click()
    await expect(dialog).to_be_visible()
    assert len(who.api.get(f"/api/reports/{report['id']}").json()["versions"]) == 1
    await reason.fill(REASON)
    await dialog.get_by_role("button", name="Sign the amendment").click()
    await expect(dialog).to_be_hidden()

    # 4. v2 amended with its reason, v1 still listed and superseded; the amended PDF downloads.
    await expect(page.get_by_text(re.compile(r"^Signed: version 2, amended"))).to_be_visible()
    await expect(page.locator(".badge.status-amended").first).to_be_visible()
    versions = page.locator(".versions li")
    await expect(versions).to_have_count(2)
    await expect(versions.nth(0)).to_contain_text("Version 2 · Amended")
    await expect(versions.nth(0)).to_contain_text(f"Reason for the amendment: {REASON}")
    await expect(versions.nth(1)).to_contain_text("Version 1 · Final")
    await expect(versions.nth(1)).to_contain_text("superseded by version 2")
    await expect(form).to_have_count(0)
    await shots.take("amended")
    link = page.get_by_role("link", name="PDF of version 2")
    await expect(link).to_have_attribute("href", re.compile(r"^blob:"))
    async with page.expect_download() as download_info:
        await link.click()
    download = await download_info.value
    assert download.suggested_filename == f"report-{report['id']}-v2.pdf"
    saved = tmp_path / download.suggested_filename
    await download.save_as(saved)
    data = saved.read_bytes()
    assert data.startswith(b"%PDF-") and b"/ByteRange" in data  # a signed PDF
    r = who.api.get(f"/api/reports/{report['id']}/versions/2/pdf")
    assert r.status_code == 200, r.text
    assert r.content == data

    amended = who.api.get(f"/api/reports/{report['id']}").json()
    assert amended["status"] == "amended"
    assert [(v["version"], v["status"]) for v in amended["versions"]] == [
        (1, "final"),
        (2, "amended"),
    ]
    assert amended["versions"][0]["superseded_by"] == 2
    assert amended["versions"][1]["amendment_reason"] == REASON

    # 5. An addendum through its form, the username and the password: v3.
    await page.get_by_role("button", name="Add an addendum…").click()
    await page.get_by_label("Addendum text").fill(ADDENDUM)
    await page.get_by_label("Reason", exact=True).fill("Prior study arrived.")
    await page.get_by_role("button", name="Sign the addendum").click()
    dialog = page.get_by_role("dialog", name="Addendum")
    await expect(dialog).to_be_visible()
    await fill_signer(dialog, username, who.password)
    await dialog.get_by_role("button", name="Sign the addendum").click()
    await expect(dialog).to_be_hidden()
    await expect(page.get_by_role("link", name="PDF of version 3")).to_be_visible()
    await expect(versions).to_have_count(3)
    versions_now = who.api.get(f"/api/reports/{report['id']}/versions").json()
    assert [v["version"] for v in versions_now] == [1, 2, 3]
    assert versions_now[-1]["signatures"][0]["meaning"] == "addendum"

    # 6. The draft does not hold the addenda; the amendment carries them over and the banner
    #    says so; cancelled unchanged, nothing is saved.
    await correct.click()
    banner = page.get_by_role(
        "region", name="Writing an amendment: signing it supersedes version 3"
    )
    await expect(banner).to_be_visible()
    await expect(
        banner.get_by_text(re.compile(r"^The addenda of version 3 .* carries them over"))
    ).to_be_visible()
    await form.get_by_role("button", name="Cancel the correction").click()
    await expect(
        page.get_by_text("Correction cancelled: version 3 stands as signed.")
    ).to_be_visible()
    assert (
        who.api.get(f"/api/reports/{report['id']}").json()["updated_at"]
        == (versions_now[-1]["created_at"])
    )
    console.assert_clean()
