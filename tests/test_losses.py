"""ganlib.losses: every loss against its table equation, finiteness at +-100, penalties in closed form."""
import math

import pytest
import torch
from torch import nn

from ganlib.losses import (LOSSES, discriminator_loss, gaussian_kl, generator_loss, gradient_penalty,
                           r1_penalty, reconstruction_nll, vae_loss)

REAL = torch.tensor([2.0, -1.0, 0.5])
FAKE = torch.tensor([-3.0, 0.0, 1.5])

pytestmark = pytest.mark.usefixtures("single_thread")


def sp(t):  # softplus written out from its definition, log(1 + e^t), fine for these small logits
    return math.log1p(math.exp(t))


def mean(xs):
    return sum(xs) / len(xs)


r, f = REAL.tolist(), FAKE.tolist()
EXPECTED_D = {
    "minimax": mean([sp(-t) for t in r]) + mean([sp(t) for t in f]),
    "nonsaturating": mean([sp(-t) for t in r]) + mean([sp(t) for t in f]),
    "lsgan": 0.5 * mean([(t - 1) ** 2 for t in r]) + 0.5 * mean([t ** 2 for t in f]),
    "wasserstein": mean(f) - mean(r),
    "hinge": mean([max(0.0, 1 - t) for t in r]) + mean([max(0.0, 1 + t) for t in f]),
}
EXPECTED_G = {
    "minimax": -mean([sp(t) for t in f]),
    "nonsaturating": mean([sp(-t) for t in f]),
    "lsgan": 0.5 * mean([(t - 1) ** 2 for t in f]),
    "wasserstein": -mean(f),
    "hinge": -mean(f),
}


@pytest.mark.parametrize("name", LOSSES)
def test_losses_match_table(name):
    assert discriminator_loss(name, REAL, FAKE).item() == pytest.approx(EXPECTED_D[name], rel=1e-6)
    assert generator_loss(name, FAKE).item() == pytest.approx(EXPECTED_G[name], rel=1e-6)


def test_minimax_is_the_cross_entropy_of_the_probabilities():
    d_real, d_fake = torch.sigmoid(REAL), torch.sigmoid(FAKE)
    expected = -(torch.log(d_real).mean() + torch.log(1 - d_fake).mean())
    assert discriminator_loss("minimax", REAL, FAKE).item() == pytest.approx(expected.item(), rel=1e-5)
    assert generator_loss("minimax", FAKE).item() == pytest.approx(torch.log(1 - d_fake).mean().item(), rel=1e-5)


@pytest.mark.parametrize("name", LOSSES)
def test_losses_finite_at_extreme_logits(name):
    big = torch.tensor([100.0, -100.0])
    for real in (big, -big):
        for fake in (big, -big):
            assert torch.isfinite(discriminator_loss(name, real, fake))
            assert torch.isfinite(generator_loss(name, fake))
    # and so are the gradients
    x = torch.tensor([100.0, -100.0], requires_grad=True)
    (discriminator_loss(name, x, x) + generator_loss(name, x)).backward()
    assert torch.isfinite(x.grad).all()


def test_naive_log_sigmoid_form_is_not_finite_where_softplus_is():
    # why the losses use softplus: 1 - sigmoid(100) rounds to 0 in float32, so log gives -inf
    assert torch.isinf(torch.log(1 - torch.sigmoid(torch.tensor([100.0])))).all()
    assert torch.isfinite(discriminator_loss("minimax", torch.tensor([1.0]), torch.tensor([100.0])))


def test_unknown_loss_name_lists_valid_names():
    with pytest.raises(ValueError) as err:
        discriminator_loss("wgan", REAL, FAKE)
    for name in LOSSES:
        assert name in str(err.value)
    with pytest.raises(ValueError, match="nonsaturating"):
        generator_loss("bce", FAKE)


def linear_critic(norm: float, dim: int = 5) -> nn.Linear:
    critic = nn.Linear(dim, 1)
    with torch.no_grad():
        w = torch.randn(1, dim, generator=torch.Generator().manual_seed(0))
        critic.weight.copy_(norm * w / w.norm())
    return critic


def test_gradient_penalty_closed_form():
    real = torch.randn(64, 5, generator=torch.Generator().manual_seed(1))
    fake = torch.randn(64, 5, generator=torch.Generator().manual_seed(2))
    gen = torch.Generator().manual_seed(3)
    assert gradient_penalty(linear_critic(1.0), real, fake, generator=gen).item() == pytest.approx(0.0, abs=1e-6)
    assert gradient_penalty(linear_critic(2.0), real, fake, generator=gen).item() == pytest.approx(1.0, rel=1e-5)
    assert r1_penalty(linear_critic(2.0), real).item() == pytest.approx(4.0, rel=1e-5)


def test_gradient_penalty_is_differentiable_and_image_shaped():
    critic = nn.Sequential(nn.Flatten(), nn.Linear(12, 8), nn.Tanh(), nn.Linear(8, 1))
    real, fake = torch.randn(4, 3, 2, 2), torch.randn(4, 3, 2, 2)
    gp = gradient_penalty(critic, real, fake)
    gp.backward()
    # the last bias does not change the input gradient, so only weights get a gradient from it
    assert critic[1].weight.grad is not None and critic[3].weight.grad.abs().sum() > 0


def test_gaussian_kl_closed_form():
    mu = torch.tensor([[0.0, 1.0]])
    logvar = torch.tensor([[0.0, math.log(4.0)]])
    # dim 1: 0; dim 2: 0.5 * (1 + 4 - 1 - log 4)
    assert gaussian_kl(mu, logvar).item() == pytest.approx(0.5 * (4 - math.log(4)), rel=1e-6)
    assert gaussian_kl(torch.zeros(3, 4), torch.zeros(3, 4)).tolist() == [0.0, 0.0, 0.0]


def test_reconstruction_nll_matches_torch_distributions():
    x = torch.tensor([[0.0, 1.0, 0.3]])
    logits = torch.tensor([[-2.0, 3.0, 0.1]])
    bern = -torch.distributions.Bernoulli(logits=logits, validate_args=False).log_prob(x).sum()
    assert reconstruction_nll(x, logits, "bernoulli").item() == pytest.approx(bern.item(), rel=1e-6)
    mean, log_scale = torch.tensor([[0.5, 0.5, 0.5]]), torch.tensor(math.log(0.3))
    gauss = -torch.distributions.Normal(mean, 0.3).log_prob(x).sum()
    assert reconstruction_nll(x, mean, "gaussian", log_scale).item() == pytest.approx(gauss.item(), rel=1e-5)
    with pytest.raises(ValueError, match="bernoulli"):
        reconstruction_nll(x, mean, "poisson")


def test_vae_loss_is_reconstruction_plus_kl():
    x = torch.rand(2, 6)
    logits, mu, logvar = torch.randn(2, 6), torch.randn(2, 3), torch.randn(2, 3)
    per_example = vae_loss(x, logits, mu, logvar, reduction="none")
    assert per_example.shape == (2,)
    expected = reconstruction_nll(x, logits) + gaussian_kl(mu, logvar)
    assert torch.allclose(per_example, expected)
    assert vae_loss(x, logits, mu, logvar).item() == pytest.approx(expected.mean().item(), rel=1e-6)
