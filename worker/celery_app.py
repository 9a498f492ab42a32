"""The Celery application: broker, queue and delivery settings. No task code is imported here
(the worker loads `worker.tasks` through `include`), so the app can enqueue by name.

    celery -A worker.celery_app worker --queues train --concurrency 1
"""
from __future__ import annotations

from celery import Celery

from app.settings import Settings, get_settings

TRAIN_QUEUE = "train"
TRAIN_TASK = "worker.tasks.train_job"


def broker_config(settings: Settings) -> dict:
    """Redis when REDIS_URL is set; otherwise the embedded mode: Celery's filesystem transport
    and a SQLite result store under RUNS_DIR/_broker, with no server to install."""
    if not settings.embedded:
        return {
            "broker_url": settings.redis_url,
            "result_backend": settings.redis_url,
            # Unacknowledged messages of dead consumers are swept back every few seconds
            # (kombu's default is ~100 s); a live owner's lock makes the copy a no-op.
            "broker_transport_options": {"visibility_timeout": settings.visibility_timeout,
                                         "unacked_restore_interval": min(10, settings.visibility_timeout),
                                         "unacked_restore_throttle": 1},
        }
    queue_dir = settings.broker_dir / "queue"
    processed = settings.broker_dir / "processed"
    for d in (queue_dir, processed):
        d.mkdir(parents=True, exist_ok=True)
    return {
        "broker_url": "filesystem://",
        "broker_transport_options": {"data_folder_in": str(queue_dir), "data_folder_out": str(queue_dir),
                                     "processed_folder": str(processed), "store_processed": False},
        "result_backend": f"db+sqlite:///{(settings.broker_dir / 'results.sqlite').resolve()}",
    }


def make_celery(settings: Settings | None = None) -> Celery:
    settings = settings or get_settings()
    app = Celery("dcgan_faces", include=["worker.tasks"])
    app.conf.update(
        **broker_config(settings),
        task_default_queue=TRAIN_QUEUE,
        task_routes={TRAIN_TASK: {"queue": TRAIN_QUEUE}},
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        result_expires=7 * 24 * 3600,
        # A job is acknowledged only when its task returns, and goes back to the queue if the
        # process running it dies; the job's owner lock keeps redeliveries from running it twice.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_max_tasks_per_child=1,  # a fresh process (and CUDA context) per training job
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=3,
        worker_cancel_long_running_tasks_on_connection_loss=False,
        worker_hijack_root_logger=False,
    )
    return app


celery_app = make_celery()
app = celery_app  # `celery -A worker.celery_app` looks for `app`/`celery`


def enqueue(job_id: str) -> None:
    """Send the wake-up message for a job, by task name. Blocking; gives up within seconds
    when the broker is away (the caller decides what that means)."""
    celery_app.send_task(TRAIN_TASK, args=[job_id], queue=TRAIN_QUEUE, retry=True,
                         retry_policy={"max_retries": 1, "interval_start": 0.2,
                                       "interval_step": 0.2, "interval_max": 0.5})
