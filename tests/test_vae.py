"""The VAE chapters' engine changes and helpers: dynamic binarisation in the trainer, the encoder's
input range, foreach Adam, KL warm-up, the pytorch/examples transcription, the sources' code, the
ring VAE and the results files the chapters print."""
import json
import math

import pytest
import torch

from ganlib.bench.vae_examples import ExamplesVAE, examples_loss
from ganlib.chapters import selfcheck
from ganlib.chapters import vae as chapter
from ganlib.chapters import vae_vs_gan
from ganlib.models import VAE
from ganlib.train import KLWarmup, VAEConfig, VAETrainer


def _digits(n=256, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 8, 8, generator=gen) * 2 - 1


def test_binarize_feeds_the_trainer_fresh_binary_batches():
    trainer = VAETrainer(VAE((1, 8, 8), latent_dim=2, hidden=(16,)), _digits(),
                         VAEConfig(steps=1, batch_size=32, binarize=True, device="cpu", progress=False))
    a, b = trainer.draw_inputs().x, trainer.draw_inputs().x
    assert set(a.unique().tolist()) <= {-1.0, 1.0}
    assert not torch.equal(a, b)
    plain = VAETrainer(VAE((1, 8, 8), latent_dim=2, hidden=(16,)), _digits(),
                       VAEConfig(steps=1, batch_size=32, device="cpu", progress=False))
    assert len(plain.draw_inputs().x.unique()) > 2  # grey levels untouched without binarize
    with pytest.raises(ValueError, match="binarize"):
        VAEConfig(binarize="yes")


def test_the_examples_model_and_loss_equal_ganlibs_vae_with_the_same_weights():
    torch.manual_seed(0)
    ours, theirs = VAE((1, 28, 28), latent_dim=20, hidden=(400,)), ExamplesVAE()
    enc, dec = ours.encoder[1], ours.encoder[3]
    with torch.no_grad():
        enc.weight.copy_(theirs.fc1.weight)
        enc.bias.copy_(theirs.fc1.bias)
        dec.weight.copy_(torch.cat([theirs.fc21.weight, theirs.fc22.weight]))
        dec.bias.copy_(torch.cat([theirs.fc21.bias, theirs.fc22.bias]))
        for a, b in ((ours.decoder[0], theirs.fc3), (ours.decoder[2], theirs.fc4)):
            a.weight.copy_(b.weight)
            a.bias.copy_(b.bias)
    x01 = torch.rand(16, 1, 28, 28)
    eps = torch.randn(16, 20)
    mu, logvar = theirs.encode(x01.view(-1, 784))
    recon = theirs.decode(mu + eps * torch.exp(0.5 * logvar))
    reference = examples_loss(recon, x01, mu, logvar)            # summed over the batch
    ganlib_loss = ours.negative_elbo(x01 * 2 - 1, eps=eps)[0].sum()
    assert torch.allclose(ganlib_loss, reference, rtol=1e-5), (ganlib_loss, reference)


def test_the_bernoulli_encoder_sees_grey_levels_in_0_1():
    vae = VAE((1, 2, 2), latent_dim=1, hidden=())
    with torch.no_grad():
        vae.encoder[-1].weight.fill_(1.0)
        vae.encoder[-1].bias.zero_()
    mu, _ = vae.encode(-torch.ones(1, 1, 2, 2))  # an all-black image in ganlib's [-1, 1]
    assert float(mu) == 0.0  # black is 0, not -1, at the encoder's input
    gaussian = VAE((1, 2, 2), latent_dim=1, hidden=(), likelihood="gaussian")
    with torch.no_grad():
        gaussian.encoder[-1].weight.fill_(1.0)
        gaussian.encoder[-1].bias.zero_()
    assert float(gaussian.encode(-torch.ones(1, 1, 2, 2))[0]) == -4.0  # the Gaussian one takes data as they are


def test_cpu_adam_is_foreach_and_bitwise_equal_to_the_per_tensor_loop():
    def run(foreach):
        torch.manual_seed(0)
        trainer = VAETrainer(VAE((1, 8, 8), latent_dim=2, hidden=(16,)), _digits(),
                             VAEConfig(steps=25, batch_size=32, device="cpu", progress=False))
        if not foreach:  # the same optimiser with torch's CPU default
            trainer.opt = trainer.optimizers["vae"] = torch.optim.Adam(trainer.vae.parameters(), 1e-3, foreach=False)
        else:
            assert trainer.opt.defaults["foreach"] is True
        trainer.fit()
        return [p.detach().clone() for p in trainer.vae.parameters()]

    assert all(torch.equal(a, b) for a, b in zip(run(True), run(False)))


def test_kl_warmup_raises_beta_from_zero_to_its_target():
    trainer = VAETrainer(VAE((1, 8, 8), latent_dim=2, hidden=(16,)), _digits(),
                         VAEConfig(steps=40, batch_size=32, device="cpu", progress=False, log_every=10),
                         callbacks=[KLWarmup(20, target=2.0, every=10)])
    trainer.config.beta = 0.0  # as the docstring says: start from 0
    seen = []
    trainer.callbacks.append(lambda t: seen.append(t.config.beta))
    trainer.fit()
    assert seen[0] == pytest.approx(1.0) and seen[-1] == pytest.approx(2.0)
    with pytest.raises(ValueError, match="steps and every"):
        KLWarmup(0)


def test_source002_vae_cannot_run_and_trains_nothing_sensible():
    out = chapter.source002_vae(steps=60)
    assert "size of tensor" in out["shape_error"] or "must match" in out["shape_error"]
    assert out["decoder_gradient"] == 0.0       # no term depends on the decoder
    assert out["loss"][-1] < out["loss"][0]      # the "loss" falls ...
    assert out["zero_codes"] > 0.5               # ... by pushing the codes to 0


def test_source002_vae_loss_does_not_contain_the_reconstruction():
    model = chapter.Source002VAE()
    x, d = torch.rand(8, 100), torch.rand(8, 25)
    x[:, 25:50] += 5.0  # compared with these columns, the "reconstruction" is far worse ...
    a = chapter.source002_vae_loss(model, x, d, slice(0, 25))
    b = chapter.source002_vae_loss(model, x, d, slice(25, 50))
    assert b["reconstruction"] > a["reconstruction"] + 10
    assert torch.allclose(a["loss"], b["loss"], atol=1e-5)  # ... and the loss is the same


def test_source002_gan_regresses_to_the_data_mean_and_d_says_real_to_everything():
    out = chapter.source002_gan(steps=500)
    assert out["d_real"] > 0.7 and out["d_fake"] > 0.7
    assert out["sample_spread"] < 0.15 * out["data_spread"]
    assert out["distance_to_data_mean"] < 0.8 * out["initial_distance_to_data_mean"]  # heading for the mean image


def test_autoencoder_codes_are_not_standard_normal_but_the_vaes_are():
    images = _digits(512)
    ae = chapter.train_autoencoder(images, latent_dim=2, steps=150, hidden=(32,))
    vae = chapter.train_vae(images, 150, latent_dim=2, hidden=(32,), binarize=False).vae
    ae_codes, vae_codes = chapter.encode_means(ae, images), chapter.encode_means(vae, images)
    assert vae_codes.std(0).max() < 1.5
    assert vae_codes.abs().mean() < ae_codes.abs().mean() or ae_codes.std(0).max() > 1.5


def test_manifold_and_explorer_shapes():
    vae = VAE((1, 8, 8), latent_dim=2, hidden=(16,))
    grid = chapter.latent_manifold(vae, 5)
    assert grid.shape == (25, 1, 8, 8)
    q = chapter.normal_quantiles(5)
    assert torch.allclose(q, -q.flip(0)) and q[2] == 0
    with pytest.raises(ValueError, match="latent_dim=3"):
        chapter.latent_manifold(VAE((1, 8, 8), latent_dim=3, hidden=(16,)))
    out = chapter.latent_explorer(vae)
    assert "<img" in out._repr_mimebundle_()["text/html"]
    mean, draw = chapter.mean_and_sample(vae, 4)
    assert set(draw.unique().tolist()) <= {-1.0, 1.0} and mean.shape == draw.shape


def test_beta_sweep_trades_rate_for_distortion():
    images = _digits(512)
    test = (_digits(128, seed=1) > 0).float() * 2 - 1
    rows = chapter.beta_sweep(images, test, betas=(0.5, 4.0), steps=120, latent_dim=4, log=lambda s: None)
    low, high = rows
    assert high["rate"] < low["rate"]
    assert high["active_units"] <= low["active_units"]


def test_ring_vae_scores_with_the_benchmarks_metric():
    out = vae_vs_gan.ring_vae(seed=0, steps=60, n_eval=200, initial_scale=0.05)
    assert set(out["samples"]) == {"modes", "hq", "reverse_kl"}
    assert out["points"]["samples"].shape == (200, 2)
    assert 0 <= out["means"]["modes"] <= 8


def test_vae_selfchecks():
    assert selfcheck.check_vae_gaussian_kl(0.5 * (1 + 0.25 - 1 - math.log(0.25)))
    assert not selfcheck.check_vae_gaussian_kl(0.5 * (1 + 0.25 - 1 - math.log(0.5)))
    assert selfcheck.check_vae_posterior_variance(0.2) and not selfcheck.check_vae_posterior_variance(0.25)
    assert selfcheck.check_vs_gan_bits_per_pixel(88.0 / (784 * math.log(2)), 88.0)
    assert not selfcheck.check_vs_gan_bits_per_pixel(88.0 / 784, 88.0)


def test_the_chapters_results_files_hold_what_they_print():
    sweep = chapter.load_beta_sweep()
    assert {1.0, 4.0} <= {r["beta"] for r in sweep["rows"]}
    # the IWAE bound is tighter than the ELBO (NLL on the first 2,000 images, -ELBO on all 10,000)
    assert all(r["nll_iwae"] <= r["negative_elbo"] + 2 for r in sweep["rows"])
    comparison = vae_vs_gan.load_comparison()
    kinds = {r["model"]: r["kind"] for r in comparison["models"]}
    assert kinds["vae-mnist"] == "VAE" and kinds["dcgan-mnist"] == "GAN"
    assert comparison["models"][0]["nll_iwae"] is not None and comparison["models"][1]["nll_iwae"] is None
    bench = json.loads((chapter.RESULTS_DIR / "vae_bench.json").read_text())
    assert bench["runs"]["pytorch/examples"]["steps"] == 469 * bench["epochs"]


def test_missing_results_name_the_command(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m ganlib.chapters.vae beta-sweep"):
        chapter.load_beta_sweep(tmp_path / "none.json")
    with pytest.raises(FileNotFoundError, match="python -m ganlib.chapters.vae_vs_gan compare"):
        vae_vs_gan.load_comparison(tmp_path / "none.json")
