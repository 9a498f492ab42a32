"""/generate?n=1 latency while anonymous clients flood /faces.zip, against the same requests
on the same app unloaded, measured in one run.

    python benchmarks/zip_flood_bench.py                  # 30 zip clients, 10 probes each phase
    python benchmarks/zip_flood_bench.py --clients 8 --probes 5

Starts one app (no worker) serving one epoch of an ngf-128 generator, times --probes
sequential /generate?n=1 requests (a new seed each: renders, not cache hits), then starts
--clients threads each downloading /faces.zip?seeds=0-999 over and over (a refused one waits
its Retry-After), waits until 4 chunks of faces have arrived, and times --probes more (one a
second, so that they meet the zip lane at every point of a chunk).
Prints p50/max of both phases, their ratio, how many zip faces arrived during each probe, and
the flood's admitted/refused counts and throughput.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.service.flood import ZipFlood, wide_model_stack  # noqa: E402
from tests.service.stack import wait_for  # noqa: E402


def probe(c: httpx.Client, seeds: range, flood: ZipFlood | None = None) -> list[tuple[float, int]]:
    """(seconds, zip faces delivered meanwhile) of each /generate?n=1&seed=S."""
    out = []
    for seed in seeds:
        faces, t0 = flood.faces if flood else 0, time.perf_counter()
        r = c.get(f"/generate?n=1&seed={seed}")
        r.raise_for_status()
        out.append((time.perf_counter() - t0, (flood.faces - faces) if flood else 0))
        time.sleep(1)  # spread over several zip chunks
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=30)
    ap.add_argument("--probes", type=int, default=10)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        stack, url = wide_model_stack(Path(tmp))
        try:
            with httpx.Client(base_url=url, timeout=300) as c:
                probe(c, range(1, 3))  # model loaded, allocator warm
                quiet = probe(c, range(100, 100 + args.probes))
                t0 = time.perf_counter()
                with ZipFlood(url, args.clients) as flood:
                    # under way: as many chunks delivered as downloads may stream (MAX_ZIP_STREAMS: 4)
                    wait_for(lambda: flood.faces >= 4 * 64 or flood.unexpected, 600, "the flood under way")
                    loaded = probe(c, range(200, 200 + args.probes), flood)
                    faces, elapsed = flood.faces, time.perf_counter() - t0
        finally:
            stack.stop()
    p50 = lambda v: sorted(v)[len(v) // 2]  # noqa: E731
    q, f = [s for s, _ in quiet], [s for s, _ in loaded]
    print(f"/generate?n=1 unloaded:        p50 {p50(q) * 1000:.0f} ms, max {max(q) * 1000:.0f} ms")
    print(f"/generate?n=1 during the flood: p50 {p50(f) * 1000:.0f} ms, max {max(f) * 1000:.0f} ms "
          f"(ratio p50 {p50(f) / p50(q):.2f}, max {max(f) / max(q):.2f})")
    print(f"zip faces delivered during each probe: {[n for _, n in loaded]}")
    print(f"flood: {args.clients} clients, {flood.admitted} downloads admitted (at most {flood.most_open} at once), "
          f"{flood.refused} refused with 503 + Retry-After, {faces} faces in {elapsed:.0f} s "
          f"({faces / elapsed:.1f} faces/s), unexpected answers: {flood.unexpected or 'none'}")
    return 1 if flood.unexpected else 0


if __name__ == "__main__":
    raise SystemExit(main())
