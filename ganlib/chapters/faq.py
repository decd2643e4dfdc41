"""The FAQ chapter's "what readers really ask": each question's behaviour, measured on a small run.

* :func:`detach_effect` -- what ``.detach()`` on the fakes saves in D's step, and why D runs twice;
* :func:`accumulation_check` -- gradients add up until ``zero_grad``: accumulation done right and wrong;
* :func:`loss_curve_run` -- a healthy 2D GAN's losses beside its modes captured over training;
* :func:`loader_timing` -- ganlib's device-resident loader against a ``DataLoader`` over the same tensors;
* :func:`error_message` -- the text of the error a call raises (the offline dataset and dtype questions).
"""
from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F

from ..data import DeviceLoader, gaussian_ring
from ..env import seed_everything
from ..losses import discriminator_loss, gaussian_kl
from ..metrics import mode_coverage
from ..models import MLPDiscriminator, MLPGenerator
from ..train import GANConfig, GANTrainer


def _toy_pair(seed: int = 0):
    seed_everything(seed)
    return MLPGenerator(2, 2, hidden=(64, 64)), MLPDiscriminator(2, hidden=(64, 64))


def detach_effect(seed: int = 0, batch_size: int = 256) -> dict:
    """One D step on fakes G(z), with and without ``.detach()``, on a small 2D GAN.

    Returns the norm of the gradient that D's backward pass leaves on G's parameters (0 with
    detach: no work spent on G; without it, a gradient that, if not zeroed, leaks into G's own
    update), and D(G(z)) on the *same* fakes before and after D's update: D changed, so G's step
    must evaluate D again (the second forward pass) to get a gradient from the current D.
    """
    out = {}
    for detach in (True, False):
        G, D = _toy_pair(seed)
        opt_d = torch.optim.Adam(D.parameters(), 2e-3, betas=(0.5, 0.999))
        gen = torch.Generator().manual_seed(seed)
        real = gaussian_ring().sample(batch_size, generator=gen)
        fake = G(torch.randn(batch_size, G.latent_dim, generator=gen))
        before = torch.sigmoid(D(fake.detach())).mean().item()
        for _ in range(5):  # a few D updates on the same batch: D learns these fakes
            opt_d.zero_grad()
            discriminator_loss("nonsaturating", D(real), D(fake.detach() if detach else fake)).backward(
                retain_graph=not detach)
            opt_d.step()
        grads = [p.grad for p in G.parameters() if p.grad is not None]
        out["G grad norm, detach" if detach else "G grad norm, no detach"] = (
            torch.stack([g.norm() for g in grads]).norm().item() if grads else 0.0)
        out["D(G(z)) before D's steps"] = before
        out["D(G(z)) after D's steps"] = torch.sigmoid(D(fake.detach())).mean().item()
    return out


def accumulation_check(micro_batches: int = 4, batch_size: int = 64, steps: int = 6, seed: int = 0) -> dict:
    """Gradients add up in ``.grad`` until ``zero_grad``.

    * ``max_difference``: the largest gap between D's gradient on one batch of ``batch_size`` and
      the sum of ``micro_batches`` micro-batch gradients, each loss divided by ``micro_batches``
      (accumulation done right: the same gradient, to rounding);
    * ``norm_without_zero_grad``: the gradient norm after each of ``steps`` backward passes on the same
      batch with no ``zero_grad`` in between: k times the first, the bug of a misplaced ``zero_grad``.
    """
    G, D = _toy_pair(seed)
    gen = torch.Generator().manual_seed(seed)
    real = gaussian_ring().sample(batch_size, generator=gen)
    with torch.no_grad():
        fake = G(torch.randn(batch_size, G.latent_dim, generator=gen))

    def loss(r, f):
        return discriminator_loss("nonsaturating", D(r), D(f))

    D.zero_grad()
    loss(real, fake).backward()
    full = [p.grad.clone() for p in D.parameters()]
    D.zero_grad()
    for r, f in zip(real.chunk(micro_batches), fake.chunk(micro_batches)):
        (loss(r, f) / micro_batches).backward()
    accumulated = [p.grad.clone() for p in D.parameters()]
    D.zero_grad()
    norms = []
    for _ in range(steps):
        loss(real, fake).backward()
        norms.append(torch.stack([p.grad.norm() for p in D.parameters()]).norm().item())
    return {"max_difference": max((a - b).abs().max().item() for a, b in zip(full, accumulated)),
            "full_grad_max": max(g.abs().max().item() for g in full), "norm_without_zero_grad": norms}


def loss_curve_run(steps: int = 2000, every: int = 100, seed: int = 0, lr: float = 1e-3) -> dict:
    """A 2D GAN on the 8-Gaussian ring (non-saturating loss, with R1), logged every ``every`` steps:
    ``loss_d``, ``loss_g``, ``d_real``, ``d_fake`` and ``modes`` (modes captured by 1,000 samples).
    The losses settle near their equilibrium values, 2 log 2 for D and log 2 for G, long before the
    modes stop improving: a GAN's loss is not a progress bar."""
    G, D = _toy_pair(seed)
    ring = gaussian_ring()
    modes = []

    def count_modes(trainer):
        if trainer.step % every == 0:
            modes.append(mode_coverage(trainer.sample(1000, ema=False, seed=3), ring.centers, ring.std).modes_captured)

    cfg = GANConfig(steps=steps, batch_size=256, lr_g=lr, lr_d=lr, r1_weight=0.1, bf16=False, device="cpu",
                    seed=seed, log_every=every, progress=False)
    trainer = GANTrainer(G, D, ring, cfg, callbacks=[count_modes])
    history = trainer.fit()
    return {k: history[k] for k in ("step", "loss_d", "loss_g", "d_real", "d_fake")} | {
        "modes": modes, "equilibrium_d": 2 * math.log(2), "equilibrium_g": math.log(2)}


def loader_timing(images: torch.Tensor, batch_size: int = 64, batches: int = 200, workers: int = 0) -> dict:
    """Seconds per batch: :class:`~ganlib.data.DeviceLoader` against ``torch.utils.data.DataLoader``
    over the same tensors (``num_workers=workers``), each for ``batches`` batches."""
    labels = torch.zeros(len(images), dtype=torch.long)
    device_loader = DeviceLoader(images, labels, batch_size=batch_size, device="cpu")
    data_loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(images, labels), batch_size=batch_size,
                                              shuffle=True, num_workers=workers, drop_last=True)

    def seconds(next_batch):
        start = time.perf_counter()
        for _ in range(batches):
            next_batch()
        return (time.perf_counter() - start) / batches

    it = iter(data_loader)

    def from_data_loader():
        nonlocal it
        try:
            return next(it)
        except StopIteration:
            it = iter(data_loader)
            return next(it)

    return {"DeviceLoader": seconds(device_loader.next_batch), f"DataLoader (num_workers={workers})":
            seconds(from_data_loader)}


def error_message(call, *args, **kwargs) -> str:
    """``"ExceptionType: message"`` of what ``call(*args, **kwargs)`` raises (or ``"no error"``)."""
    try:
        call(*args, **kwargs)
    except Exception as err:  # the question is what the reader sees, whatever the type
        return f"{type(err).__name__}: {err}"
    return "no error"


def bce_curves(logits: torch.Tensor | None = None) -> dict:
    """D's loss on one example as a function of its logit: the real term of
    :func:`ganlib.losses.discriminator_loss` (float target 1.0, softplus(-l)), the fake term
    (target 0.0, softplus(l)), and G's non-saturating loss, which is the real term with G's samples."""
    logits = torch.linspace(-6, 6, 121) if logits is None else logits

    def per_example(target: float) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target), reduction="none")

    return {"logit": logits, "real, target 1": per_example(1.0), "fake, target 0": per_example(0.0),
            "G, non-saturating": per_example(1.0)}


def kl_curves(mus=None, sigmas=(0.5, 1.0, 2.0)) -> dict:
    """KL(N(mu, sigma^2) || N(0, 1)) over ``mus`` for each sigma, from :func:`ganlib.losses.gaussian_kl`:
    never negative, zero only at mu = 0, sigma = 1."""
    mus = torch.linspace(-3, 3, 61) if mus is None else mus
    return {"mu": mus, **{s: gaussian_kl(mus[:, None], torch.full((len(mus), 1), 2 * math.log(s))) for s in sigmas}}


def binary_cross_entropy_long(logits: torch.Tensor, labels: torch.Tensor):
    """The dtype mistake: BCE with integer labels (what ``torch.ones(n, dtype=torch.long)`` gives)."""
    return F.binary_cross_entropy_with_logits(logits, labels)
