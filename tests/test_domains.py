"""Out-of-domain inputs to the evaluation functions raise a clear ValueError instead of returning a
number (issue 32): images on the wrong scale, grey levels where a Bernoulli decoder needs binary
pixels, degenerate neighbour counts and sample sizes, empty or one-image sets.

Each case asserts the exception type and a phrase of its message; the tests after the table check
that valid inputs are still accepted and give the numbers a direct recomputation gives.
"""
import math
import re

import numpy as np
import pytest
import torch

from ganlib import likelihood, metrics
from ganlib.models import VAE

pytestmark = pytest.mark.usefixtures("single_thread")


def _vae(likelihood="bernoulli"):
    torch.manual_seed(0)
    return VAE((1, 4, 4), latent_dim=2, hidden=(8,), likelihood=likelihood)


def _grey(n=6, shape=(1, 4, 4), seed=0):
    """Grey-level images spanning ganlib's [-1, 1] (a black and a white pixel each, like MNIST digits)."""
    x = torch.rand(n, *shape, generator=torch.Generator().manual_seed(1000 + seed)) * 2 - 1  # not binary_test_set's
    x[..., 0, 0], x[..., 0, 1] = -1, 1
    return x


def _binary(n=6, shape=(1, 4, 4), seed=0):
    return likelihood.binary_test_set(_grey(n, shape, seed))


def _points(n=20, d=3, seed=0):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed))


def _with_nan(x):
    x = x.clone()
    x.view(-1)[3] = float("nan")
    return x


SAME = torch.ones(20, 3)  # every real point identical: every k-NN ball has radius 0

# name: (call, exception type, phrase of the message)
CASES = {
    # likelihood: a Bernoulli decoder scores binary images in ganlib's {-1, 1}
    "iwae_grey_levels": (lambda: likelihood.iwae_log_likelihood(_vae(), _grey(), 5), ValueError,
                         "are grey levels: score binary_test_set(x)"),
    "iwae_zero_one_binary": (lambda: likelihood.iwae_log_likelihood(_vae(), (_binary() + 1) / 2, 5), ValueError,
                             "x must be in [-1, 1] (ganlib's pixel scale); these span [0, 1]: multiply by 2"),
    "iwae_0_255": (lambda: likelihood.iwae_log_likelihood(_vae(), (_grey() + 1) * 127.5, 5), ValueError,
                   "these span [0, 255]: divide by 127.5 and subtract 1"),
    "iwae_nan": (lambda: likelihood.iwae_log_likelihood(_vae(), _with_nan(_binary()), 5), ValueError,
                 "x contains NaN/inf"),
    "log_weights_grey_levels": (lambda: likelihood.log_importance_weights(_vae(), _grey(), 5), ValueError,
                                "x must be binary (every pixel -1 or 1) for a Bernoulli VAE"),
    "elbo_grey_levels": (lambda: likelihood.elbo(_vae(), _grey()), ValueError,
                         "x must be binary (every pixel -1 or 1) for a Bernoulli VAE"),
    "elbo_zero_one_binary": (lambda: likelihood.elbo(_vae(), (_binary() + 1) / 2), ValueError,
                             "multiply by 2 and subtract 1"),
    "binary_test_set_zero_one": (lambda: likelihood.binary_test_set((_grey() + 1) / 2), ValueError,
                                 "images must be in [-1, 1] (ganlib's pixel scale); these span [0, 1]"),
    "binary_test_set_0_255": (lambda: likelihood.binary_test_set((_grey() + 1) * 127.5), ValueError,
                              "divide by 127.5 and subtract 1"),
    "active_units_one_image": (lambda: likelihood.active_units(_vae(), _grey(1)), ValueError,
                               "needs at least 2 images (the activity is a variance over images); got 1"),
    "active_units_nan": (lambda: likelihood.active_units(_vae(), _with_nan(_grey())), ValueError,
                         "x contains NaN/inf"),
    # k-NN metrics: k >= 1, fewer than the points, and real balls that are not all points
    "precision_recall_k0": (lambda: metrics.precision_recall(_points(), _points(seed=1), k=0), ValueError,
                            "k must be an integer >= 1"),
    "precision_recall_k_too_big": (lambda: metrics.precision_recall(_points(), _points(seed=1), k=20), ValueError,
                                   "need more than k=20 points in each set; got 20 real and 20 fake"),
    "precision_recall_identical_real": (lambda: metrics.precision_recall(SAME, _points(seed=1)), ValueError,
                                        "every ball has radius 0"),
    "density_coverage_k0": (lambda: metrics.density_coverage(_points(), _points(seed=1), k=0), ValueError,
                            "got k=0"),
    "density_coverage_k_too_big": (lambda: metrics.density_coverage(_points(5), _points(seed=1), k=5), ValueError,
                                   "need more than k=5 points"),
    "density_coverage_identical_real": (lambda: metrics.density_coverage(SAME, _points(seed=1)), ValueError,
                                        "pass distinct real points"),
    # FID extrapolation: finite FIDs at two or more positive sample sizes
    "extrapolate_nan_fid": (lambda: metrics.extrapolate_fid([100, 200, 400], [5.0, float("nan"), 3.0]), ValueError,
                            "fids must be finite"),
    "extrapolate_inf_fid": (lambda: metrics.extrapolate_fid([100, 200], [float("inf"), 3.0]), ValueError,
                            "fids must be finite"),
    "extrapolate_negative_size": (lambda: metrics.extrapolate_fid([-100, 200], [5.0, 3.0]), ValueError,
                                  "sizes must be positive sample counts"),
    "extrapolate_zero_size": (lambda: metrics.extrapolate_fid([0, 200], [5.0, 3.0]), ValueError,
                              "sizes must be positive sample counts"),
    "extrapolate_one_size": (lambda: metrics.extrapolate_fid([200], [3.0]), ValueError,
                             "two or more different sample sizes"),
    "extrapolate_lengths": (lambda: metrics.extrapolate_fid([100, 200, 400], [5.0, 3.0]), ValueError,
                            "got 3 sizes and 2 FIDs"),
    # memorisation: one pixel scale, enough held-out images
    "memorisation_zero_one_samples": (lambda: metrics.memorisation((_grey(5) + 1) / 2, _grey(20), _grey(5, seed=2)),
                                      ValueError, "samples have no value below 0 while the others do"),
    "memorisation_0_255_train": (lambda: metrics.memorisation(_grey(5), (_grey(20) + 1) * 127.5, _grey(5, seed=2)),
                                 ValueError, "train must be in [-1, 1]"),
    "memorisation_one_held_out": (lambda: metrics.memorisation(_grey(5), _grey(20), _grey(1, seed=2)), ValueError,
                                  "held_out needs at least 2 images"),
    "memorisation_empty_held_out": (lambda: metrics.memorisation(_grey(5), _grey(20), _grey(0, seed=2)), ValueError,
                                    "got held_out of shape (0, 1, 4, 4)"),
    "memorisation_from_one_distance": (lambda: metrics.memorisation_from_distances(torch.ones(5), torch.ones(1)),
                                       ValueError, "at least 2 held-out images"),
    # nearest neighbours: non-empty sets of one size per example
    "nearest_empty_reference": (lambda: metrics.nearest_neighbours(_grey(3), _grey(0)), ValueError,
                                "reference must be a non-empty batch"),
    "nearest_empty_samples": (lambda: metrics.nearest_neighbours(_grey(0), _grey(3)), ValueError,
                              "samples must be a non-empty batch"),
    "nearest_sizes_differ": (lambda: metrics.nearest_neighbours(_grey(3), _grey(3, (1, 5, 5))), ValueError,
                             "the same size per example"),
    # MNIST metrics: (N, 1, 28, 28) in [-1, 1], refused before any weights are loaded
    "mnist_0_255": (lambda: metrics.mnist_metrics((_grey(4, (1, 28, 28)) + 1) * 127.5), ValueError,
                    "generated must be in [-1, 1] (ganlib's pixel scale); these span [0, 255]: divide by 127.5"),
    "mnist_zero_one": (lambda: metrics.mnist_metrics((_grey(4, (1, 28, 28)) + 1) / 2), ValueError,
                       "multiply by 2 and subtract 1"),
    "mnist_past_one": (lambda: metrics.mnist_metrics(_grey(4, (1, 28, 28)) * 1.5), ValueError,
                       "these span [-1.5, 1.5"),
    "mnist_no_channel": (lambda: metrics.mnist_metrics(_grey(4, (28, 28))), ValueError,
                         "generated must be MNIST-like images of shape (N, 1, 28, 28); got (4, 28, 28)"),
    "mnist_reference_zero_one": (lambda: metrics.mnist_metrics(_grey(4, (1, 28, 28)),
                                                               reference=(_grey(4, (1, 28, 28)) + 1) / 2),
                                 ValueError, "reference must be in [-1, 1]"),
}


@pytest.mark.parametrize(("call", "exc", "phrase"), list(CASES.values()), ids=list(CASES))
def test_out_of_domain_input_raises_naming_it(call, exc, phrase):
    with pytest.raises(exc, match=re.escape(phrase)):
        call()


# ----------------------------------------------------------------------------- valid input: accepted, same numbers


def _brute_precision_recall(real, fake, k):
    """Kynkaanniemi et al.'s definition, written out with numpy and a full distance matrix."""
    def radii(a):
        return np.sort(np.linalg.norm(a[:, None] - a[None], axis=-1), axis=1)[:, k]

    def inside(points, support):
        return (np.linalg.norm(points[:, None] - support[None], axis=-1) <= radii(support)[None]).any(1).mean()

    return inside(fake, real), inside(real, fake)


def test_precision_recall_of_valid_input_matches_a_recomputation():
    real, fake = _points(60, 3).double().numpy(), (_points(50, 3, seed=1) + 0.5).double().numpy()
    for k in (1, 3, 49):
        assert metrics.precision_recall(real, fake, k=k) == pytest.approx(_brute_precision_recall(real, fake, k))
    # a closed form: reals 0..9 on a line, k = 1 gives balls of radius 1; of the fakes 0.5 and 20 only
    # the first is inside, and the fakes' balls (radius 19.5) hold every real point
    line = torch.arange(10.0)[:, None]
    assert metrics.precision_recall(line, torch.tensor([[0.5], [20.0]]), k=1) == (0.5, 1.0)
    # duplicated real points are fine while some ball has a radius
    density, coverage = metrics.density_coverage(torch.cat([line, line]), line, k=2)
    assert math.isfinite(density) and coverage == 1.0


def test_extrapolate_fid_of_valid_input_matches_the_least_squares_line():
    sizes = [100, 400, 1000]
    assert metrics.extrapolate_fid(sizes, [3 + 50 / n for n in sizes]) == pytest.approx((3.0, 50.0))
    fids = [7.1, 5.3, 4.9, 4.6]
    slope, intercept = np.polyfit(1 / np.array([250, 500, 1000, 2000.0]), fids, 1)
    assert metrics.extrapolate_fid(np.array([250, 500, 1000, 2000]), fids) == (intercept, slope)


def test_iwae_of_valid_input_matches_its_importance_weights():
    vae, x = _vae(), _binary(4)
    k = 16
    iwae = likelihood.iwae_log_likelihood(vae, x, k, torch.Generator().manual_seed(3))
    with torch.no_grad():
        vae.eval()
        logw = likelihood.log_importance_weights(vae, x, k, torch.Generator().manual_seed(3)).double()
    assert torch.allclose(iwae, torch.logsumexp(logw, 1) - math.log(k), atol=1e-9)
    assert torch.isfinite(likelihood.elbo(vae, x)["elbo"]).all()


def test_other_valid_inputs_are_accepted():
    # a Gaussian decoder scores any real values, e.g. the dequantised [0, 1) pixels of the VAE chapter
    gaussian = _vae("gaussian")
    assert torch.isfinite(likelihood.iwae_log_likelihood(gaussian, (_grey() + 1) / 2, 3)).all()
    assert torch.isfinite(likelihood.elbo(gaussian, (_grey() + 1) / 2)["elbo"]).all()
    # active units only encode: grey levels are fine, and two images are enough
    assert likelihood.active_units(_vae(), _grey(2)).shape == (2,)
    # uniform mid-grey (all zeros) is a [-1, 1] batch; binary images pass unchanged
    assert set(likelihood.binary_test_set(torch.zeros(10, 1, 2, 2)).unique().tolist()) <= {-1.0, 1.0}
    assert torch.equal(likelihood.binary_test_set(_binary()), _binary())
    # memorisation's numbers do not depend on the scale, so one consistent [0, 1] scale is accepted too
    samples, train, held_out = _grey(30), _grey(200, seed=1), _grey(30, seed=2)
    signed = metrics.memorisation(samples, train, held_out)
    unsigned = metrics.memorisation((samples + 1) / 2, (train + 1) / 2, (held_out + 1) / 2)
    assert signed.copy_fraction == unsigned.copy_fraction
    assert signed.distance_ratio == pytest.approx(unsigned.distance_ratio, rel=1e-5)  # float32 distances
    index, dist = metrics.nearest_neighbours(train[:3], train)
    assert index.tolist() == [0, 1, 2] and dist.max() < 1e-3
