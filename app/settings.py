"""The app's settings: everything the worker shares (worker/settings.py) plus the API's own
limits, read once from the environment (and an optional .env file)."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field

from worker.settings import ServiceSettings


class Settings(ServiceSettings):
    # Bearer token for the endpoints that change state. Empty: those endpoints answer 503.
    api_token: str = ""
    # Origins allowed to call the API from a browser (comma separated); none by default.
    cors_origins: str = ""

    # -- limits -------------------------------------------------------------------------
    max_n: int = Field(256, ge=1, le=4096)  # images per /generate grid
    max_best_of: int = Field(1024, ge=1, le=65536)  # candidates per /generate?best_of
    max_interpolate_steps: int = Field(32, ge=2, le=256)
    max_zip_faces: int = Field(1000, ge=1, le=65535)  # faces per GET /faces.zip (65535: a plain zip's most)
    max_batch_size: int = Field(1024, ge=2, le=4096)  # POST /train batch_size cap
    max_width: int = Field(128, ge=4, le=256)  # POST /train ngf / ndf cap
    max_synthetic_images: int = Field(60_000, ge=16)
    max_active_jobs: int = Field(20, ge=1)  # queued + running jobs before POST /train says 429
    max_body_bytes: int = Field(1_000_000, ge=1024)  # request bodies over this get 413
    body_timeout: float = Field(10.0, gt=0)  # seconds a request body may take to arrive (then 408)
    generate_concurrency: int = Field(2, ge=1)  # generations computed at once per app process
    generate_queue: int = Field(16, ge=0)  # generations allowed to wait; beyond: 503 + Retry-After
    # What runs G for /generate and friends: auto (onnxruntime on a CPU, torch on a GPU), torch, onnxruntime
    render_backend: Literal["auto", "torch", "onnxruntime"] = "auto"
    # Renders of one model arriving within this many ms share G's forward pass (0: each its own)
    render_batch_window_ms: float = Field(4.0, ge=0, le=1000)
    render_batch_rows: int = Field(64, ge=1, le=4096)  # noise rows per shared forward pass at most
    max_zip_streams: int = Field(4, ge=1)  # /faces.zip answers streaming at once per app process
    response_cache_bytes: int = Field(64 * 2**20, ge=0)  # rendered images kept per app process
    # POST /project: Adam steps and wall-time seconds per projection (whichever ends it first),
    # seeded starts optimised together, projections computed at once and allowed to wait
    # (beyond: 503 + Retry-After), and projected latents kept (the oldest are pruned)
    project_steps: int = Field(200, ge=1, le=5000)
    project_seconds: float = Field(30.0, gt=0, le=600)
    project_starts: int = Field(8, ge=1, le=64)
    project_concurrency: int = Field(1, ge=1, le=16)
    project_queue: int = Field(1, ge=0, le=64)
    max_latents: int = Field(10_000, ge=1)
    model_check_seconds: float = Field(1.0, ge=0)  # how stale "the newest checkpoint" may be
    max_metric_points: int = Field(2000, ge=10, le=100_000)  # points per series in /jobs/{id}/metrics

    @property
    def latents_dir(self) -> Path:
        return self.runs_dir / "_latents"


@lru_cache
def get_settings() -> Settings:
    return Settings()
