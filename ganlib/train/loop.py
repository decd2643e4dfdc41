"""The training loop every trainer shares: draw a step's inputs, run the step, log, call back, save.

:class:`Trainer` holds the loop and everything around it: device choice, bf16 autocast on CUDA,
the data source, the step counter, logging into ``history``, a ``tqdm.auto`` progress bar,
callbacks and checkpoints. A subclass says what one step is, in two methods, in the way
stylegan2-ada's loop draws every input of a step and then calls the step:

* ``draw_inputs()`` draws everything random that one step consumes (data batches, noise) from the
  trainer's seeded streams;
* ``train_step(inputs)`` does one optimisation step on those inputs and returns a dict of
  *detached tensors* to log. It draws nothing itself, so the same inputs give the same update,
  and a CUDA graph can replay it (see :mod:`ganlib.cuda_graph`).

Host syncs. Nothing in the loop reads a GPU value back to Python except at logging steps: each
step's logged tensors stay on the device, and every ``log_every`` steps (and before every
checkpoint) they are stacked and copied to the host in one transfer. That is where losses are
checked: a non-finite value raises :class:`NonFiniteLossError` naming the first bad step and loss.
A checkpoint is only written when every tensor in it is finite (checked on the CPU copy it writes),
so a diverged state never replaces the last good checkpoint.

Randomness. The trainer owns two generators, seeded from ``config.seed``: one on the device for
latent noise, penalty interpolation weights and VAE sampling, and one on the CPU for toy
distributions (sampled on the CPU, then moved, so runs match across devices). A checkpoint stores
them, torch's global RNG states, the :class:`~ganlib.data.DeviceLoader` position, models,
optimizers, EMA, step and history: on the CPU, at the same number of torch threads, a resumed run
is bitwise equal to an uninterrupted one. (At another thread count the reductions inside matrix
products are split differently, and the floating-point results differ in the last bits.)

Several processes. Under ``torchrun`` (see :mod:`ganlib.distributed`) each rank trains on its own
shard of the data tensors and its own noise; the models are wrapped in DistributedDataParallel,
so gradients are averaged across ranks and the weights stay identical. Callbacks run on every
rank (a learning-rate schedule must change every rank's rate); only rank 0 shows progress and
writes checkpoints, which hold the plain modules: the single-process format, resumable on one device.
"""
from __future__ import annotations

import contextlib
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .. import distributed
from ..checkpoint import load_trainer_state
from ..env import default_device
from . import speed
from .batches import batch_source
from .callbacks import run_due_callbacks
from .config import TrainConfig
from .state import restore_state, save_trainer, trainer_from_checkpoint, trainer_from_state, trainer_state
from .step_log import StepLog


@contextlib.contextmanager
def eval_mode(*modules):
    """Put modules in eval mode for the block, then restore each one's previous mode."""
    was_training = [m.training for m in modules]
    try:
        for m in modules:
            m.eval()
        yield
    finally:
        for m, flag in zip(modules, was_training):
            m.train(flag)


class Trainer:
    """The loop; subclasses set ``models``/``optimizers`` and define ``draw_inputs`` and ``train_step``."""

    config_class = TrainConfig
    history_keys: tuple[str, ...] = ()
    #: config field of each learning rate -> the optimizer it sets (the history logs each rate)
    learning_rate_fields: dict[str, str] = {}

    def __init__(self, data, config: TrainConfig, callbacks=()):
        if not isinstance(config, self.config_class):
            raise TypeError(f"{type(self).__name__} needs a {self.config_class.__name__}; got {type(config).__name__}")
        self.config = config
        self.device = default_device(config.device)
        self.use_bf16 = bool(config.bf16) and speed.native_bf16(self.device)
        self.use_channels_last = bool(config.channels_last) and self.device.type in ("cpu", "cuda")
        self.use_cuda_graph = False  # GANConfig.cuda_graph: the GAN trainer's optimizers must then be capturable
        # set up once, before the loop (as nanoGPT does)
        self.autocast = torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.use_bf16)
        self.callbacks = list(callbacks)
        self.step = 0
        self.history: dict[str, list] = {"step": [], **{k: [] for k in self.history_keys}}
        self.should_stop = False  # a callback may set it to end fit() after the current step
        self.last_checkpoint: tuple[int, Path] | None = None
        self.run_spec_fields: dict = {}  # the run's RunSpec as a record (ganlib.spec); checkpointed, never read here
        self.step_log = StepLog()  # logged tensors not yet copied to the host
        self.dist = distributed.info()  # rank 0 of 1 outside torchrun
        # each rank draws its own noise and toy data; rank 0 keeps the seeds of a one-process run
        self.noise_gen = torch.Generator(device=self.device).manual_seed(distributed.rank_seed(config.seed))
        self.data_gen = torch.Generator().manual_seed(distributed.rank_seed(config.seed + 1))
        self.models: dict[str, torch.nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.ema = None
        self.loader, self.distribution = batch_source(data, config.batch_size, self.device, config.seed, self.dist)

    # -- pieces subclasses use
    def adam(self, params, lr: float, betas) -> torch.optim.Adam:
        """Adam for ``params`` on this trainer's device (:func:`ganlib.train.speed.adam`)."""
        return speed.adam(params, self.learning_rate(lr), betas, self.device, self.config.fused_adam,
                          capturable=self.use_cuda_graph)

    def learning_rate(self, value: float) -> float | torch.Tensor:
        """A param group's ``lr`` (:func:`ganlib.train.speed.learning_rate`)."""
        return speed.learning_rate(value, self.device, self.use_cuda_graph)

    def seeded_noise(self, n: int | None, dim: int, seed: int) -> torch.Tensor:
        """``n`` (default ``config.n_samples``) codes z ~ N(0, I) on the CPU from a generator seeded with
        ``seed``: the same call gives the same codes, and the training streams are not touched."""
        if n is not None and (not isinstance(n, int) or n < 1):
            raise ValueError(f"n must be a positive integer (the number of samples); got {n!r}")
        return torch.randn(n or self.config.n_samples, dim, generator=torch.Generator().manual_seed(seed))

    def place(self, module: torch.nn.Module) -> torch.nn.Module:
        """Move ``module`` to the device (and to channels_last if configured)."""
        module = module.to(self.device)
        return module.to(memory_format=torch.channels_last) if self.use_channels_last else module

    @property
    def has_labels(self) -> bool:
        """Whether the data come with labels (a conditional GAN needs them)."""
        return self.loader is not None and len(self.loader.tensors) > 1

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One batch ``(x, labels or None)`` on the device, from the loader or the distribution."""
        if self.loader is not None:
            batch = self.loader.next_batch()
            x = batch[0].to(self.device, non_blocking=True)
            if self.use_channels_last and x.dim() == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            labels = batch[1].to(self.device, non_blocking=True) if len(batch) > 1 else None
            return x, labels
        x = self.distribution.sample(self.config.batch_size, generator=self.data_gen)
        return x.to(self.device, non_blocking=True), None

    def draw_inputs(self):
        """Everything random that one step consumes, drawn from the trainer's streams."""
        raise NotImplementedError

    def train_step(self, inputs) -> dict[str, torch.Tensor]:
        """One optimisation step on ``inputs``; returns detached tensors to log."""
        raise NotImplementedError

    def sample_fixed(self) -> torch.Tensor:
        """Samples from the fixed noise batch (for snapshots); subclasses define it."""
        raise NotImplementedError

    # -- the loop
    def fit(self) -> dict[str, list]:
        """Train until ``config.steps``; returns ``history`` (dict of lists, one entry per step)."""
        cfg = self.config
        bar = tqdm(total=cfg.steps, initial=self.step, disable=not (cfg.progress and self.dist.is_main),
                   desc=type(self).__name__)
        try:
            while self.step < cfg.steps and not self.should_stop:
                logs = self.train_step(self.draw_inputs())
                self.step += 1
                self.step_log.append(self.step, logs)
                bar.update(1)
                logging_step = self.step % cfg.log_every == 0 or self.step == cfg.steps
                if logging_step:
                    self.flush_logs()
                    bar.set_postfix({k: f"{v[-1]:.3g}" for k, v in self.history.items() if k != "step" and v})
                run_due_callbacks(self, logging_step)
                if cfg.checkpoint_path and cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0:
                    self.save()
        finally:
            bar.close()
        self.flush_logs()
        if cfg.checkpoint_path:
            self.save()
        return self.history

    def learning_rates(self) -> dict[str, float]:
        """The current rate of each optimizer, by its config field (``lr_g``, ``lr_d``, ``lr``)."""
        return {field: float(self.optimizers[name].param_groups[0]["lr"])
                for field, name in self.learning_rate_fields.items()}

    def flush_logs(self) -> None:
        """Copy the pending logs to the host in one transfer, check them, append them to ``history``
        with the learning rates (schedules change those at logging steps, after the flush)."""
        self.step_log.flush(self.history, self.learning_rates(), kept=self.kept_checkpoint())

    def kept_checkpoint(self) -> str:
        """Which checkpoint survives a failure now, for error messages."""
        if self.last_checkpoint is None:
            return "no checkpoint was written"
        step, path = self.last_checkpoint
        return f"the last good checkpoint, {path} (step {step}), is kept"

    # -- checkpoints (ganlib.train.state)
    def state_dict(self) -> dict:
        """Everything needed to resume: models, optimizers, EMA, step, RNGs, loader, history."""
        return trainer_state(self)

    def load_state_dict(self, state: dict) -> None:
        """Restore a :meth:`state_dict` into this trainer (same models and data)."""
        restore_state(self, state)

    def save(self, path=None) -> Path:
        """Write a checkpoint atomically to ``path`` or ``config.checkpoint_path`` (:func:`save_trainer`)."""
        return save_trainer(self, path)

    def load(self, path) -> None:
        """Restore the state saved at ``path`` into this trainer (same models and data)."""
        self.load_state_dict(load_trainer_state(path))

    @classmethod
    def from_checkpoint(cls, path, data, callbacks=(), **overrides):
        """The trainer saved at ``path``, ``overrides`` replacing config fields (:func:`trainer_from_state`)."""
        return trainer_from_checkpoint(cls, path, data, callbacks, **overrides)

    @classmethod
    def from_state(cls, state: dict, data, callbacks=(), source="the checkpoint", **overrides):
        """:meth:`from_checkpoint` for a checkpoint already read (``source`` names it in messages)."""
        return trainer_from_state(cls, state, data, callbacks, source=source, **overrides)

    @classmethod
    def from_models(cls, models: dict, data, config, callbacks=()):
        """A trainer of these models (by their names in a checkpoint's ``models``); subclasses define it."""
        raise NotImplementedError
