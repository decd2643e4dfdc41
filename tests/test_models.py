"""ganlib.models: shapes, conditioning, spectral norm, VAE pieces, and errors that name the fix."""
import pytest
import torch

from ganlib.models import (DCGAN_SIZES, VAE, DCGANDiscriminator, DCGANGenerator, MLPDiscriminator,
                           MLPGenerator, build_model, mnist_mlp_discriminator, mnist_mlp_generator)

pytestmark = pytest.mark.usefixtures("single_thread")


def test_mlp_shapes_and_conditioning():
    G = MLPGenerator(8, (1, 4, 4), hidden=(16,), out_activation="tanh", num_classes=3)
    D = MLPDiscriminator((1, 4, 4), hidden=(16, 16), num_classes=3, spectral_norm=True)
    z, y = torch.randn(5, 8), torch.tensor([0, 1, 2, 0, 1])
    x = G(z, labels=y)
    assert x.shape == (5, 1, 4, 4) and x.abs().max() <= 1
    assert D(x, labels=y).shape == (5,)


def test_source_preset_widths():
    G, D = mnist_mlp_generator(), mnist_mlp_discriminator()
    widths = [m.out_features for m in G.modules() if isinstance(m, torch.nn.Linear)]
    assert widths == [128, 256, 512, 1024, 784]
    assert [m.out_features for m in D.modules() if isinstance(m, torch.nn.Linear)] == [512, 256, 128, 1]
    assert G(torch.randn(2, 100)).shape == (2, 1, 28, 28)


@pytest.mark.parametrize("size", DCGAN_SIZES)
@pytest.mark.parametrize("channels", [1, 3])
def test_dcgan_shapes(size, channels):
    G = DCGANGenerator(latent_dim=10, image_size=size, channels=channels, base_width=4)
    D = DCGANDiscriminator(image_size=size, channels=channels, base_width=4)
    x = G(torch.randn(2, 10))
    assert x.shape == (2, channels, size, size)
    assert D(x).shape == (2,)


def test_dcgan_conditional_and_spectral_norm():
    G = DCGANGenerator(latent_dim=10, image_size=28, base_width=8, num_classes=10)
    D = DCGANDiscriminator(image_size=28, base_width=8, num_classes=10, spectral_norm=True)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in D.modules())  # SN-GAN: no batch norm in D
    assert any("parametrizations" in name for name, _ in D.named_parameters())
    y = torch.arange(4)
    out = D(G(torch.randn(4, 10), labels=y), labels=y)
    assert out.shape == (4,)
    # the label changes the output: a projection discriminator, not one that ignores y
    x = torch.randn(4, 1, 28, 28)
    D.eval()
    assert not torch.allclose(D(x, labels=y), D(x, labels=(y + 1) % 10))


def test_spectral_norm_bounds_the_layer():
    D = MLPDiscriminator(6, hidden=(32,), spectral_norm=True)
    for _ in range(30):  # power iteration converges during training-mode forwards
        D(torch.randn(8, 6))
    w = D.net[0].weight
    assert torch.linalg.matrix_norm(w, ord=2).item() == pytest.approx(1.0, rel=1e-2)


def test_unsupported_dcgan_size_names_supported_sizes():
    with pytest.raises(ValueError) as err:
        DCGANGenerator(image_size=48)
    assert "48" in str(err.value) and "(8, 16, 28, 32, 64)" in str(err.value)
    with pytest.raises(ValueError, match="support image sizes"):
        DCGANDiscriminator(image_size=100)


def test_label_to_unconditional_model_says_num_classes():
    G = DCGANGenerator(latent_dim=10, image_size=8, base_width=4)
    with pytest.raises(ValueError, match="num_classes="):
        G(torch.randn(2, 10), labels=torch.tensor([0, 1]))
    D = MLPDiscriminator(4)
    with pytest.raises(ValueError, match="num_classes="):
        D(torch.randn(2, 4), labels=torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="needs labels"):
        MLPGenerator(2, 4, num_classes=3)(torch.randn(2, 2))


@pytest.mark.parametrize("arch", ["mlp", "conv"])
@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_vae_pieces(arch, likelihood):
    vae = VAE((1, 8, 8), latent_dim=3, arch=arch, hidden=(16,), base_width=4, likelihood=likelihood)
    x = torch.rand(5, 1, 8, 8) * 2 - 1
    decoded, mu, logvar = vae(x)
    assert decoded.shape == x.shape and mu.shape == logvar.shape == (5, 3)
    loss, rec, kl = vae.negative_elbo(x)
    assert loss.shape == rec.shape == kl.shape == (5,)
    assert (kl >= 0).all() and torch.allclose(loss, rec + kl)
    samples = vae.sample(4)
    assert samples.shape == (4, 1, 8, 8)
    if likelihood == "bernoulli":
        assert samples.abs().max() <= 1


def test_build_model_round_trip():
    D = DCGANDiscriminator(image_size=16, channels=3, base_width=4, spectral_norm=True, num_classes=2)
    clone = build_model(D.spec)
    assert type(clone) is DCGANDiscriminator
    clone.load_state_dict(D.state_dict())  # same architecture, key for key
    with pytest.raises(ValueError, match="unknown model class"):
        build_model({"class": "os.system", "kwargs": {}})


def test_dcgan_fully_connected_layout_counts_radford_and_infogan_layers():
    # InfoGAN's MNIST G (Chen et al. 2016, C.1): FC 1024, FC 7x7x128, deconv 64, deconv 1
    G = DCGANGenerator(latent_dim=100, image_size=28, base_width=64, hidden=1024)
    linears = [m for m in G.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(100, 1024), (1024, 7 * 7 * 128)]
    deconvs = [m for m in G.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [(m.in_channels, m.out_channels) for m in deconvs] == [(128, 64), (64, 1)]
    # its D: conv 64, conv 128, FC 1024, FC 1 (the logit)
    D = DCGANDiscriminator(image_size=28, base_width=64, hidden=1024)
    assert [m.out_channels for m in D.modules() if isinstance(m, torch.nn.Conv2d)] == [64, 128]
    assert [(m.in_features, m.out_features) for m in D.modules() if isinstance(m, torch.nn.Linear)] == [
        (7 * 7 * 128, 1024), (1024, 1)]
    x = G(torch.randn(3, 100))
    assert x.shape == (3, 1, 28, 28) and D(x).shape == (3,)
    # batch norm in the FC layers too (Radford et al.'s guideline), and init N(1, 0.02) for its scales
    bn1d = [m for m in G.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    assert len(bn1d) == 2 and all(abs(m.weight.mean().item() - 1) < 0.01 for m in bn1d)


@pytest.mark.parametrize("norm", ["batch", "layer", "none"])
def test_dcgan_fc_discriminator_is_conditional_and_rebuilds(norm):
    D = DCGANDiscriminator(image_size=28, base_width=8, hidden=32, norm=norm, num_classes=10).eval()
    x, y = torch.randn(4, 1, 28, 28), torch.arange(4)
    assert not torch.allclose(D(x, labels=y), D(x, labels=(y + 1) % 10))
    copy = build_model(D.spec)
    copy.load_state_dict(D.state_dict())
    assert torch.equal(copy.eval()(x, labels=y), D(x, labels=y))


def test_dcgan_without_fc_keeps_its_old_spec_and_weights():
    # checkpoints and shipped files written before the FC option rebuild to the same model
    G, D = DCGANGenerator(10, 28, 1, 8), DCGANDiscriminator(28, 1, 8)
    assert "hidden" not in G.spec["kwargs"] and "hidden" not in D.spec["kwargs"]
    torch.manual_seed(0)
    D1 = DCGANDiscriminator(28, 1, 8)
    torch.manual_seed(0)
    D2 = build_model({"class": "DCGANDiscriminator", "kwargs": dict(D1.spec["kwargs"])})
    assert list(D1.state_dict()) == list(D2.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(D1.state_dict().values(), D2.state_dict().values()))
    assert list(D1.state_dict())[-2:] == ["head.weight", "head.bias"]  # features first, then the head: init order kept
