"""The DICOM viewer in the browser: a coordinator opens a technician's 200-slice CT at
/viewer/{study}, sees the first image and then the whole stack loaded (the times are printed, run
with ``pytest -s``), scrolls with the wheel and the keys, measures a length, changes the window
and the layout. A compressed series (JPEG-LS, RLE) is decoded by the loader's codecs. Every wait
is on a render signal the viewer sets (``data-state``, ``data-image-index``) or on text it shows."""

from __future__ import annotations

import re
import secrets
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from playwright.async_api import Locator, Page, expect
from pydicom.uid import JPEGLSLossless, RLELossless

from e2e.ui import sign_in
from helpers import part10, study, upload

if TYPE_CHECKING:
    from conftest import Server, World  # tests/conftest.py

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="no /usr/bin/chromium"),
]

# What axe leaves alone: the drawing surface Cornerstone makes (its canvas and SVG layer). The
# pane around it is checked: it has role="img" and a name.
DRAWING = [".viewer-canvas canvas", ".viewer-canvas svg"]
LOADING_TIMEOUT_MS = 60_000


def coordinator(world: World) -> tuple[str, str]:
    username, password = f"coord-{uuid.uuid4().hex[:8]}", secrets.token_urlsafe(12)
    world.user(username, "coordinator", password)
    return username, password


def send(world: World, datasets: list) -> str:  # type: ignore[type-arg]
    """Uploads a study as its technician, in requests under the server's size limit."""
    hospital = world.hospital()
    files = [(f"IM{i:05d}.dcm", part10(ds)) for i, ds in enumerate(datasets)]
    batch = 60
    for start in range(0, len(files), batch):
        last = start + batch >= len(files)
        r = upload(
            hospital.tech.http, files[start : start + batch], complete="true" if last else "false"
        )
        assert r.status_code == 200, r.text
    return str(datasets[0].StudyInstanceUID)


async def index_of(main: Locator) -> int:
    value = await main.get_attribute("data-image-index")
    assert value is not None
    return int(value)


async def mark_ms(page: Page, name: str) -> float:
    """Milliseconds from the viewer's open mark to `name`."""
    return float(
        await page.evaluate(
            """(name) => {
                const open = performance.getEntriesByName('radrelay.viewer.open').at(-1);
                const mark = performance.getEntriesByName(name).at(-1);
                return mark.startTime - open.startTime;
            }""",
            name,
        )
    )


async def test_coordinator_reads_a_200_slice_ct(
    page: Page, console, shots, assert_accessible, timing, server: Server, world: World
) -> None:
    slices = 200
    study_uid = send(world, study("CT", slices=slices, size=256))
    username, password = coordinator(world)
    await sign_in(page, server.url, username, password)

    # 1. Open the study: the first image, then the whole stack in memory.
    await page.goto(f"{server.url}/viewer/{study_uid}")
    main = page.get_by_test_id("viewport-main")
    await expect(main).to_have_attribute("data-state", re.compile("^(first-image|loaded)$"))
    await expect(main).to_have_attribute("data-image-count", str(slices))
    await expect(main).to_have_attribute("data-state", "loaded", timeout=LOADING_TIMEOUT_MS)
    first = await mark_ms(page, "radrelay.viewer.first-image")
    loaded = await mark_ms(page, "radrelay.viewer.stack-loaded")
    timing(f"viewer: {slices}-slice CT first image {first:.0f} ms, stack loaded {loaded:.0f} ms")
    await expect(main).to_have_attribute("aria-label", re.compile(r"^Images: 1 CT "))
    await expect(page.get_by_role("navigation", name="Series").get_by_role("button")).to_have_count(
        1
    )
    await expect(page.get_by_text(f"Image 1/{slices}")).to_be_visible()
    await shots.take("opened")
    await assert_accessible(page, "the viewer", exclude=DRAWING)

    # 2. Scroll: the wheel over the image, then the keys.
    box = await main.bounding_box()
    assert box is not None
    centre_x, centre_y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    await page.mouse.move(centre_x, centre_y)
    await page.mouse.wheel(0, 120)
    await expect(main).not_to_have_attribute("data-image-index", "0")
    await main.focus()
    await page.keyboard.press("End")
    await expect(main).to_have_attribute("data-image-index", str(slices - 1))
    await page.keyboard.press("Home")
    await expect(main).to_have_attribute("data-image-index", "0")
    await page.keyboard.press("ArrowDown")
    await expect(main).to_have_attribute("data-image-index", "1")
    await page.keyboard.press("PageDown")
    await expect(main).to_have_attribute("data-image-index", "21")
    await page.keyboard.press("ArrowUp")
    await expect(main).to_have_attribute("data-image-index", "20")
    await expect(page.get_by_text(f"Image 21/{slices}")).to_be_visible()

    # 3. A length, drawn by dragging across the image: its value in mm in the list.
    await page.get_by_role("button", name="Length", exact=True).click()
    await expect(page.get_by_role("button", name="Length", exact=True)).to_have_attribute(
        "aria-pressed", "true"
    )
    await page.mouse.move(centre_x - 100, centre_y)
    await page.mouse.down()
    await page.mouse.move(centre_x, centre_y + 20, steps=5)
    await page.mouse.move(centre_x + 100, centre_y + 40, steps=5)
    await page.mouse.up()
    measurements = page.get_by_role("list", name="Measurements")
    await expect(measurements.get_by_role("listitem")).to_have_count(1)
    await expect(measurements.get_by_role("listitem")).to_contain_text(
        re.compile(r"Length: \d+\.\d mm")
    )
    await shots.take("measured")

    # 4. Window presets: the overlay says the window.
    await page.get_by_role("button", name="Lung", exact=True).click()
    await expect(page.get_by_text("W 1500 L -600")).to_be_visible()
    await main.focus()
    await page.keyboard.press("1")
    await expect(page.get_by_text("W 80 L 40")).to_be_visible()
    await shots.take("brain-window")

    # 5. Layouts: four panes, the main one loads again; then back to one.
    await page.get_by_role("button", name="2x2 layout").click()
    await expect(page.locator(".viewer-pane")).to_have_count(4)
    await expect(main).to_have_attribute("data-state", re.compile("^(first-image|loaded)$"))
    await shots.take("layout-2x2")
    await assert_accessible(page, "the viewer in 2x2", exclude=DRAWING)
    await page.get_by_role("button", name="1x1 layout").click()
    await expect(page.locator(".viewer-pane")).to_have_count(1)
    await expect(main).to_have_attribute("data-state", re.compile("^(first-image|loaded)$"))

    # 6. MPR: axial, sagittal and coronal views of the CT volume; then back to the stack.
    await page.get_by_role("button", name="MPR", exact=True).click()
    await expect(page.locator(".viewer-pane")).to_have_count(3)
    await expect(main).to_have_attribute("aria-label", re.compile(r"^Axial: "))
    await expect(main).to_have_attribute("data-state", re.compile("^(first-image|loaded)$"))
    await expect(page.get_by_role("img", name=re.compile(r"^Sagittal: "))).to_be_visible()
    await expect(page.get_by_role("img", name=re.compile(r"^Coronal: "))).to_be_visible()
    await shots.take("mpr")
    await page.get_by_role("button", name="1x1 layout").click()
    await expect(page.locator(".viewer-pane")).to_have_count(1)
    await expect(main).to_have_attribute("data-state", re.compile("^(first-image|loaded)$"))

    # 7. The shortcuts are documented in a popover.
    await page.get_by_role("button", name="Shortcuts").click()
    help_box = page.get_by_role("dialog", name="Keyboard shortcuts")
    await expect(help_box).to_be_visible()
    await expect(help_box.get_by_text("Next image")).to_be_visible()
    await shots.take("shortcuts")
    await assert_accessible(page, "the viewer's shortcuts", exclude=DRAWING)
    console.assert_clean()


@pytest.mark.parametrize("syntax", [JPEGLSLossless, RLELossless], ids=["jpeg-ls", "rle"])
async def test_compressed_series_is_decoded(
    page: Page, console, shots, server: Server, world: World, syntax: str
) -> None:
    slices = 12
    datasets = study("CT", slices=slices, size=128)
    for ds in datasets:
        ds.compress(syntax)
    study_uid = send(world, datasets)
    username, password = coordinator(world)
    await sign_in(page, server.url, username, password)

    await page.goto(f"{server.url}/viewer/{study_uid}")
    main = page.get_by_test_id("viewport-main")
    await expect(main).to_have_attribute("data-state", "loaded", timeout=LOADING_TIMEOUT_MS)
    await expect(main).to_have_attribute("data-image-count", str(slices))
    await main.focus()
    await page.keyboard.press("End")
    await expect(main).to_have_attribute("data-image-index", str(slices - 1))
    await shots.take("compressed")
    console.assert_clean()
