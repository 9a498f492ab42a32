"""The gallery in a real headless Chromium (Debian's, driven by Playwright)."""
from __future__ import annotations

import os
import shutil

import pytest

from tests.service.stack import client, submit, wait_job

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium_path() -> str:
    for candidate in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"):
        if candidate and shutil.which(candidate):
            return candidate
    pytest.fail("Chromium not found: `make test` installs Debian's chromium (or set CHROMIUM=/path)")


@pytest.fixture(scope="module")
def page_url(stack):
    url = stack.apps[0][1]
    c = client(url)
    wait_job(c, submit(c, epochs=2), {"succeeded"})
    return url


@pytest.fixture
def browser_page(tmp_path):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        yield page, errors
        browser.close()


def test_gallery_shows_progression_and_curves_without_console_errors(page_url, browser_page, tmp_path):
    page, errors = browser_page
    page.goto(page_url + "/", wait_until="networkidle")
    snapshots = page.locator("section.job .snapshots img")
    assert snapshots.count() >= 2
    for i in range(snapshots.count()):
        img = snapshots.nth(i)
        img.scroll_into_view_if_needed()
        page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=img.element_handle())
        assert img.evaluate("img => img.naturalWidth") == 786
    captions = page.locator("section.job .snapshots figcaption").all_inner_texts()
    assert "epoch 1" in captions and "epoch 2" in captions
    page.wait_for_selector("svg[data-chart=loss] polyline")
    assert page.locator("section.job .badge").first.inner_text() == "succeeded"
    page.screenshot(path=str(tmp_path / "gallery.png"), full_page=True)
    assert errors == []


def test_seed_box_and_interpolation_update_the_images(page_url, browser_page):
    page, errors = browser_page
    page.goto(page_url + "/", wait_until="networkidle")
    page.fill("#seed", "123")
    page.click("#seed-form button[type=submit]")
    page.wait_for_function("() => { const i = document.querySelector('#seed-image');"
                           " return !i.hidden && i.complete && i.naturalWidth > 0; }")
    first = page.locator("#seed-image").get_attribute("src")
    assert page.locator("#seed-image").evaluate("i => i.naturalWidth") == 786
    assert "epoch-0002.pt" in page.locator("#seed-status").inner_text()
    page.fill("#seed", "124")
    page.click("#seed-form button[type=submit]")
    page.wait_for_function(f"() => document.querySelector('#seed-image').src !== '{first}'")
    page.click("#interp-form button[type=submit]")
    page.wait_for_function("() => { const i = document.querySelector('#interp-image');"
                           " return !i.hidden && i.complete && i.naturalWidth > 0; }")
    assert page.locator("#interp-image").evaluate("i => i.naturalWidth") == 8 * 98 + 2
    page.fill("#seed", "99999999999")  # out of range: the browser refuses it before any request
    assert page.locator("#seed").evaluate("i => i.checkValidity()") is False
    assert errors == []


def test_gallery_fits_a_phone(page_url, tmp_path):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2)
        page.goto(page_url + "/", wait_until="networkidle")
        overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        page.screenshot(path=str(tmp_path / "phone.png"))
        browser.close()
    assert overflow <= 0  # nothing wider than the screen (the snapshot strip scrolls inside its card)
