"""An exponential moving average of a model's weights (the EMA generator of Karras et al. 2018)."""
from __future__ import annotations

import copy
import itertools

import torch
from torch.optim.swa_utils import AveragedModel

from ..models import batch_norms, refresh_batch_norm


#: the decays an EMA takes (what GANConfig.ema_decay and the command line's --ema-decay accept)
EMA_DECAY_RANGE = "a number in [0, 1) (0: no EMA; 0.999 is typical)"


def valid_ema_decay(value) -> bool:
    """Whether ``value`` is an EMA decay in [0, 1) (0 turns the EMA off)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 1


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
        if not valid_ema_decay(decay):
            raise ValueError(f"EMA decay must be {EMA_DECAY_RANGE}; got {decay!r}")
        super().__init__(model, use_buffers=True)  # device=None keeps n_averaged on the CPU
        self.decay = decay
        self._sampling_copy: tuple[int, torch.nn.Module] | None = None  # (step, copy with fresh BN statistics)

    def sampling_copy(self, step: int, seed: int) -> torch.nn.Module:
        """The averaged model to sample from at training step ``step``: a copy whose batch-norm
        statistics are re-estimated for the averaged weights (:func:`~ganlib.models.refresh_batch_norm`,
        seeded with ``seed``), made once per step; the averaged model itself if it has no batch norm.

        The EMA's own running statistics were averaged from the raw models' activations, which early
        in a run, while the weights still move quickly, belong to quite different weights (the
        chapter "Practice on MNIST" measures it; at the end of its full run the two kinds of
        statistics score about the same). The copy never touches the training state.
        """
        if not batch_norms(self.module):  # nothing to re-estimate
            return self.module
        if self._sampling_copy is None or self._sampling_copy[0] != step:
            self._sampling_copy = (step, refresh_batch_norm(copy.deepcopy(self.module), seed=seed))
        return self._sampling_copy[1]

    @torch.no_grad()
    def update_parameters(self, model: torch.nn.Module) -> None:
        """W_ema <- decay * W_ema + (1 - decay) * W for each floating-point parameter and buffer
        (copied at the first update; integer buffers are always copied)."""
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
