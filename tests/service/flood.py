"""A flood of /faces.zip downloads against an app serving a wide generator, for the test and
the benchmark that measure what it does to /generate (tests/service/test_zip_flood.py,
benchmarks/zip_flood_bench.py)."""
from __future__ import annotations

import struct
import threading
from pathlib import Path

import httpx

from model.train import train
from tests.helpers import tiny_config, write_blob_images
from tests.service.stack import Stack

WIDE_JOB = "20260101-000000-0000a1"


def wide_model_stack(folder: Path, **env: str) -> tuple[Stack, str]:
    """An app (no worker) serving one epoch of an ngf-128 generator: what an attacker floods."""
    stack = Stack(folder, redis_url=None, **env)
    data = write_blob_images(stack.data / "faces", 32)
    train(tiny_config(epochs=1, snapshot_epochs=(1,), ngf=128, ndf=8), stack.runs / WIDE_JOB,
          data_dir=data, cache_dir=stack.folder / "cache")
    return stack, stack.start_app()


class ZipMembers:
    """Counts the members of a stored zip as its bytes stream in (each local header gives the
    size of what follows it)."""

    def __init__(self) -> None:
        self.members = 0
        self._buf = b""
        self._left = 0  # bytes of the current member still to come

    def feed(self, data: bytes) -> int:
        """Take the next bytes; how many members they completed."""
        self._buf += data
        done = 0
        while True:
            if self._left:
                taken = min(self._left, len(self._buf))
                self._buf, self._left = self._buf[taken:], self._left - taken
                if self._left:
                    return done
                self.members += 1
                done += 1
            if len(self._buf) < 30 or self._buf[:4] != b"PK\x03\x04":  # more to come, or the directory
                return done
            size, name_len, extra_len = struct.unpack_from("<IHH", self._buf, 22)
            self._left = 30 + name_len + extra_len + size


class ZipFlood:
    """`clients` threads, each downloading `/faces.zip?QUERY` over and over until stopped; a
    refused one (503) waits its Retry-After and asks again."""

    def __init__(self, url: str, clients: int, query: str = "seeds=0-999") -> None:
        self.url, self.query = url, query
        self.faces = 0  # zip members received by all clients together
        self.admitted = self.refused = self.open_now = self.most_open = 0
        self.unexpected: list[str] = []  # any answer but 200 or 503 + Retry-After, any error
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client, daemon=True) for _ in range(clients)]

    def __enter__(self) -> ZipFlood:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for t in self._threads:  # each leaves after the chunk it waits for (the client hangs up)
            t.join(300)

    def _client(self) -> None:
        while not self._stop.is_set():
            try:
                with httpx.Client(base_url=self.url, timeout=120) as c, \
                        c.stream("GET", f"/faces.zip?{self.query}") as r:
                    if r.status_code == 503 and r.headers.get("retry-after"):
                        with self._lock:
                            self.refused += 1
                        self._stop.wait(float(r.headers["retry-after"]))
                        continue
                    if r.status_code != 200:
                        raise RuntimeError(f"answered {r.status_code}: {r.read()[:200]!r}")
                    self._download(r)
            except Exception as exc:  # noqa: BLE001 - recorded for the test to report
                with self._lock:
                    self.unexpected.append(repr(exc))
                return

    def _download(self, r: httpx.Response) -> None:
        with self._lock:
            self.admitted += 1
            self.open_now += 1
            self.most_open = max(self.most_open, self.open_now)
        try:
            members = ZipMembers()
            for data in r.iter_raw():
                done = members.feed(data)
                with self._lock:
                    self.faces += done
                if self._stop.is_set():
                    return
        finally:
            with self._lock:
                self.open_now -= 1
