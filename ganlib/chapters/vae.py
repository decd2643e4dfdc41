"""Chapter "Variational autoencoders": the runs, closed forms and figures the chapter shows.

The VAE itself (:class:`ganlib.models.VAE`), its trainer (:class:`ganlib.train.VAETrainer`) and
its likelihood bounds (:mod:`ganlib.likelihood`) are engine code; this module holds what only the
chapter needs:

* closed forms to check against: :func:`gaussian_kl_monte_carlo`, :func:`gradient_estimates`
  (reparameterisation vs score function), :func:`linear_gaussian_vae` and :func:`from_ppca`
  (a VAE whose ELBO is exact: probabilistic PCA);
* small runs: :func:`train_autoencoder`, :func:`train_vae`, :func:`beta_sweep`;
* pictures: :func:`latent_manifold`, :func:`encode_means`, :func:`interpolate_images`,
  :func:`mean_and_sample`, :func:`latent_explorer`;
* source 002's VAE and GAN code, transcribed to PyTorch to show what they compute:
  :func:`source002_vae`, :func:`source002_gan`.

Command line (the full-profile results the chapter shows)::

    python -m ganlib.chapters.vae beta-sweep     # book/results/vae_beta_sweep.json
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..command import POSITIVE_INT, check_output_file, number_type
from ..data import dynamic_binarize, load_mnist
from ..env import seed_everything
from ..likelihood import active_units, binary_test_set, elbo, iwae_log_likelihood
from ..losses import reconstruction_nll
from ..models import VAE
from ..train import LinearLRDecay, VAEConfig, VAETrainer
from .interactive import WithStaticFallback, figure_html
from .plots import show_images
from .results import (RESULTS_DIR, add_command, command_parser, load_results, provenance, run_command, save_results,
                      versions)

BETA_SWEEP_PATH = RESULTS_DIR / "vae_beta_sweep.json"
BETA_SWEEP_COMMAND = "python -m ganlib.chapters.vae beta-sweep"

#: Test NLLs (nats, k = 5000, dynamically binarised MNIST) from Burda et al. (2016), Table 1.
BURDA_2016_TABLE1 = [
    {"model": "VAE, 1 stochastic layer", "nll": 86.76},
    {"model": "IWAE k=50, 1 stochastic layer", "nll": 84.78},
    {"model": "VAE, 2 stochastic layers", "nll": 85.33},
    {"model": "IWAE k=50, 2 stochastic layers", "nll": 82.90},
]


# ----------------------------------------------------------------------------- closed forms


def gaussian_kl_monte_carlo(mu: torch.Tensor, logvar: torch.Tensor, samples: int = 10_000,
                            generator: torch.Generator | None = None) -> torch.Tensor:
    """KL(N(mu, diag(exp(logvar))) || N(0, I)) per row, estimated as E_q[log q(z) - log p(z)].

    The Monte Carlo counterpart of :func:`ganlib.losses.gaussian_kl`'s closed form; its standard
    error falls as 1/sqrt(``samples``).
    """
    eps = torch.randn((samples, *mu.shape), generator=generator, dtype=mu.dtype)
    z = mu + torch.exp(0.5 * logvar) * eps
    log_q = -0.5 * (eps.pow(2) + logvar + math.log(2 * math.pi))
    log_p = -0.5 * (z.pow(2) + math.log(2 * math.pi))
    return (log_q - log_p).sum(-1).mean(0)


def gradient_estimates(mu: float = 0.5, sigma: float = 1.0, target: float = 2.0, samples: int = 10_000,
                       generator: torch.Generator | None = None) -> dict[str, torch.Tensor | float]:
    r"""Per-sample estimates of d/dmu E_{z ~ N(mu, sigma^2)}[(z - target)^2], two ways.

    * reparameterisation (pathwise): z = mu + sigma * eps, gradient 2 (z - target);
    * score function (REINFORCE, Williams 1992): (z - target)^2 * d log q(z)/d mu
      = (z - target)^2 (z - mu) / sigma^2.

    Both are unbiased for the exact value 2 (mu - target). Returns ``{"reparameterisation",
    "score_function"}`` (tensors of ``samples`` estimates) and ``"exact"``.
    """
    eps = torch.randn(samples, generator=generator, dtype=torch.float64)
    z = mu + sigma * eps
    f = (z - target) ** 2
    return {"reparameterisation": 2 * (z - target), "score_function": f * (z - mu) / sigma**2,
            "exact": 2 * (mu - target)}


def linear_gaussian_vae(weight: torch.Tensor, bias: torch.Tensor, sigma: float, image_shape=None) -> VAE:
    r"""A VAE that *is* the linear-Gaussian model p(z) = N(0, I), p(x|z) = N(W z + b, sigma^2 I),
    with the exact posterior as its encoder.

    ``weight`` is W (D, k) with orthogonal columns (as probabilistic PCA's maximum-likelihood W
    has), so the posterior N(M^{-1} W^T (x - b), sigma^2 M^{-1}), M = W^T W + sigma^2 I, is
    diagonal and the encoder can represent it exactly. Then q(z|x) = p(z|x), the KL gap of the
    ELBO is 0, and every importance weight equals p(x) = N(x; b, W W^T + sigma^2 I).
    """
    w, b = weight.double(), bias.double().flatten()
    d, k = w.shape
    gram = w.T @ w
    if not torch.allclose(gram, torch.diag(torch.diagonal(gram)), atol=1e-6 * float(gram.abs().max())):
        raise ValueError("weight must have orthogonal columns (W^T W diagonal) for the posterior to be diagonal")
    m = torch.diagonal(gram) + sigma**2                       # M's diagonal
    shape = tuple(image_shape) if image_shape is not None else (d,)
    vae = VAE(shape, latent_dim=k, hidden=(), likelihood="gaussian")
    enc, dec = vae.encoder[-1], vae.decoder[0]                # the only linear layers
    with torch.no_grad():
        enc.weight.zero_()
        enc.bias.zero_()
        enc.weight[:k] = (w / m).T.float()                    # mean = M^-1 W^T (x - b)
        enc.bias[:k] = -((w / m).T @ b).float()
        enc.bias[k:] = torch.log(sigma**2 / m).float()        # log variance = log(sigma^2 / M_jj)
        dec.weight.copy_(w.float())
        dec.bias.copy_(b.float())
        vae.log_scale.fill_(math.log(sigma))
    return vae.eval()


def linear_gaussian_log_likelihood(weight: torch.Tensor, bias: torch.Tensor, sigma: float, x: torch.Tensor
                                   ) -> torch.Tensor:
    """log N(x; b, W W^T + sigma^2 I) per row of ``x`` (flattened), float64: the exact marginal."""
    w, b = weight.double(), bias.double().flatten()
    dist = torch.distributions.LowRankMultivariateNormal(b, w, torch.full_like(b, sigma**2))
    return dist.log_prob(x.reshape(len(x), -1).double())


def from_ppca(ppca, image_shape=(1, 28, 28)) -> VAE:
    """The VAE of a fitted probabilistic PCA (:class:`ganlib.chapters.classic.GaussianPixels`
    with ``rank=k``): a linear decoder, a Gaussian likelihood and the exact posterior."""
    return linear_gaussian_vae(ppca.cov_factor, ppca.mean, float(ppca.noise_var.sqrt()), image_shape)


# ----------------------------------------------------------------------------- runs


def train_autoencoder(images: torch.Tensor, latent_dim: int = 2, steps: int = 1000, batch_size: int = 128,
                      hidden=(512, 256), seed: int = 0) -> VAE:
    """A plain (deterministic) autoencoder: the VAE's layers, trained on the reconstruction loss of
    the encoder mean alone (no noise, no KL). Its codes are not pushed towards any prior."""
    seed_everything(seed)
    ae = VAE(tuple(images.shape[1:]), latent_dim=latent_dim, hidden=hidden)
    opt = torch.optim.Adam(ae.parameters(), 1e-3)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x = images[torch.randint(len(images), (batch_size,), generator=gen)]
        mu, _ = ae.encode(x)
        loss = reconstruction_nll((x + 1) / 2, ae.decode(mu)).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return ae.eval()


def train_vae(images: torch.Tensor, steps: int, latent_dim: int = 16, hidden=(512, 256), arch: str = "mlp",
              beta: float = 1.0, binarize: bool = True, batch_size: int = 128, seed: int = 0,
              lr_decay: bool = False, likelihood: str = "bernoulli") -> VAETrainer:
    """Train a VAE on ``images`` with :class:`~ganlib.train.VAETrainer`; returns the trainer (its
    ``vae`` in eval mode, its ``history``, its ``wall_time_s``)."""
    seed_everything(seed)
    shape = tuple(images.shape[1:])
    vae = VAE(shape, latent_dim=latent_dim, hidden=hidden, arch=arch, likelihood=likelihood)
    config = VAEConfig(steps=steps, batch_size=batch_size, beta=beta, binarize=binarize, seed=seed, device="cpu",
                       progress=False, log_every=max(1, min(50, steps // 20)))
    trainer = VAETrainer(vae, images, config, callbacks=[LinearLRDecay(steps)] if lr_decay else [])
    start = time.perf_counter()
    trainer.fit()
    trainer.wall_time_s = time.perf_counter() - start
    vae.eval()
    return trainer


def rate_distortion(vae: VAE, x: torch.Tensor, seed: int = 0) -> dict[str, float]:
    """Mean rate (KL, nats), distortion (reconstruction NLL, nats), negative ELBO and active units."""
    terms = elbo(vae, x, torch.Generator().manual_seed(seed))
    return {"rate": float(terms["kl"].mean()), "distortion": float(terms["rec"].mean()),
            "negative_elbo": float(-terms["elbo"].mean()), "active_units": int((active_units(vae, x) > 0.01).sum())}


def beta_sweep(train_images: torch.Tensor, test_images: torch.Tensor, betas=(0.5, 1.0, 2.0, 4.0, 8.0),
               steps: int = 2000, latent_dim: int = 16, seed: int = 0, iwae_k: int = 0, nll_images: int | None = None,
               hidden=(512, 256), log=print) -> list[dict]:
    """One VAE per beta (same seed, data, budget): rate, distortion, active units on ``test_images``
    (binary, {-1, 1}); with ``iwae_k`` also the IWAE estimate of the test NLL, on the first
    ``nll_images`` of them (default all)."""
    rows = []
    for beta in betas:
        trainer = train_vae(train_images, steps, latent_dim=latent_dim, hidden=hidden, beta=beta, seed=seed)
        row = {"beta": beta, **rate_distortion(trainer.vae, test_images), "latent_dim": latent_dim,
               "wall_time_s": round(trainer.wall_time_s, 1)}
        if iwae_k:
            gen = torch.Generator().manual_seed(seed)
            scored = test_images[:nll_images]
            row["nll_iwae"] = float(-iwae_log_likelihood(trainer.vae, scored, iwae_k, gen).mean())
            row["iwae_k"], row["nll_images"] = iwae_k, len(scored)
        rows.append(row)
        log(json.dumps(row))
    return rows


# ----------------------------------------------------------------------------- pictures


def normal_quantiles(n: int, span: float = 0.95) -> torch.Tensor:
    """``n`` evenly spaced probabilities in [(1 - span) / 2, (1 + span) / 2], mapped through N(0, 1)'s
    inverse CDF: a grid that covers the prior's mass evenly (Kingma & Welling 2014, fig. 4)."""
    p = torch.linspace((1 - span) / 2, (1 + span) / 2, n, dtype=torch.float64)
    return (math.sqrt(2) * torch.erfinv(2 * p - 1)).float()


@torch.no_grad()
def latent_manifold(vae: VAE, n: int = 15, span: float = 0.95) -> torch.Tensor:
    """E[x | z] on an n x n grid of a 2D latent space (rows: z_2 from high to low), (n*n, C, H, W)."""
    if vae.latent_dim != 2:
        raise ValueError(f"latent_manifold draws a 2D latent space; this VAE has latent_dim={vae.latent_dim}")
    q = normal_quantiles(n, span)
    z = torch.stack(torch.meshgrid(q.flip(0), q, indexing="ij"), -1).reshape(-1, 2)[:, [1, 0]]
    return vae.decode_mean(z)


@torch.no_grad()
def encode_means(vae: VAE, x: torch.Tensor, batch_size: int = 2000) -> torch.Tensor:
    """The encoder means E_q[z | x], (N, latent_dim)."""
    return torch.cat([vae.encode(x[i:i + batch_size])[0] for i in range(0, len(x), batch_size)])


@torch.no_grad()
def interpolate_images(vae: VAE, x_a: torch.Tensor, x_b: torch.Tensor, steps: int = 10) -> torch.Tensor:
    """Decoded means along the straight line between the codes of two images, (steps, C, H, W)."""
    za, zb = vae.encode(torch.stack([x_a, x_b]))[0]
    t = torch.linspace(0, 1, steps)[:, None]
    return vae.decode_mean((1 - t) * za + t * zb)


@torch.no_grad()
def mean_and_sample(vae: VAE, n: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """For the same codes z ~ N(0, I): the decoder means E[x | z] and one draw x ~ p(x | z) each
    (Bernoulli pixels in {-1, 1}, or the mean plus Gaussian noise), both in [-1, 1]."""
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n, vae.latent_dim, generator=gen)
    mean = vae.decode_mean(z)
    if vae.likelihood == "bernoulli":
        draw = dynamic_binarize(mean, gen)
    else:
        draw = mean + torch.exp(vae.log_scale) * torch.randn(mean.shape, generator=gen)
    return mean, draw


def latent_explorer(vae: VAE, test_codes: torch.Tensor | None = None, labels: torch.Tensor | None = None):
    """Two sliders over a 2D latent space that decode live under a kernel; the manifold grid on the site."""
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    if vae.latent_dim != 2:
        raise ValueError(f"the explorer has two sliders; this VAE has latent_dim={vae.latent_dim}")
    z1 = widgets.FloatSlider(0.0, min=-3.0, max=3.0, step=0.1, description="z[0]")
    z2 = widgets.FloatSlider(0.0, min=-3.0, max=3.0, step=0.1, description="z[1]")

    def draw(z1, z2):
        fig, (left, right) = plt.subplots(1, 2, figsize=(5, 2.4))
        with torch.no_grad():
            image = vae.decode_mean(torch.tensor([[z1, z2]]))
        show_images(image, nrow=1, ax=left, title=f"E[x | z = ({z1:.1f}, {z2:.1f})]")
        if test_codes is not None:
            right.scatter(test_codes[:, 0], test_codes[:, 1], c=labels, cmap="tab10", s=1, alpha=0.4)
        right.plot([z1], [z2], "k+", markersize=14, mew=2)
        right.set_xlim(-3.5, 3.5)
        right.set_ylim(-3.5, 3.5)
        right.set_title("where z is", fontsize=9)
        plt.show()

    live = widgets.interactive(draw, z1=z1, z2=z2)
    fig, ax = plt.subplots(figsize=(6, 6))
    show_images(latent_manifold(vae, 15), nrow=15, ax=ax,
                title="E[x | z] on a 15 x 15 grid of z (z[0] left to right, z[1] bottom to top)")
    return WithStaticFallback(live, figure_html(fig, alt="decoded images over the 2D latent space"))


# ----------------------------------------------------------------------------- the sources' code


class Source002VAE(nn.Module):
    """Source 002's Keras "VAE", layer for layer: ``Dense(25, relu)`` on a 100-dim input, and a
    separate ``Dense(100, sigmoid)`` fed by its *own* 25-dim input (the two are never connected)."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.Linear(100, 25)
        self.decoder = nn.Linear(25, 100)

    def encoded(self, x):
        """relu(Dense(25)(x)): codes (N, 25) of inputs (N, 100)."""
        return F.relu(self.encoder(x))

    def decoded(self, decoder_inputs):
        """sigmoid(Dense(100)(decoder_inputs)): outputs (N, 100) of the decoder's own inputs (N, 25)."""
        return torch.sigmoid(self.decoder(decoder_inputs))


def source002_vae_loss(model: Source002VAE, x: torch.Tensor, decoder_inputs: torch.Tensor,
                       reconstruction_with=slice(None)) -> dict[str, torch.Tensor]:
    """Source 002's ``vae_loss``, term for term.

    ``reconstruction_loss = mean((encoded - encoder_inputs)^2)`` compares a (N, 25) code with the
    (N, 100) input: that raises a shape error. ``reconstruction_with`` picks which input columns
    stand in (e.g. ``slice(0, 25)``) so that the rest can be computed. Then
    ``vae_loss = rec + mean(log(1e-10 + lgamma(1 - encoded^2)^2) - log(1e-10 + lgamma(1 - d^2)^2) - rec)``.
    """
    encoded = model.encoded(x)
    rec = torch.mean((encoded - x[:, reconstruction_with]) ** 2)
    a = torch.log(1e-10 + torch.lgamma(1 - encoded**2) ** 2)
    b = torch.log(1e-10 + torch.lgamma(1 - decoder_inputs**2) ** 2)
    loss = rec + torch.mean(a - b - rec)
    return {"loss": loss, "reconstruction": rec, "encoded": encoded}


def source002_vae(steps: int = 300, seed: int = 0) -> dict:
    """Train source 002's VAE loss (with the shape error patched) on 100-pixel (10x10) MNIST.

    Returns the shape error's message, the loss curve, the reconstruction term's value, the
    fraction of code units that end at exactly 0, and the decoder's gradient (always zero: no
    term of the loss depends on the decoder's weights).
    """
    seed_everything(seed)
    images = F.adaptive_avg_pool2d(load_mnist("train")[0][:5000], 10).flatten(1).add(1).div(2)  # [0, 1]
    model = Source002VAE()
    try:
        source002_vae_loss(model, images[:8], torch.rand(8, 25))
        shape_error = None
    except RuntimeError as err:
        shape_error = str(err).splitlines()[0]
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    gen = torch.Generator().manual_seed(seed)
    losses, recs, decoder_grad = [], [], 0.0
    for _ in range(steps):
        x = images[torch.randint(len(images), (256,), generator=gen)]
        out = source002_vae_loss(model, x, torch.rand(256, 25, generator=gen), slice(0, 25))
        opt.zero_grad()
        out["loss"].backward()
        decoder_grad = max(decoder_grad, float(sum(p.grad.abs().sum() for p in model.decoder.parameters()
                                                   if p.grad is not None)))
        opt.step()
        losses.append(out["loss"].item())
        recs.append(out["reconstruction"].item())
    with torch.no_grad():
        codes = model.encoded(images)
    return {"shape_error": shape_error, "loss": losses, "reconstruction": recs,
            "zero_codes": float((codes == 0).float().mean()), "decoder_gradient": decoder_grad}


def source002_gan(steps: int = 300, seed: int = 0) -> dict:
    """Source 002's "GAN": G = Dense(100, sigmoid) on noise, D = Dense(1, sigmoid) on its own input.

    Its losses, as written: ``generator_loss = mean((G(z) - discriminator_inputs)^2)`` (G regresses
    onto the data it is paired with) and ``discriminator_loss = mean((D(x) - 1)^2)`` (D learns to
    say "real" to whatever it sees). Neither loss contains the other network: nothing is
    adversarial. Trained on 10x10 MNIST with one Adam each; returns D's outputs on real and fake
    images, G's samples, their spread across z (mean over pixels of the per-pixel std), and the
    mean absolute difference between the average sample and the data's mean image, which G's MSE
    regression converges to.
    """
    seed_everything(seed)
    images = F.adaptive_avg_pool2d(load_mnist("train")[0][:5000], 10).flatten(1).add(1).div(2)
    G, D = nn.Sequential(nn.Linear(100, 100), nn.Sigmoid()), nn.Sequential(nn.Linear(100, 1), nn.Sigmoid())
    opt_g, opt_d = torch.optim.Adam(G.parameters(), 1e-3), torch.optim.Adam(D.parameters(), 1e-3)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        start = float((G(torch.randn(1000, 100, generator=gen)).mean(0) - images.mean(0)).abs().mean())
    for _ in range(steps):
        x = images[torch.randint(len(images), (256,), generator=gen)]
        z = torch.randn(256, 100, generator=gen)
        g_loss = torch.mean((G(z) - x) ** 2)
        d_loss = torch.mean((D(x) - 1) ** 2)
        opt_g.zero_grad()
        opt_d.zero_grad()
        (g_loss + d_loss).backward()  # the two losses share no parameters: one backward each would be the same
        opt_g.step()
        opt_d.step()
    with torch.no_grad():
        z = torch.randn(1000, 100, generator=gen)
        fakes = G(z)
        return {"d_real": float(D(images).mean()), "d_fake": float(D(fakes).mean()), "samples": fakes[:16],
                "sample_spread": float(fakes.std(0).mean()), "data_spread": float(images.std(0).mean()),
                "distance_to_data_mean": float((fakes.mean(0) - images.mean(0)).abs().mean()),
                "initial_distance_to_data_mean": start,
                "data_mean": images.mean(0)}


# ----------------------------------------------------------------------------- results


def load_beta_sweep(path: Path = BETA_SWEEP_PATH) -> dict:
    """The committed full-profile beta sweep, or an error that names the command that writes it."""
    return load_results(path, BETA_SWEEP_COMMAND)


def main(argv=None) -> None:
    """``python -m ganlib.chapters.vae beta-sweep``: write the beta sweep's results file."""
    parser, sub = command_parser("python -m ganlib.chapters.vae", "Full-profile results of the VAE chapter.")
    b = add_command(sub, "beta-sweep", "one VAE per beta: rate, distortion, active units, IWAE NLL", BETA_SWEEP_PATH,
                    steps=10_000, iwae_k=1000)
    b.add_argument("--nll-images", type=number_type(int, 1, True, "an integer from 1 to 10000 (of MNIST's 10,000 "
                                                    "test images)", highest=10_000),
                   default=2000, help="test images scored by the IWAE bound")
    b.add_argument("--threads", type=POSITIVE_INT, default=1)
    run_command(parser, _beta_sweep, argv)


def _beta_sweep(args) -> None:
    check_output_file(args.out, "--out")
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    train = load_mnist("train")[0]
    test = binary_test_set(load_mnist("test")[0])
    rows = beta_sweep(train, test, steps=args.steps, latent_dim=16, iwae_k=args.iwae_k, nll_images=args.nll_images)
    defaults = {"steps": 10_000, "iwae_k": 1000, "nll_images": 2000}
    command = BETA_SWEEP_COMMAND + "".join(f" --{k.replace('_', '-')} {getattr(args, k)}"
                                           for k, v in defaults.items() if getattr(args, k) != v)
    record = {**provenance(command, start, machine={"device": "cpu", "versions": versions()}),
              "setup": {"model": "VAE MLP 784-512-256-16, Bernoulli decoder", "data": "MNIST train (60k), "
                        "dynamically binarised", "steps": args.steps, "batch_size": 128, "optimizer": "Adam 1e-3",
                        "evaluated_on": "the 10k test images, binarised once (ganlib.likelihood.binary_test_set)",
                        "iwae_k": args.iwae_k, "nll_images": args.nll_images, "seed": 0},
              "rows": rows}
    print(f"wrote {save_results(record, args.out)}")


if __name__ == "__main__":
    main()
