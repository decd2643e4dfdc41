"""GAN theory you can run: the value function, the optimal discriminator, and the divergences.

The functions follow the chapter "The math of GANs" (``book/gan_math.ipynb``); each docstring
names the equation it implements. Densities are NumPy arrays sampled on a 1D grid ``x``, and
integrals are trapezoid sums over that grid, so make the grid wide enough to hold (almost) all
the mass of both densities and fine enough to resolve them (e.g. ``np.linspace(-10, 10, 4001)``).

* closed forms on a grid: :func:`optimal_discriminator`, :func:`value_function`,
  :func:`kl_divergence`, :func:`jensen_shannon`, :func:`value_at_optimum`,
  :func:`nonsaturating_objective`, :func:`fit_gaussian`;
* the same with networks and samples: :func:`train_discriminator` trains D to convergence
  against a fixed generator, :func:`discriminator_probability` evaluates it on a grid,
  :func:`estimate_value` is the Monte-Carlo estimate of V(D, G);
* a measure for toy runs on mixtures of Gaussians: :func:`mode_coverage`.

Example::

    x = np.linspace(-10, 10, 4001)
    p_data, p_g = gaussian_pdf(x, 0, 1), gaussian_pdf(x, 2, 1)
    d_star = optimal_discriminator(p_data, p_g)
    value_at_optimum(p_data, p_g, x)          # == -log 4 + 2 * jensen_shannon(p_data, p_g, x)
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch

from ..losses import discriminator_loss
from ..models import MLPDiscriminator

LOG4 = math.log(4.0)
_UNDERFLOW = 1e-250  # densities below this are treated as float64 underflow noise in kl_divergence

__all__ = [
    "LOG4", "gaussian_pdf", "mixture_pdf", "optimal_discriminator", "value_function",
    "kl_divergence", "jensen_shannon", "value_at_optimum", "nonsaturating_objective",
    "fit_gaussian", "train_discriminator", "discriminator_probability", "estimate_value",
]

# ----------------------------------------------------------------------------- densities on a grid


def gaussian_pdf(x, mean: float = 0.0, std: float = 1.0) -> np.ndarray:
    """The density of N(mean, std^2) at the points ``x``."""
    if std <= 0:
        raise ValueError(f"std must be positive, got {std}")
    x = np.asarray(x, dtype=np.float64)
    return np.exp(-0.5 * ((x - mean) / std) ** 2) / (std * math.sqrt(2 * math.pi))


def mixture_pdf(x, means, stds, weights=None) -> np.ndarray:
    """The density of a mixture of 1D Gaussians (equal weights unless ``weights`` is given)."""
    means, stds = np.atleast_1d(means), np.broadcast_to(np.atleast_1d(stds), np.shape(np.atleast_1d(means)))
    if weights is None:
        weights = np.full(len(means), 1.0 / len(means))
    weights = np.asarray(weights, dtype=np.float64)
    if len(weights) != len(means) or not math.isclose(weights.sum(), 1.0, rel_tol=1e-6):
        raise ValueError(f"weights must be {len(means)} numbers that sum to 1, got {weights}")
    return sum(w * gaussian_pdf(x, m, s) for w, m, s in zip(weights, means, stds))


def _check_grid(x, *arrays, names=()):
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1 or len(x) < 3 or np.any(np.diff(x) <= 0):
        raise ValueError("x must be an increasing 1D grid of at least 3 points, e.g. np.linspace(-10, 10, 4001)")
    out = []
    for name, a in zip(names, arrays):
        a = np.asarray(a, dtype=np.float64)
        if a.shape != x.shape:
            raise ValueError(f"{name} has shape {a.shape} but the grid x has shape {x.shape}; "
                             "evaluate every density on the same grid")
        out.append(a)
    return x, out


def _check_density(name, p):
    if np.any(p < 0) or not np.all(np.isfinite(p)):
        raise ValueError(f"{name} must be a density: finite and non-negative everywhere")


def _p_log_ratio(p, q):
    """p * log(p / q) pointwise, computed in log space (no overflow for tiny q), with 0 log 0 = 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(p > 0, p * (np.log(np.where(p > 0, p, 1.0)) - np.log(np.where(p > 0, q, 1.0))), 0.0)


# ----------------------------------------------------------------------------- the closed forms


def optimal_discriminator(p_data, p_g) -> np.ndarray:
    """The discriminator that maximises V(D, G) for a fixed generator: p_data / (p_data + p_g).

    Implements the optimal discriminator, eq. (gan-math-opt-d) in the chapter "The math of GANs".
    Where both densities are zero, D does not enter V at all; we return 1/2 there.
    """
    p_data, p_g = np.asarray(p_data, dtype=np.float64), np.asarray(p_g, dtype=np.float64)
    if p_data.shape != p_g.shape:
        raise ValueError(f"p_data {p_data.shape} and p_g {p_g.shape} must be evaluated on the same points")
    _check_density("p_data", p_data)
    _check_density("p_g", p_g)
    total = p_data + p_g
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0, p_data / np.where(total > 0, total, 1.0), 0.5)


def value_function(d, p_data, p_g, x) -> float:
    """V(D, G) = E_{x~p_data}[log D(x)] + E_{x~p_g}[log(1 - D(x))], integrated on the grid ``x``.

    Implements the value function, eq. (gan-math-value) in the chapter "The math of GANs" (written there
    with x = G(z) in the second expectation). ``d`` holds D's probabilities (not logits) on ``x``.
    The result is -inf when D is certain and wrong somewhere a density has mass.
    """
    x, (d, p_data, p_g) = _check_grid(x, d, p_data, p_g, names=("d", "p_data", "p_g"))
    if np.any((d < 0) | (d > 1)):
        raise ValueError("d must hold probabilities in [0, 1]; if you have logits, apply a sigmoid first")
    _check_density("p_data", p_data)
    _check_density("p_g", p_g)
    with np.errstate(divide="ignore", invalid="ignore"):
        integrand = (np.where(p_data > 0, p_data * np.log(d), 0.0)
                     + np.where(p_g > 0, p_g * np.log1p(-d), 0.0))
    return float(np.trapezoid(integrand, x))


def kl_divergence(p, q, x) -> float:
    """KL(p || q) = integral of p log(p / q), in nats (inf when q = 0 where p has mass).

    Points where ``q`` is 0 but ``p`` is below 1e-250 are taken to be floating-point underflow in
    both tails (e.g. two Gaussians far out) and skipped: their true contribution is below 1e-246.
    """
    x, (p, q) = _check_grid(x, p, q, names=("p", "q"))
    _check_density("p", p)
    _check_density("q", q)
    uncovered = (p > 0) & (q == 0)
    if np.any(p[uncovered] > _UNDERFLOW):
        return math.inf
    p = np.where(uncovered, 0.0, p)
    return float(np.trapezoid(_p_log_ratio(p, q), x))


def jensen_shannon(p, q, x) -> float:
    """JSD(p || q) = KL(p || m)/2 + KL(q || m)/2 with m = (p + q)/2, in nats; 0 <= JSD <= log 2.

    Implements the Jensen-Shannon divergence, eq. (gan-math-jsd) in the chapter "The math of GANs".
    Computed as (1/2) integral of [p log(2p / (p+q)) + q log(2q / (p+q))], which never divides by
    an m that has underflowed to 0.
    """
    x, (p, q) = _check_grid(x, p, q, names=("p", "q"))
    _check_density("p", p)
    _check_density("q", q)
    total = p + q
    integrand = _p_log_ratio(p, total) + _p_log_ratio(q, total) + total * math.log(2.0)
    return float(0.5 * np.trapezoid(integrand, x))


def value_at_optimum(p_data, p_g, x) -> float:
    """V(D*, G): the value function with the optimal discriminator plugged in.

    Equals -log 4 + 2 JSD(p_data || p_g), eq. (gan-math-v-jsd) in the chapter "The math of GANs"; this
    function computes it the long way (plug D* into V and integrate), so comparing it with
    :func:`jensen_shannon` checks the identity. log D* = log p_data - log(p_data + p_g) is taken in
    log space, so far tails where D* underflows to 0 or 1 in floating point do not give -inf.
    """
    x, (p_data, p_g) = _check_grid(x, p_data, p_g, names=("p_data", "p_g"))
    optimal_discriminator(p_data, p_g)  # validates the densities
    total = p_data + p_g
    # p_data log D* + p_g log(1 - D*) = p_data log(p_data / total) + p_g log(p_g / total)
    return float(np.trapezoid(_p_log_ratio(p_data, total) + _p_log_ratio(p_g, total), x))


def nonsaturating_objective(p_data, p_g, x) -> float:
    """KL(p_g || p_data) - 2 JSD(p_data || p_g): what the non-saturating generator descends.

    With D = D* held fixed, the gradient of the non-saturating generator loss E_{p_g}[-log D*]
    equals the gradient of this quantity (Arjovsky & Bottou, 2017, Theorem 2.5); eq. (gan-math-ns-effective)
    in the chapter "The math of GANs". Its reverse KL term makes it mode-seeking.
    """
    return kl_divergence(p_g, p_data, x) - 2.0 * jensen_shannon(p_data, p_g, x)


_OBJECTIVES: dict[str, Callable] = {
    "jsd": lambda pd, pg, x: jensen_shannon(pd, pg, x),
    "forward_kl": lambda pd, pg, x: kl_divergence(pd, pg, x),
    "reverse_kl": lambda pd, pg, x: kl_divergence(pg, pd, x),
    "nonsaturating": nonsaturating_objective,
}


def fit_gaussian(p_data, x, objective: str = "jsd", init=None) -> tuple[float, float]:
    """The Gaussian N(mean, std^2) that minimises ``objective`` to ``p_data``; returns (mean, std).

    ``objective`` is ``"jsd"`` (the minimax game at its optimal D), ``"nonsaturating"``
    (:func:`nonsaturating_objective`), ``"forward_kl"`` (maximum likelihood) or ``"reverse_kl"``.
    Fitting one Gaussian to a bimodal ``p_data`` shows where each objective settles when the model
    cannot represent the data. The search (Nelder-Mead) starts from each of a few initial points,
    ``init`` (a (mean, std) pair) plus the moments of ``p_data``, and keeps the best.
    """
    from scipy.optimize import minimize  # on use: scipy loads slowly, and only this fit needs it

    if objective not in _OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; choose one of {sorted(_OBJECTIVES)}")
    x, (p_data,) = _check_grid(x, p_data, names=("p_data",))
    _check_density("p_data", p_data)
    f = _OBJECTIVES[objective]
    mass = np.trapezoid(p_data, x)
    mean = np.trapezoid(x * p_data, x) / mass
    std = math.sqrt(max(np.trapezoid((x - mean) ** 2 * p_data, x) / mass, 1e-12))
    # The moments, plus a narrow start at each of the two halves: the non-saturating and
    # reverse-KL objectives have a local optimum on each mode.
    starts = [(mean, std), (mean - std / 2, std / 3), (mean + std / 2, std / 3)]
    if init is not None:
        starts.insert(0, tuple(init))

    def loss(theta):
        value = f(p_data, gaussian_pdf(x, theta[0], math.exp(theta[1])), x)
        return value if math.isfinite(value) else 1e6

    best = min((minimize(loss, (m, math.log(s)), method="Nelder-Mead",
                         options={"xatol": 1e-6, "fatol": 1e-10, "maxiter": 2000}) for m, s in starts),
               key=lambda r: r.fun)
    return float(best.x[0]), float(math.exp(best.x[1]))


# ----------------------------------------------------------------------------- networks and samples


def _as_sampler(source, name):
    """Turn a toy distribution, a callable n -> samples, or a fixed tensor into ``sample(n, gen)``."""
    if hasattr(source, "sample"):
        return lambda n, gen: source.sample(n, generator=gen)
    if isinstance(source, torch.Tensor):
        data = source.float().reshape(len(source), -1)
        return lambda n, gen: data[torch.randint(len(data), (n,), generator=gen)]
    if callable(source):
        return lambda n, gen: source(n)
    raise TypeError(f"{name} must be a distribution with .sample(n, generator=...), a callable n -> "
                    f"samples, or a tensor of samples; got {type(source).__name__}")


def train_discriminator(real, fake, steps: int = 2000, batch_size: int = 512, lr: float = 2e-3,
                        hidden=(64, 64), seed: int = 0, discriminator: torch.nn.Module | None = None):
    """Train a discriminator to convergence against a *fixed* generator; returns the network.

    ``real`` and ``fake`` are each a distribution with ``.sample(n, generator=...)`` (e.g.
    :class:`ganlib.data.Gaussian1D`; drawn with a generator seeded by ``seed``), a callable
    ``n -> (n, dim) tensor`` such as a frozen generator (it draws from torch's global RNG, which its
    caller seeds), or a tensor of samples. Every step draws fresh batches and takes one Adam step on the binary
    cross-entropy loss, i.e. it maximises V(D, G) (eq. (gan-math-value)); with enough capacity, data and
    steps, D(x) approaches D*(x) = p_data / (p_data + p_g), eq. (gan-math-opt-d) of "The math of GANs".
    The network returns logits; use :func:`discriminator_probability` for D(x).
    """

    if steps < 1 or batch_size < 1:
        raise ValueError(f"steps and batch_size must be positive, got steps={steps}, batch_size={batch_size}")
    gen = torch.Generator().manual_seed(seed)
    sample_real, sample_fake = _as_sampler(real, "real"), _as_sampler(fake, "fake")
    dim = sample_real(2, gen).reshape(2, -1).shape[1]
    if discriminator is None:
        with torch.random.fork_rng(devices=[]):  # seeded initialisation, global RNG left untouched
            torch.manual_seed(seed)
            discriminator = _mlp(dim, hidden)
    opt = torch.optim.Adam(discriminator.parameters(), lr=lr)
    for _ in range(steps):
        with torch.no_grad():
            xr = sample_real(batch_size, gen).reshape(batch_size, -1).float()
            xf = sample_fake(batch_size, gen).reshape(batch_size, -1).float()
        # The minimax discriminator loss is -V(D, G) estimated on the batch.
        loss = discriminator_loss("minimax", discriminator(xr).reshape(-1), discriminator(xf).reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return discriminator.eval()


def _mlp(dim, hidden):
    """ganlib's MLP discriminator when the models module is there, else an equivalent MLP."""
    try:

        return MLPDiscriminator(dim, hidden=tuple(hidden))
    except ImportError:  # pragma: no cover - only while ganlib.models is being written
        layers, width = [], dim
        for h in hidden:
            layers += [torch.nn.Linear(width, h), torch.nn.LeakyReLU(0.2)]
            width = h
        return torch.nn.Sequential(*layers, torch.nn.Linear(width, 1), torch.nn.Flatten(0))


@torch.no_grad()
def discriminator_probability(discriminator: torch.nn.Module, x) -> np.ndarray:
    """D(x) = sigmoid(logit) at the points ``x`` (a 1D grid, or an (N, dim) array), as NumPy."""
    x = torch.as_tensor(np.asarray(x), dtype=torch.float32)
    if x.ndim == 1:
        x = x[:, None]
    device = next(discriminator.parameters()).device
    return torch.sigmoid(discriminator(x.to(device)).reshape(-1).float()).cpu().double().numpy()


@torch.no_grad()
def estimate_value(discriminator: torch.nn.Module, real: torch.Tensor, fake: torch.Tensor) -> float:
    """Monte-Carlo V(D, G): mean log D(real) + mean log(1 - D(fake)), eq. (gan-math-value), from samples."""
    import torch.nn.functional as F

    lr, lf = discriminator(real.float()).reshape(-1), discriminator(fake.float()).reshape(-1)
    return float(F.logsigmoid(lr).mean() + F.logsigmoid(-lf).mean())
