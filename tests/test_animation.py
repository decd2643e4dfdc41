"""The 2D training animation (ganlib.chapters.animation): snapshots, frames, and HTML that plays offline."""
import numpy as np
import pytest
import torch

from ganlib.chapters.animation import SnapshotRecorder, animate_training, animation_html
from ganlib.models import MLPDiscriminator, MLPGenerator


def small_pair(seed=0):
    torch.manual_seed(seed)
    return MLPGenerator(2, 2, hidden=(16,)), MLPDiscriminator(2, hidden=(16,))


def test_recorder_stores_fixed_latent_samples_and_d_on_the_grid():
    G, D = small_pair()
    rec = SnapshotRecorder(limits=(-2, 2), resolution=12, n_samples=50, seed=0)
    first = rec.record(G, D, step=0)
    again = rec.record(G, D, step=1)
    assert first.samples.shape == (50, 2) and first.d_grid.shape == (12, 12)
    # same latent codes and unchanged networks -> the same frame
    np.testing.assert_array_equal(first.samples, again.samples)
    assert ((first.d_grid > 0) & (first.d_grid < 1)).all()
    # the grid value is D's probability at that grid point
    i, j = 3, 7
    point = torch.tensor([[rec.grid_x[i, j], rec.grid_y[i, j]]], dtype=torch.float32)
    assert first.d_grid[i, j] == pytest.approx(torch.sigmoid(D(point)).item(), abs=1e-6)
    # after a change to G, the points move
    with torch.no_grad():
        G.net[-2].bias.add_(1.0)
    moved = rec.record(G, D, step=2)
    assert not np.allclose(moved.samples, first.samples)
    assert [s.step for s in rec] == [0, 1, 2]


def test_recorder_works_as_a_trainer_callback():
    G, D = small_pair()

    class FakeTrainer:
        generator, discriminator, step = G, D, 40

    rec = SnapshotRecorder(resolution=5, n_samples=8)
    rec(FakeTrainer())
    assert len(rec) == 1 and rec.snapshots[0].step == 40
    with pytest.raises(TypeError, match="record"):
        rec(object())


def test_animation_html_embeds_every_frame_and_plays_without_a_kernel():
    G, D = small_pair()
    rec = SnapshotRecorder(limits=((-2, 2), (-1, 3)), resolution=10, n_samples=20)
    for step in range(5):
        with torch.no_grad():
            G.net[-2].bias.add_(0.1)
        rec.record(G, D, step)
    anim = animate_training(rec, real=torch.randn(30, 2), figsize=(2, 2), dpi=40, max_frames=3)
    html = animation_html(anim)
    assert html.count('"data:image/png;base64') == 3  # subsampled to max_frames, none dropped
    assert "<script" in html and "anim" in html.lower()
    with pytest.raises(ValueError, match="max_frames"):
        animation_html(animate_training(rec, figsize=(2, 2), dpi=40), embed_limit_mb=0.001)


def test_bad_inputs_name_the_fix():
    with pytest.raises(ValueError, match="increasing"):
        SnapshotRecorder(limits=(2, -2))
    with pytest.raises(ValueError, match="snapshots"):
        animate_training(SnapshotRecorder())
    G, D = small_pair()
    G3 = MLPGenerator(2, 3, hidden=(8,))
    with pytest.raises(ValueError, match="2D"):
        SnapshotRecorder(n_samples=4).record(G3, D, 0)


def test_recorder_as_a_gan_trainer_callback():
    from ganlib.data import gaussian_ring
    from ganlib.train import GANConfig, GANTrainer

    torch.set_num_threads(1)
    G, D = small_pair()
    rec = SnapshotRecorder(limits=(-1.5, 1.5), resolution=8, n_samples=16)
    trainer = GANTrainer(G, D, gaussian_ring(), GANConfig(steps=20, batch_size=32, log_every=10, progress=False),
                         callbacks=[rec])
    trainer.fit()
    assert [s.step for s in rec] == [10, 20]
    assert not np.allclose(rec.snapshots[0].samples, rec.snapshots[1].samples)  # G trained in between
