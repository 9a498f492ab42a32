"""Every documented 4xx (and the 503s) of the real app, with a message a person can act on."""
from __future__ import annotations

import pytest

from tests.service.stack import AUTH, TINY_JOB, Stack, client

pytestmark = pytest.mark.slow

UNKNOWN = "20990101-000000-abcdef"


@pytest.fixture(scope="module")
def app(stack):
    (stack.data / "faces").mkdir(exist_ok=True)
    from tests.helpers import write_blob_images
    write_blob_images(stack.data / "faces", 4)
    outside = stack.folder / "outside"
    outside.mkdir(exist_ok=True)
    (stack.data / "escape").symlink_to(outside, target_is_directory=True)
    return client(stack.apps[0][1])


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic dGVzdA=="}])
@pytest.mark.parametrize("method,path", [("post", "/train"), ("post", f"/jobs/{UNKNOWN}/cancel"),
                                         ("post", f"/jobs/{UNKNOWN}/resume"), ("post", "/models/default")])
def test_state_changes_need_the_token(app, method, path, headers):
    r = app.request(method.upper(), path, json=TINY_JOB, headers=headers)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert "bearer token" in r.json()["detail"]


@pytest.mark.parametrize("body,words", [
    ({**TINY_JOB, "batch_size": 0}, "greater than or equal to 2"),
    ({**TINY_JOB, "batch_size": 2048}, "less than or equal to 1024"),  # this server's cap
    ({**TINY_JOB, "ngf": 200}, "less than or equal to 128"),
    ({**TINY_JOB, "lr": -1}, "greater than 0"),
    ({**TINY_JOB, "epochs": "many"}, "valid integer"),
    ({**TINY_JOB, "epochs": "3"}, "valid integer"),  # JSON integers only, not numeric strings
    ({**TINY_JOB, "epochs": 2.5}, "valid integer"),
    ({**TINY_JOB, "compile": "yes"}, "valid boolean"),
    ({**TINY_JOB, "amp": False}, "amp was replaced by precision"),
    ({**TINY_JOB, "precision": "fp16"}, "'auto', 'bf16' or 'fp32'"),
    ({**TINY_JOB, "snapshot_epochs": [0]}, "greater than or equal to 1"),
    ({**TINY_JOB, "learning_rate": 1}, "Extra inputs are not permitted"),
    ({"epochs": 1}, "exactly one of data_dir"),
    ({"data_dir": "faces", "dataset": "synthetic"}, "exactly one of data_dir"),
    ({"data_dir": None, "dataset": "synthetic"}, "valid string"),
    ({"data_dir": "../etc"}, "plain folder name"),
    ({"data_dir": "faces/../../etc"}, "plain folder name"),
    ({"data_dir": ".hidden"}, "plain folder name"),
    ({"data_dir": "/etc"}, "not absolute"),
    ({"data_dir": "fa\u0000ces"}, "NUL"),
    ({"data_dir": "fa\\ces"}, "backslash"),
    ({"data_dir": "escape"}, "outside DATA_ROOT"),
    ({"data_dir": ""}, "at least 1 character"),
    ({**TINY_JOB, "synthetic_images": 10**9}, "less than or equal to"),
])
def test_bad_training_requests_are_422_with_the_reason(app, body, words):
    r = app.post("/train", json=body, headers=AUTH)
    assert r.status_code == 422, r.text
    assert words in r.text


@pytest.mark.parametrize("data_dir", ["missing", "%2e%2e/etc", "faces/nope"])
def test_a_data_dir_that_does_not_exist_is_404(app, data_dir):
    r = app.post("/train", json={"data_dir": data_dir}, headers=AUTH)
    assert r.status_code == 404 and "no folder" in r.json()["detail"]


def test_an_undecodable_body_is_422(app):
    r = app.post("/train", content=b"\xff\xfe\x00garbage", headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 422


def test_405_lists_every_method_of_the_path(app):
    r = app.request("PUT", "/models/default")
    assert r.status_code == 405 and r.headers["allow"] == "DELETE, GET, POST"


def test_malformed_json_is_422(app):
    r = app.post("/train", content=b"{not json", headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 422


def test_a_body_over_the_limit_is_413_before_it_is_read(app):
    r = app.post("/train", content=b"x" * 1_100_000, headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 413 and "request body over" in r.json()["detail"]


@pytest.mark.parametrize("query,words", [
    ("n=0", "greater than or equal to 1"), ("n=257", "less than or equal to 256"),
    ("seed=-1", "greater than or equal"), (f"seed={2**32}", "less than or equal"), ("seed=abc", "digits only"),
    ("truncation=0", "greater than 0"), ("best_of=100000", "less than or equal to 1024"),
    ("format=bmp", "'png', 'jpeg' or 'webp'"), ("nrow=0", "greater than or equal"),
    ("epoch=0&job=x", "greater than or equal"),
])
def test_bad_generate_parameters_are_422(app, query, words):
    r = app.get(f"/generate?{query}")
    assert r.status_code == 422, r.text
    assert words in r.text


@pytest.mark.parametrize("query", ["steps=1", "steps=33", "seed_a=-5", "format=tiff"])
def test_bad_interpolate_parameters_are_422(app, query):
    assert app.get(f"/interpolate?{query}").status_code == 422


@pytest.mark.parametrize("path", [f"/jobs/{UNKNOWN}", f"/jobs/{UNKNOWN}/metrics", f"/jobs/{UNKNOWN}/snapshots/1.png"])
def test_unknown_jobs_are_404(app, path):
    assert app.get(path).status_code == 404


@pytest.mark.parametrize("path", ["/jobs/..%2f..%2fetc", "/jobs/not-an-id", "/jobs/%00"])
def test_malformed_job_ids_are_rejected_before_touching_disk(app, path):
    assert app.get(path).status_code in (404, 422)


def test_cancel_and_resume_of_unknown_jobs_are_404(app):
    assert app.post(f"/jobs/{UNKNOWN}/cancel", headers=AUTH).status_code == 404
    assert app.post(f"/jobs/{UNKNOWN}/resume", headers=AUTH).status_code == 404


def test_broker_unreachable_is_503_and_leaves_no_job_behind(tmp_path):
    from tests.service.stack import free_port
    s = Stack(tmp_path, f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    try:
        c = client(s.start_app())
        r = c.post("/train", json=TINY_JOB, headers=AUTH)
        assert r.status_code == 503 and "queue is not reachable" in r.json()["detail"]
        assert r.headers["retry-after"]
        assert c.get("/jobs").json()["jobs"] == []
    finally:
        s.stop()


def test_no_token_configured_means_state_changes_are_503(tmp_path, redis):
    s = Stack(tmp_path, redis.url, API_TOKEN="")
    try:
        c = client(s.start_app())
        r = c.post("/train", json=TINY_JOB, headers=AUTH)
        assert r.status_code == 503 and "API_TOKEN" in r.json()["detail"]
    finally:
        s.stop()
