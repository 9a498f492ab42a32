"""A static site of faces: one image per seed, a manifest and an index.html, for any static host.

`publish(run_dir, seeds, out)` writes `seedNNNNNN.png` (or .webp) per seed (the face that
`/generate?seed=S&n=1` shows, byte for byte in PNG), `manifest.json` (which checkpoint, its
SHA-256, the seeds, the options) and `index.html`, which shows a random face per load and a grid
of random ones, and needs nothing but the files beside it (its data is written into it, so it
works from file:// too). An interrupted publish is resumed by running it again: files already
there under their final name are kept, and each file appears under its final name only once
complete. A folder holding another checkpoint's or format's faces is refused, never mixed.
"""
from __future__ import annotations

import contextlib
import hashlib
import html
import json
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from model.checkpoint import SERVING_ENTRIES, CheckpointRef, load_epoch
from model.config import ConfigError
from model.fsutil import TEMP_MARK, atomic_write_bytes, fsync_dir, remove_stale_temp_files
from model.imageio import encode_image, grid_rgb
from model.provenance import generator_checksum, provenance

FORMAT = "dcgan-faces-site/1"
FORMATS = ("png", "webp")


@dataclass(frozen=True)
class Published:
    out: Path
    checkpoint: CheckpointRef
    written: int  # faces written by this call
    kept: int  # faces already there (a resumed publish)


def site_face_name(seed: int, fmt: str) -> str:
    return f"seed{seed:06d}.{fmt}"


def ranges(seeds: Sequence[int]) -> list[list[int]]:
    """Sorted seeds as inclusive [first, last] runs: 100,000 seeds in a few bytes."""
    out: list[list[int]] = []
    for s in sorted(set(seeds)):
        if out and out[-1][1] == s - 1:
            out[-1][1] = s
        else:
            out.append([s, s])
    return out


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _write(path: Path, data: bytes) -> None:
    """Temp name beside it, then rename (no fsync per file: the folder is synced at the end)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}{TEMP_MARK}")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def publish(run_dir: Path, seeds: Sequence[int], out: Path, fmt: str = "png", epoch: int | None = None,
            device: str = "auto", progress: Callable[[int, int], None] | None = None) -> Published:
    """Write (or complete) the site of `seeds`' faces from the run's checkpoint for `epoch`
    (None: the newest) into `out`. progress(done, total) after every chunk of faces."""
    import torch

    from model.faces import chunked, face_noise
    from model.rundir import RunDir
    from model.runtime import resolve_device
    from model.sampling import networks_from_checkpoint, run_generator

    if fmt not in FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    run = RunDir(Path(run_dir))
    if run.read_config() is None:
        raise ConfigError(f"{run_dir} is not a run directory (no config.json)")
    ref, state = load_epoch(run.checkpoints, epoch, entries=SERVING_ENTRIES)
    digest = file_sha256(ref.path)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / "manifest.json"
    previous = _read_manifest(manifest_path)
    if previous is not None and (previous.get("sha256"), previous.get("format")) != (digest, fmt):
        raise ConfigError(f"{out} holds the faces of {previous.get('checkpoint')} ({previous.get('format')}); "
                          f"publish {ref.name} ({fmt}) into an empty folder, or delete {out}")
    remove_stale_temp_files(out)
    seeds = list(dict.fromkeys(seeds))
    done_before = set(os.listdir(out))
    todo = [s for s in seeds if site_face_name(s, fmt) not in done_before]
    all_seeds = seeds if previous is None else sorted(set(seeds) | _expand(previous.get("seeds", [])))
    manifest = {"site": FORMAT, "job_id": Path(run_dir).resolve().name, "checkpoint": ref.name,
                "epoch": ref.epoch, "step": int(state["step"]), "sha256": digest, "format": fmt,
                "seeds": ranges(all_seeds), "count": len(all_seeds), "name": "seed{seed:06d}." + fmt,
                "options": {"truncation": None, "face": "image 0 of each seed, as /generate?seed=S&n=1"},
                "config": state["config"]}
    # The manifest says what the folder will hold before any face is written, so an
    # interrupted publish of another checkpoint into it is refused, not mixed.
    atomic_write_bytes(manifest_path, json.dumps(manifest, indent=1).encode())
    g, _ = networks_from_checkpoint(state, resolve_device(device))
    checksum = generator_checksum(state)
    done = len(seeds) - len(todo)
    with torch.inference_mode():
        for part in chunked(todo):
            images = run_generator(g, face_noise(part, g.nz))
            for k, seed in enumerate(part):
                text = provenance(manifest["job_id"], ref.epoch, ref.name, checksum, "grid", seed=seed, faces="0",
                                  n=1, nrow=1, truncation=None, best_of=None) if fmt == "png" else None
                _write(out / site_face_name(seed, fmt), encode_image(grid_rgb(images[k:k + 1]), fmt, text))
            done += len(part)
            if progress:
                progress(done, len(seeds))
    atomic_write_bytes(out / "index.html", index_html(manifest).encode())
    fsync_dir(out)
    return Published(out, ref, len(todo), len(seeds) - len(todo))


def _read_manifest(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _expand(runs: list) -> set[int]:
    out: set[int] = set()
    for r in runs:
        if isinstance(r, list) and len(r) == 2 and all(isinstance(x, int) for x in r) and r[1] - r[0] < 10**7:
            out.update(range(r[0], r[1] + 1))
    return out


def index_html(manifest: dict) -> str:
    data = json.dumps({k: manifest[k] for k in ("job_id", "checkpoint", "epoch", "seeds", "count", "name")})
    title = f"Faces of {manifest['job_id']}, {manifest['checkpoint']}"
    return _PAGE.replace("{{title}}", html.escape(title)).replace("{{data}}", data.replace("</", "<\\/"))


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{title}}</title>
<style>
body{margin:0;font:15px/1.4 system-ui,sans-serif;background:#111;color:#eee;text-align:center}
header{padding:16px}h1{font-size:20px;margin:0 0 4px}p{margin:4px 0;color:#aaa}
#one{width:min(70vw,384px);image-rendering:pixelated;border-radius:6px;cursor:pointer}
#grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(96px,1fr));gap:4px;padding:16px;max-width:1100px;margin:auto}
#grid img{width:100%;image-rendering:pixelated;border-radius:3px}
button{font:inherit;padding:6px 14px;margin:8px;border-radius:6px;border:1px solid #555;background:#222;color:#eee}
a{color:#9cf}
</style></head><body>
<header><h1>{{title}}</h1><p id="about"></p></header>
<main><img id="one" alt="a generated face"><p id="which"></p>
<button id="again" type="button">Another face</button>
<div id="grid"></div></main>
<script type="application/json" id="site">{{data}}</script>
<script>
const site = JSON.parse(document.getElementById("site").textContent);
const file = s => site.name.replace("{seed:06d}", String(s).padStart(6, "0"));
function pick() {
  let k = Math.floor(Math.random() * site.count);
  for (const [a, b] of site.seeds) { if (k <= b - a) return a + k; k -= b - a + 1; }
  return site.seeds[0][0];
}
function show() { const s = pick(); const img = document.getElementById("one");
  img.src = file(s); document.getElementById("which").textContent = "seed " + s; }
document.getElementById("about").textContent = site.count.toLocaleString() + " faces from epoch " +
  site.epoch + " of job " + site.job_id + " (" + site.checkpoint + ")";
document.getElementById("again").onclick = show;
document.getElementById("one").onclick = show;
const grid = document.getElementById("grid");
for (let i = 0; i < Math.min(48, site.count); i++) {
  const s = pick(), a = document.createElement("a"), img = document.createElement("img");
  a.href = file(s); img.src = file(s); img.alt = "seed " + s; img.title = "seed " + s; img.loading = "lazy";
  a.appendChild(img); grid.appendChild(a);
}
show();
</script></body></html>
"""
