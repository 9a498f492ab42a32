"""Training data confined to DATA_ROOT, checked when a job is made and again when it is trained."""
from __future__ import annotations

import pytest

from model.data import DataError
from tests.helpers import write_blob_images
from worker.datasource import DataSourceError, folder_data, training_folder
from worker.records import FolderData, SyntheticData


def test_a_folder_under_data_root_is_stored_relative_and_resolved(settings):
    write_blob_images(settings.data_root / "faces", 2)
    (settings.data_root / "alias").symlink_to(settings.data_root / "faces", target_is_directory=True)
    assert folder_data(settings.data_root, "faces/").data_dir == "faces"
    assert folder_data(settings.data_root, "alias").data_dir == "faces"


@pytest.mark.parametrize("setup,data_dir,kind", [
    (lambda root, tmp: None, "missing", "missing"),
    (lambda root, tmp: (root / "empty").mkdir(), "empty", "empty"),
    (lambda root, tmp: (root / "out").symlink_to(tmp, target_is_directory=True), "out", "outside"),
    (lambda root, tmp: (root / "loop").symlink_to(root / "loop"), "loop", "invalid"),
    (lambda root, tmp: None, "x" * 300, "invalid"),
    (lambda root, tmp: None, "/".join(["a" * 200] * 30), "invalid"),
])
def test_unusable_folders_are_refused_with_a_kind_the_api_can_map(settings, tmp_path, setup, data_dir, kind):
    setup(settings.data_root, tmp_path)
    with pytest.raises(DataSourceError) as info:
        folder_data(settings.data_root, data_dir)
    assert info.value.kind == kind


def test_the_worker_checks_the_folder_again_when_it_opens_it(settings, tmp_path):
    write_blob_images(settings.data_root / "faces", 2)
    data = folder_data(settings.data_root, "faces")
    assert training_folder(settings, data) == (settings.data_root / "faces").resolve()
    # replaced by a symlink to a folder outside DATA_ROOT after the job was created
    import shutil
    shutil.rmtree(settings.data_root / "faces")
    write_blob_images(tmp_path / "elsewhere", 2)
    (settings.data_root / "faces").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    with pytest.raises(DataError, match="outside DATA_ROOT"):
        training_folder(settings, data)
    with pytest.raises(DataError, match="no folder"):
        training_folder(settings, FolderData(data_dir="gone"))


def test_synthetic_data_is_written_once_under_runs(settings):
    folder = training_folder(settings, SyntheticData(synthetic_images=16, synthetic_seed=3))
    assert folder.parent == settings.synthetic_dir and len(list(folder.rglob("*.png"))) == 16
