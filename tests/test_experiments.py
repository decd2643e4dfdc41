"""ganlib.chapters.experiments (mode-collapse experiment, demonstrations), ganlib.chapters.pacgan and the losses self-checks."""
import dataclasses
import json
import math
import re
from pathlib import Path

import pytest
import torch

from ganlib.chapters import experiments, selfcheck
from ganlib.losses import discriminator_loss, generator_loss
from ganlib.models import MLPDiscriminator
from ganlib.chapters.pacgan import PackedDiscriminator

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.usefixtures("single_thread")  # tiny models: one thread is fastest (conftest.py)


def test_packed_discriminator_scores_groups():
    inner = MLPDiscriminator(8, hidden=(16,))
    D = PackedDiscriminator(inner, pack=4)
    x = torch.randn(12, 2)
    out = D(x)
    assert out.shape == (3,)
    # group 1 is samples 4..7 concatenated
    assert torch.allclose(out[1], inner(x[4:8].reshape(1, 8))[0])
    with pytest.raises(ValueError, match="divisible by pack=4"):
        D(torch.randn(10, 2))


def test_published_rows_cite_keys_in_references_bib():
    bib = (ROOT / "references.bib").read_text()
    keys = set(re.findall(r"@\w+\{([^,]+),", bib))
    for row in experiments.PUBLISHED:
        assert row["key"] in keys
        assert 0 < row["ring_modes"] <= 8 and 0 < row["grid_modes"] <= 25
    assert len(experiments.published_table()) == len(experiments.PUBLISHED)


def test_summarize_and_goal_check():
    rows = []
    for seed, (rm, gm) in enumerate([(8, 25), (8, 24)]):
        rows += [{"config": "a", "dataset": "ring", "seed": seed, "modes": rm, "hq": 99.0, "reverse_kl": 0.01},
                 {"config": "a", "dataset": "grid", "seed": seed, "modes": gm, "hq": 96.0, "reverse_kl": 0.02}]
    summary = experiments.summarize(rows)
    grid = next(s for s in summary if s["dataset"] == "grid")
    assert grid["modes"] == 24.5 and grid["modes_std"] == 0.5 and grid["runs"] == 2
    check = experiments.goal_check(summary)["a"]
    assert not check["meets_goal"]  # 24.5 < 24.9 grid modes
    table = experiments.table(summary)
    assert table[0]["grid modes"] == "24.5 ± 0.5"
    assert experiments.markdown_table(table).count("\n") == 2


def test_train_toy_gan_runs_and_is_reproducible():
    setup = dataclasses.replace(experiments.PROFILES["quick"], steps=40)
    _, cov1 = experiments.train_toy_gan("pacgan4", "ring", seed=3, setup=setup)
    _, cov2 = experiments.train_toy_gan("pacgan4", "ring", seed=3, setup=setup)
    assert cov1 == cov2
    assert 0 <= cov1.modes_captured <= 8
    with pytest.raises(ValueError, match="unknown configuration"):
        experiments.train_toy_gan("nope", "ring", 0, setup)


def test_write_and_load_results(tmp_path):
    setup = dataclasses.replace(experiments.PROFILES["quick"], steps=20, seeds=(0,), configs=("nonsaturating",))
    rows = experiments.run_mode_collapse(setup, log=None)
    path = tmp_path / "mc.json"
    experiments.write_results(path, setup, rows, seconds=1.0, command="python -m ganlib.chapters.experiments test")
    result = experiments.load_results(path)
    for key in ("command", "date", "run_time_seconds", "environment", "summary", "runs"):
        assert key in result
    assert {"device", "torch", "python"} <= set(result["environment"])
    assert path.with_suffix(".md").exists()
    with pytest.raises(FileNotFoundError, match="--profile full"):
        experiments.load_results(tmp_path / "missing.json")


def test_committed_full_results_record_their_provenance():
    path = experiments.RESULTS_DIR / "mode_collapse_full.json"
    if not path.exists():
        pytest.skip("no full-profile results committed yet")
    result = json.loads(path.read_text())
    # the committed runs predate the move of this module from ganlib.experiments to ganlib.chapters
    assert result["command"].split(" mode-collapse")[0] in ("python -m ganlib.experiments",
                                                            "python -m ganlib.chapters.experiments")
    assert result["run_time_seconds"] > 0 and result["environment"]["torch"]
    assert len(result["setup"]["seeds"]) == 10
    assert {s["dataset"] for s in result["summary"]} == {"ring", "grid"}


def test_linear_critic_gradient_penalty_optimum():
    # -W1 s + lambda (s - 1)^2 is smallest at s* = 1 + W1 / (2 lambda); there it is -W1 - W1^2 / (4 lambda)
    opt = experiments.linear_critic_gp_optimum(4.0, 10.0)
    assert opt["slope"] == pytest.approx(1.2)
    assert opt["penalised"] == pytest.approx(-4.4)
    assert opt["unpenalised"] == pytest.approx(-4.8)  # -s* W1: the critic loss without the penalty
    assert opt["penalised"] == pytest.approx(opt["unpenalised"] + opt["penalty"])
    for w1, lam in [(4.0, 10.0), (1.5, 2.0), (3.0, 0.5)]:  # s* is the minimum of the penalised loss on a fine grid
        s = torch.linspace(0, 5, 500_001, dtype=torch.float64)
        loss = -w1 * s + lam * (s - 1) ** 2
        o = experiments.linear_critic_gp_optimum(w1, lam)
        assert float(s[loss.argmin()]) == pytest.approx(o["slope"], abs=1e-5)
        assert float(loss.min()) == pytest.approx(o["penalised"], abs=1e-9)


def test_wasserstein_1d_between_samples():
    a = torch.tensor([3.0, 0.0, 1.0])
    assert experiments.wasserstein_1d(a, a + 2.5) == pytest.approx(2.5)  # a shift moves every point by 2.5
    assert experiments.wasserstein_1d(a, torch.tensor([1.0, 0.0, 3.0])) == 0.0  # same values, another order
    assert experiments.wasserstein_1d(torch.tensor([0.0, 1.0]), torch.tensor([0.0, 3.0])) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="same size"):
        experiments.wasserstein_1d(a, a[:2])


def test_wasserstein_critic_needs_a_constraint():
    free = experiments.critic_objective_run("none", steps=150)["loss"]
    assert free[-1] < 2 * free[len(free) // 2] < -10      # still falling, without bound
    gp = experiments.critic_objective_run("gp", steps=150)
    real, fake, _ = experiments.critic_samples()
    assert gp["w1"] == pytest.approx(experiments.wasserstein_1d(real, fake))
    assert 3.8 < gp["w1"] < 4.0  # the two fixed samples are not exactly W1 = 4 apart
    opt = experiments.linear_critic_gp_optimum(gp["w1"], gp["gp_weight"])
    loss = sum(gp["loss"][-50:]) / 50
    total = sum(l + p for l, p in zip(gp["loss"][-50:], gp["penalty"][-50:])) / 50
    # The plotted loss (without the penalty) settles at -s* W1 of the run's own W1, the penalised one at
    # -W1 - W1^2 / (4 lambda). Tolerance: the last 50 losses vary by about 0.07 from step to step
    # (the penalty's random interpolation points move the critic), so their mean has a standard
    # error of about 0.01; 0.03 is three of those, and under half the gap to the nearest wrong
    # value (-4.8, the same formula with W1 rounded to 4; -4.4 for the penalised loss).
    assert loss == pytest.approx(opt["unpenalised"], abs=0.03)
    assert total == pytest.approx(opt["penalised"], abs=0.03)
    assert abs(loss - (-4.8)) > 0.05 and abs(total - (-4.4)) > 0.05


def test_sgd_exposes_the_saturating_minimax_loss():
    # Adam's step is invariant to a uniform gradient scale (Kingma & Ba 2015); SGD's is proportional to it
    sizes = experiments.optimizer_step_sizes(scales=(1.0, 1 / 22))
    assert sizes["adam", 1 / 22] == pytest.approx(sizes["adam", 1.0], rel=1e-3)
    assert sizes["sgd", 1 / 22] == pytest.approx(sizes["sgd", 1.0] / 22, rel=1e-6)
    runs = {loss: experiments.saturation_run(loss, steps=60, d_steps=10, log_every=5, optimizer="sgd", lr=0.01)
            for loss in ("minimax", "nonsaturating")}
    assert runs["minimax"]["optimizer"] == "sgd"
    # D rejects the fakes, and with SGD the minimax generator barely moves while the other one crosses
    assert runs["minimax"]["d_fake"][-1] < 0.05
    assert experiments.steps_to_reach(runs["nonsaturating"], 2.75) is not None
    assert experiments.steps_to_reach(runs["minimax"], 1.0) is None
    with pytest.raises(ValueError, match="optimizer must be one of"):
        experiments.saturation_run("minimax", steps=1, optimizer="rmsprop")


def test_config_settings_override_the_shared_setup():
    setup = dataclasses.replace(experiments.PROFILES["quick"], steps=2)
    trainer, _ = experiments.train_toy_gan("wgan-gp-authors", "ring", seed=0, setup=setup)
    authors = experiments.WGAN_GP_AUTHORS
    assert trainer.config.d_steps == authors["d_steps"] and tuple(trainer.config.betas) == authors["betas"]
    assert trainer.opt_d.defaults["betas"] == authors["betas"]
    trainer, _ = experiments.train_toy_gan("wgan-gp", "ring", seed=0, setup=setup)  # untuned: the shared setup
    assert trainer.config.d_steps == 1 and tuple(trainer.config.betas) == setup.betas
    assert trainer.config.lr_d == setup.lr["ring"]
    rows = experiments.table([{"config": "wgan-gp", "dataset": "ring", "runs": 1, "modes": 0.0, "modes_std": 0.0,
                               "hq": 0.0, "hq_std": 0.0, "reverse_kl": 2.0, "reverse_kl_std": 0.0}],
                             datasets=("ring",), labels=experiments.CONFIG_LABELS)
    assert "untuned" in rows[0]["config"]


def test_markov_chain_loss_sign():
    true, fitted, nll = experiments.markov_chain_fit(sign=-1.0, steps=200)
    assert torch.allclose(fitted, true, atol=0.05)
    _, fitted, source = experiments.markov_chain_fit(sign=+1.0, steps=200)
    assert source[-1] < -10  # "minimising the log-likelihood" runs away ...
    # ... each row (a softmax) gives all its mass to its rarer observed transition
    assert torch.allclose(fitted, torch.tensor([[0.0, 1.0], [1.0, 0.0]]), atol=0.01)


def test_losses_selfchecks(capsys):
    assert selfcheck.check_losses_generator_gradients(-0.1, -0.9)
    assert not selfcheck.check_losses_generator_gradients(0.1, 0.9)
    assert selfcheck.check_losses_hinge(lambda r, f: torch.relu(1 - r).mean() + torch.relu(1 + f).mean())
    assert not selfcheck.check_losses_hinge(lambda r, f: torch.relu(-r).mean() + torch.relu(f).mean())
    assert selfcheck.check_losses_reverse_kl(math.log(2))
    assert "Correct" in capsys.readouterr().out


# ----------------------------------------------------------------------------- the sources' loss formulas
# Each test backs one entry of the errata appendix (book/appendix_errata.md, from the losses chapter).


def test_source_000_cross_entropy_needs_one_label_per_sample():
    g = torch.Generator().manual_seed(0)
    real, fake = torch.randn(32, generator=g), torch.randn(32, generator=g) - 1
    u, y = torch.cat([real, fake]), torch.cat([torch.ones(32), torch.zeros(32)])
    # per-example BCE -[y log D(u) + (1 - y) log(1 - D(u))], one mean over the data and one over the fakes
    bce = -(y * torch.log(torch.sigmoid(u)) + (1 - y) * torch.log(1 - torch.sigmoid(u)))
    expected = bce[:32].mean() + bce[32:].mean()
    assert discriminator_loss("minimax", real, fake).item() == pytest.approx(expected.item(), rel=1e-5)
    # the source's sum runs over data points, whose label is 1: its fake term vanishes
    d_x, d_gz = torch.sigmoid(real), torch.sigmoid(fake)
    source = -(1.0 * torch.log(d_x) + (1 - 1.0) * torch.log(1 - d_gz)).mean()
    assert source.item() == pytest.approx(-torch.log(d_x).mean().item())


def test_source_000_same_logits_for_both_labels_teach_d_one_half():
    # softplus(-l) + softplus(l) (real labels and fake labels on the same logits) has derivative
    # 2 sigmoid(l) - 1: its minimum is l = 0, D = 1/2, whatever the sample
    logits = torch.linspace(-6, 6, 1201, dtype=torch.float64, requires_grad=True)
    loss = torch.nn.functional.softplus(-logits) + torch.nn.functional.softplus(logits)
    (grad,) = torch.autograd.grad(loss.sum(), logits)
    assert torch.allclose(grad, 2 * torch.sigmoid(logits) - 1)
    assert float(logits.detach()[loss.argmin()]) == pytest.approx(0.0, abs=1e-9)
    assert float(loss.detach().min()) == pytest.approx(2 * math.log(2))


def test_source_001_nonsaturating_sign():
    # minimising E[log D(G(z))] (the source) pushes the fakes' logits down, -E[log D(G(z))] pushes them up
    logit = torch.tensor([-2.0], requires_grad=True)
    (g_source,) = torch.autograd.grad(torch.log(torch.sigmoid(logit)).mean(), logit)
    (g_right,) = torch.autograd.grad(generator_loss("nonsaturating", logit), logit)
    assert g_source.item() > 0 and g_right.item() < 0  # a descent step moves against the gradient
    assert g_right.item() == pytest.approx(-(1 - torch.sigmoid(logit)).item())


def test_source_003_log1p_and_fake_term_sign():
    d = torch.tensor([0.01, 0.3, 0.5, 0.9], dtype=torch.float64)
    assert torch.allclose(torch.log1p(1 - d), torch.log(2 - d))  # log1p(1 - D) is log(2 - D) ...
    assert not torch.allclose(torch.log1p(1 - d), torch.log(1 - d))  # ... not log(1 - D)
    # the source's discriminator minimises +log(1 - D(G(z))): its gradient step raises D(G(z))
    logit = torch.tensor([0.0], requires_grad=True)
    (grad,) = torch.autograd.grad(torch.log(1 - torch.sigmoid(logit)).sum(), logit)
    assert grad.item() < 0  # descent moves the fake's logit up: D learns to call fakes real
    (grad,) = torch.autograd.grad(discriminator_loss("minimax", torch.zeros(1), logit), logit)
    assert grad.item() > 0  # ganlib's -log(1 - D(G(z))) moves it down


def test_parallel_workers_give_the_same_rows_as_one_process():
    setup = dataclasses.replace(experiments.PROFILES["quick"], steps=40, seeds=(0, 1), configs=("nonsaturating",),
                                datasets=("ring",))
    without_time = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    one = experiments.run_mode_collapse(setup, log=None)
    two = experiments.run_mode_collapse(setup, log=None, workers=2)
    assert without_time(one) == without_time(two) and [r["seed"] for r in two] == [0, 1]
    with pytest.raises(ValueError, match="keep_samples needs workers=1"):
        experiments.run_mode_collapse(setup, log=None, keep_samples=True, workers=2)
