"""`python -m model {train,generate,export,publish,synth}`: a thin command line over the library functions."""
from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from model.config import ConfigError, TrainConfig, field_kind
from model.presets import PRESETS, resolve
from model.presets import describe as describe_presets


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad command line in one line, not a usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got {text!r}") from None


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field; unset flags stay None so a resume keeps stored values."""
    group = parser.add_argument_group("training config (defaults are the seed's)")
    group.add_argument("--preset", choices=list(PRESETS), default=None,
                       help="start from a named set of the values below (listed at the end); "
                            "flags given as well override it")
    defaults = TrainConfig()
    for f in dataclasses.fields(TrainConfig):
        kind = field_kind(f.name)
        default = getattr(defaults, f.name)
        shown = ",".join(map(str, default)) if kind is tuple else default
        help_text = f"{f.metadata['help']} (default {shown if shown != '' else 'empty'})"
        if kind is bool:
            group.add_argument(_flag(f.name), action=argparse.BooleanOptionalAction, default=None,
                               help=help_text)
        elif kind is str and f.name != "diffaugment":
            group.add_argument(_flag(f.name), choices=f.metadata["choices"], default=None, help=help_text)
        elif kind is str:  # a comma list, in any order; TrainConfig checks and normalises it
            group.add_argument(_flag(f.name), default=None, metavar="LIST", help=help_text)
        else:
            group.add_argument(_flag(f.name), type=_int_list if kind is tuple else kind, default=None,
                               metavar="N,N,..." if kind is tuple else f.name.upper(), help=help_text)


def config_from_args(args: argparse.Namespace, base: TrainConfig) -> TrainConfig:
    """`base` (a stored run's config, or the seed's) with the flags given. With --preset the
    preset is applied to the seed's config instead, then the flags; a resumed run refuses the
    result if it differs from what the run was started with."""
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)
             if getattr(args, f.name) is not None}
    preset = getattr(args, "preset", None)
    if preset is not None:
        return resolve(preset, given)
    return dataclasses.replace(base, **given)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m model", description="Train a DCGAN on faces and sample from it.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    t = sub.add_parser("train", help="train a new run, or resume/extend an existing one",
                       description="Train into RUN_DIR; running it again on RUN_DIR resumes after the "
                                   "last checkpoint (a larger --epochs extends the job).",
                       epilog=describe_presets(), formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("--data", type=Path, help="image folder (ImageFolder layout or flat); "
                                             "optional when resuming")
    t.add_argument("--out", type=Path, required=True, metavar="RUN_DIR", help="run directory")
    t.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    t.add_argument("--cache-dir", type=Path, help="where decoded datasets are cached "
                                                  "(default $DCGAN_CACHE_DIR or ~/.cache/dcgan-faces)")
    add_config_flags(t)

    g = sub.add_parser("generate", help="render a grid of faces, or one PNG per seed, from a run's checkpoint",
                       description="Grid mode: --seed/--n/--out. Bulk mode: --seeds 0-9,42 --outdir DIR "
                                   "writes DIR/seedNNNN.png per seed (the face /generate?seed=S&n=1 shows).")
    g.add_argument("--run", type=Path, required=True, metavar="RUN_DIR")
    g.add_argument("--epoch", type=int, help="checkpoint epoch (default: newest)")
    g.add_argument("--seed", type=int, default=42)
    g.add_argument("--n", type=int, default=64, help="images (1..1024)")
    g.add_argument("--nrow", type=int, default=8, help="images per row")
    g.add_argument("--best-of", type=int, help="draw this many candidates, keep the n that D likes best")
    g.add_argument("--truncation", type=float, help="redraw noise components beyond +-P (P > 0)")
    g.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    g.add_argument("--out", type=Path, help="grid mode: output file (.png, .jpg or .webp)")
    g.add_argument("--seeds", metavar="LIST", help="bulk mode: seeds and ranges, e.g. 0-9,42 (with --outdir)")
    g.add_argument("--outdir", type=Path, help="bulk mode: folder for one seedNNNN.png per seed")

    e = sub.add_parser("export", help="write a run's generator as safetensors, ONNX or TorchScript",
                       description="Export the generator the service samples with (EMA weights when the "
                                   "run kept them), with its config (nz, ngf, arch, epoch, ...) in the "
                                   "file's metadata; it loads without this project.")
    e.add_argument("--run", type=Path, required=True, metavar="RUN_DIR")
    e.add_argument("--epoch", type=int, help="checkpoint epoch (default: newest)")
    e.add_argument("--format", required=True, choices=["safetensors", "onnx", "torchscript"])
    e.add_argument("--out", type=Path, required=True, help="output file")

    pb = sub.add_parser("publish", help="write a static site of faces: one image per seed, a manifest, index.html",
                        description="Writes OUT/seedNNNNNN.png (or .webp) per seed (the face "
                                    "/generate?seed=S&n=1 shows), OUT/manifest.json and OUT/index.html (a "
                                    "random face per load and a grid), for any static host. Run it again to "
                                    "resume or to add seeds.")
    pb.add_argument("--run", type=Path, required=True, metavar="RUN_DIR")
    pb.add_argument("--epoch", type=int, help="checkpoint epoch (default: newest)")
    pb.add_argument("--seeds", required=True, metavar="LIST", help="seeds and ranges, e.g. 0-99999")
    pb.add_argument("--out", type=Path, required=True, metavar="DIR", help="the site's folder")
    pb.add_argument("--format", choices=["png", "webp"], default="png")
    pb.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])

    s = sub.add_parser("synth", help="write a procedural anime-face dataset (for demos and tests)")
    s.add_argument("--out", type=Path, required=True, help="dataset folder (ImageFolder layout)")
    s.add_argument("--count", type=int, default=2048)
    s.add_argument("--seed", type=int, default=0)
    return p


def _cmd_train(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from model.progress import TrainProgress
    from model.rundir import RunDir
    from model.train import train

    stored = RunDir(args.out).read_config()
    base = TrainConfig.from_dict(stored["train"]) if stored else TrainConfig()
    cfg = config_from_args(args, base)
    if stored is None and args.data is None:
        raise ConfigError(f"{args.out} holds no run yet; give --data DIR to start one")
    bars: dict[str, Any] = {}

    def progress(event: TrainProgress) -> None:
        if event.warning:
            tqdm.write(f"warning: {event.warning}")
        if event.phase == "data" and event.files:
            bar = bars.setdefault("data", tqdm(total=event.files, desc="decoding", unit="img"))
            bar.update(event.decoded - bar.n)
        elif event.phase == "train":
            if "epochs" not in bars:
                if "data" in bars:
                    bars.pop("data").close()
                bars["epochs"] = tqdm(total=event.epochs, desc="epochs", unit="ep", position=0)
                bars["batches"] = tqdm(total=event.batches_per_epoch, desc="batches", unit="b",
                                       position=1, leave=False)
            ep, bt = bars["epochs"], bars["batches"]
            ep.update(event.epochs_done - ep.n)
            if event.epoch_end:
                bt.reset()
            else:
                bt.update(event.batch - bt.n)
            ep.set_postfix(loss_d=event.loss_d, loss_g=event.loss_g, img_s=event.images_per_sec)

    # First Ctrl-C: checkpoint and stop after the current batch. Second: stop at once.
    interrupted = []

    def on_sigint(signum: int, frame: Any) -> None:
        if interrupted:
            raise KeyboardInterrupt
        interrupted.append(signum)
        tqdm.write("stopping after this batch (Ctrl-C again to abort without a checkpoint)")

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        result = train(cfg, args.out, progress, lambda: bool(interrupted), data_dir=args.data,
                       device=args.device, cache_dir=args.cache_dir)
    finally:
        signal.signal(signal.SIGINT, previous)
        for bar in bars.values():
            bar.close()
    if result.data is None:
        print(f"{args.out}: stopped while decoding the images; nothing trained yet")
        return 0
    print(f"{args.out}: {result.epoch}/{cfg.epochs} epochs, {result.step} steps, "
          f"{result.data['images']} images ({result.data['skipped']} skipped); "
          f"checkpoint {result.checkpoint}")
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    from model.checkpoint import SERVING_ENTRIES, load_epoch
    from model.imageio import encode_image, grid_rgb
    from model.provenance import generator_checksum, grid_faces, provenance
    from model.rundir import RunDir
    from model.runtime import resolve_device
    from model.sampling import best_of, generate, networks_from_checkpoint

    if args.seeds is not None or args.outdir is not None:
        return _cmd_generate_faces(args)
    if args.out is None:
        raise ConfigError("give --out FILE for a grid, or --seeds LIST --outdir DIR for one PNG per seed")
    fmt = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".webp": "webp"}.get(args.out.suffix.lower())
    if fmt is None:
        raise ConfigError(f"--out must end in .png, .jpg or .webp, got {args.out.name!r}")
    if not 1 <= args.n <= 1024:
        raise ConfigError("--n must be between 1 and 1024")
    if args.truncation is not None and not args.truncation > 0:
        raise ConfigError("--truncation must be > 0")
    if args.best_of is not None and not args.n <= args.best_of <= 65536:
        raise ConfigError("--best-of must be at least --n and at most 65536")
    if not 0 <= args.seed < 2**32:
        raise ConfigError("--seed must be in 0..4294967295")
    if RunDir(args.run).read_config() is None:
        raise ConfigError(f"{args.run} is not a run directory (no config.json)")
    ref, state = load_epoch(RunDir(args.run).checkpoints, args.epoch, entries=SERVING_ENTRIES)
    g, d = networks_from_checkpoint(state, resolve_device(args.device), with_discriminator=bool(args.best_of))
    if args.best_of:
        images = best_of(g, d, args.seed, args.n, args.best_of, args.truncation)
    else:
        images = generate(g, args.seed, args.n, args.truncation)
    text = provenance(Path(args.run).resolve().name, ref.epoch, ref.name, generator_checksum(state), "grid",
                      seed=args.seed, faces=grid_faces(args.n, args.best_of), n=args.n, nrow=min(args.nrow, args.n),
                      truncation=args.truncation, best_of=args.best_of)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(encode_image(grid_rgb(images, nrow=args.nrow), fmt, text))
    print(f"{args.out}: {args.n} faces, seed {args.seed}, from {ref.path}")
    return 0


def _cmd_generate_faces(args: argparse.Namespace) -> int:
    """Bulk mode: DIR/seedNNNN.png for each seed of --seeds, with a progress bar."""
    from tqdm import tqdm

    from model.checkpoint import SERVING_ENTRIES, load_epoch
    from model.faces import face_name, iter_faces
    from model.provenance import generator_checksum, provenance
    from model.rundir import RunDir
    from model.runtime import resolve_device
    from model.sampling import networks_from_checkpoint
    from model.seeds import SeedsError, parse_seeds

    if args.seeds is None or args.outdir is None:
        raise ConfigError("one PNG per seed needs both --seeds LIST and --outdir DIR")
    if args.out is not None or args.best_of is not None:
        raise ConfigError("--out and --best-of are for a grid; with --seeds each face goes to --outdir")
    if args.truncation is not None and not args.truncation > 0:
        raise ConfigError("--truncation must be > 0")
    try:
        seeds = parse_seeds(args.seeds)
    except SeedsError as exc:
        raise ConfigError(f"--seeds: {exc}") from None
    if RunDir(args.run).read_config() is None:
        raise ConfigError(f"{args.run} is not a run directory (no config.json)")
    ref, state = load_epoch(RunDir(args.run).checkpoints, args.epoch, entries=SERVING_ENTRIES)
    g, _ = networks_from_checkpoint(state, resolve_device(args.device))
    job, checksum = Path(args.run).resolve().name, generator_checksum(state)

    def text(seed: int) -> dict[str, str]:  # what /generate?seed=S&n=1 writes
        return provenance(job, ref.epoch, ref.name, checksum, "grid", seed=seed, faces="0", n=1, nrow=1,
                          truncation=args.truncation, best_of=None)
    args.outdir.mkdir(parents=True, exist_ok=True)
    with tqdm(total=len(seeds), desc="faces", unit="face") as bar:
        for seed, png in iter_faces(g, seeds, args.truncation, text):
            (args.outdir / face_name(seed)).write_bytes(png)
            bar.update()
    print(f"{args.outdir}: {len(seeds)} faces, from {ref.path}")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from model.export import export_run
    from model.rundir import RunDir

    if RunDir(args.run).read_config() is None:
        raise ConfigError(f"{args.run} is not a run directory (no config.json)")
    done = export_run(RunDir(args.run).checkpoints, args.epoch, args.format, args.out,
                      job_id=args.run.resolve().name)
    print(f"{args.out}: {args.format} generator ({done.metadata['weights']} weights), from {done.checkpoint.path}")
    return 0


def _cmd_publish(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from model.publish import publish
    from model.seeds import SeedsError, parse_seeds

    try:
        seeds = parse_seeds(args.seeds)
    except SeedsError as exc:
        raise ConfigError(f"--seeds: {exc}") from None
    with tqdm(total=len(seeds), desc="faces", unit="face") as bar:
        done = publish(args.run, seeds, args.out, args.format, args.epoch, args.device,
                       progress=lambda n, _total: bar.update(n - bar.n))
    print(f"{args.out}: {done.written} faces written, {done.kept} already there, from {done.checkpoint.path}; "
          f"open {args.out / 'index.html'}")
    return 0


def _cmd_synth(args: argparse.Namespace) -> int:
    from model.synth import write_dataset

    if not 1 <= args.count <= 1_000_000:
        raise ConfigError("--count must be between 1 and 1000000")
    n = write_dataset(args.out, args.count, seed=args.seed)
    print(f"{args.out}: {n} synthetic faces")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from model.checkpoint import CheckpointError
    from model.data import DataError
    from model.export import ExportError

    args = build_parser().parse_args(argv)
    commands = {"train": _cmd_train, "generate": _cmd_generate, "export": _cmd_export, "publish": _cmd_publish,
                "synth": _cmd_synth}
    try:
        return commands[args.command](args)
    except (ConfigError, DataError, CheckpointError, ExportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
