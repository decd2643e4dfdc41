"""ganlib.chapters.classic: closed forms, normalisation, sampling and the chapter's log-likelihood ordering."""
import itertools
import math

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal

from ganlib.chapters import selfcheck
from ganlib.chapters.classic import (BernoulliPixels, GaussianPixels, GenerativeClassifier, MarkovPixels,
                            SoftmaxRegression, binarize, causal_mask, dequantize, log_likelihood_table,
                            mean_log_likelihood)
from ganlib.data import load_digits


@pytest.fixture(scope="module")
def digits():
    """The 8x8 digits' train/test splits, binary (threshold 0, i.e. value > 8 of 16) and dequantized."""
    x_train, y_train = load_digits("train")
    x_test, y_test = load_digits("test")
    gen = torch.Generator().manual_seed(0)
    return {
        "bin_train": binarize(x_train), "bin_test": binarize(x_test),
        "cont_train": dequantize(x_train, 17, gen), "cont_test": dequantize(x_test, 17, gen),
        "y_train": y_train, "y_test": y_test,
    }


def all_binary_images(h, w):
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=h * w))).reshape(-1, 1, h, w)


# ----------------------------------------------------------------------------- data preparation

def test_binarize_and_dequantize_ranges():
    x = torch.tensor([[-1.0, -0.2, 0.0, 0.4, 1.0]])
    assert binarize(x).tolist() == [[0.0, 0.0, 0.0, 1.0, 1.0]]
    levels = torch.linspace(-1, 1, 17)[None]  # the 17 values of the 8x8 digits
    u = dequantize(levels, 17, torch.Generator().manual_seed(0))
    k = torch.arange(17.0)[None]
    assert bool(((u >= k / 17) & (u < (k + 1) / 17)).all()), "each level must land in its own bin"


def test_causal_mask_is_causal_and_counts_the_neighbourhood():
    full = causal_mask(4, 5)
    assert torch.equal(full, torch.ones(20, 20, dtype=torch.bool).tril(-1))
    m = causal_mask(6, 7, radius=2)
    assert not bool(m.triu().any()), "a pixel may only depend on earlier pixels"
    interior = 3 * 7 + 3  # row 3, col 3: two full rows above, two pixels to the left
    assert m[interior].sum().item() == 2 * 2 * 2 + 2 * 2  # r(2r+1) above + r to the left, r = 2
    assert m[0].sum().item() == 0


# ----------------------------------------------------------------------------- Bernoulli

def test_bernoulli_mle_is_the_smoothed_pixel_mean():
    x = torch.tensor([[1.0, 0, 1], [1, 0, 0], [1, 0, 1], [0, 0, 1]])
    assert torch.allclose(BernoulliPixels(alpha=0).fit(x).probs, x.mean(0))
    assert torch.allclose(BernoulliPixels(alpha=1).fit(x).probs, (x.sum(0) + 1) / (len(x) + 2))


def test_bernoulli_log_prob_of_a_hand_made_image_is_the_formula():
    model = BernoulliPixels()
    model.fit(torch.zeros(1, 1, 2, 3))  # sets the shape; the probabilities are replaced below
    mu = torch.tensor(selfcheck.BERNOULLI_EXERCISE_PROBS).flatten()
    model.probs = mu
    image = torch.tensor(selfcheck.BERNOULLI_EXERCISE_IMAGE).float()[None, None]
    x = image.flatten()
    expected = sum(math.log(m) if v == 1 else math.log(1 - m) for v, m in zip(x.tolist(), mu.tolist()))
    assert model.log_prob(image).item() == pytest.approx(expected, rel=1e-6)
    assert selfcheck.check_bernoulli_log_likelihood(expected)
    assert not selfcheck.check_bernoulli_log_likelihood(-expected)


def test_bernoulli_and_markov_are_normalised_pmfs():
    """Summed over all 2^9 binary 3x3 images, each model's probabilities add up to 1."""
    x = binarize(torch.randn(200, 1, 3, 3, generator=torch.Generator().manual_seed(1)) + 0.3)
    images = all_binary_images(3, 3)
    for model in (BernoulliPixels(), MarkovPixels(radius=1, steps=50, lr=0.05),
                  MarkovPixels(radius=None, steps=50, lr=0.05)):
        total = model.fit(x).log_prob(images).double().exp().sum().item()
        assert total == pytest.approx(1.0, abs=1e-5), type(model).__name__


def test_binary_models_reject_non_binary_pixels_with_a_hint():
    for model in (BernoulliPixels(), MarkovPixels(steps=1)):
        with pytest.raises(ValueError, match="binarize"):
            model.fit(torch.rand(5, 1, 4, 4))


# ----------------------------------------------------------------------------- Gaussian

@pytest.mark.parametrize("rank", [None, 3])
def test_gaussian_log_prob_matches_scipy(digits, rank):
    x, test = digits["cont_train"], digits["cont_test"][:50]
    model = GaussianPixels(rank=rank, ridge=1e-3).fit(x)
    flat = x.flatten(1).double()
    mean = flat.mean(0)
    sample_cov = ((flat - mean).T @ (flat - mean) / len(flat)).numpy()
    if rank is None:
        cov = sample_cov + 1e-3 * np.eye(64)
    else:  # probabilistic PCA: keep the top eigenvalues, replace the rest by their mean (+ ridge)
        evals, evecs = np.linalg.eigh(sample_cov)
        evals, evecs = evals[::-1], evecs[:, ::-1]
        noise = evals[rank:].mean() + 1e-3
        kept = np.concatenate([evals[:rank], np.full(64 - rank, noise)])
        cov = (evecs * kept) @ evecs.T
    expected = multivariate_normal(mean.numpy(), cov).logpdf(test.flatten(1).double().numpy())
    assert np.allclose(model.log_prob(test).numpy(), expected, rtol=1e-5, atol=1e-3)
    mvn = torch.distributions.MultivariateNormal(mean, covariance_matrix=torch.tensor(cov))
    assert torch.allclose(model.log_prob(test).double(), mvn.log_prob(test.flatten(1).double()), rtol=1e-5, atol=1e-3)


def test_gaussian_without_ridge_fails_on_constant_pixels_and_ridge_fixes_it():
    raw = torch.rand(100, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    raw[:, :, 0, 0] = 0.0  # a pixel that never changes, like MNIST's border
    with pytest.raises(torch.linalg.LinAlgError):
        GaussianPixels(ridge=0.0).fit(raw)
    assert torch.isfinite(GaussianPixels(ridge=1e-3).fit(raw).log_prob(raw)).all()


# ----------------------------------------------------------------------------- Markov

def test_markov_log_prob_is_the_chain_rule():
    x = binarize(torch.randn(64, 1, 3, 4, generator=torch.Generator().manual_seed(2)))
    model = MarkovPixels(radius=1, steps=30, lr=0.05).fit(x)
    image = x[:1].flatten()
    by_hand = 0.0
    for i in range(12):
        a = model.bias[i] + sum(model.weight[i, j] * image[j] for j in range(i))
        p = torch.sigmoid(a).item()
        by_hand += math.log(p if image[i] == 1 else 1 - p)
    assert model.log_prob(x[:1]).item() == pytest.approx(by_hand, rel=1e-5)
    assert not bool((model.weight != 0)[~causal_mask(3, 4, radius=1)].any()), "weights outside the context"


def test_markov_without_training_is_the_smoothed_bernoulli_model(digits):
    x, test = digits["bin_train"], digits["bin_test"]
    untrained = MarkovPixels(steps=0).fit(x)
    assert torch.allclose(untrained.log_prob(test), BernoulliPixels(alpha=1).fit(x).log_prob(test), atol=1e-4)


def test_markov_beats_bernoulli_on_held_out_digits(digits):
    """The chapter's claim: conditioning on earlier pixels raises the test log-likelihood."""
    x, test = digits["bin_train"], digits["bin_test"]
    bernoulli = mean_log_likelihood(BernoulliPixels().fit(x), test)
    for radius in (2, None):
        markov = mean_log_likelihood(MarkovPixels(radius=radius, steps=150, lr=0.03).fit(x), test)
        assert markov > bernoulli, f"radius={radius}: Markov {markov:.2f} <= Bernoulli {bernoulli:.2f} nats/image"


def test_markov_training_lowers_the_loss(digits):
    model = MarkovPixels(radius=None, steps=100, lr=0.03).fit(digits["bin_train"])
    assert np.mean(model.history[-20:]) < np.mean(model.history[:20])


def test_markov_neighbourhood_needs_image_shape():
    with pytest.raises(ValueError, match="radius=None"):
        MarkovPixels(radius=2, steps=1).fit(torch.zeros(4, 16))


# ----------------------------------------------------------------------------- all three

@pytest.mark.parametrize("make", [BernoulliPixels, lambda: GaussianPixels(rank=None),
                                  lambda: GaussianPixels(rank=4), lambda: MarkovPixels(radius=2, steps=20)],
                         ids=["bernoulli", "gaussian", "ppca", "markov"])
def test_sampling_shapes_and_seeds(digits, make):
    model = make()
    model.fit(digits["cont_train"] if isinstance(model, GaussianPixels) else digits["bin_train"])
    a = model.sample(7, generator=torch.Generator().manual_seed(3))
    b = model.sample(7, generator=torch.Generator().manual_seed(3))
    c = model.sample(7, generator=torch.Generator().manual_seed(4))
    assert a.shape == (7, 1, 8, 8)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.isfinite(model.log_prob(a)).all()


def test_fitting_is_reproducible(digits):
    x = digits["bin_train"]
    one = MarkovPixels(steps=30, seed=5).fit(x).weight
    two = MarkovPixels(steps=30, seed=5).fit(x).weight
    assert torch.equal(one, two)


def test_unfitted_model_and_wrong_shape_give_clear_errors(digits):
    with pytest.raises(RuntimeError, match="fit"):
        BernoulliPixels().sample(3)
    model = BernoulliPixels().fit(digits["bin_train"])
    with pytest.raises(ValueError, match="fitted on images of shape"):
        model.log_prob(torch.zeros(2, 1, 28, 28))


def test_generative_and_discriminative_classifiers_beat_chance(digits):
    x, y, xt, yt = digits["bin_train"], digits["y_train"], digits["bin_test"], digits["y_test"]
    naive_bayes = GenerativeClassifier(BernoulliPixels).fit(x, y)
    logistic = SoftmaxRegression(steps=100).fit(x, y)
    for clf in (naive_bayes, logistic):
        assert (clf.predict(xt) == yt).float().mean().item() > 0.5  # chance is 0.1


def test_log_likelihood_table_and_selfchecks():
    table = log_likelihood_table([{"model": "Bernoulli", "test": -123.456, "parameters": 784},
                                  {"model": "Markov", "test": -80.0, "parameters": 17_320}])
    lines = table.splitlines()
    assert len(lines) == 4 and "-123.5" in lines[2] and "17,320" in lines[3]
    assert len({len(line) for line in lines}) == 1, "columns should line up"
    assert selfcheck.check_rescaled_log_density(100 - 784 * math.log(255), 100)
    assert not selfcheck.check_rescaled_log_density(100 + 784 * math.log(255), 100)
    assert selfcheck.check_markov_parameter_count(784 * 783 // 2 + 784)
    assert selfcheck.check_markov_parameter_count(int(causal_mask(8, 8, 2).sum()) + 64, 8, 8, 2)
    assert not selfcheck.check_markov_parameter_count(784 * 783 // 2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_models_fit_score_and_sample_on_cuda_like_on_cpu(digits):
    """On a GPU the same CPU generator gives the same samples, and the scores agree with the CPU's."""
    x, c = digits["bin_train"], digits["cont_train"]
    for make, data in [(BernoulliPixels, x), (lambda: GaussianPixels(rank=None), c),
                       (lambda: MarkovPixels(radius=2, steps=20), x)]:
        cpu, gpu = make().fit(data), make().fit(data.cuda())
        assert torch.allclose(cpu.log_prob(data[:20]), gpu.log_prob(data[:20].cuda()).cpu(), rtol=1e-3, atol=1e-2)
        sample = gpu.sample(5, torch.Generator().manual_seed(0))
        assert sample.is_cuda and sample.shape == (5, 1, 8, 8)
    clf = GenerativeClassifier(BernoulliPixels).fit(x.cuda(), digits["y_train"].cuda())
    assert clf.predict(digits["bin_test"].cuda()).is_cuda


def test_ridge_adds_lambda_to_every_eigenvalue_and_keeps_eigenvectors_and_covariances(digits):
    """The chapter's claim about S + lambda I: a shift of the spectrum, not a move towards a diagonal."""
    x, lam = digits["cont_train"], 0.005
    model = GaussianPixels(ridge=lam).fit(x)
    flat = x.flatten(1).double().numpy()
    S = model.sample_covariance
    assert np.allclose(S.numpy(), np.cov(flat.T, bias=True), atol=1e-12)
    sigma = model.covariance()
    evals, evecs = torch.linalg.eigh(S)
    assert torch.allclose(torch.linalg.eigvalsh(sigma), evals + lam, atol=1e-10)
    # the eigenvectors of S diagonalise Sigma with the shifted eigenvalues
    assert torch.allclose(evecs.T @ sigma @ evecs, torch.diag(evals + lam), atol=1e-10)
    off_diagonal = ~torch.eye(64, dtype=torch.bool)
    assert torch.allclose(sigma[off_diagonal], S[off_diagonal], atol=1e-12)
    # a shrinkage towards a diagonal would have moved the off-diagonal entries: they are far from 0
    assert S[off_diagonal].abs().max() > 10 * lam
    # probabilistic PCA's covariance() is the low-rank one it scores with
    ppca = GaussianPixels(rank=3, ridge=lam).fit(x)
    mvn = torch.distributions.MultivariateNormal(ppca.mean, covariance_matrix=ppca.covariance())
    assert torch.allclose(ppca.log_prob(x[:5]).double(), mvn.log_prob(x[:5].flatten(1).double()), rtol=1e-5, atol=1e-3)


def test_bernoulli_log_prob_fast_path_and_unsmoothed_estimate(digits):
    x, test = digits["bin_train"], digits["bin_test"]
    smoothed = BernoulliPixels(alpha=1).fit(x)
    flat, mu = test.flatten(1), smoothed.probs
    by_logs = (torch.xlogy(flat, mu) + torch.xlogy(1 - flat, 1 - mu)).sum(1)  # eq. (generative-bernoulli)
    assert torch.allclose(smoothed.log_prob(test), by_logs, rtol=1e-5, atol=1e-4)
    # alpha=0: probabilities of exactly 0 and 1, so the elementwise path: -inf only for test images that
    # light a pixel never lit in training, and every training image finite
    x = x.clone()
    x[:, 0, 0, 0] = 0.0  # a corner pixel never lit in training
    mle = BernoulliPixels(alpha=0).fit(x)
    assert mle.probs[0] == 0
    test = test[:20].clone()
    test[:5, 0, 0, 0] = 1.0  # five test images light it
    scores = mle.log_prob(test)
    flat = test.flatten(1)
    impossible = ((flat == 1) & (mle.probs == 0)).any(1) | ((flat == 0) & (mle.probs == 1)).any(1)
    assert torch.equal(torch.isinf(scores), impossible) and bool(impossible[:5].all())
    assert torch.isfinite(mle.log_prob(x)).all()
