"""The `dcgan-faces` console script against a live stack (Redis, a Celery worker, uvicorn),
run as a user runs it: a subprocess with DCGAN_URL / DCGAN_TOKEN in its environment."""
from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.service.stack import AUTH, TINY_JOB, TOKEN, client, free_port, wait_for, wait_job

pytestmark = pytest.mark.slow

SCRIPT = Path(sys.executable).parent / "dcgan-faces"
# TINY_JOB as command-line flags.
TINY_FLAGS = ["--synthetic", "--synthetic-images", str(TINY_JOB["synthetic_images"]),
              "--ngf", str(TINY_JOB["ngf"]), "--ndf", str(TINY_JOB["ndf"]),
              "--batch-size", str(TINY_JOB["batch_size"]), "--set", f"swd_images={TINY_JOB['swd_images']}",
              "--set", f"log_every={TINY_JOB['log_every']}"]


def command() -> list[str]:
    if not SCRIPT.exists():
        pytest.fail(f"{SCRIPT} is missing: run `pip install -e '.[dev]'` (make install does)")
    return [str(SCRIPT)]


def env_for(url: str, token: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DCGAN_URL", "DCGAN_TOKEN")}
    env["DCGAN_URL"] = url
    if token is not None:
        env["DCGAN_TOKEN"] = token
    return env


def run(url: str, *args: str, token: str | None = TOKEN, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(command() + list(args), env=env_for(url, token), capture_output=True, text=True,
                          timeout=timeout)


def one_line_error(result: subprocess.CompletedProcess) -> str:
    """The failure as the user sees it: a non-zero exit and one `error: ...` line on stderr."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def url(stack) -> str:
    return stack.apps[0][1]


@pytest.fixture(scope="module")
def done_job(url) -> str:
    """A job trained to the end through `dcgan-faces train --wait`."""
    result = run(url, "train", *TINY_FLAGS, "--epochs", "2", "--snapshot-epochs", "1,2", "--wait", "--poll", "0.2",
                 timeout=240)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_train_wait_prints_the_job_id_shows_a_bar_and_exits_0_on_success(url, done_job):
    job = client(url).get(f"/jobs/{done_job}").json()
    assert job["state"] == "succeeded" and job["epoch"] == 2
    assert job["config"]["ngf"] == TINY_JOB["ngf"] and job["config"]["log_every"] == 1  # flags and --set
    assert job["data"]["synthetic_images"] == TINY_JOB["synthetic_images"]


def test_train_wait_bar_and_summary_go_to_stderr(url):
    result = run(url, "train", *TINY_FLAGS, "--epochs", "1", "--snapshot-epochs", "1", "--wait", "--poll", "0.2",
                 timeout=240)
    assert result.returncode == 0, result.stderr
    job_id = result.stdout.strip()
    assert "1/1" in result.stderr and "epoch" in result.stderr  # the tqdm bar
    assert result.stderr.strip().splitlines()[-1] == f"job {job_id} succeeded: epoch 1/1, epoch-0001.pt"


def test_jobs_lists_a_table_and_json(url, done_job):
    table = run(url, "jobs")
    assert table.returncode == 0
    header, *rows = table.stdout.splitlines()
    assert header.split()[:3] == ["JOB", "STATE", "EPOCH"]
    row = next(r for r in rows if r.startswith(done_job))
    assert row.split()[1:3] == ["succeeded", "2/2"]
    listed = json.loads(run(url, "jobs", "--json").stdout)
    assert done_job in [j["job_id"] for j in listed]


def test_status_shows_key_fields_or_the_json(url, done_job):
    text = run(url, "status", done_job)
    assert text.returncode == 0
    fields = {line.split()[0]: line.split(None, 1)[1] for line in text.stdout.splitlines()}
    assert fields["state"] == "succeeded" and fields["epoch"].startswith("2/2")
    assert fields["checkpoint"] == "epoch-0002.pt" and fields["snapshots"] == "1, 2"
    as_json = json.loads(run(url, "status", done_job, "--json").stdout)
    assert as_json == client(url).get(f"/jobs/{done_job}", headers=AUTH).json()


def test_pin_an_epoch_then_unpin(url, done_job):
    pinned = run(url, "pin", done_job, "--epoch", "1")
    assert pinned.returncode == 0, pinned.stderr
    assert pinned.stdout.strip() == f"serving {done_job}/epoch-0001.pt (epoch 1, pinned)"
    served = client(url).get("/models/default").json()
    assert (served["job_id"], served["epoch"], served["pinned"]) == (done_job, 1, True)
    assert run(url, "model").stdout.strip() == pinned.stdout.strip()
    unpinned = run(url, "unpin")
    assert unpinned.returncode == 0 and unpinned.stdout.startswith("unpinned; serving ")
    assert client(url).get("/models/default").json()["pinned"] is False


def test_generate_writes_one_png_per_seed_as_generate_renders_it(url, done_job, tmp_path):
    out = tmp_path / "faces"
    result = run(url, "generate", "--seeds", "0-3,10", "--outdir", str(out), "--job", done_job, "--epoch", "2")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"wrote 5 faces to {out} from {done_job}/epoch-0002.pt"
    assert sorted(p.name for p in out.iterdir()) == [f"seed{s:04d}.png" for s in (0, 1, 2, 3, 10)]
    c = client(url)
    for seed in (0, 10):
        same = c.get("/generate", params={"seed": seed, "n": 1, "job": done_job, "epoch": 2}).content
        assert (out / f"seed{seed:04d}.png").read_bytes() == same


def test_export_downloads_the_generator(url, done_job, tmp_path):
    out = tmp_path / "g.safetensors"
    result = run(url, "export", done_job, "--format", "safetensors", "--out", str(out))
    assert result.returncode == 0, result.stderr
    data = out.read_bytes()
    header_len = struct.unpack("<Q", data[:8])[0]  # safetensors: u64 header length, then JSON
    assert json.loads(data[8:8 + header_len])["__metadata__"]["job_id"] == done_job
    assert result.stdout.strip() == f"wrote {out} ({len(data)} bytes)"
    missing = one_line_error(run(url, "export", done_job, "--format", "safetensors", "--epoch", "7",
                                 "--out", str(tmp_path / "none.safetensors")))
    assert missing == f"error: 404: job {done_job} has no checkpoint for epoch 7; its epochs: 1-2"
    assert not (tmp_path / "none.safetensors").exists()


def test_cancel_resume_and_delete_a_job(url):
    started = run(url, "train", *TINY_FLAGS, "--epochs", "500", "--snapshot-epochs", "500")
    assert started.returncode == 0, started.stderr
    job_id = started.stdout.strip()
    c = client(url)
    busy = one_line_error(run(url, "delete", job_id))
    assert busy.startswith("error: 409: ") and "cancel it before deleting it" in busy
    assert run(url, "cancel", job_id).returncode == 0
    wait_job(c, job_id, {"cancelled"})
    resumed = run(url, "resume", job_id, "--epochs", "600")
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.strip().endswith("to 600")
    assert c.get(f"/jobs/{job_id}").json()["epochs"] == 600
    assert run(url, "cancel", job_id).returncode == 0
    wait_job(c, job_id, {"cancelled"})
    # The worker lets go of a job a moment after it reads `cancelled` (409 "being trained" till then).
    deleted = wait_for(lambda: (r := run(url, "delete", job_id)).returncode == 0 and r, 30, "the delete")
    assert deleted.stdout.strip() == f"deleted job {job_id}"
    assert c.get(f"/jobs/{job_id}").status_code == 404


def test_resume_of_a_succeeded_job_is_one_line_409(url, done_job):
    line = one_line_error(run(url, "resume", done_job))
    assert line == (f"error: 409: job {done_job} is succeeded; only cancelled or failed jobs resume "
                    "(a succeeded one when given more epochs)")


def test_errors_are_one_line_and_a_non_zero_exit(url, done_job):
    assert one_line_error(run(url, "cancel", done_job, token="wrong")).startswith(
        "error: 401: missing or wrong bearer token")
    assert one_line_error(run(url, "status", "20200101-000000-000000")) == \
        "error: 404: no job 20200101-000000-000000"
    assert "needs the API token" in one_line_error(run(url, "delete", done_job, token=None))
    bad = one_line_error(run(url, "train", "--synthetic", "--epochs", "2", "--set", "lr=-1"))
    assert bad.startswith("error: 422: lr: ")
    down = f"http://127.0.0.1:{free_port()}"
    assert one_line_error(run(down, "jobs")) == \
        f"error: cannot connect to {down}: is the service running? (set --url or DCGAN_URL)"
    usage = run(url, "generate", "--seeds", "9-3", "--outdir", "x")
    assert usage.returncode == 2 and "seeds are 0..4294967295, ranges go low-high" in usage.stderr


def test_flags_override_the_environment_and_python_m_client_works(url, done_job):
    result = subprocess.run([sys.executable, "-m", "client", "--url", url, "--token", TOKEN, "unpin"],
                            env=env_for("http://127.0.0.1:9", "wrong"), capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr  # DELETE /models/default took the token of --token
    assert result.stdout.startswith("unpinned; serving ")


def _sigint_as_in_a_terminal() -> None:
    # A suite started in the background (`make test &`, nohup) passes SIGINT on as *ignored*, and
    # Python then never raises KeyboardInterrupt; a person's Ctrl-C reaches a default handler.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_while_waiting_stops_waiting_not_the_job(url):
    proc = subprocess.Popen(command() + ["train", *TINY_FLAGS, "--epochs", "500", "--snapshot-epochs", "500",
                                            "--wait", "--poll", "0.2"],
                            env=env_for(url, TOKEN), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_sigint_as_in_a_terminal)
    job_id = proc.stdout.readline().strip()
    c = client(url)
    try:
        wait_job(c, job_id, {"running"})
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 130
        assert err.strip().splitlines()[-1] == (
            f"stopped waiting; job {job_id} goes on. Follow it with `dcgan-faces status {job_id}`, "
            f"stop it with `dcgan-faces cancel {job_id}`")
        time.sleep(1)
        assert c.get(f"/jobs/{job_id}").json()["state"] == "running"
    finally:
        proc.kill()
        c.post(f"/jobs/{job_id}/cancel", headers=AUTH)
        wait_for(lambda: c.get(f"/jobs/{job_id}").json()["state"] == "cancelled", 60, "the job to stop")


def test_directions_lists_them_and_generate_edit_moves_the_faces(url, done_job, tmp_path):
    result = run(url, "directions", "--job", done_job)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith(f"{done_job}/epoch-0002.pt: 16 directions") and len(lines) == 2 + 16
    out = tmp_path / "faces"
    result = run(url, "generate", "--seeds", "3,4", "--outdir", str(out), "--job", done_job, "--edit", "0:5,2:-3")
    assert result.returncode == 0, result.stderr
    c = client(url)
    for seed in (3, 4):
        same = c.get("/generate", params={"seed": seed, "n": 1, "job": done_job, "edit": "0:5,2:-3"}).content
        plain = c.get("/generate", params={"seed": seed, "n": 1, "job": done_job}).content
        assert (out / f"seed{seed:04d}.png").read_bytes() == same != plain
    bad = run(url, "generate", "--seeds", "3", "--outdir", str(out), "--edit", "40:1")
    assert "direction 40 does not exist" in one_line_error(bad)
