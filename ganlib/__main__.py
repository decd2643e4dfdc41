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
``DIR/history.json`` and ``DIR/samples.png``. Options left out take the dataset's preset, which
depends on the profile (``GANLIB_PROFILE=quick|full``, see :mod:`ganlib.env`).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from . import data as gdata
from .env import by_profile, seed_everything
from .losses import LOSSES
from .train import COMPILE_MODES

TOY = {"gaussian1d": gdata.Gaussian1D, "ring": gdata.gaussian_ring, "grid": gdata.gaussian_grid,
       "moons": gdata.TwoMoons, "spiral": gdata.Spiral}
IMAGES = ("mnist", "digits")
MODELS = ("mlp", "dcgan", "vae", "conv-vae")
CHECKPOINT_NAME = "checkpoint.safetensors"


def preset(dataset: str, model: str) -> dict:
    """Defaults for a dataset/model pair in the active profile (anything the command line leaves out)."""
    if dataset == "gaussian1d":
        # an affine G (hidden=()) can represent N(4, 1.25^2) exactly; lr 1e-2 gets there in ~1.5k steps
        return dict(steps=by_profile(1500, 5000), batch_size=256, lr=1e-2, latent_dim=1, g_hidden=(), d_hidden=(32, 32))
    if dataset in TOY:
        return dict(steps=by_profile(2000, 20000), batch_size=256, lr=1e-3, latent_dim=8, g_hidden=(128, 128),
                    d_hidden=(128, 128))
    if model in ("vae", "conv-vae"):
        return dict(steps=by_profile(500, 20000), batch_size=128, lr=1e-3, latent_dim=16)
    if dataset == "digits":
        # measured on CPU: the MLP G collapses to a few digits without batch norm, not with it
        return dict(steps=by_profile(1000, 10000), batch_size=64, lr=2e-4, latent_dim=32, g_hidden=(256, 256),
                    d_hidden=(256, 256), base_width=32)
    # MNIST; on CPU a width-32 DCGAN draws digit-like strokes after ~600 steps (about a minute)
    return dict(steps=by_profile(600, 20000), batch_size=by_profile(64, 128), lr=2e-4, latent_dim=100,
                g_hidden=(128, 256, 512, 1024), d_hidden=(512, 256, 128), base_width=by_profile(32, 64))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ganlib", description="Train GANs/VAEs and sample from checkpoints.")
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a GAN or VAE; checkpoints go to --out")
    t.add_argument("--dataset", choices=IMAGES + tuple(TOY), required=True)
    t.add_argument("--model", choices=MODELS, default="mlp")
    t.add_argument("--loss", choices=LOSSES, default="nonsaturating")
    t.add_argument("--steps", type=int, help="total steps (a resumed run continues up to this)")
    t.add_argument("--batch-size", type=int)
    t.add_argument("--out", required=True, help="output folder (checkpoint, history, samples)")
    t.add_argument("--resume", action="store_true", help="continue from DIR/checkpoint.safetensors")
    t.add_argument("--device", help="cuda, mps or cpu (default: the best available)")
    t.add_argument("--no-bf16", action="store_true", help="train in float32 on CUDA")
    t.add_argument("--no-channels-last", action="store_true", help="keep the default NCHW memory layout")
    t.add_argument("--compile", default="none", choices=("none",) + COMPILE_MODES,
                   help="torch.compile the GAN's models with this mode (reduce-overhead adds CUDA graphs)")
    t.add_argument("--cuda-graph", action="store_true",
                   help="on CUDA, replay each whole GAN step as one CUDA graph (no penalties, one process)")
    t.add_argument("--sync-bn", action="store_true",
                   help="under torchrun: SyncBatchNorm over all ranks (GPUs only); default: per-rank batch norm")
    t.add_argument("--lr", type=float, help="learning rate (G and D, or the VAE)")
    t.add_argument("--lr-g", type=float)
    t.add_argument("--lr-d", type=float)
    t.add_argument("--d-steps", type=int, default=1)
    t.add_argument("--gp-weight", type=float, default=0.0)
    t.add_argument("--r1-weight", type=float, default=0.0)
    t.add_argument("--ema-decay", type=float, default=0.0)
    t.add_argument("--latent-dim", type=int)
    t.add_argument("--conditional", action="store_true", help="class-conditional G and D (image datasets)")
    t.add_argument("--spectral-norm", action="store_true", help="spectral norm in D")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--log-every", type=int, default=50)
    t.add_argument("--sample-every", type=int, default=0)
    t.add_argument("--checkpoint-every", type=int, default=0)
    t.add_argument("--no-progress", action="store_true")
    s = sub.add_parser("sample", help="draw samples from a checkpoint into an image")
    s.add_argument("--checkpoint", required=True)
    s.add_argument("--n", type=int, default=64)
    s.add_argument("--out", default="samples.png")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--no-ema", action="store_true", help="use the raw generator even if an EMA copy exists")
    s.add_argument("--device")
    return parser


def load_data(dataset: str):
    """The training data: a toy distribution, or (images, labels) tensors."""
    if dataset in TOY:
        return TOY[dataset]()
    if dataset == "digits":
        return gdata.load_digits("train")
    return gdata.load_mnist("train")


def build_models(args, cfg: dict, data):
    from . import models

    k = 10 if args.conditional else 0
    if args.dataset in TOY:
        if args.model != "mlp" or args.conditional:
            raise ValueError(f"toy dataset {args.dataset!r} needs --model mlp without --conditional")
        dim = data.dim
        return {"generator": models.MLPGenerator(cfg["latent_dim"], dim, hidden=cfg["g_hidden"]),
                "discriminator": models.MLPDiscriminator(dim, hidden=cfg["d_hidden"], spectral_norm=args.spectral_norm)}
    shape = tuple(data[0].shape[1:])
    if args.model in ("vae", "conv-vae"):
        return {"vae": models.VAE(shape, latent_dim=cfg["latent_dim"], arch="conv" if args.model == "conv-vae" else "mlp")}
    if args.model == "dcgan":
        return {"generator": models.DCGANGenerator(cfg["latent_dim"], shape[-1], shape[0], cfg["base_width"], num_classes=k),
                "discriminator": models.DCGANDiscriminator(shape[-1], shape[0], cfg["base_width"],
                                                           spectral_norm=args.spectral_norm, num_classes=k)}
    return {"generator": models.MLPGenerator(cfg["latent_dim"], shape, hidden=cfg["g_hidden"], out_activation="tanh",
                                             batchnorm=True, num_classes=k),
            "discriminator": models.MLPDiscriminator(shape, hidden=cfg["d_hidden"], activation="leaky_relu",
                                                     spectral_norm=args.spectral_norm, num_classes=k)}


def build_trainer(args):
    """Config and trainer from parsed ``train`` arguments (resuming from DIR if --resume)."""
    from .train import GANConfig, GANTrainer, VAEConfig, VAETrainer

    cfg = preset(args.dataset, args.model)
    out = Path(args.out)
    common = dict(steps=args.steps or cfg["steps"], batch_size=args.batch_size or cfg["batch_size"],
                  device=args.device, bf16=not args.no_bf16, seed=args.seed, log_every=args.log_every,
                  progress=not args.no_progress, sample_every=args.sample_every,
                  checkpoint_path=str(out / CHECKPOINT_NAME), checkpoint_every=args.checkpoint_every,
                  channels_last=not args.no_channels_last, sync_bn=args.sync_bn, cuda_graph=args.cuda_graph,
                  compile=False if args.compile == "none" else args.compile)
    is_vae = args.model in ("vae", "conv-vae")
    if is_vae and args.dataset in TOY:
        raise ValueError("the VAE models are for image datasets (mnist, digits); use --model mlp for toy data")
    data = load_data(args.dataset)
    cls = VAETrainer if is_vae else GANTrainer
    if args.resume:
        ckpt = out / CHECKPOINT_NAME
        if not ckpt.exists():
            raise FileNotFoundError(f"--resume: no checkpoint at {ckpt}; run without --resume to start a new run")
        overrides = {k: common[k] for k in ("steps", "device", "bf16", "progress", "log_every", "sample_every",
                                            "checkpoint_path", "checkpoint_every", "channels_last", "compile",
                                            "sync_bn", "cuda_graph")}
        return cls.from_checkpoint(ckpt, data, **overrides)
    seed_everything(args.seed)  # before building the models: same seed, same weights
    models = build_models(args, cfg, data)
    lr = args.lr or cfg["lr"]
    if is_vae:
        return VAETrainer(models["vae"], data, VAEConfig(lr=lr, **common))
    config = GANConfig(loss=args.loss, d_steps=args.d_steps, lr_g=args.lr_g or lr, lr_d=args.lr_d or lr,
                       gp_weight=args.gp_weight, r1_weight=args.r1_weight, ema_decay=args.ema_decay, **common)
    return GANTrainer(models["generator"], models["discriminator"], data, config)


def save_samples(samples: torch.Tensor, path) -> None:
    """Images as a grid (data in [-1, 1]); 1D samples as a histogram; 2D samples as a scatter plot."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    samples = samples.detach().float().cpu()
    if samples.dim() == 4:
        from torchvision.utils import save_image

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


def train_main(args) -> dict:
    """``python -m ganlib train``: build config and trainer, fit, write history and samples.

    Under ``torchrun`` every rank trains (data-parallel); only rank 0 writes files and prints.
    """
    from . import distributed

    distributed.init_distributed(args.device)
    try:
        trainer = build_trainer(args)
        history = trainer.fit()
        if distributed.is_main_process():
            out = Path(args.out)
            (out / "history.json").write_text(json.dumps(history))
            save_samples(trainer.sample(64), out / "samples.png")
            print(f"trained to step {trainer.step}; checkpoint {out / CHECKPOINT_NAME}; samples {out / 'samples.png'}")
    finally:
        distributed.cleanup()
    return history


def sample_main(args) -> torch.Tensor:
    """``python -m ganlib sample``: rebuild the generator (EMA if present) and save n samples."""
    from .checkpoint import load_model
    from .env import default_device

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


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    if args.command == "train":
        train_main(args)
    else:
        sample_main(args)


if __name__ == "__main__":
    sys.exit(main())
