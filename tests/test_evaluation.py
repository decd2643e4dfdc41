"""The evaluation chapter's helpers: controlled failures, the validation table's key orderings,
the verdict rule, the test set's order, and a GAN's losses against its FID."""
import math

import pytest
import torch

from ganlib.chapters import evaluation as ev
from ganlib.chapters import selfcheck


@pytest.fixture(scope="module")
def validation_rows(mnist):
    """The real-digit rows of the validation table at a small size (500 images per set)."""
    (test, _), (train, train_labels) = mnist["test"], mnist["train"]
    torch.set_num_threads(min(2, torch.get_num_threads()))
    judge, fresh, fresh_labels, kept = ev.validation_judge(test, train, train_labels, n_reference=1000,
                                                           n_fresh=3000, n_kept=5000, seed=0)
    sets = ev.validation_sets(fresh, fresh_labels, kept, 500, None, judge.classifier, seed=0)
    return {r["name"]: r for r in ev.validation_table(judge, sets)}


def test_fid_rises_monotonically_with_noise(validation_rows):
    fids = [validation_rows[name]["fid"] for name in
            ("real digits (held out)", "noise, std 0.1", "noise, std 0.2", "noise, std 0.4")]
    assert all(a < b for a, b in zip(fids, fids[1:])), fids


def test_recall_falls_as_classes_are_dropped_while_precision_stays(validation_rows):
    base = validation_rows["real digits (held out)"]
    dropped = [validation_rows[n] for n in ("1 class dropped (digit 9)", "3 classes dropped (digits 7-9)",
                                            "5 classes dropped (digits 5-9)")]
    recalls = [base["recall"]] + [r["recall"] for r in dropped]
    assert all(a > b for a, b in zip(recalls, recalls[1:])), recalls
    assert all(abs(r["precision"] - base["precision"]) <= 0.05 for r in dropped), [r["precision"] for r in dropped]
    assert all(r["verdicts"]["precision"] and r["verdicts"]["recall"] for r in dropped)


def test_memorisation_flags_training_copies_and_nothing_else(validation_rows):
    copies = validation_rows["memorised: training images"]
    assert copies["flags_copies"] and copies["copy_fraction"] == 1.0
    assert not any(r["flags_copies"] for name, r in validation_rows.items() if name != "memorised: training images")
    # ... while FID barely notices: the copies score like fresh real digits
    base = validation_rows["real digits (held out)"]
    assert copies["fid"] < 2 * base["fid"] and copies["verdicts"]["fid"] is False


def test_collapse_fools_the_inception_score(validation_rows):
    collapse, base = validation_rows["collapse: 10 images repeated"], validation_rows["real digits (held out)"]
    assert collapse["inception_score"] > base["inception_score"] - 0.3  # 10 confident, balanced classes
    assert collapse["recall"] < 0.05 and collapse["fid"] > 10 * base["fid"]


def test_verdict_rule():
    assert ev.verdict("fid", "worse", 20.0, 10.0) and not ev.verdict("fid", "worse", 12.0, 10.0)
    assert ev.verdict("inception_score", "worse", 9.0, 9.8) and not ev.verdict("inception_score", "worse", 9.79, 9.8)
    assert ev.verdict("precision", "same", 0.84, 0.88) and not ev.verdict("precision", "same", 0.80, 0.88)
    assert ev.verdict("precision", "not worse", 0.95, 0.88) and not ev.verdict("precision", "not worse", 0.80, 0.88)
    assert ev.verdict("copy_fraction", "worse", True, None) and not ev.verdict("copy_fraction", "same", True, None)
    assert ev.verdict("recall", None, 0.1, 0.9) is None
    with pytest.raises(ValueError, match="expectation"):
        ev.verdict("recall", "better", 0.1, 0.9)


def test_controlled_failures():
    g = torch.Generator().manual_seed(0)
    images = torch.rand(200, 1, 28, 28) * 2 - 1
    labels = torch.arange(200) % 10
    kept = ev.without_classes(images, labels, [7, 8, 9], 100, g)
    assert kept.shape == (100, 1, 28, 28)
    assert all(any(torch.equal(k, images[i]) for i in range(200) if labels[i] < 7) for k in kept[:5])
    with pytest.raises(ValueError, match="only 20 images remain"):
        ev.without_classes(images, labels, range(1, 10), 50, g)
    repeated = ev.collapsed(images, labels, 95, g)
    assert len(repeated) == 95 and len(torch.unique(repeated.flatten(1), dim=0)) == 10
    blurred = ev.box_blur(torch.ones(1, 1, 5, 5))
    assert torch.allclose(blurred, torch.ones(1, 1, 5, 5))  # a constant image stays (borders average fewer pixels)
    noisy = ev.add_noise(images, 5.0, g)
    assert noisy.min() >= -1 and noisy.max() <= 1


def test_truncation_dial():
    from ganlib.models import MLPGenerator

    torch.manual_seed(0)
    G = MLPGenerator(8, 4, hidden=(16,))
    at_zero = ev.truncated_samples(G, 5, 0.0)
    assert torch.allclose(at_zero, at_zero[:1].expand_as(at_zero))  # psi = 0: one image, G(0)
    spread = [float(ev.truncated_samples(G, 500, psi).std(0).mean()) for psi in (0.25, 0.5, 1.0)]
    assert spread[0] < spread[1] < spread[2]
    with pytest.raises(ValueError, match="psi"):
        ev.truncated_samples(G, 5, 1.5)


def test_test_set_order_separates_two_populations():
    g = torch.Generator().manual_seed(1)
    head = torch.randn(600, 4, generator=g)
    tail = torch.randn(600, 4, generator=g) + 1.0  # a second "writer population"
    features = torch.cat([head, tail])
    train = torch.cat([torch.randn(300, 4, generator=g), torch.randn(300, 4, generator=g) + 1.0])
    out = ev.test_set_order(features, train, half=500)
    assert out["head vs tail"] > 3 > out["random half vs random half"]
    assert out["random half vs random half"] < out["head vs random training images"] < out["head vs tail"]
    with pytest.raises(ValueError, match="need 2 x"):
        ev.test_set_order(features, train, half=700)


def test_loss_and_fid_windows_and_rank_correlation():
    record = {"history": {"step": [10, 20, 30, 40], "loss_g": [1.0, 3.0, 5.0, 7.0], "loss_d": [0.5, 0.5, 0.3, 0.1]},
              "fid_over_training": [{"step": 20, "raw": {"fid": 90.0}}, {"step": 40, "raw": {"fid": 50.0},
                                                                          "ema": {"fid": 40.0}}]}
    rows = ev.loss_and_fid(record)
    assert [r["loss_g"] for r in rows] == [2.0, 6.0] and [r["fid"] for r in rows] == [90.0, 40.0]
    assert ev.rank_correlation([1, 2, 3], [10, 20, 30]) == pytest.approx(1.0)
    assert ev.rank_correlation([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)


def test_evaluation_self_checks():
    assert selfcheck.check_eval_fid_shifted_mean(128 * 0.25)
    assert not selfcheck.check_eval_fid_shifted_mean(0.5 * math.sqrt(128))
    assert selfcheck.check_eval_inception_score_collapse(4)
    assert not selfcheck.check_eval_inception_score_collapse(math.log(4))


def test_missing_results_files_name_their_commands(tmp_path):
    for load, command in ((ev.load_calibration, "calibrate"), (ev.load_validation, "validate"), (ev.load_ranking, "rank")):
        with pytest.raises(FileNotFoundError, match=f"python -m ganlib.chapters.evaluation {command}"):
            load(tmp_path / "missing.json")


def test_the_chapters_results_files_hold_what_they_print():
    validation = ev.load_validation()
    rows = {r["name"]: r for r in validation["rows"]}
    assert rows["memorised: training images"]["flags_copies"]
    assert validation["order"]["head vs tail"] > 5 * validation["order"]["random half vs random half"]
    ranking = ev.load_ranking()
    kinds = {r["kind"] for r in ranking["rows"]}
    assert kinds == {"data", "classic", "vae", "gan"}
    assert all(r["bits_per_dim"] is None for r in ranking["rows"] if r["kind"] == "gan")
    assert "with noise, std 0.4" in ev.load_calibration()["rows"]


def test_fid_infinity_is_fitted_from_fit_from_n_on():
    # FID_N = 3 + 5000/N from FIT_FROM_N on; the small sizes bend far above that line, as real ones do
    sizes = [500, 1000, ev.FIT_FROM_N, 5000, 10000]
    fids = [3 + 5000 / n + (40 if n < ev.FIT_FROM_N else 0) for n in sizes]
    assert ev.fit_sizes(sizes) == [ev.FIT_FROM_N, 5000, 10000]
    intercept, slope = ev.extrapolate(sizes, fids)
    assert intercept == pytest.approx(3) and slope == pytest.approx(5000)
    with pytest.raises(ValueError, match="two or more"):
        ev.extrapolate([500, 1000, ev.FIT_FROM_N], [1.0, 2.0, 3.0])  # one size left: no line
