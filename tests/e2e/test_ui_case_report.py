"""The sending hospital gets its signed report in the browser: the technician opens the case,
sees the signed version and who signed it, how its delivery to the hospital's systems stands,
and downloads the PDF. The report itself is written and signed through the API (the reading room
has its own browser tests)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from playwright.async_api import Page, expect

from e2e.ui import sign_in
from test_delivery import add_endpoint, signed_for
from test_delivery_senders import SECRET

if TYPE_CHECKING:
    from conftest import Server, World  # tests/conftest.py

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="no /usr/bin/chromium"),
]


async def test_technician_downloads_the_signed_report(
    page: Page, console, shots, server: Server, world: World, tmp_path: Path, assert_accessible
) -> None:
    hospital = world.hospital()
    # A webhook nobody answers (port 9 on loopback): the delivery is tried and waits to retry.
    add_endpoint(world, hospital, "webhook", url="http://127.0.0.1:9/fhir", secret=SECRET)
    hospital, _senior, case_id, report = signed_for(world, hospital)
    assert report["status"] == "final"

    await sign_in(page, server.url, hospital.tech.username, hospital.tech_password)
    await expect(page).to_have_url(f"{server.url}/upload")
    await page.goto(f"{server.url}/cases/{case_id}")
    panel = page.get_by_role("complementary")
    section = panel.get_by_role("region", name="Report")
    version = section.locator("li[data-version='1']")
    await expect(version).to_contain_text("Version 1 · Final")
    await expect(version).to_contain_text(re.compile(r"Signed by \S"))
    delivery = section.locator("li[data-status]")
    await expect(delivery).to_contain_text(f"webhook of {hospital.code}, version 1")
    await expect(delivery).to_contain_text(re.compile(r"(Waiting to send|Sending|Failed)"))
    timeline = panel.get_by_role("region", name="Timeline")
    await expect(timeline.get_by_text("Final report signed")).to_be_visible()
    await shots.take("case-with-report")
    await assert_accessible(page, "the case page with its report")

    async with page.expect_download() as waiting:
        await version.get_by_role("button", name="Download PDF (version 1)").click()
    download = await waiting.value
    assert download.suggested_filename == f"report-case{case_id}-v1.pdf"
    saved = tmp_path / download.suggested_filename
    await download.save_as(saved)
    data = saved.read_bytes()
    assert data.startswith(b"%PDF-") and b"/ByteRange" in data  # a signed PDF
    # The same bytes the API serves the hospital.
    r = hospital.tech.get(f"/api/reports/{report['id']}/versions/1/pdf")
    assert r.status_code == 200 and r.content == data
    console.assert_clean()
