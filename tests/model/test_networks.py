import pytest
import torch

from model.networks import Discriminator, Generator, build_networks, count_parameters


def test_parameter_counts_match_the_seed():
    assert count_parameters(Generator()) == 3_578_432
    assert count_parameters(Discriminator()) == 2_767_296


def test_generator_maps_noise_to_a_96px_image_in_tanh_range():
    out = Generator()(torch.rand(1, 100, 1, 1))
    assert out.shape == (1, 3, 96, 96)
    assert out.min() >= -1 and out.max() <= 1


def test_discriminator_gives_one_score_per_image():
    assert Discriminator()(torch.rand(5, 3, 96, 96)).shape == (5,)


def test_every_conv_is_bias_free():
    for net in (Generator(), Discriminator()):
        for m in net.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
                assert m.bias is None


def test_init_is_the_papers_and_reproducible():
    g, d = build_networks(100, 64, 64, seed=3)
    g2, _ = build_networks(100, 64, 64, seed=3)
    conv = g.main[3].weight
    assert abs(conv.mean().item()) < 1e-3 and abs(conv.std().item() - 0.02) < 1e-3
    bn = d.main[3]
    assert abs(bn.weight.mean().item() - 1) < 0.01 and torch.all(bn.bias == 0)
    assert all(torch.equal(a, b) for a, b in zip(g.state_dict().values(), g2.state_dict().values(), strict=False))


def largest_singular_values(net):
    return [torch.linalg.matrix_norm(m.weight.detach().flatten(1), ord=2).item()
            for m in net.modules() if isinstance(m, torch.nn.Conv2d)]


def test_spectral_norm_keeps_every_d_layer_at_largest_singular_value_one():
    from model.config import TrainConfig
    from model.networks import networks_for

    for arch in ("seed", "resnet"):
        _, d = networks_for(TrainConfig(spectral_norm=True, arch=arch, ngf=16, ndf=16))
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in d.modules())  # SN replaces BN
        d.train()
        with torch.no_grad():
            for _ in range(30):  # one power iteration per training forward
                d(torch.randn(2, 3, 96, 96))
        sigmas = largest_singular_values(d.eval())
        assert len(sigmas) == (5 if arch == "seed" else 11)
        assert all(abs(s - 1) < 0.02 for s in sigmas), sigmas
    _, plain = networks_for(TrainConfig(ngf=16, ndf=16))
    assert any(abs(s - 1) > 0.05 for s in largest_singular_values(plain))  # without SN: anything


def test_residual_networks_have_the_seeds_shapes():
    from model.networks import ResNetDiscriminator, ResNetGenerator

    out = ResNetGenerator(100, 16)(torch.randn(2, 100, 1, 1))
    assert out.shape == (2, 3, 96, 96) and out.min() >= -1 and out.max() <= 1
    assert ResNetDiscriminator(16)(out).shape == (2,)
    blocks = [m for m in ResNetGenerator(100, 16).modules() if type(m).__name__ == "_UpBlock"]
    assert len(blocks) == 3


def test_options_build_reproducibly_and_leave_the_global_rng_alone():
    from model.config import TrainConfig
    from model.networks import networks_for

    cfg = TrainConfig(arch="resnet", spectral_norm=True, ngf=16, ndf=16, seed=5)
    before = torch.get_rng_state()
    (g1, d1), (g2, d2) = networks_for(cfg), networks_for(cfg)
    assert torch.equal(torch.get_rng_state(), before)
    for a, b in ((g1, g2), (d1, d2)):
        sa, sb = a.state_dict(), b.state_dict()
        assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_wgan_gp_critic_has_no_batchnorm():
    from model.config import TrainConfig
    from model.networks import networks_for

    _, d = networks_for(TrainConfig(loss="wgan-gp", ngf=16, ndf=16))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in d.modules())
    _, d = networks_for(TrainConfig(loss="hinge", ngf=16, ndf=16))
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in d.modules())


@pytest.mark.parametrize("arch", ["seed", "resnet"])
def test_a_resize_generator_has_no_strided_transposed_conv_and_the_seeds_shapes(arch):
    from model.config import TrainConfig
    from model.networks import networks_for

    g, _ = networks_for(TrainConfig(arch=arch, upsample="resize", ngf=16, ndf=16))
    transposed = [m for m in g.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [m.stride for m in transposed] == [(1, 1)]  # only 1x1 noise -> 4x4, which overlaps nothing
    out = g(torch.randn(2, 100, 1, 1))
    assert out.shape == (2, 3, 96, 96) and out.min() >= -1 and out.max() <= 1
    deconv, _ = networks_for(TrainConfig(arch=arch, ngf=16, ndf=16))
    assert [m.stride for m in deconv.modules() if isinstance(m, torch.nn.ConvTranspose2d)][-1] == (3, 3)


def test_the_seeds_generator_keeps_its_parameter_names():
    # checkpoints written before `upsample` existed load into the deconv generator as they are
    from model.networks import Generator
    assert [k for k in Generator(100, 8).state_dict() if k.endswith("weight")] == [
        "main.0.weight", "main.1.weight", "main.3.weight", "main.4.weight", "main.6.weight", "main.7.weight",
        "main.9.weight", "main.10.weight", "main.12.weight"]


@pytest.mark.parametrize("scale,side", [(2, 5), (3, 4), (3, 7), (2, 16), (3, 17)])
def test_resize_conv_is_a_nearest_resize_then_the_conv_and_keeps_their_parameter_names(scale, side):
    # computed as a sub-pixel conv (no enlarged copy of the input), it must stay the layer it
    # replaces: same outputs, same gradients, the state dict of Sequential(Upsample, Conv2d)
    from model.networks import _ResizeConv

    torch.manual_seed(scale * 10 + side)
    layer = _ResizeConv(6, 4, scale)
    plain = torch.nn.Sequential(torch.nn.Upsample(scale_factor=scale), torch.nn.Conv2d(6, 4, 3, 1, 1, bias=False))
    plain.load_state_dict(layer.state_dict())
    assert list(layer.state_dict()) == ["1.weight"]
    x = torch.randn(3, 6, side, side, requires_grad=True)
    x2 = x.detach().clone().requires_grad_(True)
    ours, theirs = layer(x), plain(x2)
    assert ours.shape == theirs.shape == (3, 4, side * scale, side * scale)
    assert torch.allclose(ours, theirs, atol=1e-5)
    grad = torch.randn_like(ours)
    ours.backward(grad)
    theirs.backward(grad)
    assert torch.allclose(x.grad, x2.grad, atol=1e-5)
    assert torch.allclose(layer[1].weight.grad, plain[1].weight.grad, rtol=1e-4, atol=1e-3)  # sums of ~2,600 terms


@pytest.mark.parametrize("scale,side", [(2, 5), (3, 4), (3, 17)])
def test_linear_resize_conv_is_a_linear_resize_of_the_zero_padded_input_then_the_conv(scale, side):
    # the folded form's reading, spelt out: pad by one pixel of zeros, resize linearly
    # (align_corners=False), keep the resized input's pixels plus one for the conv's window, conv
    from model.networks import _ResizeConv

    torch.manual_seed(scale * 10 + side)
    layer = _ResizeConv(6, 4, scale, linear=6)
    x = torch.randn(3, 6, side, side)
    big = torch.nn.functional.interpolate(torch.nn.functional.pad(x, (1, 1, 1, 1)), scale_factor=scale,
                                          mode="bilinear", align_corners=False)
    window = big[..., scale - 1:-(scale - 1), scale - 1:-(scale - 1)]
    theirs = torch.nn.functional.conv2d(window, layer[1].weight)
    ours = layer(x)
    assert ours.shape == theirs.shape == (3, 4, side * scale, side * scale)
    assert torch.allclose(ours, theirs, atol=1e-5)
    assert list(layer.state_dict()) == ["1.weight"]
    # every phase's kernel reads a weighted mean of its input pixels: a flat input stays flat inside
    flat = layer(torch.ones(1, 6, side, side))[..., scale:-scale, scale:-scale]
    assert torch.allclose(flat, flat[..., :1, :1].expand_as(flat), atol=1e-5)


def test_a_mixed_resize_conv_is_the_nearest_one_on_the_first_channels_plus_the_linear_one_on_the_rest():
    from model.config import TrainConfig
    from model.networks import _ResizeConv, networks_for

    torch.manual_seed(3)
    mixed, near, lin = _ResizeConv(6, 4, 3, linear=2), _ResizeConv(4, 4, 3), _ResizeConv(2, 4, 3, linear=2)
    with torch.no_grad():
        near[1].weight.copy_(mixed[1].weight[:, :4])
        lin[1].weight.copy_(mixed[1].weight[:, 4:])
    x = torch.randn(2, 6, 17, 17)
    assert torch.allclose(mixed(x), near(x[:, :4]) + lin(x[:, 4:]), atol=1e-5)
    g, _ = networks_for(TrainConfig(upsample="mixed-last-blur", ngf=16, ndf=16))
    assert [(m.scale, m.linear) for m in g.modules() if isinstance(m, _ResizeConv)] == [(3, 8)]
    assert g(torch.randn(2, 100, 1, 1)).shape == (2, 3, 96, 96)


def test_a_learned_resize_blends_each_channel_between_the_nearest_and_the_linear_resize():
    from model.config import TrainConfig
    from model.networks import _ResizeConv, networks_for

    torch.manual_seed(4)
    learned, near, lin = _ResizeConv(4, 3, 3, learned=True), _ResizeConv(2, 3, 3), _ResizeConv(2, 3, 3, linear=2)
    assert list(learned.state_dict()) == ["blend", "1.weight"]
    with torch.no_grad():
        near[1].weight.copy_(learned[1].weight[:, :2])
        lin[1].weight.copy_(learned[1].weight[:, 2:])
        learned.blend.copy_(torch.tensor([-10.0, -10.0, 10.0, 10.0]))  # two channels nearest, two linear
    x = torch.randn(2, 4, 17, 17)
    assert torch.allclose(learned(x), near(x[:, :2]) + lin(x[:, 2:]), atol=1e-5)
    # in between, each channel's resize is a blend: a flat input still stays flat inside
    with torch.no_grad():
        learned.blend.copy_(torch.tensor([-0.1, 0.0, 0.05, 0.2]))
    flat = learned(torch.ones(1, 4, 17, 17))[..., 3:-3, 3:-3]
    assert torch.allclose(flat, flat[..., :1, :1].expand_as(flat), atol=1e-5)
    learned(x).square().mean().backward()
    assert learned.blend.grad.abs().min() > 0  # training moves every channel's blend
    g, _ = networks_for(TrainConfig(upsample="learned-last-blur", ngf=16, ndf=16))
    assert [(m.scale, m.learned) for m in g.modules() if isinstance(m, _ResizeConv)] == [(3, True)]
    assert g(torch.randn(2, 100, 1, 1)).shape == (2, 3, 96, 96)


def test_a_balanced_transposed_conv_turns_a_flat_input_into_a_flat_output_and_keeps_its_names():
    from model.config import TrainConfig
    from model.networks import _BalancedDeconv, networks_for

    torch.manual_seed(5)
    balanced = _BalancedDeconv(5, 4)
    plain = torch.nn.ConvTranspose2d(5, 4, 4, 2, 1, bias=False)
    plain.load_state_dict(balanced.state_dict())  # the same parameter under the same name
    flat = torch.ones(2, 5, 8, 8)
    inside = lambda y: y[..., 1:-1, 1:-1]  # noqa: E731 (the border pixels read the zero padding)
    assert inside(plain(flat)).std(dim=(-2, -1)).min() > 0.1  # the checkerboard it stamps
    out = inside(balanced(flat))
    assert torch.allclose(out, out[..., :1, :1].expand_as(out), atol=1e-5)
    assert torch.allclose(balanced.balance @ balanced.balance, balanced.balance, atol=1e-6)  # a projection
    # weights already balanced (a nearest resize + 3x3 conv's, tied) are left as they are
    from model.networks import TIE_X2
    tied = torch.einsum("ky,lx,abyx->bakl", TIE_X2, TIE_X2, torch.randn(4, 5, 3, 3))
    with torch.no_grad():
        balanced.weight.copy_(tied)
        plain.weight.copy_(tied)
    x = torch.randn(2, 5, 8, 8)
    assert torch.allclose(balanced(x), plain(x), atol=1e-5)
    g, _ = networks_for(TrainConfig(upsample="balanced-last-blur", ngf=16, ndf=16))
    near, _ = networks_for(TrainConfig(upsample="resize-last-blur", ngf=16, ndf=16))
    assert sum(isinstance(m, _BalancedDeconv) for m in g.modules()) == 3
    assert list(g.state_dict()) == list(near.state_dict())
    assert g(torch.randn(2, 100, 1, 1)).shape == (2, 3, 96, 96)


def test_a_balanced_transposed_conv_still_alternates_along_an_edge_where_the_tied_resize_does_not():
    # Balancing equalises each phase's 2x2 sum; on a row next to a horizontal edge (the image's
    # border included: the zero padding) each phase reads only one row of its taps, whose two x
    # phases are not balanced: the output alternates along the edge (the demo's rows of dots).
    # Balancing every row and every column of taps as well leaves 9 of the 16 weights: exactly the
    # tied nearest resize + 3x3 conv's (BENCHMARKS.md, "The demo job's dots").
    from model.networks import TIE_X2, _balance

    torch.manual_seed(3)
    edge = torch.ones(1, 3, 8, 8)
    edge[..., :4, :] = 0  # flat along x, a step in y

    def along(w: torch.Tensor) -> float:  # the largest step between neighbours along x
        y = torch.nn.functional.conv_transpose2d(edge, w, stride=2, padding=1)[..., 1:-1, 1:-1]
        return (y[..., 1:] - y[..., :-1]).abs().max().item()

    assert along(_balance(torch.randn(3, 2, 4, 4))) > 0.3
    tied = torch.einsum("ky,lx,abyx->bakl", TIE_X2, TIE_X2, torch.randn(2, 3, 3, 3))
    assert along(tied) < 1e-5
    rows = []  # each row's and each column's two phases summing alike
    for i in range(4):
        for axis in (0, 1):
            a = torch.zeros(4, 4, dtype=torch.float64)
            idx = (i, slice(None)) if axis == 0 else (slice(None), i)
            a[idx] = torch.tensor([-1.0, 1.0, -1.0, 1.0], dtype=torch.float64)
            rows.append(a.flatten())
    constraints = torch.stack(rows)
    tied_space = torch.einsum("ky,lx->klyx", TIE_X2, TIE_X2).reshape(16, 9).double()
    assert torch.linalg.matrix_rank(constraints).item() == 7  # 16 - 7 = 9 weights left
    assert torch.allclose(constraints @ tied_space, torch.zeros(8, 9, dtype=torch.float64), atol=1e-12)
    assert torch.linalg.matrix_rank(tied_space).item() == 9  # the tied resize spans all of them


def test_a_replicate_padded_balanced_conv_keeps_a_flat_map_flat_up_to_its_border():
    from model.config import TrainConfig
    from model.networks import _BalancedDeconv, networks_for

    torch.manual_seed(7)
    padded = _BalancedDeconv(5, 4, replicate=True)
    zero = _BalancedDeconv(5, 4)
    zero.load_state_dict(padded.state_dict())
    flat = torch.ones(2, 5, 8, 8)
    assert (zero(flat) - zero(flat)[..., 4:5, 4:5]).abs().max() > 0.05  # the border's row of dots
    out = padded(flat)
    assert out.shape == zero(flat).shape == (2, 4, 16, 16)
    assert torch.allclose(out, out[..., :1, :1].expand_as(out), atol=1e-5)
    x = torch.randn(2, 5, 8, 8)
    inside = lambda y: y[..., 1:-1, 1:-1]  # noqa: E731 (only the border pixels read the padding)
    assert torch.allclose(inside(padded(x)), inside(zero(x)), atol=1e-5)
    g, _ = networks_for(TrainConfig(upsample="balanced-replicate-last", ngf=8, ndf=8))
    plain, _ = networks_for(TrainConfig(upsample="balanced-last", ngf=8, ndf=8))
    assert [m.replicate for m in g.modules() if isinstance(m, _BalancedDeconv)] == [True] * 3
    assert not any(m.replicate for m in plain.modules() if isinstance(m, _BalancedDeconv))
    assert list(g.state_dict()) == list(plain.state_dict())
    assert g(torch.randn(2, 100, 1, 1)).shape == (2, 3, 96, 96)


def test_balanced_last_is_balanced_last_blur_without_the_blur():
    from model.config import TrainConfig
    from model.networks import _BalancedDeconv, _Blur, networks_for

    g, _ = networks_for(TrainConfig(upsample="balanced-last", ngf=8, ndf=8))
    with_blur, _ = networks_for(TrainConfig(upsample="balanced-last-blur", ngf=8, ndf=8))
    assert sum(isinstance(m, _BalancedDeconv) for m in g.modules()) == 3
    assert not any(isinstance(m, _Blur) for m in g.modules())
    assert [v.shape for v in g.state_dict().values()] == [v.shape for v in with_blur.state_dict().values()]
    assert g(torch.randn(2, 100, 1, 1)).shape == (2, 3, 96, 96)


def test_linear_last_blur_is_resize_last_blur_with_a_linear_x3_resize():
    from model.config import TrainConfig
    from model.networks import _ResizeConv, networks_for

    g, _ = networks_for(TrainConfig(upsample="linear-last-blur", ngf=16, ndf=16))
    near, _ = networks_for(TrainConfig(upsample="resize-last-blur", ngf=16, ndf=16))
    assert [type(m) for m in g.modules()] == [type(m) for m in near.modules()]
    assert [(m.scale, m.linear) for m in g.modules() if isinstance(m, _ResizeConv)] == [(3, 16)]
    g.load_state_dict(near.state_dict())  # the same parameters under the same names
    z = torch.randn(2, 100, 1, 1)
    g.eval(), near.eval()
    assert g(z).shape == (2, 3, 96, 96) and not torch.allclose(g(z), near(z))


@pytest.mark.parametrize("arch", ["seed", "resnet"])
def test_resize_last_keeps_the_2x_transposed_convs_and_resizes_only_32_to_96(arch):
    from model.config import TrainConfig
    from model.networks import _ResizeConv, networks_for

    g, _ = networks_for(TrainConfig(arch=arch, upsample="resize-last", ngf=16, ndf=16))
    strides = [m.stride for m in g.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert (3, 3) not in strides and strides.count((2, 2)) == (3 if arch == "seed" else 0)
    assert [m.scale for m in g.modules() if isinstance(m, _ResizeConv)] == [3]
    assert g(torch.randn(2, 100, 1, 1)).shape == (2, 3, 96, 96)


def test_the_blur_removes_a_period_2_pattern_keeps_a_flat_image_and_adds_no_state():
    from model.networks import _Blur

    blur = _Blur(2)
    checker = (torch.arange(8).reshape(1, 8) + torch.arange(8).reshape(8, 1)) % 2  # period 2 both ways
    x = torch.stack([checker.float(), torch.full((8, 8), 0.3)]).unsqueeze(0)  # (1, 2, 8, 8)
    y = blur(x)
    inner = y[0, 0, 1:-1, 1:-1]
    assert torch.allclose(inner, torch.full_like(inner, 0.5))  # alternate pixels averaged away
    assert torch.allclose(y[0, 1], x[0, 1])  # a flat channel passes unchanged, edges included
    assert dict(blur.state_dict()) == {} and list(blur.parameters()) == []


def test_resize_last_blur_is_resize_last_with_a_blur_after_the_16_to_32_transposed_conv():
    from model.config import TrainConfig
    from model.networks import _Blur, _ResizeConv, networks_for

    g, _ = networks_for(TrainConfig(upsample="resize-last-blur", ngf=16, ndf=16))
    plain, _ = networks_for(TrainConfig(upsample="resize-last", ngf=16, ndf=16))
    layers = list(g.main)
    doubles = [i for i, m in enumerate(layers) if type(m) is torch.nn.Sequential]
    assert len(doubles) == 1 and isinstance(layers[doubles[0] + 3], _ResizeConv)  # then BN, ReLU, x3
    conv, blur = layers[doubles[0]]
    assert isinstance(conv, torch.nn.ConvTranspose2d) and conv.stride == (2, 2) and isinstance(blur, _Blur)
    assert conv.out_channels == 16 and blur.kernel.shape == (16, 1, 3, 3)
    assert [m.stride for m in g.modules() if isinstance(m, torch.nn.ConvTranspose2d)] == [(1, 1)] + [(2, 2)] * 3
    assert [m.scale for m in g.modules() if isinstance(m, _ResizeConv)] == [3]
    assert sum(p.numel() for p in g.parameters()) == sum(p.numel() for p in plain.parameters())
    assert g(torch.randn(2, 100, 1, 1)).shape == (2, 3, 96, 96)


@pytest.mark.parametrize("arch", ["seed", "resnet"])
def test_an_antialiased_d_hands_g_no_period_3_pattern_and_keeps_the_state_dict(arch):
    # D's first conv has stride 3 and its gradient is that conv transposed: whatever D's weights,
    # the box on D's input takes the period-3 frequencies out of the gradient G learns from. The
    # parameters and their names are those of the plain D.
    from benchmarks.d_sensitivity import input_gradient
    from model.config import TrainConfig
    from model.networks import networks_for
    from model.spectrum import _peak_bins, power_spectrum

    share = {}
    for antialias in (False, True):
        _, d = networks_for(TrainConfig(arch=arch, ngf=8, ndf=8, spectral_norm=True, d_antialias=antialias))
        images = torch.rand(8, 3, 96, 96, generator=torch.Generator().manual_seed(1)) * 2 - 1
        spectrum = power_spectrum(input_gradient(d.eval(), images))
        at_period_3 = spectrum[[u for u, _ in _peak_bins(96, 3)], [v for _, v in _peak_bins(96, 3)]].mean()
        share[antialias] = float(at_period_3 / spectrum.mean())
        assert list(d.state_dict()) == list(networks_for(TrainConfig(arch=arch, ngf=8, ndf=8,
                                                                     spectral_norm=True))[1].state_dict())
    assert share[False] > 0.05 and share[True] < 0.01 * share[False], share  # what is left: the edges
