from __future__ import annotations

import pytest

from tests.service.stack import Redis, Stack


@pytest.fixture(scope="module")
def redis(tmp_path_factory):
    server = Redis(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory, redis):
    """One worker and one app on a private Redis, for the tests of a module to share."""
    s = Stack(tmp_path_factory.mktemp("stack"), redis.url)
    s.start_worker()
    s.start_app()
    yield s
    s.stop()
