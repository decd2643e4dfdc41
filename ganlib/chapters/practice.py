"""Helpers of the chapter "Practice on MNIST" (book/practice_mnist.ipynb).

* the source articles' code defects, each as a small runnable demonstration: a softmax output
  (:class:`SoftmaxImages`), Keras-style layers rebuilt on every call (:func:`rebuilt_every_call`),
  a dense discriminator without ``Flatten`` (:func:`no_flatten_discriminator`), and
  ``BCELoss`` on sigmoid outputs vs logits (:func:`bce_generator_gradient`);
* DCGAN arithmetic: :func:`transposed_conv_size` and a layer-by-layer table (:func:`layer_table`);
* a short training run that records what the chapter plots (:func:`dynamics_run`) and a quick MNIST
  FID on a random, seeded subset (:func:`quick_fid`);
* what a trained generator has learned: latent interpolation (:func:`interpolate`) and the latent
  explorer (:func:`latent_explorer`); its nearest training images come from
  :func:`ganlib.metrics.nearest_neighbours`;
* two commands with results files in ``book/results/``: ``python -m ganlib.chapters.practice
  ablation`` (Radford et al.'s guidelines, one at a time: ``dcgan_ablation.json``) and ``ema-bn
  CHECKPOINT`` (a run's raw, EMA and BN-refreshed EMA generators: ``ema_batchnorm.json``). The FID
  calibration the chapter prints comes from :mod:`ganlib.chapters.evaluation`.

The training itself is ganlib's: ``python -m ganlib train`` and :mod:`ganlib.pretrained`.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import torch
from torch import nn

from .. import models, pretrained
from ..checkpoint import load_checkpoint, load_model
from ..classifier import classify, load_mnist_classifier
from ..command import UsageError, check_output_file
from ..data import load_mnist, random_subset
from ..env import seed_everything
from ..losses import generator_loss
from ..metrics import frechet_distance_from_features
from ..pretrained import RECIPES
from ..spec import DCGAN_LAYOUT
from ..train import GANConfig, GANTrainer, SampleSnapshots, eval_mode
from .interactive import WithStaticFallback, figure_html
from .plots import show_images
from .results import (RESULTS_DIR, add_command, command_parser, cpu_machine, load_results, provenance, run_command,
                      save_results)

ABLATION_PATH = RESULTS_DIR / "dcgan_ablation.json"
ABLATION_COMMAND = "python -m ganlib.chapters.practice ablation"

# ----------------------------------------------------------------------------- the sources' defects


class SoftmaxImages(nn.Module):
    """Source 003's generator output, taken at its word: a softmax over the 784 pixels.

    The softmax makes the pixels positive and sum to 1 (on the [0, 1] scale; shown here mapped to
    ganlib's [-1, 1] as 2p - 1). A real digit's pixels sum to about 100 on that scale.
    """

    def __init__(self, generator: nn.Module):
        super().__init__()
        self.generator, self.latent_dim = generator, generator.latent_dim

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """2 softmax(G(z)) - 1 over each image's pixels: the generator's shape, values in (-1, 1]."""
        logits = self.generator(z)
        p = torch.softmax(logits.flatten(1), dim=1).view_as(logits)
        return 2 * p - 1


def pixel_sums(images: torch.Tensor) -> torch.Tensor:
    """Each image's pixel sum on the [0, 1] scale (images in [-1, 1])."""
    return ((images + 1) / 2).flatten(1).sum(1)


def mlp_run(softmax: bool, steps: int, seed: int = 0, images: torch.Tensor | None = None) -> dict:
    """A short MLP-GAN run (the source's 128-256-512-1024 generator) with a tanh or a softmax output,
    on ``images`` (default: the MNIST training set)."""
    seed_everything(seed)
    x = images if images is not None else load_mnist("train")[0]
    body = models.MLPGenerator(100, (1, 28, 28), hidden=(128, 256, 512, 1024), out_activation=None if softmax else "tanh",
                               batchnorm=True)
    G = SoftmaxImages(body) if softmax else body
    D = models.MLPDiscriminator((1, 28, 28), hidden=(512, 256, 128))
    trainer = GANTrainer(G, D, x, GANConfig(steps=steps, batch_size=64, seed=seed, progress=False, log_every=10))
    history = trainer.fit()
    return {"history": history, "samples": trainer.sample(32).cpu()}


def rebuilt_every_call(z: torch.Tensor) -> torch.Tensor:
    """Source 003's pattern in PyTorch: a function that *creates* its layers each time it is called.

    Every call draws new random weights, so the same z gives a different image each call and no
    optimiser ever sees the same weights twice. (Keras's ``Dense(...)(z)`` inside a function does
    the same.) The fix is a module that builds its layers once, in ``__init__``.
    """
    layer = nn.Linear(z.shape[1], 784)
    return torch.tanh(layer(z)).view(-1, 1, 28, 28)


def no_flatten_discriminator() -> nn.Module:
    """Source 003's discriminator applied to (N, 28, 28, 1) images without ``Flatten``: dense layers
    act on the last axis (one value per pixel), so it returns 784 "probabilities" per image."""
    return nn.Sequential(nn.Linear(1, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 128),
                         nn.ReLU(), nn.Linear(128, 1), nn.Sigmoid())


def bce_generator_gradient(logits: torch.Tensor) -> dict[str, torch.Tensor]:
    """d(generator loss)/d(logit) per fake, two ways, for the non-saturating loss -log D(G(z)).

    ``"sigmoid + BCELoss"``: D ends in a sigmoid and ``nn.BCELoss`` scores its output (PyTorch's
    DCGAN example, source 001). ``BCELoss`` divides by max(p (1 - p), 1e-12) in its backward pass,
    so once D(G(z)) < ~1e-12 (a loss above ~27.6) the gradient collapses towards zero.
    ``"logits (ganlib)"``: the loss computed from the logit (softplus), whose gradient tends to -1.
    """
    out = {}
    for name in ("sigmoid + BCELoss", "logits (ganlib)"):
        x = logits.detach().clone().requires_grad_(True)
        if name.startswith("sigmoid"):
            loss = nn.BCELoss(reduction="sum")(torch.sigmoid(x), torch.ones_like(x))
        else:
            loss = generator_loss("nonsaturating", x) * len(x)
        (out[name],) = torch.autograd.grad(loss, x)
    return out


# ----------------------------------------------------------------------------- DCGAN arithmetic


def transposed_conv_size(size: int, kernel: int, stride: int = 1, padding: int = 0, output_padding: int = 0,
                         dilation: int = 1) -> int:
    """Output side of ``nn.ConvTranspose2d``: (size - 1) stride - 2 padding + dilation (kernel - 1)
    + output_padding + 1 (the formula of PyTorch's documentation; Dumoulin & Visin 2016)."""
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


def conv_size(size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """Output side of ``nn.Conv2d``: floor((size + 2 padding - dilation (kernel - 1) - 1) / stride) + 1."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def layer_table(model: nn.Module, *inputs, **kwargs) -> list[dict]:
    """One row per layer of ``model.net`` (or ``.features``/``.head``): name, output shape, parameters."""
    rows, hooks = [], []
    layers = [m for m in model.modules() if not list(m.children()) and not isinstance(m, nn.Identity)]
    for layer in layers:
        def hook(module, _inputs, output, layer=layer):
            described = {nn.ConvTranspose2d: lambda m: f"ConvTranspose2d({m.in_channels}, {m.out_channels}, k={m.kernel_size[0]}, s={m.stride[0]}, p={m.padding[0]})",
                         nn.Conv2d: lambda m: f"Conv2d({m.in_channels}, {m.out_channels}, k={m.kernel_size[0]}, s={m.stride[0]}, p={m.padding[0]})",
                         nn.Linear: lambda m: f"Linear({m.in_features}, {m.out_features})"}
            text = described.get(type(module), lambda m: type(m).__name__)(module)
            rows.append({"layer": text, "output shape": tuple(output.shape[1:]),
                         "parameters": sum(p.numel() for p in module.parameters())})
        hooks.append(layer.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model.eval()(*inputs, **kwargs)
    finally:
        for h in hooks:
            h.remove()
    return rows


# ----------------------------------------------------------------------------- a short run, and quick FID


_QUICK_REFERENCE: dict[int, torch.Tensor] = {}


def quick_fid(images: torch.Tensor, n_reference: int = 2000) -> float:
    """FID of ``images`` against ``n_reference`` random MNIST test images (seed 0), in ganlib's
    classifier features: the quick-profile version of the book's MNIST FID (fewer images bias it
    upwards, so compare it only with other quick FIDs of the same sizes)."""
    classifier = load_mnist_classifier()
    if n_reference not in _QUICK_REFERENCE:
        test = load_mnist("test")[0]
        _QUICK_REFERENCE[n_reference] = classify(classifier, test[random_subset(len(test), n_reference)])[0]
    features, _ = classify(classifier, images)
    return frechet_distance_from_features(_QUICK_REFERENCE[n_reference], features)


class QuickFID:
    """Trainer callback: every ``every`` steps, the quick FID of ``n`` samples (raw and EMA)."""

    def __init__(self, every: int, n: int = 2000):
        self.every, self.n, self.rows = every, n, []

    def __call__(self, trainer) -> None:
        row = {"step": trainer.step, "raw": quick_fid(trainer.sample(self.n, ema=False, seed=11))}
        if trainer.ema is not None:
            row["ema"] = quick_fid(trainer.sample(self.n, seed=11))
        self.rows.append(row)


def shipped_layout(name: str = "dcgan-mnist") -> dict:
    """The layout of a shipped DCGAN recipe (:data:`ganlib.pretrained.RECIPES`), as keyword
    arguments of :func:`dcgan_trainer`: ``{"base_width": 32, "g_fc": 512, "d_fc": 512}``, say."""
    spec = RECIPES[name].spec
    return {field: getattr(spec, field) for field in spec.stated if field in ("base_width",) + DCGAN_LAYOUT}


def dcgan_trainer(steps: int, base_width: int = 32, seed: int = 0, snapshot_every: int = 0, fid_every: int = 0,
                  fid_samples: int = 2000, ema_decay: float = 0.999, conditional: bool = False, data=None,
                  g_width: int | None = None, d_width: int | None = None, g_fc: int = 0, d_fc: int = 0,
                  code_classes: int = 0, **config) -> GANTrainer:
    """The chapter's DCGAN on MNIST, as ``python -m ganlib train --dataset mnist --model dcgan`` builds it.

    ``g_width``/``d_width`` default to ``base_width``; ``g_fc``/``d_fc`` add the fully connected
    layers and ``code_classes`` an InfoGAN code (see :class:`ganlib.models.DCGANGenerator`; its
    weight is the config's ``info_weight``). ``data`` is (images, labels), by default the MNIST
    training set."""
    seed_everything(seed)
    data = data if data is not None else load_mnist("train")
    k = 10 if conditional else 0
    G = models.DCGANGenerator(100, 28, 1, g_width or base_width, num_classes=k,
                              batchnorm=config.pop("g_batchnorm", True), hidden=g_fc, code_classes=code_classes)
    D = models.DCGANDiscriminator(28, 1, d_width or base_width, num_classes=k, norm=config.pop("d_norm", None),
                                  hidden=d_fc, code_classes=code_classes)
    callbacks = ([SampleSnapshots(snapshot_every)] if snapshot_every else []) + ([QuickFID(fid_every, fid_samples)] if fid_every else [])
    cfg = GANConfig(**{"steps": steps, "batch_size": 64, "seed": seed, "progress": False, "log_every": 10,
                       "ema_decay": ema_decay, **config})
    return GANTrainer(G, D, data if conditional else data[0], cfg, callbacks)


def callback_of(trainer: GANTrainer, kind: type):
    """The trainer's first callback of type ``kind``."""
    return next(c for c in trainer.callbacks if isinstance(c, kind))


# ----------------------------------------------------------------------------- what the generator learned


def interpolate(z0: torch.Tensor, z1: torch.Tensor, steps: int = 8, spherical: bool = True) -> torch.Tensor:
    """``steps`` latent codes from z0 to z1 (each shape (latent_dim,)); spherical (slerp) by default.

    Slerp keeps the codes at the norm a Gaussian z has (about sqrt(latent_dim)); a straight line
    passes nearer the origin, through codes the generator rarely saw (White 2016).
    """
    t = torch.linspace(0, 1, steps)[:, None]
    if not spherical:
        return (1 - t) * z0 + t * z1
    omega = torch.arccos(torch.clamp(torch.dot(z0 / z0.norm(), z1 / z1.norm()), -1, 1))
    if omega.abs() < 1e-6:
        return (1 - t) * z0 + t * z1
    return (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / torch.sin(omega)


@torch.no_grad()
def code_grid(generator: nn.Module, columns: int = 10, seed: int = 5) -> torch.Tensor:
    """Images of a generator with an InfoGAN code: row k draws code value k, with the same noise
    in each column; shape (code_classes * columns, C, H, W)."""
    k = generator.code_classes
    noise = torch.randn(columns, generator.latent_dim, generator=torch.Generator().manual_seed(seed))
    z = torch.cat([generator.latent_with_code(noise, torch.full((columns,), value)) for value in range(k)])
    with eval_mode(generator):
        return generator(z)


def digits_per_code(codes: torch.Tensor, probabilities: torch.Tensor, code_classes: int) -> list[dict]:
    """For each code value: how many samples drew it, the digit the classifier reads most often in
    them, and that digit's share (1: the code is one digit).

    Args:
        codes: the code of each sample, int64, shape (N,).
        probabilities: the classifier's class probabilities of the samples, shape (N, classes).
        code_classes: the number of code values (a value no sample drew gets a row of 0 samples).
    """
    if codes.shape != probabilities.shape[:1]:
        raise ValueError(f"codes must have shape (N,) for probabilities of shape (N, classes); got "
                         f"{tuple(codes.shape)} and {tuple(probabilities.shape)}")
    digits = probabilities.argmax(1)
    rows = []
    for value in range(code_classes):
        counts = torch.bincount(digits[codes == value], minlength=probabilities.shape[1])
        total = int(counts.sum())
        rows.append({"code": value, "samples": total, "digit": int(counts.argmax()),
                     "share": float(counts.max()) / total if total else 0.0})
    return rows


@torch.no_grad()
def explorer_images(generator: nn.Module, seed_a: int, seed_b: int, t: float, shifts: list[float],
                    label: int | None = None) -> torch.Tensor:
    """One image: z = slerp(z_a, z_b, t), plus ``shifts[i]`` along latent axis i."""
    dim = generator.latent_dim
    za = torch.randn(dim, generator=torch.Generator().manual_seed(seed_a))
    zb = torch.randn(dim, generator=torch.Generator().manual_seed(seed_b))
    z = interpolate(za, zb, 101)[int(round(t * 100))].clone()  # t in steps of 0.01
    for i, s in enumerate(shifts):
        z[i] += s
    kw = {"labels": torch.tensor([label])} if getattr(generator, "num_classes", 0) else {}
    return generator.eval()(z[None], **kw)


def latent_explorer(generators: dict, n_axes: int = 3):
    """Sliders over a generator's latent space, with a static grid for the site.

    ``generators`` maps a name to a generator; a conditional one adds a class picker. The live
    view: two seeds, the interpolation position t between them, and ``n_axes`` shifts along the
    first latent axes. The static view: for each generator, an interpolation strip and, for the
    conditional one, a row per digit.
    """
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    names = list(generators)
    picker = widgets.Dropdown(options=names, description="model")
    seed_a = widgets.IntSlider(0, 0, 99, description="seed A")
    seed_b = widgets.IntSlider(1, 0, 99, description="seed B")
    t = widgets.FloatSlider(0.0, min=0.0, max=1.0, step=0.05, description="A -> B")
    shifts = [widgets.FloatSlider(0.0, min=-3.0, max=3.0, step=0.25, description=f"z[{i}] +") for i in range(n_axes)]
    label = widgets.IntSlider(0, 0, 9, description="digit")

    def draw(model, seed_a, seed_b, t, label, **shift):
        G = generators[model]
        image = explorer_images(G, seed_a, seed_b, t, [shift[f"s{i}"] for i in range(n_axes)], label)
        fig, ax = plt.subplots(figsize=(2.4, 2.4))
        ax.imshow(((image[0, 0] + 1) / 2).cpu().numpy(), cmap="gray", vmin=0, vmax=1)
        ax.set_axis_off()
        digit = f", digit {label}" if getattr(G, "num_classes", 0) else ""
        ax.set_title(f"{model}{digit}", fontsize=8)
        plt.show()

    live = widgets.interactive(draw, model=picker, seed_a=seed_a, seed_b=seed_b, t=t, label=label,
                               **{f"s{i}": s for i, s in enumerate(shifts)})

    rows = []
    for name, G in generators.items():
        za = torch.randn(G.latent_dim, generator=torch.Generator().manual_seed(0))
        zb = torch.randn(G.latent_dim, generator=torch.Generator().manual_seed(1))
        codes = interpolate(za, zb, 10)
        kw = {"labels": torch.full((10,), 3)} if getattr(G, "num_classes", 0) else {}
        with torch.no_grad():
            rows.append((f"{name}: seed 0 -> seed 1" + (" (digit 3)" if kw else ""), G.eval()(codes, **kw)))
    fig, axes = plt.subplots(len(rows), 1, figsize=(8, 1.15 * len(rows)))
    for ax, (title, images) in zip(list(axes) if len(rows) > 1 else [axes], rows):
        show_images(images, 10, title, ax=ax)
    static = figure_html(fig, "latent interpolation strips of the pretrained generators")
    return WithStaticFallback(live, static)


# ----------------------------------------------------------------------------- the ablation command

#: arm -> changes to the baseline (the chapter's DCGAN: batch norm in G and D, Adam betas (0.5, 0.999))
ABLATION_ARMS = {"baseline": {}, "no batch norm in G": {"g_batchnorm": False},
                 "no batch norm in D": {"d_norm": "none"}, "Adam beta1 = 0.9": {"betas": (0.9, 0.999)}}


def ablation(steps: int, seed: int = 0, log=print) -> dict:
    """Train each :data:`ABLATION_ARMS` arm for ``steps`` steps; quick FID (2k samples) every steps/4."""
    rows = {}
    start_all = time.perf_counter()
    for arm, change in ABLATION_ARMS.items():
        start = time.perf_counter()
        trainer = dcgan_trainer(steps, seed=seed, fid_every=max(1, steps // 4), ema_decay=0.0, **dict(change))
        history = trainer.fit()
        fids = callback_of(trainer, QuickFID).rows
        rows[arm] = {"change": {k: list(v) if isinstance(v, tuple) else v for k, v in change.items()},
                     "fid_over_training": [(r["step"], r["raw"]) for r in fids],
                     "final_fid": fids[-1]["raw"],
                     "d_fake_last_10pct": sum(history["d_fake"][-steps // 10:]) / len(history["d_fake"][-steps // 10:]),
                     "wall_time_s": round(time.perf_counter() - start, 1)}
        log(json.dumps({arm: rows[arm]["final_fid"]}))
    return {**provenance(f"{ABLATION_COMMAND} --steps {steps} --seed {seed}", start_all), "steps": steps,
            "seed": seed, "fid": "quick FID: 2,000 samples vs 2,000 random test images (seed 0)", "arms": rows}


EMA_BN_PATH = RESULTS_DIR / "ema_batchnorm.json"


def ema_batchnorm(checkpoint: Path) -> dict:
    """A trainer checkpoint's generator three ways, on the book's full MNIST metrics: the raw weights,
    the EMA weights with the EMA of the raw generators' batch-norm statistics (what sampling
    ``trainer.ema.module`` in eval mode gives), and the EMA weights with re-estimated statistics."""
    start = time.perf_counter()
    state = load_checkpoint(checkpoint)
    raw = load_model(checkpoint, ema=False)
    averaged = models.build_model(state["specs"]["generator"])
    averaged.load_state_dict({k.removeprefix("module."): v for k, v in state["ema"].items() if k.startswith("module.")})
    measure = pretrained.measure  # looked up on each call (a test replaces it)
    rows = {"raw generator": measure(raw), "EMA, averaged BN statistics": measure(averaged.eval()),
            "EMA, BN statistics re-estimated": measure(load_model(checkpoint))}
    return {**provenance(f"python -m ganlib.chapters.practice ema-bn {checkpoint}", start,
                         machine=cpu_machine(threads=False)),
            "run": state.get("run"), "step": state["step"], "ema_decay": state["config"]["ema_decay"], "rows": rows}


def load_ablation(path: Path = ABLATION_PATH) -> dict:
    """The committed :func:`ablation` results, or an error that names the command that writes them."""
    return load_results(path, ABLATION_COMMAND, "about 20 min on one CPU core")


def main(argv=None) -> None:
    """``python -m ganlib.chapters.practice ablation | ema-bn CHECKPOINT``: write a results file."""
    parser, sub = command_parser("python -m ganlib.chapters.practice")
    add_command(sub, "ablation", "Radford et al.'s guidelines, one at a time (writes book/results/dcgan_ablation.json)",
                ABLATION_PATH, steps=4000, seed=0)
    e = add_command(sub, "ema-bn", "a run's raw, EMA and BN-refreshed EMA generator (writes "
                    "book/results/ema_batchnorm.json)", EMA_BN_PATH)
    e.add_argument("checkpoint", type=Path, help="a trainer checkpoint with an EMA, e.g. the one that "
                   "`python -m ganlib.pretrained make dcgan-mnist --run-dir DIR` keeps in DIR")
    run_command(parser, _write_results, argv)


def _write_results(args) -> None:
    if args.command == "ema-bn" and not args.checkpoint.is_file():
        raise UsageError(f"CHECKPOINT {args.checkpoint} is not a file; give a trainer checkpoint with an EMA "
                         "(DIR/checkpoint.safetensors of a run with --ema-decay)")
    check_output_file(args.out, "--out")
    torch.set_num_threads(1)
    if args.command == "ablation":
        result = ablation(args.steps, args.seed)
    else:
        result = ema_batchnorm(args.checkpoint)
    print(f"wrote {save_results(result, args.out)}")


if __name__ == "__main__":
    main()
