"""ganlib.likelihood and the VAE chapter's closed forms: the Gaussian KL, the IWAE bound against an
exactly known log p(x), its rise with k, and the two gradient estimators' variances."""
import math

import pytest
import torch

from ganlib.chapters.vae import (from_ppca, gaussian_kl_monte_carlo, gradient_estimates, linear_gaussian_log_likelihood,
                                 linear_gaussian_vae)
from ganlib.data import dynamic_binarize
from ganlib.likelihood import active_units, binary_test_set, elbo, iwae_log_likelihood, log_importance_weights
from ganlib.losses import gaussian_kl
from ganlib.models import VAE


def _orthogonal_model(d=6, k=2, sigma=0.5, seed=0):
    gen = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(d, k, generator=gen, dtype=torch.float64))
    weight = q * torch.tensor([2.0, 0.7], dtype=torch.float64)[:k]  # orthogonal columns, different lengths
    bias = torch.randn(d, generator=gen, dtype=torch.float64) * 0.3
    return weight, bias, sigma


def _data_from(weight, bias, sigma, n=200, seed=1):
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n, weight.shape[1], generator=gen, dtype=torch.float64)
    return (z @ weight.T + bias + sigma * torch.randn(n, weight.shape[0], generator=gen, dtype=torch.float64)).float()


def test_gaussian_kl_matches_its_monte_carlo_estimate():
    gen = torch.Generator().manual_seed(0)
    mu = torch.randn(4, 3, generator=gen)
    logvar = torch.randn(4, 3, generator=gen)
    closed = gaussian_kl(mu, logvar)
    mc = gaussian_kl_monte_carlo(mu.double(), logvar.double(), samples=200_000, generator=gen)
    assert torch.allclose(mc.float(), closed, atol=0.05, rtol=0.02), (mc, closed)
    # and the closed form is what torch.distributions computes
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    assert torch.allclose(torch.distributions.kl_divergence(q, p).sum(1), closed, atol=1e-5)


def test_iwae_equals_log_p_for_a_linear_gaussian_vae_with_the_exact_posterior():
    weight, bias, sigma = _orthogonal_model()
    vae = linear_gaussian_vae(weight, bias, sigma)
    x = _data_from(weight, bias, sigma)
    exact = linear_gaussian_log_likelihood(weight, bias, sigma, x)
    for k in (1, 7):  # with q = p(z|x) every importance weight is p(x): any k, any draw
        est = iwae_log_likelihood(vae, x, k, torch.Generator().manual_seed(k))
        assert torch.allclose(est, exact, atol=2e-3), (est - exact).abs().max()
    weights = log_importance_weights(vae, x[:5], 50, torch.Generator().manual_seed(3))
    assert weights.shape == (5, 50)
    assert float(weights.detach().std(1).max()) < 2e-3  # constant across samples


def test_iwae_rises_towards_log_p_as_k_grows():
    weight, bias, sigma = _orthogonal_model()
    vae = linear_gaussian_vae(weight, bias, sigma)
    with torch.no_grad():  # a worse encoder: shifted means, too-wide variances
        vae.encoder[-1].bias[:2] += 0.8
        vae.encoder[-1].bias[2:] += 1.5
    x = _data_from(weight, bias, sigma, n=400)
    exact = float(linear_gaussian_log_likelihood(weight, bias, sigma, x).mean())
    bounds = [float(iwae_log_likelihood(vae, x, k, torch.Generator().manual_seed(0)).mean()) for k in (1, 10, 100, 2000)]
    assert all(a < b for a, b in zip(bounds, bounds[1:])), bounds
    assert bounds[0] < exact - 0.5            # the ELBO has a real gap here
    assert bounds[-1] <= exact + 0.01         # a lower bound (in expectation; 400 examples average it)
    assert exact - bounds[-1] < 0.1 * (exact - bounds[0])  # and k = 2000 closes most of the gap


def test_the_ppca_vae_scores_exactly_like_ppca():
    from ganlib.chapters.classic import GaussianPixels

    x = _data_from(*_orthogonal_model(d=12, k=2), n=500).reshape(500, 1, 3, 4)
    ppca = GaussianPixels(rank=2, ridge=0.0).fit(x)
    vae = from_ppca(ppca, image_shape=(1, 3, 4))
    iwae = iwae_log_likelihood(vae, x[:50], 1, torch.Generator().manual_seed(0))
    assert torch.allclose(iwae.float(), ppca.log_prob(x[:50]), atol=1e-3)
    # elbo() estimates E_q[log p(x|z)] with one z and takes the KL in closed form: noisy per draw,
    # but its average over many draws is log p(x): the bound is tight
    repeats = 4000
    terms = elbo(vae, x[:3].repeat(repeats, 1, 1, 1), torch.Generator().manual_seed(0))
    mean_elbo = terms["elbo"].reshape(repeats, 3).mean(0)
    assert torch.allclose(mean_elbo.float(), ppca.log_prob(x[:3]), atol=0.05), (mean_elbo, ppca.log_prob(x[:3]))


def test_linear_gaussian_vae_refuses_a_non_orthogonal_weight():
    with pytest.raises(ValueError, match="orthogonal columns"):
        linear_gaussian_vae(torch.tensor([[1.0, 1.0], [0.0, 1.0], [0.0, 0.0]]), torch.zeros(3), 0.5)


def test_reparameterised_gradient_has_far_lower_variance_than_the_score_function():
    est = gradient_estimates(mu=0.5, sigma=1.0, target=2.0, samples=100_000, generator=torch.Generator().manual_seed(0))
    exact = est["exact"]
    for name in ("reparameterisation", "score_function"):  # both unbiased
        g = est[name]
        assert abs(float(g.mean()) - exact) < 4 * float(g.std()) / math.sqrt(len(g)), name
    # closed forms: Var_rep = 4 sigma^2 = 4; the score function's is far larger
    assert abs(float(est["reparameterisation"].var()) - 4.0) < 0.1
    assert float(est["score_function"].var()) > 10 * float(est["reparameterisation"].var())


def test_iwae_checks_its_inputs():
    vae = VAE((1, 4, 4), latent_dim=2, hidden=(8,))
    with pytest.raises(ValueError, match="k .* integer >= 1"):
        iwae_log_likelihood(vae, torch.zeros(2, 1, 4, 4), 0)
    with pytest.raises(ValueError, match=r"shape \(N, 1, 4, 4\)"):
        iwae_log_likelihood(vae, torch.zeros(2, 16), 5)
    with pytest.raises(TypeError, match="ganlib.models.VAE"):
        iwae_log_likelihood(torch.nn.Linear(2, 2), torch.zeros(2, 2), 5)


def test_iwae_chunks_give_the_same_estimate_as_one_pass():
    torch.manual_seed(0)
    vae = VAE((1, 4, 4), latent_dim=3, hidden=(16,))
    x = dynamic_binarize(torch.rand(6, 1, 4, 4) * 2 - 1, torch.Generator().manual_seed(0))
    # max_rows small forces several chunks over k; the same generator draws the same eps in order
    one = iwae_log_likelihood(vae, x[:1], 64, torch.Generator().manual_seed(5), max_rows=64)
    many = iwae_log_likelihood(vae, x[:1], 64, torch.Generator().manual_seed(5), max_rows=16)
    assert torch.allclose(one, many, atol=1e-9)
    assert vae.training  # restored


def test_dynamic_binarize_draws_pixels_with_the_grey_level_as_probability():
    grey = torch.full((20000, 1, 1, 1), 0.5)  # data value 0.5 -> probability 0.75
    x = dynamic_binarize(grey, torch.Generator().manual_seed(0))
    assert set(x.unique().tolist()) == {-1.0, 1.0}
    assert abs(float((x > 0).float().mean()) - 0.75) < 0.01
    a, b = binary_test_set(torch.zeros(10, 1, 2, 2)), binary_test_set(torch.zeros(10, 1, 2, 2))
    assert torch.equal(a, b)  # one fixed draw


def test_active_units_finds_a_collapsed_unit():
    vae = VAE((1, 4, 4), latent_dim=3, hidden=())
    with torch.no_grad():
        vae.encoder[-1].weight[1].zero_()  # unit 1's mean no longer depends on x
        vae.encoder[-1].weight[0].mul_(10)
    x = torch.rand(500, 1, 4, 4) * 2 - 1
    activity = active_units(vae, x)
    assert activity.shape == (3,)
    assert activity[1] == 0 and activity[0] > 0.01
