"""The gallery and the API docs in a real headless Chromium (Debian's, driven by Playwright)."""
from __future__ import annotations

import contextlib
import os
import shutil
from urllib.parse import urlparse

import pytest

from tests.helpers import write_blob_images
from tests.service.stack import AUTH, TINY_JOB, TOKEN, client, submit, wait_for, wait_job

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WIDE = {"width": 1400, "height": 900}
PHONE = {"width": 390, "height": 844}
# Every stroke of every chart, with its computed fill: a shape left at the default fill is
# painted black (the "large black triangle" the axis path used to draw).
CHART_FILLS = """() => [...document.querySelectorAll(
    'svg[data-chart] path, svg[data-chart] polyline, svg[data-chart] line')]
    .map(el => [el.tagName + '.' + el.getAttribute('class'), getComputedStyle(el).fill])"""
OVERFLOW = "() => document.documentElement.scrollWidth - window.innerWidth"


def chromium_path() -> str:
    for candidate in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"):
        if candidate and shutil.which(candidate):
            return candidate
    pytest.fail("Chromium not found: `make test` installs Debian's chromium (or set CHROMIUM=/path)")


@contextlib.contextmanager
def chromium(viewport: dict | None = None, offline: bool = False, scale: float = 1):
    """(page, errors): a fresh page whose console errors and uncaught exceptions are collected.
    `offline`: every request not to 127.0.0.1 is refused (a lab box without internet)."""
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
        context = browser.new_context(viewport=viewport or WIDE, device_scale_factor=scale)
        context.outside = []  # requests refused while offline: (resource type, url)
        if offline:
            def route(r):
                if urlparse(r.request.url).hostname == "127.0.0.1":
                    r.continue_()
                else:
                    context.outside.append((r.request.resource_type, r.request.url))
                    r.abort()
            context.route("**/*", route)
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(f"{m.text} ({m.location.get('url')})")
                if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        yield page, errors
        browser.close()


@pytest.fixture(scope="module")
def page_url(stack):
    url = stack.apps[0][1]
    c = client(url)
    wait_job(c, submit(c, epochs=2), {"succeeded"})
    return url


@pytest.fixture
def browser_page():
    with chromium({"width": 1280, "height": 900}) as (page, errors):
        yield page, errors


def open_gallery(page, url: str) -> None:
    page.goto(url + "/", wait_until="networkidle")
    page.wait_for_selector("section.job svg[data-chart=loss] polyline")
    page.wait_for_selector("section.job svg[data-chart=dx] polyline")


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


def test_training_images_sit_beside_the_progression_and_every_chart_has_legend_and_axis_titles(
        page_url, browser_page):
    page, errors = browser_page
    open_gallery(page, page_url)
    card = page.locator("section.job").first
    reals = card.locator(".showcase > figure.reals img")
    reals.scroll_into_view_if_needed()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=reals.element_handle())
    assert reals.evaluate("img => img.naturalWidth") == 786  # the same 8x8 grid as the snapshots
    assert card.locator(".showcase > figure.reals figcaption").inner_text() == "training images"
    # The newest grid, large, first; the training images beside it at the same size.
    newest = card.locator(".showcase > figure.newest img").bounding_box()
    reals_box = reals.bounding_box()
    assert abs(reals_box["y"] - newest["y"]) < 2 and newest["x"] < reals_box["x"]  # side by side
    assert abs(reals_box["width"] - newest["width"]) < 2 and newest["width"] >= 300
    legends = {chart: card.locator(f"figure:has(svg[data-chart={chart}]) .legend li").all_inner_texts()
               for chart in ("loss", "dx", "swd", "copies")}
    assert legends == {"loss": ["D loss", "G loss"], "dx": ["D(x): real images", "D(G(z)): generated"],
                       "swd": ["SWD ×10³"], "copies": ["snapshot faces that copy a training image, %"]}
    assert "swd_images > 0" in card.locator("svg[data-chart=copies]").text_content()  # this job measures none
    titles = {chart: card.locator(f"svg[data-chart={chart}] text.axis-title").all_text_contents()
              for chart in ("loss", "dx")}
    assert titles == {"loss": ["step", "loss"], "dx": ["step", "D output"]}
    assert card.locator("svg[data-chart=dx] polyline").count() == 2  # D(x) and D(G(z))
    assert errors == []


@pytest.mark.parametrize("viewport", [WIDE, PHONE], ids=["1400x900", "390x844"])
def test_gallery_fits_the_screen_and_no_chart_path_is_filled(page_url, viewport, tmp_path):
    with chromium(viewport, scale=2 if viewport is PHONE else 1) as (page, errors):
        open_gallery(page, page_url)
        page.screenshot(path=str(tmp_path / f"gallery-{viewport['width']}.png"), full_page=True)
        fills = page.evaluate(CHART_FILLS)
        overflow = page.evaluate(OVERFLOW)
    assert len(fills) > 10 and any(tag.startswith("polyline") for tag, _ in fills)
    assert [f for f in fills if f[1] != "none"] == []
    assert overflow <= 0  # nothing wider than the screen (the snapshot strip scrolls inside its card)
    assert errors == []


@pytest.mark.parametrize("viewport", [WIDE, PHONE], ids=["1400x900", "390x844"])
def test_the_newest_grid_is_large_and_in_view_without_scrolling_sideways(page_url, viewport):
    with chromium(viewport) as (page, errors):
        open_gallery(page, page_url)
        card = page.locator("section.job").first
        epochs = [int(e) for e in card.locator(".snapshots figure").evaluate_all(
            "figs => figs.map(f => f.dataset.epoch)")]
        newest = card.locator(".showcase > figure.newest")
        assert newest.locator("figcaption").inner_text() == f"newest: epoch {max(epochs)}"
        img = newest.locator("img")
        page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=img.element_handle())
        assert img.get_attribute("src").endswith(f"/snapshots/{max(epochs)}.png")
        img.scroll_into_view_if_needed()  # down the page only: nothing may scroll sideways
        box = img.bounding_box()
        scroll_x = page.evaluate("() => window.scrollX")
        overflow = page.evaluate(OVERFLOW)
        thumb = card.locator(".snapshots img").first.bounding_box()
    assert scroll_x == 0 and overflow <= 0
    assert box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"]  # whole, across the screen
    assert box["y"] >= 0 and box["y"] + box["height"] <= viewport["height"]  # whole, down the screen
    assert box["width"] >= min(300, viewport["width"] - 80) and box["width"] > 2 * thumb["width"]
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


def test_more_like_this_shows_the_seeds_face_among_its_variations(page_url, browser_page, tmp_path):
    page, errors = browser_page
    page.goto(page_url + "/", wait_until="networkidle")
    page.fill("#seed", "77")
    with page.expect_response(lambda r: "/variations?" in r.url) as answer:
        page.click("#more-like")
    assert answer.value.status == 200 and "seed=77" in answer.value.url
    page.wait_for_function("() => { const i = document.querySelector('#seed-image');"
                           " return !i.hidden && i.complete && i.naturalWidth === 4 * 98 + 2; }")
    assert "epoch-0002.pt" in page.locator("#seed-status").inner_text()
    page.locator("#try").screenshot(path=str(tmp_path / "more-like-this.png"))
    assert errors == []


def test_direction_sliders_move_the_face_and_reset_brings_it_back(page_url, browser_page, tmp_path):
    page, errors = browser_page
    page.goto(page_url + "/", wait_until="networkidle")
    page.fill("#seed", "7")
    page.select_option("#n", "1")
    with page.expect_response(lambda r: "/generate?" in r.url) as plain:
        page.click("#seed-form button[type=submit]")
    plain_tag = plain.value.headers["etag"]  # (the same query's bytes: the ETag says which image it is)
    page.click("#edit-box summary")
    page.wait_for_selector("#edit-sliders input[type=range]")
    assert page.locator("#edit-sliders input").count() == 6
    assert "16 directions" in page.locator("#edit-status").inner_text()
    with page.expect_response(lambda r: "/generate?" in r.url and "edit=" in r.url) as edited:
        page.locator("#edit-sliders input").nth(0).fill("3")
        page.locator("#edit-sliders input").nth(2).fill("-2")  # within the debounce: one request for both
    assert edited.value.status == 200 and "edit=0%3A3%2C2%3A-2" in edited.value.url
    assert edited.value.headers["etag"] != plain_tag
    page.wait_for_function("() => document.querySelector('#seed-image').src.startsWith('blob:')")
    page.locator("#try").screenshot(path=str(tmp_path / "directions.png"))
    with page.expect_response(lambda r: "/generate?" in r.url) as reset:
        page.click("#edit-reset")
    assert "edit" not in reset.value.url and reset.value.headers["etag"] == plain_tag
    assert page.locator("#edit-sliders output").all_inner_texts() == ["0"] * 6
    assert errors == []


def test_nearest_training_images_show_beside_the_face(page_url, browser_page, tmp_path):
    page, errors = browser_page
    page.goto(page_url + "/", wait_until="networkidle")
    page.fill("#seed", "77")
    page.click("#nearest-btn")
    page.wait_for_function("() => { const imgs = [...document.querySelectorAll('#nearest img')];"
                           " return imgs.length === 8 && imgs.every(i => i.complete && i.naturalWidth === 96); }")
    assert "typically" in page.locator("#nearest-status").inner_text()
    page.locator("#try").screenshot(path=str(tmp_path / "nearest.png"))
    assert errors == []


def test_seed_box_answers_from_the_chosen_job_and_epoch_and_says_which(page_url, browser_page):
    page, errors = browser_page
    job_id = client(page_url).get("/jobs").json()["jobs"][-1]["job_id"]
    page.goto(page_url + "/", wait_until="networkidle")
    assert page.locator("#model-job option").first.inner_text() == "default model"
    page.wait_for_selector(f"#model-job option[value='{job_id}']", state="attached")
    page.select_option("#model-job", job_id)
    page.wait_for_selector("#model-epoch option[value='1']", state="attached")
    assert page.locator("#model-epoch option").all_inner_texts()[:3] == ["newest", "epoch 1", "epoch 2"]
    page.select_option("#model-epoch", "1")
    page.click("#sampling-box summary")  # the trade-offs are folded away
    page.fill("#best-of", "8")
    page.select_option("#n", "4")
    page.click("#seed-form button[type=submit]")
    page.wait_for_function("() => document.querySelector('#seed-status').textContent.includes('epoch-0001')")
    assert page.locator("#seed-status").inner_text() == f"answered by {job_id}/epoch-0001.pt"
    assert page.locator("#seed-image").evaluate("i => i.naturalWidth") == 2 * 98 + 2  # 2x2, best 4 of 8
    assert errors == []


def test_docs_and_redoc_work_offline(page_url):
    with chromium(offline=True) as (page, errors):
        page.goto(page_url + "/docs", wait_until="networkidle")
        page.wait_for_selector(".opblock-summary-path")
        paths = page.locator(".opblock-summary-path").all_inner_texts()
        assert "/train" in paths and "/generate" in paths and "/jobs/{job_id}/cancel" in paths
        assert errors == []
        page.goto(page_url + "/redoc", wait_until="networkidle")
        page.wait_for_selector("h2:has-text('Start a training job')")  # ReDoc rendered the operations
        outside = page.context.outside
    # All the pages need is local, ReDoc's logo included (the app serves its script without it).
    assert outside == [], outside
    assert errors == []


def test_damaged_job_shows_only_its_error_and_a_delete_button(stack, page_url, browser_page):
    page, errors = browser_page
    job_id = "20200101-000000-dead00"
    folder = stack.runs / job_id
    folder.mkdir()
    (folder / "job.json").write_text("{not json")
    try:
        page.goto(page_url + "/", wait_until="networkidle")
        card = page.locator(f"section.job[data-job='{job_id}']")
        assert card.locator(".badge").first.inner_text() == "damaged"
        assert card.locator("[data-field=error]").inner_text()
        assert card.locator(".charts, .progression, .progress").count() == 0
        visible = [b.inner_text() for b in card.locator("[data-action]").all() if b.is_visible()]
        assert visible == ["Delete"]
        assert page.evaluate(OVERFLOW) <= 0
        assert errors == []
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_job_buttons_ask_for_the_token_once_and_act_on_the_job(page_url, browser_page):
    page, errors = browser_page
    c = client(page_url)
    done_id = c.get("/jobs").json()["jobs"][-1]["job_id"]
    long_id = submit(c, epochs=500, snapshot_epochs=[500])
    native = []  # the browser's own dialogs: confirm() for Delete only, never prompt()
    page.on("dialog", lambda d: (native.append(d.type), d.accept()))
    page.goto(page_url + "/", wait_until="networkidle")
    page.evaluate("""() => { window.tokenAsked = 0; const show = HTMLDialogElement.prototype.showModal;
        HTMLDialogElement.prototype.showModal = function () {
            if (this.id === 'token-dialog') window.tokenAsked++;
            show.call(this); }; }""")
    card = page.locator(f"section.job[data-job='{long_id}']")
    done = page.locator(f"section.job[data-job='{done_id}']")
    state = lambda: card.get_attribute("data-state")  # noqa: E731

    # A wrong token is refused and asked for again; the right one is kept for the tab.
    page.evaluate("() => sessionStorage.setItem('dcgan-faces-token', 'wrong')")
    card.locator("[data-action=cancel]").click()
    page.wait_for_selector("#token-dialog[open]")
    assert "refused" in page.locator("#token-why").inner_text()
    page.fill("#token-input", TOKEN)
    page.click("#token-form button[type=submit]")
    page.wait_for_function(f"() => document.querySelector(\"section.job[data-job='{long_id}']\")"
                           ".dataset.state === 'cancelled'", timeout=60_000)
    assert c.get(f"/jobs/{long_id}").json()["state"] == "cancelled"
    assert not card.locator("[data-action=cancel]").is_visible()

    card.locator("[data-action=resume]").click()
    wait_for(lambda: state() in ("queued", "running"), 30, "the card to show the resumed job")
    card.locator("[data-action=cancel]").click()
    wait_for(lambda: state() == "cancelled", 60, "the card to show the job cancelled again")

    done.locator("[data-action=pin]").click()
    page.wait_for_selector("#unpin", state="visible")  # the page has seen the pin
    assert done.locator("[data-field=serving]").is_visible() and not done.locator("[data-action=pin]").is_visible()
    served = c.get("/models/default").json()
    assert (served["job_id"], served["pinned"]) == (done_id, True)
    # The header says which checkpoint serves and why: the pin, then the rule's reason.
    assert page.locator("#served").inner_text() == \
        f"{done_id}/{served['checkpoint']}: pinned with POST /models/default"
    page.locator("#unpin").click()
    page.wait_for_selector("#unpin", state="hidden")
    served = c.get("/models/default").json()
    assert served["pinned"] is False
    assert page.locator("#served").inner_text() == f"{served['job_id']}/{served['checkpoint']}: {served['reason']}"
    assert served["reason"].startswith(("the lowest SWD", "the newest checkpoint"))

    # "Train more…" asks in the page's own form: no fewer epochs than the job has; Cancel sends nothing.
    before = done.locator("[data-field=action-status]").inner_text()
    done.locator("[data-action=extend]").click()
    page.wait_for_selector("#extend-dialog[open]")
    assert page.locator("#extend-why").inner_text().startswith(f"Job {done_id} has 2 epochs.")
    page.fill("#extend-epochs", "2")
    assert page.locator("#extend-epochs").evaluate("i => i.checkValidity()") is False
    page.click("#extend-form button[type=submit]")  # refused by the browser: the form stays open
    assert page.locator("#extend-dialog").evaluate("d => d.open") is True
    page.click("#extend-cancel")
    page.wait_for_selector("#extend-dialog", state="hidden")
    assert done.locator("[data-field=action-status]").inner_text() == before
    assert c.get(f"/jobs/{done_id}").json()["epochs"] == 2

    card.locator("[data-action=delete]").click()
    card.wait_for(state="detached")
    assert c.get(f"/jobs/{long_id}").status_code == 404
    assert page.evaluate("() => window.tokenAsked") == 1  # once per tab (after the wrong one)

    # ... and with a number past the job's epochs, it trains on to it.
    done.locator("[data-action=extend]").click()
    page.fill("#extend-epochs", "3")
    page.click("#extend-form button[type=submit]")
    wait_for(lambda: done.locator("[data-field=action-status]").inner_text() == "resumed", 30, "the extension")
    assert c.get(f"/jobs/{done_id}").json()["epochs"] == 3
    wait_job(c, done_id, {"succeeded"})
    assert native == ["confirm"]  # Delete's
    assert [e for e in errors if "Failed to load resource" not in e] == []


# Last: its job becomes the newest, which the default model would serve in the tests above.
def test_a_card_names_the_skipped_files_and_its_speed_is_training_speed(stack, page_url, browser_page):
    page, errors = browser_page
    folder = write_blob_images(stack.data / "with-junk", 40)
    for i in range(22):
        (folder / "class0" / f"junk{i:02d}.png").write_bytes(b"not a png")
    c = client(page_url)
    body = {k: v for k, v in TINY_JOB.items() if k not in ("dataset", "synthetic_images")}
    r = c.post("/train", json={**body, "data_dir": "with-junk", "epochs": 1, "snapshot_epochs": [1]},
               headers=AUTH)
    job_id = r.json()["job_id"]
    wait_job(c, job_id, {"succeeded"})
    page.goto(page_url + "/", wait_until="networkidle")
    card = page.locator(f"section.job[data-job='{job_id}']")
    report = card.locator("[data-field=data-report]")
    report.wait_for(state="visible")
    assert report.locator("span").inner_text() == "40 images used of 62 files · 22 skipped"
    report.locator("summary").click()
    items = report.locator("li").all_inner_texts()
    assert len(items) == 21 and items[0] == "class0/junk00.png: not an image" and items[-1] == "… and 2 more"
    assert "img/s training" in card.locator("[data-field=stats]").inner_text()
    assert errors == []
