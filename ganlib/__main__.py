"""Command line: ``python -m ganlib train ...`` and ``python -m ganlib sample ...``.

Examples::

    python -m ganlib train --dataset gaussian1d --out runs/g1d
    python -m ganlib train --dataset mnist --model dcgan --loss hinge --spectral-norm --steps 20000 --out runs/mnist
    python -m ganlib train --dataset mnist --model dcgan --out runs/mnist --resume --steps 40000
    python -m ganlib sample --checkpoint runs/mnist/checkpoint.safetensors --n 64 --out samples.png
    torchrun --nproc_per_node=4 -m ganlib train --dataset mnist --model dcgan --out runs/mnist4

Under ``torchrun`` training is data-parallel (DistributedDataParallel, see :mod:`ganlib.distributed`):
each process trains on its own shard of the data, and only rank 0 writes files and prints.

``train`` writes ``DIR/checkpoint.safetensors`` (every ``--checkpoint-every`` steps and at the end),
``DIR/history.json``, ``DIR/samples.png`` and, with ``--sample-every N``, fixed-noise snapshots
``DIR/snapshots/samples_step*.png``. Options left out take the dataset's preset, which depends on
the profile (``GANLIB_PROFILE=quick|full``, see :mod:`ganlib.env`).

``--resume`` continues the run in ``DIR``. Options that steer training (steps, learning rates,
loss, d-steps, penalties, EMA, logging, checkpointing, device and speed flags) are applied, and a
new learning rate reaches the optimizers. Options that define the run (dataset, model, batch size,
seed, latent size, DCGAN widths and layout, conditional, spectral norm) cannot change: given with a different value than
the checkpoint's, they are refused with a message naming each one. On the CPU a resumed run is
bitwise equal to an uninterrupted one at the same number of torch threads (``torch.set_num_threads``;
another count splits the reductions inside matrix products differently).

Errors are printed as one line, without a traceback (exit status 2 for a wrong command line, 1
for anything else); ``--debug`` or ``GANLIB_DEBUG=1`` shows the traceback.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import tempfile
from pathlib import Path

import torch

from . import data as gdata
from . import distributed, models
from .checkpoint import FORMAT, load_checkpoint, load_model
from .env import by_profile, default_device, seed_everything
from .losses import LOSSES
from .train import (COMPILE_MODES, GANConfig, GANTrainer, LinearLRDecay, SampleSnapshots, VAEConfig, VAETrainer,
                    save_samples)

TOY = {"gaussian1d": gdata.Gaussian1D, "ring": gdata.gaussian_ring, "grid": gdata.gaussian_grid,
       "moons": gdata.TwoMoons, "spiral": gdata.Spiral}
IMAGES = ("mnist", "fashion_mnist", "digits")
MODELS = ("mlp", "dcgan", "vae", "conv-vae")
VAE_MODELS = ("vae", "conv-vae")
CHECKPOINT_NAME = "checkpoint.safetensors"
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")


class UsageError(ValueError):
    """The command line asks for something that cannot be done; exit status 2."""


def preset(dataset: str, model: str) -> dict:
    """Defaults for a dataset/model pair in the active profile (anything the command line leaves out)."""
    if dataset == "gaussian1d":
        # an affine G (hidden=()) can represent N(4, 1.25^2) exactly; lr 1e-2 gets there in ~1.5k steps
        return dict(steps=by_profile(1500, 5000), batch_size=256, lr=1e-2, latent_dim=1, g_hidden=(), d_hidden=(32, 32))
    if dataset in TOY:
        return dict(steps=by_profile(2000, 20000), batch_size=256, lr=1e-3, latent_dim=8, g_hidden=(128, 128),
                    d_hidden=(128, 128))
    if model in VAE_MODELS:
        return dict(steps=by_profile(500, 20000), batch_size=128, lr=1e-3, latent_dim=16)
    if dataset == "digits":
        # measured on CPU: the MLP G collapses to a few digits without batch norm, not with it
        return dict(steps=by_profile(1000, 10000), batch_size=64, lr=2e-4, latent_dim=32, g_hidden=(256, 256),
                    d_hidden=(256, 256), base_width=32)
    # MNIST and Fashion-MNIST (same shape); on CPU a width-32 DCGAN draws digit-like strokes after ~600 steps (about a minute)
    return dict(steps=by_profile(600, 20000), batch_size=by_profile(64, 128), lr=2e-4, latent_dim=100,
                g_hidden=(128, 256, 512, 1024), d_hidden=(512, 256, 128), base_width=by_profile(32, 64))


# ----------------------------------------------------------------------------- parsing


def _number(kind, lowest, inclusive: bool, what: str):
    """An argparse type: a finite ``kind`` number above ``lowest`` (or at it, if ``inclusive``)."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not math.isfinite(value) or value < lowest or (value == lowest and not inclusive):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    parse.__name__ = what  # argparse names the type in some messages
    return parse


POSITIVE_INT = _number(int, 1, True, "an integer >= 1")
COUNT = _number(int, 0, True, "an integer >= 0")
RATE = _number(float, 0.0, False, "a number > 0")
WEIGHT = _number(float, 0.0, True, "a number >= 0")


def ema_decay(text: str) -> float:
    value = WEIGHT(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1) (0: no EMA; 0.999 is typical), got {text!r}")
    return value


class OneLineParser(argparse.ArgumentParser):
    """argparse, with each error printed as one line (no usage block) and exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


_NEGATIVE_NUMBER = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


def _join_negative_values(argv: list[str]) -> list[str]:
    """``--lr -1e-3`` -> ``--lr=-1e-3``: argparse takes ``-1e-3`` for an option and says "expected one
    argument"; joined, the value reaches the type check, which says what is wrong with it."""
    out = []
    for token in argv:
        if out and _NEGATIVE_NUMBER.match(token) and out[-1].startswith("--") and "=" not in out[-1]:
            out[-1] = f"{out[-1]}={token}"
        else:
            out.append(token)
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m ganlib", description="Train GANs/VAEs and sample from checkpoints.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    t = sub.add_parser("train", help="train a GAN or VAE; checkpoints go to --out", description=(
        "Train a GAN or VAE; options left out take the dataset's preset. With --resume, options that steer "
        "training (steps, learning rates, loss, d-steps, penalties, EMA, logging, checkpoints, device and "
        "speed flags) are applied; options that define the run (dataset, model, batch size, seed, latent "
        "size, DCGAN widths and layout, conditional, spectral norm) must match the checkpoint."))
    # default=None throughout: "not given" must be told apart from a value, for presets and --resume
    t.add_argument("--dataset", choices=IMAGES + tuple(TOY), required=True)
    t.add_argument("--model", choices=MODELS, help="default: mlp")
    t.add_argument("--loss", choices=LOSSES, help="default: nonsaturating")
    t.add_argument("--steps", type=POSITIVE_INT, help="total steps (a resumed run continues up to this)")
    t.add_argument("--batch-size", type=POSITIVE_INT)
    t.add_argument("--out", required=True, help="output folder (checkpoint, history, samples)")
    t.add_argument("--resume", action="store_true", help="continue from DIR/checkpoint.safetensors")
    t.add_argument("--device", help="cuda, mps or cpu (default: the best available)")
    t.add_argument("--no-bf16", action="store_true", default=None, help="train in float32 on CUDA")
    t.add_argument("--no-channels-last", action="store_true", default=None, help="keep the default NCHW memory layout")
    t.add_argument("--compile", choices=("none",) + COMPILE_MODES,
                   help="torch.compile the GAN's models with this mode (reduce-overhead adds CUDA graphs)")
    t.add_argument("--cuda-graph", action="store_true", default=None,
                   help="on CUDA, replay each whole GAN step as one CUDA graph (no penalties, one process)")
    t.add_argument("--sync-bn", action="store_true", default=None,
                   help="under torchrun: SyncBatchNorm over all ranks (GPUs only); default: per-rank batch norm")
    t.add_argument("--lr", type=RATE, help="learning rate (G and D, or the VAE)")
    t.add_argument("--lr-g", type=RATE)
    t.add_argument("--lr-d", type=RATE)
    t.add_argument("--d-steps", type=POSITIVE_INT, help="D updates per G update (default 1)")
    t.add_argument("--gp-weight", type=WEIGHT, help="WGAN-GP's lambda (default 0: off)")
    t.add_argument("--r1-weight", type=WEIGHT, help="weight of the R1 penalty (default 0: off)")
    t.add_argument("--ema-decay", type=ema_decay, help="keep an EMA copy of G with this decay (default 0: off)")
    t.add_argument("--latent-dim", type=POSITIVE_INT)
    t.add_argument("--base-width", type=POSITIVE_INT, help="DCGAN: channels of D's first and G's last stage "
                   "(doubled at each stage; preset: 32 quick, 64 full)")
    t.add_argument("--g-width", type=POSITIVE_INT, help="DCGAN: G's channels at its last stage (default: --base-width)")
    t.add_argument("--d-width", type=POSITIVE_INT, help="DCGAN: D's channels at its first stage (default: --base-width)")
    t.add_argument("--g-fc", type=COUNT, help="DCGAN: units of a fully connected layer at G's start (default 0: none)")
    t.add_argument("--d-fc", type=COUNT, help="DCGAN: units of a fully connected layer before D's logit (default 0: none)")
    t.add_argument("--conditional", action="store_true", default=None, help="class-conditional G and D (image datasets)")
    t.add_argument("--spectral-norm", action="store_true", default=None, help="spectral norm in D")
    t.add_argument("--binarize", action="store_true", default=None,
                   help="VAE: dynamic binarisation, fresh binary pixels ~ Bernoulli(grey level) every step")
    t.add_argument("--lr-decay", action="store_true", default=None,
                   help="decay the learning rate linearly to 0 at --steps (give it again with --resume)")
    t.add_argument("--seed", type=COUNT, help="default 0")
    t.add_argument("--log-every", type=POSITIVE_INT, help="default 50")
    t.add_argument("--sample-every", type=COUNT, help="write fixed-noise snapshots to DIR/snapshots every N steps")
    t.add_argument("--checkpoint-every", type=COUNT, help="default 0: only at the end")
    t.add_argument("--no-progress", action="store_true", default=None)
    t.add_argument("--debug", action="store_true", help="show tracebacks")
    s = sub.add_parser("sample", help="draw samples from a checkpoint into an image")
    s.add_argument("--checkpoint", required=True)
    s.add_argument("--n", type=POSITIVE_INT, default=64)
    s.add_argument("--out", default="samples.png", help=f"an image file ({', '.join(IMAGE_EXTENSIONS)})")
    s.add_argument("--seed", type=COUNT, default=0)
    s.add_argument("--no-ema", action="store_true", help="use the raw generator even if an EMA copy exists")
    s.add_argument("--device")
    s.add_argument("--debug", action="store_true", help="show tracebacks")
    return parser


def parse_args(argv=None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(_join_negative_values(list(sys.argv[1:] if argv is None else argv)))
    if args.command == "sample":
        out = Path(args.out)
        if out.is_dir():
            parser.error(f"--out {args.out} is a folder; give an image file name, e.g. {out / 'samples.png'}")
        if out.suffix.lower() not in IMAGE_EXTENSIONS:
            parser.error(f"--out {args.out}: unknown image type {out.suffix or '(none)'!r}; use one of "
                         f"{', '.join(IMAGE_EXTENSIONS)}")
    return args


# ----------------------------------------------------------------------------- train

#: what defines a run: fixed once it has started (option -> where the checkpoint records it)
RUN_DEFINING = ("dataset", "model", "batch_size", "seed", "latent_dim", "base_width", "conditional", "spectral_norm",
                "binarize", "g_width", "d_width", "g_fc", "d_fc")
#: the DCGAN's layout options beyond --base-width (recorded only when given, so older checkpoints compare equal)
DCGAN_LAYOUT = ("g_width", "d_width", "g_fc", "d_fc")


def option(name: str) -> str:
    return "--" + name.replace("_", "-")


def load_data(dataset: str):
    """The training data: a toy distribution, or (images, labels) tensors."""
    if dataset in TOY:
        return TOY[dataset]()
    if dataset == "digits":
        return gdata.load_digits("train")
    return gdata.load_mnist("train", dataset=dataset)


def run_settings(args) -> dict:
    """What defines the run, with the presets filled in (recorded in the checkpoint as ``run``)."""
    model = args.model or "mlp"
    for name in ("base_width",) + DCGAN_LAYOUT:
        if getattr(args, name) is not None and model != "dcgan":
            raise UsageError(f"{option(name)} sets the DCGAN's layout; --model {model} does not take it")
    if args.binarize and model not in VAE_MODELS:
        raise UsageError(f"--binarize is a VAE option (binary pixels for a Bernoulli decoder); --model {model} "
                         "is a GAN: leave --binarize out, or use --model vae / conv-vae")
    cfg = preset(args.dataset, model)
    return {"dataset": args.dataset, "model": model,
            "batch_size": args.batch_size or cfg["batch_size"], "seed": 0 if args.seed is None else args.seed,
            "latent_dim": args.latent_dim or cfg["latent_dim"], "conditional": bool(args.conditional),
            "base_width": (args.base_width or cfg.get("base_width")) if model == "dcgan" else None,
            "spectral_norm": bool(args.spectral_norm), "binarize": bool(args.binarize),
            **{name: getattr(args, name) for name in DCGAN_LAYOUT if getattr(args, name)}}


def build_models(run: dict, data) -> dict:
    cfg = preset(run["dataset"], run["model"])
    k = 10 if run["conditional"] else 0
    latent, sn = run["latent_dim"], run["spectral_norm"]
    if run["dataset"] in TOY:
        if run["model"] != "mlp" or run["conditional"]:
            raise UsageError(f"toy dataset {run['dataset']!r} needs --model mlp without --conditional")
        dim = data.dim
        return {"generator": models.MLPGenerator(latent, dim, hidden=cfg["g_hidden"]),
                "discriminator": models.MLPDiscriminator(dim, hidden=cfg["d_hidden"], spectral_norm=sn)}
    shape = tuple(data[0].shape[1:])
    if run["model"] in VAE_MODELS:
        if run["conditional"] or sn:
            raise UsageError("--conditional and --spectral-norm are GAN options; the VAE models take neither")
        return {"vae": models.VAE(shape, latent_dim=latent, arch="conv" if run["model"] == "conv-vae" else "mlp")}
    if run["model"] == "dcgan":
        width = run.get("base_width") or cfg["base_width"]
        return {"generator": models.DCGANGenerator(latent, shape[-1], shape[0], run.get("g_width") or width,
                                                   num_classes=k, hidden=run.get("g_fc") or 0),
                "discriminator": models.DCGANDiscriminator(shape[-1], shape[0], run.get("d_width") or width,
                                                           spectral_norm=sn, num_classes=k,
                                                           hidden=run.get("d_fc") or 0)}
    return {"generator": models.MLPGenerator(latent, shape, hidden=cfg["g_hidden"], out_activation="tanh",
                                             batchnorm=True, num_classes=k),
            "discriminator": models.MLPDiscriminator(shape, hidden=cfg["d_hidden"], activation="leaky_relu",
                                                     spectral_norm=sn, num_classes=k)}


def steering(args, is_vae: bool) -> dict:
    """Config fields the command line gives explicitly (besides what defines the run)."""
    given = {
        "steps": args.steps, "device": args.device, "log_every": args.log_every,
        "checkpoint_every": args.checkpoint_every, "sync_bn": args.sync_bn, "cuda_graph": args.cuda_graph,
        "bf16": None if args.no_bf16 is None else not args.no_bf16,
        "channels_last": None if args.no_channels_last is None else not args.no_channels_last,
        "progress": None if args.no_progress is None else not args.no_progress,
        "compile": None if args.compile is None else (False if args.compile == "none" else args.compile),
    }
    gan_only = {"loss": args.loss, "d_steps": args.d_steps, "gp_weight": args.gp_weight,
                "r1_weight": args.r1_weight, "ema_decay": args.ema_decay, "lr_g": args.lr_g, "lr_d": args.lr_d}
    if is_vae:
        bad = [option(k) for k, v in gan_only.items() if v is not None]
        if bad:
            raise UsageError(f"{', '.join(bad)} are GAN options; --model {args.model} is a VAE (it takes --lr)")
        given["lr"] = args.lr
    else:
        given.update(gan_only)
        given["lr_g"] = args.lr_g or args.lr
        given["lr_d"] = args.lr_d or args.lr
    return {k: v for k, v in given.items() if v is not None}


def check_writable(folder: Path) -> None:
    """Fail before training, not at the final save, if ``folder`` cannot take the run's files."""
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"--out {folder} is a file; give a folder for the run's checkpoint, history and samples")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise UsageError(f"--out {folder} is not writable ({err.strerror or err}); choose another folder") from None


def resume_overrides(args, state: dict, path: Path) -> dict:
    """Check ``--resume`` against the checkpoint: refuse a change to what defines the run."""
    recorded = state.get("run") or {}
    kind = state.get("kind")
    wanted_vae = (args.model or recorded.get("model", "mlp")) in VAE_MODELS
    if (kind == "VAETrainer") != wanted_vae:
        raise UsageError(f"--resume: {path} holds a {'VAE' if kind == 'VAETrainer' else 'GAN'} run "
                         f"(model {recorded.get('model', '?')!r}); this command asks for --model {args.model or 'mlp'}. "
                         f"Resume with --model {recorded.get('model', '?')}, or start a new run in another --out")
    config = state["config"]
    checkpoint_values = {**recorded, "batch_size": config["batch_size"], "seed": config["seed"]}
    given = {"dataset": args.dataset, "model": args.model, "batch_size": args.batch_size, "seed": args.seed,
             "latent_dim": args.latent_dim, "base_width": args.base_width, "conditional": args.conditional,
             "spectral_norm": args.spectral_norm, "binarize": args.binarize,
             **{name: getattr(args, name) for name in DCGAN_LAYOUT}}
    if recorded.get("model") == "dcgan":  # options not recorded took their defaults
        for name in DCGAN_LAYOUT:
            checkpoint_values.setdefault(name, recorded.get("base_width") if name.endswith("width") else 0)
    changed = [f"{option(k)} {v!r} (the checkpoint has {checkpoint_values[k]!r})" for k, v in given.items()
               if v is not None and k in checkpoint_values and v != checkpoint_values[k]]
    if changed:
        raise UsageError(f"--resume cannot change what defines the run: {'; '.join(changed)}. Leave these out to "
                         "continue the run, or start a new run in another --out")
    return steering(args, wanted_vae)


def build_trainer(args, callbacks=()):
    """The trainer for parsed ``train`` arguments: a new run, or the run in ``--out`` with ``--resume``."""
    out = Path(args.out)
    ckpt = out / CHECKPOINT_NAME
    if args.resume:
        if not ckpt.exists():
            raise UsageError(f"--resume: no checkpoint at {ckpt}; run without --resume to start a new run")
        state = load_checkpoint(ckpt)
        if not isinstance(state, dict) or state.get("format") != FORMAT:  # before reading its config below
            raise UsageError(f"--resume: {ckpt} is not a ganlib trainer checkpoint")
        overrides = resume_overrides(args, state, ckpt)
        check_writable(out)
        run = state.get("run") or {}
        cls = VAETrainer if state["kind"] == "VAETrainer" else GANTrainer
        data = load_data(run.get("dataset", args.dataset))
        trainer = cls.from_state(state, data, callbacks, source=ckpt, **overrides, checkpoint_path=str(ckpt))
        trainer.run_info = trainer.run_info or {"dataset": args.dataset}  # older checkpoints record no run
        return _with_lr_decay(trainer, args)
    run = run_settings(args)
    is_vae = run["model"] in VAE_MODELS
    if is_vae and args.dataset in TOY:
        raise UsageError("the VAE models are for image datasets (mnist, digits); use --model mlp for toy data")
    fields = steering(args, is_vae)
    check_writable(out)
    data = load_data(args.dataset)
    seed_everything(run["seed"])  # before building the models: same seed, same weights
    built = build_models(run, data)
    lr = preset(args.dataset, run["model"])["lr"]
    common = dict(steps=preset(args.dataset, run["model"])["steps"], batch_size=run["batch_size"], seed=run["seed"],
                  checkpoint_path=str(ckpt))
    if is_vae:
        config = VAEConfig(**{"lr": lr, **common, "binarize": run["binarize"], **fields})
        trainer = VAETrainer(built["vae"], data, config, callbacks)
    else:
        config = GANConfig(**{"lr_g": lr, "lr_d": lr, **common, **fields})
        trainer = GANTrainer(built["generator"], built["discriminator"], data, config, callbacks)
    trainer.run_info = run
    return _with_lr_decay(trainer, args)


def _with_lr_decay(trainer, args):
    """``--lr-decay``: every rate falls linearly to 0 at the run's last step (first, so the step's
    other callbacks see the new rate)."""
    if args.lr_decay:
        trainer.callbacks.insert(0, LinearLRDecay(trainer.config.steps))
    return trainer


def train_main(args) -> dict:
    """``python -m ganlib train``: build config and trainer, fit, write history and samples.

    Under ``torchrun`` every rank trains (data-parallel); only rank 0 writes files and prints.
    """
    out = Path(args.out)
    distributed.init_distributed(args.device)
    try:
        callbacks = [SampleSnapshots(args.sample_every, out / "snapshots")] if args.sample_every else []
        trainer = build_trainer(args, callbacks)
        history = trainer.fit()
        if distributed.is_main_process():
            (out / "history.json").write_text(json.dumps(history))
            save_samples(trainer.sample(64), out / "samples.png")
            print(f"trained to step {trainer.step}; checkpoint {out / CHECKPOINT_NAME}; samples {out / 'samples.png'}")
    finally:
        distributed.cleanup()
    return history


# ----------------------------------------------------------------------------- sample


def sample_main(args) -> torch.Tensor:
    """``python -m ganlib sample``: rebuild the generator (EMA if present) and save n samples."""
    device = default_device(args.device)
    model = load_model(args.checkpoint, ema=not args.no_ema).to(device).eval()
    gen = torch.Generator().manual_seed(args.seed)
    z = torch.randn(args.n, model.latent_dim, generator=gen).to(device)
    with torch.no_grad():
        if hasattr(model, "decode_mean"):
            samples = model.decode_mean(z)
        elif getattr(model, "num_classes", 0):
            samples = model(z, labels=torch.arange(args.n, device=device) % model.num_classes)
        else:
            samples = model(z)
    save_samples(samples, args.out)
    print(f"wrote {args.n} samples to {args.out}")
    return samples


def main(argv=None):
    """Run the command line. Errors: one line on stderr, exit 2 (usage) or 1 (anything else)."""
    args = parse_args(argv)
    try:
        return train_main(args) if args.command == "train" else sample_main(args)
    except Exception as err:  # noqa: BLE001 - the command line's one error boundary
        if args.debug or os.environ.get("GANLIB_DEBUG"):
            raise
        message = " ".join(str(err).split()) or type(err).__name__
        print(f"python -m ganlib {args.command}: error: {message}", file=sys.stderr)
        raise SystemExit(2 if isinstance(err, UsageError) else 1) from None


if __name__ == "__main__":
    main()
