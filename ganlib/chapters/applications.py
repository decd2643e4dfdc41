"""Helpers of the chapters "Applications" (book/applications.ipynb) and "Restoring and translating
images" (book/applications_image.ipynb).

* conditional generation: the share of a conditional generator's samples that the MNIST classifier
  assigns to the requested class (:func:`conditional_accuracy`);
* inpainting by latent optimisation (Yeh et al., 2017): :func:`inpaint_by_latent_search`, for a GAN
  generator or a VAE decoder, the nearest-neighbour baseline :func:`inpaint_by_nearest_neighbour`,
  and the error on the hidden pixels (:func:`hidden_error`);
* anomaly detection: a VAE trained without one class (:func:`train_vae_without`), its negative
  ELBO as the score (:func:`vae_anomaly_scores`) and the ROC AUC (:func:`roc_auc`);
* image-to-image translation with one :class:`Translator` and :func:`train_translator`, with a
  reconstruction loss alone or with a conditional adversarial loss: super-resolution 7x7 -> 28x28
  (:func:`low_resolution_input`; SRGAN's idea) and edge map -> digit (:func:`edge_map`; pix2pix),
  judged by :func:`sharpness` and the classifier; :func:`low_resolution_neighbours` shows why an
  L2 upsampler is blurry (many sharp digits share one low-resolution image, and L2 returns their mean);
* data augmentation: a classifier from 100 labelled digits, with or without generated ones
  (:func:`augmentation_run`);
* why text GANs struggle: the gradient of a reward through one sampled token, exact and by the two
  workarounds, REINFORCE (SeqGAN) and the Gumbel-softmax (:func:`token_gradients`);
* latent arithmetic: an attribute direction in a VAE's code space (:func:`attribute_vector`, here
  for :func:`ink`, stroke thickness) and images moved along it (:func:`shift_along`);
* two commands with results files in ``book/results/``: ``python -m ganlib.chapters.applications
  augment`` (5 seeds: ``applications_augmentation.json``) and ``anomaly`` (each digit held out in
  turn: ``applications_anomaly.json``).
"""
from __future__ import annotations

import time

import torch

from .. import metrics, pretrained
from ..classifier import MNISTClassifier, accuracy, classify
from ..data import load_mnist, random_subset
from ..env import seed_everything
from ..likelihood import elbo
from ..losses import discriminator_loss, generator_loss
from ..models import VAE, DCGANDiscriminator, image_decoder
from ..train import VAEConfig, VAETrainer
from .classic import binarize
from .results import (RESULTS_DIR, add_command, command_parser, load_results, provenance, run_one_thread_command,
                      save_results)


def half_mask(shape=(1, 28, 28), keep: str = "top") -> torch.Tensor:
    """A 0/1 mask of one image's shape that keeps the ``keep`` half ("top", "bottom", "left", "right")."""
    c, h, w = shape
    mask = torch.zeros(shape)
    if keep == "top":
        mask[:, : h // 2] = 1
    elif keep == "bottom":
        mask[:, h // 2:] = 1
    elif keep == "left":
        mask[:, :, : w // 2] = 1
    elif keep == "right":
        mask[:, :, w // 2:] = 1
    else:
        raise ValueError(f"keep must be 'top', 'bottom', 'left' or 'right', got {keep!r}")
    return mask


def inpaint_by_latent_search(model: torch.nn.Module, images: torch.Tensor, mask: torch.Tensor, steps: int = 200,
                             lr: float = 0.05, restarts: int = 4, prior_weight: float = 1e-3,
                             seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Fill the hidden part of ``images`` from a generator, by searching its latent space.

    Yeh et al. (2017): find z* = argmin_z ||M * (G(z) - x)||^2 + prior_weight * ||z||^2 (the second
    term keeps z where the prior put mass), then return M * x + (1 - M) * G(z*). Adam on z, from
    ``restarts`` random starts per image; each image keeps the start with the lowest visible error.
    Works for a GAN generator or a VAE (through its decoder mean). Returns ``(completed, z*)``.

    For a generator with an InfoGAN code (``code_classes = K``) the starts are rounded up to a
    multiple of K, each code value taking the same number, and only the rest of z is searched:
    the code is discrete, so no gradient can move it, and Adam's normalised steps on the prior
    term alone would change it at random.
    """
    if mask.shape != images.shape[1:]:
        raise ValueError(f"mask must have one image's shape {tuple(images.shape[1:])}, got {tuple(mask.shape)}")
    decode = image_decoder(model)
    was_training = model.training
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    n = len(images)
    code_classes = getattr(model, "code_classes", 0)
    if code_classes:
        restarts = code_classes * -(-restarts // code_classes)
    target = images.repeat(restarts, *[1] * (images.dim() - 1))
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n * restarts, model.latent_dim, generator=g)
    if code_classes:  # start r draws code r mod K; the code's entries stay fixed
        z = model.latent_with_code(z, (torch.arange(restarts) % code_classes).repeat_interleave(n))
    searched = model.latent_dim - code_classes
    noise, code_part = z[:, :searched].clone().requires_grad_(True), z[:, searched:]
    optimizer = torch.optim.Adam([noise], lr=lr)
    for _ in range(steps):
        optimizer.zero_grad()
        visible_error = ((decode(torch.cat([noise, code_part], 1)) - target) * mask).pow(2).flatten(1).sum(1)
        (visible_error + prior_weight * noise.pow(2).sum(1)).sum().backward()
        optimizer.step()
    z = torch.cat([noise.detach(), code_part], 1)
    with torch.no_grad():
        out = decode(z)
        visible_error = ((out - target) * mask).pow(2).flatten(1).sum(1).view(restarts, n)
        best = visible_error.argmin(0)
        pick = best * n + torch.arange(n)
        completed = mask * images + (1 - mask) * out[pick]
    for p in model.parameters():
        p.requires_grad_(True)
    model.train(was_training)
    return completed, z.detach()[pick]


def inpaint_by_nearest_neighbour(images: torch.Tensor, mask: torch.Tensor, train: torch.Tensor) -> torch.Tensor:
    """The baseline: fill the hidden part from the training image nearest on the visible part."""
    index, _ = metrics.nearest_neighbours(images * mask, train * mask)
    return mask * images + (1 - mask) * train[index]


def hidden_error(completed: torch.Tensor, images: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error per image on the hidden pixels only (pixels in [-1, 1])."""
    hidden = 1 - mask
    return ((completed - images) * hidden).pow(2).flatten(1).sum(1) / hidden.sum()


def roc_auc(scores_normal: torch.Tensor, scores_anomalous: torch.Tensor) -> float:
    """The area under the ROC curve of a score meant to be higher for anomalies: the probability that a
    random anomaly scores above a random normal example (ties count one half; Mann-Whitney U)."""
    a, b = scores_anomalous.double().flatten(), scores_normal.double().flatten()
    if len(a) == 0 or len(b) == 0:
        raise ValueError("need at least one normal and one anomalous score")
    greater = (a[:, None] > b[None, :]).double().mean()
    ties = (a[:, None] == b[None, :]).double().mean()
    return float(greater + 0.5 * ties)


def vae_anomaly_scores(vae: VAE, images: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """The anomaly score of each image: its negative ELBO under ``vae`` (nats), an upper bound on
    -log p(x). Images unlike the training data should get higher scores."""
    return -elbo(vae, images, torch.Generator().manual_seed(seed))["elbo"]


def train_vae_without(images: torch.Tensor, labels: torch.Tensor, held_out: int, steps: int = 1500,
                      seed: int = 0, latent_dim: int = 16, hidden=(256, 128)) -> VAE:
    """A small MLP VAE trained on every class but ``held_out`` (the anomaly of the chapter's demo)."""
    seed_everything(seed)
    vae = VAE(latent_dim=latent_dim, hidden=hidden)
    config = VAEConfig(steps=steps, batch_size=128, seed=seed, progress=False, log_every=max(steps // 10, 1),
                       device="cpu", binarize=True)
    VAETrainer(vae, images[labels != held_out], config).fit()
    return vae.eval()


# ----------------------------------------------------------------------------- text: a gradient through a sampled token


def token_gradients(logits: torch.Tensor, reward: torch.Tensor, samples: int = 1000, temperature: float = 0.5,
                    seed: int = 0) -> dict:
    """The gradient, with respect to ``logits`` (V,), of the expected reward E_{i ~ softmax(logits)}[reward[i]]
    of one sampled token, four ways: what a text GAN's generator would need from its discriminator.

    * ``"exact"``: p_j (r_j - E[r]), the closed form (p = softmax(logits));
    * ``"hard sample"``: autograd through a sampled one-hot token; the token is an integer index, so
      nothing flows back (``None``): the reason GANs cannot train on text as they do on images;
    * ``"reinforce"``: the score-function estimate r_i (onehot_i - p) of SeqGAN (Yu et al., 2017;
      Williams, 1992), averaged over ``samples`` tokens: unbiased but noisy (``"reinforce std"`` is
      the standard deviation of one sample's estimate, per logit);
    * ``"gumbel-softmax"``: autograd through softmax((logits + Gumbel noise) / temperature), the
      relaxation of Jang et al. (2017), averaged over ``samples``: low-variance but biased.
    """
    if logits.dim() != 1 or reward.shape != logits.shape:
        raise ValueError(f"logits and reward must be vectors of one length; got {tuple(logits.shape)} and "
                         f"{tuple(reward.shape)}")
    logits, reward = logits.detach().double(), reward.detach().double()
    p = logits.softmax(0)
    g = torch.Generator().manual_seed(seed)
    tokens = torch.multinomial(p, samples, replacement=True, generator=g)
    one_hot = torch.nn.functional.one_hot(tokens, len(p)).double()

    hard_logits = logits.clone().requires_grad_(True)
    hard_token = torch.multinomial(hard_logits.softmax(0), 1, generator=g)  # an int64 index: the graph ends here
    hard_reward = (torch.nn.functional.one_hot(hard_token[0], len(p)).double() * reward).sum()

    per_sample = reward[tokens][:, None] * (one_hot - p)
    relaxed_logits = logits.clone().requires_grad_(True)
    u = torch.rand(samples, len(p), generator=g, dtype=torch.float64).clamp_min(1e-12)
    relaxed = ((relaxed_logits - torch.log(-torch.log(u))) / temperature).softmax(1)
    (relaxed @ reward).mean().backward()
    return {"exact": p * (reward - (p * reward).sum()),
            "hard sample": None if not hard_reward.requires_grad else
            torch.autograd.grad(hard_reward, hard_logits)[0],
            "reinforce": per_sample.mean(0), "reinforce std": per_sample.std(0),
            "gumbel-softmax": relaxed_logits.grad}


# ----------------------------------------------------------------------------- conditional generation, latent arithmetic


@torch.no_grad()
def conditional_accuracy(generator: torch.nn.Module, classifier: torch.nn.Module, n_per_class: int = 100,
                         seed: int = 0) -> torch.Tensor:
    """For each class c, the fraction of ``n_per_class`` samples G(z, c) that ``classifier`` assigns to c.

    Returns a tensor of shape (num_classes,). The classifier's own test error bounds how close to 1
    this can be read: it measures whether the generator obeys the label, not image quality.
    """
    classes = getattr(generator, "num_classes", 0)
    if not classes:
        raise ValueError("conditional_accuracy needs a conditional generator (num_classes > 0), "
                         "e.g. pretrained.load('cdcgan-mnist')")
    z = torch.randn(classes * n_per_class, generator.latent_dim, generator=torch.Generator().manual_seed(seed))
    labels = torch.arange(classes).repeat_interleave(n_per_class)
    was_training = generator.training
    images = generator.eval()(z, labels=labels)
    generator.train(was_training)
    _, probs = classify(classifier, images)
    return (probs.argmax(1) == labels).float().view(classes, n_per_class).mean(1)


def ink(images: torch.Tensor) -> torch.Tensor:
    """How much ink each digit uses: the mean grey level on the [0, 1] scale (stroke thickness)."""
    return ((images + 1) / 2).flatten(1).mean(1)


@torch.no_grad()
def attribute_vector(vae: VAE, images: torch.Tensor, attribute: torch.Tensor, fraction: float = 0.25,
                     labels: torch.Tensor | None = None) -> torch.Tensor:
    """A direction in the VAE's latent space for ``attribute``: the mean code (encoder mean) of the
    images in its top ``fraction`` minus that of its bottom ``fraction`` (White, 2016, "attribute
    vectors"; Larsen et al., 2016). With ``labels``, that difference is taken within each class and
    averaged, so that the direction does not also move between classes (thick digits are more often
    0s and 8s than 1s)."""
    if not 0 < fraction <= 0.5:
        raise ValueError(f"fraction must be in (0, 0.5], got {fraction}")
    mu, _ = vae.encode(images)

    def difference(codes, values):
        order = values.argsort()
        k = max(1, int(fraction * len(order)))
        return codes[order[-k:]].mean(0) - codes[order[:k]].mean(0)

    if labels is None:
        return difference(mu, attribute)
    return torch.stack([difference(mu[labels == c], attribute[labels == c]) for c in labels.unique()]).mean(0)


@torch.no_grad()
def shift_along(vae: VAE, images: torch.Tensor, direction: torch.Tensor, amounts) -> torch.Tensor:
    """Decoder means of each image's code moved by ``amount * direction``: (len(amounts), N, C, H, W)."""
    mu, _ = vae.encode(images)
    return torch.stack([vae.decode_mean(mu + a * direction) for a in amounts])


# ----------------------------------------------------------------------------- image-to-image: super-resolution, pix2pix


class Translator(torch.nn.Module):
    """28x28 image -> 28x28 image (pixels in [-1, 1]): a small stack of 3x3 convolutions.

    With ``residual=True`` it learns a correction of its input (super-resolution, where the input is
    already the upsampled low-resolution image); otherwise it draws the output from scratch (edge
    map -> digit).
    """

    def __init__(self, width: int = 16, residual: bool = False):
        super().__init__()
        self.residual = residual
        self.net = torch.nn.Sequential(
            torch.nn.Conv2d(1, width, 3, padding=1), torch.nn.ReLU(),
            torch.nn.Conv2d(width, width, 3, padding=1), torch.nn.ReLU(),
            torch.nn.Conv2d(width, 1, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The translated images, in (-1, 1).

        Shape:
            - x: (N, 1, 28, 28), in [-1, 1]
            - output: (N, 1, 28, 28)
        """
        out = self.net(x)
        return torch.tanh(torch.atanh(x.clamp(-0.999, 0.999)) + out) if self.residual else torch.tanh(out)


def downsample(images: torch.Tensor, factor: int = 4) -> torch.Tensor:
    """The low-resolution image: each ``factor`` x ``factor`` block averaged (28x28 -> 7x7 for 4)."""
    return torch.nn.functional.avg_pool2d(images, factor)


def low_resolution_input(images: torch.Tensor, factor: int = 4) -> torch.Tensor:
    """The super-resolution input at full size: downsampled, then blown up by nearest neighbours."""
    return torch.nn.functional.interpolate(downsample(images, factor), scale_factor=factor, mode="nearest")


def low_resolution_neighbours(image: torch.Tensor, train: torch.Tensor, k: int = 16, factor: int = 4) -> torch.Tensor:
    """The ``k`` training images whose low-resolution version is closest to ``image``'s (shape (k, C, H, W)).

    They are the sharp digits an upsampler cannot tell apart from the input; the L2-optimal output
    is (about) their pixel mean, which is blurred wherever they disagree.
    """
    if image.dim() != 3:
        raise ValueError(f"image must be one image (C, H, W), got shape {tuple(image.shape)}")
    low = downsample(image[None], factor).flatten(1)
    distances = torch.cdist(low, downsample(train, factor).flatten(1))[0]
    return train[distances.topk(k, largest=False).indices]


def edge_map(images: torch.Tensor) -> torch.Tensor:
    """The outline of each digit: a 3x3 morphological gradient (dilation minus erosion), in [-1, 1]."""
    dilated = torch.nn.functional.max_pool2d(images, 3, 1, 1)
    eroded = -torch.nn.functional.max_pool2d(-images, 3, 1, 1)
    return (dilated - eroded) - 1  # the gradient is in [0, 2]


def train_translator(inputs: torch.Tensor, targets: torch.Tensor, steps: int = 500, adversarial_weight: float = 0.0,
                     reconstruction: str = "l2", residual: bool = False, seed: int = 0, batch_size: int = 64,
                     lr: float = 1e-3) -> Translator:
    """Train a :class:`Translator` on paired ``(inputs, targets)``.

    ``adversarial_weight = 0``: the reconstruction loss alone. Its minimiser is the *mean* (L2) or
    the median (L1) of the targets consistent with the input, hence blurry wherever the input leaves
    the detail uncertain. ``> 0``: add that weight times the non-saturating generator loss of a
    conditional discriminator that sees (input, output) pairs and learns to tell real pairs from
    translated ones: pix2pix (Isola et al., 2017; L1 + adversarial) and SRGAN's idea (Ledig et al.,
    2017; L2 + adversarial), which push the outputs onto the data.
    """
    if inputs.shape != targets.shape or inputs.shape[1:] != (1, 28, 28):
        raise ValueError(f"inputs and targets must both be (N, 1, 28, 28); got {tuple(inputs.shape)} and {tuple(targets.shape)}")
    if reconstruction not in ("l1", "l2"):
        raise ValueError(f"reconstruction must be 'l1' or 'l2', not {reconstruction!r}")
    seed_everything(seed)
    model = Translator(residual=residual)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.5, 0.999))
    critic = DCGANDiscriminator(image_size=28, channels=2, base_width=16) if adversarial_weight > 0 else None
    critic_optimizer = torch.optim.Adam(critic.parameters(), lr=2e-4, betas=(0.5, 0.999)) if critic else None
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        batch = torch.randint(len(inputs), (batch_size,), generator=g)
        x, target = inputs[batch], targets[batch]
        out = model(x)
        if critic is not None:
            critic_optimizer.zero_grad()
            real, fake = critic(torch.cat([x, target], 1)), critic(torch.cat([x, out.detach()], 1))
            discriminator_loss("nonsaturating", real, fake).backward()
            critic_optimizer.step()
        error = out - target
        loss = error.abs().mean() if reconstruction == "l1" else error.pow(2).mean()
        if critic is not None:
            loss = loss + adversarial_weight * generator_loss("nonsaturating", critic(torch.cat([x, out], 1)))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def sharpness(images: torch.Tensor) -> float:
    """Mean squared response to a 3x3 Laplacian: high for crisp strokes, low for blurred ones."""
    kernel = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]).view(1, 1, 3, 3)
    return float(torch.nn.functional.conv2d(images, kernel).pow(2).mean())


# ----------------------------------------------------------------------------- data augmentation


def augmentation_run(train_images: torch.Tensor, train_labels: torch.Tensor, test_images: torch.Tensor,
                     test_labels: torch.Tensor, generated: tuple[torch.Tensor, torch.Tensor] | None = None,
                     n_labelled: int = 100, steps: int = 300, seed: int = 0, batch_size: int = 64) -> float:
    """Test accuracy of ganlib's digit classifier trained on ``n_labelled`` real digits (10 per class
    for 100), plus the labelled ``generated`` images (e.g. a conditional GAN's) when given."""
    g = torch.Generator().manual_seed(seed)
    per_class = n_labelled // 10
    picks = torch.cat([torch.nonzero(train_labels == c).squeeze(1)[torch.randperm(int((train_labels == c).sum()),
                                                                                generator=g)[:per_class]]
                       for c in range(10)])
    x, y = train_images[picks], train_labels[picks]
    if generated is not None:
        x, y = torch.cat([x, generated[0]]), torch.cat([y, generated[1]])
    seed_everything(seed)
    model = MNISTClassifier()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    for _ in range(steps):
        batch = torch.randint(len(x), (batch_size,), generator=g)
        loss = torch.nn.functional.cross_entropy(model(x[batch]), y[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return accuracy(model.eval(), test_images, test_labels)


# ----------------------------------------------------------------------------- commands


def augmentation_study(seeds=(0, 1, 2, 3, 4), n_labelled: int = 100, n_generated: int = 1000,
                       steps: int = 300, log=print) -> dict:
    """Test accuracy (all 10k test digits) from ``n_labelled`` real digits, without and with
    ``n_generated`` samples of the shipped conditional DCGAN, over ``seeds``."""
    start = time.perf_counter()
    train, train_labels = load_mnist("train")
    test, test_labels = load_mnist("test")
    cgan = pretrained.load("cdcgan-mnist")
    rows = []
    for seed in seeds:
        generated = pretrained.generate(cgan, n_generated, seed=1000 + seed)
        row = {"seed": seed,
               "real only": augmentation_run(train, train_labels, test, test_labels, None, n_labelled, steps, seed),
               "real + generated": augmentation_run(train, train_labels, test, test_labels, generated, n_labelled,
                                                    steps, seed)}
        log(row)
        rows.append(row)
    return {**provenance(f"python -m ganlib.chapters.applications augment --seeds {len(seeds)}", start),
            "n_labelled": n_labelled, "n_generated": n_generated, "steps": steps, "rows": rows,
            "caveat": "cdcgan-mnist was trained on all 60k labelled training digits: its samples carry label "
                      "information the 100-label classifier does not have"}


def anomaly_study(held_out_classes=tuple(range(10)), steps: int = 5000, n_train: int = 60_000, seed: int = 0,
                  log=print) -> dict:
    """ROC AUC of the negative-ELBO anomaly score, one small VAE per held-out digit class, on the
    binarised test set (the held-out class against the other nine)."""
    start = time.perf_counter()
    train, train_labels = load_mnist("train")
    test, test_labels = load_mnist("test")
    idx = random_subset(len(train), n_train, seed)
    x_test = binarize(test) * 2 - 1
    rows = []
    for held in held_out_classes:
        vae = train_vae_without(train[idx], train_labels[idx], held, steps=steps, seed=seed)
        scores = vae_anomaly_scores(vae, x_test, seed)
        row = {"held_out": held, "auc": roc_auc(scores[test_labels != held], scores[test_labels == held]),
               "mean_score_normal": float(scores[test_labels != held].mean()),
               "mean_score_anomaly": float(scores[test_labels == held].mean())}
        log(row)
        rows.append(row)
    return {**provenance(f"python -m ganlib.chapters.applications anomaly --steps {steps}", start),
            "steps": steps, "n_train": n_train, "rows": rows}


AUGMENTATION_COMMAND = "python -m ganlib.chapters.applications augment --seeds 5"
ANOMALY_COMMAND = "python -m ganlib.chapters.applications anomaly --steps 5000"
AUGMENTATION_PATH = RESULTS_DIR / "applications_augmentation.json"
ANOMALY_PATH = RESULTS_DIR / "applications_anomaly.json"


def load_augmentation(path=None) -> dict:
    """The committed augmentation results (``book/results/applications_augmentation.json``)."""
    return load_results(path or AUGMENTATION_PATH, AUGMENTATION_COMMAND)


def load_anomaly(path=None) -> dict:
    """The committed anomaly results (``book/results/applications_anomaly.json``)."""
    return load_results(path or ANOMALY_PATH, ANOMALY_COMMAND)


def main(argv=None) -> None:
    """``python -m ganlib.chapters.applications augment | anomaly``: write a results file."""
    parser, sub = command_parser("python -m ganlib.chapters.applications")
    add_command(sub, "augment", "100 labels with and without cGAN samples (book/results/applications_augmentation.json)",
                AUGMENTATION_PATH, seeds=5)
    add_command(sub, "anomaly", "VAE anomaly scores, each digit held out (book/results/applications_anomaly.json)",
                ANOMALY_PATH, steps=5000)
    run_one_thread_command(parser, _write_results, argv)


def _write_results(args) -> None:
    result = augmentation_study(tuple(range(args.seeds))) if args.command == "augment" else anomaly_study(steps=args.steps)
    print(f"wrote {save_results(result, args.out)}")


if __name__ == "__main__":
    main()
