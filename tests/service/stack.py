"""Real processes for service tests: our own redis-server, Celery workers, uvicorn apps."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]
TOKEN = "test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# Tiny nets, tiny synthetic set: a job of a few epochs takes seconds on 2 CPU cores.
TINY_JOB: dict[str, Any] = {"dataset": "synthetic", "synthetic_images": 64, "ngf": 8, "ndf": 8,
                            "batch_size": 16, "epochs": 2, "snapshot_epochs": [1, 2],
                            "swd_images": 0, "log_every": 1}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    last_exc = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # not up yet
            last_exc = exc
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what} (last error: {last_exc})")


class Redis:
    """A private redis-server on a free port (never the shared one on 6379)."""

    def __init__(self, folder: Path, persistent: bool = False) -> None:
        if shutil.which("redis-server") is None:
            raise RuntimeError("redis-server is not installed (Debian: apt-get install redis-server)")
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.persistent = persistent
        self.proc: subprocess.Popen | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
                "--save", "", "--appendonly", "yes" if self.persistent else "no", "--protected-mode", "no"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self._ping, 10, "redis-server")

    def _ping(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


class Stack:
    """RUNS_DIR, DATA_ROOT and the processes of one service deployment."""

    def __init__(self, folder: Path, redis_url: str | None, **env: str) -> None:
        self.folder = folder
        self.runs = folder / "runs"
        self.data = folder / "data"
        self.logs = folder / "logs"
        for d in (self.runs, self.data, self.logs):
            d.mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, "RUNS_DIR": str(self.runs), "DATA_ROOT": str(self.data),
                    "API_TOKEN": TOKEN, "DEVICE": "cpu", "PYTHONUNBUFFERED": "1",
                    "DCGAN_CACHE_DIR": str(folder / "cache"), **env}
        self.env.pop("REDIS_URL", None)
        if redis_url:
            self.env["REDIS_URL"] = redis_url
        self.workers: list[subprocess.Popen] = []
        self.apps: list[tuple[subprocess.Popen, str]] = []

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 - the child process writes it
        return subprocess.Popen(args, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)

    def start_worker(self, name: str = "w1", wait: bool = True, nice: int = 0) -> subprocess.Popen:
        before = set(self.heartbeats())
        prefix = ["nice", "-n", str(nice)] if nice else []
        proc = self._spawn(f"worker-{name}", prefix + [sys.executable, "-m", "celery", "-A", "worker.celery_app",
                                                       "worker", "-n", f"{name}@%h", "--queues", "train",
                                                       "--concurrency", "1", "--loglevel", "INFO"])
        self.workers.append(proc)
        if wait:
            wait_for(lambda: set(self.heartbeats()) - before or proc.poll() is not None, 60, f"worker {name}")
            assert proc.poll() is None, self.log(f"worker-{name}")
        return proc

    def heartbeats(self) -> list[str]:
        folder = self.runs / "_workers"
        return [p.name for p in folder.iterdir()] if folder.is_dir() else []

    def start_app(self, name: str = "app1") -> str:
        port = free_port()
        proc = self._spawn(name, [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1",
                                  "--port", str(port)])
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: httpx.get(f"{url}/healthz", timeout=2).status_code == 200 or proc.poll() is not None,
                 60, f"app {name}")
        assert proc.poll() is None, self.log(name)
        self.apps.append((proc, url))
        return url

    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def stop(self) -> None:
        for proc in self.workers + [p for p, _ in self.apps]:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
        for proc in self.workers + [p for p, _ in self.apps]:
            proc.wait(10)


def client(url: str) -> httpx.Client:
    return httpx.Client(base_url=url, timeout=60)


def wait_job(c: httpx.Client, job_id: str, states: set[str], timeout: float = 120) -> dict:
    def check():
        job = c.get(f"/jobs/{job_id}").json()
        return job if job["state"] in states else None
    return wait_for(check, timeout, f"job {job_id} to reach {states}", interval=0.2)


def submit(c: httpx.Client, **overrides: Any) -> str:
    r = c.post("/train", json={**TINY_JOB, **overrides}, headers=AUTH)
    assert r.status_code == 202, r.text
    return r.json()["job_id"]
