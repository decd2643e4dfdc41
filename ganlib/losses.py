"""GAN losses, gradient penalties and the VAE objective, as pure functions.

Conventions: ``real`` and ``fake`` are the discriminator's outputs on a batch of data and on a batch
of generated samples, shape (N,) (or (N, 1); anything else raises ValueError). For "minimax" and
"nonsaturating" they are *logits*: D(x) = sigmoid(real). For the other losses they are raw scores.
Where two tensors are combined elementwise (a target and its reconstruction, mu and logvar, the
real and fake batches of a gradient penalty) their shapes must be equal: broadcasting them would
give a wrong number without an error. Every loss is a scalar (a batch mean), and
each function's docstring gives the equation it implements. Logs of sigmoids are written with
softplus, because log(sigmoid(t)) = -softplus(-t) and 1 - sigmoid(t) = sigmoid(-t); that form stays
finite for logits of any size, while ``log(sigmoid(t))`` underflows to log(0) = -inf near t = -100.

References (keys in the book's references.bib):
  minimax, nonsaturating   Goodfellow et al. 2014 [goodfellow2014]
  lsgan                    Mao et al. 2017 [mao2017lsgan], with the 0-1 coding a=0, b=1, c=1
  wasserstein              Arjovsky et al. 2017 [arjovsky2017wgan]
  hinge                    Lim & Ye 2017 [lim2017geometric]; Miyato et al. 2018 [miyato2018spectral]
  gradient_penalty         Gulrajani et al. 2017 [gulrajani2017wgangp]
  r1_penalty               Mescheder et al. 2018 [mescheder2018r1]
  information_loss         Chen et al. 2016 [chen2016infogan]
  vae_loss                 Kingma & Welling 2014 [kingma2014vae]
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LOSSES = ("minimax", "nonsaturating", "lsgan", "wasserstein", "hinge")
#: Losses whose discriminator outputs are logits of the probability "x is real".
LOGIT_LOSSES = ("minimax", "nonsaturating")


def check_loss_name(name: str) -> None:
    """Raise ``ValueError`` unless ``name`` is one of :data:`LOSSES`."""
    if name not in LOSSES:
        raise ValueError(f"unknown GAN loss {name!r}; valid names are {', '.join(map(repr, LOSSES))}")


# Input checks. The GAN losses and the VAE objective run every training step, so they only read
# shapes (tensor metadata: no kernel launch and no GPU->host sync; plain Python comparisons that
# torch.compile turns into guards). The one value check, Bernoulli targets in [0, 1], is done where
# it costs no sync; see _check_bernoulli_target.


def _shape(t) -> tuple[int, ...]:
    return tuple(t.shape)


def _check_scores(arg: str, t: torch.Tensor) -> None:
    """D's outputs must be one score per example: shape (N,), or (N, 1), with N >= 1.

    Each batch mean is right for either form, but a (N, C) output (e.g. class logits) would be
    averaged over all N*C entries into a meaningless loss, and an empty batch gives NaN.
    """
    if not (t.dim() == 1 or (t.dim() == 2 and t.shape[1] == 1)) or t.shape[0] == 0:
        raise ValueError(
            f"{arg} must hold one discriminator output per example, shape (N,) or (N, 1) with N >= 1; "
            f"got shape {_shape(t)}. ganlib's discriminators return (N,); for your own, return "
            "out.reshape(-1) of a one-output head.")


def discriminator_loss(name: str, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    r"""The discriminator's (critic's) loss, to be minimised.

    ============== =====================================================================
    name           equation (``real`` = D's output on data, ``fake`` = on G(z))
    ============== =====================================================================
    minimax        mean(softplus(-real)) + mean(softplus(fake))
                   = -E[log D(x)] - E[log(1 - D(G(z)))]          (Goodfellow et al. 2014)
    nonsaturating  same as minimax (only G's loss differs)
    lsgan          0.5 mean((real - 1)^2) + 0.5 mean(fake^2)        (Mao et al. 2017)
    wasserstein    mean(fake) - mean(real)                          (Arjovsky et al. 2017)
    hinge          mean(relu(1 - real)) + mean(relu(1 + fake))      (Lim & Ye 2017)
    ============== =====================================================================

    Wasserstein's critic must be kept (roughly) 1-Lipschitz, e.g. with :func:`gradient_penalty`
    or spectral norm; without that its loss has no lower bound.

    Args:
        name: one of :data:`LOSSES`.
        real: D's outputs on data (logits for the minimax and non-saturating losses).
        fake: D's outputs on G(z); its batch size may differ from ``real``'s.

    Shape:
        - real: (N,) or (N, 1)
        - fake: (M,) or (M, 1)
        - output: () (a batch mean)
    """
    check_loss_name(name)
    # real and fake are averaged separately (never combined elementwise), so their batch sizes
    # may differ; each must be one score per example
    _check_scores("real", real)
    _check_scores("fake", fake)
    if name in LOGIT_LOSSES:
        return F.softplus(-real).mean() + F.softplus(fake).mean()
    if name == "lsgan":
        return 0.5 * (real - 1).pow(2).mean() + 0.5 * fake.pow(2).mean()
    if name == "wasserstein":
        return fake.mean() - real.mean()
    return F.relu(1 - real).mean() + F.relu(1 + fake).mean()  # hinge


def generator_loss(name: str, fake: torch.Tensor) -> torch.Tensor:
    r"""The generator's loss, to be minimised; ``fake`` is D's output on G(z).

    ============== =====================================================================
    name           equation
    ============== =====================================================================
    minimax        -mean(softplus(fake)) = E[log(1 - D(G(z)))]      (saturates when D wins)
    nonsaturating  mean(softplus(-fake)) = -E[log D(G(z))]         (Goodfellow et al. 2014, sec. 3)
    lsgan          0.5 mean((fake - 1)^2)                          (Mao et al. 2017)
    wasserstein    -mean(fake)                                     (Arjovsky et al. 2017)
    hinge          -mean(fake)                                     (Lim & Ye 2017; Miyato et al. 2018)
    ============== =====================================================================

    Args:
        name: one of :data:`LOSSES`.
        fake: D's outputs on G(z) (logits for the minimax and non-saturating losses).

    Shape:
        - fake: (N,) or (N, 1)
        - output: () (a batch mean)
    """
    check_loss_name(name)
    _check_scores("fake", fake)
    if name == "minimax":
        return -F.softplus(fake).mean()
    if name == "nonsaturating":
        return F.softplus(-fake).mean()
    if name == "lsgan":
        return 0.5 * (fake - 1).pow(2).mean()
    return -fake.mean()  # wasserstein and hinge


def _critic(critic, x, labels):
    return critic(x) if labels is None else critic(x, labels=labels)


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor, labels: torch.Tensor | None = None,
                     generator: torch.Generator | None = None, eps: torch.Tensor | None = None) -> torch.Tensor:
    r"""WGAN-GP's two-sided penalty, without its weight lambda (Gulrajani et al. 2017, eq. 3):

        mean_i ( ||grad_x critic(x_hat_i)||_2 - 1 )^2,   x_hat_i = eps_i real_i + (1 - eps_i) fake_i,

    with eps_i ~ U[0, 1] per example: ``eps`` if given (shape (N, 1, ..., 1)), else drawn from
    ``generator`` (which must live on ``real.device``). The graph is kept (``create_graph=True``) so
    the penalty can be minimised.

    Args:
        critic: the discriminator, called as ``critic(x)``, or ``critic(x, labels=labels)`` when
            ``labels`` is given (a conditional critic).
        real: a batch of data.
        fake: a batch of samples, paired with ``real`` example by example.

    Shape:
        - real, fake: (N, *), the same shape
        - eps: (N, 1, ..., 1), one weight per example
        - output: ()
    """
    if real.shape != fake.shape:  # they are mixed elementwise: broadcasting would mix the wrong pairs
        raise ValueError(f"real and fake must have the same shape (pairs are interpolated elementwise); "
                         f"got real {_shape(real)} and fake {_shape(fake)}")
    eps_shape = (real.shape[0],) + (1,) * (real.dim() - 1)
    if eps is None:
        eps = torch.rand(eps_shape, device=real.device, dtype=real.dtype, generator=generator)
    elif tuple(eps.shape) != eps_shape:
        raise ValueError(f"eps must have shape {eps_shape} (one weight per example); got {tuple(eps.shape)}")
    x_hat = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    out = _critic(critic, x_hat, labels)
    (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
    return (grad.flatten(1).norm(2, dim=1) - 1).pow(2).mean()


def r1_penalty(critic, real: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    r"""The R1 penalty on real data, without its weight gamma/2 (Mescheder et al. 2018, eq. 9):

        mean_i ||grad_x critic(x_i)||_2^2,   x_i from the data.

    Args:
        critic: the discriminator, called as ``critic(x)``, or ``critic(x, labels=labels)`` when
            ``labels`` is given.
        real: a batch of data; the graph is kept so that the penalty can be minimised.

    Shape:
        - real: (N, *)
        - output: ()
    """
    x = real.detach().requires_grad_(True)
    out = _critic(critic, x, labels)
    (grad,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    return grad.flatten(1).pow(2).sum(1).mean()


def information_loss(code_logits: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
    r"""InfoGAN's information term for a categorical code, as a loss (Chen et al. 2016, eqs. 4-5):

        -L_I(G, Q) + H(c) = mean_i -log Q(c_i | G(z_i, c_i)),

    the cross-entropy of Q's prediction of the code that made each fake. L_I is a lower bound on
    the mutual information I(c; G(z, c)), and H(c) is a constant (log K for a uniform code), so
    minimising this over G and Q maximises the bound; the GAN objective becomes
    min_{G,Q} max_D V(D, G) - lambda L_I(G, Q) (eq. 5), lambda = 1 for discrete codes.

    Args:
        code_logits: Q's logits of the code, one row per fake.
        code: the codes the fakes were generated from (int64).

    Shape:
        - code_logits: (N, K)
        - code: (N,)
        - output: ()
    """
    if code_logits.dim() != 2 or code.shape != code_logits.shape[:1]:
        raise ValueError(f"code_logits must have shape (N, K) and code shape (N,); got "
                         f"{_shape(code_logits)} and {_shape(code)}")
    return F.cross_entropy(code_logits.float(), code)


# ----------------------------------------------------------------------------- VAE objective


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    r"""KL( N(mu, diag(exp(logvar))) || N(0, I) ) per example, in nats (Kingma & Welling 2014, app. B):

        0.5 * sum_j ( mu_j^2 + exp(logvar_j) - 1 - logvar_j ).

    Shape:
        - mu, logvar: (N, latent_dim), the same shape
        - output: (N,)
    """
    if mu.shape != logvar.shape or mu.dim() < 2:  # shapes only: this runs every VAE step
        raise ValueError(f"mu and logvar must have the same shape (N, latent_dim); got mu {_shape(mu)} "
                         f"and logvar {_shape(logvar)}")
    return 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).flatten(1).sum(1)


def reconstruction_nll(x: torch.Tensor, decoded: torch.Tensor, likelihood: str = "bernoulli",
                       log_scale: torch.Tensor | float = 0.0) -> torch.Tensor:
    r"""-log p(x | z) per example, in nats, summed over all dimensions of x.

    * ``"bernoulli"``: ``decoded`` are logits l, ``x`` in [0, 1]:
      sum_j [ softplus(l_j) - x_j l_j ]  (binary cross-entropy with logits).
    * ``"gaussian"``: ``decoded`` is the mean m, ``log_scale`` = log sigma (scalar or broadcastable):
      sum_j [ (x_j - m_j)^2 / (2 sigma^2) + log sigma + 0.5 log(2 pi) ].

    ``x`` and ``decoded`` must have the same shape (N, ...): an (N, 1) target against an (N,)
    output would otherwise broadcast to (N, N). Bernoulli targets outside [0, 1] are refused on the
    CPU (see :func:`_check_bernoulli_target` for why not on other devices).

    Shape:
        - x, decoded: (N, *), the same shape
        - log_scale: a scalar, or broadcastable to x's shape
        - output: (N,)
    """
    if likelihood not in ("bernoulli", "gaussian"):
        raise ValueError(f"unknown likelihood {likelihood!r}; use 'bernoulli' or 'gaussian'")
    if x.shape != decoded.shape or x.dim() < 2:
        raise ValueError(f"x and decoded must have the same shape (N, ...) with a batch dimension; got "
                         f"x {_shape(x)} and decoded {_shape(decoded)}")
    if likelihood == "bernoulli":
        _check_bernoulli_target(x)
        nll = F.binary_cross_entropy_with_logits(decoded, x, reduction="none")
    else:
        log_scale = torch.as_tensor(log_scale, dtype=decoded.dtype, device=decoded.device)
        try:
            broadcast = torch.broadcast_shapes(log_scale.shape, x.shape)
        except RuntimeError:  # not broadcastable at all
            broadcast = None
        if broadcast != x.shape:  # a larger result would silently change the per-example sums
            raise ValueError(f"log_scale must broadcast to x's shape {_shape(x)} (a scalar, or one value "
                             f"per dimension); got shape {_shape(log_scale)}")
        nll = 0.5 * (x - decoded).pow(2) * torch.exp(-2 * log_scale) + log_scale + 0.5 * math.log(2 * math.pi)
    return nll.flatten(1).sum(1)


def _check_bernoulli_target(x: torch.Tensor) -> None:
    """Refuse Bernoulli targets outside [0, 1] (their "NLL" goes negative), where that is free.

    Reading a value back to decide costs a GPU->host sync, and this runs every VAE training step,
    so the check only runs for CPU tensors, where a min/max pass over the batch is cheap next to the
    loss itself and no device has to wait. It is also skipped while torch.compile traces (a
    data-dependent branch would break the graph). On the GPU the data path validates nothing here:
    ganlib's VAE feeds (x + 1) / 2 of images in [-1, 1].
    """
    if x.device.type != "cpu" or x.numel() == 0 or torch.compiler.is_compiling():
        return
    lo, hi = torch.aminmax(x.detach())
    if not (lo >= 0 and hi <= 1):  # written so that NaN fails too
        raise ValueError(
            f"x (the Bernoulli target) must be in [0, 1]; got values in [{float(lo):g}, {float(hi):g}]. "
            "Outside [0, 1] the Bernoulli NLL is not a log-likelihood (it can go negative): scale the "
            "data, e.g. (x + 1) / 2 for images in [-1, 1], or use likelihood='gaussian'.")


def vae_loss(x: torch.Tensor, decoded: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
             likelihood: str = "bernoulli", log_scale: torch.Tensor | float = 0.0, beta: float = 1.0,
             reduction: str = "mean") -> torch.Tensor:
    r"""The negative ELBO per example, in nats (Kingma & Welling 2014, eq. 10):

        -ELBO(x) = E_q(z|x)[-log p(x|z)] + beta * KL(q(z|x) || N(0, I)),

    with the expectation estimated by the one sample z that produced ``decoded`` and the KL in
    closed form (:func:`gaussian_kl`). beta = 1 gives the ELBO itself; other values give the
    beta-VAE objective. ``reduction="mean"`` averages over the batch, ``"none"`` returns shape (N,).

    Args:
        x: the target (in [0, 1] for the Bernoulli likelihood).
        decoded: the decoder's output for z ~ q(z|x): logits (Bernoulli) or the mean (Gaussian).
        mu, logvar: the encoder's mean and log variance of q(z|x).
        likelihood, log_scale: as in :func:`reconstruction_nll`.

    Shape:
        - x, decoded: (N, *), the same shape
        - mu, logvar: (N, latent_dim)
        - output: () with ``reduction="mean"``, (N,) with ``"none"``
    """
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', not {reduction!r}")
    if x.dim() < 1 or mu.dim() < 1 or x.shape[0] != mu.shape[0]:  # the per-example terms are added
        raise ValueError(f"x and mu must have the same batch size N; got x {_shape(x)} and mu {_shape(mu)}")
    loss = reconstruction_nll(x, decoded, likelihood, log_scale) + beta * gaussian_kl(mu, logvar)
    if reduction == "none":
        return loss
    return loss.mean()
