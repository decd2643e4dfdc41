"""Helpers of the chapter "Applications" (book/applications.ipynb, to come: issue 17, in progress).

* inpainting by latent optimisation (Yeh et al., 2017): :func:`inpaint_by_latent_search`, for a GAN
  generator or a VAE decoder, the nearest-neighbour baseline :func:`inpaint_by_nearest_neighbour`,
  and the error on the hidden pixels (:func:`hidden_error`);
* anomaly detection: a VAE trained without one class (:func:`train_vae_without`), its negative
  ELBO as the score (:func:`vae_anomaly_scores`) and the ROC AUC (:func:`roc_auc`);
* super-resolution 7x7 -> 28x28: an :class:`Upsampler` trained with L2 alone or with an added
  adversarial loss (SRGAN's idea; :func:`train_upsampler`), and :func:`sharpness`;
* data augmentation: a classifier from 100 labelled digits, with or without generated ones
  (:func:`augmentation_run`).
"""
from __future__ import annotations

import torch

from .. import metrics
from ..models import VAE


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


def _decoder(model: torch.nn.Module):
    return model.decode_mean if isinstance(model, VAE) else model


def inpaint_by_latent_search(model: torch.nn.Module, images: torch.Tensor, mask: torch.Tensor, steps: int = 200,
                             lr: float = 0.05, restarts: int = 4, prior_weight: float = 1e-3,
                             seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Fill the hidden part of ``images`` from a generator, by searching its latent space.

    Yeh et al. (2017): find z* = argmin_z ||M * (G(z) - x)||^2 + prior_weight * ||z||^2 (the second
    term keeps z where the prior put mass), then return M * x + (1 - M) * G(z*). Adam on z, from
    ``restarts`` random starts per image; each image keeps the start with the lowest visible error.
    Works for a GAN generator or a VAE (through its decoder mean). Returns ``(completed, z*)``.
    """
    if mask.shape != images.shape[1:]:
        raise ValueError(f"mask must have one image's shape {tuple(images.shape[1:])}, got {tuple(mask.shape)}")
    decode = _decoder(model)
    was_training = model.training
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    n = len(images)
    target = images.repeat(restarts, *[1] * (images.dim() - 1))
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n * restarts, model.latent_dim, generator=g).requires_grad_(True)
    optimizer = torch.optim.Adam([z], lr=lr)
    for _ in range(steps):
        optimizer.zero_grad()
        visible_error = ((decode(z) - target) * mask).pow(2).flatten(1).sum(1)
        (visible_error + prior_weight * z.pow(2).sum(1)).sum().backward()
        optimizer.step()
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
    from ..likelihood import elbo

    return -elbo(vae, images, torch.Generator().manual_seed(seed))["elbo"]


def train_vae_without(images: torch.Tensor, labels: torch.Tensor, held_out: int, steps: int = 1500,
                      seed: int = 0, latent_dim: int = 16, hidden=(256, 128)) -> VAE:
    """A small MLP VAE trained on every class but ``held_out`` (the anomaly of the chapter's demo)."""
    from ..env import seed_everything
    from ..train import VAEConfig, VAETrainer

    seed_everything(seed)
    vae = VAE(latent_dim=latent_dim, hidden=hidden)
    config = VAEConfig(steps=steps, batch_size=128, seed=seed, progress=False, log_every=max(steps // 10, 1),
                       device="cpu", binarize=True)
    VAETrainer(vae, images[labels != held_out], config).fit()
    return vae.eval()


# ----------------------------------------------------------------------------- super-resolution


class Upsampler(torch.nn.Module):
    """7x7 -> 28x28 digits: nearest-neighbour upsampling, then a small residual convolution stack
    that learns the detail (pixels in [-1, 1])."""

    def __init__(self, factor: int = 4, width: int = 16):
        super().__init__()
        self.factor = factor
        self.refine = torch.nn.Sequential(
            torch.nn.Conv2d(1, width, 3, padding=1), torch.nn.ReLU(),
            torch.nn.Conv2d(width, width, 3, padding=1), torch.nn.ReLU(),
            torch.nn.Conv2d(width, 1, 3, padding=1))

    def forward(self, low: torch.Tensor) -> torch.Tensor:
        up = torch.nn.functional.interpolate(low, scale_factor=self.factor, mode="nearest")
        return torch.tanh(torch.atanh(up.clamp(-0.999, 0.999)) + self.refine(up))


def downsample(images: torch.Tensor, factor: int = 4) -> torch.Tensor:
    """The low-resolution input: each ``factor`` x ``factor`` block averaged (28x28 -> 7x7 for 4)."""
    return torch.nn.functional.avg_pool2d(images, factor)


def train_upsampler(images: torch.Tensor, steps: int = 1000, adversarial_weight: float = 0.0, seed: int = 0,
                    batch_size: int = 64, lr: float = 1e-3) -> Upsampler:
    """Train an :class:`Upsampler` on (downsampled, original) pairs of ``images``.

    ``adversarial_weight = 0``: the L2 loss alone, whose minimiser is the *mean* of the high-resolution
    images consistent with the input, hence blurry. ``> 0``: SRGAN's idea (Ledig et al., 2017): add
    ``adversarial_weight`` times the non-saturating generator loss of a small discriminator that
    learns to tell real 28x28 digits from upsampled ones, which pushes outputs onto the data.
    """
    from ..env import seed_everything
    from ..losses import discriminator_loss, generator_loss
    from ..models import DCGANDiscriminator

    seed_everything(seed)
    model = Upsampler()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.5, 0.999))
    critic = DCGANDiscriminator(image_size=28, channels=1, base_width=16) if adversarial_weight > 0 else None
    critic_optimizer = torch.optim.Adam(critic.parameters(), lr=2e-4, betas=(0.5, 0.999)) if critic else None
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        high = images[torch.randint(len(images), (batch_size,), generator=g)]
        out = model(downsample(high))
        if critic is not None:
            critic_optimizer.zero_grad()
            discriminator_loss("nonsaturating", critic(high), critic(out.detach())).backward()
            critic_optimizer.step()
        loss = (out - high).pow(2).mean()
        if critic is not None:
            loss = loss + adversarial_weight * generator_loss("nonsaturating", critic(out))
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
    from ..classifier import MNISTClassifier, accuracy
    from ..env import seed_everything

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
