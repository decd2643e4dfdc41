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


@torch.no_grad()
def refresh_batch_norm(generator: torch.nn.Module, batches: int = 10, batch_size: int = 500,
                       seed: int = 0) -> torch.nn.Module:
    """Re-estimate a generator's batch-norm running statistics from its own activations, in place.

    An EMA generator's weights are an average, but its running means and variances were averaged
    from the *raw* generators' activations, which differ: in eval mode each BN layer then shifts
    and scales by the wrong amounts, and the EMA model scores worse than the raw one. This is the
    fix of SWA (Izmailov et al. 2018, ``torch.optim.swa_utils.update_bn``), with noise instead of
    a data loader as the input: ``batches`` forward passes of ``batch_size`` codes z ~ N(0, I)
    (and uniform random labels for a conditional generator), in train mode, with a cumulative
    average (momentum None). Seeded: the same call gives the same statistics. A generator without
    batch norm is returned unchanged.
    """
    norms = [m for m in generator.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return generator
    device = next(generator.parameters()).device
    rng = torch.Generator().manual_seed(seed)
    momenta = [m.momentum for m in norms]
    was_training = generator.training
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches, as update_bn does
    generator.train()
    try:
        for _ in range(batches):
            z = torch.randn(batch_size, generator.latent_dim, generator=rng).to(device)
            classes = getattr(generator, "num_classes", 0)
            kw = {"labels": torch.randint(0, classes, (batch_size,), generator=rng).to(device)} if classes else {}
            generator(z, **kw)
    finally:
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        generator.train(was_training)
    return generator
