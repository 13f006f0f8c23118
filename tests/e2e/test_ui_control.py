"""The coordinator's control room, in the browser as a coordinator uses it: the live board with
its queue and roster, an assignment with a reason (and the dialog's checks), the server's
refusal shown as it says it, a case's routing explanation, turnaround as a chart, a table and a
CSV, a critical result's communication, and the failed deliveries. Data is set up through the
API; the English UI; every wait is on something the page shows."""

from __future__ import annotations

import re
import secrets
import uuid
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from playwright.async_api import Locator, Page, expect
from sqlalchemy import update

from conftest import login
from e2e.ui import sign_in
from radrelay.config import Settings
from radrelay.kit.runtime import Runtime
from radrelay.models.case import Case
from test_reports import reading, sign, start, written
from test_worklist import case, reader, routed, send

if TYPE_CHECKING:
    from conftest import Server, World  # tests/conftest.py

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="no /usr/bin/chromium"),
]

REASON = "Dr on call covers MSK tonight 今晚由值班医生阅片"


def row_of(page: Page, case_id: int) -> Locator:
    """The board's row of a case (its row header is "Case N")."""
    header = page.get_by_role("rowheader", name=f"Case {case_id}", exact=True)
    return page.get_by_role("row").filter(has=header)


async def backdate(server: Server, case_id: int, hours: float) -> None:
    """Moves a case's receipt and deadline ``hours`` into the past, on the server's database, as
    if it had waited that long: the board computes the SLA state from them at each request."""
    settings = Settings(
        data_dir=server.data_dir, database_url=server.database_url, secret_key="unused"
    )
    runtime = Runtime(settings)
    try:
        async with runtime.uow() as session:
            row = await session.get(Case, case_id)
            assert row is not None and row.deadline is not None
            shift = timedelta(hours=hours)
            await session.execute(
                update(Case)
                .where(Case.id == case_id)
                .values(received_at=row.received_at - shift, deadline=row.deadline - shift)
            )
    finally:
        await runtime.close()


async def test_coordinator_runs_the_control_room(
    page: Page,
    console,
    shots,
    server: Server,
    world: World,
    tmp_path: Path,
    assert_accessible,
) -> None:
    h = world.hospital()
    chest = reader(world, [h], {"chest": 3})
    # Offline: routing passes them over, so the MSK case waits for a coordinator.
    msk = reader(world, [h], {"msk": 2}, state="offline")
    assigned = send(h, priority="urgent", requested_subspecialty="chest")
    waiting = send(h, priority="routine", requested_subspecialty="msk")
    routed(h.tech, assigned, "assigned")
    routed(h.tech, waiting, "ready")
    # The routine case has waited 25 hours: an hour past its 24-hour deadline.
    await backdate(server, waiting, 25)

    # A final report for the turnaround figures, with a critical result flagged on the way.
    done = reading(world, h, chest, requested_subspecialty="chest")
    report = start(chest, done)
    r = chest.api.post(
        f"/api/reports/{report['id']}/critical", json={"description": "右侧张力性气胸"}
    )
    assert r.status_code == 201, r.text
    written(chest, report)
    sign(chest, report["id"])

    username, password = f"coord-{uuid.uuid4().hex[:8]}", secrets.token_urlsafe(12)
    world.user(username, "coordinator", password)
    coord = login(server, username, password)
    chest_name = coord.get(f"/api/experts/{chest.id}").json()["name"]
    msk_name = coord.get(f"/api/experts/{msk.id}").json()["name"]
    assert case(coord, done)["status"] == "final"

    # 1. Sign in: a coordinator lands on the control room's live board.
    await sign_in(page, server.url, username, password)
    await expect(page.get_by_role("heading", name="Control room", level=1)).to_be_visible()
    await expect(page).to_have_url(f"{server.url}/control")
    sections = page.get_by_role("navigation", name="Control room sections")
    await expect(sections.get_by_role("link", name="Live board")).to_have_attribute(
        "aria-current", "page"
    )
    await page.get_by_label("Hospital", exact=True).select_option(str(h.id))
    await expect(
        page.get_by_text(
            re.compile(r"^Open cases: 2 · due soon: 0 · overdue: 1 · held by nobody: 1$")
        )
    ).to_be_visible()

    # The queue by subspecialty and priority, each case with its hospital, modality, status,
    # reader and time left.
    await expect(page.get_by_role("heading", name="Chest", level=3)).to_be_visible()
    await expect(page.get_by_role("heading", name="Musculoskeletal", level=3)).to_be_visible()
    # The subspecialty filter narrows the board to one group.
    await page.get_by_label("Subspecialty", exact=True).select_option("msk")
    await expect(page.get_by_role("heading", name="Chest", level=3)).to_have_count(0)
    await expect(page.get_by_role("heading", name="Musculoskeletal", level=3)).to_be_visible()
    await page.get_by_label("Subspecialty", exact=True).select_option("")
    await expect(page.get_by_role("heading", name="Chest", level=3)).to_be_visible()
    first = row_of(page, assigned)
    await expect(first.get_by_role("cell").nth(1)).to_have_text(h.code)
    await expect(first.get_by_role("cell").nth(2)).to_have_text("CT")
    await expect(first.get_by_role("cell").nth(3)).to_have_text("Assigned")
    await expect(first.get_by_role("cell").nth(4)).to_have_text(chest_name)
    await expect(first.get_by_role("cell").nth(5)).to_have_text(
        re.compile(r"^\d+ h \d{2} min left$")
    )
    second = row_of(page, waiting)
    await expect(second.get_by_role("cell").nth(3)).to_have_text("Ready")
    await expect(second.get_by_role("cell").nth(4)).to_have_text("—")
    await expect(second.get_by_role("cell").nth(5)).to_have_text(
        re.compile(r"^1 h 0\d min overdueOverduewaited too long$")
    )
    await expect(second).to_have_class(re.compile(r"\bsla-row-breached\b"))
    roster = page.get_by_role("table", name="Radiologists: availability and load")
    msk_row = roster.get_by_role("row").filter(has=page.get_by_role("rowheader", name=msk_name))
    await expect(msk_row.get_by_role("cell").first).to_have_text("Offline")
    await shots.take("board")
    await assert_accessible(page, "the live board")

    # 2. Assign the waiting case: the dialog wants a radiologist and a reason first.
    await second.get_by_role("button", name=f"Assign case {waiting}").click()
    dialog = page.get_by_role("dialog", name=f"Assign case {waiting}")
    await expect(dialog).to_be_visible()
    await expect(dialog.get_by_label("Radiologist")).to_be_focused()
    await dialog.get_by_role("button", name="Assign", exact=True).click()
    await expect(dialog.get_by_text("Choose a radiologist.")).to_be_visible()
    await expect(dialog.get_by_text("Give a reason.")).to_be_visible()
    await expect(dialog.get_by_label("Reason")).to_have_attribute("aria-invalid", "true")
    await shots.take("assign-checks")
    await assert_accessible(page, "the assign dialog with its checks")
    # Esc closes it, and the focus goes back to the button that opened it.
    await page.keyboard.press("Escape")
    await expect(dialog).to_be_hidden()
    await expect(second.get_by_role("button", name=f"Assign case {waiting}")).to_be_focused()

    await second.get_by_role("button", name=f"Assign case {waiting}").click()
    await dialog.get_by_label("Radiologist").select_option(str(msk.id))
    await dialog.get_by_label("Reason").fill(REASON)
    await dialog.get_by_role("button", name="Assign", exact=True).click()
    await expect(dialog).to_be_hidden()
    await expect(
        page.get_by_role("status").filter(has_text=f"Case {waiting} is now with {msk_name}.")
    ).to_be_visible()
    await expect(second.get_by_role("cell").nth(4)).to_have_text(msk_name)
    await expect(second.get_by_role("cell").nth(3)).to_have_text("Assigned")
    await expect(page.get_by_text(re.compile(r"held by nobody: 0$"))).to_be_visible()
    events = case(coord, waiting)["events"]
    assert any(e["kind"] == "assigned" and e["detail"].get("reason") == REASON for e in events), (
        events
    )

    # 3. The server's refusal, as it says it: a held case cannot be offered to one more reader.
    console.expect_failed_request(409, f"/api/cases/{assigned}/assignments")
    await first.get_by_role("button", name=f"Offer case {assigned}").click()
    offer = page.get_by_role("dialog", name=f"Offer case {assigned}")
    await offer.get_by_label("Radiologist").select_option(str(msk.id))
    await offer.get_by_label("Reason").fill("second opinion")
    await offer.get_by_role("button", name="Offer", exact=True).click()
    await expect(offer.get_by_role("alert")).to_have_text(
        f"Case {assigned} is held by a reader; assign it instead."
    )
    await shots.take("server-refusal")
    await offer.get_by_role("button", name="Cancel").click()
    await expect(offer).to_be_hidden()

    # 4. Why the case went where it did: the routing explanation.
    await first.get_by_role("button", name=f"Routing of case {assigned}").click()
    explained = page.get_by_role("dialog", name=f"Routing of case {assigned}")
    await expect(
        explained.get_by_role("heading", name=re.compile(r"the case became ready$")).first
    ).to_be_visible()
    await expect(
        explained.get_by_text("assigned to one radiologist · applied").first
    ).to_be_visible()
    candidates = explained.get_by_role("table", name="Radiologists considered")
    chosen = candidates.get_by_role("row").filter(
        has=page.get_by_role("rowheader", name=chest_name)
    )
    await expect(chosen.get_by_role("cell").first).to_have_text("1")
    await expect(chosen.get_by_role("cell").nth(1)).to_contain_text("chosen")
    passed_over = candidates.get_by_role("row").filter(
        has=page.get_by_role("rowheader", name=msk_name)
    )
    await expect(passed_over.get_by_role("cell").nth(1)).to_have_text("not eligible")
    await expect(passed_over.get_by_text("Subspecialty", exact=True)).to_be_visible()
    await shots.take("routing")
    await assert_accessible(page, "the routing explanation")
    await page.keyboard.press("Escape")
    await expect(explained).to_be_hidden()

    # Live: a pause made elsewhere (here through the API) reaches the board over the websocket;
    # then the case is resumed from the board, with a reason.
    r = coord.post(f"/api/cases/{assigned}/pause", json={"reason": "images incomplete"})
    assert r.status_code == 200, r.text
    await expect(first.get_by_role("cell").nth(3)).to_have_text("Paused")
    await first.get_by_role("button", name=f"Resume case {assigned}").click()
    resume = page.get_by_role("dialog", name=f"Resume case {assigned}")
    await expect(resume.get_by_label("Reason")).to_be_focused()
    await resume.get_by_label("Reason").fill("images complete now")
    await resume.get_by_role("button", name="Resume", exact=True).click()
    await expect(
        page.get_by_role("status").filter(has_text=f"Case {assigned} is back in routing.")
    ).to_be_visible()
    await expect(first.get_by_role("cell").nth(3)).not_to_have_text("Paused")

    # 5. Turnaround: chart, table and CSV of the signed case's day.
    await sections.get_by_role("link", name="Turnaround").click()
    await expect(page).to_have_url(f"{server.url}/control?tab=turnaround")
    report_json = coord.get("/api/metrics/turnaround", params={"group_by": "day"}).json()
    final = [i for g in report_json["groups"] for i in g["intervals"]]
    assert any(i["interval"] == "received_to_final" and i["count"] for i in final)
    day = next(
        g["label"]
        for g in report_json["groups"]
        if any(i["interval"] == "received_to_final" and i["count"] for i in g["intervals"])
    )
    chart = page.get_by_role(
        "img", name=re.compile(r"^Received → final report: p50 and p90 per Day")
    )
    await expect(chart).to_be_visible()
    table = page.get_by_role("table", name="Received → final report per Day")
    day_row = table.get_by_role("row").filter(has=page.get_by_role("rowheader", name=day))
    await expect(day_row.get_by_role("cell").nth(2)).not_to_have_text("—")  # p50
    await expect(day_row.get_by_role("cell").nth(2)).to_have_text(
        re.compile(r"^(< 1 min|\d+ min|\d+ h \d{2} min)$")
    )
    await shots.take("turnaround")
    await assert_accessible(page, "the turnaround tab")

    async with page.expect_download() as downloading:
        await page.get_by_role("button", name="Export CSV").click()
    download = await downloading.value
    assert re.fullmatch(r"turnaround_day_\d{8}_\d{8}\.csv", download.suggested_filename)
    saved = tmp_path / download.suggested_filename
    await download.save_as(saved)
    text = saved.read_text(encoding="utf-8")
    assert text.startswith("row,group_by,group_key,group_label,cases,interval,"), text[:200]
    assert f",{day}," in text
    await expect(
        page.get_by_role("status").filter(has_text="The CSV is downloading")
    ).to_be_visible()

    # 6. Critical results: record who at the hospital was told.
    await sections.get_by_role("link", name="Critical results").click()
    await expect(page).to_have_url(f"{server.url}/control?tab=critical")
    finding = row_of(page, done)
    await expect(finding.get_by_role("cell").first).to_have_text("右侧张力性气胸")
    await expect(finding.get_by_role("cell").nth(2)).to_have_text(re.compile(r" left$"))
    await shots.take("critical")
    await assert_accessible(page, "the critical results tab")
    await finding.get_by_role("button", name=f"Record communication for case {done}").click()
    told = page.get_by_role("dialog", name=f"Critical result of case {done}: communication")
    await told.get_by_role("button", name="Record communication").click()
    await expect(told.get_by_text("Say who at the hospital was told.")).to_be_visible()
    await told.get_by_label("Who was told (name, role)").fill("Dr Wang, ED attending 王医生")
    await told.get_by_role("radio", name="Phone").check()
    await told.get_by_role("button", name="Record communication").click()
    await expect(told).to_be_hidden()
    await expect(
        page.get_by_role("status").filter(has_text=f"Communication recorded for case {done}.")
    ).to_be_visible()
    await expect(row_of(page, done)).to_have_count(0)
    open_ = coord.get("/api/critical-findings", params={"status": "open"}).json()
    assert done not in {f["case_id"] for f in open_}
    # A result flagged while the tab is open appears without a reload (the live event).
    later = reading(world, h, chest, requested_subspecialty="chest")
    r = chest.api.post(
        f"/api/reports/{start(chest, later)['id']}/critical", json={"description": "主动脉夹层"}
    )
    assert r.status_code == 201, r.text
    await expect(row_of(page, later).get_by_role("cell").first).to_have_text("主动脉夹层")

    # 7. Failed deliveries: none for this hospital (it has no endpoint); the tab says so or lists
    # other hospitals' failures.
    await sections.get_by_role("link", name="Failed deliveries").click()
    await expect(page).to_have_url(f"{server.url}/control?tab=deliveries")
    listed = page.get_by_text("No failed delivery.").or_(
        page.get_by_role("table", name=re.compile("Failed deliveries"))
    )
    await expect(listed).to_be_visible()
    await shots.take("deliveries")
    await assert_accessible(page, "the failed deliveries tab")

    # Back goes to the previous tab (the query string is the tab's address).
    await page.go_back()
    await expect(page).to_have_url(f"{server.url}/control?tab=critical")
    await expect(sections.get_by_role("link", name="Critical results")).to_have_attribute(
        "aria-current", "page"
    )

    console.assert_clean()
