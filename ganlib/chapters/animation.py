"""Animate a 2D GAN while it trains: G's samples over D's decision surface, one frame per snapshot.

Used by the chapter "The training algorithm" (``book/training_algorithm.ipynb``). A
:class:`SnapshotRecorder` is a trainer callback: every time the trainer calls it, it stores the
generator's samples for a *fixed* batch of latent codes (so the points move, rather than being
redrawn) and D(x) = sigmoid(logit) on a grid. :func:`animate_training` turns the snapshots into a
matplotlib ``FuncAnimation``, and :func:`animation_html` into self-contained HTML (``to_jshtml``:
every frame is an embedded PNG plus a small JavaScript player), which plays on a static site
without a kernel. Keep the number of frames and the figure small: each frame costs ~20-60 kB.

Example::

    recorder = SnapshotRecorder(limits=(-1.6, 1.6))
    trainer = GANTrainer(G, D, gaussian_ring(), config, callbacks=[recorder])
    trainer.fit()
    IPython.display.HTML(animation_html(animate_training(recorder, real=data.sample(1000))))
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import torch

from ..i18n import _

__all__ = ["Snapshot", "SnapshotRecorder", "animate_training", "animation_html", "save_gif"]


@dataclass
class Snapshot:
    """One frame: the training step, G's samples (n, 2) and D's probabilities on the grid (res, res)."""

    step: int
    samples: np.ndarray
    d_grid: np.ndarray


class SnapshotRecorder:
    """A trainer callback that records G's samples and D's decision surface on a 2D grid.

    ``limits`` is the plotted square, ``(lo, hi)`` for both axes or ``((xlo, xhi), (ylo, yhi))``;
    ``resolution`` the number of grid points per axis; ``n_samples`` how many generated points
    each frame shows (always from the same latent codes, drawn once with ``seed``).

    Call it as ``recorder(trainer)`` (the trainer passes itself; the recorder reads
    ``trainer.generator``, ``trainer.discriminator`` and ``trainer.step``) or directly with
    ``recorder.record(generator, discriminator, step)``.
    """

    def __init__(self, limits=(-2.0, 2.0), resolution: int = 60, n_samples: int = 500, seed: int = 0):
        limits = tuple(limits)
        if len(limits) == 2 and np.isscalar(limits[0]):
            limits = (limits, limits)
        (xlo, xhi), (ylo, yhi) = limits
        if not (xlo < xhi and ylo < yhi):
            raise ValueError(f"limits must be increasing pairs, e.g. (-2, 2) or ((-2, 2), (-1, 3)); got {limits}")
        if resolution < 2 or n_samples < 1:
            raise ValueError(f"resolution must be >= 2 and n_samples >= 1; got {resolution}, {n_samples}")
        self.limits = ((float(xlo), float(xhi)), (float(ylo), float(yhi)))
        self.resolution, self.n_samples, self.seed = resolution, n_samples, seed
        xs, ys = np.linspace(xlo, xhi, resolution), np.linspace(ylo, yhi, resolution)
        self.grid_x, self.grid_y = np.meshgrid(xs, ys)  # (res, res), rows follow y
        self.snapshots: list[Snapshot] = []
        self._z: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.snapshots)

    def __iter__(self):
        return iter(self.snapshots)

    def __call__(self, trainer) -> None:
        missing = [a for a in ("generator", "discriminator") if not hasattr(trainer, a)]
        if missing:
            raise TypeError(f"SnapshotRecorder is a trainer callback; the object it got has no {missing}. "
                            "Call recorder.record(generator, discriminator, step) to use it without a trainer.")
        step = getattr(trainer, "step", len(self.snapshots))
        self.record(trainer.generator, trainer.discriminator, int(step))

    @torch.no_grad()
    def record(self, generator: torch.nn.Module, discriminator: torch.nn.Module, step: int) -> Snapshot:
        """Store one snapshot of ``generator`` and ``discriminator`` at training step ``step``."""
        device = next(generator.parameters()).device
        if self._z is None:
            latent_dim = getattr(generator, "latent_dim", None)
            if latent_dim is None:
                raise TypeError("the generator needs a .latent_dim attribute (ganlib's generators have one)")
            self._z = torch.randn(self.n_samples, latent_dim, generator=torch.Generator().manual_seed(self.seed))
        samples = generator(self._z.to(device)).float().reshape(self.n_samples, -1)
        if samples.shape[1] != 2:
            raise ValueError(f"SnapshotRecorder draws 2D data; the generator makes {samples.shape[1]}-D samples")
        grid = torch.tensor(np.stack([self.grid_x.ravel(), self.grid_y.ravel()], 1), dtype=torch.float32)
        d_device = next(discriminator.parameters()).device
        probs = torch.sigmoid(discriminator(grid.to(d_device)).float().reshape(-1))
        snap = Snapshot(step, samples.cpu().numpy(), probs.cpu().numpy().reshape(self.grid_x.shape))
        self.snapshots.append(snap)
        return snap


def animate_training(recorder: SnapshotRecorder, real=None, figsize=(4.0, 4.0), dpi: int = 72,
                     interval: int = 200, max_frames: int | None = 40, title: str | None = None):
    """A ``FuncAnimation`` of the recorded snapshots: D(x) as filled contours, G's samples on top.

    ``real`` (an (n, 2) array or tensor) is drawn as small grey points in every frame. When there
    are more than ``max_frames`` snapshots, evenly spaced ones are kept (first and last included).
    The colour scale is fixed to [0, 1] with 1/2 (D cannot tell) at the middle of the colour map.
    ``title`` is each frame's title, a format string of ``step`` (default: "step {step}").
    """
    import matplotlib.pyplot as plt  # on use: recording snapshots needs no matplotlib
    from matplotlib.animation import FuncAnimation

    title = _("step {step}") if title is None else title
    snaps = list(recorder.snapshots)
    if not snaps:
        raise ValueError("the recorder has no snapshots: pass it to the trainer as a callback and train first")
    if max_frames is not None and len(snaps) > max_frames:
        keep = np.unique(np.linspace(0, len(snaps) - 1, max_frames).round().astype(int))
        snaps = [snaps[i] for i in keep]
    (xlo, xhi), (ylo, yhi) = recorder.limits
    levels = np.linspace(0.0, 1.0, 11)

    fig = plt.figure(figsize=figsize, dpi=dpi)
    ax = fig.add_axes((0.02, 0.02, 0.78, 0.88))
    cax = fig.add_axes((0.83, 0.1, 0.04, 0.72))  # the colour bar, drawn once with the first frame
    colorbar_drawn = []

    def draw(i):
        snap = snaps[i]
        ax.clear()
        cs = ax.contourf(recorder.grid_x, recorder.grid_y, snap.d_grid, levels=levels, cmap="RdBu_r",
                         vmin=0.0, vmax=1.0, alpha=0.8)
        if not colorbar_drawn:
            cbar = fig.colorbar(cs, cax=cax, ticks=[0, 0.25, 0.5, 0.75, 1])
            cbar.ax.tick_params(labelsize=7)
            cbar.set_label("D(x)", fontsize=8)
            colorbar_drawn.append(cbar)
        if real is not None:
            r = np.asarray(real.detach().cpu() if isinstance(real, torch.Tensor) else real)
            ax.scatter(r[:, 0], r[:, 1], s=3, c="0.25", alpha=0.35, linewidths=0, label=_("real"))
        ax.scatter(snap.samples[:, 0], snap.samples[:, 1], s=5, c="gold", edgecolors="k",
                   linewidths=0.2, label="G(z)")
        ax.set_xlim(xlo, xhi)
        ax.set_ylim(ylo, yhi)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(title.format(step=snap.step), fontsize=9)
        ax.legend(loc="lower left", fontsize=7, markerscale=2, framealpha=0.7)
        return ()

    anim = FuncAnimation(fig, draw, frames=len(snaps), interval=interval, blit=False)
    anim.n_frames = len(snaps)  # lets animation_html check that no frame was dropped
    plt.close(fig)  # the HTML player replaces the static figure in a notebook
    return anim


_CDN_STYLESHEET = re.compile(r'<link[^>]*href="https?://[^"]*"[^>]*>\s*')


def animation_html(anim, embed_limit_mb: float = 10.0, default_mode: str = "loop") -> str:
    """Self-contained HTML for ``anim`` (``to_jshtml``): plays in a notebook and on a static site.

    In a notebook: ``IPython.display.HTML(animation_html(anim))``. Raises an error naming the fix if
    the frames do not fit in ``embed_limit_mb`` (matplotlib would otherwise silently drop frames).
    """
    import matplotlib  # on use, as above

    with matplotlib.rc_context({"animation.embed_limit": embed_limit_mb}):
        html = anim.to_jshtml(default_mode=default_mode)
    # matplotlib links Font Awesome 4 from a CDN for the player's button icons; the book's site
    # serves Font Awesome itself (the theme's), and a page must load nothing from another host
    html = _CDN_STYLESHEET.sub("", html)
    # Past the limit matplotlib drops the remaining frames with only a log message; make it an error.
    embedded = html.count('"data:image/')
    expected = getattr(anim, "n_frames", embedded)
    if embedded < expected:
        raise ValueError(f"only {embedded} of {expected} frames fit in embed_limit_mb={embed_limit_mb}; "
                         "use fewer frames (max_frames), a smaller figsize or a lower dpi, "
                         "or raise embed_limit_mb")
    return html


def save_gif(anim, path, fps: int = 5) -> None:
    """Write ``anim`` to a GIF (Pillow, a matplotlib dependency) for slides or a README."""
    anim.save(str(path), writer="pillow", fps=fps)
