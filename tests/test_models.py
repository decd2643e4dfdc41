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
