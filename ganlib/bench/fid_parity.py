"""Does the fast path train as well as fp32? DCGAN on MNIST from the same seed, both ways, by FID."""
from __future__ import annotations

import contextlib
import datetime
import statistics
import time

import torch

from ..classifier import classify, load_mnist_classifier
from ..data import load_mnist, random_subset
from ..env import default_device, seed_everything
from ..metrics import frechet_distance_from_features
from ..models import DCGANDiscriminator, DCGANGenerator
from ..train import GANConfig, GANTrainer
from .classic_loop import LATENT_DIM
from .measure import command_line, device_name, versions_line, write_section
from .throughput import fast_settings


@contextlib.contextmanager
def full_fp32(enabled: bool = True):
    """Turn off TF32 (on by default for cuDNN convolutions) so that "fp32" means float32 math."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    if enabled:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def fid_parity(args, argv) -> dict:
    """Train fp32 eager and the fast path from the same seed; compare their MNIST FIDs."""
    device = default_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    cuda_graph, compile_mode = fast_settings(args.cuda_graph, args.compile, device)[0]
    images, _ = load_mnist("train", download=False)
    reference, _ = load_mnist("test", download=False)
    reference = reference[random_subset(len(reference), args.n_samples)]  # the test set's head is not a sample
    classifier = load_mnist_classifier(device=device)
    real_features, _ = classify(classifier, reference)
    paths = {
        "fp32": dict(bf16=False, channels_last=False, compile=False, fused_adam=False),
        "fast": dict(bf16=True, channels_last=True, compile=compile_mode or False, fused_adam=True,
                     cuda_graph=cuda_graph),
    }
    fids: dict[str, list[float]] = {name: [] for name in paths}
    seeds = list(args.seeds)  # checked by the command line: a non-empty list of seeds

    for seed in seeds:
        for name, opts in paths.items():
            seed_everything(seed)
            G = DCGANGenerator(LATENT_DIM, image_size=28, channels=1)
            D = DCGANDiscriminator(image_size=28, channels=1)
            cfg = GANConfig(steps=args.steps, batch_size=args.batch_size, device=str(device), seed=seed,
                            progress=False, log_every=max(args.steps // 10, 1), **opts)
            trainer = GANTrainer(G, D, images, cfg)
            t0 = time.perf_counter()
            with full_fp32(enabled=name == "fp32"):
                trainer.fit()
            seconds = time.perf_counter() - t0
            fake_features, _ = classify(classifier, trainer.sample(args.n_samples, seed=seed + 12345))
            fid = frechet_distance_from_features(real_features, fake_features)
            fids[name].append(fid)
            print(f"seed {seed} {name}: FID {fid:.3f} after {args.steps} steps ({seconds:.0f} s; "
                  f"bf16={trainer.use_bf16}, compile={cfg.compile}, cuda_graph={trainer.use_cuda_graph})", flush=True)
    fp32, fast = statistics.mean(fids["fp32"]), statistics.mean(fids["fast"])
    ratio = fast / fp32 if fp32 > 0 else float("inf")
    verdict = "PASS" if ratio <= 1.10 else "FAIL"
    summary = (f"MNIST FID (features of ganlib.classifier, {args.n_samples} samples vs {len(reference)} test "
               f"images, mean over seeds {seeds}): fp32 {fp32:.3f}, fast {fast:.3f}, ratio fast/fp32 = "
               f"{ratio:.3f} -> {verdict} (target: fast <= 1.10 x fp32 at equal steps)")
    print(summary)
    if args.out:
        date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        body = "\n".join([f"- date: {date}", f"- command: `{command_line(argv)}`",
                          f"- device: {device} ({device_name(device)})", f"- versions: {versions_line()}",
                          "", summary])
        write_section(args.out, f"{date}, FID parity, {device_name(device)}", body)
    return {"fp32": fids["fp32"], "fast": fids["fast"], "ratio": ratio, "verdict": verdict}
