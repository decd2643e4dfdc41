"""The run environment: training profile, device, seeding, and a report of versions.

The book runs in two profiles, picked by one environment variable::

    GANLIB_PROFILE=quick   # CI and laptops: small budgets, seconds to a minute per notebook
    GANLIB_PROFILE=full    # readers with a GPU: the budgets behind the book's full results

and a third setting for testing the second: ``GANLIB_PROFILE=smoke`` follows every code path of
the full profile (its arms, configurations and losses) at the quick profile's budgets, so that CI
runs the full profile's code in seconds (:func:`by_profile` says how the two are combined).

When the variable is unset the profile is ``full`` if CUDA is available, else ``quick``.
"""
from __future__ import annotations

import os
import platform
import random
from importlib import metadata
from pathlib import Path

import numpy as np
import torch

from . import __version__  # bound in ganlib/__init__.py before it imports this module

PROFILES = ("quick", "full", "smoke")


#: ``book/results/`` in a checkout of the book: the committed results files that the chapters read
RESULTS_DIR = Path(__file__).resolve().parents[1] / "book" / "results"


def profile() -> str:
    """The active training profile, ``"quick"``, ``"full"`` or ``"smoke"`` (see the module docstring)."""
    value = os.environ.get("GANLIB_PROFILE", "").strip().lower()
    if not value:
        return "full" if torch.cuda.is_available() else "quick"
    if value not in PROFILES:
        raise ValueError(
            f"GANLIB_PROFILE={value!r} is not a profile; set it to one of {PROFILES} "
            "(or unset it to pick 'full' on a CUDA machine and 'quick' elsewhere)."
        )
    return value


def by_profile(quick, full):
    """Return ``quick`` or ``full`` according to the active profile.

    Notebooks use it for every budget, e.g. ``steps = by_profile(quick=300, full=20_000)``.
    In the smoke profile it returns :func:`smoke_value`: the full profile's choices at the
    quick profile's budgets.
    """
    active = profile()
    if active == "quick":
        return quick
    if active == "full":
        return full
    return smoke_value(quick, full)


def _numeric(value) -> bool:
    """A number (not a bool), or a list or tuple of numbers only: a budget, not a code path."""
    if isinstance(value, (list, tuple)):
        return len(value) > 0 and all(_numeric(v) for v in value)
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def smoke_value(quick, full):
    """What :func:`by_profile` returns in the smoke profile.

    Budgets come from ``quick``: numbers, and lists or tuples of numbers only (steps, sizes, seeds).
    Everything else comes from ``full``: which arms, configurations or losses run, and ``None``
    ("all of them"). Dicts and equally long tuples with the same keys or length are combined
    entry by entry, so ``dict(n=600, n_kept=10_000)`` against ``dict(n=2000, n_kept=None)`` gives
    ``dict(n=600, n_kept=None)``.
    """
    if _numeric(quick) and _numeric(full):
        return quick
    if isinstance(quick, dict) and isinstance(full, dict) and quick.keys() == full.keys():
        return {key: smoke_value(quick[key], full[key]) for key in full}
    if isinstance(quick, tuple) and isinstance(full, tuple) and len(quick) == len(full):
        return tuple(smoke_value(q, f) for q, f in zip(quick, full))
    return full


def default_device(device: str | torch.device | None = None) -> torch.device:
    """The device to train on: ``device`` if given, else CUDA, then Apple's MPS, then CPU."""
    if device is not None:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch (all devices), and return a CPU generator seeded the same.

    Call it before building any model: the same seed on CPU then gives the same numbers.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    return torch.Generator().manual_seed(seed)


def describe_environment(device: str | torch.device | None = None) -> str:
    """One line naming the profile, the device and the library versions; printed atop each notebook."""
    import matplotlib  # only for their versions: importing ganlib must not load these slow packages
    import torchvision

    dev = default_device(device)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or "cpu"
    return (
        f"profile={profile()} | device={dev} ({name}) | python {platform.python_version()} | "
        f"torch {torch.__version__} | torchvision {torchvision.__version__} | "
        f"matplotlib {matplotlib.__version__} | ganlib {__version__}"
    )


def versions() -> dict:
    """The software and machine a result was made with, for provenance records: ``python``,
    ``torch``, ``torchvision``, ``numpy``, ``scipy`` (when installed), ``ganlib``, torch's
    ``threads``, ``machine``, ``processor`` and ``platform``."""
    def installed(package: str) -> str | None:
        try:  # read from the package metadata: nothing is imported
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return None

    found = {"python": platform.python_version(), "torch": torch.__version__, "torchvision": installed("torchvision"),
             "numpy": np.__version__, "scipy": installed("scipy"), "ganlib": __version__,
             "threads": torch.get_num_threads(), "machine": platform.machine(),
             "processor": platform.processor() or "unknown", "platform": platform.platform()}
    return {k: v for k, v in found.items() if v is not None}
