"""The losses chapter's mode-collapse experiment, and the published figures it is compared with.

Every configuration in :data:`CONFIGS` trains a small MLP GAN with :class:`ganlib.train.GANTrainer`
on PacGAN's 8-mode ring and 25-mode grid (:mod:`ganlib.data`), for several seeds; each run is
scored on 2,500 samples with :func:`ganlib.metrics.mode_coverage`, as VEEGAN and PacGAN do.

The full profile is too long for CI (minutes on one CPU core), so a command runs it and writes a
results file that the chapter reads::

    python -m ganlib.chapters.experiments mode-collapse --profile full
    # -> book/results/mode_collapse_full.json and .md (command, date, device, versions, run time)

The quick profile (fewer steps and seeds) is what the notebook runs itself. WGAN-GP with its
authors' settings (``wgan-gp-authors``) is not in any profile's default list, and the committed
results predate it; add it with ``--configs wgan-gp-authors --out <file>``.

The module also holds the chapter's small demonstrations: :func:`saturation_run` (minimax vs
non-saturating generator, with Adam or plain SGD), :func:`optimizer_step_sizes`,
:func:`critic_objective_run` with :func:`linear_critic_gp_optimum` and :func:`wasserstein_1d`,
and :func:`markov_chain_fit`.
"""
from __future__ import annotations

import dataclasses
import functools
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..command import POSITIVE_INT, CommaList, UsageError, check_output_file
from ..data import Gaussian1D, gaussian_grid, gaussian_ring
from ..env import seed_everything
from ..losses import discriminator_loss, gradient_penalty
from ..metrics import mode_coverage
from ..models import MLPDiscriminator, MLPGenerator
from ..train import GANConfig, GANTrainer, LinearLRDecay
from .pacgan import PackedDiscriminator
from . import results
from .parallel import map_jobs
from .results import RESULTS_DIR, command_parser, provenance, run_command, save_results, versions

MODE_COLLAPSE_PATH = RESULTS_DIR / "mode_collapse_full.json"
MODE_COLLAPSE_COMMAND = "python -m ganlib.chapters.experiments mode-collapse --profile full"

# ----------------------------------------------------------------------------- published figures

#: Quoted from the papers (modes captured / % high-quality samples, 2,500 samples per run); these
#: are *their* numbers, not ours. VEEGAN: Srivastava et al. 2017, Table 1 (ring: 8 modes, grid:
#: 25 modes). PacGAN: Lin et al. 2018, Table 1. ``key`` is the entry in references.bib.
PUBLISHED = [
    {"source": "VEEGAN, Table 1", "key": "srivastava2017veegan", "model": "GAN",
     "ring_modes": 1.0, "ring_hq": 99.3, "grid_modes": 3.3, "grid_hq": 0.5},
    {"source": "VEEGAN, Table 1", "key": "srivastava2017veegan", "model": "Unrolled GAN",
     "ring_modes": 7.6, "ring_hq": 35.6, "grid_modes": 23.6, "grid_hq": 16.0},
    {"source": "VEEGAN, Table 1", "key": "srivastava2017veegan", "model": "VEEGAN",
     "ring_modes": 8.0, "ring_hq": 52.9, "grid_modes": 24.6, "grid_hq": 40.0},
    {"source": "PacGAN, Table 1", "key": "lin2018pacgan", "model": "GAN",
     "ring_modes": 6.3, "ring_hq": 98.2, "grid_modes": 17.3, "grid_hq": 94.8},
    {"source": "PacGAN, Table 1", "key": "lin2018pacgan", "model": "PacGAN4",
     "ring_modes": 7.8, "ring_hq": 95.9, "grid_modes": 24.8, "grid_hq": 93.6},
]

# ----------------------------------------------------------------------------- configurations

#: Loss configurations compared in the chapter. Every one runs with the shared :class:`Setup`
#: (one D step per G step, Adam betas (0.5, 0.999), the dataset's learning rate) unless it sets
#: ``d_steps``, ``betas`` or ``lr`` itself. Wasserstein runs with WGAN-GP's gradient penalty
#: (weight 10): without a Lipschitz constraint its critic loss has no lower bound. "wgan-gp" is a
#: *deliberately untuned* configuration: it gets the shared setup, not its authors' settings, and
#: covers almost no ring modes that way; "wgan-gp-authors" adds the settings of Gulrajani et al.
#: 2017, Algorithm 1 (:data:`WGAN_GP_AUTHORS`). "pacgan4" is the anti-collapse configuration: the
#: non-saturating loss with a discriminator that sees packs of 4 samples (:mod:`ganlib.chapters.pacgan`).
WGAN_GP_AUTHORS = {"d_steps": 5, "betas": (0.0, 0.9), "lr": 1e-4}  # n_critic, Adam (beta1, beta2), alpha

CONFIGS: dict[str, dict] = {
    "minimax": {"loss": "minimax"},
    "nonsaturating": {"loss": "nonsaturating"},
    "lsgan": {"loss": "lsgan"},
    "hinge": {"loss": "hinge"},
    "wgan-gp": {"loss": "wasserstein", "gp_weight": 10.0},
    "wgan-gp-authors": {"loss": "wasserstein", "gp_weight": 10.0, **WGAN_GP_AUTHORS},
    "nonsaturating+r1": {"loss": "nonsaturating", "r1_weight": 0.1},
    "pacgan4": {"loss": "nonsaturating", "pack": 4},
}

#: How the chapter's tables name a configuration where its name alone would mislead.
CONFIG_LABELS = {
    "wgan-gp": "wgan-gp (deliberately untuned: shared setup)",
    "wgan-gp-authors": "wgan-gp (its authors' n_critic, betas, lr)",
}

DATASETS = {"ring": gaussian_ring, "grid": gaussian_grid}


@dataclass
class Setup:
    """Architecture and budget shared by every configuration (one profile)."""
    steps: int = 3000
    batch_size: int = 128           # samples per D batch; with packing, groups of `pack` samples
    latent_dim: int = 2
    g_hidden: tuple = (128, 128, 128)
    d_hidden: tuple = (128, 128, 128)
    lr: dict = field(default_factory=lambda: {"ring": 5e-4, "grid": 2e-3})  # per dataset, same for every loss
    betas: tuple = (0.5, 0.999)
    ema_decay: float = 0.99
    lr_decay: bool = True           # linear decay of both learning rates to 0 over the run
    seeds: tuple = tuple(range(10))
    n_eval: int = 2500              # samples scored per run, as in VEEGAN and PacGAN
    configs: tuple = tuple(CONFIGS)
    datasets: tuple = ("ring", "grid")


PROFILES = {
    "quick": Setup(steps=500, seeds=(0, 1), configs=("nonsaturating", "pacgan4")),
    "full": Setup(steps=3000, configs=("minimax", "nonsaturating", "lsgan", "hinge", "wgan-gp", "pacgan4")),
    # The best configuration found, trained 10x longer with a larger batch and a slower EMA: at
    # 3,000 steps every loss still leaves many samples between the modes (low % high quality), and
    # at 12,000 the grid's high-quality fraction was still rising (86.6 +- 10.3%).
    "long": Setup(steps=30_000, batch_size=256, lr=1e-3, ema_decay=0.999, configs=("nonsaturating+r1",)),
}


def build_models(config: dict, setup: Setup, dim: int = 2):
    """The generator and (possibly packed) discriminator for one configuration."""
    pack = int(config.get("pack", 1))
    G = MLPGenerator(setup.latent_dim, dim, hidden=setup.g_hidden)
    D = MLPDiscriminator(dim * pack, hidden=setup.d_hidden)
    return G, (PackedDiscriminator(D, pack) if pack > 1 else D)


def train_toy_gan(config_name: str | dict, dataset: str, seed: int, setup: Setup, device="cpu"):
    """Train one configuration on one toy dataset; returns ``(trainer, ModeCoverage)``.

    ``config_name`` names an entry of :data:`CONFIGS`, or is such an entry itself (a dict with
    ``loss`` and optional overrides, including ``lr_d_ratio``: D's learning rate over G's).
    """
    if isinstance(config_name, dict):
        config = config_name
    elif config_name in CONFIGS:
        config = CONFIGS[config_name]
    else:
        raise ValueError(f"unknown configuration {config_name!r}; choose from {sorted(CONFIGS)}")
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; choose from {sorted(DATASETS)}")
    pack = int(config.get("pack", 1))
    seed_everything(seed)
    G, D = build_models(config, setup)
    dist = DATASETS[dataset]()
    lr = setup.lr[dataset] if isinstance(setup.lr, dict) else setup.lr
    lr = config.get("lr", lr)  # a configuration's own settings override the shared setup
    cfg = GANConfig(loss=config["loss"], steps=setup.steps, batch_size=setup.batch_size * pack,
                    d_steps=config.get("d_steps", 1), lr_g=lr, lr_d=lr * config.get("lr_d_ratio", 1.0),
                    betas=tuple(config.get("betas", setup.betas)), gp_weight=config.get("gp_weight", 0.0),
                    r1_weight=config.get("r1_weight", 0.0), ema_decay=setup.ema_decay, bf16=False,
                    device=device, seed=seed, log_every=50, progress=False)
    callbacks = [LinearLRDecay(setup.steps)] if setup.lr_decay else []
    trainer = GANTrainer(G, D, dist, cfg, callbacks=callbacks)
    trainer.fit()
    samples = trainer.sample(setup.n_eval, seed=10_000 + seed).cpu()
    return trainer, mode_coverage(samples, dist.centers, dist.std)


def _run_one(job: tuple, setup: Setup, keep_samples: bool = False) -> dict:
    """One (configuration, dataset, seed) run of the experiment, as a row."""
    name, dataset, seed = job
    start = time.time()
    trainer, cov = train_toy_gan(name, dataset, seed, setup)
    row = {"config": name, "dataset": dataset, "seed": seed, "modes": cov.modes_captured,
           "hq": 100 * cov.high_quality_fraction, "reverse_kl": cov.reverse_kl, "seconds": time.time() - start}
    if keep_samples:
        row["samples"] = trainer.sample(setup.n_eval, seed=10_000 + seed).cpu()
    return row


def run_mode_collapse(setup: Setup, log=print, keep_samples: bool = False, workers: int = 1) -> list[dict]:
    """Every (configuration, dataset, seed) of ``setup``; one row per run, in a fixed order.

    With ``keep_samples`` each row also holds the scored samples (``"samples"``, a tensor), e.g. to plot them.
    ``workers > 1`` runs that many in parallel processes (:func:`~ganlib.chapters.parallel.map_jobs`),
    each with this process's torch thread count; every run seeds itself, so the rows are the same as
    with one worker.
    """
    jobs = [(name, dataset, seed) for dataset in setup.datasets for name in setup.configs for seed in setup.seeds]
    if workers > 1 and keep_samples:
        raise ValueError("keep_samples needs workers=1 (the samples stay in this process)")
    rows = []
    for row in map_jobs(functools.partial(_run_one, setup=setup, keep_samples=keep_samples), jobs, workers):
        rows.append(row)
        _log_row(row, log)
    return rows


def _log_row(r: dict, log) -> None:
    if log:
        log(f"{r['dataset']:4s} {r['config']:18s} seed {r['seed']}: modes {r['modes']:2d}  hq {r['hq']:5.1f}%  "
            f"rKL {r['reverse_kl']:.3f}  ({r['seconds']:.1f} s)")


def summarize(rows: list[dict]) -> list[dict]:
    """Mean and (population) std over seeds of modes, % high quality and reverse KL per config/dataset."""
    groups: dict[tuple, list] = {}
    for r in rows:
        groups.setdefault((r["config"], r["dataset"]), []).append(r)
    out = []
    for (config, dataset), rs in groups.items():
        entry = {"config": config, "dataset": dataset, "runs": len(rs)}
        for key in ("modes", "hq", "reverse_kl"):
            v = torch.tensor([float(r[key]) for r in rs], dtype=torch.float64)
            entry[key] = float(v.mean())
            entry[key + "_std"] = float(v.std(unbiased=False))
        out.append(entry)
    return out


def table(summary: list[dict], datasets=("ring", "grid"), labels: dict | None = None) -> list[dict]:
    """One row per configuration: 'modes', '% HQ' and 'reverse KL' (mean ± std) per dataset.

    ``labels`` maps a configuration's name to the name its row shows (e.g. :data:`CONFIG_LABELS`).
    """
    labels = labels or {}
    rows: dict[str, dict] = {}
    for s in summary:
        if s["dataset"] not in datasets:
            continue
        row = rows.setdefault(s["config"], {"config": labels.get(s["config"], s["config"])})
        d = s["dataset"]
        row[f"{d} modes"] = f"{s['modes']:.1f} ± {s['modes_std']:.1f}"
        row[f"{d} % HQ"] = f"{s['hq']:.1f} ± {s['hq_std']:.1f}"
        row[f"{d} reverse KL"] = f"{s['reverse_kl']:.3f} ± {s['reverse_kl_std']:.3f}"
    return list(rows.values())


def markdown_table(rows: list[dict]) -> str:
    """A list of dicts with the same keys as a Markdown table."""
    if not rows:
        return ""
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(r.get(k, "")) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def published_table() -> list[dict]:
    """:data:`PUBLISHED` as table rows (modes / % high quality)."""
    return [{"source": p["source"], "model": p["model"],
             "ring modes": p["ring_modes"], "ring % HQ": p["ring_hq"],
             "grid modes": p["grid_modes"], "grid % HQ": p["grid_hq"]} for p in PUBLISHED]


GOAL = {"ring_modes": 8.0, "ring_hq": 98.0, "grid_modes": 24.9, "grid_hq": 95.0}


def shortfall(values: dict, goal: dict = GOAL) -> dict:
    """How far ``values`` (ring_modes, ring_hq, grid_modes, grid_hq) fall below ``goal``; {} if they meet it."""
    return {k: goal[k] - values[k] for k in goal if values[k] < goal[k]}


def describe_shortfall(values: dict, goal: dict = GOAL) -> str:
    """A phrase for the chapter: "meets the goal" or "falls short of the goal by 1.42 (ring_hq), ..."."""
    short = shortfall(values, goal)
    if not short:
        return "meets the goal"
    return "falls short of the goal by " + ", ".join(f"{v:.2f} ({k})" for k, v in short.items())


def goal_check(summary: list[dict]) -> dict:
    """For each configuration: does it meet the chapter's goal (>= 8/8 ring modes with >= 98% HQ,
    >= 24.9/25 grid modes with >= 95% HQ, means over seeds) and does it beat every published row?"""
    by = {(s["config"], s["dataset"]): s for s in summary}
    out = {}
    for config in dict.fromkeys(s["config"] for s in summary):
        ring, grid = by.get((config, "ring")), by.get((config, "grid"))
        if ring is None or grid is None:
            continue
        values = {"ring_modes": ring["modes"], "ring_hq": ring["hq"], "grid_modes": grid["modes"], "grid_hq": grid["hq"]}
        beats = all(values[k] >= p[k] for p in PUBLISHED for k in values)
        out[config] = {**values, "meets_goal": not shortfall(values), "beats_published": beats}
    return out


# ----------------------------------------------------------------------------- small demonstrations


class SGDGANTrainer(GANTrainer):
    """:class:`~ganlib.train.GANTrainer` with plain SGD (no momentum) for both networks instead of Adam.

    The trainer builds both optimizers through its ``adam`` hook; this subclass answers it with
    ``torch.optim.SGD``, whose step is the learning rate times the gradient itself, so a small
    gradient gives a small step (``config.betas`` is unused).
    """

    def adam(self, params, lr: float, betas) -> torch.optim.SGD:
        """Plain SGD at the trainer's learning rate for ``lr``; ``betas`` is ignored."""
        return torch.optim.SGD(params, lr=self.learning_rate(lr))


OPTIMIZERS = {"adam": GANTrainer, "sgd": SGDGANTrainer}


def saturation_run(loss: str, steps: int = 300, seed: int = 0, d_steps: int = 3, log_every: int = 10,
                   optimizer: str = "adam", lr: float = 1e-3) -> dict:
    """A 1D GAN (data :class:`~ganlib.data.Gaussian1D`, N(4, 1.25^2); G starting near 0) trained
    with ``loss``; the D gets ``d_steps`` updates per G update, so it rejects the first fakes
    confidently, as early in real training.

    ``optimizer`` is ``"adam"`` (GANTrainer's Adam, betas (0.5, 0.999)) or ``"sgd"`` (plain SGD,
    :class:`SGDGANTrainer`), both networks with learning rate ``lr``. Returns lists per logged step:
    ``step``, ``d_fake`` (mean D(G(z))), ``grad_norm`` (norm of the generator's last gradient) and
    ``g_mean`` (mean of 1,000 generated samples); and the settings, ``optimizer``, ``lr``, ``d_steps``.
    """

    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)}, not {optimizer!r}")
    seed_everything(seed)
    G, D = MLPGenerator(1, 1, hidden=(32, 32)), MLPDiscriminator(1, hidden=(32, 32))
    out = {"step": [], "d_fake": [], "grad_norm": [], "g_mean": [],
           "optimizer": optimizer, "lr": lr, "d_steps": d_steps}

    def record(trainer):
        grads = [p.grad.norm() for p in trainer.generator.parameters() if p.grad is not None]
        out["step"].append(trainer.step)
        out["d_fake"].append(trainer.history["d_fake"][-1])
        out["grad_norm"].append(float(torch.stack(grads).norm()) if grads else 0.0)
        out["g_mean"].append(float(trainer.sample(1000, ema=False).mean()))

    cfg = GANConfig(loss=loss, steps=steps, batch_size=128, d_steps=d_steps, lr_g=lr, lr_d=lr,
                    bf16=False, device="cpu", seed=seed, log_every=log_every, progress=False)
    OPTIMIZERS[optimizer](G, D, Gaussian1D(), cfg, callbacks=[record]).fit()
    return out


def steps_to_reach(run: dict, level: float):
    """The first logged step of a :func:`saturation_run` at which the generator's mean reaches ``level``, else None."""
    return next((s for s, m in zip(run["step"], run["g_mean"]) if m >= level), None)


def optimizer_step_sizes(scales=(1.0, 1.0 / 22), steps: int = 20, lr: float = 1e-3, seed: int = 0) -> dict:
    """How far Adam and plain SGD move a parameter vector when every gradient is multiplied by ``scale``.

    The same sequence of random gradients (a fixed direction plus noise) is fed to each optimizer,
    scaled by each entry of ``scales``; returns ``{(optimizer, scale): distance moved per step}``,
    the mean over coordinates of |final - initial value| divided by ``steps``.
    Adam's step, lr * m_hat / (sqrt(v_hat) + eps) (Kingma & Ba 2015, Algorithm 1), is unchanged
    when every gradient is scaled by the same c > 0 (m_hat scales by c, sqrt(v_hat) by c), up to
    eps; SGD's step, lr * g, scales by c.
    """
    g = torch.Generator().manual_seed(seed)
    grads = [torch.ones(100) + 0.5 * torch.randn(100, generator=g) for _ in range(steps)]
    out = {}
    for name, make in (("adam", lambda p: torch.optim.Adam(p, lr=lr, betas=(0.5, 0.999))),
                       ("sgd", lambda p: torch.optim.SGD(p, lr=lr))):
        for scale in scales:
            w = torch.zeros(100, requires_grad=True)
            opt = make([w])
            for grad in grads:
                w.grad = scale * grad
                opt.step()
            out[(name, scale)] = float(w.detach().abs().mean()) / steps
    return out


def wasserstein_1d(a: torch.Tensor, b: torch.Tensor) -> float:
    """The 1-Wasserstein distance between two 1D samples of equal size: mean |sorted a - sorted b|
    (in one dimension the optimal transport plan pairs the order statistics)."""
    a, b = a.reshape(-1), b.reshape(-1)
    if a.numel() != b.numel():
        raise ValueError(f"the samples must have the same size; got {a.numel()} and {b.numel()}")
    return float((a.sort().values - b.sort().values).abs().mean())


def linear_critic_gp_optimum(w1: float, gp_weight: float) -> dict:
    """The best *linear* critic f(x) = -s x (slope s) under WGAN-GP's penalty (Gulrajani et al. 2017, eq. 3).

    Its critic loss is E[f(fake)] - E[f(real)] = -s W1 and its penalty gp_weight (s - 1)^2 (the
    gradient is s everywhere), so the penalised loss -W1 s + lambda (s - 1)^2 is smallest at
    s* = 1 + W1 / (2 lambda), where it equals -W1 - W1^2 / (4 lambda). Returns ``slope`` (s*),
    ``penalised`` (the loss with the penalty, at s*), ``unpenalised`` (-s* W1, the critic loss
    alone, which :func:`critic_objective_run` records) and ``penalty`` (lambda (s* - 1)^2).
    """
    s = 1 + w1 / (2 * gp_weight)
    return {"slope": s, "penalised": -w1 - w1 ** 2 / (4 * gp_weight), "unpenalised": -s * w1,
            "penalty": gp_weight * (s - 1) ** 2}


def critic_samples(seed: int = 0, n: int = 512) -> tuple[torch.Tensor, torch.Tensor, torch.Generator]:
    """The two fixed 1D samples of :func:`critic_objective_run`: "real" N(0, 1) and "fake" N(4, 1),
    ``n`` each, drawn from a generator seeded with ``seed`` (returned too: the run keeps drawing from it)."""
    g = torch.Generator().manual_seed(seed)
    real = torch.randn(n, 1, generator=g)
    fake = 4 + torch.randn(n, 1, generator=g)
    return real, fake, g


def critic_objective_run(constraint: str, steps: int = 300, seed: int = 0, clip: float = 0.01,
                         gp_weight: float = 10.0) -> dict:
    """Train a critic alone with the Wasserstein objective E[f(fake)] - E[f(real)] between two fixed
    1D samples (:func:`critic_samples`: N(0, 1) as "real", N(4, 1) as "fake"). Their distance
    ``w1`` (:func:`wasserstein_1d`) is close to, but not exactly, 4: it is a property of the drawn samples.

    ``constraint`` is ``"none"``, ``"clip"`` (weights clamped to [-clip, clip] after each step, as in
    WGAN) or ``"gp"`` (WGAN-GP's gradient penalty, weight ``gp_weight``). Returns ``loss``, the
    critic loss per step *without* the penalty term; ``penalty``, the weighted penalty per step
    (0 without it); ``w1``; and the settings. Without a constraint the loss falls without bound;
    with the penalty it settles below -W1: a slope above 1 gains more than the penalty costs. For
    a linear critic the optimum is :func:`linear_critic_gp_optimum` (-s* W1 = -4.8 for the
    unpenalised loss, -4.4 with the penalty, at W1 = 4 and lambda = 10).
    """

    if constraint not in ("none", "clip", "gp"):
        raise ValueError(f"constraint must be 'none', 'clip' or 'gp', not {constraint!r}")
    real, fake, g = critic_samples(seed)
    torch.manual_seed(seed)
    critic = MLPDiscriminator(1, hidden=(64, 64))
    opt = torch.optim.Adam(critic.parameters(), lr=1e-3, betas=(0.5, 0.9))
    out = {"loss": [], "penalty": [], "w1": wasserstein_1d(real, fake), "constraint": constraint,
           "clip": clip, "gp_weight": gp_weight}
    for _ in range(steps):
        loss = discriminator_loss("wasserstein", critic(real), critic(fake))
        penalty = gp_weight * gradient_penalty(critic, real, fake, generator=g) if constraint == "gp" else None
        opt.zero_grad(set_to_none=True)
        (loss if penalty is None else loss + penalty).backward()
        opt.step()
        if constraint == "clip":
            with torch.no_grad():
                for p in critic.parameters():
                    p.clamp_(-clip, clip)
        out["loss"].append(loss.item())
        out["penalty"].append(0.0 if penalty is None else penalty.item())
    return out


def markov_chain_fit(sign: float = 1.0, steps: int = 200, length: int = 2000, seed: int = 0):
    """Fit a 2-state Markov chain's transition matrix by gradient descent on ``sign`` * the source's
    "Markov chain loss", (1/N) sum_t log p(x_t | x_{t-1}).

    ``sign=-1`` minimises the negative log-likelihood (maximum likelihood: correct); ``sign=+1``
    minimises the log-likelihood itself, as the source's formula says. Returns
    ``(true_matrix, fitted_matrix, loss_per_step)``; rows are p(x_t = . | x_{t-1} = row).
    """
    g = torch.Generator().manual_seed(seed)
    true = torch.tensor([[0.9, 0.1], [0.3, 0.7]])
    x = [0]
    for _ in range(length - 1):
        x.append(int(torch.multinomial(true[x[-1]], 1, generator=g)))
    x = torch.tensor(x)
    logits = torch.zeros(2, 2, requires_grad=True)
    opt = torch.optim.Adam([logits], lr=0.1)
    losses = []
    for _ in range(steps):
        log_p = torch.log_softmax(logits, dim=1)[x[:-1], x[1:]]  # log p(x_t | x_{t-1})
        loss = sign * log_p.mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return true, torch.softmax(logits.detach(), 1), losses


# ----------------------------------------------------------------------------- results files


def write_results(path: Path, setup: Setup, rows: list[dict], seconds: float, command: str) -> dict:
    """Write the JSON results file and a Markdown twin beside it; returns the JSON content."""
    summary = summarize(rows)
    result = {  # this file's own layout: the run time and a versions dict follow the date
        "experiment": "mode-collapse", **provenance(command, machine={}, date_format="%Y-%m-%d %H:%M:%S UTC"),
        "run_time_seconds": round(seconds, 1), "environment": versions(),
        "setup": dataclasses.asdict(setup), "configs": {k: CONFIGS[k] for k in setup.configs},
        "summary": summary, "goal": GOAL, "goal_check": goal_check(summary), "runs": rows,
    }
    path = save_results(result, path)
    md = [f"# Mode-collapse experiment ({path.stem})", "",
          f"- command: `{command}`", f"- date: {result['date']}",
          f"- run time: {seconds / 60:.1f} min", f"- environment: {result['environment']}",
          f"- setup: {result['setup']}", "", "Mean ± std over seeds (2,500 samples per run):", "",
          markdown_table(table(summary)), "", "Goal check:", "",
          markdown_table([{"config": k, **v} for k, v in result["goal_check"].items()]), ""]
    path.with_suffix(".md").write_text("\n".join(md))
    return result


def load_mode_collapse(path: str | Path | None = None) -> dict:
    """Read a results file written by :func:`write_results` (default: the full profile's,
    :data:`MODE_COLLAPSE_PATH`), or an error that names the command that writes it."""
    return results.load_results(MODE_COLLAPSE_PATH if path is None else path, MODE_COLLAPSE_COMMAND)


#: the name the chapters call :func:`load_mode_collapse` by (``experiments.load_results(path)``); the
#: loader of every other results file is :func:`ganlib.chapters.results.load_results`
load_results = load_mode_collapse


def main(argv=None) -> None:
    """``python -m ganlib.chapters.experiments mode-collapse [--profile P] ...``: write a results file
    and its Markdown twin."""
    parser, sub = command_parser("python -m ganlib.chapters.experiments", __doc__)
    mc = sub.add_parser("mode-collapse", help="train every configuration on the ring and grid, over seeds")
    mc.add_argument("--profile", choices=sorted(PROFILES), default="full")
    mc.add_argument("--seeds", type=POSITIVE_INT, default=None, help="number of seeds (default: the profile's)")
    mc.add_argument("--steps", type=POSITIVE_INT, default=None)
    mc.add_argument("--configs", type=CommaList(CONFIGS), default=None,
                    help=f"comma-separated subset of {','.join(CONFIGS)}")
    mc.add_argument("--datasets", type=CommaList(DATASETS), default=None, help="comma-separated subset of ring,grid")
    mc.add_argument("--threads", type=POSITIVE_INT, default=1, help="torch CPU threads (per worker)")
    mc.add_argument("--workers", type=POSITIVE_INT, default=1, help="runs in parallel processes (same rows as one)")
    mc.add_argument("--out", default=None, help="results file, .json; a Markdown twin (.md) is written beside it "
                    "(default book/results/mode_collapse_<profile>.json)")
    command = "python -m ganlib.chapters.experiments " + " ".join(argv if argv is not None else sys.argv[1:])
    run_command(parser, lambda args: _mode_collapse(args, command), argv)


def _mode_collapse(args, command: str) -> None:
    out = Path(args.out) if args.out else RESULTS_DIR / f"mode_collapse_{args.profile}.json"
    if out.suffix.lower() == ".md":
        raise UsageError(f"--out {out}: the results are JSON, with a Markdown twin beside them; give a .json name")
    check_output_file(out, "--out")
    check_output_file(out.with_suffix(".md"), "--out's Markdown twin")
    torch.set_num_threads(args.threads)
    setup = PROFILES[args.profile]
    changes = {}
    if args.seeds is not None:
        changes["seeds"] = tuple(range(args.seeds))
    if args.steps is not None:
        changes["steps"] = args.steps
    if args.configs:
        changes["configs"] = tuple(args.configs)
    if args.datasets:
        changes["datasets"] = tuple(args.datasets)
    setup = dataclasses.replace(setup, **changes)
    start = time.time()
    rows = run_mode_collapse(setup, workers=args.workers)
    result = write_results(out, setup, rows, time.time() - start, command)
    print(markdown_table(table(result["summary"])))
    print(f"wrote {out} and {out.with_suffix('.md')} in {result['run_time_seconds'] / 60:.1f} min")


if __name__ == "__main__":
    main()
