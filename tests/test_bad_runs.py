"""Bad input never trains silently or loses a finished run (issue 11): the command line's options,
the trainer's configs, --resume against its checkpoint, and a diverged update at checkpoint time.

Command-line cases assert the exit status and the one line printed on stderr; API cases assert the
exception type and a phrase of its message.
"""
import re

import pytest
import torch

from ganlib import seed_everything
from ganlib.__main__ import main
from ganlib.checkpoint import load_checkpoint
from ganlib.data import gaussian_ring
from ganlib.models import MLPDiscriminator, MLPGenerator
from ganlib.train import GANConfig, GANTrainer, NonFiniteLossError, VAEConfig

pytestmark = pytest.mark.usefixtures("single_thread")
FAST = ["--no-progress", "--device", "cpu", "--log-every", "5"]


def _exit(argv, capsys):
    """Run the command line; return (exit status, what it printed on stderr)."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    return exit_info.value.code, capsys.readouterr().err


# ----------------------------------------------------------------------------- the command line

TRAIN = ["train", "--dataset", "ring"]
CLI_CASES = [  # (arguments, after --out?, exit status, phrase)
    (TRAIN + ["--steps", "0"], 2, "--steps: expected an integer >= 1, got '0'"),
    (TRAIN + ["--steps", "-5"], 2, "--steps: expected an integer >= 1, got '-5'"),
    (TRAIN + ["--lr", "0"], 2, "--lr: expected a number > 0, got '0'"),
    (TRAIN + ["--lr", "-1e-3"], 2, "--lr: expected a number > 0, got '-1e-3'"),
    (TRAIN + ["--lr", "nan"], 2, "--lr: expected a number > 0, got 'nan'"),
    (TRAIN + ["--batch-size", "0"], 2, "--batch-size: expected an integer >= 1, got '0'"),
    (TRAIN + ["--checkpoint-every", "-1"], 2, "--checkpoint-every: expected an integer >= 0, got '-1'"),
    (TRAIN + ["--log-every", "0"], 2, "--log-every: expected an integer >= 1, got '0'"),
    (TRAIN + ["--sample-every", "-2"], 2, "--sample-every: expected an integer >= 0"),
    (TRAIN + ["--d-steps", "0"], 2, "--d-steps: expected an integer >= 1"),
    (TRAIN + ["--gp-weight", "-10"], 2, "--gp-weight: expected a number >= 0"),
    (TRAIN + ["--ema-decay", "1"], 2, "--ema-decay: expected a number in [0, 1)"),
    (TRAIN + ["--latent-dim", "0"], 2, "--latent-dim: expected an integer >= 1"),
    (TRAIN + ["--model", "dcgan"], 2, "is a toy distribution: it needs model 'mlp' (--model mlp)"),
    (TRAIN + ["--model", "vae"], 2, "the image models and VAEs are for mnist, fashion_mnist and digits"),
    (["train", "--dataset", "digits", "--model", "vae", "--loss", "hinge"], 2, "--loss is a GAN option; this run trains a VAE"),
    (["sample", "--checkpoint", "x.safetensors", "--n", "0"], 2, "--n: expected an integer >= 1, got '0'"),
    (["sample", "--checkpoint", "x.safetensors", "--out", "pictures.gif"], 2, "unknown image type '.gif'"),
    (["sample", "--checkpoint", "x.safetensors", "--out", "."], 2, "is a folder; give an image file name"),
    (["sample", "--checkpoint", "missing.safetensors"], 1, "no checkpoint at missing.safetensors"),
]


@pytest.mark.parametrize("argv, status, phrase", CLI_CASES, ids=[" ".join(c[0][3:] or c[0][:1]) for c in CLI_CASES])
def test_command_line_refuses_bad_options_in_one_line(tmp_path, capsys, monkeypatch, argv, status, phrase):
    monkeypatch.chdir(tmp_path)
    if argv[0] == "train":
        argv = argv + ["--out", str(tmp_path / "run"), *FAST]
    code, err = _exit(argv, capsys)
    assert code == status and phrase in err, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "run" / "checkpoint.safetensors").exists()  # nothing trained


@pytest.mark.parametrize("make_out, phrase", [
    (lambda tmp: tmp.joinpath("a-file").write_text("x") and tmp / "a-file", "is a file; give a folder"),
    (lambda tmp: tmp.joinpath("a-file").write_text("x") and tmp / "a-file" / "run", "a-file is a file, not a folder"),
])
def test_an_unwritable_out_folder_is_refused_before_training(tmp_path, capsys, make_out, phrase):
    out = make_out(tmp_path)
    code, err = _exit(TRAIN + ["--steps", "50", "--out", str(out), *FAST], capsys)
    assert code == 2 and phrase in err and "--out" in err, err


def test_latent_dim_is_honoured(tmp_path):
    main(TRAIN + ["--steps", "2", "--latent-dim", "3", "--out", str(tmp_path), *FAST])
    state = load_checkpoint(tmp_path / "checkpoint.safetensors")
    assert state["specs"]["generator"]["kwargs"]["latent_dim"] == 3  # the preset's 8 before


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(FileNotFoundError):
        main(["sample", "--checkpoint", str(tmp_path / "missing.safetensors"), "--debug"])


def test_resume_with_a_model_of_another_kind_names_both(tmp_path, capsys):
    main(TRAIN + ["--steps", "2", "--out", str(tmp_path), *FAST])
    code, err = _exit(["train", "--dataset", "digits", "--model", "vae", "--resume", "--out", str(tmp_path), *FAST],
                      capsys)
    assert code == 2 and "holds a GAN run" in err and "--model vae" in err, err


# ----------------------------------------------------------------------------- the trainer's configs

CONFIG_CASES = [
    (GANConfig, {"lr_g": 0.0}, "lr_g must be a finite number > 0; got 0.0"),
    (GANConfig, {"lr_d": float("inf")}, "lr_d must be a finite number > 0"),
    (GANConfig, {"steps": -5}, "steps must be an integer >= 0; got -5"),
    (GANConfig, {"batch_size": 0}, "batch_size must be an integer >= 1; got 0"),
    (GANConfig, {"gp_weight": -10.0}, "gp_weight must be a finite number >= 0"),
    (GANConfig, {"d_steps": 0}, "d_steps must be an integer >= 1"),
    (GANConfig, {"loss": "wgan"}, "unknown GAN loss 'wgan'; valid names are 'minimax'"),
    (GANConfig, {"ema_decay": 1.5}, "ema_decay must be a number in [0, 1)"),
    (GANConfig, {"betas": (0.5,)}, "betas must be two numbers in [0, 1)"),
    (GANConfig, {"log_every": 0}, "log_every must be an integer >= 1"),
    (GANConfig, {"checkpoint_every": -1}, "checkpoint_every must be an integer >= 0"),
    (GANConfig, {"compile": "fast"}, "is not a torch.compile mode"),
    (GANConfig, {"cuda_graph": True, "r1_weight": 1.0}, "cuda_graph=True does not work with gradient/R1 penalties"),
    (VAEConfig, {"lr": -1e-3}, "lr must be a finite number > 0"),
    (VAEConfig, {"beta": -1.0}, "beta must be a finite number >= 0"),
]


@pytest.mark.parametrize("config_class, fields, phrase", CONFIG_CASES, ids=[str(c[1]) for c in CONFIG_CASES])
def test_configs_refuse_bad_values(config_class, fields, phrase):
    with pytest.raises(ValueError, match=re.escape(phrase)):
        config_class(**fields)


def _ring_trainer(tmp_path=None, **fields):
    seed_everything(0)
    cfg = dict(steps=20, batch_size=16, device="cpu", progress=False, log_every=5, lr_g=1e-3, lr_d=1e-3)
    if tmp_path is not None:
        cfg["checkpoint_path"] = str(tmp_path / "run.safetensors")
    return GANTrainer(MLPGenerator(2, 2, hidden=(8,)), MLPDiscriminator(2, hidden=(8,)), gaussian_ring(),
                      GANConfig(**{**cfg, **fields}))


def test_batch_larger_than_the_data_is_refused():
    with pytest.raises(ValueError, match="batch_size=64 is larger than the data"):
        GANTrainer(MLPGenerator(2, 2), MLPDiscriminator(2), torch.randn(10, 2), GANConfig(batch_size=64, device="cpu"))


def test_from_checkpoint_overrides_reach_the_optimizers(tmp_path):
    trainer = _ring_trainer(tmp_path, steps=5)
    trainer.fit()
    resumed = GANTrainer.from_checkpoint(tmp_path / "run.safetensors", gaussian_ring(), lr_g=1e-5, betas=(0.0, 0.9))
    assert resumed.config.lr_g == 1e-5
    assert [g["lr"] for g in resumed.opt_g.param_groups] == [1e-5]  # not only the config
    assert [g["lr"] for g in resumed.opt_d.param_groups] == [1e-3]  # the other rate is the checkpoint's
    assert all(g["betas"] == (0.0, 0.9) for o in resumed.optimizers.values() for g in o.param_groups)
    with pytest.raises(TypeError, match="unknown GANConfig field"):
        GANTrainer.from_checkpoint(tmp_path / "run.safetensors", gaussian_ring(), learning_rate=1e-5)


# ----------------------------------------------------------------------------- a diverged update


def test_a_diverged_update_is_never_checkpointed(tmp_path):
    # an inf gradient in G's update at step 10 (the step's last update): every loss of the step was
    # computed before it and is finite, but G's weights and Adam's state are not. The step-10
    # checkpoint must not be written over the step-5 one.
    trainer = _ring_trainer(tmp_path, checkpoint_every=5)
    weight = trainer.generator.net[0].weight
    weight.register_hook(lambda grad: torch.full_like(grad, float("inf")) if trainer.step == 9 else grad)
    with pytest.raises(NonFiniteLossError) as err:
        trainer.fit()
    message = str(err.value)
    assert err.value.step == 10 and "step 10" in message and "not checkpointed" in message
    assert err.value.name.startswith(("models/generator", "optimizers/generator")), err.value.name  # the bad tensor
    assert "last good checkpoint" in message and "(step 5)" in message
    state = load_checkpoint(tmp_path / "run.safetensors")
    assert state["step"] == 5 and all(torch.isfinite(t).all() for t in _tensors(state["models"]))
    resumed = GANTrainer.from_checkpoint(tmp_path / "run.safetensors", gaussian_ring())  # and it resumes
    resumed.fit()
    assert resumed.step == 20


def test_huge_learning_rate_keeps_the_last_good_checkpoint(tmp_path, capsys):
    # the reproduction of the issue: lr 1e6 with a checkpoint every step
    out = tmp_path / "n4"
    code, err = _exit(TRAIN + ["--steps", "400", "--lr", "1e6", "--checkpoint-every", "1", "--out", str(out), *FAST],
                      capsys)
    assert code == 1 and "not checkpointed" in err and "is kept" in err, err
    state = load_checkpoint(out / "checkpoint.safetensors")
    assert all(torch.isfinite(t).all() for group in ("models", "optimizers") for t in _tensors(state[group]))
    main(TRAIN + ["--steps", str(state["step"] + 1), "--lr", "1e-3", "--resume", "--out", str(out), *FAST])


def _tensors(tree):
    if isinstance(tree, torch.Tensor):
        return [tree] if tree.is_floating_point() else []
    if isinstance(tree, dict):
        return [t for v in tree.values() for t in _tensors(v)]
    if isinstance(tree, (list, tuple)):
        return [t for v in tree for t in _tensors(v)]
    return []


# ----------------------------------------------------------------------------- resume across settings


def test_resume_uses_this_runs_optimizer_flags_not_the_saved_ones(tmp_path):
    # a run saved under cuda_graph=True has capturable Adam groups; resumed on the CPU they must
    # become this run's (non-capturable) groups, or the first step fails
    trainer = _ring_trainer(steps=2)
    trainer.fit()
    state = trainer.state_dict()
    for opt in state["optimizers"].values():
        for group in opt["param_groups"]:
            group["capturable"] = True
    resumed = _ring_trainer(steps=4)
    resumed.load_state_dict(state)
    assert all(not g["capturable"] for o in resumed.optimizers.values() for g in o.param_groups)
    resumed.fit()
    assert resumed.step == 4


def test_history_from_an_older_checkpoint_stays_aligned():
    trainer = _ring_trainer(steps=5)
    trainer.fit()
    state = trainer.state_dict()
    for key in ("lr_g", "lr_d"):  # what a checkpoint of the previous ganlib holds: no rates
        del state["history"][key]
    resumed = _ring_trainer(steps=10)
    resumed.load_state_dict(state)
    history = resumed.fit()
    assert len(history["lr_g"]) == len(history["step"]) == 10
    assert history["lr_g"] == [None] * 5 + [1e-3] * 5


def test_a_stop_is_agreed_across_ranks_whenever_a_callback_ran(monkeypatch):
    from ganlib import distributed
    from ganlib.train import loop

    agreed = []
    monkeypatch.setattr(loop.distributed, "any_rank", lambda flag, device: agreed.append(trainer.step) or flag)

    class EveryThree:
        every = 3

        def __call__(self, trainer):
            pass

    trainer = _ring_trainer(steps=7, log_every=5)
    trainer.callbacks.append(EveryThree())
    trainer.dist = distributed.DistInfo(rank=0, world_size=2)  # as if under torchrun
    trainer.fit()
    assert agreed == [3, 6]  # the every-3 callback's steps; logging steps with no callback due need none
