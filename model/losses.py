"""The GAN objectives D and G are trained with, and the gradient penalties, all from logits.

- "bce": the seed's (Goodfellow et al. 2014): D minimises BCE with real = 1, fake = 0; G the
  non-saturating BCE of its fakes against 1.
- "hinge" (Lim & Ye 2017; Miyato et al. 2018): D minimises E[max(0, 1 - D(x))] +
  E[max(0, 1 + D(G(z)))]; G minimises -E[D(G(z))].
- "wgan-gp" (Gulrajani et al. 2017): D (the critic) minimises E[D(G(z))] - E[D(x)] plus
  GP_WEIGHT times the gradient penalty on random interpolates; G minimises -E[D(G(z))].

R1 (Mescheder et al. 2018) is separate: gamma/2 * E[|grad_x D(x)|^2] on real images, added to
any of the three D losses.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

# lambda of the WGAN-GP paper, used in all of its experiments.
GP_WEIGHT = 10.0


def d_loss(kind: str, out_real: torch.Tensor, out_fake: torch.Tensor) -> torch.Tensor:
    """D's loss (without penalties) from its logits on a real and a fake batch."""
    if kind == "bce":
        return (F.binary_cross_entropy_with_logits(out_real, torch.ones_like(out_real))
                + F.binary_cross_entropy_with_logits(out_fake, torch.zeros_like(out_fake)))
    if kind == "hinge":
        return F.relu(1.0 - out_real).mean() + F.relu(1.0 + out_fake).mean()
    if kind == "wgan-gp":
        return out_fake.mean() - out_real.mean()
    raise ValueError(f"unknown loss {kind!r}")


def g_loss(kind: str, out_fake: torch.Tensor) -> torch.Tensor:
    """G's loss from D's logits on its fakes."""
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(out_fake, torch.ones_like(out_fake))
    if kind in ("hinge", "wgan-gp"):
        return -out_fake.mean()
    raise ValueError(f"unknown loss {kind!r}")


def gradient_penalty(d: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor,
                     fake: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """E[(|grad D(x_hat)|_2 - 1)^2] at x_hat = eps * real + (1 - eps) * fake, one eps in [0, 1] per
    image (shape N x 1 x 1 x 1). Differentiable in D's weights (create_graph)."""
    x_hat = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    out = d(x_hat).float()
    (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
    return (torch.linalg.vector_norm(grad.float().flatten(1), dim=1) - 1.0).pow(2).mean()


def r1_penalty(out_real: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """E[|grad_x D(x)|^2] over the real batch; `real` must be the (leaf) input that produced
    `out_real`, with requires_grad set before D's forward pass."""
    (grad,) = torch.autograd.grad(out_real.float().sum(), real, create_graph=True)
    return grad.float().flatten(1).pow(2).sum(1).mean()
