"""The 96x96 generators and discriminators: the seed's DCGAN pair, and a residual pair with the
same input and output shapes (the seed's suggested next step), optionally spectrally normalised."""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils.parametrizations import _SpectralNorm
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from model.config import TrainConfig

SUBPIXEL_FROM = 16  # input side (px) from which _ResizeConv runs as a sub-pixel conv


class _ResizeConv(nn.Sequential):
    """A resize by `scale` then a 3x3 conv (padding 1), computed as the identical sub-pixel
    convolution: a 3x3 conv at the input's size into scale^2 as many channels, then a pixel
    shuffle. After the resize, each output pixel's 3x3 window reads only the input pixels at
    offsets -1, 0, 1 of its own, so the conv's weights fold into one low-resolution kernel per
    output phase. Same parameters and state dict as `Sequential(Upsample, Conv2d)` (old
    checkpoints load), outputs equal to float rounding, and no enlarged copy of the input: 8x less
    CPU time for the 32 -> 96 px step (benchmarks/upsample_bench.py; BENCHMARKS.md, "Upsampling and
    colour"). A x2 one runs as a 4x4 stride-2 transposed conv whose two phases' kernels are tied
    (TIE_X2): each output pixel reads 2x2 input pixels, the cost of the seed's transposed conv,
    2-3x less than the resize and conv as written at 4, 8 and 16 px.

    `linear` of the input channels (the last ones; all with `linear=cin`) are resized by linear
    interpolation (half-pixel centres, as `align_corners=False`) instead of nearest-neighbour: each
    output pixel blends its two nearest input pixels, so a hard edge becomes a ramp rather than a
    step of `scale` pixels, which the conv's per-phase kernels would otherwise repeat as a
    period-`scale` pattern. Those channels count as zero-padded by one pixel before the resize (the
    folded conv's reading); with any of them it always runs folded.

    `learned=True`: every input channel's resize is its own blend of the two, `a * linear + (1 - a)
    * nearest` with `a = sigmoid(BLEND_GAIN * blend[channel])`, `blend` a parameter (zero at the
    start: half and half), so training decides per channel between hard 3-px steps and ramps. The
    blend is linear in the input, so it folds into the same sub-pixel conv: no extra cost."""

    BLEND_GAIN = 8.0  # Adam moves `blend` by about the learning rate a step: a few thousand steps reach 0-1

    def __init__(self, cin: int, cout: int, scale: int, linear: int = 0, learned: bool = False) -> None:
        super().__init__(nn.Upsample(scale_factor=scale, mode="bilinear" if linear == cin else "nearest"),
                         nn.Conv2d(cin, cout, 3, 1, 1, bias=False))
        self.scale, self.linear, self.learned = scale, linear, learned
        # fold[channel, (phase, offset), tap]: how much the conv tap (-1, 0, 1) of an output pixel in
        # this phase (0 .. scale-1) reads of the input pixel at this offset (-1, 0, 1) from its own.
        nearest, blend = _fold(scale, linear=False), _fold(scale, linear=True)
        self.register_buffer("fold", torch.stack([nearest] * (cin - linear) + [blend] * linear), persistent=False)
        if learned:
            self.register_buffer("fold_delta", (blend - nearest)[None], persistent=False)
            self.blend = nn.Parameter(torch.zeros(cin))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self[1].weight  # (cout, cin, 3, 3)
        if self.scale == 2 and not (self.linear or self.learned):
            # x2: the 4x4 stride-2 transposed conv whose kernel is the 3x3 one folded (TIE_X2), the
            # seed's own layer with its two phases' kernels tied: 4 taps an output pixel, as cheap
            # as the transposed conv it replaces; both phases sum the same weights (no checkerboard).
            tied = torch.einsum("ky,lx,abyx->bakl", TIE_X2.to(w), TIE_X2.to(w), w)
            return nn.functional.conv_transpose2d(x, tied, stride=2, padding=1)
        if x.shape[-1] < SUBPIXEL_FROM and not (self.linear or self.learned):  # the plain form is as fast or faster
            return super().forward(x)
        cout, cin, s = w.shape[0], w.shape[1], self.scale
        fold = self.fold
        if self.learned:
            share = torch.sigmoid(self.BLEND_GAIN * self.blend)[:, None, None]
            fold = fold + share * self.fold_delta
        folded = fold @ w @ fold.transpose(1, 2)  # (cout, cin, s*3, s*3): [(phase_y, dy), (phase_x, dx)]
        folded = folded.reshape(cout, cin, s, 3, s, 3).permute(0, 2, 4, 1, 3, 5).reshape(cout * s * s, cin, 3, 3)
        return nn.functional.pixel_shuffle(nn.functional.conv2d(x, folded, padding=1), s)


# A x2 nearest resize then a 3x3 conv (taps -1, 0, 1), per axis, is a 4x4 stride-2 transposed conv
# (padding 1) with kernel taps [w1, w0 + w1, w-1 + w0, w-1]: TIE_X2[k, t] = how much tap t adds to k.
TIE_X2 = torch.tensor([[0.0, 0.0, 1.0], [0.0, 1.0, 1.0], [1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])


def _fold(scale: int, linear: bool) -> torch.Tensor:
    """(scale * 3, 3): row (phase, offset), column tap, as _ResizeConv's `fold`."""
    fold = torch.zeros(scale * 3, 3)
    for phase in range(scale):
        for tap in range(3):
            q = phase + tap - 1  # the read pixel's place in the output, from its block's start
            if linear:  # its centre in input pixels, relative to the block's own input pixel
                src = (q + 0.5) / scale - 0.5
                lo = math.floor(src)
                fold[phase * 3 + lo + 1, tap] += 1.0 - (src - lo)
                if src != lo:
                    fold[phase * 3 + lo + 2, tap] += src - lo
            else:
                fold[phase * 3 + q // scale + 1, tap] = 1.0
    return fold


class _Blur(nn.Module):
    """A fixed [1, 2, 1] x [1, 2, 1] / 16 low-pass on every channel, edges replicated: its response
    is zero at the period-2 frequency and 1/4 at period 3, so a pattern that a stride-2 transposed
    conv stamps on alternate pixels does not leave the layer (the blur after each upsampling
    transposed conv in StyleGAN2, Karras et al. 2020). `box=True`: [1, 1, 1] x [1, 1, 1] / 9,
    whose response is zero at period 3 (and -1/3 at period 2). No parameters, nothing in the
    state dict."""

    def __init__(self, channels: int, box: bool = False) -> None:
        super().__init__()
        taps = torch.tensor([1.0, 1.0, 1.0] if box else [1.0, 2.0, 1.0])
        kernel = (torch.outer(taps, taps) / taps.sum() ** 2).expand(channels, 1, 3, 3).contiguous()
        self.register_buffer("kernel", kernel, persistent=False)  # a fixed shape: ONNX exports it

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded = nn.functional.pad(x, (1, 1, 1, 1), mode="replicate")
        return nn.functional.conv2d(padded, self.kernel.to(x.dtype), groups=self.kernel.shape[0])


class _BalancedDeconv(nn.ConvTranspose2d):
    """The seed's 4x4 stride-2 transposed conv (padding 1) with its four output phases' kernels
    balanced: each phase (an output pixel's row and column parity) reads its own 2x2 of the 4x4
    taps, and a flat input comes out as a period-2 pattern whenever those 2x2 sums differ (the
    checkerboard a transposed conv stamps even on flat regions; Odena et al. 2016). Each phase's
    taps are shifted by the same amount so that every phase sums to the four phases' mean: flat
    in, flat out, whatever the weights. 13 of the 16 degrees of freedom per channel pair are kept
    (the tied resize keeps 9); the same parameters and state dict as nn.ConvTranspose2d.

    Flat in, flat out holds where an output pixel reads all four of its taps; at the map's border
    it reads only the taps over the map (the transposed conv's padding crops, the missing input
    counts as zero), one row of them, whose two phases are not balanced: a row of dots along the
    border. `replicate=True` extends the input by a copy of its edge pixels first (and crops one
    input pixel's worth more), so border pixels read all four taps too: a flat map stays flat up
    to its border. Same weights, 1.08-1.14x the step's CPU time (BENCHMARKS.md, "The border")."""

    def __init__(self, cin: int, cout: int, replicate: bool = False) -> None:
        super().__init__(cin, cout, 4, 2, 1, bias=False)
        self.replicate = replicate
        # The balancing is linear in the 16 taps: one 16x16 matrix, applied as a matmul (the
        # reshape-sum-subtract form it is built from cost a 4 px layer's step twice as much on a CPU).
        # Not persistent: the state dict stays nn.ConvTranspose2d's.
        self.register_buffer("balance", _balance(torch.eye(16).reshape(16, 1, 4, 4)).reshape(16, 16),
                             persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight
        balanced = (w.reshape(-1, 16) @ self.balance).reshape(w.shape)
        if self.replicate:  # 2 (n + 2) + 2 - 2 * 3 = 2n pixels, each read through 2x2 taps
            x = nn.functional.pad(x, (1, 1, 1, 1), mode="replicate")
            return nn.functional.conv_transpose2d(x, balanced, stride=2, padding=3)
        return nn.functional.conv_transpose2d(x, balanced, stride=2, padding=1)


def _balance(w: torch.Tensor) -> torch.Tensor:
    """4x4 stride-2 transposed-conv weights with each output phase's 2x2 taps shifted to the phases'
    mean sum."""
    w6 = w.reshape(*w.shape[:2], 2, 2, 2, 2)  # [half_y, parity_y, half_x, parity_x]: tap = 2 * half + parity
    phase = w6.sum(dim=(2, 4), keepdim=True)  # each phase's taps sum, one per parity pair
    return (w6 - (phase - phase.mean(dim=(3, 5), keepdim=True)) / 4).reshape(w.shape)


def _double(cin: int, cout: int, upsample: str, last: bool = False) -> nn.Module:
    """Twice the side: the seed's 4x4 stride-2 transposed conv (already an even overlap; also what
    `resize-last` keeps), or a nearest-neighbour resize and a 3x3 conv. `resize-last-blur`
    low-passes the `last` one's output (16 -> 32 px): a period-2 pattern there would become, resized
    x3, a period-6 square wave whose third harmonic is the period-2 frequency at 96 px. Blurring
    the 8 and 16 px maps as well cost the faces' coarse layout (BENCHMARKS.md). The `balanced-*`
    options use `_BalancedDeconv`, whose phases cannot stamp that pattern on a flat map, so
    `balanced-last` (`fast`'s) drops the blur; `balanced-replicate-last` pads them by replication."""
    if upsample == "resize":
        return _ResizeConv(cin, cout, 2)
    deconv = (_BalancedDeconv(cin, cout, replicate=upsample == "balanced-replicate-last")
              if upsample.startswith("balanced-")
              else nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False))
    if upsample.endswith("-last-blur") and last:  # the conv stays at index 0: "N.0.weight"
        return nn.Sequential(deconv, _Blur(cout))
    return deconv


def _triple_to_rgb(cin: int, upsample: str) -> nn.Module:
    """32 -> 96 px and to 3 channels: the seed's 5x5 stride-3 transposed conv (its kernel
    overlaps unevenly: the period-3 checkerboard), a 9x9 one (3x3 taps for every output
    pixel), or a x3 nearest resize and a 3x3 conv (`resize`, and `resize-last` and
    `resize-last-blur`, which resize in this step only: the uneven overlap is here, and this step is
    the cheapest to resize), `linear-last-blur`'s x3 linear resize and a 3x3 conv, or
    `mixed-last-blur`'s: half the channels resized linearly, half by nearest neighbour, or
    `learned-last-blur`'s: each channel's own learned blend of the two."""
    if upsample == "learned-last-blur":
        return _ResizeConv(cin, 3, 3, learned=True)
    if upsample in ("linear-last-blur", "mixed-last-blur"):
        return _ResizeConv(cin, 3, 3, linear=cin if upsample == "linear-last-blur" else cin // 2)
    if upsample in ("resize", "resize-last", "resize-last-blur", "balanced-last-blur", "balanced-last",
                    "balanced-replicate-last"):
        return _ResizeConv(cin, 3, 3)
    if upsample == "even":
        return nn.ConvTranspose2d(cin, 3, 9, 3, 3, bias=False)
    return nn.ConvTranspose2d(cin, 3, 5, 3, 1, bias=False)


class Generator(nn.Module):
    """Noise (N, nz, 1, 1) -> images (N, 3, 96, 96) in [-1, 1]."""

    def __init__(self, nz: int = 100, ngf: int = 64, upsample: str = "deconv") -> None:
        super().__init__()
        self.nz = nz
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False),
            nn.BatchNorm2d(ngf * 8),
            nn.ReLU(True),
            # state size. (ngf*8) x 4 x 4
            _double(ngf * 8, ngf * 4, upsample),
            nn.BatchNorm2d(ngf * 4),
            nn.ReLU(True),
            # state size. (ngf*4) x 8 x 8
            _double(ngf * 4, ngf * 2, upsample),
            nn.BatchNorm2d(ngf * 2),
            nn.ReLU(True),
            # state size. (ngf*2) x 16 x 16
            _double(ngf * 2, ngf, upsample, last=True),
            nn.BatchNorm2d(ngf),
            nn.ReLU(True),
            # state size. (ngf) x 32 x 32
            _triple_to_rgb(ngf, upsample),
            nn.Tanh(),
            # state size. 3 x 96 x 96
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z)


class Discriminator(nn.Module):
    """Images (N, 3, 96, 96) -> one real/fake logit per image, shape (N,).

    The seed ends in a Sigmoid; we return the logit and train with BCEWithLogits, which is the
    same objective, numerically safer, and allowed under autocast. `torch.sigmoid` of the output
    is the seed's probability. `batchnorm=False` drops the BatchNorm layers (for spectral
    normalisation and WGAN-GP, whose papers use none in D) and gives the convs a bias instead.
    """

    def __init__(self, ndf: int = 64, batchnorm: bool = True, antialias: bool = False) -> None:
        super().__init__()
        bias = not batchnorm  # a conv followed by BatchNorm needs no bias; one without it does
        self.blur = _Blur(3, box=True) if antialias else nn.Identity()  # outside `main`: same state dict
        self.main = nn.Sequential(
            # input is 3 x 96 x 96
            nn.Conv2d(3, ndf, 5, 3, 1, bias=bias),
            nn.LeakyReLU(0.2, inplace=True),
            # state size. (ndf) x 32 x 32
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=bias),
            *_norm(ndf * 2, batchnorm),
            nn.LeakyReLU(0.2, inplace=True),
            # state size. (ndf*2) x 16 x 16
            nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=bias),
            *_norm(ndf * 4, batchnorm),
            nn.LeakyReLU(0.2, inplace=True),
            # state size. (ndf*4) x 8 x 8
            nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=bias),
            *_norm(ndf * 8, batchnorm),
            nn.LeakyReLU(0.2, inplace=True),
            # state size. (ndf*8) x 4 x 4
            nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=bias),
            # state size. 1 x 1 x 1
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(self.blur(x)).flatten()


def _norm(channels: int, batchnorm: bool) -> list[nn.Module]:
    return [nn.BatchNorm2d(channels)] if batchnorm else []


class _UpBlock(nn.Module):
    """Residual block that doubles the side: BN-ReLU-upsample-conv3x3-BN-ReLU-conv3x3, plus an
    upsample-conv1x1 shortcut (the generator block of the WGAN-GP and SN-GAN papers' ResNets)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.residual = nn.Sequential(
            nn.BatchNorm2d(cin), nn.ReLU(True), nn.Upsample(scale_factor=2),
            nn.Conv2d(cin, cout, 3, 1, 1, bias=False),
            nn.BatchNorm2d(cout), nn.ReLU(True),
            nn.Conv2d(cout, cout, 3, 1, 1, bias=False),
        )
        self.shortcut = nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(cin, cout, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.residual(x) + self.shortcut(x)


class _DownBlock(nn.Module):
    """Residual block that halves the side: LReLU-conv3x3-LReLU-conv3x3-avgpool, plus a
    conv1x1-avgpool shortcut (the discriminator block of the same papers)."""

    def __init__(self, cin: int, cout: int, batchnorm: bool) -> None:
        super().__init__()
        bias = not batchnorm
        self.residual = nn.Sequential(
            nn.LeakyReLU(0.2), nn.Conv2d(cin, cout, 3, 1, 1, bias=bias), *_norm(cout, batchnorm),
            nn.LeakyReLU(0.2), nn.Conv2d(cout, cout, 3, 1, 1, bias=bias), *_norm(cout, batchnorm),
            nn.AvgPool2d(2),
        )
        self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, bias=bias), nn.AvgPool2d(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.residual(x) + self.shortcut(x)


class ResNetGenerator(nn.Module):
    """The seed's generator with its three middle transposed convs replaced by residual up-blocks
    (which resize already): noise (N, nz, 1, 1) -> images (N, 3, 96, 96) in [-1, 1], through the
    same 4, 8, 16, 32 px stages and the seed's last layer (or its resize form)."""

    def __init__(self, nz: int = 100, ngf: int = 64, upsample: str = "deconv") -> None:
        super().__init__()
        self.nz = nz
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False),
            # state size. (ngf*8) x 4 x 4
            _UpBlock(ngf * 8, ngf * 4),
            # state size. (ngf*4) x 8 x 8
            _UpBlock(ngf * 4, ngf * 2),
            # state size. (ngf*2) x 16 x 16
            _UpBlock(ngf * 2, ngf),
            # state size. (ngf) x 32 x 32
            nn.BatchNorm2d(ngf),
            nn.ReLU(True),
            _triple_to_rgb(ngf, upsample),
            nn.Tanh(),
            # state size. 3 x 96 x 96
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z)


class ResNetDiscriminator(nn.Module):
    """The seed's discriminator with its three middle convs replaced by residual down-blocks:
    images (N, 3, 96, 96) -> one logit per image, shape (N,)."""

    def __init__(self, ndf: int = 64, batchnorm: bool = True, antialias: bool = False) -> None:
        super().__init__()
        self.blur = _Blur(3, box=True) if antialias else nn.Identity()  # as the seed's D
        self.main = nn.Sequential(
            # input is 3 x 96 x 96
            nn.Conv2d(3, ndf, 5, 3, 1, bias=not batchnorm),
            # state size. (ndf) x 32 x 32
            _DownBlock(ndf, ndf * 2, batchnorm),
            # state size. (ndf*2) x 16 x 16
            _DownBlock(ndf * 2, ndf * 4, batchnorm),
            # state size. (ndf*4) x 8 x 8
            _DownBlock(ndf * 4, ndf * 8, batchnorm),
            # state size. (ndf*8) x 4 x 4
            nn.LeakyReLU(0.2),
            nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=not batchnorm),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(self.blur(x)).flatten()


def init_weights(module: nn.Module, generator: torch.Generator | None = None) -> None:
    """The DCGAN paper's init (Radford et al. 2015): conv weights N(0, 0.02), BN weight N(1, 0.02),
    BN bias 0, and conv biases (where a layer has one) 0. The seed write-up keeps PyTorch's
    default init instead; we follow the paper."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02, generator=generator)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02, generator=generator)
        nn.init.zeros_(module.bias)


def add_spectral_norm(net: nn.Module, seed: int) -> nn.Module:
    """Spectral normalisation (Miyato et al. 2018) of every conv: its weight is divided by its
    largest singular value, estimated by one power iteration per training forward pass. The
    power iteration's starting vectors come from `seed` (the global CPU RNG is seeded with it:
    callers fork it, as build_networks does)."""
    torch.default_generator.manual_seed(seed)
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            _spectral_norm(m)
    return net


def is_spectral_norm(module: nn.Module) -> bool:
    """Whether `module` is the parametrization add_spectral_norm puts on a weight. In training
    mode each evaluation of the weight runs one power iteration; in eval mode it uses the
    stored estimate. The trainer runs it once per D step (model/train.py)."""
    return isinstance(module, _SpectralNorm)


def build_networks(nz: int, ngf: int, ndf: int, seed: int, arch: str = "seed",
                   spectral_norm: bool = False, d_batchnorm: bool = True, upsample: str = "deconv",
                   d_antialias: bool = False) -> tuple[nn.Module, nn.Module]:
    """Both networks with the paper's init, drawn from a CPU generator seeded by `seed`, so the
    starting weights are the same on every machine and the global RNG is left alone. The
    defaults are the seed's nets."""
    rng = torch.Generator().manual_seed(seed)
    # Layers draw PyTorch's default init from the global RNG as they are made; it is overwritten
    # below, and the global RNG is put back as it was.
    with torch.random.fork_rng(devices=[]):
        if arch == "resnet":
            g, d = ResNetGenerator(nz, ngf, upsample), ResNetDiscriminator(ndf, d_batchnorm, d_antialias)
        else:
            g, d = Generator(nz, ngf, upsample), Discriminator(ndf, d_batchnorm, d_antialias)
        for net in (g, d):
            for m in net.modules():
                init_weights(m, rng)
        if spectral_norm:
            add_spectral_norm(d, int(torch.randint(0, 2**62, (1,), generator=rng)))
    return g, d


def networks_for(cfg: TrainConfig) -> tuple[nn.Module, nn.Module]:
    """The initialised G and D that a training run with `cfg` starts from."""
    return build_networks(cfg.nz, cfg.ngf, cfg.ndf, cfg.seed, cfg.arch, cfg.spectral_norm, cfg.d_batchnorm,
                          cfg.upsample, cfg.d_antialias)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
