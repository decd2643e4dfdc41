"""ganlib.chapters.dcgan_recipe and ganlib.chapters.code: the layout study's pieces, and showing source."""
import pytest
import torch

from ganlib.chapters import code, dcgan_recipe
from ganlib.models import DCGANGenerator
from ganlib.spec import RunSpec, SpecError


def test_every_arm_builds_the_layout_its_name_says():
    sizes = {}
    for arm in dcgan_recipe.ARMS:
        built = dcgan_recipe.arm_spec(arm).build_models((torch.zeros(2, 1, 28, 28),))
        G, D = built["generator"], built["discriminator"]
        sizes[arm] = (G.spec["kwargs"]["base_width"], D.spec["kwargs"]["base_width"],
                      G.spec["kwargs"].get("hidden", 0), D.spec["kwargs"].get("hidden", 0))
    assert sizes["width 32 (before)"] == (32, 32, 0, 0)
    assert sizes["G x4"] == (128, 32, 0, 0)
    assert sizes["D x2"] == (32, 64, 0, 0)
    assert sizes["G x4, D x2"] == (128, 64, 0, 0)
    assert sizes["FC layout (Radford/InfoGAN)"] == (64, 64, 1024, 1024)


def test_unrecognisable_share_counts_low_confidence_rows():
    probs = torch.tensor([[0.95, 0.05], [0.5, 0.5], [0.89, 0.11], [0.0, 1.0]])
    assert dcgan_recipe.unrecognisable_share(probs) == 0.5
    assert dcgan_recipe.unrecognisable_share(probs, below=0.96) == 0.75
    with pytest.raises(ValueError, match="shape"):
        dcgan_recipe.unrecognisable_share(torch.zeros(0, 10))


def test_summary_is_the_mean_and_sample_std_over_seeds():
    def row(seed, fid):
        metrics = {"fid": fid, "inception_score": 9.0, "precision": 0.8, "recall": 0.7, "unrecognisable": 0.1,
                   "digit_shares": [0.1] * 10}
        return {"arm": "a", "seed": seed, "g_parameters": 1, "d_parameters": 2, "cpu_s_per_1000_steps": 10.0,
                "d_real_end": 0.6, "d_fake_end": 0.4, "ema": metrics, "raw": {**metrics, "fid": fid + 1}}
    s = dcgan_recipe.summarise([row(0, 10.0), row(1, 14.0)])["a"]
    assert s["fid"]["mean"] == 12.0 and s["fid"]["std"] == pytest.approx(2 ** 0.5 * 2)
    assert s["fid_raw"]["mean"] == 13.0 and s["seeds"] == [0, 1]
    assert s["precision_raw"]["mean"] == 0.8 and s["lowest_digit_share_raw"]["mean"] == 0.1


def test_a_layout_option_on_another_model_is_refused_with_its_flag():
    with pytest.raises(SpecError, match="g_fc \\(--g-fc\\) sets the DCGAN's layout; model 'mlp'"):
        RunSpec("mnist", "mlp", g_fc=64)


def test_source_shows_the_installed_code_and_can_drop_docstrings():
    shown = code.source(DCGANGenerator)
    assert shown._repr_markdown_().startswith("```python\nclass DCGANGenerator")
    assert "def forward" in str(shown) and "Radford" in str(shown)
    bare = str(code.source(DCGANGenerator, docstrings=False))
    assert "def forward" in bare and "Radford et al. 2016" not in bare
    compile(bare, "<source>", "exec")  # still valid Python
    method = str(code.source(DCGANGenerator.forward))
    assert method.startswith("def forward")  # dedented
    with pytest.raises(ValueError, match="at least one"):
        code.source()
    with pytest.raises(TypeError, match="classes, functions and methods"):
        code.source(3)


def test_combine_keeps_other_arms_and_replaces_rerun_ones():
    def result(command, rows, steps=10):
        return {"command": command, "steps": steps, "common_options": ["x"], "wall_time_s": 5.0, "rows": rows}

    def row(arm, seed, fid):
        metrics = {"fid": fid, "inception_score": 9.0, "precision": 0.8, "recall": 0.7, "unrecognisable": 0.1,
                   "digit_shares": [0.1] * 10}
        return {"arm": arm, "seed": seed, "g_parameters": 1, "d_parameters": 2, "cpu_s_per_1000_steps": 1.0,
                "d_real_end": 0.6, "d_fake_end": 0.4, "ema": metrics, "raw": metrics}
    arms = list(dcgan_recipe.ARMS)
    first = result("a", [row(arms[1], 0, 5.0), row(arms[0], 0, 1.0)])
    second = result("b", [row(arms[1], 0, 7.0), row(arms[1], 1, 9.0)])
    both = dcgan_recipe.combine(first, second)
    assert [(r["arm"], r["seed"], r["ema"]["fid"]) for r in both["rows"]] == [
        (arms[0], 0, 1.0), (arms[1], 0, 7.0), (arms[1], 1, 9.0)]
    assert both["commands"] == ["a", "b"] and both["wall_time_s"] == 10.0
    assert both["summary"][arms[1]]["fid"]["mean"] == 8.0
    with pytest.raises(ValueError, match="separate files"):
        dcgan_recipe.combine(first, result("c", [], steps=20))


def test_code_arms_carry_their_weight_and_the_rest_do_not():
    for arm in dcgan_recipe.ARMS:
        built = dcgan_recipe.arm_spec(arm).build_models((torch.zeros(2, 1, 28, 28),))
        has_code = built["generator"].code_classes == built["discriminator"].code_classes == 10
        assert has_code == (arm in dcgan_recipe.ARM_STEERING), arm
    weights = {arm: s["info_weight"] for arm, s in dcgan_recipe.ARM_STEERING.items()}
    assert all(f"lambda {w}" in arm for arm, w in weights.items())


def test_info_weight_of_a_recorded_command():
    spec = RunSpec("mnist", "dcgan", base_width=32, g_fc=512, d_fc=512, code_classes=10)
    assert dcgan_recipe.info_weight_of(spec.command({"steps": 10, "info_weight": 0.3})) == 0.3
    assert dcgan_recipe.info_weight_of(spec.command({"steps": 10})) == 1.0  # the config's default
    assert dcgan_recipe.info_weight_of(RunSpec("mnist", "dcgan").command({"steps": 10})) is None


def test_full_runs_refuses_a_folder_without_a_run(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        dcgan_recipe.main(["full-runs", str(tmp_path), "--out", str(tmp_path / "out.json")])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "no dcgan-mnist.json in" in err and "pretrained make dcgan-mnist --folder DIR" in err
    assert not (tmp_path / "out.json").exists()
