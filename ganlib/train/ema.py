"""An exponential moving average of a model's weights (the EMA generator of Karras et al. 2018)."""
from __future__ import annotations

import itertools

import torch
from torch.optim.swa_utils import AveragedModel


class EMA(AveragedModel):
    """An exponential moving average of a model's parameters and buffers (``.module`` holds it).

    Each update: W_ema <- decay * W_ema + (1 - decay) * W, the rule of
    ``torch.optim.swa_utils.get_ema_multi_avg_fn``; the first update copies W; integer buffers
    are copied. It is torch's :class:`~torch.optim.swa_utils.AveragedModel` (same state dict,
    same ``.module``), with ``update_parameters`` rewritten for one reason: AveragedModel copies its
    CPU counter ``n_averaged`` to the GPU on every update, a blocking host-to-device copy. Here the
    counter stays on the CPU and is only read there, so an update never waits for the GPU.
    """

    def __init__(self, model: torch.nn.Module, decay: float):
        if not 0.0 <= decay <= 1.0:
            raise ValueError(f"EMA decay must be in [0, 1], got {decay}")
        super().__init__(model, use_buffers=True)  # device=None keeps n_averaged on the CPU
        self.decay = decay

    @torch.no_grad()
    def update_parameters(self, model: torch.nn.Module) -> None:
        first = int(self.n_averaged) == 0  # a CPU tensor: no device sync
        averaged, current = [], []
        for p_ema, p in zip(itertools.chain(self.module.parameters(), self.module.buffers()),
                            itertools.chain(model.parameters(), model.buffers())):
            if first or not p_ema.is_floating_point():
                p_ema.copy_(p.detach())
            else:
                averaged.append(p_ema)
                current.append(p.detach())
        if averaged:
            torch._foreach_lerp_(averaged, current, 1.0 - self.decay)
        self.n_averaged += 1
