"""Named sets of TrainConfig values: `--preset NAME` on the command line, `"preset"` in POST /train.

A preset fills in fields; fields given explicitly override it; the resolved TrainConfig is what
a run stores, so a resumed run and the gallery show what really ran, not a name. How the presets
compare is measured by benchmarks/quality_bench.py (BENCHMARKS.md, "Time to quality").
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from model.config import ConfigError, TrainConfig


@dataclass(frozen=True)
class Preset:
    summary: str  # one line for --help and the API docs
    values: Mapping[str, Any] = field(default_factory=dict)


PRESETS: dict[str, Preset] = {
    "seed": Preset("the seed write-up's recipe exactly (the defaults)"),
    "fast": Preset(
        "for small budgets: hinge loss, spectral norm on D, DiffAugment (translation, cutout), "
        "Adam betas (0, 0.99), G on every batch, G half and D a quarter of the seed's width, "
        "batch 32, learning rates decayed to 0 over the job's second half, G's 2x steps "
        "phase-balanced transposed convs and its last step a resize + conv (measured in BENCHMARKS.md, "
        "'Time to quality' and 'Upsampling and colour')",
        {"loss": "hinge", "spectral_norm": True, "diffaugment": "translation,cutout",
         "beta1": 0.0, "beta2": 0.99, "g_every": 1, "ngf": 32, "ndf": 16, "batch_size": 32,
         "lr_decay_from": 0.5, "upsample": "balanced-last"}),
}


def preset_values(name: str) -> dict[str, Any]:
    try:
        return dict(PRESETS[name].values)
    except KeyError:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None


def resolve(preset: str | None, explicit: Mapping[str, Any], base: TrainConfig | None = None
            ) -> TrainConfig:
    """`base` (default: the seed's config) with the preset's values, then the explicit fields."""
    values = (base or TrainConfig()).to_dict()
    if preset is not None:
        values.update(preset_values(preset))
    values.update(explicit)
    return TrainConfig.from_dict(values)


def describe() -> str:
    """Every preset with its values, for `model train --help`."""
    lines = ["presets (--preset NAME; flags given as well override the preset's values):"]
    for name, p in PRESETS.items():
        lines.append(f"  {name}: {p.summary}")
        if p.values:
            lines.append("      " + " ".join(_flag(k, v) for k, v in p.values.items()))
    return "\n".join(lines)


def _flag(name: str, value: Any) -> str:
    flag = name.replace("_", "-")
    if isinstance(value, bool):
        return f"--{flag}" if value else f"--no-{flag}"
    return f"--{flag} {value}"
