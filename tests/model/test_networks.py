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
    assert all(torch.equal(a, b) for a, b in zip(g.state_dict().values(), g2.state_dict().values()))
