"""The Celery configuration: no result backend, broker files under RUNS_DIR, bounded broker calls."""
from __future__ import annotations

from pathlib import Path

from worker.celery_app import broker_config, ensure_broker_folders, make_celery
from worker.settings import ServiceSettings


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
