"""Helpers of the chapter "Evaluating generative models" (book/evaluation.ipynb).

* controlled failures of real or generated digits: :func:`add_noise`, :func:`box_blur`,
  :func:`without_classes`, :func:`collapsed`, and truncated latents (:func:`truncated_samples`);
* :class:`Judge` scores one set of images on every metric of the book (:mod:`ganlib.metrics`)
  against one reference, and :func:`verdicts` marks whether each metric moved as it should;
* why a GAN's own numbers are no judge: :func:`loss_and_fid` (a shipped run's losses beside its
  FID) and :func:`discriminator_as_judge` (a trained discriminator's scores of good and bad samples);
* three commands with results files in ``book/results/``: ``python -m ganlib.chapters.evaluation
  calibrate`` (the book's MNIST FID of real digits spoiled in known ways, 10k against the 10k test
  images: ``mnist_fid_calibration.json``), ``validate`` (the controlled failures, the test set's
  order and FID against sample size: ``evaluation_validation.json``) and ``rank`` (every model of
  the book on one table: ``evaluation_ranking.json``).
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from .. import metrics, pretrained
from ..classifier import classify, load_mnist_classifier
from ..command import number_type
from ..data import gaussian_ring, load_mnist, random_subset
from ..likelihood import iwae_log_likelihood
from .classic import BernoulliPixels, GaussianPixels, MarkovPixels, binarize, dequantize, mean_log_likelihood
from .experiments import Setup, train_toy_gan
from .results import (RESULTS_DIR, add_command, command_parser, load_results, provenance, run_one_thread_command,
                      save_results)

CALIBRATION_PATH = RESULTS_DIR / "mnist_fid_calibration.json"
CALIBRATION_COMMAND = "python -m ganlib.chapters.evaluation calibrate"
VALIDATION_PATH = RESULTS_DIR / "evaluation_validation.json"
RANKING_PATH = RESULTS_DIR / "evaluation_ranking.json"
VALIDATION_COMMAND = "python -m ganlib.chapters.evaluation validate"
RANKING_COMMAND = "python -m ganlib.chapters.evaluation rank"

# ----------------------------------------------------------------------------- controlled failures


def add_noise(images: torch.Tensor, std: float, generator: torch.Generator) -> torch.Tensor:
    """Gaussian pixel noise of standard deviation ``std`` (pixels in [-1, 1]), clipped to [-1, 1]."""
    return (images + std * torch.randn(images.shape, generator=generator)).clamp(-1, 1)


def box_blur(images: torch.Tensor) -> torch.Tensor:
    """Each pixel replaced by the mean of its 3x3 neighbourhood (fewer at the border)."""
    return F.avg_pool2d(images, 3, stride=1, padding=1, count_include_pad=False)


def without_classes(images: torch.Tensor, labels: torch.Tensor, dropped, n: int,
                    generator: torch.Generator) -> torch.Tensor:
    """``n`` random images whose label is not in ``dropped``: mode dropping with the set's size kept."""
    keep = torch.nonzero(~torch.isin(labels, torch.as_tensor(list(dropped), dtype=labels.dtype))).squeeze(1)
    if len(keep) < n:
        raise ValueError(f"only {len(keep)} images remain after dropping classes {list(dropped)}; asked for {n}")
    return images[keep[torch.randperm(len(keep), generator=generator)[:n]]]


def collapsed(images: torch.Tensor, labels: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """Mode collapse: one random image of each class, each repeated until there are ``n`` images."""
    classes = labels.unique()
    picks = torch.stack([torch.nonzero(labels == c).squeeze(1)[torch.randint(int((labels == c).sum()), (1,),
                                                                             generator=generator)][0]
                         for c in classes])
    return images[picks.repeat(math.ceil(n / len(picks)))[:n]]


@torch.no_grad()
def truncated_samples(generator: torch.nn.Module, n: int, psi: float, seed: int = 0) -> torch.Tensor:
    """``n`` samples from the latent ``psi * z``, z ~ N(0, I): the truncation dial (Brock et al., 2019,
    Sec. 3.1; Karras et al., 2019, Sec. 2.1). ``psi = 1`` is the model; smaller trades variety for
    typical samples; ``psi = 0`` is one image, G(0)."""
    if not 0 <= psi <= 1:
        raise ValueError(f"psi must be in [0, 1] (1: no truncation), got {psi}")
    z = psi * torch.randn(n, generator.latent_dim, generator=torch.Generator().manual_seed(seed))
    was_training = generator.training
    generator.eval()
    out = torch.cat([generator(z[i:i + 1000]).float() for i in range(0, n, 1000)])
    generator.train(was_training)
    return out


# ----------------------------------------------------------------------------- scoring


# The columns of the chapter's tables: name, how a worse set moves it, and the least change that
# counts as moving (smaller changes are sampling noise at the chapter's set sizes).
COLUMNS = {
    "fid": ("lower is better", 0.5),              # relative: two draws of ~1,000 real digits differ by tens of % (the chapter prints it)
    "inception_score": ("higher is better", 0.1),
    "precision": ("higher is better", 0.02),
    "recall": ("higher is better", 0.02),
    "density": ("higher is better", 0.05),
    "coverage": ("higher is better", 0.02),
    "label_kl": ("lower is better", 0.01),
    "copy_fraction": ("flagged above 10 x the 1% quantile", None),
}
SAME_TOLERANCE = 0.05  # "stays the same": within 0.05 (precision under mode dropping)
#: FID_inf is fitted from this many samples on: below it (4-8x the 128 feature dimensions) FID_N
#: bends away from the line in 1/N that larger N follow (evaluation_validation.json shows it)
FIT_FROM_N = 2000


class Judge:
    """Everything a set of MNIST-like images is scored against, computed once.

    ``reference`` are real images (their classifier features are the FID / precision / recall
    reference); ``train`` the training images that samples must not copy; ``held_out`` real images
    the model never saw, whose distances to ``train`` set the memorisation threshold.
    """

    def __init__(self, reference: torch.Tensor, train: torch.Tensor, held_out: torch.Tensor, classifier=None,
                 reference_features: torch.Tensor | None = None):
        self.classifier = classifier if classifier is not None else load_mnist_classifier()
        self.reference_features = (reference_features if reference_features is not None
                                   else classify(self.classifier, reference)[0])
        self.train = train
        _, self.held_out_distances = metrics.nearest_neighbours(held_out, train)

    def score(self, images: torch.Tensor, memorisation: bool = True) -> dict:
        """FID, IS, precision, recall, density, coverage, label KL and (``memorisation``) the copy check."""
        out = metrics.mnist_metrics(images, classifier=self.classifier, reference_features=self.reference_features)
        out = {**{k: v for k, v in out.items() if k != "label_histogram"}, "n": len(images)}
        if memorisation:
            m = self.memorisation(images)
            out.update(copy_fraction=m.copy_fraction, distance_ratio=m.distance_ratio, flags_copies=m.flags_copies)
        return out

    def memorisation(self, images: torch.Tensor, quantile: float = 0.01) -> metrics.Memorisation:
        """:func:`ganlib.metrics.memorisation`, reusing the held-out images' distances."""
        _, sample_distances = metrics.nearest_neighbours(images, self.train)
        return metrics.memorisation_from_distances(sample_distances, self.held_out_distances, quantile)


def verdict(metric: str, expected: str | None, value, base) -> bool | None:
    """Did ``metric`` respond as a good metric should? ``expected`` is ``"worse"`` (the set is worse
    than the base set in a way the metric claims to measure), ``"same"`` (it should not move), or
    ``"not worse"``; ``None``: no expectation. ``copy_fraction`` is right when it flags a set exactly
    when it is expected to be "worse" (a set of copies)."""
    if expected is None or value is None:
        return None
    if metric == "copy_fraction":
        return bool(value) == (expected == "worse")  # `value` is the flag here
    direction, least = COLUMNS[metric]
    change = (value - base) / base if metric == "fid" else value - base
    worse = change > least if direction.startswith("lower") else change < -least
    if expected == "worse":
        return worse
    if expected == "not worse":
        return not worse
    if expected == "same":
        return abs(value - base) <= (SAME_TOLERANCE * abs(base) if metric == "fid" else SAME_TOLERANCE)
    raise ValueError(f"unknown expectation {expected!r}")


def verdicts(row: dict, base: dict) -> dict:
    """{metric: True / False / None} for one row of the validation table against its base row."""
    out = {}
    for metric in COLUMNS:
        value = row.get("flags_copies") if metric == "copy_fraction" else row.get(metric)
        out[metric] = verdict(metric, row["expect"].get(metric), value, base.get(metric))
    return out


# What a good metric should do for each kind of failure (a metric not named: no claim), keyed by
# the words printed beside each row. Quality failures should show in FID, IS, precision and
# density; diversity failures in FID, IS, recall, coverage and the label histogram, with precision
# unmoved (no worse, for a collapse onto real images); copies should be flagged, by every metric
# (the set is worse in the one way that matters: it is the training set), and no other set should be.
_DIVERSITY = {"fid": "worse", "inception_score": "worse", "precision": "same", "recall": "worse",
              "coverage": "worse", "label_kl": "worse", "copy_fraction": "same"}
EXPECTATIONS = {
    "base": {"copy_fraction": "same"},
    "quality down": {"fid": "worse", "inception_score": "worse", "precision": "worse", "density": "worse",
                     "copy_fraction": "same"},
    "diversity down": _DIVERSITY,
    "collapse": {**_DIVERSITY, "precision": "not worse"},
    "flag copies": {m: "worse" for m in COLUMNS},
    "recall down": {"fid": "worse", "inception_score": "worse", "precision": "not worse", "recall": "worse",
                    "coverage": "worse", "copy_fraction": "same"},
}


# ----------------------------------------------------------------------------- the validation table


def validation_sets(fresh: torch.Tensor, fresh_labels: torch.Tensor, train: torch.Tensor, n: int,
                    generator_model: torch.nn.Module | None, judge_classifier, seed: int = 0) -> list[dict]:
    """The controlled failures: ``[{"group", "name", "images", "should"}]``, each set of ``n`` images;
    ``should`` names the set's entry of :data:`EXPECTATIONS`.

    Real sets come from ``fresh``: training-distribution images held out of ``train`` (the set that
    samples must not copy), so that the copies, drawn from ``train``, differ from the base set in
    nothing but being copies. Generated sets come from ``generator_model``, their classes read by
    the classifier.
    """
    rng = torch.Generator().manual_seed(seed)
    base = fresh[random_subset(len(fresh), n, seed)]
    sets = [dict(group="real", name="real digits (held out)", images=base, should="base")]
    sets += [dict(group="real", name=f"noise, std {s}", images=add_noise(base, s, rng), should="quality down")
             for s in (0.1, 0.2, 0.4)]
    sets.append(dict(group="real", name="3x3 blur", images=box_blur(base), should="quality down"))
    for name, dropped in (("1 class dropped (digit 9)", [9]), ("3 classes dropped (digits 7-9)", [7, 8, 9]),
                          ("5 classes dropped (digits 5-9)", [5, 6, 7, 8, 9])):
        sets.append(dict(group="real", name=name, images=without_classes(fresh, fresh_labels, dropped, n, rng),
                         should="diversity down"))
    sets.append(dict(group="real", name="collapse: 10 images repeated", should="collapse",
                     images=collapsed(fresh, fresh_labels, n, rng)))
    sets.append(dict(group="real", name="memorised: training images", should="flag copies",
                     images=train[random_subset(len(train), n, seed + 1)]))
    if generator_model is None:
        return sets
    pool = truncated_samples(generator_model, 3 * n, 1.0, seed)
    _, pool_probs = classify(judge_classifier, pool)
    pool_labels = pool_probs.argmax(1)
    samples = pool[:n]
    sets.append(dict(group="generated", name="samples", images=samples, should="base"))
    sets.append(dict(group="generated", name="samples + noise, std 0.2", images=add_noise(samples, 0.2, rng),
                     should="quality down"))
    sets.append(dict(group="generated", name="3 classes dropped (as classified)", should="diversity down",
                     images=without_classes(pool, pool_labels, [7, 8, 9], n, rng)))
    sets.append(dict(group="generated", name="collapse: 10 samples repeated", should="collapse",
                     images=collapsed(pool, pool_labels, n, rng)))
    for psi in (0.75, 0.5, 0.25):
        sets.append(dict(group="generated", name=f"truncation psi = {psi}", should="recall down",
                         images=truncated_samples(generator_model, n, psi, seed)))
    return sets


def validation_judge(test: torch.Tensor, train: torch.Tensor, train_labels: torch.Tensor, n_reference: int,
                     n_fresh: int, n_kept: int | None, classifier=None, seed: int = 0):
    """Split the data for the validation table: returns ``(judge, fresh, fresh_labels, kept)``.

    The FID / precision / recall reference is ``n_reference`` random test images. The training
    images are split at random: ``n_fresh`` of them are held out (the real sets are drawn from them,
    and they give the memorisation check its null distances), and ``n_kept`` of the rest (all when
    None) play the training set that samples must not copy.
    """
    order = random_subset(len(train), len(train), seed)
    fresh_idx, kept_idx = order[:n_fresh], order[n_fresh:] if n_kept is None else order[n_fresh:n_fresh + n_kept]
    fresh, kept = train[fresh_idx], train[kept_idx]
    judge = Judge(test[random_subset(len(test), n_reference, seed)], kept, fresh, classifier)
    return judge, fresh, train_labels[fresh_idx], kept


def validation_table(judge: Judge, sets: list[dict]) -> list[dict]:
    """Score every set; each row gets its scores, expectations and verdicts against its group's first row."""
    rows, bases = [], {}
    for s in sets:
        row = {"group": s["group"], "name": s["name"], "should": s["should"], "expect": EXPECTATIONS[s["should"]],
               **judge.score(s["images"])}
        base = bases.setdefault(s["group"], row)
        row["verdicts"] = verdicts(row, base)
        rows.append(row)
    return rows


def format_validation(rows: list[dict]) -> str:
    """The validation table as text: each value, then a mark: + as a good metric should, X not, blank: no claim."""
    names = {"fid": "FID", "inception_score": "IS", "precision": "prec.", "recall": "recall",
             "density": "dens.", "coverage": "cover.", "label_kl": "KL lab.", "copy_fraction": "copies"}
    header = f"{'set':36s}{'a good metric sees':>19s}" + "".join(f"{names[m]:>10s}" for m in COLUMNS)
    lines = [header, "-" * len(header)]
    for i, row in enumerate(rows):
        if i == 0 or row["group"] != rows[i - 1]["group"]:
            lines.append(f"[{row['group']}]")
        cells = []
        for m in COLUMNS:
            v = row[m]
            text = f"{100 * v:.1f}%" if m == "copy_fraction" else (f"{v:.1f}" if m == "fid" else f"{v:.2f}")
            mark = {True: "+", False: "X", None: " "}[row["verdicts"][m]]
            cells.append(f"{text:>9s}{mark}")
        lines.append(f"{row['name'][:36]:36s}{row.get('should', ''):>19s}" + "".join(cells))
    return "\n".join(lines)


def failures(rows: list[dict]) -> dict:
    """{metric: [names of the sets where it did not respond as it should]}."""
    return {m: [r["name"] for r in rows if r["verdicts"][m] is False] for m in COLUMNS}


# ----------------------------------------------------------------------------- the test set's order


def test_set_order(test_features: torch.Tensor, train_features: torch.Tensor, half: int = 5000,
                   seed: int = 0) -> dict:
    """FIDs that show MNIST's test set is ordered: its head against its tail, the head against training
    images, and random halves against each other (all sets of ``half`` images)."""
    n = len(test_features)
    if 2 * half > n or half > len(train_features):
        raise ValueError(f"need 2 x {half} test features and {half} training features; got {n} and {len(train_features)}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    fid = metrics.frechet_distance_from_features
    return {"head vs tail": fid(test_features[:half], test_features[-half:]),
            "head vs random training images": fid(test_features[:half], train_features[random_subset(len(train_features), half, seed)]),
            "random half vs random half": fid(test_features[perm[:half]], test_features[perm[half:2 * half]]),
            "half": half}


# ----------------------------------------------------------------------------- a GAN's own numbers


def loss_and_fid(record: dict) -> list[dict]:
    """For each FID measured during a shipped run (``fid_over_training``), the generator's and
    discriminator's mean losses over the logged steps since the previous measurement."""
    history, rows, previous = record["history"], [], 0
    for point in record["fid_over_training"]:
        window = [i for i, s in enumerate(history["step"]) if previous < s <= point["step"]]
        if window:
            rows.append({"step": point["step"], "fid": point.get("ema", point["raw"])["fid"],
                         "loss_g": sum(history["loss_g"][i] for i in window) / len(window),
                         "loss_d": sum(history["loss_d"][i] for i in window) / len(window)})
        previous = point["step"]
    return rows


def rank_correlation(a, b) -> float:
    """Spearman's rank correlation of two equally long sequences (no ties expected)."""
    ra, rb = (torch.tensor(x, dtype=torch.float64).argsort().argsort().double() for x in (a, b))
    ra, rb = ra - ra.mean(), rb - rb.mean()
    return float((ra * rb).sum() / (ra.norm() * rb.norm()))


def discriminator_as_judge(steps: int = 1500, seed: int = 0, n: int = 2000) -> dict:
    """Train a GAN on the 8-mode ring, then ask its discriminator to score sample sets it should rank.

    Returns D's mean probability "real" for: real data; the generator's samples; a fully collapsed
    generator (every sample exactly on one mode: perfect samples, one eighth of the variety);
    points on a ring of radius 2 (nothing like the data); and N(0, I) noise.
    """
    setup = Setup(steps=steps, seeds=(seed,), configs=("nonsaturating",))
    trainer, coverage = train_toy_gan("nonsaturating", "ring", seed, setup)
    ring = gaussian_ring()
    g = torch.Generator().manual_seed(seed + 1)
    angle = 2 * math.pi * torch.rand(n, generator=g)
    sets = {"real data": ring.sample(n, g),
            "the generator's samples": trainer.sample(n, seed=seed + 2).cpu(),
            "collapsed: all samples on one mode": ring.centers[:1].repeat(n, 1) + ring.std * torch.randn(n, 2, generator=g),
            "a ring of radius 2 (no data there)": torch.stack([2 * angle.cos(), 2 * angle.sin()], 1),
            "N(0, I) noise": torch.randn(n, 2, generator=g)}
    D = trainer.discriminator.eval()
    with torch.no_grad():
        scores = {name: float(torch.sigmoid(D(x.to(next(D.parameters()).device))).mean()) for name, x in sets.items()}
    return {"scores": scores, "modes": coverage.modes_captured, "high_quality": coverage.high_quality_fraction,
            "steps": steps}


# ----------------------------------------------------------------------------- commands


def calibration(seed: int = 0) -> dict:
    """The book's MNIST FID (10k images vs the 10k test images) of real digits, spoiled in known ways.

    Rows: a random 10k subset of the training images; the same with Gaussian noise (std 0.1, 0.2,
    0.4); blurred by a 3x3 box filter; and 10k training images of the digits 0-4 only (half the
    classes missing). They give the scale its meaning.
    """
    start = time.perf_counter()
    rng = torch.Generator().manual_seed(seed)
    x, y = load_mnist("train")
    subset = x[torch.randperm(len(x), generator=rng)[:10_000]]
    sets = {"random training subset": subset}
    sets.update({f"with noise, std {s}": add_noise(subset, s, rng) for s in (0.1, 0.2, 0.4)})
    sets["3x3 blur"] = box_blur(subset)
    sets["digits 0-4 only"] = without_classes(x, y, range(5, 10), 10_000, rng)
    rows = {}
    for name, images in sets.items():
        m = metrics.mnist_metrics(images)
        rows[name] = {k: float(m[k]) for k in ("fid", "inception_score", "precision", "recall")}
    return {**provenance(f"{CALIBRATION_COMMAND} --seed {seed}", start), "rows": rows}


def validation(n: int = 2000, n_reference: int = 5000, seed: int = 0, model: str = "mlp-mnist",
               sizes=(500, 1000, 2000, 5000, 10000), log=print) -> dict:
    """Everything the chapter's validation section shows at full size (``validate``)."""
    start = time.perf_counter()
    classifier = load_mnist_classifier()
    test, _ = load_mnist("test")
    train, train_labels = load_mnist("train")
    judge, fresh, fresh_labels, kept = validation_judge(test, train, train_labels, n_reference, 10_000, None,
                                                        classifier, seed)
    generator_model = pretrained.load(model)
    sets = validation_sets(fresh, fresh_labels, kept, n, generator_model, classifier, seed)
    rows = validation_table(judge, sets)
    log(format_validation(rows))
    test_features, _ = classify(classifier, test)
    train_features, _ = classify(classifier, train[random_subset(len(train), 10_000, seed)])
    samples, _ = pretrained.generate(generator_model, max(sizes), seed=seed)
    sample_features, _ = classify(classifier, samples)
    fid_n = {"generated": metrics.fid_against_sample_size(test_features, sample_features, sizes, seed),
             "training images": metrics.fid_against_sample_size(test_features, train_features, sizes, seed)}
    for r in rows:
        r["flags_copies"] = bool(r["flags_copies"])
    return {**provenance(f"{VALIDATION_COMMAND} --n {n} --n-reference {n_reference} --seed {seed}", start),
            "n": n, "n_reference": n_reference, "model": model, "rows": rows,
            "order": test_set_order(test_features, train_features, 5000, seed),
            "fid_against_n": {"sizes": list(sizes), "reference": "the 10k MNIST test images", **fid_n,
                              "fit_sizes": fit_sizes(sizes),
                              **{f"{k}_extrapolated": extrapolate(sizes, v) for k, v in fid_n.items()}}}


def fit_sizes(sizes) -> list[int]:
    """The sample sizes the FID_inf line is fitted through: :data:`FIT_FROM_N` and more."""
    return [n for n in sizes if n >= FIT_FROM_N]


def extrapolate(sizes, fids) -> tuple[float, float]:
    """``(fid_infinity, slope)`` of the line in 1/N through the FIDs at :func:`fit_sizes` only."""
    fitted = set(fit_sizes(sizes))
    return metrics.extrapolate_fid([n for n in sizes if n in fitted], [f for n, f in zip(sizes, fids) if n in fitted])


def ranking(seed: int = 0, n: int = 10_000, markov_steps: int = 5000, vae_k: int = 100, log=print) -> dict:
    """Every model of the book scored on one table (``rank``): 10k samples each against the 10k test
    images, memorisation against the 60k training images, likelihood where the model has one."""
    start = time.perf_counter()
    test, _ = load_mnist("test")
    train, _ = load_mnist("train")
    judge = Judge(test, train, test)
    g = torch.Generator().manual_seed(seed)
    rows = []

    def add(name, kind, images, likelihood=None, note="", **extra):
        t = time.perf_counter()
        row = {"model": name, "kind": kind, **judge.score(images), "bits_per_dim": likelihood, "note": note, **extra}
        row["flags_copies"] = bool(row["flags_copies"])
        rows.append(row)
        log(json.dumps({k: v for k, v in row.items() if k != "note"}) + f"  ({time.perf_counter() - t:.0f} s)")

    def bits(log_likelihood):  # nats per image -> bits per pixel of a binary image
        return -log_likelihood / (784 * math.log(2))

    add("real: 10k training images", "data", train[random_subset(len(train), n, seed)],
        note="the reference row: what real digits score")
    x_train, x_test = binarize(train), binarize(test)
    bernoulli = BernoulliPixels().fit(x_train)
    add("Bernoulli pixels", "classic", bernoulli.sample(n, g) * 2 - 1, bits(mean_log_likelihood(bernoulli, x_test)),
        "binary pixels (threshold 0.5); test bits per pixel")
    c_train, c_test = dequantize(train, 256, g), dequantize(test, 256, g)
    gaussian = GaussianPixels(ridge=1e-4).fit(c_train)
    gauss_ll = mean_log_likelihood(gaussian, c_test)
    add("Gaussian pixels (full covariance)", "classic", gaussian.sample(n, g).clamp(0, 1) * 2 - 1,
        -(gauss_ll - 784 * math.log(256)) / (784 * math.log(2)),
        "8-bit pixels (dequantised density); bits per 8-bit pixel: not comparable with the binary rows")
    markov = MarkovPixels(radius=3, steps=markov_steps, batch_size=512, lr=0.01, l2=1e-4, seed=seed).fit(x_train)
    add("Markov pixels (radius 3)", "classic", markov.sample(n, g) * 2 - 1, bits(mean_log_likelihood(markov, x_test)),
        "binary pixels (threshold 0.5); test bits per pixel")
    vae = pretrained.load("vae-mnist")
    vae_ll = float(iwae_log_likelihood(vae, x_test * 2 - 1, vae_k, torch.Generator().manual_seed(seed)).mean())
    # the shipped models are sampled with the seed of their provenance records, so that their rows
    # repeat the records' numbers (and those of the other chapters' tables)
    add("VAE (vae-mnist), decoder means", "vae", pretrained.generate(vae, n, seed=pretrained.EVAL_SEED)[0], bits(vae_ll),
        f"binary pixels (threshold 0.5), IWAE k={vae_k} (a bound: the true value is lower); test bits per pixel")
    for name in pretrained.names("gan"):
        record = pretrained.info(name)
        add(f"{name} (EMA, shipped)", "gan", pretrained.generate(pretrained.load(name), n, seed=pretrained.EVAL_SEED)[0],
            note="no likelihood: a GAN has no density")
        raw = record["raw_generator_metrics"]
        rows.append({"model": f"{name} (raw, from its record)", "kind": "gan",
                     **{k: raw[k] for k in ("fid", "inception_score", "precision", "recall")},
                     "density": None, "coverage": None, "label_kl": metrics.kl_from_uniform(raw["label_histogram"]),
                     "copy_fraction": None, "distance_ratio": None, "flags_copies": None, "bits_per_dim": None,
                     "n": record["eval"]["samples"],
                     "note": f"measured by `{record['command']}` ({record['date'][:10]}); the raw weights are not "
                             "shipped, so the columns that need samples are empty"})
    return {**provenance(f"{RANKING_COMMAND} --seed {seed}", start), "n": n, "reference": "the 10k MNIST test images",
            "memorisation": "pixel L2 to the 60k training images; threshold: the 1% quantile of test-to-train distances",
            "rows": rows}


def load_calibration(path: Path = CALIBRATION_PATH) -> dict:
    """The committed :func:`calibration` results, or an error that names the command that writes them."""
    return load_results(path, CALIBRATION_COMMAND)


def load_validation(path: Path = VALIDATION_PATH) -> dict:
    """The committed :func:`validation` results, or an error that names the command that writes them."""
    return load_results(path, VALIDATION_COMMAND)


def load_ranking(path: Path = RANKING_PATH) -> dict:
    """The committed :func:`ranking` results, or an error that names the command that writes them."""
    return load_results(path, RANKING_COMMAND)


def main(argv=None) -> None:
    """``python -m ganlib.chapters.evaluation calibrate | validate | rank``: write a results file."""
    parser, sub = command_parser("python -m ganlib.chapters.evaluation")
    add_command(sub, "calibrate", "the MNIST FID of spoiled real digits (writes book/results/mnist_fid_calibration.json)",
                CALIBRATION_PATH, seed=0)
    add_command(sub, "validate", "controlled failures, the test set's order, FID against N "
                "(writes book/results/evaluation_validation.json)", VALIDATION_PATH, n=2000, n_reference=5000, seed=0,
                types={"n": number_type(int, 10, True, "an integer from 10 to 5000 (images per set: more than the "
                                        "metrics' 5 nearest neighbours; 5 classes dropped leave about 5,100 "
                                        "held-out digits)", highest=5000),
                       "n_reference": number_type(int, 10, True, "an integer from 10 to 10000 (of MNIST's 10,000 "
                                                  "test images)", highest=10_000)})
    add_command(sub, "rank", "every model of the book on one table (writes book/results/evaluation_ranking.json)",
                RANKING_PATH, seed=0)
    run_one_thread_command(parser, _write_results, argv)


def _write_results(args) -> None:
    if args.command == "calibrate":
        result = calibration(args.seed)
    elif args.command == "validate":
        result = validation(args.n, args.n_reference, args.seed)
    else:
        result = ranking(args.seed)
    print(f"wrote {save_results(result, args.out)}")


if __name__ == "__main__":
    main()
