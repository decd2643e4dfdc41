"""Plotting helpers shared by the chapters (matplotlib only)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import torch


def image_grid(images: torch.Tensor, nrow: int = 8, value_range=(-1.0, 1.0)) -> torch.Tensor:
    """Tile a batch (N, C, H, W) into one (H', W', C) array in [0, 1] for ``imshow``."""
    import torchvision.utils as vutils

    images = images.detach().float().cpu()
    grid = vutils.make_grid(images, nrow=nrow, normalize=True, value_range=value_range, pad_value=1.0)
    return grid.permute(1, 2, 0)


def show_images(images: torch.Tensor, nrow: int = 8, title: str | None = None, ax=None,
                value_range=(-1.0, 1.0)):
    """Show a batch of images as one grid; returns the matplotlib Axes."""
    if ax is None:
        _, ax = plt.subplots(figsize=(nrow * 0.6, (len(images) + nrow - 1) // nrow * 0.6))
    grid = image_grid(images, nrow=nrow, value_range=value_range)
    ax.imshow(grid.squeeze(-1) if grid.shape[-1] == 1 else grid, cmap="gray", vmin=0, vmax=1)
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax
