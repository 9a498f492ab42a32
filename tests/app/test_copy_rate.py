"""The copy rate of each measured epoch in GET /jobs/{id}/checkpoints, /metrics and /card."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from model.nearest import COPY_FRACTION
from tests.app.conftest import trained_job


def test_a_measured_job_lists_its_copy_rate_per_checkpoint_in_metrics_and_card(client, settings, image_folder):
    job_id = trained_job(settings.runs_dir, image_folder, swd_images=16).job_id
    listed = client.get(f"/jobs/{job_id}/checkpoints").json()["checkpoints"]
    assert [x["epoch"] for x in listed] == [1, 2]
    for x in listed:
        assert 0 <= x["copy_rate"] <= 1 and x["copy_distance"] > 0
    series = client.get(f"/jobs/{job_id}/metrics").json()
    assert series["copy_epochs"] == [1, 2]
    assert series["copy_rate"] == [x["copy_rate"] for x in listed]
    assert series["copy_distance"] == [x["copy_distance"] for x in listed]
    card = client.get(f"/jobs/{job_id}/card").json()
    assert [(ck["copy_rate"], ck["copy_distance"]) for ck in card["checkpoints"]] == \
        [(x["copy_rate"], x["copy_distance"]) for x in listed]
    assert f"{COPY_FRACTION} x the median" in card["copy_metric"]
    assert "copy_rate" in client.get(f"/jobs/{job_id}").json()  # the worker's reports fill it in


@pytest.mark.parametrize("value", ['"lots"', "1e999", "[1]", "-3"])
def test_a_hostile_copy_rate_in_a_job_record_never_500s(served, value):
    c, job_id = served
    record = Path(c.app.state.settings.runs_dir) / job_id / "job.json"
    record.write_text(record.read_text().replace('"swd": null', f'"swd": null, "copy_rate": {value}', 1))
    assert f'"copy_rate": {value}' in record.read_text()
    for path in (f"/jobs/{job_id}", "/jobs", "/"):
        assert c.get(path).status_code == 200, path


def test_a_run_from_before_the_copy_rate_shows_nulls(served):
    c, job_id = served  # trained with swd_images=0: no row carries one, as in runs older than the measure
    listed = c.get(f"/jobs/{job_id}/checkpoints").json()["checkpoints"]
    assert [(x["copy_rate"], x["copy_distance"]) for x in listed] == [(None, None), (None, None)]
    card = c.get(f"/jobs/{job_id}/card").json()
    assert all(ck["copy_rate"] is None for ck in card["checkpoints"])
    series = c.get(f"/jobs/{job_id}/metrics").json()
    assert series["copy_epochs"] == [] and series["copy_rate"] == []


@pytest.mark.parametrize("rate, distance", [
    ("NaN", "12.5"), ("Infinity", "1"), ("1e999", "1"), ("-0.5", "3"), ("7", "3"), ("0.25", "-1"),
    ("0.25", "1e400"), ("1" + "0" * 400, "2"), ('"high"', "2"), ("true", "2"), ("[0.5]", "2"),
    ("0.25", '"far"'), ("0.25", "null"),
])
def test_hostile_copy_figures_in_metrics_are_nulls_or_skipped_never_a_500(served, rate, distance):
    c, job_id = served
    metrics = Path(c.app.state.settings.runs_dir) / job_id / "metrics.jsonl"
    with open(metrics, "a") as f:
        f.write(f'{{"kind":"epoch","epoch":2,"step":12,"copy_rate":{rate},"copy_distance":{distance}}}\n')
    for path in ("checkpoints", "metrics", "card"):
        r = c.get(f"/jobs/{job_id}/{path}")
        assert r.status_code == 200, (path, r.text)
    ck = c.get(f"/jobs/{job_id}/checkpoints").json()["checkpoints"][-1]
    kept = rate == "0.25" and distance != '"far"'  # a field of the wrong type drops the whole row
    assert (ck["copy_rate"], ck["copy_distance"]) == ((0.25, None) if kept else (None, None))
    series = c.get(f"/jobs/{job_id}/metrics").json()
    assert all(0 <= v <= 1 for v in series["copy_rate"])
    json.dumps(series, allow_nan=False)  # what went out is plain JSON
