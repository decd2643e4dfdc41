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


def test_resume_without_checkpoint_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="run without --resume"):
        main(["train", "--dataset", "moons", "--out", str(tmp_path), "--resume", *FAST])


def test_bad_loss_name_is_rejected_with_choices(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--dataset", "ring", "--loss", "wgan", "--out", "x"])
    assert "nonsaturating" in capsys.readouterr().err


def test_module_entry_point_runs():
    result = subprocess.run([sys.executable, "-m", "ganlib", "train", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "--resume" in result.stdout


def test_train_command_reports_a_missing_dataset(tmp_path, monkeypatch):
    import torchvision

    def no_network(*args, **kwargs):
        raise URLError("network disabled in this test")

    # the test never touches the network: both the download method and the URL opener fail
    monkeypatch.setattr(torchvision.datasets.MNIST, "download", no_network)
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    monkeypatch.setenv("GANLIB_DATA", str(tmp_path))
    # the message itself is checked in tests/test_data.py; here: the CLI raises it, unwrapped
    with pytest.raises(DatasetNotFoundError, match="GANLIB_DATA"):
        main(["train", "--dataset", "mnist", "--steps", "1", "--out", str(tmp_path / "run"), *FAST])
