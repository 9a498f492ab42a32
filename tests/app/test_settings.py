"""The caps, the store and the broker of an app are those of the settings it was created with,
whatever the environment says and whichever app was created first in the process."""
from __future__ import annotations

import json

from fastapi.testclient import TestClient

from app.main import create_app
from tests.app.conftest import AUTH, make_settings


def _param(schema: dict, path: str, name: str) -> dict:
    return next(p for p in schema["paths"][path]["get"]["parameters"] if p["name"] == name)["schema"]


def test_an_app_made_with_max_n_4_refuses_n_5_and_its_schema_says_4(tmp_path, queue):
    default = TestClient(create_app(make_settings(tmp_path / "a"), enqueue=queue))
    small = TestClient(create_app(make_settings(tmp_path / "b", max_n=4, max_best_of=8,
                                                max_interpolate_steps=3), enqueue=queue))
    r = small.get("/generate?n=5")
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "n"]
    assert small.get("/generate?n=4&best_of=9").status_code == 422
    assert small.get("/interpolate?steps=4").status_code == 422
    # Within the caps the request is valid: it gets as far as "no model yet".
    assert small.get("/generate?n=4&best_of=8").status_code == 503
    assert small.get("/interpolate?steps=3").status_code == 503
    # The app made first keeps its own caps: n=5 is valid there.
    assert default.get("/generate?n=5").status_code == 503
    schema = small.get("/openapi.json").json()
    assert _param(schema, "/generate", "n")["maximum"] == 4
    assert _param(schema, "/interpolate", "steps")["maximum"] == 3
    assert _param(default.get("/openapi.json").json(), "/generate", "n")["maximum"] == 256


def test_train_caps_and_the_zip_bound_are_the_apps(tmp_path, queue):
    small = TestClient(create_app(make_settings(tmp_path / "b", max_width=16, max_batch_size=32,
                                                max_synthetic_images=100, max_zip_faces=7), enqueue=queue))
    default = TestClient(create_app(make_settings(tmp_path / "a"), enqueue=queue))
    body = {"dataset": "synthetic", "synthetic_images": 64, "ngf": 32}
    r = small.post("/train", json=body, headers=AUTH)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "ngf"]
    for field, value in (("batch_size", 64), ("synthetic_images", 101)):
        assert small.post("/train", json={**body, "ngf": 16, field: value}, headers=AUTH).status_code == 422
    assert small.post("/train", json={**body, "ngf": 16}, headers=AUTH).status_code == 202
    assert default.post("/train", json=body, headers=AUTH).status_code == 202
    schema = small.get("/openapi.json").json()
    request = schema["components"]["schemas"]["TrainRequest"]["properties"]
    assert (request["ngf"]["maximum"], request["ndf"]["maximum"], request["batch_size"]["maximum"],
            request["synthetic_images"]["maximum"]) == (16, 16, 32, 100)
    assert "At most 7 distinct seeds" in schema["paths"]["/faces.zip"]["get"]["description"]
    assert small.get("/faces.zip?seeds=0-7").status_code == 422


def test_the_default_sender_queues_on_the_apps_own_broker(tmp_path, monkeypatch):
    """Embedded mode: the wake-up message is a file under the app's RUNS_DIR/_broker, not under
    the RUNS_DIR the environment (here: the working directory's `runs`) would give."""
    monkeypatch.chdir(tmp_path)
    settings = make_settings(tmp_path / "mine")
    with TestClient(create_app(settings)) as c:
        r = c.post("/train", json={"dataset": "synthetic", "synthetic_images": 64}, headers=AUTH)
    assert r.status_code == 202, r.text
    messages = list((settings.broker_dir / "queue").iterdir())
    assert len(messages) == 1 and r.json()["job_id"] in messages[0].read_text()
    assert json.loads(messages[0].read_text())["headers"]["task"] == "worker.tasks.train_job"
    assert not (tmp_path / "runs").exists()
