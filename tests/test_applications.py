"""The applications chapter's pieces (issue 17, in progress): inpainting by latent search, the
nearest-neighbour baseline, ROC AUC and a VAE anomaly score."""
import pytest
import torch

from ganlib.chapters import applications as app
from ganlib.models import VAE


class LinearGenerator(torch.nn.Module):
    """G(z) = W z + b as a 1x4x4 image: a generator whose latent code is identifiable from 8 pixels."""

    latent_dim = 3

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(3, 16)

    def forward(self, z):
        return self.linear(z).view(-1, 1, 4, 4)


def test_latent_search_recovers_the_hidden_half_of_a_known_generator():
    torch.manual_seed(0)
    G = LinearGenerator()
    z_true = torch.randn(5, 3)
    with torch.no_grad():
        images = G(z_true)
    mask = app.half_mask((1, 4, 4), keep="top")
    start = mask * images + (1 - mask) * G(torch.randn(5, 3)).detach()
    completed, z = app.inpaint_by_latent_search(G, images, mask, steps=500, lr=0.05, restarts=2, prior_weight=0.0)
    assert app.hidden_error(completed, images, mask).max() < 1e-3 < app.hidden_error(start, images, mask).min()
    assert torch.allclose(z, z_true, atol=1e-2)
    assert all(p.requires_grad for p in G.parameters())  # the search froze G only while it ran
    with pytest.raises(ValueError, match="mask must have one image's shape"):
        app.inpaint_by_latent_search(G, images, torch.ones(1, 2, 2))


def test_nearest_neighbour_baseline_and_masks():
    g = torch.Generator().manual_seed(1)
    train = torch.rand(50, 1, 4, 4, generator=g)
    mask = app.half_mask((1, 4, 4), keep="left")
    assert mask.sum() == 8 and mask[0, :, :2].all() and not mask[0, :, 2:].any()
    filled = app.inpaint_by_nearest_neighbour(train[[7, 30]], mask, train)
    assert torch.equal(filled, train[[7, 30]])  # a training image is its own nearest neighbour
    with pytest.raises(ValueError, match="keep must be"):
        app.half_mask(keep="middle")


def test_roc_auc_against_its_definition_and_scikit_learn():
    from sklearn.metrics import roc_auc_score

    assert app.roc_auc(torch.tensor([0.0, 1.0]), torch.tensor([2.0, 3.0])) == 1.0
    assert app.roc_auc(torch.tensor([2.0, 3.0]), torch.tensor([0.0, 1.0])) == 0.0
    assert app.roc_auc(torch.ones(4), torch.ones(3)) == 0.5
    g = torch.Generator().manual_seed(2)
    normal, anomalous = torch.randn(300, generator=g), torch.randn(200, generator=g) + 0.7
    expected = roc_auc_score([0] * 300 + [1] * 200, torch.cat([normal, anomalous]).numpy())
    assert app.roc_auc(normal, anomalous) == pytest.approx(expected, abs=1e-12)


def test_vae_anomaly_score_separates_a_toy_anomaly():
    from ganlib.train import VAEConfig, VAETrainer

    torch.manual_seed(0)
    g = torch.Generator().manual_seed(3)
    top = torch.zeros(1, 4, 4)
    top[:, :2] = 1
    flip = lambda p: (torch.rand(400, 1, 4, 4, generator=g) < p).float()  # noqa: E731
    normal = (top * (1 - flip(0.05)) + (1 - top) * flip(0.05)) * 2 - 1   # top half on, a few pixels flipped
    anomalous = normal.flip(-2)                                          # the bottom half on instead
    vae = VAE(image_shape=(1, 4, 4), latent_dim=2, hidden=(32,))
    VAETrainer(vae, normal[:300], VAEConfig(steps=400, batch_size=64, progress=False, device="cpu",
                                             log_every=100)).fit()
    scores = app.vae_anomaly_scores(vae.eval(), torch.cat([normal[300:], anomalous[300:]]))
    assert app.roc_auc(scores[:100], scores[100:]) > 0.95


def test_a_residual_translator_improves_on_nearest_neighbour_upsampling():
    g = torch.Generator().manual_seed(4)
    # smooth 28x28 "images": blurred noise, so that the low-resolution input predicts the detail
    images = torch.nn.functional.avg_pool2d(torch.rand(64, 1, 28, 28, generator=g) * 2 - 1, 5, 1, 2).clamp(-1, 1)
    assert app.downsample(images).shape == (64, 1, 7, 7)
    nearest = app.low_resolution_input(images)
    model = app.train_translator(nearest, images, steps=150, batch_size=32, residual=True)
    with torch.no_grad():
        out = model(nearest)
    assert out.shape == images.shape and out.abs().max() <= 1
    assert (out - images).pow(2).mean() < (nearest - images).pow(2).mean()
    with pytest.raises(ValueError, match="reconstruction must be"):
        app.train_translator(nearest, images, steps=1, reconstruction="l3")
    with pytest.raises(ValueError, match=r"\(N, 1, 28, 28\)"):
        app.train_translator(nearest[:, :, :14], images[:, :, :14], steps=1)


def test_an_adversarial_translator_trains_its_discriminator_too():
    g = torch.Generator().manual_seed(7)
    images = (torch.rand(32, 1, 28, 28, generator=g) > 0.8).float() * 2 - 1
    edges = app.edge_map(images)
    assert edges.min() >= -1 and edges.max() <= 1 and (edges > -1).any()
    model = app.train_translator(edges, images, steps=5, adversarial_weight=0.01, reconstruction="l1")
    assert model(edges).shape == images.shape


def test_sharpness_falls_with_blur():
    g = torch.Generator().manual_seed(5)
    images = (torch.rand(8, 1, 28, 28, generator=g) > 0.7).float() * 2 - 1
    blurred = torch.nn.functional.avg_pool2d(images, 3, 1, 1)
    assert app.sharpness(blurred) < app.sharpness(images) / 2


def test_augmentation_run_trains_a_classifier_from_few_labels():
    g = torch.Generator().manual_seed(6)
    # ten "classes" of 28x28 images: a bright square at a class-specific place
    labels = torch.arange(300) % 10
    images = torch.full((300, 1, 28, 28), -1.0) + 0.1 * torch.randn(300, 1, 28, 28, generator=g)
    for i, c in enumerate(labels.tolist()):
        images[i, 0, 2 * c:2 * c + 6, 2 * c:2 * c + 6] = 1.0
    accuracy = app.augmentation_run(images[:200], labels[:200], images[200:], labels[200:], n_labelled=50, steps=60)
    assert accuracy > 0.8


class _IdentityEncoder:
    """A stand-in VAE whose code is the image itself (attribute_vector needs only encode)."""

    def encode(self, x):
        return x.flatten(1), None


def test_attribute_vector_per_class_removes_the_class_offset():
    g = torch.Generator().manual_seed(8)
    labels = torch.arange(400) % 2
    attribute = torch.rand(400, generator=g) + labels  # class 1 has more of the attribute ...
    codes = torch.stack([attribute, labels.float() * 5, torch.randn(400, generator=g) * 0.01], 1)  # ... and an offset
    images = codes.view(400, 1, 1, 3)
    pooled = app.attribute_vector(_IdentityEncoder(), images, attribute)
    per_class = app.attribute_vector(_IdentityEncoder(), images, attribute, labels=labels)
    assert pooled[1] > 2  # the pooled direction also moves towards class 1
    assert abs(per_class[1]) < 1e-6 and per_class[0] == pytest.approx(0.75, abs=0.05)  # within a class: top - bottom quartile of U(0, 1)
    with pytest.raises(ValueError, match="fraction"):
        app.attribute_vector(_IdentityEncoder(), images, attribute, fraction=0.7)
    assert app.ink(torch.full((2, 1, 2, 2), 1.0)).tolist() == [1.0, 1.0]
