"""The whole journey of a study, in the browser, by the three people it passes through: the
county hospital's technician uploads a CT with its clinical question; routing gives it to the
only radiologist credentialed for the hospital; the radiologist takes the next case, reads it
(first image, scrolling, a length measured and sent to the report), fills the template and signs;
the technician downloads the signed PDF; the coordinator sees the case in the turnaround figures.
Nobody assigns anything by hand. Every wait is on something the page shows."""

from __future__ import annotations

import json
import re
import secrets
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from playwright.async_api import Browser, Page, expect

from e2e.ui import fill_signer, sign_in
from helpers import study, write
from radrelay import synth
from test_worklist import case, reader

if TYPE_CHECKING:
    from conftest import Server, World  # tests/conftest.py

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="no /usr/bin/chromium"),
]

SLICES = 60
PATIENT = synth.SynthPatient(
    name="Wang^Fang=王^芳", patient_id="E2EJ00001", birth_date="19580714", sex="F"
)
SHOWN_NAME = "王芳 (Wang Fang)"
QUESTION = "Upper abdominal pain for two days, gallstones? 上腹痛两天，胆结石？"
FINDINGS = "胆囊内见多发结石。Multiple gallstones in the gallbladder."
IMPRESSION = "胆囊多发结石。Cholelithiasis."
DRAWING = [".viewer-canvas canvas", ".viewer-canvas svg"]
LOADING_TIMEOUT_MS = 60_000


async def test_a_study_from_upload_to_signed_report_and_turnaround(
    page: Page,
    browser: Browser,
    console,
    shots,
    assert_accessible,
    timing,
    server: Server,
    world: World,
    tmp_path: Path,
) -> None:
    hospital = world.hospital()
    radiologist = reader(world, [hospital], {"abdominal": 3})
    radiologist_name = radiologist.api.get("/api/me").json()["username"]
    coordinator_name, coordinator_password = (
        f"coord-{uuid.uuid4().hex[:8]}",
        secrets.token_urlsafe(12),
    )
    world.user(coordinator_name, "coordinator", coordinator_password)

    @asynccontextmanager
    async def another_user() -> AsyncIterator[Page]:
        """A browser of its own (no shared session), watched for console errors too."""
        context = await browser.new_context(
            locale="en-US", timezone_id="Asia/Shanghai", viewport={"width": 1400, "height": 950}
        )
        try:
            other = await context.new_page()
            other.on("console", console.on_console)
            other.on("pageerror", console.on_page_error)
            yield other
        finally:
            await context.close()

    # 1. The technician sends the study from the upload page, urgent, with the question.
    paths = write(study("CT", slices=SLICES, size=256, patient=PATIENT), tmp_path / "study")
    await sign_in(page, server.url, hospital.tech.username, hospital.tech_password)
    await expect(page.get_by_role("heading", name="Send studies", level=1)).to_be_visible()
    async with page.expect_file_chooser() as chooser:
        await page.get_by_role("button", name="Choose files").click()
    await (await chooser.value).set_files(paths)
    card = page.get_by_role("article", name=SHOWN_NAME)
    await expect(card.get_by_text("Ready to send")).to_be_visible()
    await card.get_by_role("radio", name="Urgent").check()
    await card.get_by_label("Clinical question").fill(QUESTION)
    await page.get_by_role("button", name="Send 1").click()
    await expect(page.get_by_role("status").filter(has_text="All sent.")).to_be_visible()
    open_case = card.get_by_role("link", name=re.compile(r"^Open case \d+$"))
    case_id = int((await open_case.inner_text()).rsplit(" ", 1)[1])
    await shots.take("tech-sent")

    # 2. Routing, not a person, gives it to the one radiologist who may read it.
    await open_case.click()
    detail = page.get_by_role("complementary", name=f"Case {case_id} · {SHOWN_NAME}")
    await expect(detail.get_by_text("Routed", exact=True)).to_be_visible()
    routed = case(radiologist.api, case_id)
    assert routed["status"] in ("assigned", "offered"), routed["status"]
    assert routed["subspecialty"] == "abdominal"

    async with another_user() as reading:
        # 3. The radiologist's worklist has it; "Next case" opens it.
        await sign_in(reading, server.url, radiologist_name, radiologist.password)
        await expect(reading).to_have_url(f"{server.url}/reading")
        row = reading.locator(f"tr[data-case-id='{case_id}']")
        await expect(row).to_be_visible()
        await shots_of(reading, shots, "radiologist-worklist")
        await reading.get_by_role("button", name=re.compile(r"^Next case")).click()
        await expect(reading).to_have_url(f"{server.url}/reading/{case_id}")
        assert case(radiologist.api, case_id)["status"] == "reading"

        # 4. The images: the first one drawn, then the stack; the time is printed.
        main = reading.get_by_test_id("viewport-main")
        await expect(main).to_have_attribute("data-image-count", str(SLICES))
        await expect(main).to_have_attribute("data-state", re.compile("^(first-image|loaded)$"))
        first = await reading.evaluate(
            """() => {
                const open = performance.getEntriesByName('radrelay.viewer.open').at(-1);
                const image = performance.getEntriesByName('radrelay.viewer.first-image').at(-1);
                return image.startTime - open.startTime;
            }"""
        )
        timing(f"journey: {SLICES}-slice CT, reading page to first image {first:.0f} ms")
        await expect(main).to_have_attribute("data-state", "loaded", timeout=LOADING_TIMEOUT_MS)

        # Scrolling: the wheel over the image, then a key. The page first scrolled down past
        # the case's header, as the reader does: the viewer then fills the screen and stays.
        await reading.locator(".reading-viewer").evaluate(
            "el => el.scrollIntoView({block: 'start'})"
        )
        box = await main.bounding_box()
        assert box is not None
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        await reading.mouse.move(x, y)
        await reading.mouse.wheel(0, 120)
        await expect(main).not_to_have_attribute("data-image-index", "0")
        await main.focus()
        await reading.keyboard.press("End")
        await expect(main).to_have_attribute("data-image-index", str(SLICES - 1))

        # 5. The template's fields, the findings, then a length measured and sent to the report.
        form = reading.get_by_role("form", name="Report")
        await form.get_by_label("CTDIvol", exact=True).fill("9.1")
        await form.get_by_label("Common bile duct diameter", exact=True).fill("5")
        findings = form.get_by_label("Findings text", exact=True)
        await findings.fill(FINDINGS)
        await form.get_by_label("Impression text", exact=True).fill(IMPRESSION)

        length_tool = reading.get_by_role("button", name="Length", exact=True)
        await length_tool.click()
        await expect(length_tool).to_have_attribute("aria-pressed", "true")
        await shots_of(reading, shots, "radiologist-viewer")
        await reading.mouse.move(x - 80, y)
        await reading.mouse.down()
        await reading.mouse.move(x, y + 10, steps=5)
        await reading.mouse.move(x + 80, y + 20, steps=5)
        await reading.mouse.up()
        measured = reading.get_by_role("list", name="Measurements").get_by_role("listitem")
        await expect(measured).to_have_count(1)
        await expect(measured).to_contain_text(re.compile(r"Length: \d+\.\d mm"))
        await measured.get_by_role("button", name="To report").click()
        # What the list shows is what went into the findings.
        length = re.search(r"\d+\.\d mm", await measured.inner_text())
        assert length is not None
        await expect(findings).to_have_value(re.compile(re.escape(length.group(0))))

        status = reading.get_by_role("status").filter(
            has_text=re.compile(r"^(Saved|Saving…|Unsaved changes)$")
        )
        await expect(status).to_have_text("Saved")
        await shots_of(reading, shots, "radiologist-reading")
        await assert_accessible(reading, "the reading page", exclude=DRAWING)

        # 6. Sign, with the username and password again.
        await findings.press("Control+Enter")
        dialog = reading.get_by_role("dialog", name="Sign the report")
        await fill_signer(dialog, radiologist_name, radiologist.password)
        await dialog.get_by_role("button", name="Sign", exact=True).click()
        await expect(dialog).to_be_hidden()
        await expect(reading.get_by_role("link", name="PDF of version 1")).to_be_visible()
        await shots_of(reading, shots, "radiologist-signed")

    report = radiologist.api.get(f"/api/cases/{case_id}/report").json()
    assert report["status"] == "final"
    # The measurement is in what was signed.
    versions = radiologist.api.get(f"/api/reports/{report['id']}/versions").json()
    assert length.group(0) in json.dumps(versions[0]["document"], ensure_ascii=False)

    # 7. The technician's case page: final, and the signed PDF to download (live: the page
    #    was left open on the case and learns of the report by itself).
    section = detail.get_by_role("region", name="Report")
    version = section.get_by_role("listitem").filter(has_text="Version 1")
    await expect(version).to_contain_text("Version 1 · Final")
    async with page.expect_download() as waiting:
        await version.get_by_role("button", name="Download PDF (version 1)").click()
    saved = tmp_path / "report.pdf"
    await (await waiting.value).save_as(saved)
    data = saved.read_bytes()
    assert data.startswith(b"%PDF-") and b"/ByteRange" in data
    await shots.take("tech-report")

    # 8. The coordinator: the case counts in today's turnaround.
    async with another_user() as control:
        await sign_in(control, server.url, coordinator_name, coordinator_password)
        await expect(control).to_have_url(f"{server.url}/control")
        await control.goto(f"{server.url}/control?tab=turnaround")
        chart = control.get_by_role(
            "img", name=re.compile(r"^Received → final report: p50 and p90 per Day")
        )
        await expect(chart).to_be_visible()
        table = control.get_by_role("table", name="Received → final report per Day")
        counted = table.get_by_role("row").filter(has=control.get_by_role("rowheader"))
        await expect(counted.first).to_be_visible()
        await shots_of(control, shots, "coordinator-turnaround")
        await assert_accessible(control, "the turnaround tab")

    console.assert_clean()


async def shots_of(page: Page, shots, step: str) -> None:
    """A screenshot of another user's page under the test's name."""
    saved, shots.page = shots.page, page
    try:
        await shots.take(step)
    finally:
        shots.page = saved
