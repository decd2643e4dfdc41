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
import dataclasses
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .. import distributed
from ..checkpoint import FORMAT, NonFiniteCheckpointError, load_checkpoint, save_checkpoint
from ..env import default_device
from ..models import build_model
from .batches import batch_source
from .config import CUDAGRAPH_MODES, TrainConfig, compile_mode, config_from_checkpoint
from .step_log import NonFiniteLossError, StepLog


def set_learning_rate(group: dict, value: float) -> None:
    """Set one optimizer param group's learning rate to ``value``.

    Under ``cuda_graph=True`` the rate is a one-element device tensor that the captured optimizer
    step reads at every replay: a Python float would be baked into the graph when it is captured,
    and later changes would be silently ignored. So a tensor rate is changed in place, never
    replaced by another object (the graph would go on reading the old one).
    """
    if isinstance(group["lr"], torch.Tensor):
        group["lr"].fill_(value)
    else:
        group["lr"] = value


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
        self.use_bf16 = bool(config.bf16) and self.device.type == "cuda"
        self.use_channels_last = bool(config.channels_last) and self.device.type in ("cpu", "cuda")
        self.use_cuda_graph = bool(config.cuda_graph) and self.device.type == "cuda"
        # set up once, before the loop (as nanoGPT does); autocast's weight-cast cache must be off
        # inside CUDA graph capture (torch.cuda.graph docs)
        self.autocast = torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.use_bf16,
                                       cache_enabled=False if self.use_cuda_graph else None)
        # CUDA-graph trees (compile="reduce-overhead") must be told where a step begins
        self.marks_cudagraph_steps = (self.device.type == "cuda"
                                      and compile_mode(config.compile) in CUDAGRAPH_MODES)
        self.callbacks = list(callbacks)
        self.step = 0
        self.history: dict[str, list] = {"step": [], **{k: [] for k in self.history_keys}}
        self.should_stop = False  # a callback may set it to end fit() after the current step
        self.last_checkpoint: tuple[int, Path] | None = None
        self.run_info: dict = {}  # what the caller says defines the run (the CLI: dataset, model, ...); checkpointed
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
        fused = True if (self.config.fused_adam and self.device.type == "cuda") else None
        # On the CPU torch's default is the per-tensor loop; the multi-tensor (foreach) one computes the
        # same numbers, bitwise, and makes a small VAE's step ~25% faster (python -m ganlib.bench vae).
        # CPU-fused Adam would be faster still but rounds differently, which would change every CPU run.
        rate = self.learning_rate(lr)
        foreach = True if self.device.type == "cpu" and isinstance(rate, float) else None  # tensor rates: torch's default
        # capturable: the step counter lives on the GPU, so optimizer steps can be graph-captured
        return torch.optim.Adam(params, lr=rate, betas=tuple(betas), fused=fused, foreach=foreach,
                                capturable=self.use_cuda_graph)

    def learning_rate(self, value: float) -> float | torch.Tensor:
        """A param group's ``lr``: a float, or under ``cuda_graph`` a device tensor that a captured
        optimizer step reads at every replay (see :func:`~ganlib.train.set_learning_rate`)."""
        return torch.tensor(float(value), device=self.device) if self.use_cuda_graph else float(value)

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

    def wrap(self, module: torch.nn.Module, ddp: bool = True):
        """What training steps call instead of ``module``: DDP (under torchrun) and/or torch.compile.

        The wrappers share ``module``'s parameters; checkpoints and sampling use ``module`` itself.
        """
        if ddp:
            module = distributed.wrap_ddp(module, self.device, self.config.sync_bn)
        mode = compile_mode(self.config.compile)
        return torch.compile(module, mode=mode) if mode else module

    @property
    def has_labels(self) -> bool:
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
                self.run_callbacks(logging_step)
                if cfg.checkpoint_path and cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0:
                    self.save()
        finally:
            bar.close()
        self.flush_logs()
        if cfg.checkpoint_path:
            self.save()
        return self.history

    def run_callbacks(self, logging_step: bool) -> None:
        """Call each callback that is due: every ``callback.every`` steps, else at logging steps.

        Every rank calls them; if one sets ``should_stop`` on any rank, every rank stops.
        """
        ran = False
        for callback in self.callbacks:
            every = getattr(callback, "every", None)
            if (self.step % every == 0) if every else logging_step:
                callback(self)
                ran = True
        # which callbacks ran depends on the step alone, so every rank takes part in this all-reduce
        if ran and self.dist.distributed:
            self.should_stop = distributed.any_rank(self.should_stop, self.device)

    def learning_rates(self) -> dict[str, float]:
        """The current rate of each optimizer, by its config field (``lr_g``, ``lr_d``, ``lr``)."""
        return {field: float(self.optimizers[name].param_groups[0]["lr"])
                for field, name in self.learning_rate_fields.items()}

    def flush_logs(self) -> None:
        """Copy the pending logs to the host in one transfer, check them, append them to ``history``
        with the learning rates (schedules change those at logging steps, after the flush)."""
        self.step_log.flush(self.history, self.learning_rates(), kept=self._kept())

    def _kept(self) -> str:
        if self.last_checkpoint is None:
            return "no checkpoint was written"
        step, path = self.last_checkpoint
        return f"the last good checkpoint, {path} (step {step}), is kept"

    # -- checkpoints
    def state_dict(self) -> dict:
        """Everything needed to resume: models, optimizers, EMA, step, RNGs, loader, history."""
        self.flush_logs()
        rng = {"torch": torch.get_rng_state(), "noise": self.noise_gen.get_state(),
               "data": self.data_gen.get_state(), "device_type": self.device.type}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return {
            "format": FORMAT, "kind": type(self).__name__, "step": self.step,
            "config": dataclasses.asdict(self.config),
            "specs": {name: getattr(m, "spec", None) for name, m in self.models.items()},
            "models": {name: m.state_dict() for name, m in self.models.items()},
            "optimizers": {name: o.state_dict() for name, o in self.optimizers.items()},
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "rng": rng,
            "loader": self.loader.state_dict() if self.loader is not None else None,
            "history": self.history,
            "run": self.run_info,
        }

    def load_state_dict(self, state: dict) -> None:
        if state.get("kind") != type(self).__name__:
            raise ValueError(f"this checkpoint was written by {state.get('kind')!r}, not {type(self).__name__}")
        for name, model in self.models.items():
            model.load_state_dict(state["models"][name])
        for name, opt in self.optimizers.items():
            saved = state["optimizers"][name]
            # load_state_dict would bring back the saved run's kernel flags with its hyperparameters; a
            # run saved under cuda_graph (capturable) must resume on the CPU and the other way round.
            # Patched in the saved groups: torch places each "step" tensor by those groups' flags.
            groups = [{**old, **{k: now[k] for k in ("capturable", "fused", "foreach") if k in now}}
                      for old, now in zip(saved["param_groups"], opt.param_groups)]
            opt.load_state_dict({**saved, "param_groups": groups})
            for group in opt.param_groups:  # this run's kind of lr, whichever kind was saved
                group["lr"] = self.learning_rate(group["lr"])
        if self.ema is not None and state.get("ema") is not None:
            self.ema.load_state_dict(state["ema"])
        self.step = int(state["step"])
        self.history = {k: list(v) for k, v in state["history"].items()}
        for field in self.learning_rate_fields:  # checkpoints of older ganlib logged no rates: keep rows aligned
            self.history.setdefault(field, [None] * len(self.history["step"]))
        self.run_info = dict(state.get("run") or {})
        rng = state["rng"]
        torch.set_rng_state(rng["torch"])
        self.data_gen.set_state(rng["data"])
        same_device = rng.get("device_type") == self.device.type
        if same_device:  # generator states do not carry across device types
            self.noise_gen.set_state(rng["noise"])
            if "cuda" in rng:
                torch.cuda.set_rng_state_all(rng["cuda"])
        if self.loader is not None and state.get("loader") is not None and same_device:
            self.loader.load_state_dict(state["loader"])
        if self.dist.rank > 0:  # the checkpoint holds rank 0's streams; the other ranks draw their own
            self.noise_gen.manual_seed(distributed.rank_seed(self.config.seed) + self.step)
            self.data_gen.manual_seed(distributed.rank_seed(self.config.seed + 1) + self.step)

    def save(self, path=None) -> Path:
        """Write a checkpoint (atomically) to ``path`` or ``config.checkpoint_path``.

        Under torchrun only rank 0 writes; the other ranks return the path without writing. A state
        with a non-finite tensor is not written: :class:`NonFiniteLossError` says which tensor, and
        the previous checkpoint stays on disk.
        """
        path = path or self.config.checkpoint_path
        if path is None:
            raise ValueError("no checkpoint path: pass save(path) or set config.checkpoint_path")
        if not self.dist.is_main:
            return Path(path)
        try:
            path = save_checkpoint(self.state_dict(), path)
        except NonFiniteCheckpointError as err:
            raise NonFiniteLossError(
                f"the state at step {self.step} has a non-finite tensor ({err.key}), so it was not checkpointed; "
                f"training stopped ({self._kept()}). The last update diverged: try a lower learning rate, "
                "a gradient penalty or spectral norm, or check the data for NaN/inf.", self.step, err.key) from None
        self.last_checkpoint = (self.step, path)
        return path

    def load(self, path) -> None:
        """Restore the state saved at ``path`` into this trainer (same models and data)."""
        self.load_state_dict(load_checkpoint(path))

    @classmethod
    def from_checkpoint(cls, path, data, callbacks=(), **overrides):
        """Rebuild models from their specs and config from the checkpoint, then restore the state.

        ``overrides`` replace config fields (e.g. ``steps=20_000`` to train further, ``device=...``).
        A new learning rate (or ``betas``) reaches the optimizers, not only the config; the other
        fields are read at every step, so they take effect from the next one.
        """
        return cls.from_state(load_checkpoint(path), data, callbacks, source=path, **overrides)

    @classmethod
    def from_state(cls, state: dict, data, callbacks=(), source="the checkpoint", **overrides):
        """:meth:`from_checkpoint` for a checkpoint already read (``source`` names it in messages)."""
        path = source
        if not isinstance(state, dict) or state.get("format") != FORMAT:
            raise ValueError(f"{path} is not a ganlib trainer checkpoint")
        if state.get("kind") != cls.__name__:
            raise ValueError(f"{path} was written by {state.get('kind')} and cannot be resumed by {cls.__name__}; "
                             f"use {state.get('kind')}.from_checkpoint")
        config = config_from_checkpoint(cls.config_class, state["config"], overrides, path)
        models = {}
        for name, spec in state["specs"].items():
            if spec is None:
                raise ValueError(f"the checkpoint's {name} has no spec; build the models yourself and use load()")
            models[name] = build_model(spec)
        trainer = cls._from_models(models, data, config, callbacks)
        trainer.load_state_dict(state)
        for field, name in cls.learning_rate_fields.items():
            if field in overrides:  # the optimizer state holds the saved rate: set the new one
                for group in trainer.optimizers[name].param_groups:
                    set_learning_rate(group, float(overrides[field]))
        if "betas" in overrides:
            for opt in trainer.optimizers.values():
                for group in opt.param_groups:
                    group["betas"] = tuple(config.betas)
        return trainer

    @classmethod
    def _from_models(cls, models, data, config, callbacks):
        raise NotImplementedError
