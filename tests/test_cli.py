"""python -m ganlib train|sample: runs, resumes, samples; a dataset missing offline names the fix."""
import json
import subprocess
import sys
import urllib.request
from urllib.error import URLError

import pytest

from ganlib.__main__ import main
from ganlib.checkpoint import load_checkpoint
from ganlib.data import DatasetNotFoundError

pytestmark = pytest.mark.usefixtures("single_thread")
FAST = ["--no-progress", "--device", "cpu", "--log-every", "5"]


def test_train_resume_sample_toy(tmp_path):
    out = tmp_path / "ring"
    main(["train", "--dataset", "ring", "--steps", "10", "--out", str(out), "--ema-decay", "0.9", *FAST])
    assert load_checkpoint(out / "checkpoint.safetensors")["step"] == 10
    main(["train", "--dataset", "ring", "--steps", "15", "--out", str(out), "--resume", *FAST])
    state = load_checkpoint(out / "checkpoint.safetensors")
    assert state["step"] == 15 and state["config"]["ema_decay"] == 0.9  # the run's own settings were kept
    history = json.loads((out / "history.json").read_text())
    assert history["step"] == list(range(1, 16))
    main(["sample", "--checkpoint", str(out / "checkpoint.safetensors"), "--n", "100", "--out", str(tmp_path / "s.png")])
    assert (tmp_path / "s.png").stat().st_size > 0


def test_train_sample_conditional_dcgan_on_digits(tmp_path):
    out = tmp_path / "digits"
    main(["train", "--dataset", "digits", "--model", "dcgan", "--conditional", "--spectral-norm", "--loss", "hinge",
          "--steps", "4", "--batch-size", "32", "--out", str(out), *FAST])
    assert (out / "samples.png").exists()
    main(["sample", "--checkpoint", str(out / "checkpoint.safetensors"), "--n", "20", "--out", str(tmp_path / "s.png")])
    assert (tmp_path / "s.png").stat().st_size > 0


def _fails(argv, capsys, code=2):
    """Run the command line; assert it exits with ``code`` and one line on stderr; return that line."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_resume_without_checkpoint_says_so(tmp_path, capsys):
    err = _fails(["train", "--dataset", "moons", "--out", str(tmp_path), "--resume", *FAST], capsys)
    assert "run without --resume" in err


def test_resume_applies_a_new_learning_rate(tmp_path):
    out = tmp_path / "ring"
    main(["train", "--dataset", "ring", "--steps", "10", "--lr", "1e-3", "--out", str(out), *FAST])
    main(["train", "--dataset", "ring", "--steps", "20", "--lr", "1e-4", "--out", str(out), "--resume", *FAST])
    history = json.loads((out / "history.json").read_text())
    assert history["lr_g"] == [1e-3] * 10 + [1e-4] * 10 and history["lr_d"] == history["lr_g"]
    state = load_checkpoint(out / "checkpoint.safetensors")
    assert state["config"]["lr_g"] == 1e-4
    assert [g["lr"] for o in state["optimizers"].values() for g in o["param_groups"]] == [1e-4, 1e-4]


@pytest.mark.parametrize("option, value, phrase", [
    ("--seed", "3", "--seed 3 (the checkpoint has 0)"),
    ("--batch-size", "64", "--batch-size 64 (the checkpoint has 256)"),
    ("--latent-dim", "4", "--latent-dim 4 (the checkpoint has 8)"),
    ("--dataset", "moons", "--dataset 'moons' (the checkpoint has 'ring')"),
    ("--model", "vae", "holds a GAN run"),
])
def test_resume_refuses_to_change_what_defines_the_run(tmp_path, capsys, option, value, phrase):
    out = tmp_path / "ring"
    main(["train", "--dataset", "ring", "--steps", "5", "--out", str(out), *FAST])
    before = (out / "checkpoint.safetensors").read_bytes()
    argv = ["train", "--dataset", "ring", "--steps", "10", "--out", str(out), "--resume", *FAST]
    if option == "--dataset":
        argv[2] = value
    else:
        argv += [option, value]
    err = _fails(argv, capsys)
    assert phrase in err, err
    assert (out / "checkpoint.safetensors").read_bytes() == before  # nothing trained, nothing overwritten


def test_sample_every_writes_snapshot_images(tmp_path):
    out = tmp_path / "digits"
    main(["train", "--dataset", "digits", "--model", "dcgan", "--steps", "6", "--batch-size", "16",
          "--sample-every", "3", "--out", str(out), *FAST])
    snapshots = sorted(p.name for p in (out / "snapshots").iterdir())
    assert snapshots == ["samples_step000003.png", "samples_step000006.png"]
    assert all((out / "snapshots" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for name in snapshots)


def test_bad_loss_name_is_rejected_with_choices(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--dataset", "ring", "--loss", "wgan", "--out", "x"])
    assert "nonsaturating" in capsys.readouterr().err


def test_module_entry_point_runs():
    result = subprocess.run([sys.executable, "-m", "ganlib", "train", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "--resume" in result.stdout


def _offline(monkeypatch, data_folder, dataset="MNIST"):
    """No network and an empty data folder: the test never touches the network, since both
    torchvision's download method and the URL opener fail."""
    import torchvision

    def no_network(*args, **kwargs):
        raise URLError("network disabled in this test")

    monkeypatch.setattr(getattr(torchvision.datasets, dataset), "download", no_network)
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    monkeypatch.setenv("GANLIB_DATA", str(data_folder))


def test_train_command_reports_a_missing_dataset(tmp_path, monkeypatch, capsys):
    _offline(monkeypatch, tmp_path)
    # the message itself is checked in tests/test_data.py; here: the CLI prints it as one line ...
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--dataset", "mnist", "--steps", "1", "--out", str(tmp_path / "run"), *FAST])
    assert exit_info.value.code == 1
    assert "GANLIB_DATA" in capsys.readouterr().err
    # ... and --debug raises it, with its traceback
    with pytest.raises(DatasetNotFoundError, match="GANLIB_DATA"):
        main(["train", "--dataset", "mnist", "--steps", "1", "--out", str(tmp_path / "run"), "--debug", *FAST])


def test_fashion_mnist_is_a_dataset_and_says_how_to_get_it_offline(tmp_path, monkeypatch, capsys):
    _offline(monkeypatch, tmp_path, "FashionMNIST")
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--dataset", "fashion_mnist", "--model", "dcgan", "--steps", "1", "--out", str(tmp_path / "run"), *FAST])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "FashionMNIST" in err and "GANLIB_DATA" in err


def test_base_width_sets_the_dcgan_width_and_is_part_of_the_run(tmp_path, monkeypatch):
    import torch

    images = torch.rand(64, 1, 28, 28) * 2 - 1
    monkeypatch.setattr("ganlib.spec.load_data", lambda dataset: (images, torch.zeros(64, dtype=torch.long)))
    out = tmp_path / "w8"
    main(["train", "--dataset", "mnist", "--model", "dcgan", "--base-width", "8", "--steps", "2", "--batch-size", "16",
          "--out", str(out), *FAST])
    state = load_checkpoint(out / "checkpoint.safetensors")
    assert state["specs"]["generator"]["kwargs"]["base_width"] == 8 and state["run"]["base_width"] == 8
    with pytest.raises(SystemExit) as exit_info:  # resuming with another width is refused
        main(["train", "--dataset", "mnist", "--model", "dcgan", "--base-width", "16", "--steps", "3", "--out", str(out),
              "--resume", *FAST])
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--dataset", "mnist", "--model", "mlp", "--base-width", "8", "--out", str(tmp_path / "m"), *FAST])
    assert exit_info.value.code == 2


def test_binarize_and_lr_decay_train_a_vae_on_binary_pixels(tmp_path, monkeypatch, capsys):
    import torch

    images = torch.rand(64, 1, 28, 28) * 2 - 1
    monkeypatch.setattr("ganlib.spec.load_data", lambda dataset: (images, torch.zeros(64, dtype=torch.long)))
    out = tmp_path / "vae"
    main(["train", "--dataset", "mnist", "--model", "vae", "--binarize", "--lr-decay", "--steps", "20",
          "--batch-size", "16", "--out", str(out), *FAST])
    state = load_checkpoint(out / "checkpoint.safetensors")
    assert state["config"]["binarize"] is True and state["run"]["binarize"] is True
    history = json.loads((out / "history.json").read_text())
    lr = history["lr"]  # decayed linearly to 0 at --steps, in stairs of --log-every
    assert lr[0] == 1e-3 and lr[-1] == pytest.approx(1e-3 * 5 / 20) and all(a >= b for a, b in zip(lr, lr[1:])) and len(set(lr)) > 2
    # binarize defines the run: a resume keeps it, and a run without it cannot take it up
    main(["train", "--dataset", "mnist", "--model", "vae", "--steps", "25", "--out", str(out), "--resume", *FAST])
    assert load_checkpoint(out / "checkpoint.safetensors")["config"]["binarize"] is True
    grey = tmp_path / "grey"
    main(["train", "--dataset", "mnist", "--model", "vae", "--steps", "5", "--batch-size", "16", "--out", str(grey), *FAST])
    err = _fails(["train", "--dataset", "mnist", "--model", "vae", "--binarize", "--steps", "10", "--out", str(grey),
                  "--resume", *FAST], capsys)
    assert "--binarize True (the checkpoint has False)" in err


def test_binarize_is_a_vae_option(tmp_path, capsys):
    err = _fails(["train", "--dataset", "ring", "--binarize", "--out", str(tmp_path / "r"), *FAST], capsys)
    assert "binarize (--binarize) is a VAE option" in err


def test_dcgan_layout_options_build_the_models_and_define_the_run(tmp_path, monkeypatch, capsys):
    import torch

    images = torch.rand(64, 1, 28, 28) * 2 - 1
    monkeypatch.setattr("ganlib.spec.load_data", lambda dataset: (images, torch.zeros(64, dtype=torch.long)))
    out = tmp_path / "fc"
    base = ["train", "--dataset", "mnist", "--model", "dcgan", "--steps", "2", "--batch-size", "16", "--out", str(out)]
    main([*base, "--g-width", "8", "--d-width", "4", "--g-fc", "16", "--d-fc", "12", *FAST])
    state = load_checkpoint(out / "checkpoint.safetensors")
    g, d = state["specs"]["generator"]["kwargs"], state["specs"]["discriminator"]["kwargs"]
    assert (g["base_width"], g["hidden"], d["base_width"], d["hidden"]) == (8, 16, 4, 12)
    # resuming with the same layout works; another layout is refused, naming the flag
    main([*base[:-4], "--steps", "3", "--out", str(out), "--resume", "--g-fc", "16", *FAST])
    err = _fails([*base[:-4], "--steps", "4", "--out", str(out), "--resume", "--d-fc", "0", *FAST], capsys)
    assert "--d-fc 0 (the checkpoint has 12)" in err
    # a run without the options records their defaults; resuming it with them is accepted
    plain = tmp_path / "plain"
    main([*base[:-1], str(plain), "--base-width", "4", *FAST])
    run = load_checkpoint(plain / "checkpoint.safetensors")["run"]
    assert (run["g_width"], run["d_width"], run["g_fc"], run["d_fc"]) == (4, 4, 0, 0)
    main([*base[:-1], str(plain), "--steps", "3", "--resume", "--g-width", "4", "--g-fc", "0", *FAST])
    err = _fails([*base[:-1], str(plain), "--steps", "4", "--resume", "--g-width", "8", *FAST], capsys)
    assert "--g-width 8 (the checkpoint has 4)" in err


def test_sample_refuses_a_checkpoint_whose_generator_draws_nan(tmp_path, capsys):
    import torch

    from ganlib.checkpoint import save_checkpoint

    out = tmp_path / "ring"
    main(["train", "--dataset", "ring", "--steps", "2", "--out", str(out), *FAST])
    state = load_checkpoint(out / "checkpoint.safetensors")
    first = next(iter(state["models"]["generator"]))
    state["models"]["generator"][first] = torch.full_like(state["models"]["generator"][first], float("nan"))
    save_checkpoint(state, out / "nan.safetensors", require_finite=False)
    with pytest.raises(SystemExit) as info:
        main(["sample", "--checkpoint", str(out / "nan.safetensors"), "--out", str(tmp_path / "s.png")])
    assert info.value.code == 1
    assert "draws non-finite samples (NaN or inf)" in capsys.readouterr().err
    assert not (tmp_path / "s.png").exists()


def test_a_moved_run_resumes_into_its_new_folder(tmp_path):
    old, new = tmp_path / "a", tmp_path / "b"
    main(["train", "--dataset", "gaussian1d", "--steps", "2", "--out", str(old), *FAST])
    old.rename(new)
    main(["train", "--dataset", "gaussian1d", "--steps", "4", "--out", str(new), "--resume", *FAST])
    assert load_checkpoint(new / "checkpoint.safetensors")["step"] == 4 and not old.exists()
