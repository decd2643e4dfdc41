"""Figures drawn from code (ganlib.chapters.figures): the GAN schematic and the image grids."""
import warnings

import matplotlib
import pytest
import torch
import matplotlib.font_manager
from matplotlib.font_manager import FontEntry, findfont

matplotlib.use("Agg")

from ganlib.chapters import figures  # noqa: E402  (after choosing the backend)
from ganlib.chapters.figures import gan_schematic, real_vs_generated  # noqa: E402
from ganlib.chapters.fonts import cjk_font, font_has_glyphs  # noqa: E402


def texts(fig):
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def draw_without_warnings(fig):
    # a missing glyph is a UserWarning at draw time; any warning fails the test
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig.canvas.draw()


def test_schematic_has_two_steps_with_labelled_boxes_and_losses():
    fig = gan_schematic(chinese=False)
    assert len(fig.axes) == 2
    d_panel, g_panel = ([t.get_text() for t in ax.texts] for ax in fig.axes)
    for panel in (d_panel, g_panel):
        for label in ("G", "D", "z", "Generator", "Discriminator", r"$\tilde{x}$", "x"):
            assert label in panel, f"box {label!r} missing"
    # which loss updates which network
    assert r"$\mathcal{L}_D$" in d_panel and r"$\mathcal{L}_G$" not in d_panel
    assert r"$\mathcal{L}_G$" in g_panel and r"$\mathcal{L}_D$" not in g_panel
    assert any("updates D only" in t for t in d_panel)
    assert any("through D into G" in t for t in g_panel) and any("frozen" in t for t in g_panel)
    # five forward arrows in each panel, plus one gradient arrow for D's step and three for G's (loss -> D -> x~ -> G)
    arrows = [sum(isinstance(p, matplotlib.patches.FancyArrowPatch) for p in ax.patches) for ax in fig.axes]
    assert arrows == [6, 8]
    draw_without_warnings(fig)


def test_schematic_without_a_cjk_font_is_english_only_and_silent(monkeypatch):
    monkeypatch.setattr(figures, "cjk_font", lambda *a, **k: None)
    fig = gan_schematic()  # chinese=None: falls back without a warning
    assert not [t for t in texts(fig) if any("\u4e00" <= ch <= "\u9fff" for ch in t)]
    draw_without_warnings(fig)
    with pytest.raises(ValueError, match="chinese=False"):
        gan_schematic(chinese=True)


def test_a_font_named_like_a_cjk_font_but_without_the_glyphs_is_rejected(monkeypatch):
    dejavu = findfont("DejaVu Sans")
    assert font_has_glyphs(dejavu, "GD") and not font_has_glyphs(dejavu, "生成器")
    impostor = FontEntry(fname=dejavu, name="Noto Sans CJK SC")
    monkeypatch.setattr(matplotlib.font_manager.fontManager, "ttflist", [impostor])
    assert cjk_font() is None


def test_schematic_uses_a_real_cjk_font_when_one_is_installed():
    font = cjk_font()
    if font is None:
        pytest.skip("no CJK font installed here")
    assert font_has_glyphs(font.get_file(), "生成器判别器")
    fig = gan_schematic(chinese=True)
    assert {"生成器", "判别器"} <= set(texts(fig))
    draw_without_warnings(fig)


def test_real_vs_generated_shows_two_titled_grids():
    real, fake = torch.rand(16, 1, 8, 8) * 2 - 1, torch.zeros(16, 1, 8, 8)
    fig = real_vs_generated(real, fake, nrow=4, titles=("real", "fake"))
    assert [ax.get_title() for ax in fig.axes] == ["real", "fake"]
    left, right = (ax.images[0].get_array() for ax in fig.axes)
    # a 4 x 4 grid of 8-pixel images with make_grid's 2-pixel padding: 4 * (8 + 2) + 2 = 42 pixels a side
    assert left.shape[:2] == right.shape[:2] == (42, 42)
    # the all-zero fakes are mid-grey (0.5 in [0, 1]) inside the tiles; the padding is white
    assert float(right[2:10, 2:10].min()) == pytest.approx(0.5, abs=1e-6)
    draw_without_warnings(fig)


def test_the_chinese_edition_draws_chinese_labels_next_to_math_without_missing_glyphs(monkeypatch):
    from ganlib.chapters import fonts

    if cjk_font() is None:
        pytest.skip("no CJK font installed here")
    with matplotlib.rc_context():
        monkeypatch.delenv("GANLIB_LANG", raising=False)
        before = list(matplotlib.rcParams["font.family"])
        assert fonts.use_edition_font() is None and matplotlib.rcParams["font.family"] == before  # English
        monkeypatch.setenv("GANLIB_LANG", "zh_CN")
        assert fonts.use_edition_font() == matplotlib.rcParams["font.family"][0]
        fig = gan_schematic()
        labels = texts(fig)
        assert {"生成器", "判别器"} <= set(labels) and "Generator" not in labels
        assert "生成样本，$\\tilde{x} = G(z)$" in labels  # Chinese text around math, drawn by mathtext
        draw_without_warnings(fig)


def test_a_cjk_font_missing_from_matplotlibs_stale_cache_is_found_on_disk(monkeypatch):
    # matplotlib caches its font list; a CJK font installed after that is only on disk
    from ganlib.chapters import fonts

    font = cjk_font()
    if font is None:
        pytest.skip("no CJK font installed here")
    manager = matplotlib.font_manager.fontManager
    stale = [e for e in manager.ttflist if not any(h.lower() in e.name.lower() for h in fonts.CJK_FAMILY_HINTS)]
    monkeypatch.setattr(manager, "ttflist", stale)
    assert cjk_font() is None
    monkeypatch.setenv("GANLIB_LANG", "zh_CN")
    with matplotlib.rc_context():
        assert fonts.use_edition_font() is not None
        assert any(e.fname == font.get_file() for e in manager.ttflist)
