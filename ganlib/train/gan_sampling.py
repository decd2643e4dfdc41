"""Sampling a GAN trainer's generator: the EMA copy (with batch-norm statistics re-estimated for
its averaged weights) or the raw one, from seeded noise that never touches the training RNG streams."""
from __future__ import annotations

import torch

from .loop import eval_mode


class GANSampling:
    """The sampling methods of :class:`~ganlib.train.GANTrainer`, which provides what they read:
    ``generator``, ``ema``, ``config``, ``device``, ``step``, ``conditional``, ``fixed_noise``,
    ``fixed_labels`` and ``seeded_noise``."""

    def sampling_generator(self, ema: bool = True) -> torch.nn.Module:
        """The generator that :meth:`sample` runs: the raw one, or the EMA one with batch-norm
        statistics re-estimated for the averaged weights (:meth:`EMA.sampling_copy`)."""
        if not (ema and self.ema is not None):
            return self.generator
        return self.ema.sampling_copy(self.step, seed=self.config.seed + 3)

    @torch.no_grad()
    def sample(self, n: int | None = None, labels: torch.Tensor | None = None, z: torch.Tensor | None = None,
               ema: bool = True, seed: int | None = None) -> torch.Tensor:
        """Generated samples (float32, on the device), in eval mode, from the EMA generator if any
        (with re-estimated batch-norm statistics, see :meth:`sampling_generator`).

        The noise is ``z`` if given, else drawn on the CPU from a generator seeded with ``seed``
        (default ``config.seed``): the same call gives the same samples, and sampling never touches
        the training RNG streams. Conditional models cycle through the classes unless given ``labels``.
        """
        G = self.sampling_generator(ema)
        if z is None:
            z = self.seeded_noise(n, self.generator.latent_dim, self.config.seed if seed is None else seed)
        z = z.to(self.device)
        kw = {}
        if self.conditional:
            labels = labels if labels is not None else torch.arange(len(z)) % self.generator.num_classes
            kw = {"labels": labels.to(self.device)}
        with eval_mode(G):
            return G(z, **kw).float()

    def sample_fixed(self) -> torch.Tensor:
        """Samples from the fixed noise batch (and labels), for snapshots."""
        return self.sample(z=self.fixed_noise, labels=self.fixed_labels)
