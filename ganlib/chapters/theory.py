"""GAN theory you can run: the value function, the optimal discriminator, and the divergences.

The functions follow the chapter "The math of GANs" (``book/gan_math.ipynb``); each docstring
names the equation it implements. Densities are NumPy arrays sampled on a 1D grid ``x``, and
integrals are trapezoid sums over that grid, so make the grid wide enough to hold (almost) all
the mass of both densities and fine enough to resolve them (e.g. ``np.linspace(-10, 10, 4001)``).

* closed forms on a grid: :func:`optimal_discriminator`, :func:`value_function`,
  :func:`kl_divergence`, :func:`jensen_shannon`, :func:`value_at_optimum`,
  :func:`nonsaturating_objective`, :func:`fit_gaussian` (with :func:`gaussian_logpdf` and
  :func:`mixture_logpdf` for densities that underflow, and :func:`describe_fit` to put a fit in words);
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

import numpy as np
import torch

from ..losses import discriminator_loss
from ..models import MLPDiscriminator

LOG4 = math.log(4.0)
_UNDERFLOW = 1e-250  # densities below this are treated as float64 underflow noise in kl_divergence

__all__ = [
    "LOG4", "gaussian_pdf", "mixture_pdf", "optimal_discriminator", "value_function",
    "kl_divergence", "jensen_shannon", "value_at_optimum", "nonsaturating_objective",
    "gaussian_logpdf", "mixture_logpdf", "fit_gaussian", "describe_fit", "train_discriminator",
    "discriminator_probability", "estimate_value",
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


_OBJECTIVES = ("jsd", "forward_kl", "reverse_kl", "nonsaturating")  # what fit_gaussian can minimise


def gaussian_logpdf(x, mean: float = 0.0, std: float = 1.0) -> np.ndarray:
    """log N(x; mean, std^2), finite everywhere (the density itself underflows to 0 beyond ~38 std)."""
    if std <= 0:
        raise ValueError(f"std must be positive, got {std}")
    x = np.asarray(x, dtype=np.float64)
    return -0.5 * ((x - mean) / std) ** 2 - math.log(std * math.sqrt(2 * math.pi))


def mixture_logpdf(x, means, stds, weights=None) -> np.ndarray:
    """log of :func:`mixture_pdf`, by log-sum-exp: finite in the gaps where the density underflows."""
    means = np.atleast_1d(np.asarray(means, dtype=np.float64))
    stds = np.broadcast_to(np.atleast_1d(stds), means.shape)
    if weights is None:
        weights = np.full(len(means), 1.0 / len(means))
    weights = np.asarray(weights, dtype=np.float64)
    if len(weights) != len(means) or not math.isclose(weights.sum(), 1.0, rel_tol=1e-6) or np.any(weights <= 0):
        raise ValueError(f"weights must be {len(means)} positive numbers that sum to 1, got {weights}")
    terms = np.stack([math.log(w) + gaussian_logpdf(x, m, s) for w, m, s in zip(weights, means, stds)])
    top = terms.max(0)
    return top + np.log(np.exp(terms - top).sum(0))


def _kl_from_logs(p, log_p, log_q, x) -> float:
    """KL(p || q) = integral of p (log p - log q) with 0 log 0 = 0, from log densities (no underflowed ratio)."""
    with np.errstate(invalid="ignore"):
        return float(np.trapezoid(np.where(p > 0, p * (log_p - log_q), 0.0), x))


def _jsd_from_logs(p, log_p, q, log_q, x) -> float:
    """eq. (gan-math-jsd) from log densities: (1/2) integral of p log(2p/(p+q)) + q log(2q/(p+q))."""
    log_sum = np.logaddexp(log_p, log_q)  # log(p + q), finite wherever either log density is
    return 0.5 * (_kl_from_logs(p, log_p, log_sum, x) + _kl_from_logs(q, log_q, log_sum, x)) + math.log(2.0) * (
        0.5 * float(np.trapezoid(p + q, x)))


def _objective_from_logs(objective: str, log_p, log_q, x) -> float:
    """The objectives named in :data:`_OBJECTIVES` between p_data = exp(log_p) and a model q = exp(log_q).

    The same integrals as :func:`jensen_shannon` and :func:`kl_divergence`, but every log ratio is a
    difference of log densities, so a density that underflows to 0 in float64 no longer turns a large
    but finite divergence into inf (only a log density of -inf does).
    """
    p, q = np.exp(log_p), np.exp(log_q)
    if objective == "jsd":
        return _jsd_from_logs(p, log_p, q, log_q, x)
    if objective == "forward_kl":
        return _kl_from_logs(p, log_p, log_q, x)
    reverse = _kl_from_logs(q, log_q, log_p, x)
    if objective == "reverse_kl":
        return reverse
    return reverse - 2.0 * _jsd_from_logs(p, log_p, q, log_q, x)  # nonsaturating, eq. (gan-math-ns-effective)


def _mode_starts(p, x, max_modes: int = 8):
    """(mean, std) of each mode of ``p``: the moments of ``p`` within each basin between local minima.

    Only maxima above 1e-3 of the highest count, and the ``max_modes`` highest are kept.
    """
    interior = np.flatnonzero((p[1:-1] > p[:-2]) & (p[1:-1] >= p[2:])) + 1
    peaks = [i for i in interior if p[i] > 1e-3 * p.max()]
    peaks = sorted(sorted(peaks, key=lambda i: -p[i])[:max_modes])
    starts = []
    for k, i in enumerate(peaks):
        lo = 0 if k == 0 else peaks[k - 1] + int(np.argmin(p[peaks[k - 1]:i + 1]))
        hi = len(x) - 1 if k == len(peaks) - 1 else i + int(np.argmin(p[i:peaks[k + 1] + 1]))
        xs, ps = x[lo:hi + 1], p[lo:hi + 1]
        mass = np.trapezoid(ps, xs)
        if mass <= 0:
            continue
        m = np.trapezoid(xs * ps, xs) / mass
        s = math.sqrt(max(np.trapezoid((xs - m) ** 2 * ps, xs) / mass, (x[1] - x[0]) ** 2))
        starts.append((float(m), s))
    return starts


def fit_gaussian(p_data, x, objective: str = "jsd", init=None, *, mean: float | None = None,
                 log_p_data=None, return_objective: bool = False):
    """The Gaussian N(mean, std^2) that minimises ``objective`` to ``p_data``; returns (mean, std).

    ``objective`` is ``"jsd"`` (the minimax game at its optimal D, eq. (gan-math-v-jsd)),
    ``"nonsaturating"`` (:func:`nonsaturating_objective`, eq. (gan-math-ns-effective)), ``"forward_kl"``
    (maximum likelihood) or ``"reverse_kl"``. Fitting one Gaussian to a bimodal ``p_data`` shows
    where each objective settles when the model cannot represent the data.

    The search is a Nelder-Mead minimisation over (mean, log std) from several starts, keeping the
    best finite result: ``init`` (a (mean, std) pair) if given, the moments of ``p_data``, and the
    moments of each of its modes (so a fit on one mode is always among the candidates: for narrow,
    well separated modes the JSD and reverse-KL optima lie there, and a start at the overall
    moments would not find them). The objectives are integrated from log densities: the model's is
    exact, and ``log_p_data`` (e.g. :func:`mixture_logpdf`) can give the data's; without it,
    log(p_data) is used, which is -inf wherever ``p_data`` underflowed to 0, so a reverse KL that
    puts model mass there is inf and such points are avoided. With ``mean`` given, only the std is
    fitted (e.g. the best Gaussian centred between two modes). With ``return_objective=True`` the
    result is (mean, std, objective value). Never returns a non-finite objective: raises
    ``ValueError`` if no start leads to a finite one.
    """
    from scipy.optimize import minimize  # on use: scipy loads slowly, and only this fit needs it

    if objective not in _OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; choose one of {sorted(_OBJECTIVES)}")
    x, (p_data,) = _check_grid(x, p_data, names=("p_data",))
    _check_density("p_data", p_data)
    mass = np.trapezoid(p_data, x)
    if not mass > 0:
        raise ValueError("p_data has no mass on the grid x; evaluate it on a grid that covers it")
    if log_p_data is None:
        with np.errstate(divide="ignore"):
            log_p_data = np.log(p_data)
    else:
        _, (log_p_data,) = _check_grid(x, log_p_data, names=("log_p_data",))
        if not np.allclose(np.exp(log_p_data), p_data, rtol=1e-6, atol=1e-300):
            raise ValueError("log_p_data must be the log of p_data on the same grid")
    m0 = np.trapezoid(x * p_data, x) / mass
    s0 = math.sqrt(max(np.trapezoid((x - m0) ** 2 * p_data, x) / mass, (x[1] - x[0]) ** 2))
    starts = ([tuple(map(float, init))] if init is not None else []) + [(m0, s0)] + _mode_starts(p_data, x)
    if mean is not None:
        starts = [(float(mean), s) for _, s in starts]

    def value(m, log_s):
        return _objective_from_logs(objective, log_p_data, gaussian_logpdf(x, m, math.exp(log_s)), x)

    def unpack(theta):
        return (theta[0], theta[1]) if mean is None else (float(mean), theta[0])

    def loss(theta):
        m, log_s = unpack(theta)
        if not abs(log_s) < 50:  # a std of e^50 or e^-50: far outside any grid, and exp() may overflow
            return 1e300
        v = value(m, log_s)
        # inf (model mass where log p_data = -inf): a wall that the simplex steps back from
        return v if math.isfinite(v) else 1e300

    results = []
    for m, s in starts:
        theta0 = [m, math.log(s)] if mean is None else [math.log(s)]
        with np.errstate(over="ignore", under="ignore"):
            r = minimize(loss, theta0, method="Nelder-Mead",
                         options={"xatol": 1e-7, "fatol": 1e-12, "maxiter": 4000})
        m_fit, log_s_fit = unpack(r.x)
        if not abs(log_s_fit) < 50:
            continue
        v = value(m_fit, log_s_fit)
        if math.isfinite(v):
            results.append((v, m_fit, math.exp(log_s_fit)))
    if not results:
        raise ValueError(f"no Gaussian with a finite {objective} to p_data was found from the starts "
                         f"{[(round(m, 3), round(s, 3)) for m, s in starts]}; if p_data underflows to 0 "
                         "on the grid, pass its log density as log_p_data (e.g. theory.mixture_logpdf)")
    v, m_fit, s_fit = min(results)
    return (float(m_fit), float(s_fit), float(v)) if return_objective else (float(m_fit), float(s_fit))


def describe_fit(mean: float, std: float, modes) -> str:
    """Where a fitted Gaussian sits relative to the ``modes`` (their centres), in words.

    A mode counts as covered when its centre lies within one std of the fit's mean. Returns
    ``"on one mode"`` (exactly one covered), ``"over both modes"`` / ``"over all modes"`` (all of
    two / of more covered), ``"over some modes"`` or ``"between the modes"`` (none covered). Used to
    generate the chapter's description of each fit from the fitted numbers.
    """
    modes = np.atleast_1d(np.asarray(modes, dtype=np.float64))
    covered = int(np.sum(np.abs(modes - mean) <= std))
    if covered == len(modes) and len(modes) > 1:
        return "over both modes" if len(modes) == 2 else "over all modes"
    return {0: "between the modes", 1: "on one mode"}.get(covered, "over some modes")


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
            discriminator = MLPDiscriminator(dim, hidden=tuple(hidden))
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


@torch.no_grad()
def discriminator_probability(discriminator: torch.nn.Module, x) -> np.ndarray:
    """D(x) = sigmoid(logit) at the points ``x`` (a 1D grid, or an (N, dim) array), as NumPy."""
    x = torch.as_tensor(np.asarray(x), dtype=torch.float32)
    if x.ndim == 1:
        x = x[:, None]
    device = next(discriminator.parameters()).device
    return torch.sigmoid(discriminator(x.to(device)).reshape(-1).float()).cpu().double().numpy()


@torch.no_grad()
def estimate_value(discriminator: torch.nn.Module, real: torch.Tensor, fake: torch.Tensor,
                   return_stderr: bool = False):
    """Monte-Carlo V(D, G): mean log D(real) + mean log(1 - D(fake)), eq. (gan-math-value), from samples.

    With ``return_stderr=True`` returns (estimate, standard error), the error of the two independent
    sample means added in quadrature: sqrt(var_real / n_real + var_fake / n_fake).
    """
    import torch.nn.functional as F

    lr, lf = discriminator(real.float()).reshape(-1), discriminator(fake.float()).reshape(-1)
    on_real, on_fake = F.logsigmoid(lr).double(), F.logsigmoid(-lf).double()
    estimate = float(on_real.mean() + on_fake.mean())
    if not return_stderr:
        return estimate
    stderr = math.sqrt(float(on_real.var() / len(on_real) + on_fake.var() / len(on_fake)))
    return estimate, stderr
