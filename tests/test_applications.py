"""The applications chapters' pieces (book/applications, book/applications_image): inpainting by latent
search, its baseline, ROC AUC and a VAE anomaly score, translators, augmentation, latent arithmetic,
conditional accuracy, token gradients, the self-checks and the results files."""
import pytest
import torch

from ganlib.chapters import applications as app
from ganlib.models import VAE, DCGANGenerator


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


class CodedLinearGenerator(LinearGenerator):
    """LinearGenerator's noise (z[:, :3]) plus an InfoGAN-style code of 4 values read from z[:, 3:]
    (argmax), which adds one of four very different offsets: only the right code can fit an image."""

    latent_dim, code_classes = 7, 4
    code = DCGANGenerator.code
    latent_with_code = DCGANGenerator.latent_with_code
    _check_code = DCGANGenerator._check_code

    def __init__(self):
        super().__init__()
        self.offsets = torch.nn.Parameter(5 * torch.randn(4, 16))

    def forward(self, z):
        return (self.linear(z[:, :3]) + self.offsets[self.code(z)]).view(-1, 1, 4, 4)


def test_latent_search_enumerates_a_discrete_code_and_keeps_it():
    torch.manual_seed(0)
    G = CodedLinearGenerator()
    z_true = G.latent_with_code(torch.randn(6, 7), torch.tensor([0, 1, 2, 3, 2, 1]))
    with torch.no_grad():
        images = G(z_true)
    mask = app.half_mask((1, 4, 4), keep="top")
    completed, z = app.inpaint_by_latent_search(G, images, mask, steps=500, lr=0.05, restarts=2, prior_weight=1e-3)
    assert torch.equal(G.code(z), G.code(z_true))  # one start per code value; the right one fits best
    assert app.hidden_error(completed, images, mask).max() < 1e-2


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


class LabelImages(torch.nn.Module):
    """A conditional "generator" that draws class c as an image whose pixel c is lit (``obeys=True``),
    or that draws class 3 whatever it is asked for."""

    latent_dim, num_classes = 2, 10

    def __init__(self, obeys: bool = True):
        super().__init__()
        self.obeys = obeys
        self.scale = torch.nn.Parameter(torch.ones(()))

    def forward(self, z, labels):
        drawn = labels if self.obeys else torch.full_like(labels, 3)
        images = -torch.ones(len(z), 1, 28, 28)
        images.view(len(z), -1)[torch.arange(len(z)), drawn] = 1.0
        return images * self.scale


class PixelReader(torch.nn.Module):
    """A classifier with ganlib's interface (features, head) that reads which of pixels 0-9 is lit."""

    def __init__(self):
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(()))  # classify() finds the device from a parameter

    def features(self, x):
        return x.flatten(1)[:, :10]

    def head(self, features):
        return features * 10


def test_conditional_accuracy_measures_whether_the_label_is_obeyed():
    assert torch.equal(app.conditional_accuracy(LabelImages(True), PixelReader(), n_per_class=7), torch.ones(10))
    ignored = app.conditional_accuracy(LabelImages(False), PixelReader(), n_per_class=7)
    assert ignored[3] == 1 and ignored.sum() == 1
    with pytest.raises(ValueError, match="needs a conditional generator"):
        app.conditional_accuracy(LinearGenerator(), PixelReader())


def test_low_resolution_neighbours_share_the_low_resolution_image():
    g = torch.Generator().manual_seed(3)
    train = torch.rand(200, 1, 28, 28, generator=g) * 2 - 1
    neighbours = app.low_resolution_neighbours(train[17], train, k=5)
    assert neighbours.shape == (5, 1, 28, 28) and torch.equal(neighbours[0], train[17])
    low = app.downsample(train).flatten(1)
    distances = (low - low[17]).norm(dim=1)
    assert (app.downsample(neighbours).flatten(1) - low[17]).norm(dim=1).max() <= distances.sort().values[4] + 1e-6
    with pytest.raises(ValueError, match="one image"):
        app.low_resolution_neighbours(train[:2], train)


def test_token_gradients_exact_reinforce_and_gumbel_softmax():
    logits, reward = torch.tensor([1.5, 0.0, -0.5, 0.3]), torch.tensor([1.0, -1.0, 0.5, 0.0])
    grads = app.token_gradients(logits, reward, samples=20_000, temperature=0.5)
    auto = logits.double().clone().requires_grad_(True)
    (auto.softmax(0) * reward.double()).sum().backward()
    assert torch.allclose(grads["exact"], auto.grad, atol=1e-12)  # the closed form p (r - E r)
    assert grads["hard sample"] is None  # no gradient through a sampled token
    standard_error = grads["reinforce std"] / 20_000 ** 0.5
    assert ((grads["reinforce"] - grads["exact"]).abs() < 4 * standard_error + 1e-9).all()  # unbiased
    hot = app.token_gradients(logits, reward, samples=20_000, temperature=10.0)["gumbel-softmax"]
    assert (hot - grads["exact"]).abs().max() > 0.1  # a hot relaxation is biased towards no gradient
    with pytest.raises(ValueError, match="vectors of one length"):
        app.token_gradients(logits, reward[:3])


def test_the_translators_receptive_field_is_what_the_self_check_expects():
    from ganlib.chapters import selfcheck

    model = app.Translator()
    x = torch.zeros(1, 1, 28, 28, requires_grad=True)
    model(x)[0, 0, 14, 14].backward()
    rows, cols = torch.nonzero(x.grad[0, 0], as_tuple=True)
    side = int(rows.max() - rows.min() + 1)
    assert side == int(cols.max() - cols.min() + 1) == 7
    assert selfcheck.check_app_receptive_field(side) and not selfcheck.check_app_receptive_field(9)


def test_application_self_checks():
    from ganlib.chapters import selfcheck

    assert selfcheck.check_app_flipped_auc(0.82, 0.18) and not selfcheck.check_app_flipped_auc(0.18, 0.18)
    assert selfcheck.check_app_l2_l1_minimisers(-0.5, -1.0)
    assert not selfcheck.check_app_l2_l1_minimisers(-1.0, -1.0)  # the median is not the L2 answer
    assert selfcheck.check_app_l2_l1_minimisers(0.0, 0.3, targets=(-1, -1, 1, 1))  # any point between medians
    assert not selfcheck.check_app_l2_l1_minimisers(0.0, 1.5, targets=(-1, -1, 1, 1))


def test_results_files_load_and_missing_ones_name_their_commands(tmp_path):
    augmentation, anomaly = app.load_augmentation(), app.load_anomaly()
    assert len(augmentation["rows"]) >= 5 and augmentation["command"] == app.AUGMENTATION_COMMAND
    assert sorted(r["held_out"] for r in anomaly["rows"]) == list(range(10))
    assert all(0 <= r["auc"] <= 1 for r in anomaly["rows"])
    for load, command in ((app.load_augmentation, "augment"), (app.load_anomaly, "anomaly")):
        with pytest.raises(FileNotFoundError, match=f"python -m ganlib.chapters.applications {command}"):
            load(tmp_path / "missing.json")
