"""A radiologist's reading loop in the browser: the worklist with its SLA countdown, opening an
assigned case, the report form built from the study's template (validation, normal text,
autosave), signing with the username and password again (another username is refused), the
signed version's PDF; then the technician sees the case reported and can download the PDF. The
English UI; every wait is on something the page shows."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from playwright.async_api import Browser, Page, expect

from conftest import login, wait_until
from e2e.ui import fill_signer, sign_in
from helpers import part10, study, upload
from radrelay import synth
from test_worklist import case, coordinator, reader

if TYPE_CHECKING:
    from conftest import Hospital, Server, World  # tests/conftest.py

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="no /usr/bin/chromium"),
]

SHOWN_NAME = "张伟 (Zhang Wei)"  # how the UI writes "Zhang^Wei=张^伟"
QUESTION = "Right upper quadrant pain, gallstones? 右上腹痛，胆结石？"
FINDINGS = "胆囊内见多发结石，最大约 12 mm。Multiple gallstones, the largest 12 mm."
IMPRESSION = "胆囊多发结石。Cholelithiasis."
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "e2e"
COUNTDOWN = re.compile(r"^(\d+ d )?\d+:\d{2}(:\d{2})? left$")


def send_case(hospital: Hospital) -> int:
    """A two-slice abdominal CT of 张伟 from the hospital's technician; the case id."""
    patient = synth.SynthPatient(
        name="Zhang^Wei=张^伟",
        patient_id=f"P{uuid.uuid4().hex[:8]}",
        birth_date="19610302",
        sex="M",
    )
    files = [
        (f"{i}.dcm", part10(ds))
        for i, ds in enumerate(study("CT", slices=2, hospital=hospital.code, patient=patient))
    ]
    r = upload(hospital.tech, files, clinical_question=QUESTION, priority="urgent")
    assert r.status_code == 200, r.text
    return int(r.json()["case_ids"][0])


def assign(world: World, case_id: int, reader_id: int) -> None:
    """A coordinator gives the case to the reader (assigned, not opened)."""
    coord = coordinator(world)
    wait_until(lambda: case(coord, case_id)["status"] != "receiving", what=f"case {case_id} ready")

    def assigned() -> bool:
        r = coord.post(
            f"/api/cases/{case_id}/assign", json={"reader_id": reader_id, "reason": "e2e reading"}
        )
        return r.status_code == 200

    wait_until(assigned, what=f"case {case_id} assigned")


async def test_radiologist_reads_signs_and_the_hospital_gets_the_pdf(
    page: Page,
    browser: Browser,
    console,
    shots,
    assert_accessible,
    server: Server,
    world: World,
) -> None:
    hospital = world.hospital()
    who = reader(world, [hospital], {"abdominal": 3})
    username = who.api.get("/api/me").json()["username"]
    case_id = send_case(hospital)
    assign(world, case_id, who.id)

    # 1. The radiologist signs in and lands on the worklist: the case is theirs, with its
    #    countdown to the deadline.
    await sign_in(page, server.url, username, who.password)
    await expect(page.get_by_role("heading", name="Worklist", level=1)).to_be_visible()
    await expect(page).to_have_url(f"{server.url}/reading")
    mine = page.get_by_role("region", name=re.compile(r"^My cases"))
    row = mine.locator(f"tr[data-case-id='{case_id}']")
    await expect(row).to_be_visible()
    await expect(row.get_by_role("cell").nth(2)).to_have_text(hospital.code)
    await expect(row.locator(".countdown")).to_have_text(COUNTDOWN)
    await expect(row.get_by_text("Assigned to me")).to_be_visible()
    await shots.take("worklist")
    await assert_accessible(page, "the worklist")

    # "?" shows the keyboard shortcuts; Esc closes them.
    await page.keyboard.press("?")
    help_dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
    await expect(help_dialog).to_be_visible()
    await expect(
        help_dialog.get_by_role("row", name=re.compile(r"^Ctrl\+Enter Sign"))
    ).to_be_visible()
    await page.keyboard.press("Escape")
    await expect(help_dialog).to_be_hidden()

    # 2. Open it: claimed, and the reading page shows the case, the viewer and the report form.
    #    The case has no report yet (its report_id says so): the page starts one.
    await row.get_by_role("button", name=f"Open {SHOWN_NAME}").click()
    await expect(page).to_have_url(f"{server.url}/reading/{case_id}")
    await expect(
        page.get_by_role("heading", name=re.compile(f"^{re.escape(SHOWN_NAME)}"), level=1)
    ).to_be_visible()
    await expect(page.get_by_text(QUESTION)).to_be_visible()
    await expect(page.locator(".viewer").first).to_be_visible()
    form = page.get_by_role("form", name="Report")
    await expect(form).to_be_visible()
    assert case(who.api, case_id)["status"] == "reading"

    # 3. The template's fields: a value out of range is flagged, then corrected.
    ctdi = form.get_by_label("CTDIvol", exact=True)
    await ctdi.fill("250")
    await expect(ctdi).to_have_attribute("aria-invalid", "true")
    await expect(form.get_by_text("At most 200 mGy")).to_be_visible()
    await ctdi.fill("8.5")
    await expect(ctdi).not_to_have_attribute("aria-invalid", "true")
    await form.get_by_label("Lesion size, dimension 1 of 2", exact=True).fill("12")
    await form.get_by_label("Lesion size, dimension 2 of 2", exact=True).fill("9")
    await form.get_by_label("Common bile duct diameter", exact=True).fill("6")

    # The findings' normal text, then the reader's own findings and impression.
    findings = form.get_by_label("Findings text", exact=True)
    await form.get_by_role("button", name="Normal text for Findings").click()
    await expect(findings).not_to_have_value("")
    await findings.fill(FINDINGS)
    await form.get_by_label("Impression text", exact=True).fill(IMPRESSION)

    # Autosave: "Saved", and the draft on the server has what was typed.
    status = page.get_by_role("status").filter(
        has_text=re.compile(r"^(Saved|Saving…|Unsaved changes)$")
    )
    await expect(status).to_have_text("Saved")
    report = who.api.get(f"/api/cases/{case_id}/report").json()
    assert report["status"] == "draft"
    assert report["draft"]["texts"]["findings"] == FINDINGS
    assert report["draft"]["texts"]["impression"] == IMPRESSION
    assert report["draft"]["entries"]["ctdi_vol"] == 8.5
    assert report["draft"]["entries"]["liver_lesion_size"] == [12, 9]
    assert report["draft"]["missing"] == []
    await expect(page.get_by_title("Preview of the draft report (PDF)")).to_be_visible()
    await shots.take("reading-page")
    await assert_accessible(page, "the reading page", exclude=[".viewer canvas"])

    # 4. Sign (Ctrl+Enter opens the dialog): the username and password again.
    await findings.press("Control+Enter")
    dialog = page.get_by_role("dialog", name="Sign the report")
    await expect(dialog).to_be_visible()
    await expect(dialog.get_by_label("Your username")).to_be_focused()
    await page.keyboard.press("Escape")
    await expect(dialog).to_be_hidden()
    await form.get_by_role("button", name=re.compile(r"^Sign…")).click()
    await expect(dialog).to_be_visible()
    await expect(dialog.get_by_label("Your username")).to_be_focused()
    await shots.take("sign-dialog")
    await assert_accessible(page, "the sign dialog", exclude=[".viewer canvas"])
    # Another username with the right password signs nothing: the dialog stays open with the
    # server's answer, which does not say which component was wrong.
    console.expect_failed_request(403, f"/api/reports/{report['id']}/sign")
    await fill_signer(dialog, f"{username}-x", who.password)
    await dialog.get_by_role("button", name="Sign", exact=True).click()
    await expect(dialog.get_by_role("alert")).to_have_text(
        "Wrong username or password: nothing was signed."
    )
    await expect(dialog).to_be_visible()
    await dialog.get_by_label("Your username").fill(username)
    await dialog.get_by_role("button", name="Sign", exact=True).click()
    await expect(dialog).to_be_hidden()
    await expect(page.get_by_role("heading", name="Signed versions")).to_be_visible()
    pdf_link = page.get_by_role("link", name="PDF of version 1")
    await expect(pdf_link).to_be_visible()
    await expect(pdf_link).to_have_attribute("href", re.compile(r"^blob:"))
    await expect(page.locator(".badge.status-final").first).to_be_visible()
    await shots.take("signed")
    # On a tablet the viewer and the report stack.
    await page.set_viewport_size({"width": 820, "height": 1100})
    await shots.take("signed-tablet")
    await page.set_viewport_size({"width": 1280, "height": 900})
    report = who.api.get(f"/api/cases/{case_id}/report").json()
    assert report["status"] == "final"
    assert [v["version"] for v in report["versions"]] == [1]

    # 5. The technician opens the case: it is reported, and the PDF is theirs to download.
    context = await browser.new_context(
        locale="en-US", timezone_id="Asia/Shanghai", viewport={"width": 1280, "height": 900}
    )
    try:
        tech_page = await context.new_page()
        tech_page.on("console", console.on_console)
        tech_page.on("pageerror", console.on_page_error)
        await sign_in(tech_page, server.url, hospital.tech.username, hospital.tech_password)
        await expect(tech_page.get_by_role("heading", name="Send studies", level=1)).to_be_visible()
        await tech_page.goto(f"{server.url}/cases/{case_id}")
        await expect(
            tech_page.get_by_role("heading", name=re.compile(f"^Case {case_id}"))
        ).to_be_visible()
        await expect(tech_page.locator(".case-detail .badge.status-final")).to_be_visible()
        await tech_page.screenshot(path=ARTIFACTS / "test_ui_reading-tech-case.png", full_page=True)
    finally:
        await context.close()

    tech = login(server, hospital.tech.username, hospital.tech_password)
    r = tech.get(f"/api/reports/{report['id']}/versions/1/pdf")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/pdf")
    assert r.content.startswith(b"%PDF")
    console.assert_clean()
