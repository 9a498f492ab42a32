"""The training loop: the seed's DCGAN schedule, resumable to the bit, fast on a GPU.

`train(cfg, run_dir, progress, should_stop, data_dir=...)` is the only entry point; the CLI,
the Celery worker and the tests all call it. Calling it again on the same run_dir resumes.
"""
from __future__ import annotations

import copy
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.utils import parametrize

from model import checkpoint as ckpt
from model import losses, tensorboard
from model.augment import DiffAugment
from model.batches import Batches
from model.config import ConfigError, TrainConfig
from model.data import DataError, DecodeStopped, ImageDataset, load_dataset
from model.fsutil import atomic_write_bytes
from model.imageio import encode_png, grid_rgb, to_uint8
from model.nearest import NearestIndex
from model.networks import is_spectral_norm, networks_for
from model.plan import StepPlan, plan_for
from model.progress import EPOCH, INTERVAL, Meter, ProgressFn, TrainProgress
from model.provenance import provenance
from model.quality import QualityProbe, real_sample
from model.rundir import RunDir
from model.runtime import resolve_device, set_determinism, tune_host_allocator
from model.sampling import run_generator, sample_noise

log = logging.getLogger(__name__)

KEEP_LAST_CHECKPOINTS = 3

StopFn = Callable[[], bool]


@dataclass
class TrainResult:
    run_dir: Path
    epoch: int  # completed epochs
    step: int  # batches trained in total
    stopped: bool  # should_stop ended it before cfg.epochs
    checkpoint: Path | None
    data: dict[str, Any] | None  # what the loader made of the folder (None: stopped while decoding)


def prepare_run(cfg: TrainConfig | None, run_dir: Path, data_dir: Path | str | None
                ) -> tuple[TrainConfig, Path, bool]:
    """Check `cfg` against a run_dir's stored config. Returns the config to train with, the data
    folder, and whether config.json must be (re)written once the data has loaded."""
    stored = RunDir(Path(run_dir)).read_config()
    if stored is None:
        if cfg is None or data_dir is None:
            raise ConfigError(f"{run_dir} holds no run to resume; give a config and a data folder")
        return cfg, Path(data_dir).resolve(), True
    stored_cfg = TrainConfig.from_dict(stored["train"])
    cfg = cfg or stored_cfg
    conflicts = cfg.resume_conflicts(stored_cfg)
    if conflicts:
        changes = ", ".join(f"{k}: {getattr(stored_cfg, k)!r} -> {getattr(cfg, k)!r}" for k in conflicts)
        raise ConfigError(f"{run_dir} was started with a different config ({changes}); only a larger "
                          f"epochs may change when resuming; use a new run folder for a new config")
    stored_data = stored.get("data_dir")
    if data_dir is not None and stored_data and Path(data_dir).resolve() != Path(stored_data):
        raise ConfigError(f"{run_dir} was trained on {stored_data}, not {data_dir}; use a new run folder")
    return cfg, Path(data_dir or stored_data).resolve(), cfg.epochs != stored_cfg.epochs


class Trainer:
    """State and steps of one training run, and the loop over its batches (`run`), which
    `train()` below and benchmarks/quality_bench.py both drive."""

    def __init__(self, cfg: TrainConfig, run: RunDir, dataset: ImageDataset, plan: StepPlan) -> None:
        self.cfg, self.rundir, self.dataset, self.plan = cfg, run, dataset, plan
        self.device = device = plan.device
        self.batches = Batches(dataset.images, device, plan.data_on_device, plan.channels_last)
        self.steps_per_epoch = len(dataset) // cfg.batch_size
        if self.steps_per_epoch == 0:
            raise DataError(f"{dataset.root} has {len(dataset)} usable images, fewer than one batch "
                            f"of {cfg.batch_size}; lower batch_size or add images")
        self.g, self.d = networks_for(cfg)
        layout = torch.channels_last if plan.channels_last else torch.contiguous_format
        self.g.to(device, memory_format=layout)
        self.d.to(device, memory_format=layout)
        self.g_ema = copy.deepcopy(self.g).eval().requires_grad_(False) if cfg.ema_decay > 0 else None
        # Spectral norm's power iteration runs once per D step (model/networks.py): its two D
        # calls share one normalised weight, and G's step uses D's current estimate as it is.
        self._power_iterations = [m for m in self.d.modules() if is_spectral_norm(m)]
        adam: dict[str, Any] = {"betas": (cfg.beta1, cfg.beta2)}
        if plan.fused_adam:
            adam["fused"] = True
        self.opt_g = torch.optim.Adam(self.g.parameters(), lr=cfg.g_lr, **adam)
        self.opt_d = torch.optim.Adam(self.d.parameters(), lr=cfg.d_lr, **adam)
        self.g_step_fn, self.d_fwd = self.g, self.d
        if plan.compile_backend:
            self.g_step_fn = torch.compile(self.g, backend=plan.compile_backend)
            # compiled graphs have no double backward, which the gradient penalties need
            if not (cfg.loss == "wgan-gp" or cfg.r1_gamma):
                self.d_fwd = torch.compile(self.d, backend=plan.compile_backend)
        # Random streams, each saved in checkpoints: data order on the CPU, noise on the device.
        self.data_rng = torch.Generator().manual_seed(cfg.seed + 1)
        self.noise_rng = torch.Generator(device=device).manual_seed(cfg.seed + 2)
        # DiffAugment draws from the noise stream: without it, that stream is the seed's.
        self.augment = (DiffAugment(cfg.augmentations, self.noise_rng, nchw=not plan.augment_channels_last)
                        if cfg.augmentations else None)
        self.epoch, self.batch, self.step, self.g_updates = 0, 0, 0, 0
        self.epoch_rng = self.data_rng.get_state()  # data stream as the current epoch began
        self._probe: QualityProbe | None = None  # made at the first quality()
        self._copy_index: NearestIndex | None = None  # built at the first copies(), once per run

    # -- checkpoints --------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """Everything a resume needs, on the CPU: mid-epoch, the data stream as the epoch began
        (its permutation is drawn again), at an epoch's end as the next one begins."""
        return ckpt.cpu_copy({
            "config": self.cfg.to_dict(),
            "epoch": self.epoch, "batch": self.batch, "step": self.step, "g_updates": self.g_updates,
            "generator": self.g.state_dict(), "discriminator": self.d.state_dict(),
            "generator_ema": self.g_ema.state_dict() if self.g_ema is not None else None,
            "optimizer_g": self.opt_g.state_dict(), "optimizer_d": self.opt_d.state_dict(),
            "rng": {"data": self.epoch_rng, "noise": self.noise_rng.get_state(),
                    "noise_device": self.device.type},
            "dataset": {"images": len(self.dataset), "fingerprint": self.dataset.fingerprint},
        })

    def restore(self, state: dict[str, Any]) -> None:
        self.g.load_state_dict(state["generator"])
        self.d.load_state_dict(state["discriminator"])
        if self.g_ema is not None:
            self.g_ema.load_state_dict(state.get("generator_ema") or state["generator"])
        self.opt_g.load_state_dict(state["optimizer_g"])
        self.opt_d.load_state_dict(state["optimizer_d"])
        self.epoch, self.batch, self.step = int(state["epoch"]), int(state["batch"]), int(state["step"])
        self.g_updates = int(state["g_updates"])
        rng = state["rng"]
        self.data_rng.set_state(rng["data"])
        self.epoch_rng = self.data_rng.get_state()
        if rng.get("noise_device") == self.device.type:
            self.noise_rng.set_state(rng["noise"].to("cpu"))
        else:  # resumed on another kind of device: continue with a stream derived from the step
            log.warning("checkpoint was written on %s; noise stream restarts from step %d",
                        rng.get("noise_device"), self.step)
            self.noise_rng.manual_seed(self.cfg.seed + 2 + self.step)
        if state["dataset"]["fingerprint"] != self.dataset.fingerprint:
            log.warning("the data folder changed since the checkpoint was written")

    # -- steps --------------------------------------------------------------------------------
    def set_progress(self, progress: float) -> None:
        """Sets both learning rates for a job `progress` (0..1) of the way through its steps."""
        scale = self.cfg.lr_scale(progress)
        for opt, lr in ((self.opt_g, self.cfg.g_lr), (self.opt_d, self.cfg.d_lr)):
            for group in opt.param_groups:
                group["lr"] = lr * scale

    def _noise(self) -> torch.Tensor:
        return torch.randn(self.cfg.batch_size, self.cfg.nz, 1, 1, device=self.device,
                           generator=self.noise_rng)

    def _autocast(self):
        return torch.autocast(self.plan.autocast_device, dtype=self.plan.autocast or torch.bfloat16,
                              enabled=self.plan.autocast is not None)

    def _augmented(self, x: torch.Tensor) -> torch.Tensor:
        return self.augment(x) if self.augment is not None else x

    def d_step(self, real: torch.Tensor) -> torch.Tensor:
        """Real-only batch, then a fresh fake-only batch, detached; both through DiffAugment when
        it is on. `cfg.loss` on D's logits, plus the WGAN-GP and R1 penalties when asked for."""
        cfg = self.cfg
        with self._autocast(), parametrize.cached():
            real = self._augmented(real)
            if cfg.r1_gamma:
                real.requires_grad_(True)
            out_real = self.d_fwd(real)
            with torch.no_grad():
                fake = self._augmented(self.g_step_fn(self._noise()))
            out_fake = self.d_fwd(fake)
            loss = losses.d_loss(cfg.loss, out_real.float(), out_fake.float())
            if cfg.loss == "wgan-gp":
                eps = torch.rand(real.shape[0], 1, 1, 1, device=self.device, generator=self.noise_rng)
                loss = loss + losses.GP_WEIGHT * losses.gradient_penalty(self.d_fwd, real, fake, eps)
            if cfg.r1_gamma:
                loss = loss + 0.5 * cfg.r1_gamma * losses.r1_penalty(out_real, real)
        self.opt_d.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_d.step()
        return torch.stack([loss.detach(), torch.sigmoid(out_real.detach().float()).mean(),
                            torch.sigmoid(out_fake.detach().float()).mean()])

    def g_step(self) -> torch.Tensor:
        """Fresh noise, fake batch (through DiffAugment when on) scored by D with `cfg.loss`;
        D's weights get no gradient (not needed) and its power iteration does not run."""
        self.d.requires_grad_(False)
        for m in self._power_iterations:
            m.train(False)
        try:
            with self._autocast():
                out = self.d_fwd(self._augmented(self.g_step_fn(self._noise())))
                loss_g = losses.g_loss(self.cfg.loss, out.float())
            self.opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            self.opt_g.step()
        finally:
            self.d.requires_grad_(True)
            for m in self._power_iterations:
                m.train(True)
        self.g_updates += 1
        if self.g_ema is not None:
            # The usual warm-up, so early snapshots are not dragged towards the random init.
            decay = min(self.cfg.ema_decay, self.g_updates / (self.g_updates + 9))
            with torch.no_grad():
                torch._foreach_lerp_(list(self.g_ema.parameters()), list(self.g.parameters()), 1.0 - decay)
                torch._foreach_copy_(list(self.g_ema.buffers()), list(self.g.buffers()))
        return loss_g.detach()

    def train_batch(self, order: torch.Tensor, i: int) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Batch i of the epoch whose permutation is `order`, on the seed's schedule: D when
        i % d_every == 0, then G when i % g_every == 0. Returns (D's stats, G's loss), None for
        a network not trained on this batch; the counters move on."""
        B = self.cfg.batch_size
        d_stats = self.d_step(self.batches.get(order[i * B:(i + 1) * B])) if i % self.cfg.d_every == 0 else None
        g_loss = self.g_step() if i % self.cfg.g_every == 0 else None
        self.batch, self.step = i + 1, self.step + 1
        return d_stats, g_loss

    def run(self, stop: StopFn, lr_progress: Callable[[], float] | None = None,
            after_batch: Callable[[torch.Tensor | None, torch.Tensor | None], None] | None = None,
            after_epoch: Callable[[], None] | None = None) -> bool:
        """Train from where the trainer stands to the end of `cfg.epochs`. `stop()` is asked
        before every batch; True ends the run there (returns True, the state as it is then is
        what `state()` saves). With learning-rate decay on, `lr_progress()` (default: steps done
        over the job's steps) sets both rates before every batch. `after_batch(d_stats, g_loss)`
        follows every batch, `after_epoch()` every epoch's end (epoch counted, batch 0)."""
        cfg, spe = self.cfg, self.steps_per_epoch
        if cfg.lr_decay_from < 1.0:
            total = cfg.epochs * spe
            progress = lr_progress or (lambda: self.step / total)
        else:
            progress = None
        while self.epoch < cfg.epochs:
            self.epoch_rng = self.data_rng.get_state()
            order = self.batches.order(torch.randperm(len(self.dataset), generator=self.data_rng))
            for i in range(self.batch, spe):
                if stop():
                    return True
                if progress is not None:
                    self.set_progress(progress())
                d_stats, g_loss = self.train_batch(order, i)
                if after_batch is not None:
                    after_batch(d_stats, g_loss)
            self.epoch, self.batch = self.epoch + 1, 0
            self.epoch_rng = self.data_rng.get_state()
            if after_epoch is not None:
                after_epoch()
        return False

    # -- snapshots and quality ----------------------------------------------------------------
    def sample_net(self):
        return self.g_ema if self.g_ema is not None else self.g

    def generate(self, noise: torch.Tensor, net: torch.nn.Module | None = None) -> torch.Tensor:
        """Images (on the CPU) of `noise` by `net` (default: the sampling G, EMA when kept),
        G in eval mode meanwhile: what snapshots, quality() and the benchmark all show."""
        was_training = self.g.training
        self.g.eval()
        try:
            return run_generator(net if net is not None else self.sample_net(), noise, self.device)
        finally:
            self.g.train(was_training)

    def snapshot(self, epoch: int, fixed_noise: torch.Tensor) -> torch.Tensor:
        """Write the fixed-noise grid of `epoch`; returns its faces (CPU, in [-1, 1])."""
        text = provenance(self.rundir.root.name, epoch, ckpt.checkpoint_name(epoch), None, "snapshot",
                          seed=self.cfg.seed, faces=f"the run's fixed noise ({len(fixed_noise)} rows)",
                          nrow=self.cfg.grid_nrow, truncation=None)
        faces = self.generate(fixed_noise)
        png = encode_png(grid_rgb(faces, nrow=self.cfg.grid_nrow), text=text)
        atomic_write_bytes(self.rundir.snapshot_path(epoch), png)
        return faces

    def copies(self, faces: torch.Tensor) -> dict[str, Any]:
        """{"copy_rate", "copy_distance"} of `faces` (the snapshot's, in [-1, 1]) against the
        training images, by model/nearest.py's rule. The index over the dataset is built at the
        first call (one pass over the decoded images) and kept for the run."""
        if self._copy_index is None:
            self._copy_index = NearestIndex.build(self.dataset.images)
        rate, limit = self._copy_index.copy_rate(to_uint8(faces).numpy())
        return {"copy_rate": round(rate, 4), "copy_distance": round(limit, 3)}

    def quality(self) -> dict[str, Any]:
        """SWD between a fixed sample of real images and as many generated ones (raw G and, when
        kept, the EMA G), and for the sampled G the checkerboard and colour measures of
        model/spectrum.py."""
        if min(self.cfg.swd_images, len(self.dataset)) < 2:
            return {}
        if self._probe is None:
            self._probe = QualityProbe(self.dataset, self.cfg.swd_images, self.cfg.seed,
                                       (self.cfg.seed + 1) % 2**32, self.cfg.nz, self.device)
        out: dict[str, Any] = {}
        nets = [("swd", self.g)] + ([("swd_ema", self.g_ema)] if self.g_ema is not None else [])
        for key, net in nets:
            fake = self.generate(self._probe.noise, net)
            res = self._probe.swd(fake)
            out[key] = round(res["swd"], 4)
            out[f"{key}_levels"] = [round(v, 4) for v in res["swd_levels"]]
            if net is self.sample_net():
                out.update(self._probe.looks(fake))
        return out


def real_grid(dataset: ImageDataset, cfg: TrainConfig) -> np.ndarray:
    """A snapshot-sized grid of training images (a fixed pick from the job seed): what the
    fixed-noise grids are trying to look like."""
    return grid_rgb(real_sample(dataset, cfg.grid_images, cfg.seed), nrow=cfg.grid_nrow)


def prepare_process(cfg: TrainConfig, plan: StepPlan) -> None:
    """Process-wide settings for training with `cfg` on the plan's device."""
    set_determinism(cfg.deterministic, plan.device)
    if plan.tune_host_heap:
        tune_host_allocator()


def load_training_data(cfg: TrainConfig, data_dir: Path, cache_dir: Path | None, notify: ProgressFn,
                       stop: StopFn) -> ImageDataset | None:
    """The decoded dataset, with decoding progress reported; None if stop() asked to stop."""
    notify(TrainProgress("data", 0, cfg.epochs))
    try:
        return load_dataset(data_dir, cfg.image_size, cache_dir, max_images=cfg.max_images,
                            progress=lambda done, total: notify(
                                TrainProgress("data", 0, cfg.epochs, decoded=done, files=total)),
                            should_stop=stop)
    except DecodeStopped:
        notify(TrainProgress("stopped", 0, cfg.epochs))
        return None


def write_run_files(run: RunDir, cfg: TrainConfig, data_dir: Path, dataset: ImageDataset,
                    write_config: bool) -> dict[str, Any]:
    """config.json (first start, or grown epochs), data.json and reals.png; returns the data
    summary. Called only once the data has loaded: a run folder is never created for data that
    cannot be used."""
    data_info = dataset.summary()
    if write_config:
        run.write_config(cfg, str(data_dir))
    atomic_write_bytes(run.data_path, json.dumps(data_info, indent=1).encode())
    if not run.reals_path.exists():
        atomic_write_bytes(run.reals_path, encode_png(real_grid(dataset, cfg)))
    return data_info


def resume_latest(trainer: Trainer, notify: ProgressFn) -> Path | None:
    """Restore the newest checkpoint that loads (damaged ones reported and skipped); metrics rows
    past it are dropped. Returns its path, None for a fresh start."""
    run, cfg = trainer.rundir, trainer.cfg
    ckpt.clean_checkpoint_folder(run.checkpoints)
    ref, state, problems = ckpt.load_latest(run.checkpoints)
    for p in problems:
        notify(TrainProgress("data", 0, cfg.epochs, warning=f"ignored damaged checkpoint {p}"))
    if state is not None:
        trainer.restore(state)
    run.truncate_metrics(trainer.step)
    return ref.path if ref else None


class _Journal:
    """What train() records as the loop runs: metrics rows and progress reports every
    `log_every` batches; at each epoch's end the snapshot grid, SWD and copy rate, checkpoint,
    metrics row and TensorBoard; a mid-epoch checkpoint when stopped."""

    def __init__(self, trainer: Trainer, notify: ProgressFn, last_checkpoint: Path | None) -> None:
        self.trainer, self.notify, self.last_checkpoint = trainer, notify, last_checkpoint
        cfg, run = trainer.cfg, trainer.rundir
        self.fixed_noise = run.load_or_create_fixed_noise(
            lambda: sample_noise(cfg.seed, range(cfg.grid_images), cfg.nz))
        self.snapshot_epochs = set(cfg.effective_snapshot_epochs())
        # A run extended past its last epoch no longer snapshots that epoch, but its SWD was
        # measured and may be the job's best (the default model serves it): keep every measured one.
        self.writer = ckpt.CheckpointWriter(run.checkpoints, KEEP_LAST_CHECKPOINTS,
                                            self.snapshot_epochs | set(run.measured_epochs()))
        self.meter = Meter(trainer.device, trainer.step, cfg.batch_size)
        self.tb = tensorboard.open_log(run.root)  # a no-op unless tensorboard is installed

    def _report(self, means: dict[str, Any], seconds_left: float, **fields: Any) -> None:
        t = self.trainer
        self.notify(TrainProgress("train", t.epoch, t.cfg.epochs, t.step, t.batch, t.steps_per_epoch,
                                  loss_d=means["loss_d"], loss_g=means["loss_g"], d_x=means["d_x"],
                                  d_g_z=means["d_g_z"], images_per_sec=means["images_per_sec"],
                                  eta_seconds=round(seconds_left, 1), **fields))

    def _seconds_left(self, images_per_sec: float) -> float:
        t = self.trainer
        steps_left = t.cfg.epochs * t.steps_per_epoch - t.step
        return steps_left * t.cfg.batch_size / max(images_per_sec, 1e-9)

    def after_batch(self, d_stats: torch.Tensor | None, g_loss: torch.Tensor | None) -> None:
        t = self.trainer
        if d_stats is not None:
            self.meter.add_d(d_stats)
        if g_loss is not None:
            self.meter.add_g(g_loss)
        if t.step % t.cfg.log_every == 0:
            means, _ = self.meter.take(INTERVAL, t.step)
            t.rundir.append_metrics({"kind": "interval", "epoch": t.epoch + 1, "step": t.step, **means})
            self._report(means, self._seconds_left(means["images_per_sec"]))

    def after_epoch(self) -> None:
        t, epoch = self.trainer, self.trainer.epoch
        means, seconds = self.meter.take(EPOCH, t.step)  # reads the device: the epoch's work is done
        epoch_end = time.perf_counter()
        row = {"kind": "epoch", "epoch": epoch, "step": t.step, **means, "epoch_seconds": round(seconds, 3)}
        snapshot = epoch in self.snapshot_epochs
        if snapshot:
            faces = t.snapshot(epoch, self.fixed_noise)
            if t.cfg.swd_images:
                row.update(t.quality())
                row.update(t.copies(faces))
        self.last_checkpoint = self.writer.submit(t.state(), epoch)
        t.rundir.append_metrics(row)
        self.tb.epoch(row, t.step, t.rundir.snapshot_path(epoch) if snapshot else None)
        self._report(means, self._seconds_left(means["images_per_sec"]), epoch_end=True,
                     checkpoint=self.last_checkpoint.name, swd=row.get("swd"),
                     copy_rate=row.get("copy_rate"))
        self.meter.exclude(time.perf_counter() - epoch_end)

    def finish(self, stopped: bool) -> None:
        t = self.trainer
        if stopped:
            self.last_checkpoint = self.writer.submit(t.state(), t.epoch, t.batch)
        self.writer.close()
        self.tb.close()

    def abandon(self) -> None:
        """A failed or interrupted run still leaves its last good checkpoint in place: wait for
        any write in flight, so that no partial file outlives us."""
        try:
            self.writer.close()
        except BaseException as exc:
            log.warning("checkpoint write failed while stopping: %s", exc)
        self.tb.close()


def train(cfg: TrainConfig | None, run_dir: Path | str, progress: ProgressFn | None = None,
          should_stop: StopFn | None = None, *, data_dir: Path | str | None = None,
          device: str | torch.device = "auto", cache_dir: Path | None = None) -> TrainResult:
    """Train (or resume) the DCGAN described by `cfg` on `data_dir`, writing everything to `run_dir`.

    - progress(TrainProgress) is told about decoding, every `log_every` batches, every epoch's
      end and the finish;
    - should_stop() is polled before every batch; when true a checkpoint is saved and the
      function returns within one batch with `stopped=True`;
    - a second call on the same run_dir resumes after the last saved checkpoint (cfg may be
      None then, or the same config with a larger `epochs`).
    """
    run_dir = Path(run_dir)
    cfg, data_dir, write_config = prepare_run(cfg, run_dir, data_dir)
    plan = plan_for(cfg, resolve_device(device))
    prepare_process(cfg, plan)
    notify = progress or (lambda _event: None)
    stop = should_stop or (lambda: False)
    dataset = load_training_data(cfg, data_dir, cache_dir, notify, stop)
    if dataset is None:
        return TrainResult(run_dir, 0, 0, True, None, None)
    run = RunDir(run_dir)
    trainer = Trainer(cfg, run, dataset, plan)
    data_info = write_run_files(run, cfg, data_dir, dataset, write_config)
    journal = _Journal(trainer, notify, resume_latest(trainer, notify))
    notify(TrainProgress("train", trainer.epoch, cfg.epochs, trainer.step, trainer.batch, trainer.steps_per_epoch,
                         data=data_info))  # decoding is over: what it made of the files; training begins
    try:
        stopped = trainer.run(stop, after_batch=journal.after_batch, after_epoch=journal.after_epoch)
        journal.finish(stopped)
    except BaseException:
        journal.abandon()
        raise
    last = journal.last_checkpoint
    notify(TrainProgress("stopped" if stopped else "done", trainer.epoch, cfg.epochs, trainer.step,
                         trainer.batch, trainer.steps_per_epoch, checkpoint=last.name if last else None))
    return TrainResult(run_dir, trainer.epoch, trainer.step, stopped, last, data_info)
