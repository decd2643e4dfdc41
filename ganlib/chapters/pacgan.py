"""PacGAN's packing (Lin et al. 2018) as a wrapper around any discriminator.

A packed discriminator judges ``pack`` samples at once: it sees the concatenation of ``pack``
samples, all real or all generated, and gives one score for the group. A generator that
collapses onto a few modes makes groups whose members look alike, which a packed discriminator
can spot even when each sample on its own looks real; that is the whole idea.

:class:`PackedDiscriminator` reshapes a batch of N samples into N / pack groups, so it works with
:class:`ganlib.train.GANTrainer` and every loss in :mod:`ganlib.losses` unchanged (the losses are
batch means, so one score per group is all they need). Build the inner network for inputs
``pack`` times as large, and use a batch size divisible by ``pack``::

    D = PackedDiscriminator(MLPDiscriminator(2 * pack, hidden=(400, 400, 400)), pack)
    GANTrainer(G, D, gaussian_grid(), GANConfig(batch_size=100 * pack, ...))
"""
from __future__ import annotations

import torch
import torch.nn as nn


class PackedDiscriminator(nn.Module):
    """Score groups of ``pack`` consecutive samples with ``inner``; returns (N / pack,) outputs."""

    def __init__(self, inner: nn.Module, pack: int):
        super().__init__()
        if pack < 1:
            raise ValueError(f"pack must be a positive integer, got {pack}")
        self.inner, self.pack = inner, int(pack)
        self.num_classes = 0  # unconditional: PacGAN packs unlabelled samples

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """One score per group of ``pack`` consecutive samples.

        Shape:
            - x: (N, *), N divisible by ``pack``
            - output: what ``inner`` returns for N / pack inputs of ``pack`` times the features, e.g. (N / pack,)
        """
        if labels is not None:
            raise ValueError("PackedDiscriminator is unconditional; call it without labels")
        n = x.shape[0]
        if n % self.pack:
            raise ValueError(f"the batch ({n} samples) must be divisible by pack={self.pack}; "
                             f"use a batch size that is a multiple of {self.pack}")
        # group g holds samples g*pack ... g*pack + pack - 1, concatenated feature-wise
        return self.inner(x.reshape(n // self.pack, -1))
