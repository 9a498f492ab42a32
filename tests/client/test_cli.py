"""The command-line client in-process: parsing, formatting, error lines, the /faces.zip
fallback, against httpx's MockTransport (no server)."""
from __future__ import annotations

import argparse
import io
import json
import zipfile
from functools import partial

import httpx
import pytest

from client import cli
from client.api import Api, ApiError, describe


def test_seeds_parse_ranges_and_lists_in_order_once():
    assert cli.parse_seeds("0-3") == [0, 1, 2, 3]
    assert cli.parse_seeds("7, 1-2,7,3") == [7, 1, 2, 3]
    for bad in ("3-1", "x", "-1", "1-", "4294967296"):
        with pytest.raises(argparse.ArgumentTypeError):
            cli.parse_seeds(bad)


def test_seed_specs_are_compact_and_batched_within_the_servers_bounds():
    assert cli.seeds_spec([0, 1, 2, 3, 10, 12, 13]) == "0-3,10,12-13"
    assert cli.seed_batches(list(range(2500))) == ["0-999", "1000-1999", "2000-2499"]
    scattered = list(range(0, 2000, 2))  # 1000 seeds that no range can shorten
    batches = cli.seed_batches(scattered)
    assert all(len(b) <= 1000 for b in batches) and sum(b.count(",") + 1 for b in batches) == 1000


def test_train_body_takes_the_source_named_flags_and_any_field():
    args = cli.build_parser().parse_args(["train", "--synthetic", "--synthetic-images", "64", "--epochs", "3",
                                          "--snapshot-epochs", "1,3", "--set", "lr=0.0001", "--set",
                                          "diffaugment=color", "--set", "g-every=1", "--set", "epochs=9"])
    assert cli.train_body(args) == {"dataset": "synthetic", "synthetic_images": 64, "epochs": 3,
                                    "snapshot_epochs": [1, 3], "lr": 0.0001, "diffaugment": "color",
                                    "g_every": 1}
    folder = cli.build_parser().parse_args(["train", "--data", "anime-faces", "--preset", "fast"])
    assert cli.train_body(folder) == {"data_dir": "anime-faces", "preset": "fast"}


def test_train_needs_exactly_one_source(capsys):
    for argv in (["train"], ["train", "--synthetic", "--data", "x"]):
        with pytest.raises(SystemExit) as exc:
            cli.main(argv)
        assert exc.value.code == 2
    assert "--data" in capsys.readouterr().err


def test_describe_makes_one_line_of_any_error_answer():
    r = httpx.Response(422, json={"detail": [{"loc": ["body", "epochs"], "msg": "Input should be >= 1"},
                                             {"loc": ["query", "n"], "msg": "too\nmany"}]})
    assert describe(r) == "422: epochs: Input should be >= 1; n: too many"
    busy = httpx.Response(503, json={"detail": "busy rendering"}, headers={"Retry-After": "2"})
    assert describe(busy) == "503: busy rendering (retry after 2 s)"
    assert describe(httpx.Response(502, text="<html>\nBad gateway\n</html>")) == "502: <html> Bad gateway </html>"


JOB = {"job_id": "20260101-000000-abcdef", "state": "running", "phase": "train", "epoch": 3, "epochs": 20,
       "step": 120, "loss_d": 0.5, "loss_g": 2.25, "d_x": 0.7, "d_g_z": 0.2, "swd": None,
       "images_per_sec": 812.4, "eta_seconds": 300, "error": None, "warning": None, "config": {},
       "data": {"data_dir": "anime-faces"}, "dataset": None, "snapshots": [1], "checkpoint": "epoch-0003.pt",
       "attempts": 1, "crashes": 0, "worker": None, "created_at": 1.7e9, "updated_at": 1.7e9,
       "started_at": 1.7e9, "finished_at": None}
DAMAGED = {"job_id": "20260101-000000-dead00", "state": "damaged", "error": "invalid job.json", "updated_at": 0}


def test_jobs_table_aligns_columns_and_shows_a_damaged_job():
    lines = cli.jobs_table([JOB, DAMAGED]).splitlines()
    assert lines[0].split() == ["JOB", "STATE", "EPOCH", "LOSS_D", "LOSS_G", "IMG/S", "ETA", "DATA", "CREATED"]
    assert lines[1].split()[:8] == [JOB["job_id"], "running", "3/20", "0.500", "2.250", "812", "5min",
                                    "anime-faces"]
    assert lines[0].index("STATE") == lines[1].index("running") == lines[2].index("damaged")
    assert "invalid job.json" in lines[2]


def test_status_text_shows_what_matters():
    text = cli.status_text(JOB)
    assert "state         running: training" in text and "epoch         3/20 (step 120)" in text
    assert "812 img/s, ETA 5min" in text and "D(x)/D(G(z))  0.70 / 0.20" in text
    assert "state         queued (waiting for a worker)" in cli.status_text({**JOB, "state": "queued"})
    decoding = cli.status_text({**JOB, "phase": "data"})
    assert "state         running: decoding images" in decoding


SKIPPED = [[f"junk/{i:02d}.txt" if i % 2 else f"tiny/{i:02d}.png", "not an image" if i % 2 else "too small"]
           for i in range(20)]
DATASET = {"images": 300, "files_found": 325, "skipped": 25, "skipped_by_reason": {"not an image": 13,
           "too small": 12}, "skipped_examples": SKIPPED}


def test_the_data_report_names_the_first_20_skipped_files_and_counts_the_rest():
    lines = cli.data_report(DATASET)
    assert lines[0] == "data: 300 images used of 325 files, 25 skipped"
    assert lines[1:3] == ["  skipped tiny/00.png: too small", "  skipped junk/01.txt: not an image"]
    assert len(lines) == 1 + 20 + 1 and lines[-1] == "  ... and 5 more skipped"
    text = cli.status_text({**JOB, "dataset": DATASET})
    assert "images        300 images used of 325 files, 25 skipped" in text and "skipped junk/19.txt" in text


def test_wait_says_queued_then_decoding_then_the_servers_speed_and_reports_the_data_once(capsys):
    states = iter([{**JOB, "state": "queued", "epoch": 0, "images_per_sec": None, "loss_d": None},
                   {**JOB, "phase": "data", "epoch": 0, "images_per_sec": None},
                   {**JOB, "epoch": 0, "dataset": DATASET, "images_per_sec": None, "eta_seconds": None,
                    "loss_d": None},
                   {**JOB, "dataset": DATASET}, {**JOB, "dataset": DATASET},
                   {**JOB, "state": "succeeded", "epoch": 20, "dataset": DATASET}])
    with Api("http://x", transport=httpx.MockTransport(lambda r: httpx.Response(200, json=next(states)))) as api:
        assert cli.wait_for_job(api, JOB["job_id"], poll=0, sleep=lambda s: None) == 0
    err = capsys.readouterr().err
    for shown in ("queued (waiting for a worker)", "decoding images", "training: measuring speed",
                  "training: D 0.50 G 2.25, 812 img/s, ETA 5min"):
        assert shown in err
    assert err.count("data: 300 images used of 325 files, 25 skipped") == 1
    assert "skipped junk/19.txt: not an image" in err and "... and 5 more skipped" in err
    assert "s/epoch" not in err and "epoch/s" not in err  # tqdm's rate would count the queue's time


def test_train_says_the_epochs_and_steps_it_will_run(monkeypatch, capsys):
    monkeypatch.setenv("DCGAN_TOKEN", "t")
    answer = {"job_id": JOB["job_id"], "status_url": "/jobs/x", "epochs": 24, "images": 1024, "batch_size": 64,
              "steps_per_epoch": 16, "steps": 384, "exact": True}
    mock_api(monkeypatch, lambda r: httpx.Response(202, json=answer))
    assert cli.main(["train", "--synthetic"]) == 0
    out, err = capsys.readouterr()
    assert out == JOB["job_id"] + "\n"
    assert err.strip() == "will train 24 epochs of 16 steps (1024 images, batch 64): 384 steps"
    assert cli.status_text(DAMAGED).splitlines() == ["job    20260101-000000-dead00", "state  damaged",
                                                     "error  invalid job.json"]


def mock_api(monkeypatch, handler) -> list[httpx.Request]:
    """cli.main's Api talks to `handler` instead of the network; returns the requests seen."""
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)
    monkeypatch.setattr(cli, "Api", partial(Api, transport=httpx.MockTransport(record)))
    return seen


def test_generate_falls_back_to_one_request_per_seed_without_faces_zip(monkeypatch, tmp_path, capsys):
    def handler(request):
        if request.url.path == "/faces.zip":
            return httpx.Response(404, json={"detail": "Not Found"})
        seed = request.url.params["seed"]
        return httpx.Response(200, content=f"png{seed}".encode(), headers={"X-Checkpoint": "j/epoch-0002.pt"})
    seen = mock_api(monkeypatch, handler)
    assert cli.main(["generate", "--seeds", "4-5", "--outdir", str(tmp_path), "--truncation", "0.7"]) == 0
    assert (tmp_path / "seed0004.png").read_bytes() == b"png4"
    assert [dict(r.url.params) for r in seen[1:]] == [{"seed": "4", "n": "1", "truncation": "0.7"},
                                                       {"seed": "5", "n": "1", "truncation": "0.7"}]
    assert capsys.readouterr().out.strip() == f"wrote 2 faces to {tmp_path} from j/epoch-0002.pt"


def test_generate_unpacks_faces_zip_flat(monkeypatch, tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("seed0001.png", b"one")
        zf.writestr("../evil/seed0002.png", b"two")  # a member path never leaves --outdir
    mock_api(monkeypatch, lambda r: httpx.Response(200, content=buf.getvalue(),
                                                   headers={"X-Checkpoint": "j/epoch-0001.pt"}))
    assert cli.main(["generate", "--seeds", "1-2", "--outdir", str(tmp_path / "out")]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["seed0001.png", "seed0002.png"]
    assert not (tmp_path / "evil").exists()


def test_an_unknown_job_in_generate_is_an_error_not_a_fallback(monkeypatch, tmp_path, capsys):
    mock_api(monkeypatch, lambda r: httpx.Response(404, json={"detail": "no job 20990101-000000-abcdef"}))
    assert cli.main(["generate", "--seeds", "1", "--outdir", str(tmp_path), "--job", "20990101-000000-abcdef"]) == 1
    assert capsys.readouterr().err == "error: 404: no job 20990101-000000-abcdef\n"


@pytest.mark.parametrize("argv", [["status", "nope"], ["cancel", "../x"], ["export", "nope", "--format", "onnx",
                                  "--out", "g.onnx"], ["generate", "--seeds", "1", "--outdir", "o", "--job", "nope"]])
def test_a_malformed_job_id_is_refused_plainly_before_any_request(monkeypatch, capsys, argv):
    seen = mock_api(monkeypatch, lambda r: httpx.Response(422, json={"detail": [{"msg": "String should match"}]}))
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and seen == []
    assert "is not a job id: ids look like 20260101-120000-0a1b2c (`dcgan-faces jobs` lists them)" in err
    assert "match" not in err and "\\d" not in err


def test_export_offers_every_format_model_export_writes(monkeypatch, tmp_path):
    from model.export import FORMATS
    assert set(cli.EXPORT_FORMATS) == set(FORMATS)
    seen = mock_api(monkeypatch, lambda r: httpx.Response(200, content=b"torchscript bytes"))
    monkeypatch.setenv("DCGAN_TOKEN", "t")
    out = tmp_path / "g.pt"
    assert cli.main(["export", "20260101-000000-abcdef", "--format", "torchscript", "--out", str(out)]) == 0
    assert seen[0].url.params["format"] == "torchscript" and out.read_bytes() == b"torchscript bytes"


def test_state_changing_commands_need_a_token_before_any_request(monkeypatch, capsys):
    monkeypatch.delenv("DCGAN_TOKEN", raising=False)
    seen = mock_api(monkeypatch, lambda r: httpx.Response(500))
    assert cli.main(["cancel", "20260101-000000-abcdef"]) == 1
    assert seen == [] and "needs the API token" in capsys.readouterr().err


def test_token_and_url_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("DCGAN_URL", "http://gpu-box:8000/")
    monkeypatch.setenv("DCGAN_TOKEN", "s3cret")
    seen = mock_api(monkeypatch, lambda r: httpx.Response(200, json={"jobs": []}))
    assert cli.main(["jobs"]) == 0
    assert str(seen[0].url) == "http://gpu-box:8000/jobs"
    assert seen[0].headers["Authorization"] == "Bearer s3cret"


def test_wait_ends_non_zero_with_the_error_when_the_job_fails(monkeypatch, capsys):
    states = iter([{**JOB, "state": "queued", "epoch": 0}, {**JOB, "phase": "data", "epoch": 0}, JOB,
                   {**JOB, "state": "failed", "error": "CUDA out of memory"}])
    with Api("http://x", transport=httpx.MockTransport(lambda r: httpx.Response(200, json=next(states)))) as api:
        assert cli.wait_for_job(api, JOB["job_id"], poll=0, sleep=lambda s: None) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == \
        f"error: job {JOB['job_id']} failed: CUDA out of memory"


def test_connection_refused_names_the_url():
    def refuse(request):
        raise httpx.ConnectError("refused", request=request)
    with Api("http://127.0.0.1:9", transport=httpx.MockTransport(refuse)) as api, pytest.raises(ApiError) as exc:
        api.jobs()
    assert str(exc.value) == "cannot connect to http://127.0.0.1:9: is the service running? (set --url or DCGAN_URL)"


def test_a_failed_download_leaves_no_file(tmp_path):
    answer = httpx.Response(409, json={"detail": "cannot export"})
    with Api("http://x", "t", transport=httpx.MockTransport(lambda r: answer)) as api, pytest.raises(ApiError):
        api.export("j", "onnx", tmp_path / "g.onnx")
    assert list(tmp_path.iterdir()) == []


def test_jobs_json_is_the_servers_list(monkeypatch, capsys):
    mock_api(monkeypatch, lambda r: httpx.Response(200, json={"jobs": [JOB]}))
    assert cli.main(["jobs", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [JOB]


def test_directions_prints_a_table_and_generate_edit_asks_generate_per_seed(monkeypatch, tmp_path, capsys):
    answer = {"job_id": "j", "checkpoint": "epoch-0002.pt", "max_amount": 10.0,
              "directions": [{"index": 0, "variance": 0.125, "scale": 1.01},
                             {"index": 1, "variance": 0.05, "scale": 0.99}]}

    def handler(request):
        if request.url.path == "/directions":
            return httpx.Response(200, json=answer)
        return httpx.Response(200, content=b"png" + request.url.params["seed"].encode(),
                              headers={"X-Checkpoint": "j/epoch-0002.pt"})
    seen = mock_api(monkeypatch, handler)
    assert cli.main(["directions"]) == 0
    assert capsys.readouterr().out.splitlines()[2:] == ["  0    12.50%   1.010", "  1     5.00%   0.990"]
    assert cli.main(["generate", "--seeds", "4-5", "--outdir", str(tmp_path), "--edit", "0:1.5, 3:-2"]) == 0
    assert [r.url.path for r in seen[1:]] == ["/generate", "/generate"]  # edited faces are not in /faces.zip
    assert dict(seen[1].url.params) == {"seed": "4", "n": "1", "edit": "0:1.5,3:-2"}


@pytest.mark.parametrize("edit", ["0", "0:1e3", "x:1", "0:1,", "100:1"])
def test_a_malformed_edit_is_refused_before_any_request(monkeypatch, capsys, tmp_path, edit):
    seen = mock_api(monkeypatch, lambda r: httpx.Response(200))
    with pytest.raises(SystemExit):
        cli.main(["generate", "--seeds", "1", "--outdir", str(tmp_path), "--edit", edit])
    assert "is not DIRECTION:AMOUNT" in capsys.readouterr().err and seen == []


NEAREST = {"job_id": "20260101-000000-abcdef", "checkpoint": "epoch-0005.pt", "seed": 7, "i": 2, "images": 300,
           "reference": 200.0, "metric": "block means",
           "neighbours": [{"index": 17, "distance": 50.0, "url": "/jobs/20260101-000000-abcdef/training-images/17.png"},
                          {"index": 3, "distance": 310.5, "url": "/jobs/20260101-000000-abcdef/training-images/3.png"}]}


def test_nearest_prints_each_neighbour_beside_the_reference(monkeypatch, capsys):
    seen = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        return httpx.Response(200, json=NEAREST)
    monkeypatch.setattr(cli, "Api", partial(Api, transport=httpx.MockTransport(answer)))
    assert cli.main(["nearest", "--seed", "7", "--i", "2", "--k", "2", "--job", NEAREST["job_id"],
                     "--epoch", "5"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert dict(seen[0].params) == {"seed": "7", "i": "2", "k": "2", "job": NEAREST["job_id"], "epoch": "5"}
    assert "real-to-real reference 200.0" in out[0] and "300 training images" in out[0]
    assert "#17" in out[1] and "0.25 x reference" in out[1] and out[1].endswith("/training-images/17.png")
    assert "1.55 x reference" in out[2]
    with pytest.raises(SystemExit):
        cli.main(["nearest", "--epoch", "5"])  # an epoch names a job's checkpoint


def test_checkpoints_and_status_show_the_copy_rate(monkeypatch, capsys):
    listed = [{"epoch": 1, "batch": 0, "name": "epoch-0001.pt", "swd": 12.5, "copy_rate": 0.0625,
               "copy_distance": 100.0, "pinned": False, "served": False},
              {"epoch": 2, "batch": 0, "name": "epoch-0002.pt", "swd": None, "copy_rate": None,
               "copy_distance": None, "pinned": True, "served": True}]
    monkeypatch.setattr(cli, "Api", partial(Api, transport=httpx.MockTransport(
        lambda r: httpx.Response(200, json={"job_id": JOB["job_id"], "checkpoints": listed}))))
    assert cli.main(["checkpoints", JOB["job_id"]]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["EPOCH", "CHECKPOINT", "SWD", "COPIES"]
    assert lines[1].split() == ["1", "epoch-0001.pt", "12.5000", "6.2%"]
    assert lines[2].split() == ["2", "epoch-0002.pt", "-", "-", "served,", "pinned"]
    assert "copy rate     6.2% of the snapshot's faces" in cli.status_text({**JOB, "copy_rate": 0.0625})
    assert "copy rate" not in cli.status_text({**JOB, "copy_rate": None})
    assert cli.percent("0.5") == cli.percent(7) == cli.percent(True) == "-"


def test_project_posts_the_picture_with_its_type_and_prints_the_latent(monkeypatch, tmp_path, capsys):
    lid = "0123456789abcdef01234567"

    def handler(request):
        if request.url.path == "/project":
            assert request.headers["authorization"] == "Bearer t"
            assert request.headers["content-type"] == "image/jpeg" and request.content == picture
            return httpx.Response(200, json={"latent": lid, "psnr": 23.456, "checkpoint": "j/epoch-0002.pt",
                                             "steps": 200, "seconds": 4.2})
        assert dict(request.url.params) == {"latent": lid, "n": "1"}
        return httpx.Response(200, content=b"face", headers={"X-Checkpoint": "j/epoch-0002.pt"})
    seen = mock_api(monkeypatch, handler)
    picture = b"\xff\xd8\xff\xe0" + b"jpeg" * 10
    (tmp_path / "me.jpg").write_bytes(picture)
    out = tmp_path / "face.png"
    assert cli.main(["--token", "t", "project", str(tmp_path / "me.jpg"), "--out", str(out)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"latent {lid}  psnr 23.5 dB  (j/epoch-0002.pt, 200 steps, 4.2 s)", f"wrote {out}"]
    assert out.read_bytes() == b"face" and [r.url.path for r in seen] == ["/project", "/generate"]
    assert cli.main(["--token", "t", "generate", "--latent", lid, "--outdir", str(tmp_path / "o")]) == 0
    assert (tmp_path / "o" / f"latent-{lid}.png").read_bytes() == b"face"


def test_project_refuses_a_file_that_is_no_picture_and_a_bad_latent_id(monkeypatch, tmp_path, capsys):
    seen = mock_api(monkeypatch, lambda r: httpx.Response(500))
    (tmp_path / "notes.txt").write_text("hello")
    assert cli.main(["--token", "t", "project", str(tmp_path / "notes.txt")]) == 1
    assert "not a PNG, JPEG or WebP file" in capsys.readouterr().err and seen == []
    for argv in (["generate", "--latent", "xyz", "--outdir", "o"],
                 ["generate", "--latent", "0" * 24, "--seeds", "1", "--outdir", "o"],
                 ["generate", "--latent", "0" * 24, "--truncation", "0.5", "--outdir", "o"]):
        with pytest.raises(SystemExit) as exc:
            cli.main(argv)
        assert exc.value.code == 2


def test_nearest_of_a_latent_sends_the_latent_alone(monkeypatch, capsys):
    lid = "0123456789abcdef01234567"
    answer = {**NEAREST, "latent": lid}
    del answer["seed"], answer["i"]
    seen = mock_api(monkeypatch, lambda r: httpx.Response(200, json=answer))
    assert cli.main(["nearest", "--latent", lid, "--k", "2"]) == 0
    assert dict(seen[0].url.params) == {"latent": lid, "k": "2"}
    assert capsys.readouterr().out.startswith(f"latent {lid} (")
