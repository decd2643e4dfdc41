"""Chapter "VAE vs GAN": the book's shipped VAE and GANs, measured the same way, and the ring test.

* :func:`compare` measures what the table shows for each shipped model: MNIST FID, IS, precision,
  recall and label shares (from its provenance record, measured by ``ganlib.pretrained``), the
  test log-likelihood where one is defined, training time, the time to draw 10,000 samples on
  this machine, parameters, and whether it can encode an image;
* :func:`ring_vae` trains a VAE whose decoder is the mode-collapse benchmark's generator network
  on the 8-mode ring, and scores it like the GANs of chapter "Losses" (:func:`ganlib.metrics.mode_coverage`).

Command line (the full-profile results file the chapter prints)::

    python -m ganlib.chapters.vae_vs_gan compare      # book/results/vae_vs_gan.json
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import torch

from .. import pretrained
from ..command import check_output_file
from ..data import gaussian_ring
from ..env import seed_everything
from ..metrics import mode_coverage
from ..models import VAE
from ..train import LinearLRDecay, VAEConfig, VAETrainer
from .experiments import MODE_COLLAPSE_PATH, PROFILES, load_mode_collapse
from .results import (RESULTS_DIR, add_command, command_parser, load_results, provenance, run_command, save_results,
                      versions)

COMPARE_PATH = RESULTS_DIR / "vae_vs_gan.json"
COMPARE_COMMAND = "python -m ganlib.chapters.vae_vs_gan compare"
MODELS = ("vae-mnist", "dcgan-mnist", "mlp-mnist")
#: the ring VAEs: label -> the decoder's initial standard deviation
RING_VARIANTS = {"vae_default": 1.0, "vae_small_scale": 0.05}


@torch.no_grad()
def sampling_time(model: torch.nn.Module, n: int = 10_000, repeats: int = 3) -> float:
    """Seconds to draw ``n`` MNIST samples (the best of ``repeats``), as ``pretrained.generate`` draws them."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        pretrained.generate(model, n)
        times.append(time.perf_counter() - start)
    return min(times)


def model_row(name: str, sample_n: int = 10_000) -> dict:
    """One model's row of the comparison (see the module docstring)."""
    record = pretrained.info(name)
    model = pretrained.load(name)
    is_vae = isinstance(model, VAE)
    row = {"model": name, "kind": "VAE" if is_vae else "GAN", **{k: record["metrics"][k] for k in
           ("fid", "inception_score", "precision", "recall", "label_histogram")},
           "nll_iwae": record["likelihood"]["nll_iwae"] if is_vae else None,
           "nll_k": record["likelihood"]["k"] if is_vae else None,
           "train_steps": record["steps"], "train_wall_time_s": record["wall_time_s"],
           "train_device": record["device"], "train_threads": record["versions"]["threads"],
           "sampling_s": sampling_time(model, sample_n), "sampling_n": sample_n,
           "parameters": record["parameters"], "encoder": is_vae,
           "trained_parameters": record["parameters"] + record.get("discriminator_parameters", 0)}
    return row


def ring_vae(seed: int = 0, steps: int | None = None, n_eval: int | None = None,
             initial_scale: float = 1.0) -> dict:
    """A VAE on the 8-mode ring with the benchmark generator's network as its decoder.

    The decoder is ``MLP 2 -> 128 -> 128 -> 128 -> 2`` with ReLU, the generator of
    :data:`ganlib.chapters.experiments.PROFILES` (latent size 2), and a Gaussian likelihood with a
    learned scale; the encoder mirrors it. Same steps, batch and learning-rate decay as the GANs'
    full profile. Scored on ``n_eval`` samples x ~ p(x|z) and on the decoder means E[x|z].

    ``initial_scale`` is the decoder's starting standard deviation. At ganlib's default, 1, the
    ring's VAE collapses: a decoder that ignores z and outputs the data mean with a scale of
    about 0.7 (the ring's spread per coordinate) is an optimum the KL term reaches first. Starting
    at 0.05 the likelihood of a decoder that uses z is high enough from the start.
    """
    setup = PROFILES["full"]
    steps = steps or setup.steps
    n_eval = n_eval or setup.n_eval
    seed_everything(seed)
    vae = VAE((2,), latent_dim=setup.latent_dim, hidden=setup.g_hidden, likelihood="gaussian")
    with torch.no_grad():
        vae.log_scale.fill_(math.log(initial_scale))
    ring = gaussian_ring()
    config = VAEConfig(steps=steps, batch_size=setup.batch_size, lr=1e-3, seed=seed, device="cpu",
                       progress=False, log_every=50)
    trainer = VAETrainer(vae, ring, config, callbacks=[LinearLRDecay(steps)])
    trainer.fit()
    gen = torch.Generator().manual_seed(10_000 + seed)
    with torch.no_grad():
        z = torch.randn(n_eval, vae.latent_dim, generator=gen)
        means = vae.decode_mean(z)
        samples = means + torch.exp(vae.log_scale) * torch.randn(means.shape, generator=gen)
    out = {"seed": seed, "steps": steps, "initial_scale": initial_scale,
           "decoder_scale": float(torch.exp(vae.log_scale.detach()))}
    for kind, points in (("samples", samples), ("means", means)):
        cov = mode_coverage(points, ring.centers, ring.std)
        out[kind] = {"modes": cov.modes_captured, "hq": 100 * cov.high_quality_fraction, "reverse_kl": cov.reverse_kl}
    out["points"] = {"samples": samples, "means": means}
    return out


def gan_ring_summary(path: Path = MODE_COLLAPSE_PATH, config: str = "nonsaturating") -> dict:
    """The GAN's ring row of the full mode-collapse benchmark (same generator network)."""
    results = load_mode_collapse(path)
    row = next(r for r in results["summary"] if r["config"] == config and r["dataset"] == "ring")
    return {**row, "command": results["command"], "date": results["date"]}


def compare(seeds=tuple(range(10))) -> dict:
    """Every shipped model's row and the ring comparison (VAE over ``seeds``; the GAN from its results)."""
    start = time.perf_counter()
    rows = [model_row(name) for name in MODELS]
    ring = {"gan": gan_ring_summary()}
    for label, scale in RING_VARIANTS.items():
        runs = []
        for seed in seeds:
            run = ring_vae(seed, initial_scale=scale)
            run.pop("points")
            runs.append(run)
            print(json.dumps(run), flush=True)
        summary = {f"{kind}_{key}": sum(r[kind][key] for r in runs) / len(runs)
                   for kind in ("samples", "means") for key in ("modes", "hq", "reverse_kl")}
        summary["decoder_scale"] = sum(r["decoder_scale"] for r in runs) / len(runs)
        ring[label] = {"initial_scale": scale, "seeds": list(seeds), **summary, "runs": runs}
    return {**provenance(COMPARE_COMMAND, start, machine={"environment": versions()}), "models": rows, "ring": ring}


def load_comparison(path: Path = COMPARE_PATH) -> dict:
    """The committed comparison, or an error that names the command that writes it."""
    return load_results(path, COMPARE_COMMAND)


def main(argv=None) -> None:
    """``python -m ganlib.chapters.vae_vs_gan compare``: write the comparison's results file."""
    parser, sub = command_parser("python -m ganlib.chapters.vae_vs_gan", "The VAE-vs-GAN comparison's results file.")
    add_command(sub, "compare", "measure the shipped models and train the ring VAEs", COMPARE_PATH, threads=1)
    run_command(parser, _compare, argv)


def _compare(args) -> None:
    check_output_file(args.out, "--out")
    torch.set_num_threads(args.threads)
    print(f"wrote {save_results(compare(), args.out)}")


if __name__ == "__main__":
    main()
