import pytest
import torch
import torch.nn.functional as F

from model.losses import GP_WEIGHT, d_loss, g_loss, gradient_penalty, r1_penalty


def test_bce_is_the_seeds_objective_on_logits():
    real, fake = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -3.0])
    expected = (F.binary_cross_entropy(torch.sigmoid(real), torch.ones(2))
                + F.binary_cross_entropy(torch.sigmoid(fake), torch.zeros(2)))
    assert torch.allclose(d_loss("bce", real, fake), expected)
    assert torch.allclose(g_loss("bce", fake), F.binary_cross_entropy(torch.sigmoid(fake), torch.ones(2)))


def test_hinge_penalises_only_inside_the_margin():
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.0])
    # real: max(0, 1 - 2) = 0, max(0, 1 - 0.5) = 0.5 -> mean 0.25; fake: 0, 1 -> mean 0.5
    assert d_loss("hinge", real, fake).item() == pytest.approx(0.75)
    assert g_loss("hinge", fake).item() == pytest.approx(1.0)


def test_wasserstein_critic_loss_is_the_score_gap():
    real, fake = torch.tensor([3.0, 1.0]), torch.tensor([0.0, -2.0])
    assert d_loss("wgan-gp", real, fake).item() == pytest.approx(-1.0 - 2.0)
    assert g_loss("wgan-gp", fake).item() == pytest.approx(1.0)


def linear_critic(w: torch.Tensor):
    """D(x) = <w, x>: its gradient is w at every x."""
    return lambda x: (x * w).flatten(1).sum(1)


def test_gradient_penalty_of_a_linear_critic_is_its_norm_minus_one_squared():
    w = torch.zeros(1, 3, 4, 4)
    w[0, 0, 0, :2] = torch.tensor([3.0, 4.0])  # |w| = 5
    real, fake = torch.randn(6, 3, 4, 4), torch.randn(6, 3, 4, 4)
    eps = torch.rand(6, 1, 1, 1)
    assert gradient_penalty(linear_critic(w), real, fake, eps).item() == pytest.approx((5 - 1) ** 2)
    assert gradient_penalty(linear_critic(w / 5), real, fake, eps).item() == pytest.approx(0, abs=1e-10)
    assert GP_WEIGHT == 10.0  # the paper's lambda


def test_gradient_penalty_is_taken_at_interpolates_and_trains_the_critic():
    # D(x) = a * sum(x^2) / 2 has gradient a * x: the penalty depends on where it is evaluated.
    a = torch.tensor(1.0, requires_grad=True)
    real, fake = torch.ones(1, 1, 1, 2), -torch.ones(1, 1, 1, 2)
    eps = torch.full((1, 1, 1, 1), 0.75)  # x_hat = 0.75 - 0.25 = 0.5 in both pixels
    gp = gradient_penalty(lambda x: a * x.pow(2).flatten(1).sum(1) / 2, real, fake, eps)
    norm = 0.5 * 2 ** 0.5
    assert gp.item() == pytest.approx((norm - 1) ** 2)
    gp.backward()
    assert a.grad.item() == pytest.approx(2 * (norm - 1) * norm)


def test_r1_is_the_squared_gradient_norm_on_real_images():
    w = torch.full((1, 3, 2, 2), 0.5)  # |w|^2 = 12 * 0.25 = 3
    real = torch.randn(4, 3, 2, 2, requires_grad=True)
    out = linear_critic(w)(real)
    assert r1_penalty(out, real).item() == pytest.approx(3.0)
