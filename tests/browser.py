"""Plumbing shared by the browser tests: Debian's Chromium driven by Playwright, the real app
served on loopback in a thread, a page that fails the test on any JavaScript error, sign-in and
screenshots. The `browser` fixture itself lives in tests/conftest.py."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, Page, expect, sync_playwright
from werkzeug.serving import make_server

from engine import Engine
from webui import create_app
from webui.security import QuietRequestHandler

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"


@contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless."""
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            yield launched
        finally:
            launched.close()


@contextmanager
def serving(engine: Engine, secret_key: str) -> Iterator[str]:
    """The real app on `engine`, served on loopback in a thread; yields its base URL."""
    app = create_app({"SECRET_KEY": secret_key, "DATABASE_URL": "unused"}, engine=engine)
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@contextmanager
def open_page(
    browser: Browser, base_url: str, *, height: int = 768, timeout: float = 15000
) -> Iterator[Page]:
    """A page in a context of its own (its own cookies) on the app at `base_url`; once the
    block ends without an error, any JavaScript error the page raised fails the test."""
    context = browser.new_context(
        base_url=base_url, viewport={"width": 1366, "height": height}, locale="zh-CN"
    )
    context.set_default_timeout(timeout)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield page
    finally:
        context.close()
    assert errors == [], f"JavaScript errors: {errors}"


def sign_in(page: Page, username: str, password: str = "demo", then: str = "/inbox") -> None:
    """Sign in through the login page (signing out whoever was signed in), landing on `then`."""
    page.context.clear_cookies()
    page.goto(f"/login?next={then}")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(password)
    page.get_by_role("button", name="登录").click()
    expect(page.locator("header .me")).to_be_visible()


def shot(page: Page, name: str, *, full_page: bool = False) -> None:
    """A screenshot to artifacts/screenshots/<name>.png."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full_page)
