"""The run environment: training profile, device, seeding, and a report of versions.

The book runs in two profiles, picked by one environment variable::

    GANLIB_PROFILE=quick   # CI and laptops: small budgets, seconds to a minute per notebook
    GANLIB_PROFILE=full    # readers with a GPU: the budgets behind the book's full results

When the variable is unset the profile is ``full`` if CUDA is available, else ``quick``.
"""
from __future__ import annotations

import os
import platform
import random

import numpy as np
import torch

from . import __version__  # bound in ganlib/__init__.py before it imports this module

PROFILES = ("quick", "full")


def profile() -> str:
    """The active training profile, ``"quick"`` or ``"full"`` (see the module docstring)."""
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
    """
    return quick if profile() == "quick" else full


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
