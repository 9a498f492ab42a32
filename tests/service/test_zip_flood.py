"""30 anonymous clients flooding /faces.zip from a wide model must not starve /generate: zips
render on a lane of their own (app/render.py), so a /generate waits for no zip chunk.
Real uvicorn, real downloads."""
from __future__ import annotations

import time

import pytest

from tests.service.flood import ZipFlood, wide_model_stack
from tests.service.stack import client, wait_for

pytestmark = pytest.mark.slow
CHUNK = 64  # faces per zip chunk (model.sampling.CHUNK)


@pytest.fixture(scope="module")
def wide(tmp_path_factory):
    stack, url = wide_model_stack(tmp_path_factory.mktemp("flood"))
    yield stack, url
    stack.stop()


def test_a_zip_flood_leaves_generate_answering_and_admits_only_max_zip_streams(wide):
    stack, url = wide
    with client(url) as c:
        assert c.get("/generate?n=1&seed=1").status_code == 200  # the model is loaded
        streams = 4  # MAX_ZIP_STREAMS' default
        with ZipFlood(url, clients=30) as flood:
            wait_for(lambda: flood.open_now >= streams and flood.faces >= CHUNK or flood.unexpected, 300,
                     "every admitted zip streaming")
            probes = []
            for seed in range(1000, 1005):  # a new seed each time: a render, never a cache hit
                faces_before, t0 = flood.faces, time.monotonic()
                r = c.get(f"/generate?n=1&seed={seed}")
                probes.append((r.status_code, round(time.monotonic() - t0, 2), flood.faces - faces_before))
            print("(status, seconds, zip faces delivered meanwhile) per /generate:", probes)
        assert not flood.unexpected, flood.unexpected
        assert [status for status, _, _ in probes] == [200] * 5
        # A /generate waits for no zip chunk: while it renders, the zip lane (one chunk at a time,
        # at the lowest priority) finishes at most the chunk it was on and perhaps one more.
        # Queued behind the zips' chunks instead, it would see each admitted zip's next chunk first.
        assert max(faces for _, _, faces in probes) <= 2 * CHUNK, probes
        assert flood.most_open == streams and flood.refused > 0, vars(flood)
        # the hung-up downloads give their places back (each after the chunk it was rendering)
        wait_for(lambda: c.get("/faces.zip?seeds=0").status_code == 200, 300, "a zip admitted again")
