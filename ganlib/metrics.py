"""Metrics that let the book measure a generator instead of describing it.

Toy 2D mixtures (the ring and grid of Gaussians):

* :func:`mode_coverage` -- modes captured, fraction of high-quality samples and reverse KL of the
  mode histogram, as defined by VEEGAN (Srivastava et al., 2017) and PacGAN (Lin et al., 2018).

Feature-space metrics (written out so the evaluation chapter can teach them):

* :func:`frechet_distance` -- the Frechet distance between two Gaussians, the formula behind FID;
* :func:`inception_score` -- exp E_x KL(p(y|x) || p(y)) from class probabilities;
* :func:`precision_recall` -- k-NN precision and recall (Kynkaanniemi et al., 2019);
* :func:`density_coverage` -- density and coverage (Naeem et al., 2020), the same balls, counted
  differently;
* :func:`fid_against_sample_size` and :func:`extrapolate_fid` -- FID's bias with the number of
  samples, and its extrapolation to infinitely many (Chong & Forsyth, 2020);
* :func:`mnist_metrics` -- all of the above on MNIST, in the features of the book's own digit
  classifier (:mod:`ganlib.classifier`) instead of Inception-v3.

Memorisation (in pixels):

* :func:`nearest_neighbours` and :func:`memorisation` -- how close samples lie to their nearest
  training image, against how close held-out real images lie: exact copies score perfectly on
  every metric above and only this check flags them.
"""
from __future__ import annotations

import math
import warnings
from typing import NamedTuple

import numpy as np
import torch

from .classifier import classify, load_mnist_classifier
from .data import load_mnist, random_subset

# These functions evaluate a finished batch of samples, not a training step, so unlike the losses
# they also check values (NaN/inf, empty sets): the host sync that costs is paid once per evaluation.

# ----------------------------------------------------------------------------- mode coverage


class ModeCoverage(NamedTuple):
    """Result of :func:`mode_coverage`; unpacks as ``modes, hq, rkl = mode_coverage(...)``."""

    modes_captured: int
    high_quality_fraction: float
    reverse_kl: float


def mode_coverage(samples, centers, std: float, threshold: float = 3.0) -> ModeCoverage:
    """Score samples from a mixture of isotropic Gaussians (VEEGAN's and PacGAN's definitions).

    * A sample is **high quality** if it lies within ``threshold`` (3) standard deviations of its
      nearest mode centre.
    * A mode is **captured** if it is the nearest mode of at least one high-quality sample.
    * **Reverse KL** is KL(p_gen || uniform) of the histogram of nearest modes over the
      high-quality samples, ``sum_k p_k log(K p_k)``: 0 when every mode gets the same share,
      ``log K`` when all of them sit on one mode. With no high-quality sample at all it is
      reported as ``log K``, the value of total collapse.

    Args:
        samples: the generated points (a tensor or an array).
        centers: the mixture's mode centres.
        std: the mixture's standard deviation.
        threshold: the high-quality radius, in standard deviations.

    Shape:
        - samples: (N, d)
        - centers: (K, d)
    """
    x, c = torch.as_tensor(_as_float64(samples)), torch.as_tensor(_as_float64(centers))
    if x.dim() != 2 or c.dim() != 2 or x.shape[1] != c.shape[1]:
        raise ValueError(f"samples must be (N, d) and centers (K, d) with the same d; "
                         f"got {tuple(x.shape)} and {tuple(c.shape)}")
    if len(x) == 0 or len(c) == 0:  # the fractions below would be 0/0 = NaN
        raise ValueError(f"mode_coverage needs at least one sample and one mode centre; got samples of "
                         f"shape {tuple(x.shape)} and centers of shape {tuple(c.shape)}")
    if not std > 0:
        raise ValueError(f"std must be positive, got {std}")
    if not torch.isfinite(x).all():
        raise ValueError("samples contain NaN or inf (did training diverge?)")
    dist = torch.cdist(x, c)                      # (N, K)
    nearest_dist, nearest = dist.min(dim=1)
    high_quality = nearest_dist <= threshold * std
    k = len(c)
    counts = torch.bincount(nearest[high_quality], minlength=k).double()
    modes = int((counts > 0).sum())
    hq_fraction = float(high_quality.double().mean())
    if counts.sum() == 0:
        return ModeCoverage(0, hq_fraction, math.log(k))
    p = counts / counts.sum()
    nz = p > 0
    reverse_kl = float((p[nz] * torch.log(k * p[nz])).sum())
    return ModeCoverage(modes, hq_fraction, reverse_kl)


# ----------------------------------------------------------------------------- Frechet distance


def _as_float64(a) -> np.ndarray:
    if torch.is_tensor(a):
        a = a.detach().cpu().double().numpy()
    return np.asarray(a, dtype=np.float64)


def check_pixel_range(name: str, images: torch.Tensor, signed: bool = True, tolerance: float = 0.01
                      ) -> tuple[float, float]:
    """Refuse images off ganlib's pixel scale [-1, 1] with a ValueError naming ``name`` and the fix.

    Values may stray past -1 and 1 by ``tolerance``; NaN or inf is refused. With ``signed`` a batch
    with no value below 0 but some above (a [0, 1] batch: ganlib's backgrounds are -1) is refused
    too; an all-zero batch (uniform mid-grey) passes. One host sync; returns ``(min, max)``.
    """
    if images.numel() == 0:
        raise ValueError(f"{name} is empty (shape {tuple(images.shape)}); it needs at least one image")
    lo, hi = (float(v) for v in torch.stack(torch.aminmax(images.detach().float())).cpu())
    span = f"these span [{lo:.3g}, {hi:.3g}]"
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"{name} contain NaN/inf (did the generator diverge?)")
    if lo >= -tolerance and 1 + tolerance < hi <= 255 + tolerance:
        fix = "divide by 127.5 and subtract 1"
    elif signed and lo >= 0 and 0 < hi <= 1 + tolerance:
        fix = "multiply by 2 and subtract 1"
    elif lo < -1 - tolerance or hi > 1 + tolerance:
        fix = "clamp them or check what produced them"
    else:
        return lo, hi
    raise ValueError(f"{name} must be in [-1, 1] (ganlib's pixel scale); {span}: {fix}")


def _sqrtm_psd(a: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric positive semi-definite matrix, by eigendecomposition."""
    w, v = np.linalg.eigh((a + a.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    r"""Squared Frechet (2-Wasserstein) distance between N(mu1, sigma1) and N(mu2, sigma2).

    .. math::  d^2 = \lVert\mu_1-\mu_2\rVert^2 + \operatorname{tr}\Sigma_1 + \operatorname{tr}\Sigma_2
               - 2\operatorname{tr}\big(\Sigma_1^{1/2}\Sigma_2\Sigma_1^{1/2}\big)^{1/2}

    The last trace equals ``tr sqrtm(sigma1 @ sigma2)`` (the form in the FID paper), but is
    computed from a symmetric PSD matrix, so one ``eigh`` suffices and no complex parts appear.
    Special cases the tests check: equal covariances give ``|mu1 - mu2|^2``; diagonal ones give
    ``|mu1 - mu2|^2 + sum (sqrt(a) - sqrt(b))^2``. Computed in float64.

    Shape:
        - mu1, mu2: (d,)
        - sigma1, sigma2: (d, d)
    """
    mu1, mu2 = _as_float64(mu1), _as_float64(mu2)
    s1, s2 = np.atleast_2d(_as_float64(sigma1)), np.atleast_2d(_as_float64(sigma2))
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.size, mu1.size):
        raise ValueError(f"shapes do not match: mu1 {mu1.shape}, mu2 {mu2.shape}, "
                         f"sigma1 {s1.shape}, sigma2 {s2.shape}; expected (d,), (d,), (d, d), (d, d)")
    for name, a in (("mu1", mu1), ("sigma1", s1), ("mu2", mu2), ("sigma2", s2)):
        if not np.isfinite(a).all():  # eigh would raise a LinAlgError that does not say why
            raise ValueError(f"{name} contains NaN/inf; the statistics come from non-finite features "
                             "(did the generator diverge?)")
    root1 = _sqrtm_psd(s1)
    middle = root1 @ s2 @ root1
    eig = np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(eig).sum())


def feature_statistics(features) -> tuple[np.ndarray, np.ndarray]:
    """Mean (d,) and covariance (d, d) of features (N, d), in float64."""
    f = _as_float64(features)
    if f.ndim != 2 or len(f) < 2:
        raise ValueError(f"features must be (N, d) with N >= 2; got shape {f.shape}")
    if not np.isfinite(f).all():
        raise ValueError(f"features contain NaN/inf ({int((~np.isfinite(f)).any(1).sum())} of {len(f)} rows); "
                         "the Frechet distance needs finite features (did the generator diverge?)")
    n, d = f.shape
    if n <= d:
        # n samples span at most n - 1 directions, so the covariance has rank < d: a singular
        # estimate whose FID is dominated by estimation error, not by the distributions
        warnings.warn(f"only n={n} samples of d={d} features: their covariance is singular (rank at most "
                      f"{n - 1} < {d}), so the Frechet distance is not meaningful; use at least {d + 1} "
                      "samples, and many more for a stable number (FID is usually reported on 10,000)",
                      UserWarning, stacklevel=3)
    return f.mean(0), np.cov(f, rowvar=False)


def frechet_distance_from_features(features1, features2) -> float:
    """:func:`frechet_distance` between the Gaussians fitted to two feature sets: FID, in those features.

    Shape:
        - features1: (N, d), features2: (M, d), tensors or arrays; N, M > d for a meaningful number
    """
    return frechet_distance(*feature_statistics(features1), *feature_statistics(features2))


# ----------------------------------------------------------------------------- Inception Score


def inception_score(probs, splits: int = 1) -> float:
    """exp( E_x KL( p(y|x) || p(y) ) ) from class probabilities ``probs`` (N, C).

    Between 1 (every image gets the same class distribution) and C (confident and balanced). With
    ``splits > 1`` the score is averaged over that many equal chunks, as the original IS code does.

    Args:
        probs: each image's class probabilities (rows summing to 1: apply softmax first).
        splits: the number of chunks the score is averaged over, between 1 and N.

    Shape:
        - probs: (N, C)
    """
    p = _as_float64(probs)
    if p.ndim != 2 or np.any(p < 0) or not np.allclose(p.sum(1), 1, atol=1e-4):
        raise ValueError("probs must be (N, C) class probabilities (rows summing to 1; apply softmax)")
    if isinstance(splits, bool) or not isinstance(splits, (int, np.integer)) or not 1 <= splits <= len(p):
        # more splits than samples leaves empty chunks, whose score is NaN
        raise ValueError(f"splits must be an integer between 1 and N={len(p)} (the number of samples); "
                         f"got splits={splits!r}")
    scores = []
    for chunk in np.array_split(p, splits):
        marginal = chunk.mean(0, keepdims=True)
        kl = (chunk * (np.log(chunk + 1e-12) - np.log(marginal + 1e-12))).sum(1).mean()
        scores.append(math.exp(kl))
    return float(np.mean(scores))


def label_histogram(probs_or_labels, num_classes: int = 10) -> np.ndarray:
    """Fraction of samples per class (from labels (N,) or probabilities (N, C), via argmax)."""
    a = torch.as_tensor(_as_float64(probs_or_labels))
    labels = a.argmax(1) if a.dim() == 2 else a.long()
    return (torch.bincount(labels, minlength=num_classes).double() / len(labels)).numpy()


def kl_from_uniform(histogram) -> float:
    """KL(p || uniform) = sum_k p_k log(K p_k) of a class histogram (nats): 0 when balanced, log K
    when every sample is one class. The label-histogram column of the book's tables."""
    p = _as_float64(histogram)
    if p.ndim != 1 or np.any(p < 0) or not np.isclose(p.sum(), 1, atol=1e-6):
        raise ValueError("histogram must be a 1-D array of class shares summing to 1 (see label_histogram)")
    nz = p > 0
    return float((p[nz] * np.log(len(p) * p[nz])).sum())


# ----------------------------------------------------------------------------- precision and recall


def _kth_neighbour_radius(features: torch.Tensor, k: int, chunk: int = 2048) -> torch.Tensor:
    """Distance from each point to its k-th nearest other point in the same set."""
    radii = []
    for i in range(0, len(features), chunk):
        d = torch.cdist(features[i:i + chunk], features)
        radii.append(d.kthvalue(k + 1, dim=1).values)  # k+1: the point itself is at distance 0
    return torch.cat(radii)


def _inside_manifold(points: torch.Tensor, support: torch.Tensor, radii: torch.Tensor,
                     chunk: int = 2048) -> torch.Tensor:
    inside = []
    for i in range(0, len(points), chunk):
        d = torch.cdist(points[i:i + chunk], support)
        inside.append((d <= radii[None, :]).any(dim=1))
    return torch.cat(inside)


def _feature_pair(real_features, fake_features, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Both feature sets as float64 tensors, checked: (N, d) each, the same d, finite, more than k rows."""
    real = torch.as_tensor(_as_float64(real_features))
    fake = torch.as_tensor(_as_float64(fake_features))
    if real.dim() != 2 or fake.dim() != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"features must be (N, d) with the same d; got {tuple(real.shape)}, {tuple(fake.shape)}")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be an integer >= 1 (the k-th nearest neighbour sets each ball's radius; "
                         f"k=0 gives balls of radius 0); got k={k!r}")
    if min(len(real), len(fake)) <= k:
        raise ValueError(f"need more than k={k} points in each set; got {len(real)} real and {len(fake)} fake "
                         "points: pass more points or lower k")
    for name, f in (("real_features", real), ("fake_features", fake)):
        if not torch.isfinite(f).all():  # NaN distances compare False: precision and recall would be 0
            raise ValueError(f"{name} contain NaN/inf ({int((~torch.isfinite(f)).any(1).sum())} of {len(f)} "
                             "rows); precision and recall need finite features (did the generator diverge?)")
    return real, fake


def _real_radii(real: torch.Tensor, k: int) -> torch.Tensor:
    """:func:`_kth_neighbour_radius` of the real points, refusing the degenerate case where every one is 0."""
    radii = _kth_neighbour_radius(real, k)
    if not bool((radii > 0).any()):  # every ball is a point: only exact copies of real points count as inside
        raise ValueError(f"real_features: every real point's k-th nearest neighbour (k={k}) is an identical copy, so "
                         "every ball has radius 0 and only exact copies would count; pass distinct real points")
    return radii


def precision_recall(real_features, fake_features, k: int = 3) -> tuple[float, float]:
    """k-NN precision and recall (Kynkaanniemi et al., 2019).

    Each set's manifold is the union of balls around its points, each ball reaching to that
    point's k-th nearest neighbour. **Precision** is the fraction of generated points inside the
    real manifold (are samples realistic?); **recall** the fraction of real points inside the
    generated manifold (is the data's variety covered?).

    Args:
        real_features: features of real images.
        fake_features: features of generated images.
        k: the neighbour that sets each ball's radius, >= 1; each set needs more than k points, and
            the real points may not all be identical (every ball would have radius 0).

    Shape:
        - real_features: (N, d), fake_features: (M, d), tensors or arrays

    Returns:
        ``(precision, recall)``, each in [0, 1].
    """
    real, fake = _feature_pair(real_features, fake_features, k)
    precision = _inside_manifold(fake, real, _real_radii(real, k)).double().mean()
    recall = _inside_manifold(real, fake, _kth_neighbour_radius(fake, k)).double().mean()
    return float(precision), float(recall)


def density_coverage(real_features, fake_features, k: int = 5) -> tuple[float, float]:
    """Density and coverage (Naeem et al., 2020, eqs. 3 and 4), from balls around the *real* points only.

    With B_i the ball around real point i reaching to its k-th nearest real neighbour:

    * **density** = (1 / kM) sum_j #{i : fake_j in B_i}: how many real balls hold each sample, over k.
      About 1 when the samples are distributed like the data; above 1 when they crowd into dense
      regions; not capped at 1, unlike precision, and not fooled by one outlier's large ball.
    * **coverage** = (1 / N) #{i : B_i holds at least one sample}: the share of real points with a
      sample nearby. Unlike recall it never builds balls around the samples, so a few far-flung
      samples cannot inflate it.

    Shape:
        - real_features: (N, d), fake_features: (M, d), tensors or arrays; N, M > k

    Returns:
        ``(density, coverage)``.
    """
    real, fake = _feature_pair(real_features, fake_features, k)
    radii = _real_radii(real, k)
    inside_counts = torch.zeros(len(fake), dtype=torch.float64)
    covered = torch.zeros(len(real), dtype=torch.bool)
    for i in range(0, len(fake), 2048):
        inside = torch.cdist(fake[i:i + 2048], real) <= radii[None, :]  # (fakes, reals)
        inside_counts[i:i + 2048] = inside.sum(1).double()
        covered |= inside.any(0)
    return float(inside_counts.sum() / (k * len(fake))), float(covered.double().mean())


# ----------------------------------------------------------------------------- FID and sample size


def fid_against_sample_size(real_features, fake_features, sizes, seed: int = 0) -> list[float]:
    """FID of random subsets of ``fake_features`` of each size in ``sizes`` against all of ``real_features``.

    FID is biased upwards by an amount that falls like 1/N in the number N of samples (the
    covariance estimate's error adds to the trace terms), so FIDs are comparable only at the same N.
    Subsets are drawn with ``seed``, never as a head of the array (see :func:`ganlib.data.random_subset`).

    Shape:
        - real_features: (N, d), fake_features: (M, d), with every size in ``sizes`` at most M
        - output: a list, one FID per size
    """
    fake = _as_float64(fake_features)
    real_stats = feature_statistics(real_features)
    fids = []
    for i, n in enumerate(sizes):
        idx = random_subset(len(fake), int(n), seed + i).numpy()
        fids.append(frechet_distance(*real_stats, *feature_statistics(fake[idx])))
    return fids


def extrapolate_fid(sizes, fids) -> tuple[float, float]:
    """``(fid_infinity, slope)`` of the least-squares line FID_N = FID_inf + slope / N.

    Chong & Forsyth (2020, Sec. 3) show FID_N is linear in 1/N for large N and report the
    intercept, FID_inf: the FID of infinitely many samples, free of the sample-size bias.
    """
    n = np.asarray(sizes, dtype=np.float64)
    y = np.asarray(fids, dtype=np.float64)
    if n.ndim != 1 or n.shape != y.shape:
        raise ValueError(f"sizes and fids must be 1-D and of one length (one FID per sample size); got "
                         f"{n.size} sizes and {y.size} FIDs")
    if not (np.isfinite(n).all() and (n > 0).all()):
        raise ValueError(f"sizes must be positive sample counts; got {n.tolist()}")
    if not np.isfinite(y).all():
        raise ValueError(f"fids must be finite; got {y.tolist()} (a NaN/inf FID comes from non-finite features: "
                         "drop it or fix the generator)")
    if len(np.unique(n)) < 2:
        raise ValueError(f"need FIDs at two or more different sample sizes; got sizes {n.tolist()}")
    x = 1.0 / n
    slope, intercept = np.polyfit(x, y, 1)
    return float(intercept), float(slope)


# ----------------------------------------------------------------------------- memorisation


def nearest_neighbours(samples: torch.Tensor, reference: torch.Tensor, chunk: int = 10000):
    """For each sample, the index of and the L2 distance to its nearest ``reference`` image (pixels).

    Shape:
        - samples: (N, *), reference: (M, *), the same size per example
        - output: ``(indices (N,) int64, distances (N,))``
    """
    for name, t in (("samples", samples), ("reference", reference)):
        if t.dim() < 2 or len(t) == 0:
            raise ValueError(f"{name} must be a non-empty batch (N, *) of images or feature vectors; "
                             f"got shape {tuple(t.shape)}")
    if samples[0].numel() != reference[0].numel():
        raise ValueError(f"samples and reference must have the same size per example; got shapes "
                         f"{tuple(samples.shape)} and {tuple(reference.shape)}")
    flat = samples.flatten(1).float()
    best_d = torch.full((len(flat),), float("inf"))
    best_i = torch.zeros(len(flat), dtype=torch.long)
    for start in range(0, len(reference), chunk):
        d = torch.cdist(flat, reference[start:start + chunk].flatten(1).float())
        value, index = d.min(1)
        better = value < best_d
        best_d[better], best_i[better] = value[better], index[better] + start
    return best_i, best_d


class Memorisation(NamedTuple):
    """Result of :func:`memorisation`."""

    copy_fraction: float   # share of samples nearer to the training set than all but `quantile` of held-out images
    distance_ratio: float  # median sample-to-train distance / median held-out-to-train distance
    threshold: float       # the `quantile` of held-out-to-train distances (pixels, L2)
    quantile: float

    @property
    def flags_copies(self) -> bool:
        """True when the copy fraction exceeds ten times what held-out real images give (the quantile)."""
        return self.copy_fraction > 10 * self.quantile


def memorisation(samples: torch.Tensor, train: torch.Tensor, held_out: torch.Tensor,
                 quantile: float = 0.01) -> Memorisation:
    """How near samples lie to the training images, against how near fresh real images lie.

    Held-out real images (e.g. test images) give the null distribution of nearest-training-image
    distances (in pixels, L2). ``copy_fraction`` is the share of samples nearer than its
    ``quantile`` (1%): about ``quantile`` for images as new as test images, 1 for exact training
    copies. ``distance_ratio`` compares medians: below 1 the samples hug the training set. A
    generator can score 0 on both and still be useless (noise is far from everything); read them
    beside FID, never alone.

    Shape:
        - samples, train, held_out: (N, *), (M, *), (K, *), one image shape, on one pixel scale
          (ganlib's [-1, 1]); K >= 2
    """
    lows = {}
    for name, t in (("samples", samples), ("train", train), ("held_out", held_out)):
        if t.dim() < 2 or len(t) == 0 or tuple(t.shape[1:]) != tuple(train.shape[1:]):
            raise ValueError(f"samples, train and held_out must be non-empty image batches of one shape; "
                             f"got {name} of shape {tuple(t.shape)} (train {tuple(train.shape)})")
        lows[name] = check_pixel_range(name, t, signed=False)[0]
    if len({lo < 0 for lo in lows.values()}) > 1:  # pixel distances across two scales mean nothing
        unsigned = [name for name, lo in lows.items() if lo >= 0]
        raise ValueError(f"{' and '.join(unsigned)} have no value below 0 while the others do: put all three on "
                         "ganlib's [-1, 1] scale (x * 2 - 1 for [0, 1] images)")
    if len(held_out) < 2:  # checked here too, before the costly distances
        raise ValueError(f"held_out needs at least 2 images (their distances set the copy threshold); "
                         f"got {len(held_out)}")
    return memorisation_from_distances(nearest_neighbours(samples, train)[1], nearest_neighbours(held_out, train)[1],
                                       quantile)


def memorisation_from_distances(sample_distances: torch.Tensor, held_out_distances: torch.Tensor,
                                quantile: float = 0.01) -> Memorisation:
    """:func:`memorisation` from the nearest-training-image distances of the samples and of the held-out images."""
    if not 0 < quantile < 1:
        raise ValueError(f"quantile must be in (0, 1), got {quantile}")
    if len(held_out_distances) < 2 or len(sample_distances) == 0:
        raise ValueError(f"need the distances of at least 2 held-out images and 1 sample; got "
                         f"{len(held_out_distances)} and {len(sample_distances)}")
    threshold = float(torch.quantile(held_out_distances.double(), quantile))
    return Memorisation(float((sample_distances < threshold).double().mean()),
                        float(sample_distances.median() / held_out_distances.median()), threshold, quantile)


# ----------------------------------------------------------------------------- MNIST metrics


def mnist_metrics(generated: torch.Tensor, reference: torch.Tensor | None = None, classifier=None,
                  k: int = 3, reference_features: torch.Tensor | None = None,
                  with_density_coverage: bool = True) -> dict:
    """FID, classifier IS, precision/recall, density/coverage and label histogram of MNIST-like images.

    ``generated`` and ``reference`` are (N, 1, 28, 28) in [-1, 1]; the reference defaults to the
    10k MNIST test images (compare 10k generated images against it for the book's "MNIST FID").
    Features are the 128-d penultimate layer of :func:`ganlib.classifier.load_mnist_classifier`;
    pass ``reference_features`` instead of ``reference`` to score many sets against one reference.

    Args:
        generated: the images to score.
        reference: the real images to compare with (default: the MNIST test set).
        classifier: the feature network (default: the book's MNIST classifier).
        k: the neighbour of :func:`precision_recall` (density and coverage use their own default, 5).
        reference_features: the reference's features, already computed.
        with_density_coverage: also density and coverage (another nearest-neighbour pass over both sets).

    Shape:
        - generated: (N, 1, 28, 28), in [-1, 1]
        - reference: (M, 1, 28, 28), in [-1, 1]
        - reference_features: (M, 128)

    Returns:
        a dict: ``fid``, ``inception_score``, ``precision``, ``recall``, ``density`` and ``coverage``
        (when ``with_density_coverage``), ``label_histogram`` (an array of 10 shares) and ``label_kl``
        (:func:`kl_from_uniform`).
    """
    if reference is not None and reference_features is not None:
        raise ValueError("pass reference images or reference_features, not both")
    for name, images in (("generated", generated), ("reference", reference)):
        if images is None:
            continue
        if images.dim() != 4 or tuple(images.shape[1:]) != (1, 28, 28):
            raise ValueError(f"{name} must be MNIST-like images of shape (N, 1, 28, 28); got {tuple(images.shape)}")
        check_pixel_range(name, images)
    if classifier is None:
        classifier = load_mnist_classifier()
    if reference is None and reference_features is None:
        reference, _ = load_mnist("test")
    fake_f, fake_p = classify(classifier, generated)
    real_f = reference_features if reference_features is not None else classify(classifier, reference)[0]
    precision, recall = precision_recall(real_f, fake_f, k=k)
    histogram = label_histogram(fake_p)
    out = {"fid": frechet_distance_from_features(real_f, fake_f), "inception_score": inception_score(fake_p),
           "precision": precision, "recall": recall, "label_histogram": histogram, "label_kl": kl_from_uniform(histogram)}
    if with_density_coverage:
        out["density"], out["coverage"] = density_coverage(real_f, fake_f)
    return out
