"""`dcgan-faces`: the commands, their arguments and what they print. Every call goes through
client.api; a failure is one line on stderr and exit code 1 (2 for a wrong command line)."""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from client.api import DEFAULT_URL, Api, ApiError

FINISHED = {"succeeded", "failed", "cancelled", "damaged"}
MAX_SEEDS = 100_000


# ---- parsing ------------------------------------------------------------------------------
def parse_seeds(text: str) -> list[int]:
    """`0-63`, `7`, `1,5,9-12`: the seeds in the order given, each once."""
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        lo, sep, hi = part.partition("-")
        try:
            first, last = (int(lo), int(hi)) if sep else (int(part), int(part))
        except ValueError:
            raise argparse.ArgumentTypeError(f"{part!r} is not a seed or a range like 0-63") from None
        if first < 0 or last < first or last >= 2 ** 32:
            raise argparse.ArgumentTypeError(f"{part!r}: seeds are 0..4294967295, ranges go low-high")
        if len(seeds) + last - first + 1 > MAX_SEEDS:
            raise argparse.ArgumentTypeError(f"more than {MAX_SEEDS} seeds")
        seeds.extend(range(first, last + 1))
    return list(dict.fromkeys(seeds))


def seeds_spec(seeds: list[int]) -> str:
    """The shortest `a-b,c` text for a list of seeds (the form /faces.zip takes)."""
    parts, i = [], 0
    while i < len(seeds):
        j = i
        while j + 1 < len(seeds) and seeds[j + 1] == seeds[j] + 1:
            j += 1
        parts.append(str(seeds[i]) if i == j else f"{seeds[i]}-{seeds[j]}")
        i = j + 1
    return ",".join(parts)


def seed_batches(seeds: list[int], max_seeds: int = 1000, max_chars: int = 1000) -> list[str]:
    """`seeds` as /faces.zip specs, each within the server's default bounds (MAX_ZIP_FACES
    seeds, 1000 characters)."""
    batches, part = [], []
    for seed in seeds:
        if part and (len(part) == max_seeds or len(seeds_spec(part + [seed])) > max_chars):
            batches.append(seeds_spec(part))
            part = []
        part.append(seed)
    return batches + ([seeds_spec(part)] if part else [])


def parse_setting(text: str) -> tuple[str, Any]:
    """`key=value` for any training field; the value is read as JSON when it is JSON
    (numbers, true/false, [1,5,10]) and as a string otherwise."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return key.strip().replace("-", "_"), value


JOB_ID = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{6}$")  # worker/records.py's, without importing the service
EXPORT_FORMATS = ("safetensors", "onnx", "torchscript")  # model/export.py's FORMATS


def job_id(text: str) -> str:
    """A job id as the server writes them, refused here with a plain message (not the server's
    pattern-mismatch 422)."""
    if not JOB_ID.match(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a job id: ids look like 20260101-120000-0a1b2c "
                                         "(`dcgan-faces jobs` lists them)")
    return text


def latent_id(text: str) -> str:
    if not re.fullmatch(r"[0-9a-f]{24}", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a latent ID (24 hex digits, as `project` prints)")
    return text


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be 1 or more")
    return value


def epoch_list(text: str) -> list[int]:
    try:
        return [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of epochs like 1,5,10") from None


def train_body(args: argparse.Namespace) -> dict[str, Any]:
    """The POST /train body: --set fields first, the named flags over them."""
    body: dict[str, Any] = dict(args.set or [])
    if args.synthetic:
        body["dataset"] = "synthetic"
        if args.synthetic_images is not None:
            body["synthetic_images"] = args.synthetic_images
    else:
        body["data_dir"] = args.data
    for flag in ("preset", "epochs", "batch_size", "ngf", "ndf", "snapshot_epochs"):
        if getattr(args, flag) is not None:
            body[flag] = getattr(args, flag)
    return body


# ---- formatting ---------------------------------------------------------------------------
def num(x: Any, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def percent(share: Any) -> str:
    """0.0625 -> `6.2%`; `-` for what is not a share."""
    ok = isinstance(share, (int, float)) and not isinstance(share, bool) and 0 <= share <= 1
    return f"{share * 100:.1f}%" if ok else "-"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = round(seconds)
    if s < 90:
        return f"{s}s"
    if s < 5400:
        return f"{round(s / 60)}min"
    return f"{s / 3600:.1f}h"


def when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M") if ts else "-"


def data_text(job: dict) -> str:
    data = job.get("data") or {}
    if data.get("dataset"):
        return f"synthetic ({data.get('synthetic_images')} images)"
    return data.get("data_dir") or "-"


def jobs_table(jobs: list[dict]) -> str:
    """One line per job, columns aligned."""
    rows = [("JOB", "STATE", "EPOCH", "LOSS_D", "LOSS_G", "IMG/S", "ETA", "DATA", "CREATED")]
    for j in jobs:
        if j["state"] == "damaged":
            rows.append((j["job_id"], "damaged", "-", "-", "-", "-", "-", (j.get("error") or "")[:60], "-"))
            continue
        eta = duration(j.get("eta_seconds")) if j["state"] == "running" else "-"
        speed = f"{j['images_per_sec']:.0f}" if j.get("images_per_sec") else "-"
        rows.append((j["job_id"], j["state"], f"{j['epoch']}/{j['epochs']}", num(j.get("loss_d")),
                     num(j.get("loss_g")), speed, eta, data_text(j), when(j.get("created_at"))))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def status_text(job: dict) -> str:
    """The fields of one job a person looks at, one per line."""
    lines = [("job", job["job_id"])]
    state = job["state"]
    if state == "queued":
        state = activity(job)
    elif state == "running":
        state += ": " + (activity(job) if job.get("phase") == "data" else "training")
    lines.append(("state", state))
    if job["state"] != "damaged":
        lines += [("epoch", f"{job['epoch']}/{job['epochs']} (step {job.get('step', 0)})"),
                  ("data", data_text(job))]
        if job.get("loss_d") is not None:
            lines.append(("losses", f"D {num(job['loss_d'])}  G {num(job.get('loss_g'))}"))
        if job.get("d_x") is not None:
            lines.append(("D(x)/D(G(z))", f"{num(job['d_x'], 2)} / {num(job.get('d_g_z'), 2)}"))
        if job.get("swd") is not None:
            lines.append(("SWD", num(job["swd"], 4)))
        if job.get("copy_rate") is not None:
            lines.append(("copy rate", percent(job["copy_rate"]) + " of the snapshot's faces copy a training image"))
        if job.get("images_per_sec"):
            speed = f"{job['images_per_sec']:.0f} img/s"
            if job["state"] == "running" and job.get("eta_seconds"):
                speed += f", ETA {duration(job['eta_seconds'])}"
            lines.append(("speed", speed))
        if job.get("dataset"):
            first, *rest = data_report(job["dataset"])
            lines.append(("images", first.removeprefix("data: ")))
            lines += [("", line.strip()) for line in rest]
        lines.append(("snapshots", ", ".join(map(str, job.get("snapshots") or [])) or "-"))
        lines.append(("checkpoint", job.get("checkpoint") or "-"))
        lines.append(("attempts", f"{job.get('attempts', 0)} (worker deaths: {job.get('crashes', 0)})"))
        if job.get("worker"):
            lines.append(("worker", job["worker"]))
        lines += [("created", when(job.get("created_at"))), ("started", when(job.get("started_at"))),
                  ("finished", when(job.get("finished_at")))]
    for key in ("warning", "error"):
        if job.get(key):
            lines.append((key, job[key]))
    width = max(len(k) for k, _ in lines)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in lines)


# ---- waiting for a job ----------------------------------------------------------------------
def plan_text(answer: dict) -> str:
    """POST /train's answer as a line: the epochs and steps the job will run."""
    at_most = "" if answer.get("exact", True) else " at most (files that do not decode are skipped)"
    return (f"will train {answer['epochs']} epochs of {answer['steps_per_epoch']} steps ({answer['images']} "
            f"images, batch {answer['batch_size']}): {answer['steps']} steps{at_most}")


def activity(job: dict) -> str:
    """What the job is doing now, in words: queued, decoding images, training with its
    speed and ETA (the server's, from this attempt's training time only), or how it ended."""
    state = job["state"]
    if state == "queued":
        return "queued (waiting for a worker)"
    if state != "running":
        return state
    if job.get("phase") == "data":
        return "decoding images"
    parts = []
    if job.get("loss_d") is not None:
        parts.append(f"D {num(job['loss_d'], 2)} G {num(job.get('loss_g'), 2)}")
    if job.get("images_per_sec"):
        parts.append(f"{job['images_per_sec']:.0f} img/s")
        if job.get("eta_seconds"):
            parts.append(f"ETA {duration(job['eta_seconds'])}")
    else:
        parts.append("measuring speed")
    return "training: " + ", ".join(parts)


def data_report(dataset: dict, limit: int = 20) -> list[str]:
    """What decoding made of the files: images used, then each skipped file with its reason
    (the server keeps the first 20), then how many more."""
    lines = [f"data: {dataset['images']} images used of {dataset['files_found']} files"
             + (f", {dataset['skipped']} skipped" if dataset.get("skipped") else "")]
    examples = dataset.get("skipped_examples") or []
    for name, reason in examples[:limit]:
        lines.append(f"  skipped {name}: {reason}")
    more = dataset.get("skipped", 0) - min(len(examples), limit)
    if more > 0:
        lines.append(f"  ... and {more} more skipped")
    return lines


# The bar counts epochs; its speed and ETA are the server's (training time only), so tqdm's own
# rate, which would count the time queued and decoding as training, is left out.
BAR_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} epochs{postfix}"  # postfix: ", what"


def wait_for_job(api: Api, job_id: str, poll: float, sleep: Callable[[float], None] = time.sleep) -> int:
    """A bar of epochs (and what the job is doing) until it finishes, with the data report once
    decoding ends: exit code 0 when it succeeded, 1 otherwise. Ctrl-C stops waiting, not the job."""
    from tqdm import tqdm

    job = api.job(job_id)
    bar = tqdm(total=max(job.get("epochs") or 1, 1), desc=job_id, file=sys.stderr, bar_format=BAR_FORMAT,
               dynamic_ncols=True, leave=True)
    interactive = sys.stderr.isatty()
    last: tuple[int, str] | None = None
    reported = job.get("dataset") is not None and job["state"] != "running"  # an old job's: not news
    try:
        while True:
            if job.get("epochs"):
                bar.total = job["epochs"]
            bar.n = min(job.get("epoch", 0), bar.total)
            shown = (bar.n, activity(job))
            if shown != last or interactive:  # a log file gets a line per change, not per poll
                bar.set_postfix_str(shown[1], refresh=False)
                bar.refresh()
                last = shown
            if job.get("dataset") and not reported:  # above the bar, which is redrawn as it is now
                bar.write("\n".join(data_report(job["dataset"])), file=sys.stderr)
                reported = True
            if job["state"] in FINISHED:
                break
            sleep(poll)
            job = api.job(job_id)
    except KeyboardInterrupt:
        bar.close()
        print(f"stopped waiting; job {job_id} goes on. Follow it with `dcgan-faces status {job_id}`, "
              f"stop it with `dcgan-faces cancel {job_id}`", file=sys.stderr)
        return 130
    bar.close()
    if job["state"] == "succeeded":
        print(f"job {job_id} succeeded: epoch {job['epoch']}/{job['epochs']}, {job.get('checkpoint')}",
              file=sys.stderr)
        return 0
    print(f"error: job {job_id} {job['state']}" + (f": {job['error']}" if job.get("error") else ""),
          file=sys.stderr)
    return 1


# ---- commands -------------------------------------------------------------------------------
def cmd_train(api: Api, args: argparse.Namespace) -> int:
    answer = api.train(train_body(args), idempotency_key=args.idempotency_key)
    print(answer["job_id"])
    sys.stdout.flush()
    if "steps" in answer:
        print(plan_text(answer), file=sys.stderr)
    return wait_for_job(api, answer["job_id"], args.poll) if args.wait else 0


def cmd_jobs(api: Api, args: argparse.Namespace) -> int:
    jobs = api.jobs()
    if args.json:
        print(json.dumps(jobs, indent=2))
    elif not jobs:
        print("no jobs yet: start one with `dcgan-faces train --synthetic` (or --data DIR)")
    else:
        print(jobs_table(jobs))
    return 0


def cmd_status(api: Api, args: argparse.Namespace) -> int:
    job = api.job(args.job_id)
    print(json.dumps(job, indent=2) if args.json else status_text(job))
    return 0


def cmd_cancel(api: Api, args: argparse.Namespace) -> int:
    job = api.cancel(args.job_id)
    then = "cancelled" if job["state"] == "cancelled" else "stops within one batch, keeping a checkpoint"
    print(f"job {job['job_id']}: {then}")
    return 0


def cmd_resume(api: Api, args: argparse.Namespace) -> int:
    job = api.resume(args.job_id, args.epochs)
    print(f"job {job['job_id']}: {job['state']}, from epoch {job['epoch']} to {job['epochs']}")
    return wait_for_job(api, job["job_id"], args.poll) if args.wait else 0


def model_text(model: dict) -> str:
    how = "pinned" if model.get("pinned") else "newest, not pinned"
    return f"serving {model['job_id']}/{model['checkpoint']} (epoch {model['epoch']}, {how})"


def cmd_pin(api: Api, args: argparse.Namespace) -> int:
    print(model_text(api.pin(args.job_id, args.epoch)))
    return 0


def cmd_unpin(api: Api, args: argparse.Namespace) -> int:
    api.unpin()
    try:
        print("unpinned; " + model_text(api.default_model()))
    except ApiError:
        print("unpinned; no checkpoint to serve yet")
    return 0


def cmd_model(api: Api, args: argparse.Namespace) -> int:
    print(model_text(api.default_model()))
    return 0


def checkpoints_table(checkpoints: list[dict]) -> str:
    """One line per checkpoint: epoch, file, SWD, copy rate, and whether it is served or pinned."""
    rows = [("EPOCH", "CHECKPOINT", "SWD", "COPIES", "")]
    for c in checkpoints:
        flags = ", ".join(f for f in ("served" if c.get("served") else "", "pinned" if c.get("pinned") else "") if f)
        epoch = f"{c['epoch']}" + (f" (+{c['batch']} batches)" if c.get("batch") else "")
        rows.append((epoch, c["name"], num(c.get("swd"), 4), percent(c.get("copy_rate")), flags))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def cmd_checkpoints(api: Api, args: argparse.Namespace) -> int:
    checkpoints = api.checkpoints(args.job_id)
    print(json.dumps(checkpoints, indent=1) if args.json else checkpoints_table(checkpoints))
    return 0


def nearest_text(answer: dict) -> str:
    """GET /nearest's answer: each neighbour's distance beside the real-to-real reference."""
    ref = answer.get("reference") or 0
    face = f"latent {answer['latent']}" if "latent" in answer else f"face {answer['i']} of seed {answer['seed']}"
    lines = [f"{face} ({answer['job_id']}/{answer['checkpoint']}): "
             f"nearest of {answer['images']} training images; real-to-real reference {num(ref, 1)}"]
    for n in answer["neighbours"]:
        share = f"{n['distance'] / ref:.2f} x reference" if ref else "-"
        lines.append(f"  #{n['index']:<7} distance {num(n['distance'], 1):>7}  ({share})  {n['url']}")
    return "\n".join(lines)


def cmd_nearest(api: Api, args: argparse.Namespace) -> int:
    which = {"latent": args.latent} if args.latent else {"seed": args.seed, "i": args.i}
    answer = api.nearest({**which, "k": args.k, **image_params(args)})
    print(json.dumps(answer, indent=1) if args.json else nearest_text(answer))
    return 0


def image_params(args: argparse.Namespace, names: tuple[str, ...] = ("job", "epoch", "truncation", "edit")
                 ) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for name in names:
        if getattr(args, name, None) is not None:
            params[name] = getattr(args, name)
    return params


EDIT = re.compile(r"[0-9]{1,2}:-?[0-9]{1,2}(\.[0-9]{1,6})?")


def edit_list(text: str) -> str:
    """`--edit 0:1.5,3:-2` (the server checks amounts, indices and repeats; this, the shape)."""
    text = text.replace(" ", "")
    if not all(EDIT.fullmatch(item) for item in text.split(",")):
        raise argparse.ArgumentTypeError(f"{text!r} is not DIRECTION:AMOUNT[,DIRECTION:AMOUNT...], e.g. 0:1.5,3:-2")
    return text


def cmd_directions(api: Api, args: argparse.Namespace) -> int:
    answer = api.directions(image_params(args, ("job", "epoch")))
    if args.json:
        print(json.dumps(answer, indent=2))
        return 0
    print(f"{answer['job_id']}/{answer['checkpoint']}: {len(answer['directions'])} directions "
          f"(use with generate --edit K:AMOUNT, AMOUNT in standard deviations, |AMOUNT| <= {answer['max_amount']:g})")
    print(f"{'K':>3}  {'variance':>8}  {'scale':>6}")
    for d in answer["directions"]:
        print(f"{d['index']:>3}  {100 * d['variance']:>7.2f}%  {d['scale']:>6.3f}")
    return 0


def unpack_faces(archive: Path, outdir: Path) -> list[str]:
    """The PNGs of a /faces.zip answer, written flat into `outdir` (member folders dropped, so
    nothing lands outside it)."""
    names = []
    try:
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                name = Path(info.filename).name
                if info.is_dir() or not name.lower().endswith(".png") or name.startswith("."):
                    continue
                (outdir / name).write_bytes(zf.read(info))
                names.append(name)
    except zipfile.BadZipFile as exc:
        raise ApiError(f"the server's zip is incomplete or damaged ({exc}); try again") from None
    return names


def cmd_generate(api: Api, args: argparse.Namespace) -> int:
    """/faces.zip in batches, unpacked into --outdir as seedNNNN.png; with --edit, or from a
    server without that route, one /generate?n=1 per seed instead (the same bytes for plain faces,
    more requests)."""
    outdir: Path = args.outdir
    outdir.mkdir(parents=True, exist_ok=True)
    params = image_params(args)
    checkpoints: set[str] = set()
    written = 0
    if args.edit is None:  # (/faces.zip draws plain faces only)
        with tempfile.TemporaryDirectory(dir=outdir, prefix=".faces-") as tmp:
            for spec in seed_batches(args.seeds):
                archive = Path(tmp) / "faces.zip"
                answer = api.faces_zip(spec, archive, params)
                if answer is None:
                    break
                written += len(unpack_faces(archive, outdir))
                checkpoints.add(answer.headers.get("X-Checkpoint", "the served checkpoint"))
            else:
                print(f"wrote {written} faces to {outdir} from {', '.join(sorted(checkpoints))}")
                return 0
    from tqdm import tqdm

    for seed in tqdm(args.seeds, unit="face", file=sys.stderr, disable=len(args.seeds) < 8):
        r = api.generate({"seed": seed, "n": 1, **params})
        (outdir / f"seed{seed:04d}.png").write_bytes(r.content)
        checkpoints.add(r.headers.get("X-Checkpoint", "the served checkpoint"))
    print(f"wrote {len(args.seeds)} faces to {outdir} from {', '.join(sorted(checkpoints))}")
    return 0


def cmd_generate_latent(api: Api, args: argparse.Namespace) -> int:
    """The face of a projected latent, as `<outdir>/latent-<ID>.png`."""
    args.outdir.mkdir(parents=True, exist_ok=True)
    dest = args.outdir / f"latent-{args.latent}.png"
    params = {"latent": args.latent, "n": 1, **image_params(args)}
    answer = api.download("/generate", dest, params=params)
    print(f"wrote {dest} from {answer.headers.get('X-Checkpoint', 'the checkpoint it was projected on')}")
    return 0


MAX_PICTURE_BYTES = 64 * 2**20  # the server takes far less (MAX_BODY_BYTES); this only bounds our read
PICTURE_TYPES = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"))


def picture_type(head: bytes) -> str | None:
    """The Content-Type of a PNG, JPEG or WebP file from its first bytes (None for anything else)."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return next((media for magic, media in PICTURE_TYPES if head.startswith(magic)), None)


def cmd_project(api: Api, args: argparse.Namespace) -> int:
    """POST the picture to /project; print the latent and its PSNR, and with --out save its face."""
    path: Path = args.image
    if path.stat().st_size > MAX_PICTURE_BYTES:
        raise ApiError(f"{path} is over {MAX_PICTURE_BYTES // 2**20} MB; send a smaller picture")
    with path.open("rb") as f:
        picture = f.read(MAX_PICTURE_BYTES + 1)
    media = picture_type(picture[:16])
    if media is None:
        raise ApiError(f"{path} is not a PNG, JPEG or WebP file")
    answer = api.project(picture, media, image_params(args))
    print(f"latent {answer['latent']}  psnr {answer['psnr']:.1f} dB  ({answer['checkpoint']}, "
          f"{answer['steps']} steps, {answer['seconds']:.1f} s)")
    if args.out is not None:
        api.download("/generate", args.out, params={"latent": answer["latent"], "n": 1})
        print(f"wrote {args.out}")
    return 0


def cmd_export(api: Api, args: argparse.Namespace) -> int:
    api.export(args.job_id, args.format, args.out, args.epoch)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")
    return 0


def cmd_delete(api: Api, args: argparse.Namespace) -> int:
    api.delete(args.job_id)
    print(f"deleted job {args.job_id}")
    return 0


# ---- the command line -------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dcgan-faces",
        description="Talk to a DCGAN faces service over HTTP: train, follow, pin, generate, export.",
        epilog="Commands that change state need the server's API token (--token or DCGAN_TOKEN). "
               "Errors are one line on stderr and exit code 1.")
    parser.add_argument("--url", default=os.environ.get("DCGAN_URL") or DEFAULT_URL,
                        help=f"the service (default: $DCGAN_URL or {DEFAULT_URL})")
    parser.add_argument("--token", default=os.environ.get("DCGAN_TOKEN") or None,
                        help="the server's API_TOKEN (default: $DCGAN_TOKEN)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for an answer (default 60)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, func: Callable[[Api, argparse.Namespace], int], help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(func=func)
        return p

    def wait_flags(p: argparse.ArgumentParser) -> None:
        p.add_argument("--wait", action="store_true",
                       help="show a progress bar until the job finishes; exit 0 if it succeeded "
                            "(Ctrl-C stops waiting, not the job)")
        p.add_argument("--poll", type=float, default=1.0, help="seconds between status checks (default 1)")

    p = command("train", cmd_train, "start a training job; prints its id")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", metavar="DIR",
                        help="a folder of images relative to the SERVER's DATA_ROOT (not a local path)")
    source.add_argument("--synthetic", action="store_true", help="train on procedural faces made by the server")
    p.add_argument("--synthetic-images", type=positive_int, metavar="N", help="how many synthetic faces")
    p.add_argument("--preset", help="a named set of training fields (see the server's /docs), e.g. fast or seed")
    p.add_argument("--epochs", type=positive_int)
    p.add_argument("--batch-size", type=positive_int)
    p.add_argument("--ngf", type=positive_int, help="generator width")
    p.add_argument("--ndf", type=positive_int, help="discriminator width")
    p.add_argument("--snapshot-epochs", type=epoch_list, metavar="E,E,...",
                   help="epochs after which the fixed-noise grid is saved, e.g. 1,5,10")
    p.add_argument("--set", type=parse_setting, action="append", metavar="KEY=VALUE",
                   help="any other training field, e.g. --set lr=0.0001 --set g_every=1 (repeatable)")
    p.add_argument("--idempotency-key", metavar="KEY", help="retrying with the same key never starts a second job")
    wait_flags(p)

    p = command("jobs", cmd_jobs, "list jobs, newest first")
    p.add_argument("--json", action="store_true", help="print the server's JSON")

    p = command("status", cmd_status, "show one job")
    p.add_argument("job_id", type=job_id, metavar="ID")
    p.add_argument("--json", action="store_true", help="print the server's JSON")

    p = command("cancel", cmd_cancel, "cancel a queued or running job (it keeps its last checkpoint)")
    p.add_argument("job_id", type=job_id, metavar="ID")

    p = command("resume", cmd_resume, "resume a cancelled or failed job from its last checkpoint, "
                                      "or extend a finished one with a larger --epochs")
    p.add_argument("job_id", type=job_id, metavar="ID")
    p.add_argument("--epochs", type=positive_int, help="train up to this many epochs in all")
    wait_flags(p)

    p = command("pin", cmd_pin, "serve this job's checkpoint from /generate until unpinned")
    p.add_argument("job_id", type=job_id, metavar="ID")
    p.add_argument("--epoch", type=positive_int, help="that epoch's checkpoint (default: the job's newest)")

    command("unpin", cmd_unpin, "go back to serving the newest checkpoint of any job")
    command("model", cmd_model, "show which checkpoint /generate serves")

    p = command("generate", cmd_generate, "write one PNG per seed (or a projected latent's face) into a folder")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--seeds", type=parse_seeds, metavar="SEEDS", help="seeds like 0-63 or 1,5,9-12")
    which.add_argument("--latent", type=latent_id, metavar="ID",
                       help="a latent `project` found: writes its face as latent-ID.png")
    p.add_argument("--outdir", type=Path, required=True, metavar="DIR")
    p.add_argument("--job", type=job_id, metavar="ID", help="a job's checkpoint instead of the served one")
    p.add_argument("--epoch", type=positive_int, help="with --job: that epoch's checkpoint")
    p.add_argument("--truncation", type=float, help="sample noise within this many standard deviations")
    p.add_argument("--edit", type=edit_list, metavar="K:AMOUNT,...",
                   help="move each face along the model's latent directions (see the directions command), "
                        "AMOUNT in standard deviations, e.g. 0:1.5,3:-2")

    p = command("directions", cmd_directions, "list the served model's latent directions (for generate --edit)")
    p.add_argument("--job", type=job_id, metavar="ID", help="a job's checkpoint instead of the served one")
    p.add_argument("--epoch", type=positive_int, help="with --job: that epoch's checkpoint")
    p.add_argument("--json", action="store_true", help="print the server's JSON")

    p = command("nearest", cmd_nearest, "the training images nearest to a generated face, with their "
                                        "distance beside the real-to-real reference")
    p.add_argument("--seed", type=int, default=42, help="the seed, as for generate (default 42)")
    p.add_argument("--i", type=int, default=0, help="the face's index within the seed (default 0)")
    p.add_argument("--k", type=positive_int, default=8, help="how many neighbours (default 8)")
    p.add_argument("--latent", type=latent_id, metavar="ID", help="a latent `project` found, instead of a seed's face")
    p.add_argument("--job", type=job_id, metavar="ID", help="a job's checkpoint instead of the served one")
    p.add_argument("--epoch", type=positive_int, help="with --job: that epoch's checkpoint")
    p.add_argument("--truncation", type=float, help="sample noise within this many standard deviations")
    p.add_argument("--json", action="store_true", help="print the server's JSON")

    p = command("checkpoints", cmd_checkpoints, "list a job's checkpoints with their SWD and copy rate")
    p.add_argument("job_id", type=job_id, metavar="ID")
    p.add_argument("--json", action="store_true", help="print the server's JSON")

    p = command("project", cmd_project, "find the latent whose face best reproduces a picture (PNG, JPEG "
                                        "or WebP); prints its ID and PSNR")
    p.add_argument("image", type=Path, metavar="IMAGE")
    p.add_argument("--out", type=Path, metavar="FILE", help="also save the projected face as this PNG")
    p.add_argument("--job", type=job_id, metavar="ID", help="a job's checkpoint instead of the served one")
    p.add_argument("--epoch", type=positive_int, help="with --job: that epoch's checkpoint")
    p.set_defaults(truncation=None)

    p = command("export", cmd_export, "download a job's generator as a file")
    p.add_argument("job_id", type=job_id, metavar="ID")
    p.add_argument("--format", choices=EXPORT_FORMATS, required=True)
    p.add_argument("--out", type=Path, required=True, metavar="FILE")
    p.add_argument("--epoch", type=positive_int, help="that epoch's checkpoint (default: the newest)")

    p = command("delete", cmd_delete, "delete a finished job and its files")
    p.add_argument("job_id", type=job_id, metavar="ID")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "train" and args.synthetic_images is not None and not args.synthetic:
        build_parser().error("--synthetic-images goes with --synthetic")
    if args.command in ("generate", "directions", "nearest", "project") and args.epoch is not None \
            and args.job is None:
        build_parser().error("--epoch goes with --job")
    if args.command == "nearest" and args.latent is not None and args.truncation is not None:
        build_parser().error("--truncation goes with --seed (a latent is used as it is)")
    if args.command == "generate" and args.latent is not None:
        if args.truncation is not None:
            build_parser().error("--truncation goes with --seeds (a latent is used as it is)")
        args.func = cmd_generate_latent
    try:
        with Api(args.url, args.token, timeout=args.timeout) as api:
            return args.func(api, args)
    except ApiError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `dcgan-faces jobs | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
