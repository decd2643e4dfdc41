"""VAETrainer: minimises a VAE's negative ELBO (Kingma and Welling 2014) with Adam."""
from __future__ import annotations

from typing import NamedTuple

import torch

from .. import distributed
from ..data import dynamic_binarize
from .config import VAEConfig
from .loop import Trainer, eval_mode


class VAEStepInputs(NamedTuple):
    """Everything random in one VAE step, drawn before it runs (:meth:`VAETrainer.draw_inputs`)."""

    x: torch.Tensor    # a data batch
    eps: torch.Tensor  # the reparameterisation noise, z = mu + sigma * eps, shape (N, latent_dim)


class VAETrainer(Trainer):
    """Minimises a VAE's negative ELBO with Adam. History per step: ``loss`` (negative ELBO per
    example, nats), ``rec`` (reconstruction NLL), ``kl`` and the learning rate ``lr``.

    With ``config.binarize`` every batch is binarised afresh (:func:`ganlib.data.dynamic_binarize`):
    the Bernoulli decoder then models binary images, and its ELBO is a bound on a proper
    log-probability, the number published MNIST likelihoods report."""

    config_class = VAEConfig
    history_keys = ("loss", "rec", "kl")
    learning_rate_fields = {"lr": "vae"}

    def __init__(self, vae, data, config: VAEConfig | None = None, callbacks=()):
        super().__init__(data, config or VAEConfig(), callbacks)
        self.vae = self.place(vae)
        if self.dist.distributed:  # the loss is a method, not forward(): average gradients by hand, not DDP
            distributed.broadcast_parameters(self.vae)
        self.models = {"vae": self.vae}
        self.opt = self.adam(self.vae.parameters(), self.config.lr, self.config.betas)
        self.optimizers = {"vae": self.opt}
        self.fixed_noise = self.seeded_noise(None, vae.latent_dim, self.config.seed + 2).to(self.device)

    @classmethod
    def from_models(cls, models: dict, data, config: VAEConfig, callbacks=()):
        """A trainer of a checkpoint's ``{"vae"}``."""
        return cls(models["vae"], data, config, callbacks)

    def draw_inputs(self) -> VAEStepInputs:
        """A data batch (binarised afresh with ``config.binarize``) and its reparameterisation noise."""
        x, _ = self.next_batch()
        if self.config.binarize:  # a fresh binary image per visit (Salakhutdinov & Murray 2008)
            x = dynamic_binarize(x, self.noise_gen)
        eps = torch.randn(x.shape[0], self.vae.latent_dim, device=self.device, generator=self.noise_gen)
        return VAEStepInputs(x, eps)

    def train_step(self, inputs: VAEStepInputs) -> dict[str, torch.Tensor]:
        """One Adam step on the batch's mean negative ELBO; detached ``loss``, ``rec``, ``kl``."""
        with self.autocast:
            loss, rec, kl = self.vae.negative_elbo(inputs.x, beta=self.config.beta, eps=inputs.eps)
            loss = loss.mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.dist.distributed:
            distributed.average_gradients(self.vae)
        self.opt.step()
        return {"loss": loss.detach(), "rec": rec.mean().detach(), "kl": kl.mean().detach()}

    @torch.no_grad()
    def evaluate(self, images: torch.Tensor, batch_size: int = 1000, seed: int = 0) -> float:
        """Mean negative ELBO (nats per example) on ``images``, with a seeded single-sample estimate."""
        if len(images) == 0:
            raise ValueError("evaluate() needs at least one image; got an empty tensor")
        gen = torch.Generator(device=self.device).manual_seed(seed)
        total = 0.0
        with eval_mode(self.vae):
            for i in range(0, len(images), batch_size):
                x = images[i:i + batch_size].to(self.device)
                total += self.vae.negative_elbo(x, generator=gen)[0].sum().item()
        return total / len(images)

    def sampling_generator(self, ema: bool = True) -> torch.nn.Module:
        """The model that :meth:`sample` decodes with: the VAE (which keeps no EMA copy)."""
        return self.vae

    @torch.no_grad()
    def sample(self, n: int | None = None, z: torch.Tensor | None = None, seed: int | None = None) -> torch.Tensor:
        """Images E[x | z] in [-1, 1], z ~ N(0, I) from a CPU generator seeded with ``seed``."""
        if z is None:
            z = self.seeded_noise(n, self.vae.latent_dim, self.config.seed if seed is None else seed)
        with eval_mode(self.vae):
            return self.vae.decode_mean(z.to(self.device)).float()

    def sample_fixed(self) -> torch.Tensor:
        """Decoded means of the fixed noise batch, for snapshots."""
        return self.sample(z=self.fixed_noise)
