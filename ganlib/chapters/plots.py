"""Plotting helpers shared by the chapters (matplotlib only)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from ..i18n import _


def image_grid(images: torch.Tensor, nrow: int = 8, value_range=(-1.0, 1.0)) -> torch.Tensor:
    """Tile a batch (N, C, H, W) into one (H', W', C) array in [0, 1] for ``imshow``."""
    import torchvision.utils as vutils  # on use: torchvision loads slowly, most plots do not need it

    images = images.detach().float().cpu()
    grid = vutils.make_grid(images, nrow=nrow, normalize=True, value_range=value_range, pad_value=1.0)
    return grid.permute(1, 2, 0)


def show_images(images: torch.Tensor, nrow: int = 8, title: str | None = None, ax=None,
                value_range=(-1.0, 1.0)):
    """Show a batch of images as one grid; returns the matplotlib Axes."""
    if ax is None:
        _fig, ax = plt.subplots(figsize=(nrow * 0.6, (len(images) + nrow - 1) // nrow * 0.6))
    # a NumPy array for imshow: a torch tensor there makes NumPy 2 emit a DeprecationWarning
    grid = image_grid(images, nrow=nrow, value_range=value_range).numpy()
    ax.imshow(grid[..., 0] if grid.shape[-1] == 1 else grid, cmap="gray", vmin=0, vmax=1)
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=10)
    return ax


def density_and_discriminator(ax, x, p_data, fake_samples=None, d_values=None, d_formula=None,
                              title: str | None = None, bins: int = 60):
    """One 1D GAN panel: the data density, a histogram of generated samples, and D(x) on a twin axis.

    ``x`` is a 1D grid, ``p_data`` the data density on it, ``fake_samples`` G's samples (any shape
    with one value per sample), ``d_values`` D's probabilities on ``x``, ``d_formula`` an optional
    reference curve for D (e.g. the optimal discriminator). Returns the twin Axes holding D.
    """

    x = np.asarray(x)
    ax.plot(x, p_data, color="k", lw=1.5, label="$p_{data}$")
    if fake_samples is not None:
        fake = np.asarray(torch.as_tensor(fake_samples).detach().cpu().reshape(-1))
        ax.hist(fake, bins=bins, range=(x[0], x[-1]), density=True, color="tab:orange", alpha=0.5,
                label=_("samples of G ($p_g$)"))
    ax.set_xlim(x[0], x[-1])
    ax.set_ylabel(_("density"))
    ax.set_xlabel("x")
    ax_d = ax.twinx()
    if d_formula is not None:
        ax_d.plot(x, d_formula, color="tab:blue", lw=3, alpha=0.35, label=_("$D^*(x)$ (formula)"))
    if d_values is not None:
        ax_d.plot(x, d_values, color="tab:blue", lw=1.5, label="D(x)")
    ax_d.axhline(0.5, color="tab:blue", lw=0.8, ls=":")
    ax_d.set_ylim(0, 1)
    ax_d.set_ylabel("D(x)", color="tab:blue")
    if title:
        ax.set_title(title)
    handles = [h for a in (ax, ax_d) for h in a.get_legend_handles_labels()[0]]
    labels = [lab for a in (ax, ax_d) for lab in a.get_legend_handles_labels()[1]]
    ax.legend(handles, labels, loc="upper left", fontsize=8)
    return ax_d


def scatter_2d(samples, centers=None, std: float | None = None, ax=None, title: str | None = None,
               lim: float | None = None):
    """Scatter 2D samples; mark mixture centres (x) and, with ``std``, their 3-std "high quality" circles."""

    if ax is None:
        _fig, ax = plt.subplots(figsize=(3.2, 3.2))
    s = np.asarray(torch.as_tensor(samples).detach().cpu())
    ax.scatter(s[:, 0], s[:, 1], s=2, alpha=0.4, color="tab:blue", linewidths=0)
    if centers is not None:
        c = np.asarray(torch.as_tensor(centers).cpu())
        ax.scatter(c[:, 0], c[:, 1], marker="x", s=20, color="k", linewidths=1)
        if std is not None:
            for cx, cy in c:
                ax.add_patch(plt.Circle((cx, cy), 3 * std, fill=False, color="tab:red", lw=0.6))
        if lim is None:
            lim = 1.25 * float(np.abs(c).max())
    if lim is not None:
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)
    return ax
