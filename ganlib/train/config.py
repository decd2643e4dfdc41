"""The trainers' settings: dataclasses, checked when they are made."""
from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass

from ..losses import check_loss_name
from .ema import EMA_DECAY_RANGE, valid_ema_decay

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
CUDAGRAPH_MODES = ("reduce-overhead", "max-autotune")  # torch.compile modes that make their own CUDA graphs


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


def _require(ok: bool, field: str, value, needs: str) -> None:
    if not ok:
        raise ValueError(f"{field} must be {needs}; got {value!r}")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _positive_rate(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


@dataclass
class TrainConfig:
    """Settings shared by every trainer."""

    steps: int = 1000               # total optimisation steps (a resumed run continues up to this)
    batch_size: int = 64            # used when the trainer builds the loader itself
    device: str | None = None       # None: cuda, then mps, then cpu
    bf16: bool = True               # bf16 autocast on GPUs that compute it natively (compute capability >= 8.0;
                                    # float32 on older ones such as Colab's T4, and on other devices)
    fused_adam: bool = True         # fused Adam kernels on CUDA
    seed: int = 0                   # seeds the trainer's generators and its own loader
    log_every: int = 50             # steps between history/progress updates, loss checks and callbacks
    progress: bool = True           # show a tqdm progress bar
    n_samples: int = 64             # size of the fixed-noise batch (sample_fixed, SampleSnapshots)
    checkpoint_path: str | None = None  # where save() writes; None: no automatic checkpoints
    checkpoint_every: int = 0       # steps between checkpoints (0: only at the end of fit)
    channels_last: bool = True      # conv weights and image batches in NHWC layout on CPU and CUDA: faster
                                    # convolutions (oneDNN, cuDNN in bf16); no effect on MLPs
    sync_bn: bool = False           # under torchrun: SyncBatchNorm (global-batch statistics; GPUs only)

    def __post_init__(self):
        _require(_is_int(self.steps) and self.steps >= 0, "steps", self.steps, "an integer >= 0")
        for name in ("batch_size", "log_every", "n_samples"):
            value = getattr(self, name)
            _require(_is_int(value) and value >= 1, name, value, "an integer >= 1")
        _require(_is_int(self.checkpoint_every) and self.checkpoint_every >= 0, "checkpoint_every",
                 self.checkpoint_every, "an integer >= 0 (0: only at the end of fit)")
        _require(_is_int(self.seed), "seed", self.seed, "an integer")

    @classmethod
    def field_names(cls) -> set[str]:
        """The config's field names (what a checkpoint's config and overrides may hold)."""
        return {f.name for f in dataclasses.fields(cls)}


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
    info_weight: float = 1.0        # lambda of InfoGAN's information term (models with a categorical code only;
                                    # Chen et al. 2016 use 1 for discrete codes)
    # speed options, which only the GAN trainer has (python -m ganlib.bench measures them)
    compile: bool | str = False     # torch.compile the models: True/"default", "reduce-overhead"
                                    # (adds CUDA graphs), "max-autotune", "max-autotune-no-cudagraphs"
    cuda_graph: bool = False        # on CUDA: replay each whole step as one CUDA graph (no penalties,
                                    # one process); ignored on other devices

    def __post_init__(self):
        super().__post_init__()
        # checked when the config is made, so a bad name fails before any model is built
        check_loss_name(self.loss)
        _require(_is_int(self.d_steps) and self.d_steps >= 1, "d_steps", self.d_steps, "an integer >= 1")
        for name in ("lr_g", "lr_d"):
            _require(_positive_rate(getattr(self, name)), name, getattr(self, name), "a finite number > 0")
        _check_betas(self.betas)
        for name in ("gp_weight", "r1_weight", "info_weight"):
            value = getattr(self, name)
            _require(isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
                     and value >= 0, name, value, "a finite number >= 0 (0: no penalty)" if name != "info_weight"
                     else "a finite number >= 0 (0: the code's head is not trained)")
        _require(valid_ema_decay(self.ema_decay), "ema_decay", self.ema_decay, EMA_DECAY_RANGE)
        compile_mode(self.compile)
        if self.cuda_graph:  # what a captured step cannot contain (torchrun is checked by the trainer)
            problems = [why for bad, why in [
                (self.gp_weight or self.r1_weight, "gradient/R1 penalties (double backward)"),
                (compile_mode(self.compile) in CUDAGRAPH_MODES, f"compile={self.compile!r}, which makes its own "
                 "CUDA graphs (use compile='default' or 'max-autotune-no-cudagraphs' with it)")] if bad]
            if problems:
                raise ValueError(f"cuda_graph=True does not work with {'; '.join(problems)}; set cuda_graph=False")


@dataclass
class VAEConfig(TrainConfig):
    """VAE settings: Adam with lr 1e-3 and the usual betas (0.9, 0.999)."""

    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    beta: float = 1.0               # weight of the KL term (1: the ELBO; other values: beta-VAE)
    binarize: bool = False          # dynamic binarisation: each step draws pixels ~ Bernoulli(grey level)

    def __post_init__(self):
        super().__post_init__()
        _require(_positive_rate(self.lr), "lr", self.lr, "a finite number > 0")
        _require(isinstance(self.binarize, bool), "binarize", self.binarize, "True or False")
        _check_betas(self.betas)
        _require(isinstance(self.beta, (int, float)) and math.isfinite(self.beta) and self.beta >= 0, "beta",
                 self.beta, "a finite number >= 0")


def _check_betas(betas) -> None:
    ok = (isinstance(betas, (tuple, list)) and len(betas) == 2
          and all(isinstance(b, (int, float)) and 0 <= b < 1 for b in betas))
    _require(ok, "betas", betas, "two numbers in [0, 1), e.g. (0.5, 0.999)")


def config_from_checkpoint(config_class, saved: dict, overrides: dict, path) -> TrainConfig:
    """The config a checkpoint recorded, with ``overrides`` applied (unknown override fields refused)."""
    fields = config_class.field_names()
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise TypeError(f"unknown {config_class.__name__} field(s) {unknown}; valid fields are {sorted(fields)}")
    dropped = sorted(set(saved) - fields)
    if any(saved[k] for k in dropped):  # written by an older ganlib: say what no longer has an effect
        warnings.warn(f"{path}: ignoring config field(s) {dropped}, which {config_class.__name__} does not have",
                      stacklevel=3)
    return config_class(**{**{k: v for k, v in saved.items() if k not in dropped}, **overrides})
