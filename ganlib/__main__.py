"""Command line: ``python -m ganlib train ...`` and ``python -m ganlib sample ...``.

Examples::

    python -m ganlib train --dataset gaussian1d --out runs/g1d
    python -m ganlib train --dataset mnist --model dcgan --loss hinge --spectral-norm --steps 20000 --out runs/mnist
    python -m ganlib train --dataset mnist --model dcgan --out runs/mnist --resume --steps 40000
    python -m ganlib sample --checkpoint runs/mnist/checkpoint.safetensors --n 64 --out samples.png
    torchrun --nproc_per_node=4 -m ganlib train --dataset mnist --model dcgan --out runs/mnist4

Under ``torchrun`` training is data-parallel (DistributedDataParallel, see :mod:`ganlib.distributed`):
each process trains on its own shard of the data, and only rank 0 writes files and prints.

``train`` writes ``DIR/checkpoint.safetensors`` (at step 0, every ``--checkpoint-every`` steps, default
1000, and at the end; ``DIR/.ganlib.lock`` keeps a second run out meanwhile),
``DIR/history.json``, ``DIR/samples.png`` and, with ``--sample-every N``, fixed-noise snapshots
``DIR/snapshots/samples_step*.png``. Options left out take the dataset's preset, which depends on
the profile (``GANLIB_PROFILE=quick|full``, see :mod:`ganlib.env`).

``--resume`` continues the run in ``DIR``. Options that steer training (steps, learning rates,
loss, d-steps, penalties, EMA, logging, checkpointing, device and speed flags) are applied, and a
new learning rate reaches the optimizers. Options that define the run (dataset, model, batch size,
seed, latent size, DCGAN widths and layout, InfoGAN code, conditional, spectral norm) cannot change: given with a different value than
the checkpoint's, they are refused with a message naming each one. On the CPU a resumed run is
bitwise equal to an uninterrupted one at the same number of torch threads (``torch.set_num_threads``;
another count splits the reductions inside matrix products differently).

Errors are printed as one line, without a traceback (exit status 2 for a wrong command line, 1
for anything else); ``--debug`` or ``GANLIB_DEBUG=1`` shows the traceback.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
from pathlib import Path

import torch

from . import distributed
from .checkpoint import load_model
from .command import (COUNT, POSITIVE_INT, RATE, WEIGHT, Interrupted, OneLineParser, UsageError, check_output_file,
                      check_output_folder, folder_lock, run)
from .env import default_device
from .losses import LOSSES
from .pretrained import generate
from .spec import IMAGES, MODELS, TOY, RunSpec
from .train import COMPILE_MODES, SampleSnapshots, save_samples
from .train.ema import EMA_DECAY_RANGE, valid_ema_decay

CHECKPOINT_NAME = "checkpoint.safetensors"
#: steps between checkpoints when --checkpoint-every is not given (a new run also saves at step 0, so
#: that a full disk or a file-size limit shows before any training, not at the end)
CHECKPOINT_EVERY = 1000
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
#: the options that make a RunSpec (the rest steer the run: config fields)
SPEC_OPTIONS = ("dataset", "model", "batch_size", "seed", "latent_dim", "base_width", "g_width", "d_width", "g_fc",
                "d_fc", "code_classes", "conditional", "spectral_norm", "binarize")


def ema_decay(text: str) -> float:
    """An argparse type: an EMA decay (:func:`~ganlib.train.ema.valid_ema_decay`)."""
    value = WEIGHT(text)
    if not valid_ema_decay(value):
        raise argparse.ArgumentTypeError(f"expected {EMA_DECAY_RANGE}, got {text!r}")
    return value


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
    """The ``train`` and ``sample`` commands; every option defaults to None ("not given")."""
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
    t.add_argument("--code-classes", type=COUNT, help="DCGAN: an InfoGAN categorical code of this many values, "
                   "chosen by z's last entries, and a head in D that predicts it (default 0: none)")
    t.add_argument("--info-weight", type=WEIGHT, help="InfoGAN's lambda for --code-classes (default 1)")
    t.add_argument("--conditional", action="store_true", default=None, help="class-conditional G and D (image datasets)")
    t.add_argument("--spectral-norm", action="store_true", default=None, help="spectral norm in D")
    t.add_argument("--binarize", action="store_true", default=None,
                   help="VAE: dynamic binarisation, fresh binary pixels ~ Bernoulli(grey level) every step")
    t.add_argument("--lr-decay", action="store_true", default=None,
                   help="decay the learning rate linearly to 0 at --steps (give it again with --resume)")
    t.add_argument("--seed", type=COUNT, help="default 0")
    t.add_argument("--log-every", type=POSITIVE_INT, help="default 50")
    t.add_argument("--sample-every", type=COUNT, help="write fixed-noise snapshots to DIR/snapshots every N steps")
    t.add_argument("--checkpoint-every", type=COUNT, help=f"default {CHECKPOINT_EVERY} (0: only at the end); "
                   "a new run also saves at step 0")
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
    """Parse ``argv`` (default: ``sys.argv[1:]``), refusing a bad ``sample --out`` before any work."""
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


def run_spec(args) -> RunSpec:
    """The :class:`~ganlib.spec.RunSpec` of a new run: the options given, the preset for the rest."""
    return RunSpec(**{name: getattr(args, name) for name in SPEC_OPTIONS if getattr(args, name) is not None})


def steering(args) -> dict:
    """Config fields the command line gives (besides the run spec); ``None``: not given."""
    return {
        "steps": args.steps, "device": args.device, "log_every": args.log_every,
        "checkpoint_every": args.checkpoint_every, "sync_bn": args.sync_bn,
        "bf16": None if args.no_bf16 is None else not args.no_bf16,
        "channels_last": None if args.no_channels_last is None else not args.no_channels_last,
        "progress": None if args.no_progress is None else not args.no_progress,
        "lr": args.lr, "lr_g": args.lr_g, "lr_d": args.lr_d, "loss": args.loss, "d_steps": args.d_steps,
        "gp_weight": args.gp_weight, "r1_weight": args.r1_weight, "ema_decay": args.ema_decay,
        "info_weight": args.info_weight, "cuda_graph": args.cuda_graph,
        "compile": None if args.compile is None else (False if args.compile == "none" else args.compile),
    }


def plan_training(args):
    """Check a ``train`` command line before any work; returns ``start(callbacks) -> trainer``,
    which builds the new run, or restores the run in ``--out`` with ``--resume``."""
    out = Path(args.out)
    ckpt = out / CHECKPOINT_NAME
    if args.resume:
        if not ckpt.exists():
            raise UsageError(f"--resume: no checkpoint at {ckpt}; run without --resume to start a new run")
        check_output_folder(out)
        fields = {**steering(args), "checkpoint_path": str(ckpt)}  # here, wherever the run was made
        given = {name: getattr(args, name) for name in SPEC_OPTIONS}
        return lambda callbacks: RunSpec.resume(ckpt, given, fields, callbacks, lr_decay=bool(args.lr_decay))
    spec = run_spec(args)
    fields = spec.steering(steering(args))  # checked before the folder is made
    check_output_folder(out)
    fields = {"checkpoint_every": CHECKPOINT_EVERY, **fields, "checkpoint_path": str(ckpt)}

    def start(callbacks):
        trainer = spec.build_trainer(fields, callbacks, lr_decay=bool(args.lr_decay))
        trainer.save()  # the first save, at step 0: a disk or permission problem shows now, and nothing is lost
        return trainer

    return start


def build_trainer(args, callbacks=()):
    """The trainer for parsed ``train`` arguments (:func:`plan_training`, without the folder lock)."""
    return plan_training(args)(callbacks)


def train_main(args) -> dict:
    """``python -m ganlib train``: check, lock ``--out``, build or resume the trainer, fit, write
    history and samples.

    Under ``torchrun`` every rank trains (data-parallel); only rank 0 locks and writes files and prints.
    """
    out = Path(args.out)
    distributed.init_distributed(args.device)
    try:
        start = plan_training(args)
        callbacks = [SampleSnapshots(args.sample_every, out / "snapshots")] if args.sample_every else []
        with folder_lock(out) if distributed.is_main_process() else contextlib.nullcontext():
            trainer = start(callbacks)
            try:
                history = trainer.fit()
            except (KeyboardInterrupt, Interrupted) as stop:
                raise Interrupted(f"stopped at step {trainer.step}; {trainer.kept_checkpoint()}",
                                  getattr(stop, "status", 130)) from None
            if distributed.is_main_process():
                (out / "history.json").write_text(json.dumps(history))
                save_samples(trainer.sample(64), out / "samples.png")
                print(f"trained to step {trainer.step}; checkpoint {out / CHECKPOINT_NAME}; "
                      f"samples {out / 'samples.png'}")
    finally:
        distributed.cleanup()
    return history


# ----------------------------------------------------------------------------- sample


def sample_main(args) -> torch.Tensor:
    """``python -m ganlib sample``: rebuild the generator (EMA if present) and save n samples."""
    check_output_file(args.out)
    model = load_model(args.checkpoint, ema=not args.no_ema).to(default_device(args.device))
    samples, _ = generate(model, args.n, args.seed)  # a conditional generator cycles through the classes
    if not torch.isfinite(samples).all():
        raise ValueError(f"the model in {args.checkpoint} draws non-finite samples (NaN or inf): its weights "
                         "diverged. Use an earlier checkpoint; nothing was written")
    save_samples(samples, args.out)
    print(f"wrote {args.n} samples to {args.out}")
    return samples


def main(argv=None):
    """Run the command line (see :mod:`ganlib.command`: one-line errors, exit 2 for usage errors)."""
    args = parse_args(argv)
    return run(f"python -m ganlib {args.command}", train_main if args.command == "train" else sample_main, args,
               args.debug)


if __name__ == "__main__":
    main()
