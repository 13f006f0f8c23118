"""What every browser test does the same way: signing in through the form, and the username and
password typed again in a signing dialog."""

from __future__ import annotations

from playwright.async_api import Locator, Page, expect


async def sign_in(
    page: Page, url: str, username: str, password: str, *, succeed: bool = True
) -> None:
    """Opens the UI, fills the sign-in form and sends it; with ``succeed`` waits until the
    signed-in page shows (its "Sign out" button), else leaves the answer to the test."""
    await page.goto(url)
    await expect(page.get_by_role("heading", name="Sign in", level=1)).to_be_visible()
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()
    if succeed:
        await expect(page.get_by_role("button", name="Sign out")).to_be_visible()


async def fill_signer(dialog: Locator, username: str, password: str) -> None:
    """Types both components of the electronic signature into a signing dialog (21 CFR 11.200),
    after checking that the username is not filled in already: the signer types it."""
    await expect(dialog.get_by_label("Your username")).to_have_value("")
    await dialog.get_by_label("Your username").fill(username)
    await dialog.get_by_label("Your password").fill(password)
