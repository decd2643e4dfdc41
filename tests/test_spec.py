"""ganlib.spec.RunSpec: what defines a run, checked once, recorded by checkpoints, compared on resume."""
import dataclasses
import re

import pytest
import torch

from ganlib.__main__ import main, parse_args, run_spec, steering
from ganlib.spec import RunSpec, SpecError


def test_the_preset_fills_what_is_left_out_and_depends_on_the_profile(monkeypatch):
    monkeypatch.setenv("GANLIB_PROFILE", "quick")
    quick = RunSpec("mnist", "dcgan", g_fc=512)
    assert (quick.batch_size, quick.latent_dim, quick.base_width) == (64, 100, 32)
    assert (quick.g_width, quick.d_width, quick.g_fc, quick.d_fc) == (32, 32, 512, 0)
    monkeypatch.setenv("GANLIB_PROFILE", "full")
    full = RunSpec("mnist", "dcgan", g_fc=512)
    assert (full.batch_size, full.base_width, full.g_width) == (128, 64, 64)
    # the profile is read once, when the spec is made
    monkeypatch.setenv("GANLIB_PROFILE", "quick")
    assert full.config().steps == 20000 and quick.config().steps == 600


@pytest.mark.parametrize("fields, phrase", [
    (dict(dataset="cifar"), "dataset (--dataset) must be one of mnist"),
    (dict(dataset="mnist", model="gpt"), "model (--model) must be one of"),
    (dict(dataset="mnist", batch_size=0), "batch_size (--batch-size) must be an integer >= 1; got 0"),
    (dict(dataset="mnist", seed=-1), "seed (--seed) must be an integer >= 0"),
    (dict(dataset="mnist", model="dcgan", g_fc=2.5), "g_fc (--g-fc) must be an integer >= 0"),
    (dict(dataset="mnist", model="vae", base_width=8), "base_width (--base-width) sets the DCGAN's layout"),
    (dict(dataset="mnist", model="dcgan", binarize=True), "binarize (--binarize) is a VAE option"),
    (dict(dataset="ring", model="dcgan"), "'ring' is a toy distribution: it needs model 'mlp'"),
    (dict(dataset="ring", model="vae"), "'ring' is a toy distribution"),
    (dict(dataset="mnist", model="vae", conditional=True), "is a GAN option; the VAE models take neither"),
])
def test_a_spec_that_cannot_be_built_is_refused_naming_field_and_flag(fields, phrase):
    with pytest.raises(SpecError, match=re.escape(phrase)):
        RunSpec(**fields)


def test_the_record_round_trips_and_older_records_take_the_defaults():
    spec = RunSpec("mnist", "dcgan", base_width=8, g_fc=16, batch_size=16, seed=3)
    assert RunSpec.from_record(spec.record()) == spec
    older = {k: v for k, v in spec.record().items() if k not in ("g_width", "d_width", "g_fc", "d_fc", "binarize")}
    assert RunSpec.from_record(older) == dataclasses.replace(spec, g_fc=0)
    assert spec.differences({"g_fc": 16, "seed": None, "d_fc": 4}) == ["--d-fc 4 (the checkpoint has 0)"]


def test_the_command_it_renders_makes_the_same_run():
    spec = RunSpec("mnist", "dcgan", conditional=True, g_fc=64, batch_size=32, seed=2)
    command = spec.command({"steps": 100, "ema_decay": 0.99, "lr_decay": True})
    assert command.startswith("python -m ganlib train --dataset mnist --model dcgan --conditional --g-fc 64")
    assert command.endswith("--steps 100 --ema-decay 0.99 --lr-decay --seed 2")
    args = parse_args(command.split()[3:] + ["--out", "unused"])
    assert run_spec(args) == spec
    assert spec.steering(steering(args)) == {"steps": 100, "ema_decay": 0.99} and args.lr_decay


def test_it_builds_seeded_models_and_a_trainer_that_records_it():
    images = torch.rand(32, 1, 28, 28) * 2 - 1
    spec = RunSpec("mnist", "dcgan", base_width=4, batch_size=8)
    a = spec.build_trainer({"steps": 1, "progress": False}, data=(images, torch.zeros(32, dtype=torch.long)))
    b = spec.build_trainer({"steps": 1, "progress": False}, data=(images, torch.zeros(32, dtype=torch.long)))
    assert all(torch.equal(p, q) for p, q in zip(a.generator.parameters(), b.generator.parameters()))
    assert a.run_spec_fields == spec.record() and a.state_dict()["run"] == spec.record()
    vae = RunSpec("mnist", "vae", binarize=True, batch_size=8).build_trainer({"steps": 1, "progress": False}, data=(images,))
    assert vae.config.binarize and vae.run_spec_fields["model"] == "vae"


def test_recorded_refuses_a_change_and_the_other_kind_of_model():
    state = {"run": RunSpec("mnist", "dcgan", base_width=4).record(), "kind": "GANTrainer"}
    assert RunSpec.recorded(state, {"base_width": 4, "dataset": None}).base_width == 4
    with pytest.raises(SpecError, match=re.escape("--base-width 8 (the checkpoint has 4)")):
        RunSpec.recorded(state, {"base_width": 8})
    with pytest.raises(SpecError, match="holds a GAN run"):
        RunSpec.recorded(state, {"model": "vae"})
    with pytest.raises(SpecError, match="records no run spec"):
        RunSpec.recorded({"kind": "GANTrainer"}, {})


@pytest.mark.parametrize("option", [["--cuda-graph"], ["--compile", "default"], ["--ema-decay", "0.9"]])
def test_the_vae_refuses_gan_only_options_before_any_work(tmp_path, capsys, option):
    out = tmp_path / "vae"
    with pytest.raises(SystemExit) as info:
        main(["train", "--dataset", "mnist", "--model", "vae", "--steps", "1", "--out", str(out), *option])
    assert info.value.code == 2
    assert f"{option[0]} is a GAN option; this run trains a VAE" in capsys.readouterr().err
    assert not out.exists()


def test_steering_refuses_what_defines_the_run_and_a_vae_drops_switched_off_gan_options():
    spec = RunSpec("ring")
    with pytest.raises(SpecError, match="seed define the run: give them to the RunSpec"):
        spec.steering({"seed": 3, "steps": 10})
    vae = RunSpec("mnist", "vae")
    assert vae.steering({"compile": False, "lr": 1e-3}) == {"lr": 1e-3}  # --compile none asks for nothing
    assert RunSpec("mnist", "dcgan", g_width=8, d_width=8).base_width is None  # not used: not filled
