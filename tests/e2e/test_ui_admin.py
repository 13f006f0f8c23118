"""The administrator's pages, in the browser as an admin uses them: sign in, add a hospital with
an AE title, see a wrong AE title refused beside its field (by the page, then by the server),
add a webhook delivery endpoint, create a radiologist and make them an expert, then rename and
deactivate them, after which they cannot sign in. Every step is then checked through the API:
the UI stored what it showed. English UI; every wait is on something the page shows."""

from __future__ import annotations

import re
import secrets
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from playwright.async_api import Page, expect

from conftest import ADMIN_PASSWORD
from e2e.ui import sign_in

if TYPE_CHECKING:
    from conftest import Server, World  # tests/conftest.py

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="no /usr/bin/chromium"),
]


async def test_admin_sets_up_a_hospital_a_radiologist_and_their_expert_profile(
    page: Page, console, shots, assert_accessible, server: Server, world: World
) -> None:
    tag = uuid.uuid4().hex[:6].upper()
    code, name, ae = f"ADM{tag}", f"Admin test hospital 测试医院 {tag}", f"CT{tag}"
    username, display = f"dr-admin-{tag.lower()}", f"Dr Wang {tag}"
    secret = secrets.token_hex(20)

    # 1. The admin lands on the admin page, hospitals first.
    await sign_in(page, server.url, "admin", ADMIN_PASSWORD)
    await expect(page.get_by_role("heading", name="Administration", level=1)).to_be_visible()
    await expect(page).to_have_url(f"{server.url}/admin")
    tabs = page.get_by_role("navigation", name="Administration sections")
    await expect(tabs.get_by_role("link", name="Hospitals")).to_have_attribute(
        "aria-current", "page"
    )
    await expect(page.get_by_role("region", name="Hospitals")).to_be_visible()
    hospitals = page.get_by_role("table", name="Hospitals")

    # 2. A wrong AE title is refused by the page, beside its field, and in the summary.
    form = page.get_by_role("form", name="Add a hospital")
    await form.get_by_label("Code").fill(code)
    await form.get_by_label("Name").fill(name)
    ae_field = form.get_by_label("AE title")
    await ae_field.fill("CT\\SCANNER")
    await form.get_by_role("button", name="Create hospital").click()
    await expect(ae_field).to_have_attribute("aria-invalid", "true")
    await expect(ae_field).to_have_accessible_description(re.compile("no backslash"))
    summary = form.get_by_role("alert")
    await expect(summary).to_contain_text("Please correct 1 problem(s):")
    await expect(
        summary.get_by_role("link", name=re.compile(r"^AE title: .*no backslash"))
    ).to_be_visible()
    await shots.take("hospital-invalid-ae-title")
    await assert_accessible(page, "the hospitals tab with a refused AE title")

    # 3. Corrected, the hospital is created and listed with its AE title.
    await ae_field.fill(ae)
    await form.get_by_role("button", name="Create hospital").click()
    await expect(form.get_by_role("status")).to_have_text(f"Hospital {code} saved.")
    await expect(form.get_by_role("alert")).to_have_count(0)
    row = hospitals.get_by_role("row").filter(has=page.get_by_role("cell", name=code, exact=True))
    await expect(row).to_contain_text(name)
    await expect(row).to_contain_text(ae)
    await shots.take("hospital-created")

    # 4. The server's word beside the field: an AE title already registered elsewhere (409),
    # then a source address that is no address (422 with the field's path).
    await row.get_by_role("button", name=f"Manage {code}").click()
    panel = page.get_by_role("region", name=re.compile(re.escape(name)))
    await expect(panel.get_by_role("heading", name=re.compile(re.escape(code)))).to_be_focused()
    add_ae = panel.get_by_role("form", name="Add an AE title")
    console.expect_failed_request(409, f"/api/hospitals/{code}/ae-titles")
    other = world.hospital()
    await add_ae.get_by_label("AE title").fill(other.ae_title)
    await add_ae.get_by_role("button", name="Add AE title").click()
    await expect(add_ae.get_by_label("AE title")).to_have_accessible_description(
        re.compile("already registered to another hospital")
    )
    console.expect_failed_request(422, f"/api/hospitals/{code}/ae-titles")
    await add_ae.get_by_label("AE title").fill(f"MR{tag}")
    addresses = add_ae.get_by_label("Allowed source addresses")
    await addresses.fill("10.0.0.0/8, not-an-address")
    await add_ae.get_by_role("button", name="Add AE title").click()
    await expect(addresses).to_have_attribute("aria-invalid", "true")
    await expect(addresses).to_have_accessible_description(
        re.compile("'not-an-address' is not an IP address or network")
    )
    await expect(add_ae.get_by_role("alert")).to_contain_text("Allowed source addresses:")
    await expect(add_ae.get_by_label("AE title")).not_to_have_attribute("aria-invalid", "true")
    await shots.take("ae-title-refused-by-server")
    await addresses.fill("10.0.0.0/8")
    await add_ae.get_by_role("button", name="Add AE title").click()
    await expect(add_ae.get_by_role("status")).to_have_text(f"AE title MR{tag} added.")
    await expect(panel.get_by_role("list", name="AE titles")).to_contain_text("10.0.0.0/8")

    # 5. A webhook delivery endpoint (plain http is allowed to a loopback address).
    endpoint = panel.get_by_role("form", name="Add a delivery endpoint")
    await endpoint.get_by_role("radio", name="Webhook (FHIR)").check()
    await endpoint.get_by_label("Name").fill("RIS webhook")
    await endpoint.get_by_label("URL").fill("http://127.0.0.1:9/radrelay")
    await endpoint.get_by_label("Shared secret").fill(secret)
    await endpoint.get_by_role("button", name="Add endpoint").click()
    await expect(endpoint.get_by_role("status")).to_have_text("Endpoint RIS webhook added.")
    endpoints = panel.get_by_role("table", name="Delivery endpoints")
    await expect(endpoints.get_by_role("row", name=re.compile("RIS webhook"))).to_contain_text(
        "http://127.0.0.1:9/radrelay"
    )
    await expect(endpoints).to_contain_text("secret set")
    await shots.take("hospital-panel-with-endpoint")
    await assert_accessible(page, "the hospital panel")

    # 6. Users: a radiologist.
    await tabs.get_by_role("link", name="Users").click()
    await expect(page).to_have_url(f"{server.url}/admin?tab=users")
    users = page.get_by_role("table", name="Users")
    await expect(users.get_by_role("cell", name="admin", exact=True).first).to_be_visible()
    new_user = page.get_by_role("form", name="Add a user")
    await new_user.get_by_label("Username").fill(username)
    await new_user.get_by_label("Full name").fill(display)
    await new_user.get_by_label("Role").select_option(label="Radiologist")
    await expect(new_user.get_by_label("Hospital")).to_be_disabled()
    await new_user.get_by_label("Password").fill("short")
    await new_user.get_by_role("button", name="Create user").click()
    await expect(new_user.get_by_label("Password")).to_have_accessible_description(
        re.compile("At least 8 characters")
    )
    password = secrets.token_urlsafe(12)
    await new_user.get_by_label("Password").fill(password)
    await new_user.get_by_role("button", name="Create user").click()
    await expect(new_user.get_by_role("status")).to_have_text(f"User {username} saved.")
    await expect(users.get_by_role("row", name=re.compile(re.escape(username)))).to_contain_text(
        "Radiologist"
    )
    await shots.take("users-tab")
    await assert_accessible(page, "the users tab")

    # 7. Experts: straight from the new user to their profile.
    await new_user.get_by_role("link", name=f"Set up {username}'s expert profile").click()
    await expect(tabs.get_by_role("link", name="Experts")).to_have_attribute("aria-current", "page")
    editor = page.get_by_role("region", name=f"New expert profile: {display}")
    await expect(editor).to_be_visible()
    first = editor.get_by_role("group", name="Subspecialty 1", exact=True)
    await first.get_by_label("Subspecialty", exact=True).select_option(label="Neuroradiology")
    await first.get_by_label("Level", exact=True).select_option(label="3 · reference")
    await editor.get_by_role("button", name="Add a credential").click()
    credential = editor.get_by_role("group", name="Credential 1", exact=True)
    await credential.get_by_label("Hospital").select_option(value=code)
    await credential.get_by_label("Expires").fill("2030-06-30T18:00")
    await editor.get_by_role("button", name="Add a shift").click()
    shift = editor.get_by_role("group", name="Shift 1", exact=True)
    await shift.get_by_label("Day").select_option(label="Wednesday")
    await shift.get_by_label("Start").fill("22:00")
    await shift.get_by_label("End").fill("06:00")
    await editor.get_by_label("Open cases at most").fill("6")
    await editor.get_by_role("button", name="Save profile").click()
    # Saved, the profile exists: the same form now edits it.
    editor = page.get_by_role("region", name=f"Expert profile: {display}")
    await expect(editor.get_by_role("status")).to_have_text(f"Profile of {display} saved.")
    stored = page.get_by_role("region", name=f"Stored profile: {display}")
    await expect(stored).to_contain_text("Neuroradiology · 3 · reference")
    await expect(stored).to_contain_text(f"{code} · until 2030-06-30 18:00")
    await expect(stored).to_contain_text("Wednesday 22:00–06:00")
    await expect(stored).to_contain_text("open cases: 6")
    roster = page.get_by_role("table", name="Experts")
    await expect(roster.get_by_role("row", name=re.compile(re.escape(display)))).to_contain_text(
        code
    )
    await shots.take("experts-tab")
    await assert_accessible(page, "the experts tab")

    # 8. What the UI did is stored.
    hospital = world.admin.get(f"/api/hospitals/{code}").json()
    assert hospital["name"] == name
    assert {a["ae_title"]: a["source_addresses"] for a in hospital["ae_titles"]} == {
        ae: [],
        f"MR{tag}": ["10.0.0.0/8"],
    }
    (hook,) = world.admin.get(f"/api/hospitals/{code}/delivery-endpoints").json()
    assert hook["kind"] == "webhook" and hook["name"] == "RIS webhook" and hook["active"]
    assert hook["config"]["url"] == "http://127.0.0.1:9/radrelay"
    assert hook["has_secret"] and "secret" not in hook["config"]
    (user,) = [u for u in world.admin.get("/api/users").json() if u["username"] == username]
    assert user["role"] == "radiologist" and user["display_name"] == display
    expert = world.admin.get(f"/api/experts/{user['id']}").json()
    assert expert["subspecialties"] == {"neuro": 3}
    assert [(c["hospital_code"], c["expires_at"][:16]) for c in expert["credentials"]] == [
        (code, "2030-06-30T10:00")  # 18:00 in the browser's zone, Asia/Shanghai
    ]
    assert expert["shifts"] == [{"weekday": 2, "start": "22:00", "end": "06:00"}]
    assert expert["timezone"] == "Asia/Shanghai"
    assert expert["cap_open_cases"] == 6 and expert["cap_daily_units"] is None

    # 9. The radiologist is renamed in a dialog (the page refuses a short new password at its
    # field; an empty one keeps theirs).
    renamed = f"Dr Wang Wei {tag}"
    await tabs.get_by_role("link", name="Users").click()
    row = users.get_by_role("row").filter(has=page.get_by_role("cell", name=username, exact=True))
    await row.get_by_role("button", name=f"Edit {username}").click()
    edit = page.get_by_role("dialog", name=f"Edit {username}")
    await expect(edit.get_by_label("Full name")).to_be_focused()
    await expect(edit.get_by_label("Full name")).to_have_value(display)
    await expect(edit.get_by_label("Hospital")).to_have_count(0)  # a radiologist has none
    await edit.get_by_label("Full name").fill(renamed)
    await edit.get_by_label("New password").fill("short")
    await edit.get_by_role("button", name="Save changes").click()
    await expect(edit.get_by_label("New password")).to_have_accessible_description(
        re.compile("At least 8 characters")
    )
    await shots.take("user-edit-dialog")
    await assert_accessible(page, "the edit user dialog")
    await edit.get_by_label("New password").fill("")
    await edit.get_by_role("button", name="Save changes").click()
    await expect(edit).to_have_count(0)
    await expect(page.get_by_role("status").filter(has_text="updated")).to_have_text(
        f"User {username} updated."
    )
    await expect(row).to_contain_text(renamed)

    # 10. Deactivated, after the page asks (Cancel first, so Enter does no harm).
    await row.get_by_role("button", name=f"Deactivate {username}").click()
    confirm = page.get_by_role("dialog", name=f"Deactivate {username}?")
    await expect(confirm).to_contain_text(f"{renamed} can no longer sign in")
    await expect(confirm.get_by_role("button", name="Cancel")).to_be_focused()
    await shots.take("user-deactivate-dialog")
    await assert_accessible(page, "the deactivate user dialog")
    await confirm.get_by_role("button", name="Deactivate", exact=True).click()
    await expect(confirm).to_have_count(0)
    await expect(page.get_by_role("status").filter(has_text="deactivated")).to_have_text(
        f"User {username} deactivated."
    )
    await expect(row).to_contain_text("Inactive")
    await expect(row.get_by_role("button", name=f"Activate {username}")).to_be_visible()
    # The admin's own row offers no way to lock themself out.
    own = users.get_by_role("row").filter(has=page.get_by_role("cell", name="admin", exact=True))
    await expect(own.get_by_role("button", name="Edit admin")).to_be_visible()
    await expect(own.get_by_role("button", name=re.compile("^Deactivate"))).to_have_count(0)
    await shots.take("users-tab-deactivated")
    await assert_accessible(page, "the users tab with a deactivated user")

    # 11. The radiologist cannot sign in any more, and is told why.
    (user,) = [u for u in world.admin.get("/api/users").json() if u["username"] == username]
    assert user["display_name"] == renamed and user["active"] is False
    assert world.admin.get(f"/api/experts/{user['id']}").json()["state"] == "offline"
    await page.get_by_role("button", name="Sign out").click()
    console.expect_failed_request(401, "/api/auth/token")
    await sign_in(page, server.url, username, password, succeed=False)
    await expect(page.get_by_role("alert")).to_have_text(
        "This account is deactivated: ask an administrator to activate it again."
    )
    await shots.take("sign-in-deactivated")
    console.assert_clean()
