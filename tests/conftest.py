"""Fixtures shared by every test package."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import write_blob_images


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Decoded-dataset caches go to a temp folder, never to the user's ~/.cache."""
    os.environ["DCGAN_CACHE_DIR"] = str(tmp_path_factory.mktemp("dataset-cache"))


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """96 small images: six batches of 16."""
    return write_blob_images(tmp_path_factory.mktemp("images"), 96)
