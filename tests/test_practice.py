"""The chapter "Practice on MNIST": the sources' defects, DCGAN arithmetic, and the chapter's tools."""
import ast

import pytest
import torch
from torch import nn

from ganlib import models
from ganlib.chapters import practice, selfcheck
from ganlib.losses import discriminator_loss, generator_loss


# ----------------------------------------------------------------------------- the sources' defects


def test_softmax_images_sum_to_one():
    G = practice.SoftmaxImages(models.MLPGenerator(10, (1, 28, 28), hidden=(32,)))
    sums = practice.pixel_sums(G(torch.randn(6, 10)))
    assert torch.allclose(sums, torch.ones(6), atol=1e-5)
    real = torch.ones(2, 1, 28, 28)  # white images: every pixel 1 on the [0, 1] scale
    assert practice.pixel_sums(real).tolist() == [784.0, 784.0]


def test_layers_rebuilt_every_call_give_new_outputs():
    z = torch.randn(3, 100)
    assert not torch.allclose(practice.rebuilt_every_call(z), practice.rebuilt_every_call(z))
    G = models.mnist_mlp_generator().eval()
    assert torch.equal(G(z), G(z))


def test_discriminator_without_flatten_scores_each_pixel():
    out = practice.no_flatten_discriminator()(torch.rand(2, 28, 28, 1))
    assert out.shape == (2, 28, 28, 1)
    assert models.mnist_mlp_discriminator()(torch.rand(2, 1, 28, 28)).shape == (2,)


def test_generator_refuses_images_as_its_input():
    with pytest.raises(ValueError, match=r"needs z of shape \(N, 100\)"):
        models.mnist_mlp_generator()(torch.rand(4, 1, 28, 28))


def test_comment_only_class_body_does_not_parse():
    with pytest.raises(IndentationError, match="expected an indented block"):
        ast.parse("class Generator:\n    def forward(self, z):\n        # the forward pass\n")
    ast.parse("class Generator:\n    def forward(self, z):\n        pass\n")


def test_bce_on_sigmoid_loses_the_gradient_where_logits_keep_it():
    grads = practice.bce_generator_gradient(torch.tensor([-5.0, -38.0]))
    bce, ours = grads["sigmoid + BCELoss"].tolist(), grads["logits (ganlib)"].tolist()
    assert bce[0] == pytest.approx(ours[0], rel=1e-4)       # where D has not won, the two agree
    assert ours[1] == pytest.approx(-1.0, abs=1e-6)           # d/dl softplus(-l) -> -1
    assert abs(bce[1]) < 1e-3                                 # BCELoss's clamp: orders of magnitude less
    with pytest.raises(RuntimeError, match="between 0 and 1"):
        nn.BCELoss()(torch.tensor([2.5]), torch.tensor([1.0]))


def _step_names(fake_line: str):
    torch.manual_seed(0)
    G, D = nn.Linear(4, 6), nn.Linear(6, 1)
    names = {"G": lambda z: G(z), "D": lambda x: D(x).squeeze(1), "z": torch.randn(8, 4), "real": torch.randn(8, 6),
             "opt_d": torch.optim.SGD(D.parameters(), 0.1), "opt_g": torch.optim.SGD(G.parameters(), 0.1),
             "discriminator_loss": discriminator_loss, "generator_loss": generator_loss}
    lines = selfcheck.BUGGY_STEP.splitlines()
    lines[1] = fake_line
    return names, "\n".join(lines)


def test_the_buggy_step_fails_on_line_8_and_runs_with_line_2_fixed():
    names, step = _step_names(selfcheck.BUGGY_STEP.splitlines()[1])
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        exec(step, names)
    names, step = _step_names('loss_d = discriminator_loss("nonsaturating", D(real), D(fake.detach()))')
    exec(step, names)
    assert selfcheck.check_practice_bug(2) and not selfcheck.check_practice_bug(8)


# ----------------------------------------------------------------------------- DCGAN arithmetic


@pytest.mark.parametrize("size,kernel,stride,padding,output_padding,dilation",
                         [(1, 7, 1, 0, 0, 1), (7, 4, 2, 1, 0, 1), (7, 3, 2, 1, 1, 1), (5, 3, 3, 2, 0, 2), (4, 5, 1, 2, 0, 1)])
def test_transposed_conv_size_matches_pytorch(size, kernel, stride, padding, output_padding, dilation):
    layer = nn.ConvTranspose2d(1, 1, kernel, stride, padding, output_padding, dilation=dilation)
    expected = layer(torch.zeros(1, 1, size, size)).shape[-1]
    assert practice.transposed_conv_size(size, kernel, stride, padding, output_padding, dilation) == expected


@pytest.mark.parametrize("size,kernel,stride,padding", [(28, 4, 2, 1), (14, 4, 2, 1), (7, 7, 1, 0), (13, 3, 2, 1)])
def test_conv_size_matches_pytorch(size, kernel, stride, padding):
    expected = nn.Conv2d(1, 1, kernel, stride, padding)(torch.zeros(1, 1, size, size)).shape[-1]
    assert practice.conv_size(size, kernel, stride, padding) == expected


def test_layer_table_ends_in_the_image_and_counts_every_parameter():
    G = models.DCGANGenerator(100, 28, 1, 8)
    rows = practice.layer_table(G, torch.randn(2, 100))
    assert rows[0]["output shape"] == (16, 7, 7) and rows[-1]["output shape"] == (1, 28, 28)
    assert sum(r["parameters"] for r in rows) == sum(p.numel() for p in G.parameters())


def test_dcgan_generator_without_batch_norm():
    G = models.DCGANGenerator(100, 28, 1, 8, batchnorm=False)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in G.modules())
    assert G(torch.randn(3, 100)).shape == (3, 1, 28, 28)
    assert models.build_model(G.spec).spec == G.spec


def test_practice_self_checks():
    assert selfcheck.check_practice_transposed_conv(14)
    assert not selfcheck.check_practice_transposed_conv(13)
    params = sum(p.numel() for p in models.mnist_mlp_generator().parameters())
    assert params == 101 * 128 + 129 * 256 + 257 * 512 + 513 * 1024 + 1025 * 784
    assert selfcheck.check_practice_parameter_count(params)
    assert not selfcheck.check_practice_parameter_count(params - 128 - 256 - 512 - 1024 - 784)  # weights only


# ----------------------------------------------------------------------------- what a generator learned


def test_slerp_keeps_the_norm_and_hits_both_ends():
    z0 = torch.tensor([3.0, 0.0, 0.0])
    z1 = torch.tensor([0.0, 3.0, 0.0])
    path = practice.interpolate(z0, z1, 9)
    assert torch.allclose(path[0], z0, atol=1e-6) and torch.allclose(path[-1], z1, atol=1e-6)
    assert torch.allclose(path.norm(dim=1), torch.full((9,), 3.0), atol=1e-5)
    line = practice.interpolate(z0, z1, 9, spherical=False)
    assert line.norm(dim=1)[4] == pytest.approx(3.0 / 2 ** 0.5, rel=1e-5)


def test_latent_explorer_has_a_static_view():
    from ganlib.chapters.interactive import WithStaticFallback

    gens = {"u": models.DCGANGenerator(8, 28, 1, 4).eval(), "c": models.DCGANGenerator(8, 28, 1, 4, num_classes=10).eval()}
    view = practice.latent_explorer(gens)
    assert isinstance(view, WithStaticFallback)
    assert view.static_html.startswith("<img src=\"data:image/png;base64,")


def test_explorer_image_moves_with_the_shift_and_the_digit():
    torch.manual_seed(0)
    G = models.DCGANGenerator(8, 28, 1, 4, num_classes=10).eval()
    a = practice.explorer_images(G, 0, 1, 0.0, [0.0], label=3)
    assert a.shape == (1, 1, 28, 28)
    assert not torch.equal(a, practice.explorer_images(G, 0, 1, 0.0, [2.0], label=3))
    assert not torch.equal(a, practice.explorer_images(G, 0, 1, 0.0, [0.0], label=4))
    assert torch.equal(a, practice.explorer_images(G, 0, 1, 0.0, [0.0], label=3))


def test_ema_batchnorm_measures_three_generators_of_one_checkpoint(tmp_path, monkeypatch):
    from ganlib import pretrained
    from ganlib.train import GANConfig, GANTrainer

    torch.manual_seed(0)
    trainer = GANTrainer(models.DCGANGenerator(8, 28, 1, 4), models.DCGANDiscriminator(28, 1, 4),
                         torch.rand(64, 1, 28, 28) * 2 - 1,
                         GANConfig(steps=4, batch_size=16, ema_decay=0.5, progress=False,
                                   checkpoint_path=str(tmp_path / "c.safetensors")))
    trainer.fit()
    # each row's "metric" is its first BN layer's running mean: which statistics each generator carries
    monkeypatch.setattr(pretrained, "measure", lambda G: {"fid": float(G.net[1].running_mean.sum())})
    rows = practice.ema_batchnorm(tmp_path / "c.safetensors")["rows"]
    assert rows["raw generator"]["fid"] == pytest.approx(float(trainer.generator.net[1].running_mean.sum()))
    assert rows["EMA, averaged BN statistics"]["fid"] == pytest.approx(float(trainer.ema.module.net[1].running_mean.sum()))
    fresh = trainer.sampling_generator().net[1].running_mean.sum()
    assert rows["EMA, BN statistics re-estimated"]["fid"] == pytest.approx(float(fresh), rel=1e-5)


def test_the_chapters_dcgan_is_the_shipped_recipes_layout():
    from ganlib.pretrained import RECIPES

    layout = practice.shipped_layout("dcgan-mnist")
    images = torch.rand(64, 1, 28, 28) * 2 - 1
    trainer = practice.dcgan_trainer(1, data=(images, torch.zeros(64, dtype=torch.long)), **layout)
    built = RECIPES["dcgan-mnist"].spec.build_models((images,))
    assert trainer.generator.spec == built["generator"].spec
    assert trainer.discriminator.spec == built["discriminator"].spec


def test_the_practice_page_shows_the_code_that_runs_and_no_project_goals():
    import json
    from pathlib import Path

    nb = json.loads((Path(__file__).parents[1] / "book" / "practice_mnist.ipynb").read_text())
    code_cells = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    prose = " ".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown").lower()
    shown = " ".join(c for c in code_cells if "code.source(" in c)
    for name in ("models.DCGANGenerator", "models.DCGANDiscriminator", "GANTrainer.gan_step", "GANTrainer.d_step",
                 "GANTrainer.g_step", "GANTrainer.information", "losses.discriminator_loss", "losses.generator_loss",
                 "losses.information_loss"):
        assert name in shown, name
    # the working model comes before the sources' corrections
    assert prose.index("## a dcgan for mnist") < prose.index("## the sources' code, corrected")
    for word in ("goal", "target", "missed", "the project"):
        assert word not in prose, word
    # claims are checked by cells the site hides
    assert sum("remove-cell" in c["metadata"].get("tags", []) for c in nb["cells"]) >= 3


def test_digits_per_code_reads_the_majority_digit_of_each_code():
    codes = torch.tensor([0, 0, 0, 1, 1, 2])
    probabilities = torch.nn.functional.one_hot(torch.tensor([7, 7, 3, 1, 1, 4]), 10).float()
    rows = practice.digits_per_code(codes, probabilities, 4)
    assert [(r["code"], r["samples"], r["digit"]) for r in rows[:3]] == [(0, 3, 7), (1, 2, 1), (2, 1, 4)]
    assert rows[3]["samples"] == 0 and rows[3]["share"] == 0.0
    assert rows[0]["share"] == pytest.approx(2 / 3) and rows[1]["share"] == 1.0
    with pytest.raises(ValueError, match="codes must have shape"):
        practice.digits_per_code(codes[:2], probabilities, 4)


def test_code_grid_draws_one_code_value_per_row():
    from ganlib.models import DCGANGenerator

    torch.manual_seed(0)
    G = DCGANGenerator(latent_dim=12, image_size=28, base_width=4, hidden=16, code_classes=3).train()
    grid = practice.code_grid(G, columns=4)
    assert grid.shape == (12, 1, 28, 28) and G.training
    # same noise in each column, so rows differ only through the code
    assert not torch.allclose(grid[:4], grid[4:8])
