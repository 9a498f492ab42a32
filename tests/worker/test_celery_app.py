"""The Celery configuration: no result backend, broker files under RUNS_DIR, bounded broker calls."""
from __future__ import annotations

from pathlib import Path

from celery.app.utils import find_app

from worker import celery_app
from worker.celery_app import Broker, broker_config, ensure_broker_folders, make_celery
from worker.settings import ServiceSettings, get_service_settings


def test_task_results_are_not_stored_anywhere(tmp_path):
    app = make_celery(ServiceSettings(runs_dir=tmp_path))
    assert app.conf.task_ignore_result is True
    assert not app.conf.result_backend


def test_embedded_mode_keeps_every_broker_file_under_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = ServiceSettings(runs_dir=tmp_path / "runs", redis_url="")
    options = broker_config(settings)["broker_transport_options"]
    for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
        assert Path(options[key]).is_relative_to(settings.broker_dir), key
    ensure_broker_folders(settings)
    assert sorted(p.name for p in settings.broker_dir.iterdir()) == ["control", "processed", "queue"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]  # nothing in the working directory


def test_redis_mode_bounds_every_broker_call(tmp_path):
    settings = ServiceSettings(runs_dir=tmp_path, redis_url="redis://127.0.0.1:1/0", broker_timeout=2.5)
    conf = broker_config(settings)
    options = conf["broker_transport_options"]
    assert options["socket_timeout"] == 2.5 and options["socket_connect_timeout"] == 2.5
    assert conf["broker_connection_timeout"] == 2.5 and "result_backend" not in conf


def test_a_broker_sends_through_the_settings_it_was_made_with(tmp_path):
    a, b = (Broker(ServiceSettings(runs_dir=tmp_path / name, redis_url="")) for name in ("a", "b"))
    a.enqueue("job-of-a")
    b.enqueue("job-of-b")
    for broker, job in ((a, "job-of-a"), (b, "job-of-b")):
        (message,) = (broker.settings.broker_dir / "queue").iterdir()
        assert job in message.read_text()


def test_the_celery_command_finds_the_workers_app_made_from_the_environment(tmp_path, monkeypatch):
    """`celery -A worker.celery_app` looks the app up by name; it is the worker's broker's, with
    the environment's settings (read there, once)."""
    monkeypatch.setenv("RUNS_DIR", str(tmp_path / "runs"))
    get_service_settings.cache_clear()
    celery_app.worker_broker.cache_clear()
    try:
        app = find_app("worker.celery_app")
        assert app is celery_app.worker_broker().celery
        assert celery_app.worker_broker().settings.runs_dir == tmp_path / "runs"
    finally:
        get_service_settings.cache_clear()
        celery_app.worker_broker.cache_clear()
