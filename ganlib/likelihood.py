"""How well a VAE explains data: the ELBO, the importance-weighted bound on log p(x), active units.

For a VAE with encoder q(z|x), decoder p(x|z) and prior p(z) = N(0, I), the importance weights

    w_i = p(x | z_i) p(z_i) / q(z_i | x),   z_1, ..., z_k ~ q(z | x),

give the IWAE bound of Burda et al. (2016), eq. 8 [burda2016iwae]:

    L_k(x) = E[ log (1/k) sum_i w_i ]  <=  log p(x),

with L_1 the ELBO, L_k non-decreasing in k and L_k -> log p(x) as k -> infinity (their Theorem 1).
:func:`iwae_log_likelihood` returns one draw of that estimate per example; with k = 5000 it is
the "test NLL" that published MNIST tables report (Burda et al., sec. 5.1). Everything here is in
nats per example and works for any :class:`ganlib.models.VAE` (Bernoulli or Gaussian decoder).
"""
from __future__ import annotations

import math

import torch

from .data import dynamic_binarize
from .losses import reconstruction_nll
from .metrics import check_pixel_range
from .models import VAE

__all__ = ["log_importance_weights", "iwae_log_likelihood", "elbo", "active_units", "binary_test_set"]

LOG_2PI = math.log(2 * math.pi)


def _check(vae, x: torch.Tensor, k: int, decoded: bool = True) -> None:
    """Type, k, shape and finite values; with ``decoded`` (x is scored by the decoder) and a Bernoulli
    decoder also binary images in ganlib's scale, every pixel -1 or 1."""
    if not isinstance(vae, VAE):
        raise TypeError(f"vae must be a ganlib.models.VAE, got {type(vae).__name__}")
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k (importance samples per example) must be an integer >= 1, got {k!r}")
    if x.dim() != len(vae.image_shape) + 1 or tuple(x.shape[1:]) != vae.image_shape:
        raise ValueError(f"x must have shape (N, {', '.join(map(str, vae.image_shape))}) for this VAE; "
                         f"got {tuple(x.shape)}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError("x contains NaN/inf")
    if not decoded or vae.likelihood != "bernoulli" or len(x) == 0:
        return
    check_pixel_range("x", x)
    grey = int(((x != 1) & (x != -1)).sum())
    if grey:  # the Bernoulli pmf of a grey level is not a likelihood of anything
        raise ValueError(f"x must be binary (every pixel -1 or 1) for a Bernoulli VAE; {grey} of {x.numel()} pixels "
                         "are grey levels: score binary_test_set(x) (a fixed dynamic binarisation) instead")


def _target(vae: VAE, x: torch.Tensor) -> torch.Tensor:
    return (x + 1) / 2 if vae.likelihood == "bernoulli" else x


def log_importance_weights(vae: VAE, x: torch.Tensor, k: int, generator: torch.Generator | None = None
                           ) -> torch.Tensor:
    """log w_i = log p(x|z_i) + log p(z_i) - log q(z_i|x) for k draws z_i ~ q(z|x): shape (N, k).

    ``x`` is in ganlib's data range [-1, 1] (binary images are {-1, 1}). Memory grows as N * k *
    pixels: call it on small batches (:func:`iwae_log_likelihood` does).

    Shape:
        - x: (N, *vae.image_shape), in [-1, 1]
        - output: (N, k), float32
    """
    _check(vae, x, k)
    mu, logvar = (t.float() for t in vae.encode(x))
    n, d = mu.shape
    where = generator.device if generator is not None else mu.device
    eps = torch.randn((n, k, d), generator=generator, device=where).to(mu.device)
    z = mu[:, None] + torch.exp(0.5 * logvar)[:, None] * eps                       # (N, k, d)
    decoded = vae.decode(z.reshape(n * k, d)).float()
    target = _target(vae, x).float().repeat_interleave(k, dim=0)
    log_scale = vae.log_scale if vae.log_scale is not None else 0.0
    log_px_z = -reconstruction_nll(target, decoded, vae.likelihood, log_scale).reshape(n, k)
    log_pz = -0.5 * (z.pow(2) + LOG_2PI).sum(-1)
    log_qz = -0.5 * (eps.pow(2) + logvar[:, None] + LOG_2PI).sum(-1)  # (z - mu)^2 / sigma^2 = eps^2
    return log_px_z + log_pz - log_qz


@torch.no_grad()
def iwae_log_likelihood(vae: VAE, x: torch.Tensor, k: int = 5000, generator: torch.Generator | None = None,
                        max_rows: int = 20_000) -> torch.Tensor:
    """The k-sample importance-weighted estimate of log p(x) per example (shape (N,), float64, nats).

    ``log (1/k) sum_i w_i`` (Burda et al. 2016, eq. 8): a stochastic lower bound in expectation,
    equal to the ELBO's single-sample estimate at k = 1 and tending to log p(x) as k grows. The
    k samples are drawn in chunks of at most ``max_rows`` decoder rows and combined with a running
    log-sum-exp, so k = 5000 fits in memory. The VAE is put in eval mode for the call.

    Args:
        vae: a :class:`ganlib.models.VAE`.
        x: the images to score, in [-1, 1]; binary ({-1, 1}, e.g. :func:`binary_test_set`) for a Bernoulli decoder.
        k: importance samples per example.
        generator: the random generator of the draws z ~ q(z|x).
        max_rows: decoder rows per call (the memory budget).

    Shape:
        - x: (N, *vae.image_shape)
        - output: (N,), float64, nats
    """
    _check(vae, x, k)
    was_training = vae.training
    vae.eval()
    try:
        per_chunk = max(1, max_rows // k)       # examples per call when k is small
        samples = min(k, max_rows)              # samples per call when k is large
        out = []
        for i in range(0, len(x), per_chunk):
            xb = x[i:i + per_chunk]
            total = torch.full((len(xb),), -math.inf, dtype=torch.float64, device=xb.device)
            for start in range(0, k, samples):
                logw = log_importance_weights(vae, xb, min(samples, k - start), generator).double()
                total = torch.logaddexp(total, torch.logsumexp(logw, dim=1))
            out.append(total - math.log(k))
        return torch.cat(out)
    finally:
        vae.train(was_training)


@torch.no_grad()
def elbo(vae: VAE, x: torch.Tensor, generator: torch.Generator | None = None, batch_size: int = 1000
         ) -> dict[str, torch.Tensor]:
    """Per-example ELBO terms, one sample each: ``{"elbo", "rec", "kl"}``, each (N,) in nats.

    ``rec`` is the reconstruction NLL -log p(x|z) (the *distortion*) and ``kl`` the closed-form
    KL(q(z|x) || p(z)) (the *rate*); elbo = -(rec + kl). Computed in batches of ``batch_size``,
    with the VAE in eval mode.

    Shape:
        - x: (N, *vae.image_shape), in [-1, 1]; binary ({-1, 1}) for a Bernoulli decoder
        - each output: (N,), float64
    """
    _check(vae, x, 1)
    was_training = vae.training
    vae.eval()
    try:
        rec, kl = [], []
        for i in range(0, len(x), batch_size):
            _, r, q = vae.negative_elbo(x[i:i + batch_size], generator=generator)
            rec.append(r.double())
            kl.append(q.double())
    finally:
        vae.train(was_training)
    rec, kl = torch.cat(rec), torch.cat(kl)
    return {"elbo": -(rec + kl), "rec": rec, "kl": kl}


@torch.no_grad()
def active_units(vae: VAE, x: torch.Tensor, threshold: float = 0.01, batch_size: int = 1000) -> torch.Tensor:
    """Which latent units the encoder uses: Cov_x(E_q[z_u | x]) > ``threshold`` (Burda et al. 2016,
    sec. 5.2). Returns the per-unit activity, shape (latent_dim,); ``(activity > threshold).sum()``
    counts the active units. A collapsed unit has q(z_u|x) = p(z_u) for every x: activity 0.

    Shape:
        - x: (N, *vae.image_shape), in [-1, 1]; N >= 2
        - output: (latent_dim,), float64
    """
    _check(vae, x, 1, decoded=False)
    if len(x) < 2:
        raise ValueError(f"active_units needs at least 2 images (the activity is a variance over images); got {len(x)}")
    was_training = vae.training
    vae.eval()
    try:
        means = torch.cat([vae.encode(x[i:i + batch_size])[0].double() for i in range(0, len(x), batch_size)])
    finally:
        vae.train(was_training)
    return means.var(0, unbiased=True)


def binary_test_set(images: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """One fixed draw of dynamically binarised images (values {-1, 1}): the book's binary test set.

    Every likelihood in the book that is "on binarised MNIST" is scored on this draw of the 10k
    test images (seed 0), so the numbers are comparable across chapters and runs.

    Shape:
        - images: any shape, in [-1, 1] (a batch in [0, 1] or [0, 255] is refused: no value below 0)
        - output: the same shape, values in {-1, 1}
    """
    check_pixel_range("images", images)
    return dynamic_binarize(images, torch.Generator().manual_seed(seed))
