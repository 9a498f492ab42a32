"""The Celery application: broker, queue and delivery settings, and `Broker.enqueue`, which sends
a job's wake-up message by task name. No task code is imported here (the worker loads
`worker.tasks` through `include`), so anything can enqueue without importing the training stack.

    celery -A worker.celery_app worker --queues train --concurrency 1

A Celery app is made from a settings object passed in (`Broker(settings)`): the API sends with
the settings it was created with, and the worker with `worker_broker()`, the one place its
settings come from the environment.

Nothing reads task results (the job record on disk is the truth), so there is no result backend.
"""
from __future__ import annotations

import functools
import os

from celery import Celery

from worker import fsqueue
from worker.errors import BrokerUnavailable
from worker.settings import ServiceSettings, get_service_settings

TRAIN_QUEUE = "train"
TRAIN_TASK = "worker.tasks.train_job"


def broker_folders(settings: ServiceSettings) -> dict[str, str]:
    """Embedded mode's queue folders, all under RUNS_DIR/_broker (never the working directory)."""
    base = settings.broker_dir
    return {"data_folder_in": str(base / "queue"), "data_folder_out": str(base / "queue"),
            "processed_folder": str(base / "processed"), "control_folder": str(base / "control")}


def ensure_broker_folders(settings: ServiceSettings) -> None:
    if settings.broker_mode == "embedded":
        for folder in broker_folders(settings).values():
            os.makedirs(folder, exist_ok=True)


def broker_config(settings: ServiceSettings) -> dict:
    """Redis when REDIS_URL is set; otherwise the embedded mode: Celery's filesystem transport
    under RUNS_DIR/_broker, with no server to install (its message files read bounded: see
    worker/fsqueue.py)."""
    if settings.broker_mode == "redis":
        timeout = settings.broker_timeout
        return {
            "broker_url": settings.redis_url,
            "broker_transport_options": {
                "visibility_timeout": settings.visibility_timeout,
                # Unacknowledged messages of dead consumers are swept back every few seconds
                # (kombu's default is ~100 s); a live owner's lock makes the copy a no-op.
                "unacked_restore_interval": min(10, settings.visibility_timeout),
                "unacked_restore_throttle": 1,
                # A Redis that accepts connections but never answers (paused, half-open) must
                # fail a send within seconds instead of hanging its caller for good.
                "socket_timeout": max(timeout, 2.0),
                "socket_connect_timeout": timeout,
            },
            "broker_connection_timeout": timeout,
        }
    return {"broker_url": f"{fsqueue.SCHEME}://",
            "broker_transport_options": {**broker_folders(settings), "store_processed": False}}


def make_celery(settings: ServiceSettings) -> Celery:
    app = Celery("dcgan_faces", include=["worker.tasks"])
    app.conf.update(
        **broker_config(settings),
        task_default_queue=TRAIN_QUEUE,
        task_routes={TRAIN_TASK: {"queue": TRAIN_QUEUE}},
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        # A job is acknowledged only when its task returns, and goes back to the queue if the
        # process running it dies; the job's owner lock keeps redeliveries from running it twice.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_max_tasks_per_child=1,  # a fresh process (and CUDA context) per training job
        broker_connection_retry_on_startup=True,
        worker_cancel_long_running_tasks_on_connection_loss=False,
        worker_hijack_root_logger=False,
    )
    return app


QUEUE_MARKER = "dcgan-faces:queue-marker"


class Broker:
    """The Celery app of one settings object, and the two things sent through it."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self.celery = make_celery(settings)

    def enqueue(self, job_id: str) -> None:
        """Send the wake-up message for a job, by task name. Blocking, but bounded: it gives up
        within a few seconds when the broker is away or silent, raising BrokerUnavailable."""
        try:
            ensure_broker_folders(self.settings)
            self.celery.send_task(TRAIN_TASK, args=[job_id], queue=TRAIN_QUEUE, retry=True,
                                  retry_policy={"max_retries": 1, "interval_start": 0.2,
                                                "interval_step": 0.2, "interval_max": 0.5})
        except Exception as exc:  # kombu OperationalError, redis ConnectionError/TimeoutError, OSError...
            raise BrokerUnavailable(f"the job queue is not reachable ({type(exc).__name__})") from exc

    def forgot_messages(self) -> bool:
        """Whether the broker has lost what it held since this was last asked (a Redis restarted
        without persistence, or flushed): the marker key left by the previous call is gone. The
        first caller after such a loss gets True (SET NX is atomic), so one watchdog re-sends the
        queued jobs' messages. Embedded mode keeps its queue on disk and never forgets."""
        if self.settings.broker_mode != "redis":
            return False
        try:
            with self.celery.connection_for_write() as conn:
                return bool(conn.default_channel.client.set(QUEUE_MARKER, "1", nx=True))
        except Exception as exc:
            raise BrokerUnavailable(f"the job queue is not reachable ({type(exc).__name__})") from exc


@functools.lru_cache(maxsize=1)
def worker_broker() -> Broker:
    """The worker process's broker, from the environment's settings."""
    return Broker(get_service_settings())


def __getattr__(name: str) -> Celery:
    # `celery -A worker.celery_app` looks for `app` (or `celery`) here: made on that first look,
    # so that importing this module (the API does, to send) never reads the environment.
    if name in ("app", "celery"):
        return worker_broker().celery
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
