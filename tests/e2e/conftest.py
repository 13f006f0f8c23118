"""Browser tests: the built web UI (frontend/dist, served by ``radrelay serve`` at ``/``) driven
in headless Chromium by Playwright's async API, against the suite's real server.

Playwright never downloads a browser here: it starts Debian's ``/usr/bin/chromium`` (the Makefile's
``system-deps`` installs it under ``CI=true``). Without it the tests are skipped (the ``browser``
fixture), and ``make test`` deselects them (``-m "not browser"``); the test modules here mark
themselves ``pytestmark = pytest.mark.browser``.

Each test gets a fresh browser context (no shared storage or session) on one browser for the
whole session, and a ``Console`` that records the page's console errors and uncaught exceptions:
a test ends with ``console.assert_clean()``.
"""

from __future__ import annotations

import contextlib
import glob
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Error,
    Page,
    async_playwright,
    expect,
)

CHROMIUM = Path("/usr/bin/chromium")
HAVE_CHROMIUM = CHROMIUM.exists()
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "e2e"
UI_BUILT = (ROOT / "frontend" / "dist" / "index.html").is_file()
TIMEOUT_MS = 20_000


@dataclass
class Console:
    """The page's console errors and uncaught exceptions, less the ones a test causes on purpose
    (a failed request it expects, named by status and path)."""

    expected: list[tuple[int, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def expect_failed_request(self, status: int, path: str) -> None:
        self.expected.append((status, path))

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        url = message.location.get("url", "")
        for status, path in self.expected:
            # Chromium's own line for a request answered with an error status.
            if re.fullmatch(
                rf"Failed to load resource: the server responded with a status of {status} .*",
                message.text,
            ) and re.fullmatch(rf"https?://[^/]+{re.escape(path)}", url):
                return
        self.errors.append(f"console.error: {message.text} ({url})")

    def on_page_error(self, error: Error) -> None:
        self.errors.append(f"uncaught: {error.name}: {error.message}\n{error.stack or ''}")

    def assert_clean(self) -> None:
        assert self.errors == [], "browser console errors:\n" + "\n".join(self.errors)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not HAVE_CHROMIUM:
        pytest.skip(f"no {CHROMIUM}: apt-get install --no-install-recommends chromium")
    if not UI_BUILT:
        pytest.fail("the UI is not built: `make frontend` (cd frontend && npm run build)")
    expect.set_options(timeout=TIMEOUT_MS)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
def console() -> Console:
    return Console()


CALL_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item) -> Iterator[pytest.TestReport]:
    report: pytest.TestReport = yield
    if report.when == "call":
        item.stash[CALL_FAILED] = report.failed
    return report


def _file_name(test_name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", test_name)


@pytest.fixture
async def page(
    browser: Browser, console: Console, request: pytest.FixtureRequest
) -> AsyncIterator[Page]:
    """A new page in a context of its own: English, a desktop-sized window. When the test
    fails, the page as it was is saved (test-artifacts/e2e/NAME-failed.png) and the console
    errors so far are printed."""
    context: BrowserContext = await browser.new_context(
        locale="en-US", timezone_id="Asia/Shanghai", viewport={"width": 1280, "height": 900}
    )
    context.set_default_timeout(TIMEOUT_MS)
    page = await context.new_page()
    page.on("console", console.on_console)
    page.on("pageerror", console.on_page_error)
    try:
        yield page
        if request.node.stash.get(CALL_FAILED, False):
            print("browser console errors:", *(console.errors or ["(none)"]), sep="\n")
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(Error):
                await page.screenshot(
                    path=SCREENSHOTS / f"{_file_name(request.node.name)}-failed.png",
                    full_page=True,
                )
    finally:
        await context.close()


class Screenshots:
    """Full-page screenshots under test-artifacts/e2e/, named by test and step."""

    def __init__(self, page: Page, test_name: str):
        self.page = page
        self.prefix = _file_name(test_name)
        self.count = 0
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for old in SCREENSHOTS.glob(f"{glob.escape(self.prefix)}-*.png"):
            old.unlink()

    async def take(self, step: str) -> Path:
        self.count += 1
        path = SCREENSHOTS / f"{self.prefix}-{self.count:02d}-{step}.png"
        # The window as tall as the page for the shot, so that the sticky header and send bar
        # sit where they belong instead of over the content, and the case panel is whole.
        window = self.page.viewport_size
        assert window is not None
        height = await self.page.evaluate("document.documentElement.scrollHeight")
        await self.page.set_viewport_size({**window, "height": max(window["height"], height)})
        try:
            await self.page.screenshot(path=path, full_page=True)
        finally:
            await self.page.set_viewport_size(window)
        return path


@pytest.fixture
def shots(page: Page, request: pytest.FixtureRequest) -> Screenshots:
    return Screenshots(page, request.node.name)


AXE = ROOT / "frontend" / "node_modules" / "axe-core" / "axe.min.js"
# What a page must not have: axe-core's serious and critical violations of WCAG 2 A/AA.
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


async def check_accessible(page: Page, what: str, *, exclude: list[str] | None = None) -> None:
    """Runs axe-core (frontend/node_modules, the npm devDependency) on the page as it is now and
    fails on any serious or critical violation, listing each rule with the elements it found.
    ``exclude``: CSS selectors axe skips (a canvas the viewer draws into, say)."""
    if not await page.evaluate("typeof window.axe !== 'undefined'"):
        await page.add_script_tag(path=str(AXE))
    context = {"exclude": [[s] for s in exclude]} if exclude else None
    result = await page.evaluate(
        """([context, tags]) => window.axe.run(context ?? document,
             {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})""",
        [context, AXE_TAGS],
    )
    bad = [v for v in result["violations"] if v["impact"] in ("serious", "critical")]
    lines = [
        f"{v['id']} ({v['impact']}): {v['help']} -> "
        + "; ".join(" ".join(n["target"]) for n in v["nodes"][:5])
        for v in bad
    ]
    assert not bad, f"accessibility violations on {what}:\n" + "\n".join(lines)


@pytest.fixture
def assert_accessible() -> Callable[..., Awaitable[None]]:
    """``await assert_accessible(page, "the worklist", exclude=[".viewer canvas"])``."""
    return check_accessible


# What the browser tests measured (time to the first image ...), printed at the end of the run
# so that `make test` shows it without -s: the issue asks for it printed, never asserted.
TIMINGS: list[str] = []


@pytest.fixture
def timing() -> Callable[[str], None]:
    """``timing("viewer: 200-slice CT first image 612 ms")``: a line for the run's summary."""
    return TIMINGS.append


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TIMINGS:
        terminalreporter.section("browser timings")
        for line in TIMINGS:
            terminalreporter.write_line(line)
