"""Datasets for the book, and a loader that keeps a whole dataset on the training device.

* Images: MNIST / Fashion-MNIST through torchvision, scaled to [-1, 1]; scikit-learn's bundled
  8x8 digits as a tiny offline dataset.
* Toy distributions: a 1D Gaussian, PacGAN's ring and grid of Gaussians, two moons and a spiral.
  Each has ``dim`` and ``sample(n, generator=None)``.
* :class:`DeviceLoader`: the dataset lives on the device; each epoch is one ``randperm``.

The data root is ``$GANLIB_DATA`` if set, else a per-user cache folder (``data_root()``).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .env import default_device

# ----------------------------------------------------------------------------- the data root


def data_root() -> Path:
    """Where datasets live: ``$GANLIB_DATA``, else ``$XDG_CACHE_HOME/ganlib/data`` (~/.cache/...)."""
    env = os.environ.get("GANLIB_DATA")
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "ganlib" / "data"


class DatasetNotFoundError(FileNotFoundError):
    """A dataset is neither on disk nor downloadable; the message says how to fix it."""


class DatasetCorruptError(DatasetNotFoundError):
    """A dataset's files are on disk but damaged (truncated, or failing torchvision's MD5 check).

    The message names each damaged file and how to replace it. A subclass of
    :class:`DatasetNotFoundError`, so code that handles "no usable data" (the command line, the
    benchmark's fallback to synthetic data) handles this case too.
    """


# ----------------------------------------------------------------------------- image datasets

_TORCHVISION_DATASETS = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}


def load_mnist(split: str = "train", dataset: str = "mnist", root: str | Path | None = None,
               download: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Load MNIST (or ``dataset="fashion_mnist"``) as ``(images, labels)`` tensors.

    ``images`` is float32 of shape (N, 1, 28, 28) scaled to [-1, 1] (the range of a tanh
    generator); ``labels`` is int64 of shape (N,). ``split`` is ``"train"`` (60k) or ``"test"`` (10k).
    Files are read from ``root`` (default :func:`data_root`) in torchvision's layout, and
    downloaded there if missing and ``download`` is true.

    Raises :class:`DatasetNotFoundError` (or :class:`DatasetCorruptError` for damaged files) with
    the way to fix it.

    Shape:
        - images: (N, 1, 28, 28), float32 in [-1, 1]
        - labels: (N,), int64
    """
    import torchvision  # on use: torchvision loads slowly, and the toy data never needs it

    if dataset not in _TORCHVISION_DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {sorted(_TORCHVISION_DATASETS)}")
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    root = Path(root) if root is not None else data_root()
    cls = getattr(torchvision.datasets, _TORCHVISION_DATASETS[dataset])
    try:
        ds = cls(root=str(root), train=(split == "train"), download=download)
    except Exception as err:  # torchvision raises RuntimeError, URLError, OSError or AssertionError here
        folder = root / cls.__name__ / "raw"
        reason = (str(err).strip().splitlines() or [""])[0].rstrip(":")  # keep it to one paragraph
        # torchvision only checks that the extracted files exist, then reads them, so a truncated
        # file fails somewhere inside its parser; and it re-downloads a .gz that fails its MD5 check,
        # which fails offline. Both used to be reported as "not there, go online", so look first.
        try:
            damaged = _damaged_raw_files(cls, folder, split)
        except OSError:  # the diagnosis itself could not read a file: fall back to the generic message
            damaged = []
        if damaged:
            raise DatasetCorruptError(
                f"Could not load {cls.__name__} ({split} split): {'; '.join(damaged)}. To fix it, delete the "
                f"damaged file(s) and copy the original *-ubyte.gz files into {folder} (then "
                f"load_mnist(download=True) extracts them without a network), or delete them and run with "
                f"internet access so torchvision downloads them again into {root}."
            ) from None  # torchvision's own error (a reshape or download failure) would only mislead
        how = "could not be downloaded" if download else "download=False was given"
        raise DatasetNotFoundError(
            f"Could not load {cls.__name__} ({split} split): it is not in {folder} and {how} "
            f"({type(err).__name__}: {reason}). To fix it, either connect to the internet and "
            f"run again (torchvision downloads it into {root}), or copy the four original "
            f"*-ubyte.gz files into {folder}, or set the environment variable GANLIB_DATA to a folder "
            f"that already holds {cls.__name__}/raw/ (for this repository: GANLIB_DATA=../shared/data)."
        ) from None
    images = ds.data.unsqueeze(1).float().div_(127.5).sub_(1.0)
    return images, ds.targets.long()


def _idx_problem(path: Path, ndim: int) -> str | None:
    """What is wrong with an extracted IDX file (MNIST's format), or None if its size is consistent.

    IDX: two zero bytes, the type (0x08 = uint8), the number of dimensions, then each dimension as
    a big-endian uint32, then the data; so the header alone says how long the file must be.
    """
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(4 + 4 * ndim)
    except OSError as err:  # e.g. no read permission: name the file and the reason
        return f"{path} cannot be read ({type(err).__name__}: {err.strerror or err})"
    if len(head) < 4 + 4 * ndim or head[:3] != b"\x00\x00\x08" or head[3] != ndim:
        return (f"{path} is corrupt: it is {size} bytes long and does not start with the IDX header of a "
                f"{ndim}-d uint8 array")
    dims = [int.from_bytes(head[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    expected = 4 + 4 * ndim + math.prod(dims)
    if size != expected:
        state = "truncated" if size < expected else "corrupt (longer than its header says)"
        return (f"{path} is {state}: it has {size:,} bytes, but its header describes a "
                f"{' x '.join(map(str, dims))} array, {expected:,} bytes")
    return None


def _damaged_raw_files(cls, folder: Path, split: str) -> list[str]:
    """Descriptions of this split's files in ``folder`` that exist but are damaged (empty if none).

    Only called after torchvision failed, so the cost (an MD5 of up to 10 MB) never hits a
    successful load. Missing files are not listed: that is the DatasetNotFoundError case.
    """
    from torchvision.datasets.utils import check_md5  # on use, as in load_mnist

    prefix = "train" if split == "train" else "t10k"
    problems = []
    for gz_name, md5 in cls.resources:
        if not gz_name.startswith(prefix):
            continue
        gz, raw = folder / gz_name, folder / gz_name.removesuffix(".gz")
        raw_problem = _idx_problem(raw, 3 if "images" in gz_name else 1) if raw.is_file() else None
        if raw_problem:
            problems.append(raw_problem)
        # the .gz only matters when the extracted file must be (re)made from it
        if gz.is_file() and (raw_problem or not raw.is_file()) and not check_md5(str(gz), md5):
            problems.append(f"{gz} is corrupt: it fails torchvision's MD5 check ({gz.stat().st_size:,} bytes, "
                            f"expected MD5 {md5}), so it is truncated or not the original file")
    return problems


def dynamic_binarize(images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Binary images drawn pixel by pixel: 1 with probability equal to the grey level, else -1.

    ``images`` are in [-1, 1] (ganlib's range), so the grey level is ``(x + 1) / 2``; the result
    keeps that range, with values in {-1, 1}. Drawn afresh at each visit during training this is
    the *dynamic binarisation* of Salakhutdinov & Murray (2008) behind the published MNIST
    likelihoods; drawn once with a fixed seed it gives a fixed binary test set.

    Shape:
        - images: any shape, in [-1, 1]
        - output: the same shape and dtype, values in {-1, 1}
    """
    probs = ((images + 1) / 2).clamp(0, 1)
    where = generator.device if generator is not None else images.device
    u = torch.rand(probs.shape, generator=generator, device=where, dtype=probs.dtype).to(images.device)
    return torch.where(u < probs, 1.0, -1.0).to(images.dtype)


def random_subset(n_total: int, n: int, seed: int = 0) -> torch.Tensor:
    """``n`` distinct indices out of ``range(n_total)``, drawn at random with ``seed``.

    Metrics on part of a dataset must use this, never ``x[:n]``: MNIST's test set is ordered by
    writer population (its first 5,000 images come from one, its last 5,000 mostly from the other),
    so its head is not a sample of the whole (the evaluation chapter measures the difference).
    """
    if isinstance(n, bool) or not isinstance(n, int) or not 0 < n <= n_total:
        raise ValueError(f"n must be an integer between 1 and {n_total} (the number of items); got {n!r}")
    return torch.randperm(n_total, generator=torch.Generator().manual_seed(seed))[:n]


def load_digits(split: str = "all", test_fraction: float = 0.2, seed: int = 0):
    """scikit-learn's bundled 8x8 digits (1,797 images; no download) as ``(images, labels)``.

    ``images`` is float32 (N, 1, 8, 8) in [-1, 1] (the raw pixels are integers 0..16).
    ``split`` is ``"all"``, or ``"train"``/``"test"`` from one fixed shuffle by ``seed``.
    """
    from sklearn.datasets import load_digits as sk_load_digits  # on use: scikit-learn loads slowly

    bunch = sk_load_digits()
    images = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 8.0 - 1.0
    labels = torch.tensor(bunch.target, dtype=torch.long)
    if split == "all":
        return images, labels
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'all', 'train' or 'test', not {split!r}")
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    n_test = int(round(test_fraction * len(labels)))
    idx = order[:n_test] if split == "test" else order[n_test:]
    return images[idx], labels[idx]


# ----------------------------------------------------------------------------- toy distributions


@dataclass
class Gaussian1D:
    """N(mean, std^2) on the real line; samples have shape (n, 1)."""

    mean: float = 4.0
    std: float = 1.25
    dim: int = field(default=1, init=False)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` draws, shape (n, 1)."""
        return self.mean + self.std * torch.randn(n, 1, generator=generator)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log N(x; mean, std^2) elementwise, the same shape as ``x``."""
        return torch.distributions.Normal(self.mean, self.std).log_prob(x)


@dataclass
class GaussianMixture2D:
    """An equal-weight mixture of isotropic 2D Gaussians N(center_k, std^2 I)."""

    centers: torch.Tensor  # (K, 2)
    std: float
    dim: int = field(default=2, init=False)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` draws, shape (n, 2): a uniformly chosen centre plus N(0, std^2 I) noise."""
        k = torch.randint(len(self.centers), (n,), generator=generator)
        return self.centers[k] + self.std * torch.randn(n, 2, generator=generator)


def gaussian_ring(n_modes: int = 8, radius: float = 1.0, std: float = 0.01) -> GaussianMixture2D:
    """``n_modes`` Gaussians evenly spaced on a circle, at angles 2*pi*i/n_modes, i = 0..n-1.

    The defaults are PacGAN's ring (radius 1, variance 1e-4); the Unrolled GAN paper's ring is
    radius 2, std 0.02. (Much public code uses ``np.linspace(0, 2*pi, n)``, which includes both
    endpoints and so stacks two of the eight modes on the same point.)
    """
    angles = 2 * math.pi * torch.arange(n_modes, dtype=torch.float32) / n_modes
    centers = radius * torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)
    return GaussianMixture2D(centers, std)


def gaussian_grid(side: int = 5, spacing: float = 2.0, std: float = 0.05) -> GaussianMixture2D:
    """A ``side`` x ``side`` grid of Gaussians centred on the origin.

    The defaults are PacGAN's grid: centres (-4 + 2i, -4 + 2j) for i, j = 0..4, variance 0.0025.
    """
    offsets = spacing * (torch.arange(side, dtype=torch.float32) - (side - 1) / 2)
    gx, gy = torch.meshgrid(offsets, offsets, indexing="ij")
    return GaussianMixture2D(torch.stack([gx.flatten(), gy.flatten()], dim=1), std)


@dataclass
class TwoMoons:
    """Two interleaving half circles (scikit-learn's ``make_moons`` shape), with Gaussian noise."""

    noise: float = 0.05
    dim: int = field(default=2, init=False)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` draws, shape (n, 2), each moon with probability 1/2."""
        t = math.pi * torch.rand(n, generator=generator)
        upper = torch.rand(n, generator=generator) < 0.5
        x = torch.where(upper, torch.cos(t), 1 - torch.cos(t))
        y = torch.where(upper, torch.sin(t), 0.5 - torch.sin(t))
        return torch.stack([x, y], 1) + self.noise * torch.randn(n, 2, generator=generator)


@dataclass
class Spiral:
    """A two-turn Archimedean spiral r = theta / (2*pi) * scale, with Gaussian noise."""

    turns: float = 2.0
    scale: float = 1.0
    noise: float = 0.03
    dim: int = field(default=2, init=False)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` draws, shape (n, 2)."""
        # sqrt makes the density roughly uniform along the curve's length
        theta = 2 * math.pi * self.turns * torch.rand(n, generator=generator).sqrt()
        r = self.scale * theta / (2 * math.pi * self.turns)
        xy = torch.stack([r * torch.cos(theta), r * torch.sin(theta)], 1)
        return xy + self.noise * torch.randn(n, 2, generator=generator)


# ----------------------------------------------------------------------------- device-resident loader


class DeviceLoader:
    """Batches from tensors that live on the training device.

    Each epoch permutes the whole dataset with one ``randperm`` (a device generator seeded with
    ``seed``) and hands out contiguous slices: no worker processes, no host-to-device copies.
    Iterating gives one epoch; :meth:`next_batch` goes on across epochs forever. The position is
    part of :meth:`state_dict`, so a resumed run sees exactly the batches it would have seen.

    Example::

        images, labels = load_mnist()
        loader = DeviceLoader(images, labels, batch_size=128, device="cuda")
        for x, y in loader: ...
    """

    def __init__(self, *tensors: torch.Tensor, batch_size: int, device=None, shuffle: bool = True,
                 drop_last: bool = True, seed: int = 0):
        if not tensors:
            raise ValueError("DeviceLoader needs at least one tensor")
        n = len(tensors[0])
        if any(len(t) != n for t in tensors):
            raise ValueError(f"all tensors must have the same length; got {[len(t) for t in tensors]}")
        if not 0 < batch_size <= n:
            raise ValueError(f"batch_size must be between 1 and the dataset size {n}; got {batch_size}")
        self.device = default_device(device)
        self.tensors = tuple(t.to(self.device) for t in tensors)
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self._epoch_start_state = self.generator.get_state()
        self._epoch: tuple[torch.Tensor, ...] | None = None
        self._cursor = 0  # index of the next batch within the current epoch

    def __len__(self) -> int:
        n = len(self.tensors[0])
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def _new_epoch(self) -> None:
        self._epoch_start_state = self.generator.get_state()
        if self.shuffle:
            perm = torch.randperm(len(self.tensors[0]), device=self.device, generator=self.generator)
            self._epoch = tuple(t[perm] for t in self.tensors)
        else:
            self._epoch = self.tensors
        self._cursor = 0

    def next_batch(self) -> tuple[torch.Tensor, ...]:
        """The next batch, starting a new epoch when the current one is used up."""
        if self._epoch is None or self._cursor >= len(self):
            self._new_epoch()
        i = self._cursor * self.batch_size
        self._cursor += 1
        return tuple(t[i:i + self.batch_size] for t in self._epoch)

    def __iter__(self):
        self._new_epoch()
        for _ in range(len(self)):
            yield self.next_batch()

    def state_dict(self) -> dict:
        """The epoch's starting RNG state and the batch cursor: enough to replay the epoch."""
        return {"epoch_rng": self._epoch_start_state.clone(), "cursor": self._cursor,
                "started": self._epoch is not None}

    def load_state_dict(self, state: dict) -> None:
        """Resume from a :meth:`state_dict`: the next batch is the one that state would have given."""
        self.generator.set_state(state["epoch_rng"])
        if state["started"]:
            self._new_epoch()  # regenerates the same permutation, then skips what was used
            self._cursor = int(state["cursor"])
        else:
            self._epoch, self._cursor = None, 0
