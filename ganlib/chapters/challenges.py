"""The "Challenges" chapters: GAN training failures, each reproduced by a run, and what fixes them.

* :func:`example_dcgan_run` -- PyTorch's DCGAN example (``pytorch/examples/dcgan``) on MNIST at its
  defaults, with one change at a time from :data:`DCGAN_FIXES`; its results command
  ``python -m ganlib.chapters.challenges dcgan-failure`` (64x64 images: too slow for the quick profile).
* :func:`toy_grid` and :func:`width_study` -- the learning-rate ratio x Adam beta1 grid, and network
  widths, on the 8-Gaussian ring, by modes captured; their full-budget results command
  ``python -m ganlib.chapters.challenges hyperparameters``.
* :func:`collapsed_mnist_run` and :func:`label_histogram` -- a collapsed MNIST GAN and the digits it makes.
* :func:`small_data_run` -- D on a few hundred images: accuracy on its training reals vs held-out reals;
  its results command ``python -m ganlib.chapters.challenges small-data``.
* :func:`checkerboard_score` and :func:`overlap_counts` -- the artefacts of transposed convolutions.
"""
from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .. import pretrained
from ..classifier import classify, load_mnist_classifier
from ..command import POSITIVE_INT, check_output_file, number_type
from ..data import load_mnist, random_subset
from ..env import seed_everything
from ..losses import discriminator_loss, generator_loss, r1_penalty
from ..models import DCGANDiscriminator, DCGANGenerator
from ..train import GANConfig, GANTrainer
from .experiments import DATASETS, Setup, train_toy_gan
from .parallel import map_jobs
from .results import RESULTS_DIR, add_command, command_parser, load_results, provenance, run_command, save_results

DCGAN_FAILURE_PATH = RESULTS_DIR / "dcgan_failure.json"
DCGAN_FAILURE_COMMAND = "python -m ganlib.chapters.challenges dcgan-failure"

# ----------------------------------------------------------------------------- vanishing gradients

#: The example's defaults (``pytorch/examples/dcgan/main.py``): 64x64 images, nz=100, ngf=ndf=64,
#: batch 64, Adam lr 2e-4 and betas (0.5, 0.999) for both networks, D ending in a sigmoid, BCELoss.
EXAMPLE_DEFAULTS = {"image_size": 64, "latent_dim": 100, "width": 64, "batch_size": 64, "lr_g": 2e-4,
                    "lr_d": 2e-4, "betas": (0.5, 0.999)}

#: One change to the example at a time (the remedies the chapter measures).
DCGAN_FIXES: dict[str, dict] = {
    "the example": {},
    "loss on logits": {"logits": True},               # ganlib's nonsaturating loss: BCEWithLogits
    "D's lr / 4": {"lr_d": 5e-5},                      # learning-rate balance: a slower discriminator
    "label smoothing 0.9": {"real_label": 0.9},        # one-sided (Salimans et al. 2016)
    "instance noise 0.1": {"instance_noise": 0.1},     # N(0, 0.1^2) on both of D's inputs (Sønderby et al. 2017)
    "spectral norm": {"spectral_norm": True},          # SN-GAN's D: no batch norm (Miyato et al. 2018)
    "R1, gamma 10": {"r1_gamma": 10.0},                # Mescheder et al. 2018, eq. 9
}

D_WINS = 1e-3  # D(G(z)) below this: the discriminator rejects every fake


def example_dcgan_run(fix: dict | None = None, iterations: int = 200, seed: int = 0, images: torch.Tensor | None = None,
                      keep: int = 8) -> dict:
    """PyTorch's DCGAN example on MNIST, one iteration of its loop per step, with ``fix`` applied.

    The loop is the example's: D's step is ``BCELoss(D(x), 1) + BCELoss(D(G(z).detach()), 0)``, G's
    step ``BCELoss(D(G(z)), 1)`` on the same fakes, with D ending in a sigmoid. ``fix`` changes one
    thing (keys of :data:`DCGAN_FIXES`'s values): ``logits`` (the same losses from logits,
    ``BCEWithLogitsLoss``), ``lr_d``, ``real_label``, ``instance_noise`` (std), ``spectral_norm``,
    ``r1_gamma``. ``images`` are 64x64 MNIST images in [-1, 1] (default: the training set, resized
    as the example's ``transforms.Resize(64)`` does). Returns per-iteration lists ``loss_d``,
    ``loss_g``, ``d_x``, ``d_g_z`` (mean D(G(z)) in D's step, as the example prints) and
    ``g_grad_norm``, and ``samples``: ``keep`` images at the end, 32x32 (average-pooled) uint8 lists.
    """
    fix = dict(fix or {})
    unknown = set(fix) - {"logits", "lr_d", "real_label", "instance_noise", "spectral_norm", "r1_gamma"}
    if unknown:
        raise ValueError(f"unknown changes {sorted(unknown)}; use keys of the DCGAN_FIXES entries")
    cfg = {**EXAMPLE_DEFAULTS, **{k: v for k, v in fix.items() if k in EXAMPLE_DEFAULTS}}
    if images is None:
        images = mnist_64()
    gen = seed_everything(seed)
    G = DCGANGenerator(cfg["latent_dim"], cfg["image_size"], 1, cfg["width"])
    D = DCGANDiscriminator(cfg["image_size"], 1, cfg["width"], spectral_norm=fix.get("spectral_norm", False))
    opt_g = torch.optim.Adam(G.parameters(), cfg["lr_g"], betas=cfg["betas"])
    opt_d = torch.optim.Adam(D.parameters(), cfg["lr_d"], betas=cfg["betas"])
    # BCELoss on sigmoid outputs clamps log(p) at -100 and its backward divides by max(p(1 - p), eps):
    # the example's saturation. The logits version computes the same losses without the clamp.
    bce = (nn.BCEWithLogitsLoss() if fix.get("logits") else lambda logits, y: F.binary_cross_entropy(logits.sigmoid(), y))
    noise_std, real_label = fix.get("instance_noise", 0.0), fix.get("real_label", 1.0)
    n = cfg["batch_size"]
    ones, zeros = torch.ones(n), torch.zeros(n)
    noisy = (lambda x: x + noise_std * torch.randn(x.shape, generator=gen)) if noise_std else (lambda x: x)
    out = {k: [] for k in ("loss_d", "loss_g", "d_x", "d_g_z", "g_grad_norm")}
    for _ in range(iterations):
        real = images[torch.randint(len(images), (n,), generator=gen)]
        opt_d.zero_grad(set_to_none=True)
        logits_real = D(noisy(real))
        fake = G(torch.randn(n, cfg["latent_dim"], generator=gen))
        logits_fake = D(noisy(fake.detach()))
        loss_d = bce(logits_real, ones * real_label) + bce(logits_fake, zeros)
        if fix.get("r1_gamma"):
            loss_d = loss_d + fix["r1_gamma"] / 2 * r1_penalty(D, real)
        loss_d.backward()
        opt_d.step()
        opt_g.zero_grad(set_to_none=True)
        loss_g = bce(D(noisy(fake)), ones)
        loss_g.backward()
        opt_g.step()
        out["loss_d"].append(loss_d.item())
        out["loss_g"].append(loss_g.item())
        out["d_x"].append(float(logits_real.detach().sigmoid().mean()))
        out["d_g_z"].append(float(logits_fake.detach().sigmoid().mean()))
        out["g_grad_norm"].append(float(torch.stack([p.grad.norm() for p in G.parameters()]).norm()))
    G.eval()
    with torch.no_grad():
        grid = F.avg_pool2d(G(torch.randn(keep, cfg["latent_dim"], generator=gen)), 2)  # 32x32: a small file
    out = {k: [float(f"{v:.5g}") for v in values] for k, values in out.items()}
    out["samples"] = ((grid.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).squeeze(1).tolist()
    return out


def mnist_64(n: int | None = None) -> torch.Tensor:
    """MNIST training images resized to 64x64 (bilinear, as ``transforms.Resize(64)``), in [-1, 1]."""
    images = load_mnist("train", download=False)[0]
    if n is not None:
        images = images[:n]
    return F.interpolate(images, size=64, mode="bilinear", align_corners=False).clamp(-1, 1)


def failure_summary(run: dict, after: int = 100) -> dict:
    """Numbers of one :func:`example_dcgan_run`: the first iteration where D wins (D(G(z)) < 1e-3),
    the largest G loss and where, the fraction of iterations from ``after`` on that D wins, and
    the median gradient norm of G there."""
    d_g_z, loss_g, grad = run["d_g_z"], run["loss_g"], run["g_grad_norm"]
    late = range(min(after, len(d_g_z)), len(d_g_z))
    first = next((i for i, v in enumerate(d_g_z) if v < D_WINS), None)
    peak = max(range(len(loss_g)), key=loss_g.__getitem__)
    late_grad = sorted(grad[i] for i in late)
    return {"first_d_wins": first, "max_loss_g": loss_g[peak], "max_loss_g_at": peak,
            "d_wins_late": sum(d_g_z[i] < D_WINS for i in late) / max(len(late), 1),
            "median_g_grad_late": late_grad[len(late_grad) // 2] if late_grad else float("nan"),
            "mean_d_g_z_late": sum(d_g_z[i] for i in late) / max(len(late), 1)}


def _failure_job(job):
    name, iterations, seed = job
    start = time.perf_counter()
    run = example_dcgan_run(DCGAN_FIXES[name], iterations, seed)
    run["seconds"] = round(time.perf_counter() - start, 1)
    print(f"{name}: {failure_summary(run)} in {run['seconds']:.0f} s", flush=True)
    return name, run


def dcgan_failure(iterations: int = 200, seed: int = 0, fixes=tuple(DCGAN_FIXES), workers: int = 1,
                  command: str = DCGAN_FAILURE_COMMAND) -> dict:
    """Every entry of :data:`DCGAN_FIXES` for ``iterations`` iterations, with provenance; ``workers``
    parallel processes give the same numbers as one."""
    start = time.perf_counter()
    runs = dict(map_jobs(_failure_job, [(name, iterations, seed) for name in fixes], workers))
    return {**provenance(command, start), "iterations": iterations, "seed": seed, "example": EXAMPLE_DEFAULTS,
            "fixes": {name: DCGAN_FIXES[name] for name in fixes}, "runs": {name: runs[name] for name in fixes}}


def load_dcgan_failure(path: Path = DCGAN_FAILURE_PATH) -> dict:
    """The committed :func:`dcgan_failure` results, or an error that names the command that writes them."""
    return load_results(path, DCGAN_FAILURE_COMMAND)


# ----------------------------------------------------------------------------- hyperparameters


def _toy_job(job) -> tuple[float, float]:
    """One toy run: ``(config, dataset, seed, setup)`` -> (modes captured, high-quality %)."""
    config, dataset, seed, setup = job
    _, cov = train_toy_gan(config, dataset, seed, setup)
    return cov.modes_captured, 100 * cov.high_quality_fraction


def _mean_over_seeds(jobs: list, seeds, workers: int) -> list[tuple[float, float]]:
    """Mean (modes, hq) of each consecutive block of ``len(seeds)`` jobs."""
    results = list(map_jobs(_toy_job, jobs, workers))
    n = len(seeds)
    return [tuple(sum(r[k] for r in results[i:i + n]) / n for k in range(2)) for i in range(0, len(results), n)]


def toy_grid(lr_ratios=(0.25, 1.0, 4.0), beta1s=(0.0, 0.5, 0.9), dataset: str = "ring", seeds=(0,),
             steps: int = 500, lr_g: float = 1e-3, workers: int = 1) -> dict:
    """Modes captured on a toy mixture for each (lr_D / lr_G, Adam beta1), the losses chapter's
    non-saturating setup otherwise (:class:`~ganlib.chapters.experiments.Setup`).

    Returns ``{"modes": tensor (len(lr_ratios), len(beta1s)) of the mean over seeds, "hq": the same
    for the high-quality percentage, "n_modes": K, ...}``. ``workers`` parallel processes give the
    same numbers as one.
    """
    setup = dataclasses.replace(Setup(), steps=steps, lr=lr_g)
    cells = [(ratio, beta1) for ratio in lr_ratios for beta1 in beta1s]
    jobs = [({"loss": "nonsaturating", "lr_d_ratio": ratio, "betas": (beta1, 0.999)}, dataset, seed, setup)
            for ratio, beta1 in cells for seed in seeds]
    means = torch.tensor(_mean_over_seeds(jobs, seeds, workers)).reshape(len(lr_ratios), len(beta1s), 2)
    return {"modes": means[..., 0], "hq": means[..., 1], "n_modes": len(DATASETS[dataset]().centers),
            "lr_ratios": list(lr_ratios), "beta1s": list(beta1s), "steps": steps, "seeds": list(seeds)}


#: The "stronger networks" remedy: G's and D's hidden widths (the losses chapter uses the middle one).
WIDTHS = {"small (32, 32)": (32, 32), "losses chapter (128, 128, 128)": (128, 128, 128),
          "wide (512, 512, 512)": (512, 512, 512)}


def width_study(widths: dict = WIDTHS, dataset: str = "ring", seeds=(0,), steps: int = 3000, lr: float = 1e-3,
                workers: int = 1) -> dict:
    """Modes captured and high-quality % for each entry of ``widths`` (the same hidden sizes for G
    and D), the losses chapter's non-saturating setup otherwise: ``{name: (modes, hq)}``."""
    jobs = [("nonsaturating", dataset, seed,
             dataclasses.replace(Setup(), steps=steps, lr=lr, g_hidden=hidden, d_hidden=hidden))
            for hidden in widths.values() for seed in seeds]
    return dict(zip(widths, _mean_over_seeds(jobs, seeds, workers)))


HYPERPARAMETERS_PATH = RESULTS_DIR / "hyperparameters.json"
HYPERPARAMETERS_COMMAND = "python -m ganlib.chapters.challenges hyperparameters"


def hyperparameter_study(steps: int = 3000, seeds=(0, 1, 2), workers: int = 1,
                         command: str = HYPERPARAMETERS_COMMAND) -> dict:
    """:func:`toy_grid` and :func:`width_study` at the full budget, with provenance."""
    start = time.perf_counter()
    grid = toy_grid(seeds=seeds, steps=steps, workers=workers)
    widths = width_study(seeds=seeds, steps=steps, workers=workers)
    return {**provenance(command, start), "steps": steps, "seeds": list(seeds), "lr_g": 1e-3,
            "grid": {**grid, "modes": grid["modes"].tolist(), "hq": grid["hq"].tolist()},
            "widths": {name: {"hidden": list(WIDTHS[name]), "modes": m, "hq": q} for name, (m, q) in widths.items()}}


def load_hyperparameters(path: Path = HYPERPARAMETERS_PATH) -> dict:
    """The committed :func:`hyperparameter_study` results, or an error that names the command that writes them."""
    return load_results(path, HYPERPARAMETERS_COMMAND)


# ----------------------------------------------------------------------------- mode collapse on MNIST


@torch.no_grad()
def label_histogram(generator: nn.Module, n: int = 1000, seed: int = 0, classifier=None) -> torch.Tensor:
    """How many of ``n`` samples the book's MNIST classifier calls each digit: a tensor of 10 counts."""
    z = torch.randn(n, generator.latent_dim, generator=torch.Generator().manual_seed(seed))
    was_training = generator.training
    images = generator.eval()(z)
    generator.train(was_training)
    _, probs = classify(classifier or load_mnist_classifier(), images)
    return torch.bincount(probs.argmax(1), minlength=10)


def collapsed_mnist_run(g_steps: int = 200, d_warmup: int = 100, update_d: bool = False, seed: int = 0,
                        lr: float = 2e-4, batch_size: int = 64, images: torch.Tensor | None = None) -> dict:
    """The shipped ``dcgan-mnist`` generator trained against a discriminator that stops learning.

    A fresh D first learns for ``d_warmup`` steps to tell MNIST from the shipped G's samples (G
    fixed). Then G takes ``g_steps`` non-saturating steps against it: with ``update_d=False`` D is
    frozen, so G's best response is to put every sample where this D scores highest, which is a few
    images (Goodfellow 2016, sec. 5.1.1); with ``update_d=True`` D keeps alternating with G, as in
    Algorithm 1. Returns ``histograms`` (label counts of 1,000 samples before and after), the
    generator and the last step's ``d_fake``.
    """
    gen = seed_everything(seed)
    G = pretrained.load("dcgan-mnist").train()
    D = DCGANDiscriminator(28, 1, 32)
    if images is None:
        images = load_mnist("train", download=False)[0]
    opt_g = torch.optim.Adam(G.parameters(), lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr, betas=(0.5, 0.999))
    before = label_histogram(G, seed=seed + 1)

    def d_update():
        real = images[torch.randint(len(images), (batch_size,), generator=gen)]
        with torch.no_grad():
            fake = G(torch.randn(batch_size, G.latent_dim, generator=gen))
        opt_d.zero_grad(set_to_none=True)
        discriminator_loss("nonsaturating", D(real), D(fake)).backward()
        opt_d.step()

    for _ in range(d_warmup):
        d_update()
    d_fake = []
    for _ in range(g_steps):
        if update_d:
            d_update()
        opt_g.zero_grad(set_to_none=True)
        logits = D(G(torch.randn(batch_size, G.latent_dim, generator=gen)))
        generator_loss("nonsaturating", logits).backward()
        opt_g.step()
        d_fake.append(logits.detach().sigmoid().mean().item())
    return {"histograms": {"before": before, "after": label_histogram(G, seed=seed + 1)}, "generator": G.eval(),
            "d_fake": d_fake}


# ----------------------------------------------------------------------------- small data


class RandomTranslate(nn.Module):
    """Differentiable augmentation (DiffAugment, Zhao et al. 2020): shift each image by up to
    ``shift`` pixels (zero padding) in training mode, identity in eval mode.

    Wrapping D in it, ``nn.Sequential(RandomTranslate(), D)``, augments reals and fakes alike, and
    G's gradient flows through the shift, so G is not taught to make shifted digits.
    """

    def __init__(self, shift: int = 2):
        super().__init__()
        self.shift = shift

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Each image shifted by its own random (dx, dy) in [-shift, shift]; emptied pixels are -1.

        Shape:
            - x: (N, C, H, W)
            - output: (N, C, H, W)
        """
        if not self.training or self.shift == 0:
            return x
        n, _, h, w = x.shape
        s = self.shift
        padded = F.pad(x, (s, s, s, s), value=-1.0)  # -1: MNIST's background
        dx, dy = torch.randint(0, 2 * s + 1, (2, n), device=x.device)
        rows = (torch.arange(h, device=x.device)[None, :] + dy[:, None])[:, None, :, None]
        cols = (torch.arange(w, device=x.device)[None, :] + dx[:, None])[:, None, None, :]
        index = torch.arange(n, device=x.device)[:, None, None, None]
        return padded[index, torch.arange(x.shape[1], device=x.device)[None, :, None, None], rows, cols]


class RealAccuracy:
    """Trainer callback: every ``every`` steps, the fraction of images D calls real (D(x) > 0.5) on
    its training images, on held-out real images and on fresh fakes (D in eval mode: no augmentation)."""

    def __init__(self, train: torch.Tensor, held_out: torch.Tensor, every: int = 100):
        self.train, self.held_out, self.every = train, held_out, every
        self.rows = []

    @torch.no_grad()
    def __call__(self, trainer) -> None:
        if trainer.step % self.every:
            return
        D = trainer.discriminator.eval()  # eval: RandomTranslate is the identity, D sees the images as they are
        fakes = trainer.sample(len(self.held_out), ema=False, seed=5)
        calls = {name: (D(x) > 0).float().mean().item()
                 for name, x in [("train", self.train), ("held_out", self.held_out), ("fake", fakes)]}
        trainer.discriminator.train()
        self.rows.append({"step": trainer.step, **calls})


SMALL_DATA_FIXES = {"no fix": {}, "augmentation (shifts of 2 px)": {"augment": 2}, "R1, gamma 1": {"r1_weight": 0.5}}


SMALL_DATA_HELD_OUT = 512  # held-out training images D's calls are measured on
SMALL_DATA_EVERY = 200  # steps between measurements in small_data_study


def small_data_run(n_train: int = 256, steps: int = 1500, fix: dict | None = None, seed: int = 0,
                   n_held_out: int = SMALL_DATA_HELD_OUT, every: int = 100, base_width: int = 16) -> dict:
    """A 28x28 DCGAN on ``n_train`` MNIST images; D's calls on training and held-out reals over training.

    ``fix`` is ``{}``, ``{"augment": pixels}`` (:class:`RandomTranslate` around D) or
    ``{"r1_weight": w}`` (R1; GANConfig's weight is gamma / 2). D has no batch norm (layer norm),
    so its eval-mode calls equal its training-mode calls. Returns the :class:`RealAccuracy` rows
    and the generator.
    """
    fix = dict(fix or {})
    images = load_mnist("train", download=False)[0]
    order = random_subset(len(images), n_train + n_held_out, seed=seed)
    train, held_out = images[order[:n_train]], images[order[n_train:]]
    seed_everything(seed)
    G = DCGANGenerator(64, 28, 1, base_width)
    D = DCGANDiscriminator(28, 1, base_width, norm="layer")
    if fix.get("augment"):
        D = nn.Sequential(RandomTranslate(fix["augment"]), D)
    tracker = RealAccuracy(train, held_out, every)
    cfg = GANConfig(steps=steps, batch_size=64, r1_weight=fix.get("r1_weight", 0.0), bf16=False, device="cpu",
                    seed=seed, log_every=every, progress=False)
    GANTrainer(G, D, train, cfg, callbacks=[tracker]).fit()
    return {"rows": tracker.rows, "generator": G.eval(), "n_train": n_train}


SMALL_DATA_PATH = RESULTS_DIR / "small_data.json"
SMALL_DATA_COMMAND = "python -m ganlib.chapters.challenges small-data"


def small_data_study(n_train: int = 256, steps: int = 4000, seed: int = 0, every: int = SMALL_DATA_EVERY,
                     command: str = SMALL_DATA_COMMAND) -> dict:
    """:func:`small_data_run` for every entry of :data:`SMALL_DATA_FIXES`, with provenance."""
    start = time.perf_counter()
    runs = {}
    for name, fix in SMALL_DATA_FIXES.items():
        t = time.perf_counter()
        run = small_data_run(n_train, steps, fix, seed, every=every)
        runs[name] = {"rows": run["rows"], "seconds": round(time.perf_counter() - t, 1),
                      "label_histogram": label_histogram(run["generator"]).tolist()}
        print(f"{name}: {run['rows'][-1]} in {runs[name]['seconds']:.0f} s", flush=True)
    return {**provenance(command, start), "n_train": n_train, "steps": steps, "seed": seed,
            "fixes": SMALL_DATA_FIXES, "runs": runs}


def load_small_data(path: Path = SMALL_DATA_PATH) -> dict:
    """The committed :func:`small_data_study` results, or an error that names the command that writes them."""
    return load_results(path, SMALL_DATA_COMMAND)


# ----------------------------------------------------------------------------- checkerboard artefacts


def overlap_counts(size: int = 8, kernel: int = 3, stride: int = 2, padding: int = 1) -> torch.Tensor:
    """How many kernel positions write each output pixel of a transposed convolution: the output of
    ``ConvTranspose2d`` with all-ones weights on an all-ones ``size x size`` input (Odena et al. 2016).
    Uneven counts when ``kernel`` is not a multiple of ``stride``: a checkerboard before any training."""
    layer = nn.ConvTranspose2d(1, 1, kernel, stride, padding, bias=False)
    nn.init.ones_(layer.weight)
    with torch.no_grad():
        return layer(torch.ones(1, 1, size, size))[0, 0]


class ResizeConvGenerator(nn.Module):
    """DCGANGenerator's layout with each stride-2 transposed convolution replaced by a nearest-
    neighbour 2x upsampling and a 3x3 convolution ("resize-convolution", Odena et al. 2016)."""

    def __init__(self, latent_dim: int = 64, base_width: int = 32, batchnorm: bool = True):
        super().__init__()
        self.latent_dim, self.num_classes = latent_dim, 0
        width = base_width * 2
        norm = nn.BatchNorm2d if batchnorm else (lambda _: nn.Identity())
        layers = [nn.ConvTranspose2d(latent_dim, width, 7, 1, 0), norm(width), nn.ReLU(True)]  # z -> 7x7
        for out_ch, last in [(width // 2, False), (1, True)]:  # 7 -> 14 -> 28
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(width, out_ch, 3, 1, 1)]
            layers += [nn.Tanh()] if last else [norm(out_ch), nn.ReLU(True)]
            width = out_ch
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1].

        Shape:
            - z: (N, latent_dim)
            - output: (N, 1, 28, 28)
        """
        return self.net(z[:, :, None, None])


def checkerboard_score(images: torch.Tensor) -> float:
    """The share of each image's spectral power (mean removed) at the period-2 frequencies, (N/2, 0),
    (0, N/2) and (N/2, N/2): what a checkerboard pattern puts there, averaged over the images.
    A constant image with a +-1 checkerboard added scores 1; smooth images score near 0."""
    x = images.float().flatten(0, -3)
    x = x - x.mean(dim=(-2, -1), keepdim=True)
    power = torch.fft.fft2(x).abs().pow(2)
    h, w = x.shape[-2:]
    if h % 2 or w % 2:
        raise ValueError(f"checkerboard_score needs even image sides; got {h}x{w}")
    nyquist = power[..., h // 2, 0] + power[..., 0, w // 2] + power[..., h // 2, w // 2]
    return (nyquist / power.sum(dim=(-2, -1)).clamp_min(1e-12)).mean().item()


# ----------------------------------------------------------------------------- the command


def main(argv=None) -> None:
    """``python -m ganlib.chapters.challenges dcgan-failure | small-data | hyperparameters``: write a results file."""
    parser, sub = command_parser("python -m ganlib.chapters.challenges", __doc__)
    df = add_command(sub, "dcgan-failure", "PyTorch's DCGAN example on 64x64 MNIST, and one fix at a time",
                     DCGAN_FAILURE_PATH, iterations=200, seed=0)
    sd = add_command(sub, "small-data", "a DCGAN on a few hundred MNIST images: D's accuracy on held-out reals",
                     SMALL_DATA_PATH, n_train=256, steps=4000, seed=0, types={
                         "n_train": number_type(int, 1, True, f"an integer from 1 to {60_000 - SMALL_DATA_HELD_OUT} "
                                                f"(MNIST's 60,000 training images less {SMALL_DATA_HELD_OUT} held out)",
                                                highest=60_000 - SMALL_DATA_HELD_OUT),
                         "steps": number_type(int, SMALL_DATA_EVERY, True, f"an integer >= {SMALL_DATA_EVERY} "
                                              f"(D is measured every {SMALL_DATA_EVERY} steps)")})
    hp = add_command(sub, "hyperparameters", "the lr ratio x Adam beta1 grid and the width study, 2D ring",
                     HYPERPARAMETERS_PATH, steps=3000)
    hp.add_argument("--seeds", type=POSITIVE_INT, default=3, help="seeds 0 .. N-1 per cell")
    for p in (df, hp):
        p.add_argument("--workers", type=POSITIVE_INT, default=1,
                       help="runs in parallel processes (same numbers as one)")
    for p in (df, sd, hp):
        p.add_argument("--threads", type=POSITIVE_INT, default=1, help="torch CPU threads (per worker)")
    command = "python -m ganlib.chapters.challenges " + " ".join(argv if argv is not None else sys.argv[1:])
    run_command(parser, lambda args: _write_results(args, command), argv)


def _write_results(args, command: str) -> None:
    check_output_file(args.out, "--out")
    torch.set_num_threads(args.threads)  # workers inherit this count (ganlib.chapters.parallel)
    if args.command == "small-data":
        result = small_data_study(args.n_train, args.steps, args.seed, command=command)
    elif args.command == "hyperparameters":
        result = hyperparameter_study(args.steps, tuple(range(args.seeds)), args.workers, command=command)
    else:
        result = dcgan_failure(args.iterations, args.seed, workers=args.workers, command=command)
    save_results(result, args.out, compact=True)  # compact: per-step lists
    print(f"wrote {args.out} in {result['wall_time_s'] / 60:.1f} min")


if __name__ == "__main__":
    main()
