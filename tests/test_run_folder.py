"""The command boundary around a run folder (issue 32): one run at a time, a stale lock taken over,
a full disk or file-size limit refused before any training, and SIGINT/SIGTERM answered with one
line that names the checkpoint kept."""
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time

import pytest

from ganlib.__main__ import main
from ganlib.checkpoint import load_checkpoint
from ganlib.command import LOCK_NAME

pytestmark = pytest.mark.usefixtures("single_thread")
FAST = ["--no-progress", "--device", "cpu", "--log-every", "5"]
TRAIN = ["train", "--dataset", "gaussian1d"]


def _lock(folder, pid):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / LOCK_NAME).write_text(json.dumps({"pid": pid, "host": socket.gethostname(), "started": "earlier",
                                                "command": "python -m ganlib train --out here"}))


def test_a_second_run_into_a_locked_folder_is_refused_naming_the_holder(tmp_path, capsys):
    out = tmp_path / "run"
    _lock(out, os.getpid())  # a live process holds it
    start = time.perf_counter()
    with pytest.raises(SystemExit) as info:
        main(TRAIN + ["--steps", "5", "--out", str(out), *FAST])
    err = capsys.readouterr().err
    assert info.value.code == 2 and f"is in use by another run (process {os.getpid()} on" in err
    assert "python -m ganlib train --out here" in err and err.count("\n") == 1
    assert not (out / "checkpoint.safetensors").exists() and time.perf_counter() - start < 10
    # --resume into it is refused the same way, before the checkpoint is read
    main(TRAIN + ["--steps", "2", "--out", str(tmp_path / "other"), *FAST])
    _lock(tmp_path / "other", os.getpid())
    with pytest.raises(SystemExit):
        main(TRAIN + ["--steps", "4", "--out", str(tmp_path / "other"), "--resume", *FAST])
    assert load_checkpoint(tmp_path / "other" / "checkpoint.safetensors")["step"] == 2


def test_a_lock_whose_process_is_gone_is_taken_over_and_removed_at_the_end(tmp_path):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    out = tmp_path / "run"
    _lock(out, gone.pid)
    main(TRAIN + ["--steps", "3", "--out", str(out), *FAST])
    assert load_checkpoint(out / "checkpoint.safetensors")["step"] == 3
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(LOCK_NAME)) == []


def _limit_file_size():
    resource.setrlimit(resource.RLIMIT_FSIZE, (200 * 512, 200 * 512))  # 200 blocks


def test_a_file_size_limit_is_refused_before_any_training(tmp_path):
    out = tmp_path / "run"
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "ganlib", *TRAIN, "--steps", "400", "--out", str(out), *FAST],
                          capture_output=True, text=True, preexec_fn=_limit_file_size, timeout=120)
    assert done.returncode == 2 and "is not writable (File too large)" in done.stderr, done.stderr
    assert not (out / "checkpoint.safetensors").exists() and time.perf_counter() - start < 60


@pytest.mark.parametrize("sig, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_ends_the_run_with_one_line_naming_the_checkpoint_kept(tmp_path, sig, status):
    out = tmp_path / "run"
    run = subprocess.Popen([sys.executable, "-m", "ganlib", *TRAIN, "--steps", "1000000", "--checkpoint-every", "20",
                            "--out", str(out), *FAST], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.time() + 90
    while time.time() < deadline and not (out / "checkpoint.safetensors").exists():
        time.sleep(0.2)
    time.sleep(1.0)  # a few more checkpoints
    run.send_signal(sig)
    _, err = run.communicate(timeout=60)
    assert run.returncode == status, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "python -m ganlib train: interrupted: stopped at step" in err and "checkpoint.safetensors (step" in err
    kept = int(err.split("(step ")[1].split(")")[0])
    assert load_checkpoint(out / "checkpoint.safetensors")["step"] == kept
    assert not (out / LOCK_NAME).exists()
