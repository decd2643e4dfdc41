"""The math of GANs, checked numerically (chapter book/gan_math.ipynb, module ganlib.chapters.theory)."""
import math

import numpy as np
import pytest
import torch

from ganlib.chapters import theory
from ganlib.data import Gaussian1D

X = np.linspace(-15, 15, 6001)


def gauss(mean, std):
    return theory.gaussian_pdf(X, mean, std)


def test_gaussian_pdf_integrates_to_one_and_matches_scipy():
    from scipy.stats import norm

    assert np.trapezoid(gauss(1.0, 0.7), X) == pytest.approx(1.0, abs=1e-9)
    np.testing.assert_allclose(gauss(1.0, 0.7), norm.pdf(X, 1.0, 0.7), rtol=1e-10, atol=1e-300)
    assert np.trapezoid(theory.mixture_pdf(X, [-2, 2], 0.6), X) == pytest.approx(1.0, abs=1e-9)


def test_optimal_discriminator_formula_cases():
    p = np.array([0.2, 0.0, 0.3, 0.0])
    q = np.array([0.2, 0.5, 0.0, 0.0])
    # equal densities -> 1/2; only p_g -> 0; only p_data -> 1; neither -> 1/2 by convention
    np.testing.assert_allclose(theory.optimal_discriminator(p, q), [0.5, 0.0, 1.0, 0.5])
    # its logit is log p_data - log p_g: linear in x for two Gaussians of equal variance
    d = theory.optimal_discriminator(gauss(0, 1), gauss(2, 1))
    mid = np.abs(X) < 5
    logit = np.log(d[mid]) - np.log1p(-d[mid])
    np.testing.assert_allclose(logit, 2 - 2 * X[mid], atol=1e-8)


def test_optimal_discriminator_maximises_the_value_function():
    # a grid on which D* stays well inside (0, 1) in float64
    x = np.linspace(-4, 9, 2601)
    p_data, p_g = theory.gaussian_pdf(x, 4, 1.25), theory.gaussian_pdf(x, 1, 1)
    d_star = theory.optimal_discriminator(p_data, p_g)
    best = theory.value_function(d_star, p_data, p_g, x)
    logit = np.log(d_star) - np.log1p(-d_star)
    rng = np.random.default_rng(0)
    for _ in range(20):
        # move D's logit by a random smooth bump; V can only go down
        bump = rng.normal() * np.exp(-0.5 * ((x - rng.uniform(-2, 7)) / rng.uniform(0.3, 3)) ** 2)
        d_other = 1 / (1 + np.exp(-(logit + bump)))
        assert theory.value_function(d_other, p_data, p_g, x) < best
    # D = 1/2 everywhere gives -log 4 whatever the densities are
    assert theory.value_function(np.full_like(X, 0.5), gauss(4, 1.25), gauss(1, 1), X) == pytest.approx(
        -theory.LOG4, abs=1e-6)


@pytest.mark.parametrize("m1,s1,m2,s2", [(0, 1, 0, 1), (0, 1, 1, 1), (4, 1.25, 1, 1), (-1, 0.5, 2, 2), (0, 1, 8, 1)])
def test_value_at_optimum_is_minus_log4_plus_twice_jsd(m1, s1, m2, s2):
    p_data, p_g = gauss(m1, s1), gauss(m2, s2)
    jsd = theory.jensen_shannon(p_data, p_g, X)
    v_star = theory.value_at_optimum(p_data, p_g, X)
    assert v_star == pytest.approx(-math.log(4) + 2 * jsd, abs=1e-9)
    # the long way again, through value_function and an explicit D*
    d_star = theory.optimal_discriminator(p_data, p_g)
    mask = (d_star > 0) & (d_star < 1)  # in the far tails D* rounds to exactly 0 or 1 in float64
    assert theory.value_function(d_star[mask], p_data[mask], p_g[mask], X[mask]) == pytest.approx(v_star, abs=1e-6)
    assert -1e-12 <= jsd <= math.log(2) + 1e-12


def test_global_optimum_value_and_jsd_limits():
    p = gauss(4, 1.25)
    assert theory.value_at_optimum(p, p, X) == pytest.approx(-math.log(4), abs=1e-9)
    assert theory.jensen_shannon(p, p, X) == pytest.approx(0.0, abs=1e-12)
    # (nearly) disjoint supports: JSD -> log 2, V(D*, G) -> 0
    far = gauss(-10, 0.5), gauss(10, 0.5)
    assert theory.jensen_shannon(*far, X) == pytest.approx(math.log(2), abs=1e-9)
    assert theory.value_at_optimum(*far, X) == pytest.approx(0.0, abs=1e-8)


def test_divergences_survive_tails_that_underflow():
    # N(0, 0.3^2) underflows to exactly 0 in float64 long before the grid ends; the divergences
    # must treat that as "tiny", not as "no mass", and stay finite and continuous in the shift
    p = gauss(0, 0.3)
    values = [theory.jensen_shannon(p, gauss(mu, 0.3), X) for mu in (0.1, 0.5, 1.0, 2.0, 4.0)]
    assert all(0 < v <= math.log(2) + 1e-12 for v in values) and values == sorted(values)
    closed = 0.5 * (1.0 / 0.3) ** 2  # KL between N(0, s^2) and N(1, s^2) is (1/s)^2 / 2
    assert theory.kl_divergence(p, gauss(1.0, 0.3), X) == pytest.approx(closed, rel=1e-6)


def test_kl_matches_the_gaussian_closed_form_and_jsd_is_symmetric():
    m1, s1, m2, s2 = 0.5, 0.8, -1.0, 1.7
    closed = math.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - 0.5
    assert theory.kl_divergence(gauss(m1, s1), gauss(m2, s2), X) == pytest.approx(closed, rel=1e-6)
    assert theory.jensen_shannon(gauss(m1, s1), gauss(m2, s2), X) == pytest.approx(
        theory.jensen_shannon(gauss(m2, s2), gauss(m1, s1), X), abs=1e-12)
    p = np.where(np.abs(X) < 1, 0.5, 0.0)
    assert theory.kl_divergence(gauss(0, 1), p, X) == math.inf


def test_nonsaturating_gradient_is_that_of_reverse_kl_minus_twice_jsd():
    """With D* frozen at theta0, d/dtheta E_{p_theta}[-log D*] = d/dtheta [KL(p_theta||p_data) - 2 JSD]."""
    p_data = gauss(0.0, 1.0)
    theta0, h = 1.5, 1e-4
    d_star = theory.optimal_discriminator(p_data, gauss(theta0, 1.0))

    def ns_loss_frozen_d(theta):
        return np.trapezoid(gauss(theta, 1.0) * -np.log(d_star), X)

    def effective(theta):
        return theory.nonsaturating_objective(p_data, gauss(theta, 1.0), X)

    grad_frozen = (ns_loss_frozen_d(theta0 + h) - ns_loss_frozen_d(theta0 - h)) / (2 * h)
    grad_effective = (effective(theta0 + h) - effective(theta0 - h)) / (2 * h)
    assert grad_frozen == pytest.approx(grad_effective, rel=1e-4)
    # ... and the minimax loss E_{p_theta}[log(1 - D*)] has the gradient of 2 JSD (envelope theorem)
    def mm_frozen(theta):
        return np.trapezoid(gauss(theta, 1.0) * np.log1p(-d_star), X)

    def two_jsd(theta):
        return 2 * theory.jensen_shannon(p_data, gauss(theta, 1.0), X)

    g1 = (mm_frozen(theta0 + h) - mm_frozen(theta0 - h)) / (2 * h)
    g2 = (two_jsd(theta0 + h) - two_jsd(theta0 - h)) / (2 * h)
    assert g1 == pytest.approx(g2, rel=1e-4)


def test_fit_gaussian_fixed_points():
    # a Gaussian target: every objective recovers it
    target = gauss(1.0, 0.8)
    for objective in ("jsd", "nonsaturating", "forward_kl", "reverse_kl"):
        mean, std = theory.fit_gaussian(target, X, objective)
        assert mean == pytest.approx(1.0, abs=1e-3) and std == pytest.approx(0.8, abs=1e-3), objective
    # a bimodal target a Gaussian cannot represent: JSD and forward KL spread over both modes,
    # the non-saturating game and reverse KL settle on one mode
    bimodal = theory.mixture_pdf(X, [-2.0, 2.0], 0.6)
    for objective in ("jsd", "forward_kl"):
        mean, std = theory.fit_gaussian(bimodal, X, objective)
        assert abs(mean) < 0.05 and std > 1.8, objective
    for objective in ("nonsaturating", "reverse_kl"):
        mean, std = theory.fit_gaussian(bimodal, X, objective)
        assert abs(abs(mean) - 2.0) < 0.1 and std < 0.8, objective


def test_trained_discriminator_matches_the_optimal_discriminator():
    torch.set_num_threads(1)
    real, fake = Gaussian1D(4.0, 1.25), Gaussian1D(1.0, 1.0)
    d_net = theory.train_discriminator(real, fake, steps=800, batch_size=512, seed=0)
    x = np.linspace(-1.0, 7.0, 161)  # where both densities have mass
    d_formula = theory.optimal_discriminator(theory.gaussian_pdf(x, 4.0, 1.25), theory.gaussian_pdf(x, 1.0, 1.0))
    d_trained = theory.discriminator_probability(d_net, x)
    assert np.max(np.abs(d_trained - d_formula)) < 0.05


def test_trained_discriminator_at_the_global_optimum_gives_minus_log4():
    torch.set_num_threads(1)
    p = Gaussian1D(4.0, 1.25)
    d_net = theory.train_discriminator(p, p, steps=300, batch_size=512, seed=1)
    gen = torch.Generator().manual_seed(2)
    value = theory.estimate_value(d_net, p.sample(20000, gen), p.sample(20000, gen))
    assert value == pytest.approx(-math.log(4), abs=0.01)
    d = theory.discriminator_probability(d_net, np.linspace(1.0, 7.0, 61))
    assert np.max(np.abs(d - 0.5)) < 0.05


def test_train_discriminator_is_reproducible_and_accepts_tensors_and_callables():
    torch.set_num_threads(1)
    real = torch.randn(1000, 1) + 2
    fake = lambda n: torch.randn(n, 1)  # noqa: E731 - a frozen "generator"
    runs = []
    for _ in range(2):
        torch.manual_seed(7)  # the callable draws from torch's global RNG: its caller seeds it
        d_net = theory.train_discriminator(real, fake, steps=20, seed=3)
        runs.append(theory.discriminator_probability(d_net, [0.0, 1.0]))
    np.testing.assert_array_equal(runs[0], runs[1])
    # a seeded distribution needs no global seed, and training leaves the global RNG alone
    state = torch.get_rng_state()
    a = theory.train_discriminator(Gaussian1D(), Gaussian1D(0.0, 1.0), steps=5, seed=4)
    b = theory.train_discriminator(Gaussian1D(), Gaussian1D(0.0, 1.0), steps=5, seed=4)
    assert torch.equal(state, torch.get_rng_state())
    np.testing.assert_array_equal(theory.discriminator_probability(a, [1.0]),
                                  theory.discriminator_probability(b, [1.0]))


def test_bad_inputs_name_the_fix():
    with pytest.raises(ValueError, match="same grid"):
        theory.jensen_shannon(gauss(0, 1), gauss(0, 1)[:-1], X)
    with pytest.raises(ValueError, match="sigmoid"):
        theory.value_function(np.full_like(X, 2.0), gauss(0, 1), gauss(0, 1), X)
    with pytest.raises(ValueError, match="increasing"):
        theory.kl_divergence(gauss(0, 1)[::-1], gauss(0, 1), X[::-1])
    with pytest.raises(ValueError, match="non-negative"):
        theory.optimal_discriminator(-gauss(0, 1), gauss(0, 1))
    with pytest.raises(ValueError, match="choose one of"):
        theory.fit_gaussian(gauss(0, 1), X, "wasserstein")
    with pytest.raises(TypeError, match="sample"):
        theory.train_discriminator("data", Gaussian1D(), steps=1)


def test_self_checks_agree_with_the_numerics(capsys):
    from ganlib.chapters import selfcheck

    zero = np.array([0.0])
    d0 = theory.optimal_discriminator(theory.gaussian_pdf(zero, 0, 1), theory.gaussian_pdf(zero, 2, 1))
    assert selfcheck.check_math_optimal_discriminator(float(d0[0]))
    assert not selfcheck.check_math_optimal_discriminator(0.5)
    far = gauss(-10, 0.5), gauss(10, 0.5)
    assert selfcheck.check_math_disjoint_value(theory.value_at_optimum(*far, X))
    assert not selfcheck.check_math_disjoint_value(-math.log(4))
    half = theory.value_function(np.full_like(X, 0.5), gauss(0, 1), gauss(3, 2), X)
    assert selfcheck.check_concepts_value_at_half(half)
    assert not selfcheck.check_concepts_value_at_half(0.0)
    assert selfcheck.check_training_real_samples(5 * 64 * 1000)
    assert not selfcheck.check_training_real_samples(64 * 1000)
    assert "Not yet" in capsys.readouterr().out


# ----------------------------------------------------------------------------- fitting one Gaussian to two modes

MODE_SD = 0.6  # the chapter's mode width


def _jsd_grid_search(p_data, mus, sigmas):
    """The smallest JSD over a (mu, sigma) grid, refined once around the best cell: (jsd, mu, sigma).

    An independent reference for fit_gaussian: only theory.jensen_shannon and a brute-force search.
    """
    def search(ms, ss):
        return min((theory.jensen_shannon(p_data, gauss(m, s), X), m, s) for m in ms for s in ss)

    _, m, s = search(mus, sigmas)
    dm, ds = mus[1] - mus[0], sigmas[1] - sigmas[0]
    return search(np.linspace(m - dm, m + dm, 21), np.linspace(s - ds, s + ds, 21))


@pytest.mark.parametrize("modes", [2.0, 3.0])
def test_jsd_fit_spreads_over_close_modes_but_sits_on_one_of_distant_modes(modes):
    bimodal = theory.mixture_pdf(X, [-modes, modes], MODE_SD)
    mean, std, jsd = theory.fit_gaussian(bimodal, X, "jsd", return_objective=True)
    best, best_mu, best_sigma = _jsd_grid_search(bimodal, np.linspace(-4, 4, 41), np.linspace(0.3, 3.9, 37))
    # the fit is the global optimum: as low as the brute-force search (which it may beat slightly)
    assert jsd == pytest.approx(theory.jensen_shannon(bimodal, gauss(mean, std), X), abs=1e-9)
    assert best - 2e-5 < jsd <= best + 1e-9
    # the best Gaussian centred between the modes, searched over sigma alone
    _, centred_sd, centred_jsd = theory.fit_gaussian(bimodal, X, "jsd", mean=0.0, return_objective=True)
    centred_best = min(theory.jensen_shannon(bimodal, gauss(0.0, s), X) for s in np.linspace(0.5, 5, 901))
    assert centred_best - 1e-5 < centred_jsd <= centred_best + 1e-9
    if modes == 2.0:  # close modes: the optimum is the wide Gaussian centred between them
        assert abs(mean) < 0.05 and std > 1.8 and abs(best_mu) < 0.05
        assert jsd == pytest.approx(centred_jsd, abs=1e-6) and std == pytest.approx(centred_sd, abs=1e-3)
    else:  # distant modes: the optimum sits on one mode and beats the wide fit clearly
        assert abs(abs(mean) - modes) < 0.15 and std < 1.0 and abs(abs(best_mu) - modes) < 0.25
        assert centred_jsd > jsd + 0.02
        # closed form for modes that (almost) do not overlap: q = one mode exactly gives
        # m = 3/4 of that mode + 1/4 of the other, so JSD = (1/2)(1/2 log(4/3) + log(4/3)) = 3/4 log(4/3)
        assert jsd == pytest.approx(0.75 * math.log(4 / 3), abs=1e-4)
        # the values reported in the review (issue 12), which the brute-force search reproduces
        assert best == pytest.approx(0.216, abs=2e-3) and centred_best == pytest.approx(0.255, abs=2e-3)


@pytest.mark.parametrize("sd", [0.05, 0.02])
def test_fit_gaussian_is_finite_for_narrow_modes(sd):
    # between modes at +-3 of width 0.05 or less, the mixture's density underflows to exactly 0 in
    # float64, so a divergence taken from densities alone is inf for a Gaussian spread over both
    bimodal = theory.mixture_pdf(X, [-3.0, 3.0], sd)
    assert np.any((bimodal == 0) & (np.abs(X) < 1))
    log_bimodal = theory.mixture_logpdf(X, [-3.0, 3.0], sd)
    for log_p in (None, log_bimodal):
        for objective in ("jsd", "nonsaturating", "forward_kl", "reverse_kl"):
            mean, std, value = theory.fit_gaussian(bimodal, X, objective, log_p_data=log_p, return_objective=True)
            assert math.isfinite(value) and math.isfinite(mean) and std > 0, (objective, log_p is None)
            if objective == "forward_kl":
                # maximum likelihood matches the moments: mean 0, variance 3^2 + sd^2
                assert mean == pytest.approx(0.0, abs=1e-3) and std == pytest.approx(math.hypot(3, sd), rel=1e-3)
            else:  # mode-seeking, and so is the JSD for modes this far apart: one mode, closely
                assert abs(mean) == pytest.approx(3.0, abs=0.02) and std == pytest.approx(sd, rel=0.1), objective
            if objective == "reverse_kl":  # on one mode of weight 1/2, KL(N || N/2 + far mode) = log 2
                assert value == pytest.approx(math.log(2), abs=1e-3)


def test_fit_gaussian_raises_instead_of_returning_an_infinite_objective(monkeypatch):
    monkeypatch.setattr(theory, "_objective_from_logs", lambda *args: math.inf)
    with pytest.raises(ValueError, match="no Gaussian with a finite jsd"):
        theory.fit_gaussian(gauss(0, 1), X, "jsd")


def test_mixture_logpdf_is_the_log_of_the_mixture_and_stays_finite():
    p, log_p = theory.mixture_pdf(X, [-3, 3], 0.6), theory.mixture_logpdf(X, [-3, 3], 0.6)
    mask = p > 1e-300
    np.testing.assert_allclose(log_p[mask], np.log(p[mask]), rtol=1e-10)
    narrow = theory.mixture_logpdf(X, [-3, 3], 0.02)
    assert np.all(np.isfinite(narrow))
    # at x = 0 both modes are 150 std away: log(2 * 0.5 * N(150 std)) exactly
    assert narrow[np.argmin(np.abs(X))] == pytest.approx(-0.5 * 150**2 - math.log(0.02 * math.sqrt(2 * math.pi)))


def test_describe_fit_words():
    assert theory.describe_fit(0.0, 2.1, [-2, 2]) == "over both modes"
    assert theory.describe_fit(0.0, 2.1, [-2, 0, 2]) == "over all modes"
    assert theory.describe_fit(0.1, 0.5, [0]) == "on one mode"
    assert theory.describe_fit(2.9, 0.6, [-3, 3]) == "on one mode"
    assert theory.describe_fit(0.0, 1.0, [-3, 3]) == "between the modes"
    assert theory.describe_fit(0.0, 2.5, [-4, -2, 2, 4]) == "over some modes"


def test_estimate_value_standard_error_is_that_of_two_sample_means():
    d_net = torch.nn.Linear(1, 1)
    with torch.no_grad():
        d_net.weight.fill_(1.5)
        d_net.bias.fill_(-0.5)
    gen = torch.Generator().manual_seed(0)
    real, fake = torch.randn(400, 1, generator=gen) + 1, torch.randn(300, 1, generator=gen)
    value, stderr = theory.estimate_value(d_net, real, fake, return_stderr=True)
    logit_r, logit_f = (1.5 * real - 0.5).double().numpy().ravel(), (1.5 * fake - 0.5).double().numpy().ravel()
    on_real, on_fake = -np.logaddexp(0, -logit_r), -np.logaddexp(0, logit_f)  # log D, log(1 - D)
    assert value == pytest.approx(on_real.mean() + on_fake.mean(), rel=1e-6)
    assert stderr == pytest.approx(math.sqrt(on_real.var(ddof=1) / 400 + on_fake.var(ddof=1) / 300), rel=1e-6)
    assert theory.estimate_value(d_net, real, fake) == pytest.approx(value, rel=1e-12)


def test_nonsaturating_loss_needs_its_minus_sign():
    """min_G -E[log D(G(z))] raises D(G(z)); the source's min_G E[log D(G(z))] would lower it."""
    from ganlib.losses import generator_loss

    for loss_fn, direction in [(lambda l: generator_loss("nonsaturating", l), +1),
                               (lambda l: torch.nn.functional.logsigmoid(l).mean(), -1)]:
        logits = torch.tensor([-3.0, -1.0, 0.5], requires_grad=True)  # D's logits on three samples
        loss_fn(logits).backward()
        stepped = logits.detach() - 0.1 * logits.grad  # one gradient-descent step on the loss
        assert bool((direction * (torch.sigmoid(stepped) - torch.sigmoid(logits.detach())) > 0).all())
    # and the non-saturating loss is -E[log D(G(z))] exactly
    logits = torch.tensor([-3.0, -1.0, 0.5])
    assert generator_loss("nonsaturating", logits).item() == pytest.approx(
        -torch.nn.functional.logsigmoid(logits).mean().item(), rel=1e-6)
