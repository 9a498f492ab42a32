"""The static site `python -m model publish` writes, opened in Chromium from file:// (no server)."""
from __future__ import annotations

import pytest

from model.publish import publish
from model.train import train
from tests.helpers import tiny_config
from tests.service.test_gallery import PHONE, WIDE, chromium

pytestmark = [pytest.mark.slow, pytest.mark.browser]
ALL_LOADED = "[...document.images].length > 1 && [...document.images].every(i => i.complete && i.naturalWidth > 0)"


@pytest.mark.parametrize("viewport", [WIDE, PHONE], ids=["wide", "phone"])
def test_the_site_shows_a_random_face_and_a_grid_of_published_faces(image_folder, tmp_path, viewport):
    run = tmp_path / "20260101-000000-abcdef"
    train(tiny_config(epochs=1), run, data_dir=image_folder)
    site = tmp_path / "site"
    publish(run, range(100, 160), site, device="cpu")
    with chromium(viewport) as (page, errors):
        page.goto(f"file://{site}/index.html")
        page.wait_for_function(ALL_LOADED, timeout=20_000)
        grid = page.locator("#grid img")
        assert grid.count() == 48
        sources = {grid.nth(i).get_attribute("src") for i in range(48)}
        assert all(s.startswith("seed000") and 100 <= int(s[4:10]) < 160 for s in sources)
        about = page.locator("#about").inner_text()
        assert about == "60 faces from epoch 1 of job 20260101-000000-abcdef (epoch-0001.pt)"
        shown = {page.locator("#one").get_attribute("src")}
        for _ in range(10):
            page.click("#again")
            shown.add(page.locator("#one").get_attribute("src"))
        assert len(shown) > 3  # a new random face each time
        box = page.locator("#one").bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"]  # no sideways scrolling
        page.screenshot(path=str(tmp_path / "site.png"))
        assert errors == []
