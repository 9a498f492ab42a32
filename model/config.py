"""TrainConfig: the one place the seed's hyper-parameters and their bounds are written down.

The CLI flags and the API's request model are both generated from the fields below, so a
default or a limit changes here and nowhere else.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

# Epochs at which the fixed-noise grid is rendered in the seed write-up.
SEED_SNAPSHOT_EPOCHS = (1, 5, 10, 20, 50, 100, 200)


class ConfigError(ValueError):
    """A configuration a user asked for cannot be used; the message says which field and why."""


# Losses (model/losses.py), architectures (model/networks.py) and DiffAugment's transforms
# (model/augment.py), in the order the augmentations are applied.
LOSSES = ("bce", "hinge", "wgan-gp")
ARCHS = ("seed", "resnet")
# How G doubles (and at the end triples) its side (model/networks.py): the seed's transposed
# convolutions; the same with the last one's kernel a multiple of its stride (9x9 stride 3: every
# output pixel gets the same number of taps); or nearest-neighbour resizing then a stride-1 conv.
UPSAMPLES = ("deconv", "even", "resize", "resize-last", "resize-last-blur", "linear-last-blur",
             "mixed-last-blur", "learned-last-blur", "balanced-last-blur", "balanced-last",
             "balanced-replicate-last")
# Arithmetic of the training step (model/plan.py): auto = bf16 autocast on CUDA, fp32 on the CPU.
PRECISIONS = ("auto", "bf16", "fp32")
AUGMENTATIONS = ("color", "translation", "cutout")


def diffaugment_choices() -> tuple[str, ...]:
    """Every value `diffaugment` may take in its written form: "" (off) and each non-empty subset
    of AUGMENTATIONS, comma-joined in application order. Small enough to list (8 values)."""
    out = []
    for mask in range(1 << len(AUGMENTATIONS)):
        out.append(",".join(a for i, a in enumerate(AUGMENTATIONS) if mask >> i & 1))
    return tuple(sorted(out, key=lambda v: (v.count(",") + bool(v), v)))


def canonical_diffaugment(text: str) -> str:
    """A comma list of augmentations in any order ("colour" and "none" are accepted too) as its
    written form: duplicates refused, AUGMENTATIONS order, "" for none."""
    words = [w.strip().lower() for w in text.split(",") if w.strip()]
    words = ["color" if w == "colour" else w for w in words]
    if words in (["none"], ["off"]):
        return ""
    bad = [w for w in words if w not in AUGMENTATIONS]
    if bad or len(set(words)) != len(words):
        raise ConfigError(f"diffaugment must be a comma list of {', '.join(AUGMENTATIONS)} (each at "
                          f"most once) or empty, got {text!r}")
    return ",".join(a for a in AUGMENTATIONS if a in words)


def _field(default: Any, help: str, ge: float | None = None, le: float | None = None,
           gt: float | None = None, choices: tuple[str, ...] | None = None) -> Any:
    meta = {"help": help, "ge": ge, "le": le, "gt": gt, "choices": choices}
    if isinstance(default, (list, tuple)):
        return field(default_factory=lambda: tuple(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class TrainConfig:
    # Side of the square training images; the seed's layer stack produces exactly 96x96.
    image_size: int = _field(96, "side of the square training images (the seed's nets make 96)", ge=96, le=96)
    # nz: length of the noise vector fed to the generator.
    nz: int = _field(100, "noise vector length (nz)", ge=1, le=1024)
    # ngf: generator feature maps in its last hidden layer (8*ngf in its first).
    ngf: int = _field(64, "generator width (ngf)", ge=4, le=256)
    # ndf: discriminator feature maps in its first layer (8*ndf in its last).
    ndf: int = _field(64, "discriminator width (ndf)", ge=4, le=256)
    # Full passes over the dataset.
    epochs: int = _field(200, "training epochs", ge=1, le=100_000)
    # Images per batch; the last incomplete batch of an epoch is dropped, as in the seed.
    batch_size: int = _field(256, "images per batch (last partial batch dropped)", ge=2, le=4096)
    # Adam learning rate, both networks.
    lr: float = _field(2e-4, "Adam learning rate for both networks", gt=0, le=1.0)
    # Separate learning rates (TTUR, Heusel et al. 2017); 0 = use `lr`, as the seed does.
    lr_d: float = _field(0.0, "Adam learning rate of D (0 = lr)", ge=0, le=1.0)
    lr_g: float = _field(0.0, "Adam learning rate of G (0 = lr)", ge=0, le=1.0)
    # Learning-rate decay: both rates stay constant until this fraction of the job's steps, then
    # fall linearly to 0 at its last step (as pix2pix/CycleGAN decay theirs); 1 = constant, the seed.
    lr_decay_from: float = _field(1.0, "fraction of the job after which both learning rates fall "
                                  "linearly to 0 at its end (1 = never)", ge=0, le=1.0)
    # Adam beta1 (momentum), both networks; DCGAN's 0.5 instead of Adam's 0.9.
    beta1: float = _field(0.5, "Adam beta1", ge=0, le=0.9999)
    # Adam beta2, both networks.
    beta2: float = _field(0.999, "Adam beta2", ge=0, le=0.99999)
    # Train the discriminator on every d_every-th batch of an epoch (batch index % d_every == 0).
    d_every: int = _field(1, "train D every this many batches", ge=1, le=1000)
    # Train the generator on every g_every-th batch of an epoch.
    g_every: int = _field(5, "train G every this many batches", ge=1, le=1000)
    # The GAN objective (model/losses.py): the seed's BCE (non-saturating G loss), hinge (Miyato
    # et al. 2018) or WGAN with gradient penalty (Gulrajani et al. 2017, lambda 10).
    loss: str = _field("bce", "GAN loss", choices=LOSSES)
    # Spectral normalisation of every D layer (Miyato et al. 2018), in place of D's BatchNorm.
    spectral_norm: bool = _field(False, "spectral normalisation on D (drops D's BatchNorm)")
    # A fixed 3x3 box blur on D's input. D's first conv has stride 3, and the gradient it hands G
    # is that conv transposed: trained, it carries a period-3 pattern (its peak 47-60x its
    # surroundings); the box's response is zero at period 3, so none reaches G. Measured
    # (BENCHMARKS.md, "The emoji's grid"): G's grid stays, SWD is worse, G's colour noise falls
    # to the data's. In no preset.
    d_antialias: bool = _field(False, "a 3x3 box blur on D's input: no period-3 pattern in the gradient G learns from")
    # Network family: the seed's plain conv stacks, or residual blocks (the seed's own next step)
    # with the same input and output shapes.
    arch: str = _field("seed", "network architecture", choices=ARCHS)
    # G's upsampling: the seed's transposed convolutions (deconv); the same with a 9x9 last kernel
    # (even: its overlap is even, unlike the seed's 5x5 at stride 3); or a nearest-neighbour
    # resize then a stride-1 conv at each stage (resize), which cannot leave the checkerboard
    # that unevenly overlapping transposed kernels do (Odena et al. 2016); or the seed's 2x
    # transposed convs (evenly overlapping) with the resize only in the 32 -> 96 step (resize-last),
    # and the same with a fixed [1, 2, 1] blur after the 16 -> 32 px transposed conv (resize-last-blur),
    # and that with a linear in place of the nearest x3 resize (linear-last-blur), or with half
    # the channels resized linearly and half by nearest neighbour (mixed-last-blur), or with each
    # channel's resize a learned blend of the two (learned-last-blur); or resize-last-blur with its
    # 2x transposed convs' four output phases balanced: flat in, flat out (balanced-last-blur), and
    # that without the blur (balanced-last: balancing already keeps a flat map flat), and that with
    # each balanced step's input padded by replication (balanced-replicate-last: flat up to the border).
    upsample: str = _field("deconv", "generator upsampling: transposed convs (the seed's), the same with "
                           "an evenly overlapping last kernel, nearest resize + conv, resize in the last step "
                           "only, that with a blur after the 16 -> 32 px transposed conv, or that with a "
                           "linear x3 resize of all or half of the channels or a learned per-channel blend, or "
                           "that with phase-balanced 2x transposed convs, with or without the blur, or "
                           "without it and padded by replication",
                           choices=UPSAMPLES)
    # DiffAugment (Zhao et al. 2020): differentiable augmentations applied to every image D sees,
    # real and fake alike; a comma list of color, translation, cutout; empty = off.
    diffaugment: str = _field("", "DiffAugment policy: comma list of color,translation,cutout (empty = off)",
                              choices=diffaugment_choices())
    # R1 penalty (Mescheder et al. 2018): gamma/2 * E|grad D(real)|^2 added to D's loss; 0 = off.
    r1_gamma: float = _field(0.0, "R1 gradient penalty weight gamma (0 = off)", ge=0, le=1e4)
    # Completed epochs (1-based) at which the fixed-noise grid is saved; the last epoch always is.
    snapshot_epochs: tuple[int, ...] = _field(SEED_SNAPSHOT_EPOCHS, "epochs that get a fixed-noise grid")
    # Seeds the weights, the fixed noise, the data order and the training noise.
    seed: int = _field(0, "random seed of the job", ge=0, le=2**32 - 1)
    # Images in the fixed-noise grid.
    grid_images: int = _field(64, "fixed-noise images in each snapshot grid", ge=1, le=256)
    # Images per row of that grid.
    grid_nrow: int = _field(8, "images per row of the snapshot grid", ge=1, le=64)
    # Decay of the exponential moving average of G's weights (with the usual warm-up), which
    # snapshots and sampling use; 0 turns it off. 0.99 measured 11% lower SWD than the raw G
    # (BENCHMARKS.md, "EMA"); not part of the seed.
    ema_decay: float = _field(0.99, "EMA decay of generator weights (0 = off)", ge=0, le=0.99999)
    # Training steps between two metrics lines (losses are read from the device only then).
    log_every: int = _field(50, "batches between metrics lines", ge=1, le=100_000)
    # Images per side (real and generated) in the sliced Wasserstein distance at snapshot epochs; 0 = off.
    swd_images: int = _field(512, "images per side for the SWD quality metric (0 = off)", ge=0, le=16384)
    # The training step's arithmetic: bf16 autocast (weights and optimiser stay fp32) or plain
    # fp32; auto is bf16 on CUDA and fp32 on the CPU, where bf16 is slower. Sampling is fp32.
    precision: str = _field("auto", "training arithmetic: bf16 autocast or fp32 (auto: bf16 on CUDA, "
                            "fp32 on the CPU)", choices=PRECISIONS)
    # torch.compile the two networks on CUDA (they then run in NCHW: see model/plan.py).
    compile: bool = _field(False, "torch.compile the networks on CUDA")
    # Ask PyTorch for deterministic kernels (bit-exact reruns on CUDA, somewhat slower).
    deterministic: bool = _field(False, "deterministic kernels")
    # Use at most this many images of the dataset (0 = all); handy for demos.
    max_images: int = _field(0, "use at most this many images (0 = all)", ge=0, le=10_000_000)

    def __post_init__(self) -> None:
        object.__setattr__(self, "snapshot_epochs", tuple(int(e) for e in self.snapshot_epochs))
        if isinstance(self.diffaugment, str):
            object.__setattr__(self, "diffaugment", canonical_diffaugment(self.diffaugment))
        self.validate()

    # -- checks -----------------------------------------------------------------------------
    def validate(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            meta = f.metadata
            kind = _kind(f)
            if kind is bool:
                if not isinstance(value, bool):
                    raise ConfigError(f"{f.name} must be true or false, got {value!r}")
                continue
            if kind is str:
                if not isinstance(value, str):
                    raise ConfigError(f"{f.name} must be a string, got {value!r}")
                if meta.get("choices") and value not in meta["choices"]:
                    raise ConfigError(f"{f.name} must be one of {', '.join(meta['choices'])}, got {value!r}")
                continue
            if kind in (int, float):
                if isinstance(value, bool) or not isinstance(value, (int, float)) or (
                        kind is int and not isinstance(value, int)):
                    raise ConfigError(f"{f.name} must be a{'n integer' if kind is int else ' number'}, got {value!r}")
                if value != value:
                    raise ConfigError(f"{f.name} must be a number, got NaN")
                if meta.get("ge") is not None and value < meta["ge"]:
                    raise ConfigError(f"{f.name} must be >= {meta['ge']}, got {value}")
                if meta.get("gt") is not None and value <= meta["gt"]:
                    raise ConfigError(f"{f.name} must be > {meta['gt']}, got {value}")
                if meta.get("le") is not None and value > meta["le"]:
                    raise ConfigError(f"{f.name} must be <= {meta['le']}, got {value}")
        if not self.snapshot_epochs or len(self.snapshot_epochs) > 1000:
            raise ConfigError("snapshot_epochs must list between 1 and 1000 epochs")
        if any(e < 1 for e in self.snapshot_epochs):
            raise ConfigError("snapshot_epochs are completed epochs and start at 1")

    # -- derived ----------------------------------------------------------------------------
    @property
    def d_lr(self) -> float:
        return self.lr_d or self.lr

    @property
    def g_lr(self) -> float:
        return self.lr_g or self.lr

    def lr_scale(self, progress: float) -> float:
        """Factor on both learning rates once `progress` (steps done / the job's steps) of the job
        is done: 1 until `lr_decay_from`, then linear to 0 at progress 1 (and 0 beyond)."""
        start = self.lr_decay_from
        if progress <= start or start >= 1.0:
            return 1.0
        return max(0.0, (1.0 - progress) / (1.0 - start))

    @property
    def d_batchnorm(self) -> bool:
        """D keeps the seed's BatchNorm unless spectral norm or WGAN-GP is on: both papers use
        none in D (SN bounds each layer itself; the gradient penalty is per sample)."""
        return not (self.spectral_norm or self.loss == "wgan-gp")

    @property
    def augmentations(self) -> tuple[str, ...]:
        return tuple(a for a in self.diffaugment.split(",") if a)

    def effective_snapshot_epochs(self) -> tuple[int, ...]:
        """Snapshot epochs that will happen: those within `epochs`, plus the last epoch."""
        return tuple(sorted({e for e in self.snapshot_epochs if e <= self.epochs} | {self.epochs}))

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["snapshot_epochs"] = list(self.snapshot_epochs)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Also reads configs stored before a field existed: a missing field takes its default,
        which is always the seed's behaviour."""
        data = _upgrade(data)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"unknown config field(s): {', '.join(unknown)}")
        try:
            return cls(**data)
        except TypeError as exc:
            raise ConfigError(str(exc)) from None

    def resume_conflicts(self, stored: TrainConfig) -> list[str]:
        """Fields that differ from a run's stored config, other than a grown `epochs`."""
        diffs = [f.name for f in dataclasses.fields(self)
                 if f.name != "epochs" and getattr(self, f.name) != getattr(stored, f.name)]
        if self.epochs < stored.epochs:
            diffs.append("epochs")
        return diffs


def _upgrade(data: dict[str, Any]) -> dict[str, Any]:
    """A stored config in today's fields: `amp` (true: bf16 on CUDA, false: fp32) became
    `precision`."""
    if "amp" not in data:
        return data
    data = dict(data)
    amp = data.pop("amp")
    data.setdefault("precision", "auto" if amp is True else "fp32" if amp is False else amp)
    return data


def _kind(f: dataclasses.Field) -> type:
    """The scalar type of a field (its annotation is a string under postponed evaluation)."""
    ann = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    if ann.startswith("tuple"):
        return tuple
    return {"int": int, "float": float, "bool": bool, "str": str}[ann]


def field_kind(name: str) -> type:
    """Public accessor used by the CLI and the API to build their parsers from TrainConfig."""
    return _kind(next(f for f in dataclasses.fields(TrainConfig) if f.name == name))
