"""Trainer callbacks: things that happen between steps, outside the training step itself.

A callback is any callable ``callback(trainer)``. :meth:`Trainer.fit` calls it on *every* rank,
at every logging step (``config.log_every``), or every ``callback.every`` steps when it has that
attribute. Only rank 0 should write files: check ``trainer.dist.is_main`` before writing, as
:class:`SampleSnapshots` does. A callback may set ``trainer.should_stop = True`` to end training.
"""
from __future__ import annotations

from pathlib import Path

import torch

from .. import distributed
from .state import set_learning_rate


def run_due_callbacks(trainer, logging_step: bool) -> None:
    """Call each of ``trainer.callbacks`` that is due: every ``callback.every`` steps, else at
    logging steps. Every rank calls them; if one sets ``should_stop`` on any rank, every rank stops."""
    ran = False
    for callback in trainer.callbacks:
        every = getattr(callback, "every", None)
        if (trainer.step % every == 0) if every else logging_step:
            callback(trainer)
            ran = True
    # which callbacks ran depends on the step alone, so every rank takes part in this all-reduce
    if ran and trainer.dist.distributed:
        trainer.should_stop = distributed.any_rank(trainer.should_stop, trainer.device)


class LinearLRDecay:
    """Scale every learning rate by ``1 - step / total_steps``.

    It runs at logging steps, so the rate falls in stairs of ``log_every`` steps. Under torchrun it
    runs on every rank, so all ranks train with the same rate.
    """

    def __init__(self, total_steps: int):
        if total_steps < 1:
            raise ValueError(f"total_steps must be >= 1; got {total_steps}")
        self.total = total_steps
        self.base = None  # each param group's starting rate, read at the first call

    def __call__(self, trainer) -> None:
        opts = list(trainer.optimizers.values())
        if self.base is None:
            self.base = [[float(g["lr"]) for g in o.param_groups] for o in opts]
        scale = max(0.0, 1.0 - trainer.step / self.total)
        for o, rates in zip(opts, self.base):
            for group, rate in zip(o.param_groups, rates):
                set_learning_rate(group, rate * scale)


class KLWarmup:
    """Raise a VAE's KL weight ``config.beta`` linearly from 0 to ``target`` over ``steps`` steps.

    KL annealing (Bowman et al. 2016): early in training the KL term is cheapest to satisfy by
    ignoring z altogether (posterior collapse); a decoder that has first learned to use z keeps
    using it once the KL weight is back. Runs every ``every`` steps (default 10); the steps before
    its first call use the config's own beta, so build the config with ``beta=0``.
    """

    def __init__(self, steps: int, target: float = 1.0, every: int = 10):
        if steps < 1 or every < 1:
            raise ValueError(f"steps and every must be >= 1; got {steps} and {every}")
        self.steps, self.target, self.every = steps, target, every

    def __call__(self, trainer) -> None:
        trainer.config.beta = self.target * min(1.0, trainer.step / self.steps)


class SampleSnapshots:
    """Every ``every`` steps, samples from the trainer's fixed noise (``trainer.sample_fixed()``).

    Each snapshot is kept in :attr:`snapshots` as ``(step, samples on the CPU)``; with ``folder``
    it is also written there on rank 0, as ``samples_step{step:06d}.png`` (an image grid, or a
    scatter plot/histogram for 2D/1D data; see :func:`save_samples`). The fixed noise makes the
    snapshots comparable: the same latent codes, watched as training goes on.
    """

    def __init__(self, every: int, folder: str | Path | None = None):
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"SampleSnapshots needs every >= 1 (steps between snapshots); got {every!r}")
        self.every = every
        self.folder = Path(folder) if folder is not None else None
        self.snapshots: list[tuple[int, torch.Tensor]] = []
        self.paths: list[Path] = []

    def __call__(self, trainer) -> None:
        samples = trainer.sample_fixed().cpu()
        self.snapshots.append((trainer.step, samples))
        if self.folder is not None and trainer.dist.is_main:
            path = self.folder / f"samples_step{trainer.step:06d}.png"
            save_samples(samples, path)
            self.paths.append(path)


def save_samples(samples: torch.Tensor, path) -> None:
    """Images as a grid (data in [-1, 1]); 1D samples as a histogram; 2D samples as a scatter plot."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    samples = samples.detach().float().cpu()
    if samples.dim() == 4:
        from torchvision.utils import save_image  # torchvision and matplotlib load slowly: only when saving

        save_image(samples, path, nrow=int(len(samples) ** 0.5) or 1, normalize=True, value_range=(-1, 1))
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 4))
    if samples.shape[1] == 1:
        ax.hist(samples[:, 0].numpy(), bins=50, density=True)
    else:
        ax.scatter(samples[:, 0].numpy(), samples[:, 1].numpy(), s=4, alpha=0.5)
        ax.set_aspect("equal")
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
