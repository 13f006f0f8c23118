"""A technician's intake, in the browser as they do it: sign in, choose a study's files, check
what the page read from them, set the case information, send, then find the case in the list and
open it. The English UI; every wait is on something the page shows."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Locator, Page, expect

from e2e.ui import sign_in
from helpers import study, upload, write
from radrelay import synth

if TYPE_CHECKING:
    from conftest import Server, World  # tests/conftest.py

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="no /usr/bin/chromium"),
]

PATIENT = synth.SynthPatient(
    name="Zhang^Wei=张^伟", patient_id="E2E000001", birth_date="19800101", sex="M"
)
SHOWN_NAME = "张伟 (Zhang Wei)"  # how the UI writes "Zhang^Wei=张^伟"
SLICES = 4
QUESTION = "Intracranial haemorrhage after a fall? 跌倒后颅内出血？"
TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}$")
TIMEZONE = ZoneInfo("Asia/Shanghai")  # the browser's, as the `page` fixture sets it


def exactly(text: str) -> re.Pattern[str]:
    return re.compile(rf"^\s*{re.escape(text)}\s*$")


def fact(scope: Locator, label: str) -> Locator:
    """The value (<dd>) that a description list gives for a label (<dt>)."""
    term = scope.get_by_role("term").filter(has_text=exactly(label))
    return term.locator("xpath=following-sibling::dd[1]")


async def test_technician_sends_a_study_and_finds_its_case(
    page: Page,
    console,
    shots,
    server: Server,
    world: World,
    tmp_path: Path,
    assert_accessible,
) -> None:
    hospital = world.hospital()
    datasets = study("CT", slices=SLICES, size=64, patient=PATIENT)
    paths = write(datasets, tmp_path / "study")
    description = str(datasets[0].StudyDescription)

    # 1. Sign in through the form: a technician lands on the upload page.
    await page.goto(server.url)
    await shots.take("sign-in-page")
    await assert_accessible(page, "the sign-in page")
    await sign_in(page, server.url, hospital.tech.username, hospital.tech_password)
    await expect(page.get_by_role("heading", name="Send studies", level=1)).to_be_visible()
    await expect(page).to_have_url(f"{server.url}/upload")
    await expect(page.get_by_text("Sending for 县医院 County Hospital")).to_be_visible()
    await shots.take("upload-page")
    await assert_accessible(page, "the empty upload page")

    # 2. Choose the files as a user does (the "Choose files" button opens the file chooser).
    async with page.expect_file_chooser() as chooser:
        await page.get_by_role("button", name="Choose files").click()
    await (await chooser.value).set_files(paths)

    card = page.get_by_role("article", name=SHOWN_NAME)
    await expect(card).to_be_visible()
    await expect(page.get_by_role("status").filter(has_text="Studies: 1")).to_have_text(
        re.compile(rf"^Studies: 1 · Zip archives: 0 · Files: {SLICES} \(.+\)$")
    )
    await expect(fact(card, "Patient ID")).to_have_text(PATIENT.patient_id)
    await expect(fact(card, "Modality")).to_have_text("CT")
    await expect(fact(card, "Series")).to_have_text("1")
    await expect(fact(card, "Images")).to_have_text(str(SLICES))
    await expect(fact(card, "Description")).to_have_text(description)
    await expect(card.get_by_text("Ready to send")).to_be_visible()

    await card.get_by_role("radio", name="Urgent").check()
    await card.get_by_label("Clinical question").fill(QUESTION)
    await expect(card.get_by_role("radio", name="Urgent")).to_be_checked()
    await shots.take("study-chosen")
    await assert_accessible(page, "the upload page with a study")

    await page.get_by_role("button", name="Send 1").click()
    await expect(page.get_by_role("status").filter(has_text="All sent.")).to_be_visible()
    await expect(card.get_by_text(exactly(f"Sent: {SLICES} stored"))).to_be_visible()
    # The case information went with the study: folded away, no longer editable here.
    sent_priority = card.get_by_role("radio", name="Urgent", include_hidden=True)
    await expect(sent_priority).to_be_hidden()
    await expect(sent_priority).to_be_disabled()
    await expect(sent_priority).to_be_checked()

    # Each file's outcome: nothing needs attention, all stored.
    await expect(card.get_by_text(re.compile(r"^Files needing attention"))).to_have_count(0)
    await card.get_by_text(exactly(f"All files ({SLICES})")).click()
    outcomes = card.get_by_role("table")
    rows = outcomes.get_by_role("row").filter(has=page.get_by_role("cell"))
    await expect(rows).to_have_count(SLICES)
    for path in paths:
        row = rows.filter(has=page.get_by_role("cell", name=path.name, exact=True))
        await expect(row.get_by_role("cell").nth(1)).to_have_text("stored")
    open_case = card.get_by_role("link", name=re.compile(r"^Open case \d+$"))
    await expect(open_case).to_have_count(1)
    case_id = int((await open_case.inner_text()).rsplit(" ", 1)[1])
    await shots.take("sent")

    # 3. The case list: the new case, ready and urgent; routed, so it has a deadline, but held by
    # nobody (no radiologist is credentialed for a new hospital); then its detail.
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Cases").click()
    await expect(page).to_have_url(f"{server.url}/cases")
    await expect(page.get_by_role("heading", name="Cases", level=1)).to_be_visible()
    await expect(page.get_by_text("Cases: 1", exact=True)).to_be_visible()
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name=SHOWN_NAME))
    await expect(row.get_by_role("cell")).to_have_text(
        [
            TIME,  # received
            hospital.code,
            SHOWN_NAME,
            PATIENT.patient_id,
            "CT",
            description,
            str(SLICES),  # images
            "Urgent",
            "Ready",
            "—",  # no radiologist
            TIME,  # due, on time: no badge
            "",  # no flags
        ]
    )
    await shots.take("case-list")
    await assert_accessible(page, "the case list")

    await row.get_by_role("link", name=SHOWN_NAME).click()
    await expect(page).to_have_url(f"{server.url}/cases/{case_id}")
    detail = page.get_by_role("complementary", name=f"Case {case_id} · {SHOWN_NAME}")
    await expect(detail).to_be_visible()
    await expect(fact(detail, "Priority")).to_have_text("Urgent")
    await expect(fact(detail, "Clinical question")).to_have_text(QUESTION)
    await expect(fact(detail, "Series / images")).to_have_text(f"1 / {SLICES}")
    await expect(fact(detail, "Received by")).to_have_text("Browser upload")
    await expect(fact(detail, "Name")).to_have_text(SHOWN_NAME)
    await expect(detail.get_by_text("Complete, ready for reading")).to_be_visible()
    await expect(detail.get_by_text("Routed", exact=True)).to_be_visible()
    await expect(fact(detail, "Radiologist")).to_have_text("—")
    await shots.take("case-detail")
    await assert_accessible(page, "the case page")

    # 4. The API agrees.
    r = hospital.tech.get("/api/cases")
    assert r.status_code == 200, r.text
    cases = r.json()["items"]
    assert [c["id"] for c in cases] == [case_id]
    (case,) = cases
    assert case["priority"] == "urgent"
    assert case["status"] == "ready"
    assert case["number_of_instances"] == SLICES
    assert case["clinical_question"] == QUESTION
    assert case["patient_name"] == PATIENT.name
    assert case["study_instance_uid"] == datasets[0].StudyInstanceUID
    assert case["reader_id"] is None
    assert case["deadline"] is not None
    # the deadline shown is the server's, in the browser's time zone
    due = datetime.fromisoformat(case["deadline"]).astimezone(TIMEZONE)
    await expect(fact(detail, "Due")).to_have_text(due.strftime("%Y-%m-%d %H:%M"))

    console.assert_clean()


async def test_wrong_password_shows_the_servers_message(
    page: Page, console, shots, server: Server, world: World
) -> None:
    hospital = world.hospital()
    console.expect_failed_request(401, "/api/auth/token")

    await sign_in(
        page, server.url, hospital.tech.username, hospital.tech_password + "-wrong", succeed=False
    )
    await expect(page.get_by_role("alert")).to_have_text("Wrong username or password.")
    await expect(page.get_by_label("Password")).to_have_value("")
    await expect(page.get_by_label("Username")).to_have_value(hospital.tech.username)
    await expect(page.get_by_role("button", name="Sign in")).to_be_enabled()
    await expect(page.get_by_role("heading", name="Sign in", level=1)).to_be_visible()
    await shots.take("wrong-password")

    console.assert_clean()


def receipts(world: World, hospital_id: int) -> list[int]:
    """How many instances each upload request brought for a hospital's studies, oldest first:
    the server's audit trail writes one ``study.receive`` per study and request."""
    r = world.admin.get(
        "/api/audit", params={"action": "study.receive", "hospital_id": hospital_id}
    )
    assert r.status_code == 200, r.text
    return [e["detail"]["instances"] for e in reversed(r.json()["items"])]


async def test_sending_again_skips_what_the_archive_already_holds(
    page: Page, console, shots, server: Server, world: World, tmp_path: Path
) -> None:
    """Issue 6: a send cut short in an earlier session (half the study stored, the case still
    receiving), then the whole folder chosen again: only the missing files go; and after a page
    reload the same folder again: nothing goes but the one small request that closes the case."""
    hospital = world.hospital()
    patient = synth.SynthPatient(
        name="Li^Na=李^娜", patient_id="E2E000006", birth_date="19900606", sex="F"
    )
    shown_name = "李娜 (Li Na)"
    slices, before = 6, 3
    datasets = study("CT", slices=slices, size=64, patient=patient)
    paths = write(datasets, tmp_path / "study")
    study_uid = str(datasets[0].StudyInstanceUID)

    # An earlier session stored the first three files, then the connection dropped: the case is
    # open but not complete, and has no case information yet.
    r = upload(
        hospital.tech.http, [(p.name, p.read_bytes()) for p in paths[:before]], complete="false"
    )
    assert r.status_code == 200, r.text
    assert r.json()["stored"] == before
    assert receipts(world, hospital.id) == [before]

    await sign_in(page, server.url, hospital.tech.username, hospital.tech_password)
    await expect(page.get_by_role("heading", name="Send studies", level=1)).to_be_visible()

    async def choose_and_send(urgent: bool) -> Locator:
        async with page.expect_file_chooser() as chooser:
            await page.get_by_role("button", name="Choose files").click()
        await (await chooser.value).set_files(paths)
        card = page.get_by_role("article", name=shown_name)
        await expect(card.get_by_text("Ready to send")).to_be_visible()
        if urgent:
            await card.get_by_role("radio", name="Urgent").check()
        await page.get_by_role("button", name="Send 1").click()
        await expect(page.get_by_role("status").filter(has_text="All sent.")).to_be_visible()
        return card

    async def outcomes_of(card: Locator) -> dict[str, str]:
        await card.get_by_text(exactly(f"All files ({slices})")).click()
        rows = card.get_by_role("table").get_by_role("row").filter(has=page.get_by_role("cell"))
        await expect(rows).to_have_count(slices)
        shown = {}
        for row in await rows.all():
            cells = row.get_by_role("cell")
            shown[await cells.nth(0).inner_text()] = await cells.nth(1).inner_text()
        return shown

    # 1. The whole folder: the three the archive holds are not sent, and say so.
    card = await choose_and_send(urgent=True)
    await expect(card.get_by_text(exactly("Sent: 3 stored, 3 already stored"))).to_be_visible()
    await expect(card.get_by_text(re.compile(r"^Files needing attention"))).to_have_count(0)
    shown = await outcomes_of(card)
    assert shown == {
        p.name: "already stored" if i < before else "stored" for i, p in enumerate(paths)
    }
    open_case = card.get_by_role("link", name=re.compile(r"^Open case \d+$"))
    await expect(open_case).to_have_count(1)
    case_id = int((await open_case.inner_text()).rsplit(" ", 1)[1])
    await shots.take("resumed")

    # The server got the three missing files only, and the case is whole, ready and urgent.
    assert receipts(world, hospital.id) == [before, slices - before]
    case = hospital.tech.get(f"/api/cases/{case_id}").json()
    assert case["study_instance_uid"] == study_uid
    assert case["number_of_instances"] == slices
    assert case["status"] == "ready"
    assert case["priority"] == "urgent"

    # 2. A reload (the page forgets everything but the session), the same folder again: every
    # file is already stored. One file still goes, alone, to close the study; nothing is stored.
    await page.reload()
    await expect(page.get_by_role("heading", name="Send studies", level=1)).to_be_visible()
    card = await choose_and_send(urgent=False)
    await expect(card.get_by_text(exactly(f"Sent: {slices} already stored"))).to_be_visible()
    shown = await outcomes_of(card)
    assert shown == {p.name: "already stored" for p in paths}
    await expect(card.get_by_role("link", name=f"Open case {case_id}")).to_be_visible()
    await shots.take("all-stored")

    assert receipts(world, hospital.id) == [before, slices - before, 1]
    case = hospital.tech.get(f"/api/cases/{case_id}").json()
    assert case["number_of_instances"] == slices
    assert case["status"] == "ready"
    assert case["priority"] == "urgent"

    console.assert_clean()
