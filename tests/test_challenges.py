"""The challenges and FAQ chapters: their helpers against closed forms, and the FAQ's coverage of the sources."""
import json
import math
import re
from pathlib import Path

import pytest
import torch

from ganlib.chapters import challenges as ch, faq, selfcheck
from ganlib.chapters.experiments import Setup, train_toy_gan

ROOT = Path(__file__).resolve().parents[1]


def _markdown(name: str) -> str:
    nb = json.loads((ROOT / "book" / f"{name}.ipynb").read_text())
    return "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")


# -------------------------------------------------------------------- the FAQ names every source question

SOURCE_QUESTIONS = ["000 Q1", "000 Q2", "000 Q3", "001 §9.1", "001 §9.2", "001 §9.3", "002 Q1", "002 Q2",
                    "002 Q3", "002 Q4", "002 Q5", "003 Q1", "003 Q2", "003 Q3", "003 Q4", "004 Q1", "004 Q2", "004 Q3"]


def faq_answers() -> dict:
    """Source question (e.g. "002 Q5") -> the text of the FAQ section whose heading names it."""
    text = _markdown("faq")
    parts = re.split(r"^(#+ .*)$", text, flags=re.M)  # [before, heading, body, heading, body, ...]
    answers = {}
    for heading, body in zip(parts[1::2], parts[2::2]):
        for question in re.findall(r"\((\d{3} (?:Q\d|§\d\.\d))\)", heading):
            answers[question] = body
    return answers


def test_faq_names_every_source_question_with_its_number():
    missing = [q for q in SOURCE_QUESTIONS if q not in faq_answers()]
    assert not missing, f"the FAQ has no heading naming {missing}"


def test_every_faq_answer_links_to_a_cell_or_chapter():
    answers = faq_answers()
    unlinked = [q for q in SOURCE_QUESTIONS if not re.search(r"\{(ref|doc)\}`", answers.get(q, ""))]
    assert not unlinked, f"these answers cite no cell or chapter: {unlinked}"


def test_the_faq_numbers_match_the_sources():
    # each source's FAQ really has the questions the chapter numbers (the files are the shared sources)
    source = ROOT.parent / "shared" / "source"
    if not source.is_dir():
        pytest.skip("the source articles are not beside this checkout")
    counts = {}
    for path in sorted(source.glob("00[0-4]_*.txt")):
        faq_part = re.split(r"常见问题与解答", path.read_text())[-1]
        counts[path.name[:3]] = len(re.findall(r"^\s*(?:\d\.|### 9\.\d)", faq_part, flags=re.M))
    numbered = {}
    for q in SOURCE_QUESTIONS:
        numbered[q[:3]] = numbered.get(q[:3], 0) + 1
    assert counts == numbered


def test_ten_reader_callouts_each_with_a_figure():
    nb = json.loads((ROOT / "book" / "faq.ipynb").read_text())
    callouts = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "markdown"
                and re.search(r"^```\{admonition\} Q\d+\.", "".join(c["source"]), flags=re.M)]
    assert len(callouts) == 10
    for i in callouts:  # the next cell draws the callout's curve or grid
        nxt = nb["cells"][i + 1]
        assert nxt["cell_type"] == "code" and ("plt." in "".join(nxt["source"]) or "show_" in "".join(nxt["source"]))


def test_troubleshooting_table_covers_every_challenge():
    text = _markdown("faq")
    rows = [line for line in text[text.index("| symptom"):].splitlines() if line.startswith("|")]
    for challenge, label in [("cycling", "chal-cycling"), ("mode collapse", "chal-mode-collapse"),
                             ("d wins", "chal-vanishing"), ("small data", "chal-small-data"),
                             ("hyperparameter", "chal-hyperparameters"), ("checkerboard", "chal-checkerboard"),
                             ("evaluation", "chal-evaluation")]:
        row = [r for r in rows if challenge in r.lower()]
        assert row, f"no row of the troubleshooting table names {challenge!r}"
        assert f"{{ref}}`{label}`" in row[0], f"the {challenge!r} row does not point to its cell ({label})"


# -------------------------------------------------------------------- the Dirac-GAN / step sizes: closed forms


def test_overlap_counts_are_uneven_when_kernel_is_not_a_multiple_of_stride():
    odd = ch.overlap_counts(6, kernel=3, stride=2, padding=1)
    even = ch.overlap_counts(6, kernel=4, stride=2, padding=1)
    assert set(odd[1:-1, 1:-1].unique().tolist()) == {1.0, 2.0, 4.0}  # 1D counts 1, 2 alternate: products
    assert even[1:-1, 1:-1].unique().tolist() == [4.0]  # even overlap inside the border


def test_checkerboard_score_closed_forms():
    checker = torch.zeros(3, 1, 8, 8)
    checker[..., ::2, ::2] = checker[..., 1::2, 1::2] = 1
    assert ch.checkerboard_score(checker) == pytest.approx(1.0)
    wave = torch.cos(2 * math.pi * torch.arange(8.0) / 8).repeat(8, 1)[None, None]  # one period across
    assert ch.checkerboard_score(wave) == pytest.approx(0.0, abs=1e-10)
    # a +-1 checkerboard puts 64^2 at (4, 4); the unit cosine 32^2 at each of (0, 1) and (0, 7): share 2/3
    both = 2 * checker[:1] - 1 + wave
    assert ch.checkerboard_score(both) == pytest.approx(2 / 3, rel=1e-5)
    with pytest.raises(ValueError, match="even"):
        ch.checkerboard_score(torch.zeros(1, 1, 7, 7))


def test_resize_convolution_makes_fewer_checkerboards_than_transposed_convolution_at_init():
    from ganlib.models import DCGANGenerator

    torch.manual_seed(0)
    z = torch.randn(64, 64)
    with torch.no_grad():
        transposed = ch.checkerboard_score(DCGANGenerator(64, 28, 1, 32).eval()(z))
        resize = ch.checkerboard_score(ch.ResizeConvGenerator(64, 32).eval()(z))
    assert resize < transposed / 2


def test_random_translate_shifts_within_bounds_and_is_identity_in_eval():
    x = torch.zeros(16, 1, 8, 8) - 1
    x[:, :, 4, 4] = 1
    aug = ch.RandomTranslate(2)
    y = aug(x)
    positions = (y[:, 0] == 1).nonzero()[:, 1:]
    assert ((positions - 4).abs() <= 2).all() and len(positions) == 16  # every dot kept, moved <= 2 px
    assert torch.equal(aug.eval()(x), x)
    x.requires_grad_(True)
    ch.RandomTranslate(2)(x).sum().backward()
    assert x.grad.sum() == 16 * 64 - (x.grad == 0).sum()  # gradient flows to the pixels that stayed in


# -------------------------------------------------------------------- the runs behave as the chapter says


def test_example_dcgan_run_records_each_iteration_and_rejects_unknown_changes():
    images = torch.rand(64, 1, 64, 64) * 2 - 1
    run = ch.example_dcgan_run({"logits": True}, iterations=2, images=images, keep=2)
    assert [len(run[k]) for k in ("loss_d", "loss_g", "d_x", "d_g_z", "g_grad_norm")] == [2] * 5
    assert len(run["samples"]) == 2 and len(run["samples"][0]) == 32
    same = ch.example_dcgan_run({}, iterations=2, images=images, keep=2)
    # on the first step the example's BCELoss and the logits version give the same losses
    assert same["loss_d"][0] == pytest.approx(run["loss_d"][0], rel=1e-4)
    with pytest.raises(ValueError, match="unknown changes"):
        ch.example_dcgan_run({"lr_g": 1.0}, iterations=1, images=images)


def test_failure_summary_finds_where_d_wins():
    run = {"d_g_z": [0.5, 0.1, 1e-4, 1e-5, 0.2, 1e-6], "loss_g": [1, 2, 9, 11, 1, 14], "g_grad_norm": [1, 1, 0, 0, 1, 0]}
    s = ch.failure_summary(run, after=2)
    assert s["first_d_wins"] == 2 and s["max_loss_g"] == 14 and s["max_loss_g_at"] == 5
    assert s["d_wins_late"] == pytest.approx(3 / 4)


def test_lr_ratio_reaches_the_discriminator():
    setup = Setup(steps=1, seeds=(0,))
    trainer, _ = train_toy_gan({"loss": "nonsaturating", "lr_d_ratio": 4.0, "betas": (0.0, 0.999)}, "ring", 0, setup)
    assert trainer.config.lr_d == pytest.approx(4 * trainer.config.lr_g)
    assert trainer.opt_d.param_groups[0]["betas"][0] == 0.0


def test_collapse_against_a_frozen_discriminator_narrows_the_digits(mnist, single_thread):
    frozen = ch.collapsed_mnist_run(g_steps=60, d_warmup=30)
    hist = frozen["histograms"]
    assert hist["before"].sum() == hist["after"].sum() == 1000
    assert hist["after"].max() > 1.5 * hist["before"].max()  # the most common digit gains samples


def test_faq_detach_and_accumulation_behave_as_the_callouts_say():
    d = faq.detach_effect()
    assert d["G grad norm, detach"] == 0.0 and d["G grad norm, no detach"] > 0
    acc = faq.accumulation_check()
    assert acc["max_difference"] < 1e-5 * max(acc["full_grad_max"], 1.0)
    norms = acc["norm_without_zero_grad"]
    assert norms == pytest.approx([norms[0] * (k + 1) for k in range(len(norms))], rel=1e-4)


def test_faq_error_messages_name_the_fix(tmp_path):
    from ganlib.data import load_mnist

    msg = faq.error_message(load_mnist, root=tmp_path, download=False)
    assert "GANLIB_DATA" in msg and "MNIST/raw" in msg
    msg = faq.error_message(faq.binary_cross_entropy_long, torch.zeros(4), torch.ones(4, dtype=torch.long))
    assert "Long" in msg or "long" in msg
    assert faq.error_message(lambda: 1) == "no error"


def test_kl_curves_are_non_negative_and_zero_only_at_the_prior():
    k = faq.kl_curves(torch.tensor([-1.0, 0.0, 1.0]), sigmas=(0.5, 1.0))
    assert (k[0.5] > 0).all() and k[1.0][1] == pytest.approx(0.0, abs=1e-6)
    assert k[1.0][0] == pytest.approx(0.5)  # mu^2 / 2 with sigma = 1


def test_bce_curves_at_zero_logit_are_log_two():
    b = faq.bce_curves(torch.tensor([0.0]))
    for key in ("real, target 1", "fake, target 0", "G, non-saturating"):
        assert b[key][0].item() == pytest.approx(math.log(2), rel=1e-4)


def test_update_radius_selfcheck_matches_the_dirac_update_jacobian():
    import numpy as np

    from ganlib.chapters import dirac

    radius = np.abs(np.linalg.eigvals(dirac.update_jacobian(0.1, "minimax"))).max()
    assert selfcheck.check_challenges_update_radius(radius, lr=0.1, slope=float(dirac.f_prime(0.0)))
    assert not selfcheck.check_challenges_update_radius(1.0, lr=0.1, slope=0.5)
    assert selfcheck.check_challenges_small_data_gap(0.25, 1.0, 0.75)
    assert not selfcheck.check_challenges_small_data_gap(0.75, 1.0, 0.75)


def test_toy_grid_cells_are_the_seed_means_of_single_runs():
    grid = ch.toy_grid(lr_ratios=(1.0, 4.0), beta1s=(0.5,), seeds=(0, 1), steps=20)
    assert grid["modes"].shape == grid["hq"].shape == (2, 1) and grid["n_modes"] == 8
    setup = Setup(steps=20, lr=1e-3)
    runs = [train_toy_gan({"loss": "nonsaturating", "lr_d_ratio": 4.0, "betas": (0.5, 0.999)}, "ring", s, setup)[1]
            for s in (0, 1)]
    assert grid["hq"][1, 0].item() == pytest.approx(100 * sum(c.high_quality_fraction for c in runs) / 2, abs=1e-4)


def test_map_jobs_keeps_order_and_rejects_zero_workers():
    from ganlib.chapters.parallel import map_jobs

    assert list(map_jobs(abs, [-3, 2, -1])) == [3, 2, 1]
    with pytest.raises(ValueError, match="workers must be at least 1"):
        list(map_jobs(abs, [1], workers=0))


@pytest.mark.parametrize("load, keys", [(ch.load_dcgan_failure, ("runs", "iterations")),
                                        (ch.load_small_data, ("runs", "n_train")),
                                        (ch.load_hyperparameters, ("grid", "widths"))])
def test_committed_challenges_results_record_their_provenance(load, keys):
    result = load()
    assert result["command"].startswith("python -m ganlib.chapters.challenges ")
    assert all(result[k] for k in ("date", "environment", "wall_time_s")) and all(k in result for k in keys)


def test_a_missing_results_file_names_the_command(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m ganlib.chapters.challenges hyperparameters"):
        ch.load_hyperparameters(tmp_path / "none.json")


def test_bce_curves_are_the_terms_of_the_discriminator_loss():
    from ganlib.losses import discriminator_loss

    b = faq.bce_curves(torch.tensor([-2.0, 0.5, 3.0]))
    for i, logit in enumerate(b["logit"]):
        both = discriminator_loss("nonsaturating", logit[None], logit[None])
        assert (b["real, target 1"][i] + b["fake, target 0"][i]).item() == pytest.approx(both.item(), rel=1e-6)
