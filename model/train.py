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

from model import checkpoint as ckpt
from model import losses, tensorboard
from model.augment import DiffAugment
from model.config import ConfigError, TrainConfig
from model.data import DataError, DecodeStopped, ImageDataset, load_dataset
from model.fsutil import atomic_write_bytes
from model.imageio import encode_png, grid_rgb
from model.networks import networks_for
from model.progress import EPOCH, INTERVAL, Meter, ProgressFn, TrainProgress
from model.rundir import RunDir
from model.runtime import resolve_device, set_determinism, tune_host_allocator
from model.sampling import run_generator, sample_noise
from model.swd import pyramid_descriptors, swd

log = logging.getLogger(__name__)

KEEP_LAST_CHECKPOINTS = 3
# Fraction of free GPU memory the uint8 dataset may take before we stream batches from the host.
GPU_DATASET_SHARE = 0.5

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


class _Batches:
    """The dataset where the step needs it: all of it on the GPU when it fits (an on-device
    gather per batch, no host work at all), otherwise a host gather from the memory map."""

    def __init__(self, images: np.ndarray, device: torch.device) -> None:
        self.n = images.shape[0]
        self.device = device
        host = torch.from_numpy(images)
        self.store = host
        if device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(device)
            if host.numel() < free * GPU_DATASET_SHARE:
                self.store = torch.empty(host.shape, dtype=torch.uint8, device=device)
                for s in range(0, self.n, 4096):  # chunked: never a second full host copy
                    self.store[s:s + 4096].copy_(host[s:s + 4096])

    def get(self, idx: torch.Tensor) -> torch.Tensor:
        """uint8 batch -> float in [-1, 1] on the training device (the seed's Normalize(0.5, 0.5))."""
        if self.store.device == self.device:
            x = self.store.index_select(0, idx.to(self.store.device))
        else:
            x = self.store.index_select(0, idx.cpu()).to(self.device, non_blocking=True)
        x = x.float().mul_(1 / 127.5).sub_(1.0)
        return x.contiguous(memory_format=torch.channels_last)


class Trainer:
    """State and steps of one training run; `train()` below is the public way in."""

    def __init__(self, cfg: TrainConfig, run: RunDir, dataset: ImageDataset, device: torch.device) -> None:
        self.cfg, self.run, self.dataset, self.device = cfg, run, dataset, device
        self.batches = _Batches(dataset.images, device)
        self.steps_per_epoch = len(dataset) // cfg.batch_size
        if self.steps_per_epoch == 0:
            raise DataError(f"{dataset.root} has {len(dataset)} usable images, fewer than one batch "
                            f"of {cfg.batch_size}; lower batch_size or add images")
        cuda = device.type == "cuda"
        self.amp = cuda and cfg.amp
        self.g, self.d = networks_for(cfg)
        # channels_last: measured faster for these convs on CUDA and on the CPU (oneDNN) alike
        self.g.to(device, memory_format=torch.channels_last)
        self.d.to(device, memory_format=torch.channels_last)
        self.g_ema = copy.deepcopy(self.g).eval().requires_grad_(False) if cfg.ema_decay > 0 else None
        adam: dict[str, Any] = {"betas": (cfg.beta1, cfg.beta2)}
        if cuda:
            adam["fused"] = True
        self.opt_g = torch.optim.Adam(self.g.parameters(), lr=cfg.g_lr, **adam)
        self.opt_d = torch.optim.Adam(self.d.parameters(), lr=cfg.d_lr, **adam)
        self.g_step_fn, self.d_fwd = self.g, self.d
        if cfg.compile and cuda:
            self.g_step_fn = torch.compile(self.g)
            # compiled graphs have no double backward, which the gradient penalties need
            if not (cfg.loss == "wgan-gp" or cfg.r1_gamma):
                self.d_fwd = torch.compile(self.d)
        # Random streams, each saved in checkpoints: data order on the CPU, noise on the device.
        self.data_rng = torch.Generator().manual_seed(cfg.seed + 1)
        self.noise_rng = torch.Generator(device=device).manual_seed(cfg.seed + 2)
        # DiffAugment draws from the noise stream: without it, that stream is the seed's.
        self.augment = DiffAugment(cfg.augmentations, self.noise_rng) if cfg.augmentations else None
        self.epoch, self.batch, self.step, self.g_updates = 0, 0, 0, 0
        self._swd_real: list[torch.Tensor] | None = None

    # -- checkpoints --------------------------------------------------------------------------
    def state(self, epoch_rng: torch.Tensor) -> dict[str, Any]:
        return ckpt.cpu_copy({
            "config": self.cfg.to_dict(),
            "epoch": self.epoch, "batch": self.batch, "step": self.step, "g_updates": self.g_updates,
            "generator": self.g.state_dict(), "discriminator": self.d.state_dict(),
            "generator_ema": self.g_ema.state_dict() if self.g_ema is not None else None,
            "optimizer_g": self.opt_g.state_dict(), "optimizer_d": self.opt_d.state_dict(),
            "rng": {"data": epoch_rng, "noise": self.noise_rng.get_state(),
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
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.amp)

    def _augmented(self, x: torch.Tensor) -> torch.Tensor:
        return self.augment(x) if self.augment is not None else x

    def d_step(self, real: torch.Tensor) -> torch.Tensor:
        """Real-only batch, then a fresh fake-only batch, detached; both through DiffAugment when
        it is on. `cfg.loss` on D's logits, plus the WGAN-GP and R1 penalties when asked for."""
        cfg = self.cfg
        with self._autocast():
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
        D's weights get no gradient (not needed)."""
        self.d.requires_grad_(False)
        with self._autocast():
            out = self.d_fwd(self._augmented(self.g_step_fn(self._noise())))
            loss_g = losses.g_loss(self.cfg.loss, out.float())
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        self.d.requires_grad_(True)
        self.g_updates += 1
        if self.g_ema is not None:
            # The usual warm-up, so early snapshots are not dragged towards the random init.
            decay = min(self.cfg.ema_decay, self.g_updates / (self.g_updates + 9))
            with torch.no_grad():
                ema_p, p = list(self.g_ema.parameters()), list(self.g.parameters())
                torch._foreach_lerp_(ema_p, p, 1.0 - decay)
                for b_ema, b in zip(self.g_ema.buffers(), self.g.buffers(), strict=True):
                    b_ema.copy_(b)
        return loss_g.detach()

    # -- snapshots and quality ----------------------------------------------------------------
    def sample_net(self):
        return self.g_ema if self.g_ema is not None else self.g

    def snapshot(self, epoch: int, fixed_noise: torch.Tensor) -> None:
        was_training = self.g.training
        self.g.eval()
        try:
            images = run_generator(self.sample_net(), fixed_noise, self.device)
        finally:
            self.g.train(was_training)
        png = encode_png(grid_rgb(images, nrow=self.cfg.grid_nrow))
        atomic_write_bytes(self.run.snapshot_path(epoch), png)

    def quality(self) -> dict[str, Any]:
        """SWD between a fixed sample of real images and as many generated ones."""
        n = min(self.cfg.swd_images, len(self.dataset))
        if n < 2:
            return {}
        if self._swd_real is None:
            pick = torch.randperm(len(self.dataset), generator=torch.Generator().manual_seed(self.cfg.seed))[:n]
            real = torch.from_numpy(self.dataset.images[np.sort(pick.numpy())]).to(self.device)
            self._swd_real = pyramid_descriptors(real.float().div_(127.5).sub_(1), seed=self.cfg.seed)
        noise = sample_noise((self.cfg.seed + 1) % 2**32, range(n), self.cfg.nz)
        out = {}
        nets = [("swd", self.g)] + ([("swd_ema", self.g_ema)] if self.g_ema is not None else [])
        was_training = self.g.training
        self.g.eval()
        try:
            for key, net in nets:
                fake = run_generator(net, noise, self.device).to(self.device)
                res = swd(self._swd_real, fake, seed=self.cfg.seed)
                out[key] = round(res["swd"], 4)
                out[f"{key}_levels"] = [round(v, 4) for v in res["swd_levels"]]
        finally:
            self.g.train(was_training)
        return out


def real_grid(dataset: ImageDataset, cfg: TrainConfig) -> np.ndarray:
    """A snapshot-sized grid of training images (a fixed pick from the job seed): what the
    fixed-noise grids are trying to look like."""
    n = min(cfg.grid_images, len(dataset))
    pick = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(cfg.seed))[:n]
    images = torch.from_numpy(dataset.images[np.sort(pick.numpy())]).float().div_(127.5).sub_(1)
    return grid_rgb(images, nrow=cfg.grid_nrow)


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
    run = RunDir(run_dir)
    dev = resolve_device(device)
    set_determinism(cfg.deterministic, dev)
    if dev.type == "cpu":
        tune_host_allocator()
    notify = progress or (lambda _event: None)
    stop = should_stop or (lambda: False)

    notify(TrainProgress("data", 0, cfg.epochs))
    try:
        dataset = load_dataset(data_dir, cfg.image_size, cache_dir, max_images=cfg.max_images,
                               progress=lambda done, total: notify(
                                   TrainProgress("data", 0, cfg.epochs, decoded=done, files=total)),
                               should_stop=stop)
    except DecodeStopped:
        notify(TrainProgress("stopped", 0, cfg.epochs))
        return TrainResult(run_dir, 0, 0, True, None, None)
    trainer = Trainer(cfg, run, dataset, dev)
    data_info = dataset.summary()
    if write_config:  # only now: a run folder is never created for data that cannot be used
        run.write_config(cfg, str(data_dir))
    atomic_write_bytes(run.data_path, json.dumps(data_info, indent=1).encode())
    ckpt.clean_checkpoint_folder(run.checkpoints)
    ref, state, problems = ckpt.load_latest(run.checkpoints)
    for p in problems:
        notify(TrainProgress("data", 0, cfg.epochs, warning=f"ignored damaged checkpoint {p}"))
    if state is not None:
        trainer.restore(state)
        del state
    run.truncate_metrics(trainer.step)
    fixed_noise = run.load_or_create_fixed_noise(lambda: sample_noise(cfg.seed, range(cfg.grid_images), cfg.nz))
    if not run.reals_path.exists():
        atomic_write_bytes(run.reals_path, encode_png(real_grid(dataset, cfg)))
    snapshot_epochs = set(cfg.effective_snapshot_epochs())
    writer = ckpt.CheckpointWriter(run.checkpoints, KEEP_LAST_CHECKPOINTS, snapshot_epochs)
    last_path = ref.path if ref else None
    B, spe = cfg.batch_size, trainer.steps_per_epoch
    total_steps = cfg.epochs * spe
    decay = cfg.lr_decay_from < 1.0
    meter = Meter(dev, trainer.step, B)

    def report(means: dict[str, Any], **fields: Any) -> None:
        notify(TrainProgress("train", trainer.epoch, cfg.epochs, trainer.step, trainer.batch, spe,
                             loss_d=means["loss_d"], loss_g=means["loss_g"], d_x=means["d_x"],
                             d_g_z=means["d_g_z"], images_per_sec=means["images_per_sec"], **fields))

    stopped = False
    tb = tensorboard.open_log(run.root)  # a no-op unless tensorboard is installed
    try:
        while trainer.epoch < cfg.epochs:
            epoch_rng = trainer.data_rng.get_state()
            perm = torch.randperm(len(dataset), generator=trainer.data_rng)
            if dev.type == "cuda":
                perm = perm.to(dev, non_blocking=True)
            for i in range(trainer.batch, spe):
                if stop():
                    stopped = True
                    break
                if decay:
                    trainer.set_progress(trainer.step / total_steps)
                if i % cfg.d_every == 0:
                    meter.add_d(trainer.d_step(trainer.batches.get(perm[i * B:(i + 1) * B])))
                if i % cfg.g_every == 0:
                    meter.add_g(trainer.g_step())
                trainer.batch, trainer.step = i + 1, trainer.step + 1
                if trainer.step % cfg.log_every == 0:
                    means, _ = meter.take(INTERVAL, trainer.step)
                    run.append_metrics({"kind": "interval", "epoch": trainer.epoch + 1, "step": trainer.step,
                                        **means})
                    eta = (total_steps - trainer.step) * B / max(means["images_per_sec"], 1e-9)
                    report(means, eta_seconds=round(eta, 1))
            if stopped:
                break
            # -- end of epoch: snapshot, quality, metrics, checkpoint --------------------------
            trainer.epoch, trainer.batch = trainer.epoch + 1, 0
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            epoch_end = time.perf_counter()
            means, seconds = meter.take(EPOCH, trainer.step)
            row = {"kind": "epoch", "epoch": trainer.epoch, "step": trainer.step, **means,
                   "epoch_seconds": round(seconds, 3)}
            if trainer.epoch in snapshot_epochs:
                trainer.snapshot(trainer.epoch, fixed_noise)
                if cfg.swd_images:
                    row.update(trainer.quality())
            last_path = writer.submit(trainer.state(trainer.data_rng.get_state()), trainer.epoch)
            run.append_metrics(row)
            tb.epoch(row, trainer.step, run.snapshot_path(trainer.epoch) if trainer.epoch in snapshot_epochs else None)
            remaining = (cfg.epochs - trainer.epoch) * spe * B / max(means["images_per_sec"], 1e-9)
            report(means, epoch_end=True, eta_seconds=round(remaining, 1), checkpoint=last_path.name,
                   swd=row.get("swd"))
            meter.exclude(time.perf_counter() - epoch_end)
        if stopped:
            last_path = writer.submit(trainer.state(epoch_rng), trainer.epoch, trainer.batch)
        writer.close()
    except BaseException:
        # A failed or interrupted run still leaves its last good checkpoint in place; wait for
        # any in-flight write so that no partial file outlives us, then re-raise.
        try:
            writer.close()
        except BaseException as exc:
            log.warning("checkpoint write failed while stopping: %s", exc)
        raise
    finally:
        tb.close()
    notify(TrainProgress("stopped" if stopped else "done", trainer.epoch, cfg.epochs, trainer.step,
                         trainer.batch, spe, checkpoint=last_path.name if last_path else None))
    return TrainResult(run_dir, trainer.epoch, trainer.step, stopped, last_path, data_info)
