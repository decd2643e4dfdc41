"""GANTrainer: Goodfellow et al. (2014)'s Algorithm 1 with a choice of loss, penalties and an EMA generator.

Example::

    seed_everything(0)
    G, D = MLPGenerator(8, 2, hidden=(128, 128)), MLPDiscriminator(2, hidden=(128, 128))
    trainer = GANTrainer(G, D, gaussian_ring(), GANConfig(steps=2000, batch_size=256, lr_g=1e-3, lr_d=1e-3))
    history = trainer.fit()          # {"step": [...], "loss_d": [...], "loss_g": [...], ...}
    x = trainer.sample(1000)         # (1000, 2), from the EMA generator if ema_decay > 0
"""
from __future__ import annotations

import contextlib
import warnings
from typing import NamedTuple

import torch

from ..cuda_graph import CUDAGraphStep
from ..losses import (LOGIT_LOSSES, discriminator_loss, generator_loss, gradient_penalty, information_loss,
                      r1_penalty)
from ..models import batch_norms
from . import speed
from .config import GANConfig
from .ema import EMA
from .gan_sampling import GANSampling
from .loop import Trainer


class GANStepInputs(NamedTuple):
    """Everything random in one GAN step, drawn before it runs (:meth:`GANTrainer.draw_inputs`).

    The tuples hold one entry per discriminator update (``d_steps`` of them).
    """

    reals: tuple[torch.Tensor, ...]             # a data batch for each D update
    labels: tuple[torch.Tensor | None, ...]     # its labels (conditional models), else None
    d_noise: tuple[torch.Tensor, ...]           # latent codes of each D update's fakes
    gp_eps: tuple[torch.Tensor | None, ...]     # WGAN-GP's interpolation weights eps ~ U[0, 1], else None
    g_noise: torch.Tensor                       # latent codes of G's update (it reuses the last labels)


def discriminator_summary(loss: str, out: torch.Tensor) -> torch.Tensor:
    """What the history logs of D's outputs: mean sigmoid(D) (the probability "real") for the logit
    losses, the mean raw score otherwise; detached."""
    return (torch.sigmoid(out) if loss in LOGIT_LOSSES else out).mean().detach()


def _conditional(generator, discriminator, has_labels: bool) -> bool:
    """Whether G and D are class-conditional; an error if only one is, or if the data has no labels."""
    conditional = bool(getattr(generator, "num_classes", 0))
    if conditional != bool(getattr(discriminator, "num_classes", 0)):
        raise ValueError("build G and D both conditional (num_classes=K) or both unconditional")
    if conditional and not has_labels:
        raise ValueError(f"the models are conditional (num_classes={generator.num_classes}) but the data "
                         "has no labels; pass data=(images, labels) or build them with num_classes=0")
    return conditional


def _code_classes(generator, discriminator) -> int:
    """The InfoGAN code's number of values (0: none); an error unless G draws it and D's head predicts it."""
    g, d = getattr(generator, "code_classes", 0), getattr(discriminator, "code_classes", 0)
    if g != d:
        raise ValueError(f"the generator draws a code of {g} values and the discriminator's head predicts {d}: "
                         "build both with the same code_classes (0: no code)")
    return g


@contextlib.contextmanager
def frozen(module: torch.nn.Module):
    """Turn off ``requires_grad`` of ``module``'s parameters for the block.

    Used for D during G's update: gradients still flow *through* D to G, but D's own weight
    gradients, which G's update would throw away, are never computed.
    """
    params = [p for p in module.parameters() if p.requires_grad]
    try:
        for p in params:
            p.requires_grad_(False)
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


class GANTrainer(GANSampling, Trainer):
    """Goodfellow et al. (2014)'s Algorithm 1 with a choice of loss, penalties and an EMA generator.

    Each step: ``d_steps`` times { update D on a data batch and fresh fakes, with
    ``discriminator_loss + gp_weight * gradient_penalty + r1_weight * r1_penalty`` }, then update
    G on ``generator_loss`` with fresh noise. :meth:`draw_inputs` draws all of it first (the data
    batches and every noise tensor, :class:`GANStepInputs`); :meth:`gan_step` then only computes.
    History per step: ``loss_d`` (adversarial part, mean over the D updates), ``loss_g``,
    ``penalty`` (weighted, mean over the D updates; only when a penalty is on), ``d_real``/``d_fake``
    from the last D update (mean sigmoid(D) on data/fakes for the logit losses minimax and
    nonsaturating, mean raw score otherwise), and the learning rates ``lr_g``, ``lr_d``.
    Conditional models (``num_classes > 0``) get the data's labels; fakes reuse the batch's labels.
    Models with an InfoGAN code (``code_classes > 0``, see :class:`~ganlib.models.DCGANGenerator`)
    add ``info_weight * information_loss`` to both updates: D's head Q learns to recover the code
    of D's fakes, and G to make its code recoverable (Chen et al. 2016, eq. 5); the history gains
    ``loss_info`` (unweighted, from G's update).
    """

    config_class = GANConfig
    history_keys = ("loss_d", "loss_g", "d_real", "d_fake")
    learning_rate_fields = {"lr_g": "generator", "lr_d": "discriminator"}

    def __init__(self, generator, discriminator, data, config: GANConfig | None = None, callbacks=()):
        config = config or GANConfig()
        super().__init__(data, config, callbacks)
        self.generator = self.place(generator)
        self.discriminator = self.place(discriminator)
        self.conditional = _conditional(generator, discriminator, self.has_labels)
        self.code_classes = _code_classes(generator, discriminator)
        self.models = {"generator": self.generator, "discriminator": self.discriminator}
        speed.set_up_gan_speed(self, config)
        # what the steps call: DDP-wrapped (under torchrun) and/or compiled views of the same modules,
        # set up once here. D inside G's update is not DDP-wrapped: its parameters are frozen there.
        self.train_generator = speed.wrap(self.generator, self.device, config)
        self.train_discriminator = speed.wrap(self.discriminator, self.device, config)
        self.train_discriminator_local = (speed.wrap(self.discriminator, self.device, config, ddp=False)
                                          if self.dist.distributed else self.train_discriminator)
        self.opt_g = self.adam(self.generator.parameters(), config.lr_g, config.betas)
        self.opt_d = self.adam(self.discriminator.parameters(), config.lr_d, config.betas)
        self.optimizers = {"generator": self.opt_g, "discriminator": self.opt_d}
        if config.ema_decay > 0:
            self.ema = EMA(self.generator, config.ema_decay)
        if config.gp_weight or config.r1_weight:
            self.history["penalty"] = []
        if self.code_classes:
            self.history["loss_info"] = []
        if config.gp_weight and batch_norms(discriminator):
            warnings.warn("the discriminator uses batch norm, which mixes examples, so the gradient penalty no "
                          "longer constrains each example's gradient (Gulrajani et al. 2017, sec. 4); build it with "
                          "norm='layer' or norm='none'", stacklevel=2)
        self.fixed_noise = self.seeded_noise(None, generator.latent_dim, config.seed + 2).to(self.device)
        self.fixed_labels = (torch.arange(config.n_samples, device=self.device) % generator.num_classes
                             if self.conditional else None)
        self.graphed_step: CUDAGraphStep | None = None  # made at the first step under cuda_graph

    @classmethod
    def from_models(cls, models: dict, data, config: GANConfig, callbacks=()):
        """A trainer of a checkpoint's ``{"generator", "discriminator"}``."""
        return cls(models["generator"], models["discriminator"], data, config, callbacks)

    # -- the step's inputs
    def noise(self, n: int) -> torch.Tensor:
        """``n`` latent codes z ~ N(0, I) from the trainer's noise stream."""
        return torch.randn(n, self.generator.latent_dim, device=self.device, generator=self.noise_gen)

    def draw_inputs(self) -> GANStepInputs:
        """The data batches and noise of one step, in the order an eager loop would draw them."""
        batches = [self.next_batch() for _ in range(self.config.d_steps)]
        n = batches[0][0].shape[0]
        d_noise, gp_eps = [], []
        for real, _ in batches:  # noise, then interpolation weights, per D update: one stream, fixed order
            d_noise.append(self.noise(n))
            gp_eps.append(torch.rand((n,) + (1,) * (real.dim() - 1), device=self.device, dtype=real.dtype,
                                     generator=self.noise_gen) if self.config.gp_weight else None)
        return GANStepInputs(tuple(x for x, _ in batches), tuple(y for _, y in batches), tuple(d_noise),
                             tuple(gp_eps), self.noise(n))

    # -- the step
    def train_step(self, inputs: GANStepInputs) -> dict[str, torch.Tensor]:
        """:meth:`gan_step` (eager, or replayed as a CUDA graph), then the EMA update; detached logs."""
        if self.marks_cudagraph_steps:  # compile's CUDA-graph trees may now reuse the last step's outputs
            torch.compiler.cudagraph_mark_step_begin()
        if self.use_cuda_graph and self.graphed_step is None:
            self.graphed_step = speed.graphed(self.gan_step, self.optimizers)
        logs = self.graphed_step(inputs) if self.use_cuda_graph else self.gan_step(inputs)
        if self.ema is not None:  # outside any graph: the EMA counts its updates on the CPU
            self.ema.update_parameters(self.generator)
        return logs

    def gan_step(self, inputs: GANStepInputs) -> dict[str, torch.Tensor]:
        """One iteration of Algorithm 1 on the given inputs: ``d_steps`` D updates, then one G update."""
        k = len(inputs.reals)
        loss_d = penalty = 0.0
        for real, labels, z, eps in zip(inputs.reals, inputs.labels, inputs.d_noise, inputs.gp_eps):
            d_loss, d_real, d_fake, d_penalty = self.d_step(real, labels, z, eps)
            loss_d, penalty = loss_d + d_loss / k, penalty + d_penalty / k
        loss_g, loss_info = self.g_step(inputs.g_noise, inputs.labels[-1])
        logs = {"loss_d": loss_d, "loss_g": loss_g, "d_real": d_real, "d_fake": d_fake}
        if "penalty" in self.history:
            logs["penalty"] = penalty
        if self.code_classes:
            logs["loss_info"] = loss_info
        return logs

    def information(self, out, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """D's logits, and the information loss of the code that z chose (0 without a code), from
        D's output ``out``: the logits, or (logits, Q's code logits) when the models have a code."""
        if not self.code_classes:
            return out.float(), torch.zeros((), device=self.device)
        logits, code_logits = out
        return logits.float(), information_loss(code_logits, self.generator.code(z))

    def d_step(self, real: torch.Tensor, labels: torch.Tensor | None, z: torch.Tensor,
               gp_eps: torch.Tensor | None = None):
        """One discriminator update on ``real`` and fakes G(z); returns detached (loss, d_real, d_fake, penalty).

        ``gp_eps`` are the gradient penalty's interpolation weights (needed when ``gp_weight > 0``).
        """
        cfg, G, D = self.config, self.train_generator, self.train_discriminator
        kw = {"labels": labels} if self.conditional else {}
        with self.autocast:
            with torch.no_grad():
                fake = G(z, **kw)
            real_out = D(real, **kw).float()
            fake_out, info = self.information(D(fake, **kw, **self.code_kw), z)
            loss = discriminator_loss(cfg.loss, real_out, fake_out)
            penalty = torch.zeros((), device=self.device)
            D = self.discriminator  # the penalties differentiate twice: plain eager module, never compiled
            if cfg.gp_weight:
                if gp_eps is None:
                    raise ValueError("gp_weight > 0 needs the interpolation weights gp_eps (draw_inputs draws them)")
                penalty = penalty + cfg.gp_weight * gradient_penalty(D, real, fake, kw.get("labels"), eps=gp_eps)
            if cfg.r1_weight:
                penalty = penalty + cfg.r1_weight * r1_penalty(D, real, kw.get("labels"))
        total = loss + penalty + cfg.info_weight * info if self.code_classes else loss + penalty
        self.opt_d.zero_grad(set_to_none=True)
        total.backward()
        self.opt_d.step()
        return (loss.detach(), discriminator_summary(cfg.loss, real_out), discriminator_summary(cfg.loss, fake_out),
                penalty.detach().float())

    def g_step(self, z: torch.Tensor, labels: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """One generator update on the latent codes ``z``; returns the detached adversarial and
        information losses (the latter 0 without a code)."""
        kw = {"labels": labels} if self.conditional else {}
        with self.autocast, frozen(self.discriminator):
            fake = self.train_generator(z, **kw)
            out, info = self.information(self.train_discriminator_local(fake, **kw, **self.code_kw), z)
            loss = generator_loss(self.config.loss, out)
        total = loss + self.config.info_weight * info if self.code_classes else loss
        self.opt_g.zero_grad(set_to_none=True)
        total.backward()
        self.opt_g.step()
        return loss.detach(), info.detach()

    @property
    def code_kw(self) -> dict:
        """What D is called with so that it also returns Q's code logits (nothing without a code)."""
        return {"code_logits": True} if self.code_classes else {}

    def load_state_dict(self, state: dict) -> None:
        """Restore a checkpoint's state (see :meth:`Trainer.load_state_dict`)."""
        super().load_state_dict(state)
        self.graphed_step = None  # new optimizer state tensors: capture the step again
