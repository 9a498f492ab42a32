"""Service settings, read once from the environment (and an optional .env file)."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    # Broker and result backend. Empty: the embedded mode (Celery's filesystem transport and a
    # SQLite result store under RUNS_DIR/_broker), which needs no server at all.
    redis_url: str = ""
    # Job records, checkpoints, snapshots and metrics; a shared volume when scaled out.
    runs_dir: Path = Path("runs")
    # The only folder training data may be read from (data_dir in POST /train is relative to it).
    data_root: Path = Path("data")
    # Bearer token for the endpoints that change state. Empty: those endpoints answer 503.
    api_token: str = ""
    # Where generators run in the app and training runs in the worker.
    device: Literal["auto", "cuda", "cpu"] = "auto"
    # Origins allowed to call the API from a browser (comma separated); none by default.
    cors_origins: str = ""

    # -- limits -------------------------------------------------------------------------
    max_n: int = Field(256, ge=1, le=4096)  # images per /generate grid
    max_best_of: int = Field(1024, ge=1, le=65536)  # candidates per /generate?best_of
    max_interpolate_steps: int = Field(32, ge=2, le=256)
    max_batch_size: int = Field(1024, ge=2, le=4096)  # POST /train batch_size cap
    max_width: int = Field(128, ge=4, le=256)  # POST /train ngf / ndf cap
    max_synthetic_images: int = Field(60_000, ge=16)
    max_active_jobs: int = Field(20, ge=1)  # queued + running jobs before POST /train says 429
    max_body_bytes: int = Field(1_000_000, ge=1024)  # request bodies over this get 413
    generate_concurrency: int = Field(2, ge=1)  # generations computed at once per app process
    generate_queue: int = Field(16, ge=0)  # generations allowed to wait; beyond: 503 + Retry-After
    response_cache_bytes: int = Field(64 * 2**20, ge=0)  # rendered images kept per app process
    max_attempts: int = Field(3, ge=1)  # worker deaths a job survives before it is failed
    visibility_timeout: int = Field(3600, ge=1)  # Redis: seconds before an unacked job is redelivered
    model_check_seconds: float = Field(1.0, ge=0)  # how stale "the newest checkpoint" may be

    @property
    def embedded(self) -> bool:
        return not self.redis_url

    @property
    def broker_dir(self) -> Path:
        return self.runs_dir / "_broker"

    @property
    def cache_dir(self) -> Path:
        return self.runs_dir / "_cache"

    @property
    def synthetic_dir(self) -> Path:
        return self.runs_dir / "_synthetic"


@lru_cache
def get_settings() -> Settings:
    return Settings()
