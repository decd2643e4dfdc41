"""What the static site needs to work offline, checked without a browser: the widget helper's
static counterpart, and the animation player without its CDN stylesheet."""
import re

import ipywidgets
import matplotlib
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ganlib.chapters.animation import SnapshotRecorder, animate_training, animation_html  # noqa: E402
from ganlib.chapters.interactive import WIDGET_VIEW, WithStaticFallback, figure_html  # noqa: E402
from ganlib.models import MLPDiscriminator, MLPGenerator  # noqa: E402

REMOTE = re.compile(r'<(script|link|img|iframe)[^>]*(src|href)="(https?:)?//', re.I)


def test_one_output_carries_the_widget_and_its_static_counterpart():
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    static = figure_html(fig, alt="a line")
    assert static.startswith('<img src="data:image/png;base64,') and 'alt="a line"' in static
    bundle = WithStaticFallback(ipywidgets.IntSlider(3, 0, 5), static)._repr_mimebundle_()
    assert WIDGET_VIEW in bundle and bundle[WIDGET_VIEW]["model_id"]  # Jupyter and Colab: the live widget
    assert bundle["text/html"] == static  # the site: the picture
    assert not REMOTE.search(static)


def test_the_helper_refuses_what_it_cannot_show():
    with pytest.raises(TypeError, match="ipywidgets widget"):
        WithStaticFallback("not a widget", "<p>x</p>")
    with pytest.raises(ValueError, match="static counterpart"):
        WithStaticFallback(ipywidgets.IntSlider(), "  ")


def test_the_animation_player_loads_nothing_from_another_host():
    recorder = SnapshotRecorder(limits=(-2, 2), resolution=8, n_samples=20)
    G, D = MLPGenerator(2, 2, hidden=(8,)), MLPDiscriminator(2, hidden=(8,))
    for step in range(3):
        recorder.record(G, D, step)
    html = animation_html(animate_training(recorder, figsize=(2, 2), dpi=30))
    assert "font-awesome" not in html and not REMOTE.search(html)
    assert html.count('"data:image/png;base64,') == 3  # every frame embedded
    assert "fa-play" in html  # the buttons keep their icon classes (the site's Font Awesome draws them)


def test_grid_explorer_shows_every_cell_statically_and_refuses_gaps():
    from ganlib.chapters.interactive import grid_explorer

    drawn = []

    def draw(ax, value, row, col):
        drawn.append((row, col))
        ax.plot([0, value])

    cells = {(r, c): r * c for r in (1, 2) for c in (1, 3, 5)}
    view = grid_explorer(cells, [1, 2], [1, 3, 5], draw, "k", "lr")
    assert sorted(set(drawn)) == sorted(cells)  # the static grid drew every cell (and the live view one)
    bundle = view._repr_mimebundle_()
    assert WIDGET_VIEW in bundle and bundle["text/html"].startswith('<img src="data:image/png;base64,')
    with pytest.raises(ValueError, match=r"no result for \[\(2, 5\)\]"):
        grid_explorer({k: v for k, v in cells.items() if k != (2, 5)}, [1, 2], [1, 3, 5], draw, "k", "lr")
