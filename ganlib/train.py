"""Trainers for GANs and VAEs that share one loop and resume exactly.

:class:`Trainer` holds the loop and everything around it: device choice, bf16 autocast on CUDA,
data batches, the step counter, logging into ``history``, a ``tqdm.auto`` progress bar, callbacks,
fixed-noise snapshots and checkpoints. Subclasses define ``train_step()``, which does one
optimisation step and returns a dict of *detached tensors* to log:

* :class:`GANTrainer`: Goodfellow et al. (2014)'s Algorithm 1, ``d_steps`` discriminator updates
  (each on a fresh data batch and fresh noise) then one generator update, with any loss from
  :mod:`ganlib.losses`, optional gradient/R1 penalties and an EMA copy of the generator.
* :class:`VAETrainer`: minimises the negative ELBO of a :class:`ganlib.models.VAE`.

Host syncs. Nothing in the step loop reads a GPU value back to Python, except at logging steps:
each step's logged tensors are kept on the device, and every ``log_every`` steps (and before every
checkpoint) they are stacked and copied to the host in one transfer. That is also where losses are
checked: a non-finite value raises :class:`NonFiniteLossError` naming the first bad step and loss.
Because the check runs before every checkpoint write, a checkpoint never holds a diverged state.

Randomness. The trainer owns two generators, seeded from ``config.seed``: one on the device for
latent noise, penalty interpolation and VAE sampling, and one on the CPU for toy distributions
(sampled on the CPU, then moved, so runs match across devices). A checkpoint stores them, torch's
global RNG states, the :class:`~ganlib.data.DeviceLoader` position, models, optimizers, EMA, step
and history: on the CPU, a resumed run is bitwise equal to an uninterrupted one.

Fast path (``python -m ganlib.bench`` measures it). ``channels_last=True`` (the default) stores
conv weights and image batches in NHWC layout, which oneDNN on CPUs and cuDNN's bf16 convolutions
prefer (``bench/RESULTS.md`` has measurements); ``compile=`` runs the
models' forward (and so their backward) through ``torch.compile``, ``"reduce-overhead"`` also
replays them as CUDA graphs. Penalties that differentiate twice (``gp_weight``, ``r1_weight``) call
the plain, eager discriminator: compiled graphs do not support double backward (pytorch issues
#91469, #181581). Checkpoints and :meth:`GANTrainer.sample` always use the plain modules.
``cuda_graph=True`` goes furthest: after three eager warm-up steps, the whole GAN step (both
updates, both optimizer steps) is captured once in a CUDA graph and replayed, so a step costs one
launch instead of hundreds; data batches and noise are copied into fixed input buffers first.
The learning rates are then device tensors that the graph reads at every replay: change them with
:func:`set_learning_rate` (as :class:`LinearLRDecay` does), which writes in place.

Several processes. Under ``torchrun`` (see :mod:`ganlib.distributed`) each rank trains on its own
shard of the data tensors and its own noise; the models are wrapped in DistributedDataParallel,
so gradients are averaged across ranks and the weights stay identical. Only rank 0 shows
progress, runs callbacks, takes snapshots and writes checkpoints, which hold the plain modules:
the single-process format, resumable on one device.
"""
from __future__ import annotations

import contextlib
import itertools
import dataclasses
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.optim.swa_utils import AveragedModel

from . import distributed
from .cuda_graph import CUDAGraphStep, StaticFeed
from .checkpoint import FORMAT, load_checkpoint, save_checkpoint
from .data import DeviceLoader
from .env import default_device
from .losses import LOGIT_LOSSES, LOSSES, discriminator_loss, generator_loss, gradient_penalty, r1_penalty


class NonFiniteLossError(FloatingPointError):
    """A logged loss became inf or NaN; ``step`` and ``name`` say where."""

    def __init__(self, message: str, step: int, name: str):
        super().__init__(message)
        self.step, self.name = step, name


# ----------------------------------------------------------------------------- configs


@dataclass
class TrainConfig:
    """Settings shared by every trainer."""

    steps: int = 1000               # total optimisation steps (a resumed run continues up to this)
    batch_size: int = 64            # used when the trainer builds the loader itself
    device: str | None = None       # None: cuda, then mps, then cpu
    bf16: bool = True               # bf16 autocast on CUDA (ignored on other devices)
    fused_adam: bool = True         # fused Adam kernels on CUDA
    seed: int = 0                   # seeds the trainer's generators and its own loader
    log_every: int = 50             # steps between history/progress updates (and loss checks)
    progress: bool = True           # show a tqdm progress bar
    sample_every: int = 0           # steps between fixed-noise snapshots (0: none)
    n_samples: int = 64             # size of the fixed-noise batch
    checkpoint_path: str | None = None  # where save() writes; None: no automatic checkpoints
    checkpoint_every: int = 0       # steps between checkpoints (0: only at the end of fit)
    channels_last: bool = True      # conv weights and image batches in NHWC layout on CPU and CUDA: faster
                                    # convolutions (oneDNN, cuDNN in bf16); no effect on MLPs
    compile: bool | str = False     # torch.compile the models (GANTrainer): True/"default", "reduce-overhead"
                                    # (adds CUDA graphs), "max-autotune", "max-autotune-no-cudagraphs"
    sync_bn: bool = False           # under torchrun: SyncBatchNorm (global-batch statistics; GPUs only)
    cuda_graph: bool = False        # GANTrainer on CUDA: replay each whole step as one CUDA graph (no
                                    # penalties, one process); ignored on other devices


@dataclass
class GANConfig(TrainConfig):
    """GAN settings; Adam defaults follow DCGAN (Radford et al. 2016): lr 2e-4, betas (0.5, 0.999)."""

    loss: str = "nonsaturating"     # one of ganlib.losses.LOSSES
    d_steps: int = 1                # discriminator updates per generator update (k in Algorithm 1)
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    gp_weight: float = 0.0          # lambda: adds gp_weight * gradient_penalty (WGAN-GP uses 10)
    r1_weight: float = 0.0          # adds r1_weight * r1_penalty; Mescheder et al.'s gamma is 2 * r1_weight
    ema_decay: float = 0.0          # > 0 keeps an EMA copy of G (e.g. 0.999); sample() uses it


@dataclass
class VAEConfig(TrainConfig):
    """VAE settings: Adam with lr 1e-3 and the usual betas (0.9, 0.999)."""

    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    beta: float = 1.0               # weight of the KL term (1: the ELBO; other values: beta-VAE)


# ----------------------------------------------------------------------------- EMA


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


# ----------------------------------------------------------------------------- the shared loop

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
CUDAGRAPH_MODES = ("reduce-overhead", "max-autotune")


def compile_mode(value) -> str | None:
    """The torch.compile mode named by a config's ``compile`` field (None: do not compile)."""
    if value is False or value is None or value == "none":
        return None
    if value is True:
        return "default"
    if value not in COMPILE_MODES:
        raise ValueError(f"compile={value!r} is not a torch.compile mode; use False, True or one of "
                         f"{', '.join(map(repr, COMPILE_MODES))}")
    return value


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


# ----------------------------------------------------------------------------- learning rates


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


class LinearLRDecay:
    """Trainer callback: scale every learning rate by ``1 - step / total_steps``.

    Callbacks run at logging steps, so the rate falls in stairs of ``log_every`` steps.
    """

    def __init__(self, total_steps: int):
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


class Trainer:
    """The loop skeleton; subclasses set ``models``/``optimizers`` and define ``train_step()``."""

    config_class = TrainConfig
    history_keys: tuple[str, ...] = ()

    def __init__(self, data, config: TrainConfig, callbacks=()):
        self.config = config
        self.device = default_device(config.device)
        self.use_bf16 = bool(config.bf16) and self.device.type == "cuda"
        self.use_channels_last = bool(config.channels_last) and self.device.type in ("cpu", "cuda")
        self.use_cuda_graph = bool(config.cuda_graph) and self.device.type == "cuda"
        self._feed: StaticFeed | None = None  # the fixed inputs of a CUDA-graphed step
        self._graph_runner: CUDAGraphStep | None = None
        self.callbacks = list(callbacks)
        self.step = 0
        self.history: dict[str, list] = {"step": [], **{k: [] for k in self.history_keys}}
        self.snapshots: list[tuple[int, torch.Tensor]] = []  # (step, images on the CPU)
        self.should_stop = False  # a callback may set it to end fit() after the current step
        self.last_checkpoint: tuple[int, Path] | None = None
        self._pending: list[tuple[int, dict]] = []  # logged tensors not yet copied to the host
        self.dist = distributed.info()  # rank 0 of 1 outside torchrun
        # each rank draws its own noise and toy data; rank 0 keeps the seeds of a one-process run
        self.noise_gen = torch.Generator(device=self.device).manual_seed(distributed.rank_seed(config.seed))
        self.data_gen = torch.Generator().manual_seed(distributed.rank_seed(config.seed + 1))
        self.models: dict[str, torch.nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.ema: EMA | None = None
        self.loader: DeviceLoader | None = None
        self.distribution = None
        if isinstance(data, torch.Tensor):
            data = (data,)
        if isinstance(data, DeviceLoader):
            self.loader = data  # already built by the caller (under torchrun: give it this rank's shard)
        elif isinstance(data, (tuple, list)) and data and all(isinstance(t, torch.Tensor) for t in data):
            if self.dist.distributed:
                data = distributed.shard(*data)
            self.loader = DeviceLoader(*data, batch_size=config.batch_size, device=self.device,
                                       seed=distributed.rank_seed(config.seed))
        elif hasattr(data, "sample"):
            self.distribution = data
        else:
            raise TypeError(
                f"data must be a tensor, an (images, labels) tuple of tensors, a ganlib.data.DeviceLoader, "
                f"or a distribution with .sample(n, generator); got {type(data).__name__}"
            )

    # -- pieces subclasses use
    def adam(self, params, lr: float, betas) -> torch.optim.Adam:
        fused = True if (self.config.fused_adam and self.device.type == "cuda") else None
        # capturable: the step counter lives on the GPU, so optimizer steps can be graph-captured
        return torch.optim.Adam(params, lr=self.learning_rate(lr), betas=tuple(betas), fused=fused,
                                capturable=self.use_cuda_graph)

    def learning_rate(self, value: float) -> float | torch.Tensor:
        """A param group's ``lr``: a float, or under ``cuda_graph`` a device tensor that a captured
        optimizer step reads at every replay (see :func:`set_learning_rate`)."""
        return torch.tensor(float(value), device=self.device) if self.use_cuda_graph else float(value)

    def autocast(self):
        # autocast's weight-cast cache must be off inside CUDA graph capture (torch.cuda.graph docs)
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.use_bf16,
                              cache_enabled=False if self.use_cuda_graph else None)

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

    def mark_step(self) -> None:
        """Tell CUDA-graph trees a new step begins (their outputs of the last step may be reused)."""
        if self.device.type == "cuda" and compile_mode(self.config.compile) in CUDAGRAPH_MODES:
            torch.compiler.cudagraph_mark_step_begin()

    @property
    def has_labels(self) -> bool:
        return self.loader is not None and len(self.loader.tensors) > 1

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One batch ``(x, labels or None)`` on the device."""
        if self._feed is not None and self._feed.active:
            return self._feed.batch()
        if self.loader is not None:
            batch = self.loader.next_batch()
            x = batch[0].to(self.device, non_blocking=True)
            if self.use_channels_last and x.dim() == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            labels = batch[1].to(self.device, non_blocking=True) if len(batch) > 1 else None
            return x, labels
        x = self.distribution.sample(self.config.batch_size, generator=self.data_gen)
        return x.to(self.device, non_blocking=True), None

    def train_step(self) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def sample_fixed(self) -> torch.Tensor:
        """Samples from the fixed noise batch (for snapshots); subclasses define it."""
        raise NotImplementedError

    # -- the loop
    def fit(self) -> dict[str, list]:
        """Train until ``config.steps``; returns ``history`` (dict of lists, one entry per step)."""
        from tqdm.auto import tqdm

        cfg = self.config
        main = self.dist.is_main  # under torchrun only rank 0 reports, samples and saves
        bar = tqdm(total=cfg.steps, initial=self.step, disable=not (cfg.progress and main), desc=type(self).__name__)
        try:
            while self.step < cfg.steps and not self.should_stop:
                logs = self.train_step()
                self.step += 1
                self._pending.append((self.step, logs))
                bar.update(1)
                if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                    self._flush()
                    bar.set_postfix({k: f"{v[-1]:.3g}" for k, v in self.history.items() if k != "step" and v})
                    if main:
                        for callback in self.callbacks:
                            callback(self)
                    if self.dist.distributed:  # a callback on rank 0 may stop training: every rank stops
                        self.should_stop = distributed.any_rank(self.should_stop, self.device)
                if main and cfg.sample_every and self.step % cfg.sample_every == 0:
                    self.snapshots.append((self.step, self.sample_fixed().cpu()))
                if cfg.checkpoint_path and cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0:
                    self.save()
        finally:
            bar.close()
        self._flush()
        if cfg.checkpoint_path:
            self.save()
        return self.history

    def _flush(self) -> None:
        """Copy pending logs to the host in one transfer, check them, append them to history."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        keys = list(pending[0][1])
        values = torch.stack([torch.stack([logs[k].float() for k in keys]) for _, logs in pending]).cpu()
        bad = ~torch.isfinite(values)
        if bad.any():
            i, j = (int(v) for v in bad.nonzero()[0])
            step, name = pending[i][0], keys[j]
            where = (f"the last checkpoint, {self.last_checkpoint[1]} (step {self.last_checkpoint[0]}), "
                     f"was written before it and is intact" if self.last_checkpoint else "no checkpoint was written")
            raise NonFiniteLossError(
                f"{name} became {values[i, j].item()} at step {step}; training stopped ({where}). "
                f"Try a lower learning rate, a gradient penalty or spectral norm, or check the data for NaN/inf.",
                step, name)
        self.history["step"].extend(step for step, _ in pending)
        for j, key in enumerate(keys):
            self.history.setdefault(key, []).extend(values[:, j].tolist())

    # -- checkpoints
    def state_dict(self) -> dict:
        """Everything needed to resume: models, optimizers, EMA, step, RNGs, loader, history."""
        self._flush()
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
        }

    def load_state_dict(self, state: dict) -> None:
        if state.get("kind") != type(self).__name__:
            raise ValueError(f"this checkpoint was written by {state.get('kind')!r}, not {type(self).__name__}")
        for name, model in self.models.items():
            model.load_state_dict(state["models"][name])
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
            for group in opt.param_groups:  # this run's kind of lr, whichever kind was saved
                group["lr"] = self.learning_rate(group["lr"])
        if self.ema is not None and state.get("ema") is not None:
            self.ema.load_state_dict(state["ema"])
        self.step = int(state["step"])
        self.history = {k: list(v) for k, v in state["history"].items()}
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
        self._feed = self._graph_runner = None  # new optimizer state tensors: capture the step again
        if self.dist.rank > 0:  # the checkpoint holds rank 0's streams; the other ranks draw their own
            self.noise_gen.manual_seed(distributed.rank_seed(self.config.seed) + self.step)
            self.data_gen.manual_seed(distributed.rank_seed(self.config.seed + 1) + self.step)

    def save(self, path=None) -> Path:
        """Write a checkpoint (atomically) to ``path`` or ``config.checkpoint_path``.

        Under torchrun only rank 0 writes; the other ranks return the path without writing.
        """
        path = path or self.config.checkpoint_path
        if path is None:
            raise ValueError("no checkpoint path: pass save(path) or set config.checkpoint_path")
        if not self.dist.is_main:
            return Path(path)
        path = save_checkpoint(self.state_dict(), path)
        self.last_checkpoint = (self.step, path)
        return path

    def load(self, path) -> None:
        """Restore the state saved at ``path`` into this trainer (same models and data)."""
        self.load_state_dict(load_checkpoint(path))

    @classmethod
    def from_checkpoint(cls, path, data, callbacks=(), **overrides):
        """Rebuild models from their specs and config from the checkpoint, then restore the state.

        ``overrides`` replace config fields (e.g. ``steps=20_000`` to train further, ``device=...``).
        """
        from .models import build_model

        state = load_checkpoint(path)
        if state.get("format") != FORMAT:
            raise ValueError(f"{path} is not a ganlib trainer checkpoint")
        config = cls.config_class(**{**state["config"], **overrides})
        models = {}
        for name, spec in state["specs"].items():
            if spec is None:
                raise ValueError(f"the checkpoint's {name} has no spec; build the models yourself and use load()")
            models[name] = build_model(spec)
        trainer = cls._from_models(models, data, config, callbacks)
        trainer.load_state_dict(state)
        return trainer

    @classmethod
    def _from_models(cls, models, data, config, callbacks):
        raise NotImplementedError


# ----------------------------------------------------------------------------- GAN


class GANTrainer(Trainer):
    """Goodfellow et al. (2014)'s Algorithm 1 with a choice of loss, penalties and an EMA generator.

    Each step: ``d_steps`` times { draw a data batch and noise; update D on
    ``discriminator_loss + gp_weight * gradient_penalty + r1_weight * r1_penalty`` }, then draw
    noise and update G on ``generator_loss``. History per step: ``loss_d`` (adversarial part,
    mean over the D updates), ``loss_g``, ``penalty`` (weighted, mean over the D updates; only when
    a penalty is on), and ``d_real``/``d_fake`` from the last D update: mean sigmoid(D) on
    data/fakes for the logit losses (minimax, nonsaturating), mean raw score otherwise.
    Conditional models (``num_classes > 0``) get the data's labels; fakes reuse the batch's labels.

    Example::

        seed_everything(0)
        G, D = MLPGenerator(8, 2, hidden=(128, 128)), MLPDiscriminator(2, hidden=(128, 128))
        trainer = GANTrainer(G, D, gaussian_ring(), GANConfig(steps=2000, batch_size=256, lr_g=1e-3, lr_d=1e-3))
        history = trainer.fit()          # {"step": [...], "loss_d": [...], "loss_g": [...], ...}
        x = trainer.sample(1000)         # (1000, 2), from the EMA generator if ema_decay > 0
    """

    config_class = GANConfig
    history_keys = ("loss_d", "loss_g", "d_real", "d_fake")

    def __init__(self, generator, discriminator, data, config: GANConfig | None = None, callbacks=()):
        config = config or GANConfig()
        if config.loss not in LOSSES:
            raise ValueError(f"unknown GAN loss {config.loss!r}; valid names are {', '.join(map(repr, LOSSES))}")
        if config.d_steps < 1:
            raise ValueError(f"d_steps must be at least 1, got {config.d_steps}")
        super().__init__(data, config, callbacks)
        self.generator = self.place(generator)
        self.discriminator = self.place(discriminator)
        self.conditional = bool(getattr(generator, "num_classes", 0))
        if self.conditional != bool(getattr(discriminator, "num_classes", 0)):
            raise ValueError("build G and D both conditional (num_classes=K) or both unconditional")
        if self.conditional and not self.has_labels:
            raise ValueError(f"the models are conditional (num_classes={generator.num_classes}) but the data "
                             "has no labels; pass data=(images, labels) or build them with num_classes=0")
        self.models = {"generator": self.generator, "discriminator": self.discriminator}
        # what the steps call: DDP-wrapped (under torchrun) and/or compiled views of the same modules.
        # D inside G's update is not DDP-wrapped: its parameters are frozen there, nothing to all-reduce.
        if config.cuda_graph:
            problems = [why for bad, why in [
                (config.gp_weight or config.r1_weight, "gradient/R1 penalties (double backward)"),
                (self.dist.distributed, "torchrun (DDP)"),
                (compile_mode(config.compile) in CUDAGRAPH_MODES, f"compile={config.compile!r}, which makes its own "
                 "CUDA graphs (use compile='default' or 'max-autotune-no-cudagraphs' with it)")] if bad]
            if problems:
                raise ValueError(f"cuda_graph=True does not work with {'; '.join(problems)}; set cuda_graph=False")
        self.train_generator = self.wrap(self.generator)
        self.train_discriminator = self.wrap(self.discriminator)
        self.train_discriminator_local = (self.wrap(self.discriminator, ddp=False) if self.dist.distributed
                                          else self.train_discriminator)
        self.opt_g = self.adam(self.generator.parameters(), config.lr_g, config.betas)
        self.opt_d = self.adam(self.discriminator.parameters(), config.lr_d, config.betas)
        self.optimizers = {"generator": self.opt_g, "discriminator": self.opt_d}
        if config.ema_decay > 0:
            self.ema = EMA(self.generator, config.ema_decay)
        if config.gp_weight or config.r1_weight:
            self.history["penalty"] = []
        if config.gp_weight and any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in discriminator.modules()):
            warnings.warn("the discriminator uses batch norm, which mixes examples, so the gradient penalty no "
                          "longer constrains each example's gradient (Gulrajani et al. 2017, sec. 4); build it with "
                          "norm='layer' or norm='none'", stacklevel=2)
        fixed = torch.Generator().manual_seed(config.seed + 2)
        self.fixed_noise = torch.randn(config.n_samples, generator.latent_dim, generator=fixed).to(self.device)
        self.fixed_labels = (torch.arange(config.n_samples, device=self.device) % generator.num_classes
                             if self.conditional else None)

    @classmethod
    def _from_models(cls, models, data, config, callbacks):
        return cls(models["generator"], models["discriminator"], data, config, callbacks)

    def noise(self, n: int) -> torch.Tensor:
        if self._feed is not None and self._feed.active:
            return self._feed.noise(n)
        return torch.randn(n, self.generator.latent_dim, device=self.device, generator=self.noise_gen)

    def _summary(self, out: torch.Tensor) -> torch.Tensor:
        return (torch.sigmoid(out) if self.config.loss in LOGIT_LOSSES else out).mean().detach()

    def d_step(self, real: torch.Tensor, labels: torch.Tensor | None):
        """One discriminator update; returns detached (loss, d_real, d_fake, penalty)."""
        cfg, G, D = self.config, self.train_generator, self.train_discriminator
        kw = {"labels": labels} if self.conditional else {}
        with self.autocast():
            with torch.no_grad():
                fake = G(self.noise(real.shape[0]), **kw)
            real_out, fake_out = D(real, **kw).float(), D(fake, **kw).float()
            loss = discriminator_loss(cfg.loss, real_out, fake_out)
            penalty = torch.zeros((), device=self.device)
            D = self.discriminator  # the penalties differentiate twice: plain eager module, never compiled
            if cfg.gp_weight:
                penalty = penalty + cfg.gp_weight * gradient_penalty(D, real, fake, labels if self.conditional else None,
                                                                     generator=self.noise_gen)
            if cfg.r1_weight:
                penalty = penalty + cfg.r1_weight * r1_penalty(D, real, labels if self.conditional else None)
        self.opt_d.zero_grad(set_to_none=True)
        (loss + penalty).backward()
        self.opt_d.step()
        return loss.detach(), self._summary(real_out), self._summary(fake_out), penalty.detach().float()

    def g_step(self, n: int, labels: torch.Tensor | None) -> torch.Tensor:
        """One generator update on fresh noise; returns the detached loss."""
        kw = {"labels": labels} if self.conditional else {}
        with self.autocast(), frozen(self.discriminator):
            fake = self.train_generator(self.noise(n), **kw)
            loss = generator_loss(self.config.loss, self.train_discriminator_local(fake, **kw).float())
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_g.step()
        return loss.detach()

    def train_step(self) -> dict[str, torch.Tensor]:
        self.mark_step()
        logs = self._graphed_step() if self.use_cuda_graph else self._step()
        if self.ema is not None:
            self.ema.update_parameters(self.generator)
        return logs

    def _step(self) -> dict[str, torch.Tensor]:
        """Both updates of one step (without the EMA update, which counts on the CPU)."""
        k = self.config.d_steps
        loss_d = penalty = 0.0
        for _ in range(k):
            real, labels = self.next_batch()
            d_loss, d_real, d_fake, d_penalty = self.d_step(real, labels)
            loss_d, penalty = loss_d + d_loss / k, penalty + d_penalty / k
        loss_g = self.g_step(real.shape[0], labels)
        logs = {"loss_d": loss_d, "loss_g": loss_g, "d_real": d_real, "d_fake": d_fake}
        if "penalty" in self.history:
            logs["penalty"] = penalty
        return logs

    def _graphed_step(self) -> dict[str, torch.Tensor]:
        """:meth:`_step` through a CUDA graph: fill the fixed inputs, replay, copy the logs out."""
        if self._graph_runner is None:
            self._feed, self._graph_runner = StaticFeed(), CUDAGraphStep(before_capture=self._drop_grads)
        self._feed.fill(self)
        logs = self._graph_runner(self._fed_step)
        # the graph writes its outputs to the same memory every replay: copy them (one small kernel)
        keys = list(logs)
        values = torch.stack([logs[key].float() for key in keys])
        return dict(zip(keys, values.unbind()))

    def _drop_grads(self) -> None:
        """Before capture: the gradients must be allocated inside it, from the graph's memory pool."""
        for opt in self.optimizers.values():
            opt.zero_grad(set_to_none=True)

    def _fed_step(self) -> dict[str, torch.Tensor]:
        with self._feed.reading():
            return self._step()

    @torch.no_grad()
    def sample(self, n: int | None = None, labels: torch.Tensor | None = None, z: torch.Tensor | None = None,
               ema: bool = True, seed: int | None = None) -> torch.Tensor:
        """Generated samples (float32, on the device), in eval mode, from the EMA generator if any.

        The noise is ``z`` if given, else drawn on the CPU from a generator seeded with ``seed``
        (default ``config.seed``): the same call gives the same samples, and sampling never touches
        the training RNG streams. Conditional models cycle through the classes unless given ``labels``.
        """
        G = self.ema.module if (ema and self.ema is not None) else self.generator
        if z is None:
            gen = torch.Generator().manual_seed(self.config.seed if seed is None else seed)
            z = torch.randn(n or self.config.n_samples, self.generator.latent_dim, generator=gen)
        z = z.to(self.device)
        kw = {}
        if self.conditional:
            labels = labels if labels is not None else torch.arange(len(z)) % self.generator.num_classes
            kw = {"labels": labels.to(self.device)}
        with eval_mode(G):
            return G(z, **kw).float()

    def sample_fixed(self) -> torch.Tensor:
        return self.sample(z=self.fixed_noise, labels=self.fixed_labels)


# ----------------------------------------------------------------------------- VAE


class VAETrainer(Trainer):
    """Minimises a VAE's negative ELBO with Adam. History per step: ``loss`` (negative ELBO per
    example, nats), ``rec`` (reconstruction NLL) and ``kl``."""

    config_class = VAEConfig
    history_keys = ("loss", "rec", "kl")

    def __init__(self, vae, data, config: VAEConfig | None = None, callbacks=()):
        super().__init__(data, config or VAEConfig(), callbacks)
        self.vae = self.place(vae)
        if self.dist.distributed:  # the loss is a method, not forward(): average gradients by hand, not DDP
            distributed.broadcast_parameters(self.vae)
        self.models = {"vae": self.vae}
        self.opt = self.adam(self.vae.parameters(), self.config.lr, self.config.betas)
        self.optimizers = {"vae": self.opt}
        fixed = torch.Generator().manual_seed(self.config.seed + 2)
        self.fixed_noise = torch.randn(self.config.n_samples, vae.latent_dim, generator=fixed).to(self.device)

    @classmethod
    def _from_models(cls, models, data, config, callbacks):
        return cls(models["vae"], data, config, callbacks)

    def train_step(self) -> dict[str, torch.Tensor]:
        x, _ = self.next_batch()
        with self.autocast():
            loss, rec, kl = self.vae.negative_elbo(x, generator=self.noise_gen, beta=self.config.beta)
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
        gen = torch.Generator(device=self.device).manual_seed(seed)
        total = 0.0
        with eval_mode(self.vae):
            for i in range(0, len(images), batch_size):
                x = images[i:i + batch_size].to(self.device)
                total += self.vae.negative_elbo(x, generator=gen)[0].sum().item()
        return total / len(images)

    @torch.no_grad()
    def sample(self, n: int | None = None, z: torch.Tensor | None = None, seed: int | None = None) -> torch.Tensor:
        """Images E[x | z] in [-1, 1], z ~ N(0, I) from a CPU generator seeded with ``seed``."""
        if z is None:
            gen = torch.Generator().manual_seed(self.config.seed if seed is None else seed)
            z = torch.randn(n or self.config.n_samples, self.vae.latent_dim, generator=gen)
        with eval_mode(self.vae):
            return self.vae.decode_mean(z.to(self.device)).float()

    def sample_fixed(self) -> torch.Tensor:
        return self.sample(z=self.fixed_noise)
