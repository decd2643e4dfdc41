"""A widget for readers who run the notebook, and its static counterpart for the site, in one output.

Where a reader learns by moving something (a learning rate, a latent code), a chapter shows an
ipywidgets control. A widget needs a running kernel; the book's static site has none, and a page
must never show an empty widget area or load the widget manager from a CDN. So a chapter displays
:class:`WithStaticFallback`, one output that carries two representations:

* ``application/vnd.jupyter.widget-view+json``: the live widget, which Jupyter and Colab show;
* ``text/html``: its static counterpart (an image grid, an animation), which the site shows: the
  book's ``_config.yml`` drops the widget view from the site's choice of outputs
  (``nb_mime_priority_overrides``) and loads no widget JavaScript (``nb_ipywidgets_js: {}``).

Example::

    slider = ipywidgets.IntSlider(0, 0, len(frames) - 1)
    live = ipywidgets.interactive(lambda i: show(frames[i]), i=slider)
    display(WithStaticFallback(live, figure_html(grid_figure)))
"""
from __future__ import annotations

import base64
import html
import io

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


class WithStaticFallback:
    """Display ``widget`` where a kernel runs it, and ``static_html`` everywhere else."""

    def __init__(self, widget, static_html: str):
        if not hasattr(widget, "_repr_mimebundle_"):
            raise TypeError(f"widget must be an ipywidgets widget; got {type(widget).__name__}")
        if not isinstance(static_html, str) or not static_html.strip():
            raise ValueError("static_html must be the non-empty HTML of the widget's static counterpart")
        self.widget, self.static_html = widget, static_html

    def _repr_mimebundle_(self, include=None, exclude=None):
        bundle = dict(self.widget._repr_mimebundle_(include=include, exclude=exclude) or {})
        if WIDGET_VIEW not in bundle:  # the widget could not make a view (no comm): the static one only
            bundle.pop("text/plain", None)
        bundle["text/html"] = self.static_html
        return bundle


def figure_html(fig, alt: str, dpi: int = 80) -> str:
    """A matplotlib figure as an ``<img>`` with its PNG embedded (nothing to fetch), then closed."""
    import matplotlib.pyplot as plt  # on use: importing this module must not load matplotlib

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}" style="max-width: 100%">'


def grid_explorer(cells: dict, rows: list, cols: list, draw, row_label: str, col_label: str,
                  cell_size: float = 2.2, title: str = "{row_label} = {row}, {col_label} = {col}") -> WithStaticFallback:
    """Explore precomputed results over two settings: two sliders and one plot under a kernel, the
    whole grid of plots on the site.

    ``cells[(row, col)]`` holds the result for each pair of settings; ``draw(ax, result, row, col)``
    plots one. Nothing is computed when a slider moves: the results are the chapter's own runs,
    so the live and the static views show the same numbers.
    """
    import ipywidgets  # on use: the engine never needs ipywidgets
    import matplotlib.pyplot as plt

    missing = [(r, c) for r in rows for c in cols if (r, c) not in cells]
    if missing:
        raise ValueError(f"cells has no result for {missing[:3]}{' ...' if len(missing) > 3 else ''}; "
                         f"it needs one for every (row, col) in rows x cols")
    label = lambda r, c: title.format(row_label=row_label, col_label=col_label, row=r, col=c)  # noqa: E731

    fig, axes = plt.subplots(len(rows), len(cols), figsize=(cell_size * len(cols), cell_size * len(rows)),
                             squeeze=False)
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            draw(axes[i][j], cells[(r, c)], r, c)
            axes[i][j].set_title(label(r, c), fontsize=8)
    fig.tight_layout()
    static = figure_html(fig, alt=f"results for every {row_label} and {col_label}")

    row_slider = ipywidgets.SelectionSlider(options=list(rows), description=row_label)
    col_slider = ipywidgets.SelectionSlider(options=list(cols), description=col_label)
    output = ipywidgets.Output()

    def redraw(_=None):
        with output:
            output.clear_output(wait=True)
            fig, ax = plt.subplots(figsize=(2 * cell_size, 2 * cell_size))
            draw(ax, cells[(row_slider.value, col_slider.value)], row_slider.value, col_slider.value)
            ax.set_title(label(row_slider.value, col_slider.value))
            plt.show()

    row_slider.observe(redraw, "value")
    col_slider.observe(redraw, "value")
    redraw()
    return WithStaticFallback(ipywidgets.VBox([row_slider, col_slider, output]), static)
