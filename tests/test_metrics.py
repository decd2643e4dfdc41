"""ganlib.metrics: mode coverage, the Frechet distance (against two other implementations), IS,
precision/recall, density/coverage, FID against sample size, memorisation, and the MNIST features."""
import math
import warnings

import numpy as np
import pytest
import scipy.linalg
import torch

from ganlib import metrics
from ganlib.data import gaussian_grid, gaussian_ring

# ----------------------------------------------------------------------------- mode coverage


def test_mode_coverage_of_the_true_distribution():
    ring = gaussian_ring()
    samples = ring.sample(2500, generator=torch.Generator().manual_seed(0))
    modes, hq, rkl = metrics.mode_coverage(samples, ring.centers, ring.std)
    assert modes == 8
    # within 3 std in 2D: P(chi2_2 <= 9) = 1 - exp(-4.5) = 0.9889
    assert abs(hq - (1 - math.exp(-4.5))) < 0.01
    assert 0 <= rkl < 0.01


def test_mode_coverage_counts_collapse_and_low_quality():
    grid = gaussian_grid()
    g = torch.Generator().manual_seed(1)
    on_two_modes = grid.centers[[0, 7]].repeat(50, 1) + grid.std * 0.5 * torch.randn(100, 2, generator=g)
    far_away = torch.full((100, 2), 100.0)  # nearest mode is a corner, but 3 std away it is not
    modes, hq, rkl = metrics.mode_coverage(torch.cat([on_two_modes, far_away]), grid.centers, grid.std)
    assert modes == 2
    assert hq == pytest.approx(0.5)
    assert rkl == pytest.approx(math.log(25 / 2))  # uniform over 2 of 25 modes
    assert metrics.mode_coverage(far_away, grid.centers, grid.std) == (0, 0.0, pytest.approx(math.log(25)))


def test_mode_coverage_rejects_bad_input():
    ring = gaussian_ring()
    with pytest.raises(ValueError, match="same d"):
        metrics.mode_coverage(torch.zeros(10, 3), ring.centers, ring.std)
    with pytest.raises(ValueError, match="NaN"):
        metrics.mode_coverage(torch.full((10, 2), float("nan")), ring.centers, ring.std)


# ----------------------------------------------------------------------------- Frechet distance


def _random_cov(d, rng):
    a = rng.standard_normal((d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


def test_frechet_distance_equal_covariances_is_squared_mean_distance():
    rng = np.random.default_rng(0)
    mu1, mu2, cov = rng.standard_normal(6), rng.standard_normal(6), _random_cov(6, rng)
    assert metrics.frechet_distance(mu1, cov, mu2, cov) == pytest.approx(np.sum((mu1 - mu2) ** 2), abs=1e-8)


def test_frechet_distance_diagonal_closed_form():
    rng = np.random.default_rng(1)
    mu1, mu2 = rng.standard_normal(5), rng.standard_normal(5)
    a, b = rng.uniform(0.1, 3, 5), rng.uniform(0.1, 3, 5)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert metrics.frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-10)


def test_frechet_distance_matches_scipy_sqrtm_on_full_covariances():
    rng = np.random.default_rng(2)
    for d in (2, 10, 64):
        mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
        s1, s2 = _random_cov(d, rng), _random_cov(d, rng)
        covmean = scipy.linalg.sqrtm(s1 @ s2).real
        reference = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * covmean)
        assert metrics.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(reference, rel=1e-6)
        # torch inputs give the same number
        t = [torch.tensor(v) for v in (mu1, s1, mu2, s2)]
        assert metrics.frechet_distance(*t) == pytest.approx(reference, rel=1e-6)


def test_frechet_distance_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="shapes"):
        metrics.frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


# ----------------------------------------------------------------------------- IS and precision/recall


def test_inception_score_bounds():
    confident_balanced = np.eye(10)[np.arange(1000) % 10]
    assert metrics.inception_score(confident_balanced) == pytest.approx(10, rel=1e-6)
    all_one_class = np.eye(10)[np.zeros(1000, dtype=int)]
    assert metrics.inception_score(all_one_class) == pytest.approx(1, rel=1e-6)
    uniform = np.full((1000, 10), 0.1)
    assert metrics.inception_score(uniform) == pytest.approx(1, rel=1e-6)
    with pytest.raises(ValueError, match="softmax"):
        metrics.inception_score(np.ones((4, 10)))


def test_precision_recall_separate_quality_from_coverage():
    g = torch.Generator().manual_seed(0)
    real = torch.randn(1000, 4, generator=g)
    same = torch.randn(1000, 4, generator=g)
    p, r = metrics.precision_recall(real, same)
    assert p > 0.9 and r > 0.9
    # a "collapsed" generator: realistic points from a small part of the data -> precision high, recall low
    collapsed = 0.1 * torch.randn(1000, 4, generator=g)
    p, r = metrics.precision_recall(real, collapsed)
    assert p > 0.9 and r < 0.3
    # points far from the data: precision near zero
    p, _ = metrics.precision_recall(real, same + 10)
    assert p < 0.05


def test_label_histogram():
    h = metrics.label_histogram(torch.tensor([0, 0, 1, 9]))
    assert h.shape == (10,) and h[0] == 0.5 and h[9] == 0.25 and h.sum() == pytest.approx(1)


# ----------------------------------------------------------------------------- MNIST feature network


def test_missing_weights_error_names_the_command(tmp_path):
    from ganlib.classifier import load_mnist_classifier

    with pytest.raises(FileNotFoundError, match="python -m ganlib.classifier train"):
        load_mnist_classifier(tmp_path / "nothing.safetensors")


@pytest.fixture(scope="module")
def mnist_features(mnist):
    from ganlib.classifier import WEIGHTS_PATH, classify, load_mnist_classifier

    if not WEIGHTS_PATH.exists():
        pytest.fail(f"classifier weights missing: run `python -m ganlib.classifier train` ({WEIGHTS_PATH})")
    (x_test, y_test), (x_train, y_train) = mnist["test"], mnist["train"]
    torch.set_num_threads(min(2, torch.get_num_threads()))
    clf = load_mnist_classifier()
    # 300 test images per class (3k: fast on 2 CPU cores), so the label marginal is uniform as in
    # the full 10k test set; and 3k random training images
    g = torch.Generator().manual_seed(0)
    perm = torch.randperm(len(x_test), generator=g)
    test_idx = torch.cat([perm[y_test[perm] == c][:300] for c in range(10)])
    train_idx = torch.randperm(len(x_train), generator=g)[:3000]
    test_images = x_test[test_idx]
    return {"clf": clf, "classify": classify, "test_images": test_images, "test_labels": y_test[test_idx],
            "train_images": x_train[train_idx],
            "test": classify(clf, test_images), "train": classify(clf, x_train[train_idx]),
            "train_labels": y_train[train_idx]}


def test_classifier_is_accurate(mnist_features):
    _, probs = mnist_features["test"]
    assert (probs.argmax(1) == mnist_features["test_labels"]).float().mean() >= 0.99


def test_fid_between_test_and_train_is_small_and_rises_with_noise(mnist_features):
    test_f, _ = mnist_features["test"]
    train_f, _ = mnist_features["train"]
    fid_real = metrics.frechet_distance_from_features(test_f, train_f)
    g = torch.Generator().manual_seed(1)
    images = mnist_features["test_images"]
    noise = torch.randn(images.shape, generator=g)
    fids = []
    for sigma in (0.1, 0.3, 0.6, 1.0):
        noisy = (images + sigma * noise).clamp(-1, 1)
        noisy_f, _ = mnist_features["classify"](mnist_features["clf"], noisy)
        fids.append(metrics.frechet_distance_from_features(train_f, noisy_f))
    assert all(a < b for a, b in zip([fid_real] + fids, fids)), (fid_real, fids)
    # "small": next to the FID of a "collapsed" sample of real digits that lacks five of the classes
    fid_half = metrics.frechet_distance_from_features(test_f, train_f[mnist_features["train_labels"] < 5])
    assert fid_real < fid_half / 20, (fid_real, fid_half)


def test_inception_score_of_real_digits(mnist_features):
    _, probs = mnist_features["test"]
    assert metrics.inception_score(probs) >= 9.8  # published for MNIST classifiers: 9.88


def test_mnist_metrics_on_real_images(mnist_features):
    images = mnist_features["test_images"]
    # two disjoint halves of the class-sorted test images (every other image: both hold all classes)
    out = metrics.mnist_metrics(images[0::2], reference=images[1::2], classifier=mnist_features["clf"])
    assert set(out) == {"fid", "inception_score", "precision", "recall", "density", "coverage", "label_histogram",
                        "label_kl"}
    assert out["precision"] > 0.6 and out["recall"] > 0.6
    assert out["label_histogram"].sum() == pytest.approx(1)
    # the same reference given as features (to score many sets against one) gives the same numbers
    reference_features, _ = mnist_features["classify"](mnist_features["clf"], images[1::2])
    again = metrics.mnist_metrics(images[0::2], classifier=mnist_features["clf"], reference_features=reference_features)
    assert again["fid"] == pytest.approx(out["fid"], rel=1e-9) and again["recall"] == out["recall"]
    with pytest.raises(ValueError, match="not both"):
        metrics.mnist_metrics(images[:10], reference=images[10:20], reference_features=reference_features)


# ----------------------------------------------------------------------------- density, coverage, labels


def test_density_and_coverage_of_the_same_distribution_match_their_expectations():
    # Naeem et al. (2020), Sec. 4: for identical distributions E[density] = 1 and, with M = N,
    # E[coverage] = 1 - (N - 1)...(N - k) / ((2N - 1)...(2N - k)), about 1 - 2^-k
    g = torch.Generator().manual_seed(0)
    real, fake = torch.randn(3000, 4, generator=g), torch.randn(3000, 4, generator=g)
    density, coverage = metrics.density_coverage(real, fake, k=5)
    expected_coverage = 1 - math.prod((3000 - i) / (6000 - i) for i in range(1, 6))
    assert density == pytest.approx(1.0, abs=0.05)
    assert coverage == pytest.approx(expected_coverage, abs=0.01)


def test_density_and_coverage_see_collapse_but_ignore_outliers():
    g = torch.Generator().manual_seed(1)
    real = torch.randn(2000, 4, generator=g)
    collapsed = real[:1].repeat(2000, 1)
    density, coverage = metrics.density_coverage(real, collapsed)
    # one point lies in about k real balls: coverage ~ k / N, while density (balls per sample / k) stays ~1
    assert coverage < 0.01 and density == pytest.approx(1.0, abs=0.5)
    fake = torch.randn(2000, 4, generator=g)
    with_outliers = torch.cat([fake[:1900], torch.full((100, 4), 50.0)])
    _, recall_clean = metrics.precision_recall(real, fake)
    d0, c0 = metrics.density_coverage(real, fake)
    d1, c1 = metrics.density_coverage(real, with_outliers)
    assert abs(c1 - c0) < 0.02 and d1 == pytest.approx(d0 * 0.95, abs=0.05)


def test_kl_from_uniform():
    assert metrics.kl_from_uniform(np.full(10, 0.1)) == pytest.approx(0.0, abs=1e-12)
    assert metrics.kl_from_uniform(np.eye(10)[3]) == pytest.approx(math.log(10))
    half = np.r_[np.full(5, 0.2), np.zeros(5)]
    assert metrics.kl_from_uniform(half) == pytest.approx(math.log(2))
    with pytest.raises(ValueError, match="summing to 1"):
        metrics.kl_from_uniform([0.5, 0.4])


# ----------------------------------------------------------------------------- FID and sample size


def test_fid_bias_falls_with_n_and_extrapolation_recovers_the_intercept():
    g = torch.Generator().manual_seed(2)
    real = torch.randn(20000, 64, generator=g, dtype=torch.float64)
    fake = torch.randn(20000, 64, generator=g, dtype=torch.float64) + 0.1  # true FID = 64 * 0.01 = 0.64
    sizes = [250, 500, 1000, 2000, 5000, 10000]
    fids = metrics.fid_against_sample_size(real, fake, sizes, seed=0)
    assert all(a > b for a, b in zip(fids, fids[1:])) and fids[-1] > 0.64  # biased up, less so with more samples
    fid_inf, slope = metrics.extrapolate_fid(sizes, fids)
    assert slope > 0 and abs(fid_inf - 0.64) < 0.1 < fids[-1] - 0.64  # the intercept removes most of the bias
    # on an exact line FID = a + b / N the intercept and slope come back
    assert metrics.extrapolate_fid([100, 400, 1000], [3 + 50 / n for n in (100, 400, 1000)]) == \
        pytest.approx((3.0, 50.0))
    with pytest.raises(ValueError, match="two or more"):
        metrics.extrapolate_fid([500, 500], [1.0, 2.0])


def test_random_subset_is_seeded_and_distinct():
    from ganlib.data import random_subset

    a, b = random_subset(100, 30, seed=4), random_subset(100, 30, seed=4)
    assert torch.equal(a, b) and len(set(a.tolist())) == 30 and not torch.equal(a, torch.arange(30))
    with pytest.raises(ValueError, match="between 1 and 100"):
        random_subset(100, 101)


# ----------------------------------------------------------------------------- memorisation


def test_nearest_neighbours_finds_an_exact_copy():
    reference = torch.rand(25, 1, 28, 28)
    samples = torch.stack([reference[17], reference[3] + 0.01])
    index, dist = metrics.nearest_neighbours(samples, reference, chunk=7)
    assert index.tolist() == [17, 3]
    assert dist[0] == pytest.approx(0.0, abs=1e-3) and dist[1] == pytest.approx(0.01 * 28, rel=1e-3)


def test_memorisation_flags_copies_and_not_fresh_data():
    g = torch.Generator().manual_seed(3)
    train, held_out, fresh = (torch.rand(n, 1, 8, 8, generator=g) for n in (2000, 500, 500))
    copies = metrics.memorisation(train[:500], train, held_out)
    assert copies.copy_fraction == 1.0 and copies.distance_ratio == 0.0 and copies.flags_copies
    new = metrics.memorisation(fresh, train, held_out)
    assert new.copy_fraction < 0.05 and new.distance_ratio == pytest.approx(1.0, abs=0.05) and not new.flags_copies
    half = metrics.memorisation(torch.cat([train[:250], fresh[:250]]), train, held_out)
    assert half.copy_fraction == pytest.approx(0.5, abs=0.03) and half.flags_copies
    with pytest.raises(ValueError, match="one shape"):
        metrics.memorisation(torch.rand(3, 1, 4, 4), train, held_out)
    with pytest.raises(ValueError, match="quantile"):
        metrics.memorisation(fresh, train, held_out, quantile=1.5)


# ----------------------------------------------------------------------------- FID: two peer implementations


class _Features(torch.nn.Module):
    """torchmetrics' `feature=` module: ganlib's classifier features (or the input itself), as float64."""

    def __init__(self, classifier=None, num_features=128):
        super().__init__()
        self.classifier, self.num_features = classifier, num_features

    def forward(self, x):
        return (x if self.classifier is None else self.classifier.features(x)).double()


def _scipy_fid(f1, f2):
    f1, f2 = np.asarray(f1, dtype=np.float64), np.asarray(f2, dtype=np.float64)
    mu1, mu2, s1, s2 = f1.mean(0), f2.mean(0), np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)  # ReLU features: some are always 0
        covmean = scipy.linalg.sqrtm(s1 @ s2)
    if not np.isfinite(covmean).all():  # pytorch-fid's fallback: a small ridge
        offset = np.eye(len(s1)) * 1e-6
        covmean = scipy.linalg.sqrtm((s1 + offset) @ (s2 + offset))
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean.real))


def _torchmetrics_fid(module, real_inputs, fake_inputs):
    from torchmetrics.image.fid import FrechetInceptionDistance

    fid = FrechetInceptionDistance(feature=module, normalize=False).double()
    for start in range(0, len(real_inputs), 500):
        fid.update(real_inputs[start:start + 500], real=True)
    for start in range(0, len(fake_inputs), 500):
        fid.update(fake_inputs[start:start + 500], real=False)
    return float(fid.compute())


def test_fid_agrees_with_scipy_and_torchmetrics_on_random_features():
    pytest.importorskip("torchmetrics")
    g = torch.Generator().manual_seed(5)
    mix = torch.randn(32, 32, generator=g, dtype=torch.float64) / 4
    real = torch.randn(3000, 32, generator=g, dtype=torch.float64)
    fake = torch.randn(3000, 32, generator=g, dtype=torch.float64) @ (torch.eye(32, dtype=torch.float64) + mix) + 0.2
    ours = metrics.frechet_distance_from_features(real, fake)
    assert ours == pytest.approx(_scipy_fid(real, fake), rel=1e-3)
    assert ours == pytest.approx(_torchmetrics_fid(_Features(num_features=32), real, fake), rel=1e-3)


def test_fid_agrees_with_scipy_and_torchmetrics_on_mnist_features(mnist_features):
    pytest.importorskip("torchmetrics")
    test_f, _ = mnist_features["test"]
    train_f, _ = mnist_features["train"]
    ours = metrics.frechet_distance_from_features(test_f, train_f)
    assert ours == pytest.approx(_scipy_fid(test_f, train_f), rel=1e-3)
    # torchmetrics computes the features itself, from the images, through ganlib's classifier
    module = _Features(mnist_features["clf"].eval())
    with torch.no_grad():
        theirs = _torchmetrics_fid(module, mnist_features["test_images"], mnist_features["train_images"])
    assert ours == pytest.approx(theirs, rel=1e-3)
