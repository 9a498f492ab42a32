"""Settings every process of the service reads (worker and app alike), once, from the environment.

The app's own limits extend these in app/settings.py; nothing here knows about HTTP.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    # Broker. Empty: the embedded mode (Celery's filesystem transport under RUNS_DIR/_broker),
    # which needs no server at all.
    redis_url: str = ""
    # Job records, checkpoints, snapshots and metrics; a shared volume when scaled out.
    runs_dir: Path = Path("runs")
    # The only folder training data may be read from (a job's data_dir is relative to it).
    data_root: Path = Path("data")
    # Where generators run in the app and training runs in the worker.
    device: Literal["auto", "cuda", "cpu"] = "auto"
    max_attempts: int = Field(3, ge=1)  # worker deaths a job survives before it is failed
    visibility_timeout: int = Field(3600, ge=1)  # Redis: seconds before an unacked job is redelivered
    # Seconds any one broker call may take (connect, send) before it counts as unreachable: a
    # broker that accepts connections but never answers must not hang whoever called it.
    broker_timeout: float = Field(3.0, gt=0, le=60)

    @property
    def broker_mode(self) -> Literal["embedded", "redis"]:
        return "redis" if self.redis_url else "embedded"

    @property
    def broker_dir(self) -> Path:
        return self.runs_dir / "_broker"

    @property
    def cache_dir(self) -> Path:
        return self.runs_dir / "_cache"

    @property
    def synthetic_dir(self) -> Path:
        return self.runs_dir / "_synthetic"

    @property
    def heartbeat_dir(self) -> Path:
        return self.runs_dir / "_workers"


@lru_cache
def get_service_settings() -> ServiceSettings:
    return ServiceSettings()
