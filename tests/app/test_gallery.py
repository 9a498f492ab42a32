"""GET / (the gallery) and the headers that keep it and the images safe to show, in-process."""
from __future__ import annotations

import json
import re

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from tests.app.conftest import AUTH, make_settings

SYNTH = {"dataset": "synthetic", "synthetic_images": 64, "ngf": 8, "ndf": 8, "batch_size": 16, "epochs": 2}


@pytest.mark.parametrize("when", ["1e300", "-1e300", "NaN", "Infinity"])
def test_a_record_with_a_timestamp_no_calendar_has_does_not_break_the_gallery(client, settings, when):
    job_id = client.post("/train", json=SYNTH, headers=AUTH).json()["job_id"]
    path = settings.runs_dir / job_id / "job.json"
    created = json.loads(path.read_text())["created_at"]
    path.write_text(path.read_text().replace(f'"created_at": {created}', f'"created_at": {when}'))
    page = client.get("/")
    assert page.status_code == 200 and job_id in page.text
    assert client.get("/jobs").status_code == 200


def test_the_gallery_forbids_inline_code_and_framing_and_needs_none(client):
    client.post("/train", json=SYNTH, headers=AUTH)  # a job card, with its progress bar
    page = client.get("/")
    policy = page.headers["content-security-policy"]
    for directive in ("script-src 'self'", "style-src 'self'", "object-src 'none'", "frame-ancestors 'none'"):
        assert directive in policy
    assert "unsafe" not in policy
    assert page.headers["x-content-type-options"] == "nosniff" and page.headers["x-frame-options"] == "DENY"
    # What that policy would block, the page does not use: no inline script, style or handler.
    assert re.findall(r"<script(?![^>]*\bsrc=)", page.text) == []
    assert re.findall(r"<style|\sstyle=|\son[a-z]+=", page.text) == []
    assert 'data-field="bar" data-width="0.0%"' in page.text


def test_images_and_other_answers_may_load_nothing_and_are_never_sniffed(served):
    c, job_id = served
    for path in (f"/jobs/{job_id}/snapshots/1.png", "/generate?seed=1", "/jobs", "/static/gallery.js",
                 "/jobs/20990101-000000-abcdef"):
        r = c.get(path)
        assert r.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'; sandbox", path
        assert r.headers["x-content-type-options"] == "nosniff" and r.headers["x-frame-options"] == "DENY", path


def test_cors_preflight_allows_delete_for_a_configured_origin(tmp_path, queue):
    settings = make_settings(tmp_path, cors_origins="https://good.example")
    with TestClient(create_app(settings, enqueue=queue)) as c:
        r = c.options("/jobs/20990101-000000-abcdef", headers={"Origin": "https://good.example",
                                                               "Access-Control-Request-Method": "DELETE"})
    assert r.status_code == 200 and "DELETE" in r.headers["access-control-allow-methods"]
