"""Figures drawn from code: the GAN schematic, and real-versus-generated image grids.

Used by the chapters "GAN concepts" (``book/gan_concepts.ipynb``) and "The training algorithm"
(``book/training_algorithm.ipynb``). Every function returns a matplotlib ``Figure`` and needs
nothing but matplotlib (and torchvision for the image grids): no network, no files.

:func:`gan_schematic` draws the data and gradient flow of one iteration of Goodfellow et al.'s
Algorithm 1 in two panels: the discriminator's step, where D's loss updates D only and the fake
samples are constants, and the generator's step, where G's loss is back-propagated *through* D,
whose weights stay fixed, into G. The labels are in the language ganlib prints in
(:mod:`ganlib.i18n`). In English the Chinese terms (生成器, 判别器) are added under the boxes only
when a font with those glyphs is installed (:func:`cjk_font`), because matplotlib's default DejaVu
Sans has none and would warn about each missing glyph.

Example::

    from ganlib.chapters.figures import gan_schematic
    fig = gan_schematic()      # in a notebook, the figure is shown when the cell returns it
"""
from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from ..i18n import _, language
from .fonts import cjk_font
from .plots import show_images

__all__ = ["gan_schematic", "real_vs_generated"]

#: the Chinese terms the schematic can show
CHINESE = {"G": "生成器", "D": "判别器"}

# colours: data flow in black, D's update in red, G's update in blue (the colours of the text)
_D_COLOUR, _G_COLOUR, _OFF = "#c0392b", "#1f5fa8", "0.6"


def _box(ax, x, y, title, subtitle, colour="k", w=1.3, h=0.8, chinese=None, cjk=None, dim=False):
    """A rounded box centred on (x, y) with a large ``title`` and a small ``subtitle`` under it."""
    edge = _OFF if dim else colour
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.02,rounding_size=0.12",
                                linewidth=1.6, edgecolor=edge, facecolor="white", zorder=2))
    text_colour = _OFF if dim else "k"
    ax.text(x, y + 0.14, title, ha="center", va="center", fontsize=15, fontweight="bold", color=text_colour, zorder=3)
    ax.text(x, y - 0.2, subtitle, ha="center", va="center", fontsize=8, color=text_colour, zorder=3)
    if chinese and cjk is not None:
        ax.text(x, y - h / 2 - 0.17, chinese, ha="center", va="center", fontsize=9, color=text_colour,
                fontproperties=cjk, zorder=3)


def _arrow(ax, start, end, colour="k", style="-", rad=0.0, lw=1.5, dim=False):
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=14, linewidth=lw,
                                 linestyle=style, color=_OFF if dim else colour,
                                 connectionstyle=f"arc3,rad={rad}", shrinkA=2, shrinkB=2, zorder=1))


def _panel(ax, which: str, cjk) -> None:
    """One panel of the schematic: ``which`` is "D" (the discriminator's step) or "G"."""
    d_step = which == "D"
    zx, gx, fx, dx, lx = 0.7, 2.3, 3.95, 5.7, 7.45   # x of the boxes: z, G, fake, D, loss
    low, high, mid = 1.0, 2.35, 1.675              # y: the fake row, the real row, D and the loss
    _box(ax, zx, low, "z", _(r"noise $z \sim p_z$"))
    _box(ax, gx, low, "G", _("Generator"), colour=_G_COLOUR, chinese=CHINESE["G"], cjk=cjk)
    _box(ax, fx, low, r"$\tilde{x}$", _(r"fake, $\tilde{x} = G(z)$"))
    _box(ax, fx, high, "x", _(r"real, $x \sim p_{data}$") if d_step else _("not used here"), dim=not d_step)
    _box(ax, dx, mid, "D", _("Discriminator"), colour=_D_COLOUR, chinese=CHINESE["D"], cjk=cjk)
    loss_colour = _D_COLOUR if d_step else _G_COLOUR
    _box(ax, lx, mid, r"$\mathcal{L}_D$" if d_step else r"$\mathcal{L}_G$",
         _("real → 1, fake → 0") if d_step else r"$-\log D(\tilde{x})$", colour=loss_colour)

    # forward pass (black): noise -> G -> fake -> D <- real, D -> loss
    _arrow(ax, (zx + 0.65, low), (gx - 0.65, low))
    _arrow(ax, (gx + 0.65, low), (fx - 0.65, low))
    _arrow(ax, (fx + 0.65, low + 0.1), (dx - 0.65, mid - 0.2))
    _arrow(ax, (fx + 0.65, high - 0.1), (dx - 0.65, mid + 0.2), dim=not d_step)
    _arrow(ax, (dx + 0.65, mid), (lx - 0.65, mid))

    # backward pass (dashed, in the colour of the network it updates), drawn under the boxes
    if d_step:
        _arrow(ax, (lx, mid - 0.45), (dx + 0.1, mid - 0.45), colour=_D_COLOUR, style="--", rad=-0.6, lw=2)
        ax.text((lx + dx) / 2, mid - 1.3, _("gradient of $\\mathcal{L}_D$ updates D only"), ha="center",
                va="center", fontsize=9, color=_D_COLOUR)
        ax.text(fx, low - 0.62, _("G(z) is a constant here:\nno gradient reaches G (detach)"), ha="center",
                va="center", fontsize=8, color=_OFF)
        title = _("(a) the discriminator's step: D learns to tell real from fake")
    else:
        # loss -> D -> fake -> G: the gradient passes *through* D on its way to G
        _arrow(ax, (lx, mid - 0.45), (dx + 0.1, mid - 0.45), colour=_G_COLOUR, style="--", rad=-0.6, lw=2)
        _arrow(ax, (dx - 0.1, mid - 0.45), (fx + 0.1, low - 0.45), colour=_G_COLOUR, style="--", rad=-0.35, lw=2)
        _arrow(ax, (fx - 0.1, low - 0.45), (gx + 0.1, low - 0.45), colour=_G_COLOUR, style="--", rad=-0.5, lw=2)
        ax.text(dx, mid + 0.62, _("frozen: weights fixed"), ha="center", va="center", fontsize=8, color=_D_COLOUR)
        ax.text((lx + gx) / 2, low - 1.1, _("gradient of $\\mathcal{L}_G$ flows back through D into G; only G is updated"),
                ha="center", va="center", fontsize=9, color=_G_COLOUR)
        title = _("(b) the generator's step: G learns to make D say \"real\"")
    ax.set_title(title, fontsize=10, loc="left")
    ax.set_xlim(0, 8.2)
    ax.set_ylim(-0.35, 3.1)
    ax.set_aspect("equal")
    ax.set_axis_off()


def gan_schematic(chinese: bool | None = None) -> Figure:
    """The data and gradient flow of one GAN iteration, in two panels (D's step, then G's step).

    Solid arrows are the forward pass (z -> G -> x~ -> D <- x, D -> loss); dashed arrows the
    gradient of each loss, in the colour of the one network it updates. ``chinese``: None adds
    生成器 / 判别器 under the boxes when :func:`cjk_font` finds a font for them, and draws
    English only otherwise (without a warning); True requires such a font (ValueError if there
    is none); False always draws English only. In the Chinese edition (``GANLIB_LANG=zh_CN``) every
    label is Chinese already (:mod:`ganlib.i18n`), and ``chinese`` adds nothing.
    """
    cjk = None
    if language() == "en" and (chinese is None or chinese):
        cjk = cjk_font()
        if chinese and cjk is None:
            raise ValueError("no installed font can draw 生成器 / 判别器; install one (e.g. Noto Sans CJK SC, "
                             "fonts-noto-cjk) or call gan_schematic(chinese=False)")
    fig, axes = plt.subplots(2, 1, figsize=(8.2, 7.0))
    for ax, which in zip(axes, ("D", "G")):
        _panel(ax, which, cjk)
    fig.tight_layout()
    plt.close(fig)  # a notebook shows the returned figure once, not a second time at the cell's end
    return fig


def real_vs_generated(real, generated, nrow: int = 8, titles=None,
                      value_range=(-1.0, 1.0), size: float = 3.2) -> Figure:
    """Two image grids side by side, real on the left and generated on the right.

    ``real`` and ``generated`` are batches (N, C, H, W) with values in ``value_range``; each grid
    has ``nrow`` images per row, drawn by :func:`ganlib.chapters.plots.show_images`. ``titles``:
    the two grids' titles (default: "training images", "generated images").
    """
    titles = (_("training images"), _("generated images")) if titles is None else titles
    fig, axes = plt.subplots(1, 2, figsize=(2 * size, size * 1.08))
    for ax, images, title in zip(axes, (real, generated), titles):
        show_images(images, nrow=nrow, title=title, ax=ax, value_range=value_range)
    fig.tight_layout()
    plt.close(fig)
    return fig
