"""Generators, discriminators and VAEs.

* :class:`MLPGenerator`, :class:`MLPDiscriminator`: fully connected, configurable widths; the
  presets :func:`mnist_mlp_generator` / :func:`mnist_mlp_discriminator` reproduce the source
  article's 128-256-512-1024-784 generator and 512-256-128-1 discriminator.
* :class:`DCGANGenerator`, :class:`DCGANDiscriminator`: Radford et al. (2016)'s guidelines
  (strided convolutions, batch norm, ReLU in G, LeakyReLU in D, tanh output) for square images of
  8, 16, 28, 32 or 64 pixels with any number of channels; optional spectral norm in D.
* :class:`VAE`: Gaussian latent, MLP or convolutional encoder/decoder, Bernoulli or Gaussian decoder.

Conventions: images are in [-1, 1], the range of a tanh generator. Generators take ``G(z)`` with
``z`` of shape (N, latent_dim) and have ``.latent_dim``; discriminators return one logit/score per
example, shape (N,). Conditional models (``num_classes > 0``) take ``labels=`` (int64, shape (N,)).
Each model records its constructor arguments in ``.spec``, so :func:`build_model` can rebuild it
from a checkpoint. :func:`refresh_batch_norm` re-estimates a generator's batch-norm statistics
(for an averaged, EMA generator).
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from .losses import gaussian_kl, reconstruction_nll

# ----------------------------------------------------------------------------- shared pieces


def _activation(name: str) -> nn.Module:
    if name == "relu":
        return nn.ReLU()
    if name == "leaky_relu":
        return nn.LeakyReLU(0.2)
    if name == "tanh":
        return nn.Tanh()
    if name == "sigmoid":
        return nn.Sigmoid()
    if name in ("none", None):
        return nn.Identity()
    raise ValueError(f"unknown activation {name!r}; use 'relu', 'leaky_relu', 'tanh', 'sigmoid' or None")


def _as_shape(dim) -> tuple[int, ...]:
    return (int(dim),) if isinstance(dim, int) else tuple(int(d) for d in dim)


class _Recorded(nn.Module):
    """Remembers the constructor arguments (``.spec``) so a checkpoint can rebuild the model."""

    def _record(self, **kwargs) -> None:
        self.spec = {"class": type(self).__name__, "kwargs": kwargs}

    num_classes: int = 0

    # Input checks read shapes only (tensor metadata: no kernel, no GPU->host sync), so they cost
    # nothing per step, and torch.compile turns the comparisons into guards instead of graph breaks.

    def _check_latent(self, z: torch.Tensor) -> None:
        """Generators take z of shape (N, latent_dim); a 1-D z would pass as a batch of one."""
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(
                f"{type(self).__name__} (latent_dim={self.latent_dim}) needs z of shape (N, {self.latent_dim}); "
                f"got shape {tuple(z.shape)}. For one sample use z.unsqueeze(0) (shape (1, {self.latent_dim})).")

    def _check_labels(self, labels: torch.Tensor | None, n: int | None = None) -> None:
        if labels is not None and not self.num_classes:
            raise ValueError(
                f"{type(self).__name__} got labels but was built unconditional; to condition on "
                f"labels, build it with num_classes=<number of classes> (e.g. num_classes=10 for MNIST)."
            )
        if labels is None and self.num_classes:
            raise ValueError(
                f"{type(self).__name__} was built with num_classes={self.num_classes} and needs "
                f"labels=<int64 tensor of shape (N,)>; build it with num_classes=0 for an unconditional model."
            )
        if labels is not None and n is not None and (labels.dim() != 1 or labels.shape[0] != n):
            raise ValueError(f"{type(self).__name__} needs labels of shape (N,) = ({n},), one class per "
                             f"example of the batch; got shape {tuple(labels.shape)}")


def build_model(spec: dict) -> nn.Module:
    """Rebuild a model from its ``.spec`` (``{"class": name, "kwargs": {...}}``)."""
    classes = {c.__name__: c for c in (MLPGenerator, MLPDiscriminator, DCGANGenerator,
                                        DCGANDiscriminator, VAE)}
    if spec.get("class") not in classes:
        raise ValueError(f"unknown model class {spec.get('class')!r}; known: {sorted(classes)}")
    return classes[spec["class"]](**spec["kwargs"])


def batch_norms(module: nn.Module) -> list[nn.Module]:
    """The batch-norm layers of ``module``."""
    return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@torch.no_grad()
def refresh_batch_norm(generator: nn.Module, batches: int = 10, batch_size: int = 500,
                       seed: int = 0) -> nn.Module:
    """Re-estimate a generator's batch-norm running statistics from its own activations, in place.

    An EMA generator's weights are an average, but its running means and variances were averaged
    from the *raw* generators' activations, which differ: in eval mode each BN layer then shifts
    and scales by amounts that belong to other weights, which matters early in a run, while the
    weights still move quickly. This is the
    fix of SWA (Izmailov et al. 2018, ``torch.optim.swa_utils.update_bn``), with noise instead of
    a data loader as the input: ``batches`` forward passes of ``batch_size`` codes z ~ N(0, I)
    (and uniform random labels for a conditional generator), in train mode, with a cumulative
    average (momentum None). Seeded: the same call gives the same statistics. A generator without
    batch norm is returned unchanged.
    """
    norms = batch_norms(generator)
    if not norms:
        return generator
    device = next(generator.parameters()).device
    rng = torch.Generator().manual_seed(seed)
    momenta = [m.momentum for m in norms]
    was_training = generator.training
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches, as update_bn does
    generator.train()
    try:
        for _ in range(batches):
            z = torch.randn(batch_size, generator.latent_dim, generator=rng).to(device)
            classes = getattr(generator, "num_classes", 0)
            kw = {"labels": torch.randint(0, classes, (batch_size,), generator=rng).to(device)} if classes else {}
            generator(z, **kw)
    finally:
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        generator.train(was_training)
    return generator


# ----------------------------------------------------------------------------- MLPs


class MLPGenerator(_Recorded):
    """z (N, latent_dim) -> x (N, *out_shape) through fully connected layers.

    ``out_dim`` is an int (flat output) or a shape such as (1, 28, 28). ``out_activation="tanh"``
    for data in [-1, 1]; None for unbounded data (toy distributions). ``batchnorm`` adds
    BatchNorm1d after each hidden layer. With ``num_classes > 0`` a one-hot label is appended to z.

    Args:
        latent_dim: size of z.
        out_dim: one sample's size (an int) or shape (a tuple).
        hidden: the hidden layers' widths.
        activation: the hidden layers' activation: ``"relu"``, ``"leaky_relu"`` (slope 0.2),
            ``"tanh"``, ``"sigmoid"`` or None.
        out_activation: the output's activation, the same choices.
        batchnorm: BatchNorm1d after each hidden linear layer.
        num_classes: 0 for an unconditional generator, else the number of classes.

    Shape:
        - z: (N, latent_dim)
        - labels: (N,) int64, when conditional
        - output: (N, *out_shape)
    """

    def __init__(self, latent_dim: int, out_dim, hidden=(128, 128), activation: str = "relu",
                 out_activation: str | None = None, batchnorm: bool = False, num_classes: int = 0):
        super().__init__()
        self._record(latent_dim=latent_dim, out_dim=out_dim, hidden=list(hidden), activation=activation,
                     out_activation=out_activation, batchnorm=batchnorm, num_classes=num_classes)
        self.latent_dim, self.num_classes = latent_dim, num_classes
        self.out_shape = _as_shape(out_dim)
        layers, width = [], latent_dim + num_classes
        for h in hidden:
            layers += [nn.Linear(width, h)] + ([nn.BatchNorm1d(h)] if batchnorm else []) + [_activation(activation)]
            width = h
        layers += [nn.Linear(width, math.prod(self.out_shape)), _activation(out_activation)]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Samples G(z) (or G(z, labels)), shape (N, *out_shape); z must be (N, latent_dim)."""
        self._check_latent(z)
        self._check_labels(labels, z.shape[0])
        if self.num_classes:
            z = torch.cat([z, nn.functional.one_hot(labels, self.num_classes).to(z.dtype)], 1)
        return self.net(z).view(-1, *self.out_shape)


class MLPDiscriminator(_Recorded):
    """x (N, *in_shape) -> logits (N,) through fully connected layers (input flattened).

    ``spectral_norm=True`` wraps every linear layer in spectral normalisation (Miyato et al. 2018).
    With ``num_classes > 0`` a one-hot label is appended to the flattened input.

    Args:
        in_dim: one example's size (an int) or shape (a tuple).
        hidden: the hidden layers' widths.
        activation: the hidden layers' activation (see :class:`MLPGenerator`).
        spectral_norm: spectral normalisation of every linear layer.
        num_classes: 0 for an unconditional discriminator, else the number of classes.

    Shape:
        - x: (N, *in_shape), or any (N, ...) with the same number of values per example
        - labels: (N,) int64, when conditional
        - output: (N,)
    """

    def __init__(self, in_dim, hidden=(128, 128), activation: str = "leaky_relu",
                 spectral_norm: bool = False, num_classes: int = 0):
        super().__init__()
        self._record(in_dim=in_dim, hidden=list(hidden), activation=activation,
                     spectral_norm=spectral_norm, num_classes=num_classes)
        self.num_classes = num_classes
        self.in_shape = _as_shape(in_dim)
        self.in_features = math.prod(self.in_shape)
        sn = _spectral_norm if spectral_norm else (lambda m: m)
        layers, width = [], self.in_features + num_classes
        for h in hidden:
            layers += [sn(nn.Linear(width, h)), _activation(activation)]
            width = h
        layers.append(sn(nn.Linear(width, 1)))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """One logit per example, shape (N,)."""
        # the input is flattened, so any layout with in_features values per example is accepted
        # (e.g. (N, 784) or (N, 1, 28, 28) for in_dim=(1, 28, 28), and PacGAN's packed groups)
        if x.dim() < 2 or math.prod(x.shape[1:]) != self.in_features:
            raise ValueError(
                f"MLPDiscriminator(in_dim={self.spec['kwargs']['in_dim']}) needs x of shape (N, "
                f"{', '.join(map(str, self.in_shape))}) ({self.in_features} values per example); got shape "
                f"{tuple(x.shape)}. Build it with in_dim equal to one example's shape.")
        self._check_labels(labels, x.shape[0])
        x = x.flatten(1)
        if self.num_classes:
            x = torch.cat([x, nn.functional.one_hot(labels, self.num_classes).to(x.dtype)], 1)
        return self.net(x).squeeze(1)


def mnist_mlp_generator(latent_dim: int = 100) -> MLPGenerator:
    """The source article's generator: 128-256-512-1024-784, ReLU, reshaped to (1, 28, 28).

    The article ends in a sigmoid for pixels in [0, 1]; ganlib's images are in [-1, 1], so this
    preset ends in tanh, the same function up to an affine map (tanh(t) = 2 sigmoid(2t) - 1).
    """
    return MLPGenerator(latent_dim, (1, 28, 28), hidden=(128, 256, 512, 1024), activation="relu",
                        out_activation="tanh")


def mnist_mlp_discriminator() -> MLPDiscriminator:
    """The source article's discriminator: 784-512-256-128-1 with ReLU, returning a logit.

    (The article applies the sigmoid inside D; here it is part of the loss, which keeps it finite.)
    """
    return MLPDiscriminator((1, 28, 28), hidden=(512, 256, 128), activation="relu")


# ----------------------------------------------------------------------------- DCGAN

DCGAN_SIZES = (8, 16, 28, 32, 64)


def _dcgan_layout(image_size: int) -> tuple[int, int]:
    """(start resolution, number of stride-2 stages) for a supported image size."""
    if image_size not in DCGAN_SIZES:
        raise ValueError(
            f"DCGAN models support image sizes {DCGAN_SIZES}, not {image_size}; resize the images "
            f"(e.g. torchvision.transforms.Resize(32)) or pass one of those sizes as image_size."
        )
    start = 7 if image_size == 28 else 4
    return start, int(round(math.log2(image_size / start)))


def dcgan_init_(module: nn.Module) -> None:
    """Radford et al.'s initialisation: conv and linear weights ~ N(0, 0.02), batch-norm scales ~ N(1, 0.02)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class DCGANGenerator(_Recorded):
    """z (N, latent_dim) -> images (N, channels, image_size, image_size) in [-1, 1].

    A projection maps z to a 4x4 (7x7 for 28-pixel images) map with
    ``base_width * 2**(stages-1)`` channels; each stage doubles the resolution and halves the
    channels (ConvTranspose 4x4 stride 2, BatchNorm, ReLU); the last stage outputs ``channels``
    maps through tanh (Radford et al. 2016). The projection is a transposed convolution over the
    1x1 input (the same map as a linear layer), or, with ``hidden > 0``, two fully connected
    layers z -> ``hidden`` -> the first map, each with batch norm and ReLU: the layout of Radford
    et al.'s and InfoGAN's own MNIST generators (Chen et al. 2016, appendix C.1: FC 1024, FC
    7x7x128, then two transposed convolutions). With ``num_classes > 0`` a one-hot label is
    concatenated to z. ``batchnorm=False`` drops the batch norms (an ablation of Radford et al.'s
    guideline; the layers then get biases).

    With ``code_classes = K > 0`` the last K entries of z choose an InfoGAN categorical code
    (Chen et al. 2016): c = argmax of those entries (:meth:`code`), fed one-hot in their place. For
    z ~ N(0, I), c is uniform over the K values and independent of the other entries, which is
    InfoGAN's prior p(c) p(z'), so every sampler that draws z ~ N(0, I) samples the whole model
    and no caller handles the code. The discriminator's code head (Q) learns to recover c.

    Args:
        latent_dim: size of z.
        image_size: side of the square output, one of :data:`DCGAN_SIZES`.
        channels: image channels (1 for MNIST).
        base_width: channels of the last hidden stage; doubled towards the start.
        num_classes: 0 for an unconditional generator, else the number of classes.
        batchnorm: batch norm after every hidden layer.
        hidden: units of a fully connected layer before the first map (0: none).
        code_classes: values of an InfoGAN categorical code read from z's last entries (0: none).

    Shape:
        - z: (N, latent_dim)
        - labels: (N,) int64, when conditional
        - output: (N, channels, image_size, image_size), in [-1, 1]
    """

    def __init__(self, latent_dim: int = 100, image_size: int = 64, channels: int = 1,
                 base_width: int = 64, num_classes: int = 0, batchnorm: bool = True, hidden: int = 0,
                 code_classes: int = 0):
        super().__init__()
        if code_classes and (num_classes or not 2 <= code_classes < latent_dim):
            raise ValueError(f"code_classes must be 0 (no code) or between 2 and latent_dim - 1 = {latent_dim - 1}, "
                             f"in an unconditional generator (num_classes=0); got code_classes={code_classes}, "
                             f"num_classes={num_classes}")
        kwargs = dict(latent_dim=latent_dim, image_size=image_size, channels=channels,
                      base_width=base_width, num_classes=num_classes, batchnorm=batchnorm)
        self._record(**kwargs, **({"hidden": hidden} if hidden else {}),  # older specs have neither
                     **({"code_classes": code_classes} if code_classes else {}))
        start, stages = _dcgan_layout(image_size)
        self.latent_dim, self.num_classes, self.image_size, self.channels = latent_dim, num_classes, image_size, channels
        self.code_classes = code_classes
        width = base_width * 2 ** (stages - 1)
        norm = nn.BatchNorm2d if batchnorm else (lambda _: nn.Identity())
        if hidden:
            norm1d = nn.BatchNorm1d if batchnorm else (lambda _: nn.Identity())
            layers = [nn.Flatten(), nn.Linear(latent_dim + num_classes, hidden, bias=not batchnorm), norm1d(hidden),
                      nn.ReLU(True), nn.Linear(hidden, width * start * start, bias=not batchnorm),
                      norm1d(width * start * start), nn.ReLU(True), nn.Unflatten(1, (width, start, start))]
        else:
            layers = [nn.ConvTranspose2d(latent_dim + num_classes, width, start, 1, 0, bias=not batchnorm),
                      norm(width), nn.ReLU(True)]
        for _ in range(stages - 1):
            layers += [nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=not batchnorm), norm(width // 2),
                       nn.ReLU(True)]
            width //= 2
        layers += [nn.ConvTranspose2d(width, channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        dcgan_init_(self)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Images G(z) (or G(z, labels)) in [-1, 1], shape (N, channels, image_size, image_size)."""
        self._check_latent(z)  # (N, latent_dim), not PyTorch's DCGAN example's (N, latent_dim, 1, 1)
        self._check_labels(labels, z.shape[0])
        if self.num_classes:
            z = torch.cat([z, nn.functional.one_hot(labels, self.num_classes).to(z.dtype)], 1)
        if self.code_classes:
            z = torch.cat([z[:, :-self.code_classes],
                           nn.functional.one_hot(self.code(z), self.code_classes).to(z.dtype)], 1)
        return self.net(z[:, :, None, None])

    def _check_code(self) -> None:
        if not self.code_classes:
            raise ValueError("this generator has no categorical code; build it with code_classes=K")

    def code(self, z: torch.Tensor) -> torch.Tensor:
        """The categorical code c that z chooses: the argmax of its last ``code_classes`` entries.

        Shape:
            - z: (N, latent_dim)
            - output: (N,), int64 in [0, code_classes)
        """
        self._check_code()
        return z[:, -self.code_classes:].argmax(1)

    def latent_with_code(self, z: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        """A copy of ``z`` that chooses ``code``: the entry of the chosen value is raised above the
        others of the code's entries; every other entry is kept. To draw a chosen code.

        Shape:
            - z: (N, latent_dim)
            - code: (N,), int64 in [0, code_classes)
            - output: (N, latent_dim)
        """
        self._check_code()
        if code.shape != z.shape[:1] or code.min() < 0 or code.max() >= self.code_classes:
            raise ValueError(f"code must have shape ({z.shape[0]},) with values in [0, {self.code_classes}); got "
                             f"shape {tuple(code.shape)}, values {code.min().item()} to {code.max().item()}")
        z = z.clone()
        tail = z[:, -self.code_classes:]
        tail.scatter_(1, code[:, None], tail.abs().amax(1, keepdim=True) + 1)
        return z


class DCGANDiscriminator(_Recorded):
    """images (N, channels, image_size, image_size) -> logits (N,).

    Each stage halves the resolution (Conv 4x4 stride 2, normalisation, LeakyReLU 0.2) down to 4x4
    (7x7 for 28-pixel images); a final convolution over that map gives one logit. The first stage
    has no normalisation (Radford et al. 2016). With ``hidden > 0`` a fully connected layer of
    that many units (normalisation, LeakyReLU) comes between the last map and the logit, as in
    Radford et al.'s and InfoGAN's MNIST discriminators (Chen et al. 2016, appendix C.1).
    ``norm`` is ``"batch"``, ``"layer"`` (GroupNorm with one group, LayerNorm for the fully
    connected layer; use it with a gradient penalty, which batch norm would break) or ``"none"``;
    the default is batch norm, or none when ``spectral_norm=True`` (SN-GAN, Miyato et al. 2018).
    With ``num_classes > 0`` D is a projection discriminator (Miyato & Koyama 2018): the logit gains
    <embed(label), features>, the features being the last layer's input.
    With ``code_classes = K > 0`` a second head Q on the same features predicts the generator's
    InfoGAN code (Chen et al. 2016, appendix C.1: FC 128, normalisation, LeakyReLU, FC K); it
    runs when ``forward`` is asked for the code's logits. Q is not spectrally normalised: it
    never scores real against fake, so the Lipschitz bound that spectral norm gives D's logit does
    not concern it.

    Args:
        image_size: side of the square input, one of :data:`DCGAN_SIZES`.
        channels: image channels.
        base_width: channels of the first stage; doubled at each stage.
        spectral_norm: spectral normalisation of every weight.
        norm: ``"batch"``, ``"layer"`` or ``"none"`` (default: see above).
        num_classes: 0 for an unconditional discriminator, else the number of classes.
        hidden: units of a fully connected layer before the logit (0: none).
        code_classes: values of the generator's InfoGAN code, predicted by a head Q (0: no head).

    Shape:
        - x: (N, channels, image_size, image_size), in [-1, 1]
        - labels: (N,) int64, when conditional
        - output: (N,), or with ``code_logits=True`` a pair: that and Q's logits (N, code_classes)
    """

    def __init__(self, image_size: int = 64, channels: int = 1, base_width: int = 64,
                 spectral_norm: bool = False, norm: str | None = None, num_classes: int = 0, hidden: int = 0,
                 code_classes: int = 0):
        super().__init__()
        if code_classes and (num_classes or code_classes < 2):
            raise ValueError(f"code_classes must be 0 (no code) or at least 2, in an unconditional discriminator "
                             f"(num_classes=0); got code_classes={code_classes}, num_classes={num_classes}")
        kwargs = dict(image_size=image_size, channels=channels, base_width=base_width,
                      spectral_norm=spectral_norm, norm=norm, num_classes=num_classes)
        self._record(**kwargs, **({"hidden": hidden} if hidden else {}),  # older specs have neither
                     **({"code_classes": code_classes} if code_classes else {}))
        start, stages = _dcgan_layout(image_size)
        norm = norm or ("none" if spectral_norm else "batch")
        if norm not in ("batch", "layer", "none"):
            raise ValueError(f"norm must be 'batch', 'layer' or 'none', not {norm!r}")
        sn = _spectral_norm if spectral_norm else (lambda m: m)
        self.num_classes, self.image_size, self.channels = num_classes, image_size, channels
        layers, in_ch, width = [], channels, base_width
        for i in range(stages):
            layers.append(sn(nn.Conv2d(in_ch, width, 4, 2, 1, bias=(i == 0 or norm == "none"))))
            if i > 0 and norm == "batch":
                layers.append(nn.BatchNorm2d(width))
            elif i > 0 and norm == "layer":
                layers.append(nn.GroupNorm(1, width))
            layers.append(nn.LeakyReLU(0.2, True))
            in_ch, width = width, width * 2
        features = in_ch * start * start
        # the fully connected layers' normalisation (before the logit, and in the code head Q)
        norm1d = {"batch": nn.BatchNorm1d, "layer": nn.LayerNorm, "none": lambda _: nn.Identity()}[norm]
        if hidden:
            layers += [nn.Flatten(), sn(nn.Linear(features, hidden, bias=norm == "none")), norm1d(hidden),
                       nn.LeakyReLU(0.2, True)]
            features = hidden
        self.features = nn.Sequential(*layers)  # registered before the head: the init draws in this order
        self.head = sn(nn.Linear(hidden, 1)) if hidden else sn(nn.Conv2d(in_ch, 1, start, 1, 0))
        if num_classes:
            self.embed = sn(nn.Embedding(num_classes, features))
        self.code_classes = code_classes
        if code_classes:
            self.code_head = nn.Sequential(nn.Flatten(), nn.Linear(features, 128, bias=norm == "none"),
                                           norm1d(128), nn.LeakyReLU(0.2, True), nn.Linear(128, code_classes))
        dcgan_init_(self)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None,
                code_logits: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """One logit per image, shape (N,); with ``code_logits=True`` also Q's logits of the
        generator's code, shape (N, code_classes), from the same features."""
        # Without this, a 32x32 image fed to a 28-pixel D runs: the convolutions end on a 2x2
        # map instead of 1x1 and the head returns (N, 4) "logits". x.shape is the logical
        # (N, C, H, W) also for channels_last tensors, so those pass.
        expected = (self.channels, self.image_size, self.image_size)
        if x.dim() != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"DCGANDiscriminator(image_size={self.image_size}, channels={self.channels}) needs images "
                f"of shape (N, {self.channels}, {self.image_size}, {self.image_size}); got shape "
                f"{tuple(x.shape)}. Resize the images (e.g. torchvision.transforms.Resize({self.image_size})) "
                f"or build the discriminator for them.")
        self._check_labels(labels, x.shape[0])
        h = self.features(x)
        out = self.head(h).flatten(1).squeeze(1)
        if self.num_classes:
            out = out + (self.embed(labels) * h.flatten(1)).sum(1)
        if code_logits:
            if not self.code_classes:
                raise ValueError("this discriminator has no code head; build it with code_classes=K")
            return out, self.code_head(h)
        return out


# ----------------------------------------------------------------------------- VAE


class VAE(_Recorded):
    """A VAE with a Gaussian latent q(z|x) = N(mu(x), diag(sigma(x)^2)) and prior N(0, I).

    ``arch="mlp"``: encoder and decoder are MLPs with widths ``hidden`` (decoder mirrored).
    ``arch="conv"``: two stride-2 convolutions (``base_width``, 2*``base_width`` channels) then a
    linear layer; the decoder mirrors it. Needs a side divisible by 4.
    ``likelihood="bernoulli"``: the decoder outputs pixel logits over (x + 1) / 2 in [0, 1];
    ``"gaussian"``: it outputs the mean of N(mean, sigma^2) in data space, with one learned
    log sigma shared by all pixels. Data are in [-1, 1] as everywhere in ganlib; the Bernoulli
    VAE's encoder is fed (x + 1) / 2, the grey levels its decoder models.

    Args:
        image_shape: one example's shape, e.g. (1, 28, 28) (or an int for flat data).
        latent_dim: size of z.
        arch: ``"mlp"`` or ``"conv"``.
        hidden: the MLP encoder's widths (the decoder's, reversed); ``arch="mlp"`` only.
        base_width: the first convolution's channels; ``arch="conv"`` only.
        likelihood: ``"bernoulli"`` or ``"gaussian"``.

    Shape:
        - x: (N, *image_shape), in [-1, 1]
        - z: (N, latent_dim)
    """

    def __init__(self, image_shape=(1, 28, 28), latent_dim: int = 16, arch: str = "mlp",
                 hidden=(512, 256), base_width: int = 32, likelihood: str = "bernoulli"):
        super().__init__()
        self._record(image_shape=list(_as_shape(image_shape)), latent_dim=latent_dim, arch=arch,
                     hidden=list(hidden), base_width=base_width, likelihood=likelihood)
        if likelihood not in ("bernoulli", "gaussian"):
            raise ValueError(f"likelihood must be 'bernoulli' or 'gaussian', not {likelihood!r}")
        self.image_shape, self.latent_dim, self.likelihood = _as_shape(image_shape), latent_dim, likelihood
        if arch == "mlp":
            self.encoder, self.decoder = self._mlp(hidden)
        elif arch == "conv":
            self.encoder, self.decoder = self._conv(base_width)
        else:
            raise ValueError(f"arch must be 'mlp' or 'conv', not {arch!r}")
        # log sigma of the Gaussian decoder; unused (and untouched) for the Bernoulli one
        self.log_scale = nn.Parameter(torch.zeros(())) if likelihood == "gaussian" else None

    def _mlp(self, hidden):
        dim = math.prod(self.image_shape)
        enc, width = [nn.Flatten()], dim
        for h in hidden:
            enc += [nn.Linear(width, h), nn.ReLU()]
            width = h
        enc.append(nn.Linear(width, 2 * self.latent_dim))
        dec, width = [], self.latent_dim
        for h in reversed(hidden):
            dec += [nn.Linear(width, h), nn.ReLU()]
            width = h
        dec += [nn.Linear(width, dim), nn.Unflatten(1, self.image_shape)]
        return nn.Sequential(*enc), nn.Sequential(*dec)

    def _conv(self, w):
        c, h, wd = self.image_shape
        if h % 4 or wd % 4:
            raise ValueError(f"the conv VAE needs image sides divisible by 4, got {h}x{wd}; use arch='mlp'")
        flat = 2 * w * (h // 4) * (wd // 4)
        enc = nn.Sequential(nn.Conv2d(c, w, 4, 2, 1), nn.ReLU(), nn.Conv2d(w, 2 * w, 4, 2, 1), nn.ReLU(),
                            nn.Flatten(), nn.Linear(flat, 2 * self.latent_dim))
        dec = nn.Sequential(nn.Linear(self.latent_dim, flat), nn.ReLU(), nn.Unflatten(1, (2 * w, h // 4, wd // 4)),
                            nn.ConvTranspose2d(2 * w, w, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(w, c, 4, 2, 1))
        return enc, dec

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) of q(z|x), each (N, latent_dim)."""
        if x.dim() != len(self.image_shape) + 1 or tuple(x.shape[1:]) != self.image_shape:
            raise ValueError(f"this VAE (image_shape={self.image_shape}) needs x of shape "
                             f"(N, {', '.join(map(str, self.image_shape))}); got shape {tuple(x.shape)}")
        # The encoder sees what the decoder models: grey levels in [0, 1] for the Bernoulli decoder.
        # Fed [-1, 1] instead, the ~600 background pixels at -1 add a large input to every first-layer
        # unit that the encoder must first learn to cancel; with pytorch/examples' VAE that costs
        # about 1.8 nats of test loss after 10 epochs (python -m ganlib.bench vae; the VAE chapter).
        return self.encoder((x + 1) / 2 if self.likelihood == "bernoulli" else x).chunk(2, dim=1)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The decoder's raw output: pixel logits (Bernoulli) or means (Gaussian)."""
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"this VAE (latent_dim={self.latent_dim}) needs z of shape (N, {self.latent_dim}); "
                             f"got shape {tuple(z.shape)}")
        return self.decoder(z)

    def decode_mean(self, z: torch.Tensor) -> torch.Tensor:
        """E[x | z] mapped to data space [-1, 1] (for pictures)."""
        out = self.decode(z)
        return 2 * torch.sigmoid(out) - 1 if self.likelihood == "bernoulli" else out

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None, eps: torch.Tensor | None = None):
        """Encode, set z = mu + sigma * eps (the reparameterisation trick), decode.

        Returns ``(decoded, mu, logvar)``. ``eps ~ N(0, I)`` is the given tensor (shape
        (N, latent_dim)), else drawn, from ``generator`` if given.

        Shape:
            - x: (N, *image_shape), in [-1, 1]
            - decoded: (N, *image_shape), logits (Bernoulli) or means (Gaussian)
            - mu, logvar: (N, latent_dim)
        """
        mu, logvar = self.encode(x)
        if eps is None:
            eps = torch.randn(mu.shape, device=mu.device, dtype=mu.dtype, generator=generator)
        elif eps.shape != mu.shape:
            raise ValueError(f"eps must have shape {tuple(mu.shape)} (batch, latent_dim); got {tuple(eps.shape)}")
        z = mu + torch.exp(0.5 * logvar) * eps
        return self.decode(z), mu, logvar

    def negative_elbo(self, x: torch.Tensor, generator: torch.Generator | None = None, beta: float = 1.0,
                      eps: torch.Tensor | None = None):
        """Per-example (negative ELBO, reconstruction NLL, KL), each shape (N,), in nats.

        ``eps`` is the reparameterisation noise (see :meth:`forward`)."""
        decoded, mu, logvar = self(x, generator, eps)
        target = (x + 1) / 2 if self.likelihood == "bernoulli" else x
        log_scale = self.log_scale if self.log_scale is not None else 0.0
        rec = reconstruction_nll(target, decoded.float(), self.likelihood, log_scale)
        kl = gaussian_kl(mu.float(), logvar.float())
        return rec + beta * kl, rec, kl

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n images E[x | z], z ~ N(0, I), in [-1, 1]."""
        device = next(self.parameters()).device
        z = torch.randn(n, self.latent_dim, device=device, generator=generator)
        return self.decode_mean(z)


def image_decoder(model: torch.nn.Module):
    """What draws images from latent codes z: a VAE's decoder mean E[x | z] (:meth:`VAE.decode_mean`),
    or a generator itself. Call it as ``image_decoder(model)(z)`` (with ``labels=`` for a conditional G)."""
    return model.decode_mean if isinstance(model, VAE) else model
