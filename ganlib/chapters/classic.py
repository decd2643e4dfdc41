"""The three classic generative models of chapter 1: Bernoulli, Gaussian and Markov pixels.

Each model is a small class with the same interface:

* ``fit(x)`` estimates the parameters from a batch of images ``x`` of shape (N, C, H, W)
  (or already flat, (N, D)) and returns the model;
* ``log_prob(x)`` returns one log-likelihood per image, in nats, shape (N,);
* ``sample(n, generator=None)`` draws ``n`` new images with the shape seen in ``fit``.

The Bernoulli and Markov models are distributions over *binary* images (a probability mass
function, each log-likelihood is <= 0); the Gaussian is a *density* over continuous pixels in
[0, 1] (its log-density can be positive and depends on how the pixels are scaled). Use
:func:`binarize` and :func:`dequantize` to prepare the data for each.

References: Bishop (2006), ch. 2 and 12 (Bernoulli, Gaussian, probabilistic PCA); Frey (1998) and
Neal (1992) (the fully visible sigmoid belief net, i.e. a logistic autoregressive model).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .tables import text_table

__all__ = [
    "binarize", "dequantize", "causal_mask",
    "BernoulliPixels", "GaussianPixels", "MarkovPixels",
    "GenerativeClassifier", "SoftmaxRegression", "mean_log_likelihood", "log_likelihood_table",
]

# ----------------------------------------------------------------------------- data preparation


def binarize(images: torch.Tensor, threshold: float = 0.0) -> torch.Tensor:
    """Binary images: 1.0 where ``images > threshold``, else 0.0 (same shape, float32).

    With ``ganlib.data`` images in [-1, 1], the default threshold 0 keeps the pixels brighter than
    half of the maximum intensity (MNIST value > 127.5 of 255; 8x8 digits value > 8 of 16).
    """
    return (images > threshold).float()


def dequantize(images: torch.Tensor, levels: int = 256, generator: torch.Generator | None = None
               ) -> torch.Tensor:
    """Continuous pixels in [0, 1): ``(k + u) / levels`` with ``k`` the integer level, ``u ~ U(0, 1)``.

    ``images`` are in [-1, 1] with ``levels`` evenly spaced values (256 for MNIST, 17 for the
    8x8 digits). Spreading each integer level uniformly over its bin of width ``1/levels`` gives
    data with a proper continuous density (no point masses: a constant border pixel no longer
    has zero variance), and ``log p_density - D * log(levels)``, averaged over the noise ``u``,
    lower-bounds the log-pmf of the integer image (Theis et al., 2016).
    """
    k = torch.round((images + 1) / 2 * (levels - 1))
    return (k + _random(torch.rand, images.shape, generator, images.device)) / levels


def _random(fn, shape, generator, device, dtype=torch.float32) -> torch.Tensor:
    """``fn`` (torch.rand or torch.randn) drawn on the generator's own device, then moved to ``device``.

    A CPU generator thus gives the same numbers whether the model lives on the CPU or a GPU.
    """
    where = generator.device if generator is not None else device
    return fn(tuple(shape), generator=generator, device=where, dtype=dtype).to(device)


def causal_mask(height: int, width: int, radius: int | None = None) -> torch.Tensor:
    """Which pixels each pixel may depend on, as a (D, D) bool matrix with D = height * width.

    ``mask[i, j]`` is True if pixel ``j`` is in the context of pixel ``i``. Pixels are taken in
    raster order (row by row, left to right). With ``radius=None`` the context is the whole prefix
    ``j < i``. With ``radius=r`` it is a causal neighbourhood: the pixels at most ``r`` rows above
    and at most ``r`` columns left or right, plus the ``r`` pixels to the left in the same row.
    Either way ``j < i``, so the mask is strictly lower triangular and the chain rule applies.
    """
    if height < 1 or width < 1:
        raise ValueError(f"height and width must be positive, got {height}x{width}")
    d = height * width
    prefix = torch.ones(d, d, dtype=torch.bool).tril(-1)
    if radius is None:
        return prefix
    if radius < 1:
        raise ValueError(f"radius must be a positive int (or None for the whole prefix), got {radius}")
    rows = torch.arange(d) // width
    cols = torch.arange(d) % width
    drow = rows[:, None] - rows[None, :]  # how far above pixel i the pixel j is
    dcol = cols[:, None] - cols[None, :]
    near = (drow >= 0) & (drow <= radius) & (dcol.abs() <= radius)
    return prefix & near


def _flat(x: torch.Tensor, name: str = "x") -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of images, got {type(x).__name__}")
    if x.ndim < 2:
        raise ValueError(f"{name} must be a batch: shape (N, D) or (N, C, H, W); got shape {tuple(x.shape)}. "
                         f"For a single image use x[None].")
    return x.reshape(len(x), -1).float()


def _check_binary(x: torch.Tensor, model: str) -> None:
    if not bool(((x == 0) | (x == 1)).all()):
        raise ValueError(f"{model} models binary pixels, but x has values other than 0 and 1 "
                         f"(range {x.min().item():.3g}..{x.max().item():.3g}); "
                         f"binarize first, e.g. ganlib.chapters.classic.binarize(images).")


class _PixelModel:
    """Shared bookkeeping: remember the image shape in ``fit``, check shapes afterwards."""

    event_shape: tuple[int, ...] | None = None

    def _remember_shape(self, x: torch.Tensor) -> torch.Tensor:
        self.event_shape = tuple(x.shape[1:])
        return _flat(x)

    def _check_fitted(self, x: torch.Tensor | None = None) -> torch.Tensor | None:
        if self.event_shape is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted yet; call .fit(train_images) first.")
        if x is None:
            return None
        flat = _flat(x)
        if flat.shape[1] != math.prod(self.event_shape):
            raise ValueError(f"{type(self).__name__} was fitted on images of shape {self.event_shape} "
                             f"({math.prod(self.event_shape)} pixels) but got shape {tuple(x.shape[1:])}.")
        return flat

    def _unflatten(self, flat: torch.Tensor) -> torch.Tensor:
        return flat.reshape(len(flat), *self.event_shape)


# ----------------------------------------------------------------------------- Bernoulli


class BernoulliPixels(_PixelModel):
    r"""Independent binary pixels: :math:`p(x) = \prod_i \mu_i^{x_i} (1 - \mu_i)^{1 - x_i}`.

    ``log_prob`` is :math:`\sum_i x_i \log \mu_i + (1 - x_i) \log(1 - \mu_i)` (nats per image).

    ``fit`` uses the smoothed maximum-likelihood estimate (add-``alpha``, Laplace's rule for
    ``alpha=1``) :math:`\mu_i = (\sum_n x_{ni} + \alpha) / (N + 2\alpha)`. With ``alpha=0`` it is the
    plain per-pixel mean, which puts probability 0 on any test image that lights a pixel never lit
    in training (log-likelihood :math:`-\infty`).
    """

    def __init__(self, alpha: float = 1.0):
        if alpha < 0:
            raise ValueError(f"alpha (the smoothing pseudo-count) must be >= 0, got {alpha}")
        self.alpha = alpha
        self.probs: torch.Tensor | None = None

    def fit(self, x: torch.Tensor) -> "BernoulliPixels":
        """Estimate the pixel probabilities from binary images ``x`` (N, ...) in {0, 1}; returns self."""
        flat = self._remember_shape(x)
        _check_binary(flat, "BernoulliPixels")
        self.probs = (flat.sum(0) + self.alpha) / (len(flat) + 2 * self.alpha)
        return self

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x) per image, in nats, shape (N,); ``x`` binary, of the fitted image shape."""
        flat = self._check_fitted(x)
        _check_binary(flat, "BernoulliPixels")
        if bool(((self.probs > 0) & (self.probs < 1)).all()):
            # the same sum as one matrix product, x . log(mu / (1 - mu)) + sum log(1 - mu): many times
            # faster than D elementwise logs per image when a classifier scores every test image 10 times
            log_on, log_off = self.probs.log(), torch.log1p(-self.probs)
            return flat @ (log_on - log_off) + log_off.sum()
        # xlogy gives 0 * log 0 = 0, so alpha=0 still scores the training images finitely
        return (torch.xlogy(flat, self.probs) + torch.xlogy(1 - flat, 1 - self.probs)).sum(1)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` binary images (values 0.0 and 1.0), shape (n, *the fitted image shape)."""
        self._check_fitted()
        u = _random(torch.rand, (n, self.probs.numel()), generator, self.probs.device)
        return self._unflatten((u < self.probs).float())

    @property
    def num_parameters(self) -> int:
        """D, one probability per pixel."""
        return self.probs.numel()


# ----------------------------------------------------------------------------- Gaussian


class GaussianPixels(_PixelModel):
    r"""One multivariate Gaussian over all pixels: :math:`p(x) = \mathcal{N}(x; \mu, \Sigma)`.

    ``log_prob`` is :math:`-\tfrac12 (x-\mu)^\top \Sigma^{-1} (x-\mu) - \tfrac12 \log\det(2\pi\Sigma)`
    (nats per image), a log-*density*: positive whenever the density exceeds 1.

    ``fit`` takes the sample mean :math:`\mu` and the maximum-likelihood covariance
    :math:`S = \frac1N \sum_n (x_n - \mu)(x_n - \mu)^\top`, then

    * ``rank=None`` (full covariance): :math:`\Sigma = S + \lambda I` with the ridge
      :math:`\lambda` = ``ridge``, which adds :math:`\lambda` to every eigenvalue of :math:`S` and
      keeps its eigenvectors (and off-diagonal entries). Pixels that never change (the image
      border) make :math:`S` singular; the ridge keeps :math:`\Sigma` invertible and stops the
      density from spiking on directions the training set happened not to vary in.
    * ``rank=k`` (probabilistic PCA, Tipping & Bishop 1999): :math:`\Sigma = W W^\top + \sigma^2 I`
      with :math:`W = U_k (\Lambda_k - \sigma^2 I)^{1/2}` from the top-``k`` eigenpairs of
      :math:`S` and :math:`\sigma^2` the mean of the other eigenvalues (plus ``ridge``): the
      closed-form maximum-likelihood estimate. It has :math:`D(k+1) + 1` parameters instead of
      :math:`D(D+3)/2`.

    Feed it continuous pixels, e.g. :func:`dequantize` (values in [0, 1)).
    """

    def __init__(self, rank: int | None = None, ridge: float = 1e-3):
        if rank is not None and rank < 1:
            raise ValueError(f"rank must be a positive int (or None for a full covariance), got {rank}")
        if ridge < 0:
            raise ValueError(f"ridge must be >= 0, got {ridge}")
        self.rank, self.ridge = rank, ridge
        self.mean: torch.Tensor | None = None

    def fit(self, x: torch.Tensor) -> "GaussianPixels":
        """Estimate the mean and the (full or low-rank) covariance from continuous images ``x``
        (N, ...), in float64; returns self."""
        flat = self._remember_shape(x).double()  # float64: covariances of 784 pixels lose digits
        n, d = flat.shape
        if self.rank is not None and self.rank >= d:
            raise ValueError(f"rank={self.rank} must be smaller than the number of pixels {d}; "
                             f"use rank=None for a full covariance.")
        self.mean = flat.mean(0)
        centred = flat - self.mean
        cov = centred.T @ centred / n
        self.sample_covariance = cov  # S, kept to compare with the fitted covariance()
        eye = torch.eye(d, dtype=cov.dtype, device=cov.device)
        if self.rank is None:
            self.scale_tril = torch.linalg.cholesky(cov + self.ridge * eye)
            self.cov_factor = self.noise_var = None
        else:
            evals, evecs = torch.linalg.eigh(cov)  # ascending
            evals, evecs = evals.flip(0).clamp_min(0), evecs.flip(1)
            k = self.rank
            self.noise_var = evals[k:].mean() + self.ridge
            self.cov_factor = evecs[:, :k] * (evals[:k] - self.noise_var).clamp_min(0).sqrt()
            self.scale_tril = None
        return self

    def covariance(self) -> torch.Tensor:
        r"""The fitted :math:`\Sigma` (float64, (D, D)), rebuilt from the factors the model samples and scores with.

        Full: :math:`L L^\top = S + \lambda I`, i.e. :math:`S` with :math:`\lambda` added to every eigenvalue
        (same eigenvectors, same off-diagonal entries). Low rank: :math:`W W^\top + \sigma^2 I`.
        """
        self._check_fitted()
        if self.rank is None:
            return self.scale_tril @ self.scale_tril.T
        eye = torch.eye(self.mean.numel(), dtype=self.mean.dtype, device=self.mean.device)
        return self.cov_factor @ self.cov_factor.T + self.noise_var * eye

    def distribution(self) -> torch.distributions.Distribution:
        """The fitted Gaussian as a ``torch.distributions`` object (float64)."""
        self._check_fitted()
        if self.rank is None:
            return torch.distributions.MultivariateNormal(self.mean, scale_tril=self.scale_tril)
        diag = self.noise_var.expand(self.mean.shape)
        return torch.distributions.LowRankMultivariateNormal(self.mean, self.cov_factor, diag)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log density per image, in nats, shape (N,) (float32, computed in float64)."""
        flat = self._check_fitted(x).double()
        return self.distribution().log_prob(flat).float()

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` samples :math:`\\mu + L z` (full) or :math:`\\mu + W z + \\sigma \\epsilon` (low rank),
        shape (n, *the fitted image shape), float32."""
        self._check_fitted()
        d = self.mean.numel()
        def randn(*shape):
            return _random(torch.randn, shape, generator, self.mean.device, torch.float64)

        if self.rank is None:
            flat = self.mean + randn(n, d) @ self.scale_tril.T
        else:
            flat = self.mean + randn(n, self.rank) @ self.cov_factor.T + self.noise_var.sqrt() * randn(n, d)
        return self._unflatten(flat.float())

    @property
    def num_parameters(self) -> int:
        """D + D(D+1)/2 (mean and full covariance), or D + Dk + 1 (probabilistic PCA)."""
        d = self.mean.numel()
        return d + d * (d + 1) // 2 if self.rank is None else d + d * self.rank + 1


# ----------------------------------------------------------------------------- Markov


class MarkovPixels(_PixelModel):
    r"""A logistic autoregressive model of binary pixels (a fully visible sigmoid belief net).

    By the chain rule any distribution factorises as :math:`p(x) = \prod_i p(x_i \mid x_{<i})`.
    This model keeps only a context :math:`c(i) \subseteq \{j < i\}` (see :func:`causal_mask`) and
    makes each conditional a logistic regression:

    .. math:: p(x_i = 1 \mid x_{c(i)}) = \sigma\big(b_i + \textstyle\sum_{j \in c(i)} W_{ij} x_j\big).

    With a small ``radius`` this is a Markov model in the 2D sense: a pixel depends on the image
    only through its causal neighbourhood. With ``radius=None`` the context is the whole prefix
    (Frey 1998; Neal 1992). ``W`` is a masked (strictly lower-triangular) matrix, so all
    conditionals are evaluated in one matrix product, and ``log_prob`` is
    :math:`\sum_i x_i \log \sigma(a_i) + (1 - x_i)\log(1 - \sigma(a_i))`, :math:`a = b + (W \odot M) x`.

    ``fit`` minimises the mean negative log-likelihood plus ``l2 * ||W||^2`` with Adam on
    mini-batches drawn with ``seed``; the biases start at the smoothed Bernoulli logits, so the
    model starts out as :class:`BernoulliPixels` and the weights only add what the context explains.
    Sampling goes pixel by pixel in raster order (``D`` sequential steps).
    """

    def __init__(self, radius: int | None = 3, steps: int = 1000, batch_size: int = 256,
                 lr: float = 1e-2, l2: float = 1e-4, seed: int = 0):
        if radius is not None and radius < 1:
            raise ValueError(f"radius must be a positive int (or None for the whole prefix), got {radius}")
        if steps < 0 or batch_size < 1:
            raise ValueError(f"steps must be >= 0 and batch_size >= 1, got {steps} and {batch_size}")
        self.radius, self.steps, self.batch_size = radius, steps, batch_size
        self.lr, self.l2, self.seed = lr, l2, seed
        self.weight = self.bias = self.mask = None
        self.history: list[float] = []

    def conditional_logits(self, x: torch.Tensor) -> torch.Tensor:
        """The logits :math:`a_i` of :math:`p(x_i = 1 \\mid x_{c(i)})` for every pixel, shape (N, D)."""
        return F.linear(_flat(x), self.weight * self.mask, self.bias)

    def fit(self, x: torch.Tensor) -> "MarkovPixels":
        """Fit the conditionals to binary images ``x``, shape (N, 1, H, W) or (N, H, W) (or (N, D) with
        ``radius=None``), values in {0, 1}; records the mean NLL per step in ``history``; returns self."""
        flat = self._remember_shape(x)
        _check_binary(flat, "MarkovPixels")
        n, d = flat.shape
        if self.radius is None:
            self.mask = causal_mask(1, d)
        elif len(self.event_shape) >= 2 and math.prod(self.event_shape[-2:]) == d:
            self.mask = causal_mask(*self.event_shape[-2:], radius=self.radius)
        else:
            raise ValueError("a 2D neighbourhood (radius=int) needs one-channel images of shape (N, 1, H, W) "
                             f"or (N, H, W), got {(n, *self.event_shape)}; pass the unflattened images, "
                             "or use radius=None for the whole prefix.")
        self.mask = self.mask.float().to(flat.device)
        mu = (flat.sum(0) + 1) / (n + 2)  # Laplace-smoothed pixel means: the Bernoulli model
        self.bias = torch.logit(mu).clone().requires_grad_(True)
        self.weight = torch.zeros(d, d, device=flat.device, requires_grad=True)
        opt = torch.optim.Adam([self.weight, self.bias], lr=self.lr)
        gen = torch.Generator().manual_seed(self.seed)
        batch = min(self.batch_size, n)
        self.history = []
        for _ in range(self.steps):
            idx = torch.randint(n, (batch,), generator=gen).to(flat.device)
            xb = flat[idx]
            masked = self.weight * self.mask  # once per step, shared by the loss and the penalty
            nll = F.binary_cross_entropy_with_logits(F.linear(xb, masked, self.bias), xb, reduction="sum") / batch
            loss = nll + self.l2 * masked.square().sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            self.history.append(nll.item())
        self.weight = (self.weight * self.mask).detach()
        self.bias = self.bias.detach()
        return self

    @torch.no_grad()
    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x) = sum_i log p(x_i | x_c(i)) per image, in nats, shape (N,); ``x`` binary."""
        flat = self._check_fitted(x)
        _check_binary(flat, "MarkovPixels")
        return -F.binary_cross_entropy_with_logits(self.conditional_logits(flat), flat, reduction="none").sum(1)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` binary images drawn pixel by pixel in raster order, shape (n, *the fitted image shape)."""
        self._check_fitted()
        d = self.bias.numel()
        u = _random(torch.rand, (n, d), generator, self.bias.device)
        flat = torch.zeros(n, d, device=self.bias.device)
        for i in range(d):  # pixel i needs pixels < i: sampling is sequential
            p_i = torch.sigmoid(self.bias[i] + flat @ self.weight[i])
            flat[:, i] = (u[:, i] < p_i).float()
        return self._unflatten(flat)

    @property
    def num_parameters(self) -> int:
        """The weights the mask allows plus one bias per pixel."""
        return int(self.mask.sum().item()) + self.bias.numel()


# ----------------------------------------------------------------------------- using them


class GenerativeClassifier:
    r"""A classifier from class-conditional generative models, by Bayes' rule.

    ``fit(x, y)`` fits one model :math:`p(x \mid y=k)` per class (``make_model()`` builds each) and
    the class frequencies :math:`p(y=k)`; ``predict`` returns
    :math:`\arg\max_k \log p(x \mid y=k) + \log p(y=k) = \arg\max_k p(y=k \mid x)`.
    With :class:`BernoulliPixels` this is the (Bernoulli) naive Bayes classifier.
    """

    def __init__(self, make_model):
        self.make_model = make_model
        self.models: list = []

    def fit(self, x: torch.Tensor, y: torch.Tensor) -> "GenerativeClassifier":
        """Fit one model per class of the labels ``y`` (N,) on its images of ``x`` (N, ...); returns self."""
        classes = torch.unique(y)
        if len(classes) < 2:
            raise ValueError(f"need at least two classes to classify, got labels {classes.tolist()}")
        self.classes = classes
        self.models = [self.make_model().fit(x[y == k]) for k in classes]
        counts = torch.stack([(y == k).sum() for k in classes]).float()
        self.log_prior = (counts / counts.sum()).log()
        return self

    def log_joint(self, x: torch.Tensor) -> torch.Tensor:
        """:math:`\\log p(x, y=k)` for each class, shape (N, K)."""
        if not self.models:
            raise RuntimeError("GenerativeClassifier is not fitted yet; call .fit(images, labels) first.")
        return torch.stack([m.log_prob(x) for m in self.models], 1) + self.log_prior.to(x.device)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """The most probable class of each image, shape (N,)."""
        return self.classes.to(x.device)[self.log_joint(x).argmax(1)]


class SoftmaxRegression:
    r"""A discriminative classifier for contrast: :math:`p(y=k \mid x) = \mathrm{softmax}(Vx + c)_k`.

    It models only the labels given the image, so it can classify but can neither score nor sample
    images. ``fit`` minimises the mean cross-entropy plus ``l2 * ||V||^2`` with full-batch Adam.
    """

    def __init__(self, steps: int = 200, lr: float = 0.05, l2: float = 1e-4):
        self.steps, self.lr, self.l2 = steps, lr, l2
        self.linear: torch.nn.Linear | None = None

    def fit(self, x: torch.Tensor, y: torch.Tensor, seed: int = 0) -> "SoftmaxRegression":
        """Fit V and c to images ``x`` (N, ...) and labels ``y`` (N,); ``seed`` sets the initial
        weights; returns self."""
        flat = _flat(x)
        self.classes = torch.unique(y)
        target = torch.searchsorted(self.classes.to(y.device), y)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.linear = torch.nn.Linear(flat.shape[1], len(self.classes)).to(flat.device)
        opt = torch.optim.Adam(self.linear.parameters(), lr=self.lr)
        for _ in range(self.steps):
            loss = F.cross_entropy(self.linear(flat), target) + self.l2 * self.linear.weight.square().sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return self

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """The most probable class of each image, shape (N,)."""
        if self.linear is None:
            raise RuntimeError("SoftmaxRegression is not fitted yet; call .fit(images, labels) first.")
        return self.classes.to(x.device)[self.linear(_flat(x)).argmax(1)]


def mean_log_likelihood(model, x: torch.Tensor, batch_size: int = 2000) -> float:
    """The average of ``model.log_prob`` over the images ``x`` (nats per image), in batches."""
    total = sum(model.log_prob(x[i:i + batch_size]).double().sum().item() for i in range(0, len(x), batch_size))
    return total / len(x)


def log_likelihood_table(rows: list[dict]) -> str:
    """A plain-text table, one row per model, e.g. ``{"model": ..., "test (nats/image)": ..., ...}``.

    The columns are the first row's keys, in order. Floats print with one decimal, ints with
    thousands separators; numbers are right-aligned. Rows scored on different data (binary pixels
    vs dequantized continuous pixels) are not comparable: give them a column that says so.
    """
    if not rows:
        raise ValueError("log_likelihood_table needs at least one row")
    columns = list(rows[0])
    formats = [",.1f" if isinstance(v, float) else "," if isinstance(v, int) else "" for v in rows[0].values()]
    return text_table(columns, [[row[c] for c in columns] for row in rows], formats)
