"""Every results, benchmark and classifier command refuses bad input before it works (issue 32).

Each case runs a command's ``main`` with one bad value (a number out of range, an empty list, an
``--out`` that cannot be written or is a folder) and checks the boundary of :mod:`ganlib.command`:
exit status 2, one line on stderr that names the option, no traceback, no work started (the
command's study functions are replaced by ones that fail the test) and no output file written.
"""
import os
import subprocess
import sys
import time

import pytest

from ganlib import classifier
from ganlib.bench import cli as bench
from ganlib.chapters import (applications, challenges, dcgan_recipe, evaluation, experiments, practice, vae,
                             vae_vs_gan)
from ganlib.command import UsageError

#: command -> (its main, the argv that picks it); {ckpt} stands for an existing checkpoint file
COMMANDS = {
    "applications augment": (applications.main, ["augment"]),
    "applications anomaly": (applications.main, ["anomaly"]),
    "challenges dcgan-failure": (challenges.main, ["dcgan-failure"]),
    "challenges small-data": (challenges.main, ["small-data"]),
    "challenges hyperparameters": (challenges.main, ["hyperparameters"]),
    "dcgan_recipe ablation": (dcgan_recipe.main, ["ablation"]),
    "evaluation calibrate": (evaluation.main, ["calibrate"]),
    "evaluation validate": (evaluation.main, ["validate"]),
    "evaluation rank": (evaluation.main, ["rank"]),
    "experiments mode-collapse": (experiments.main, ["mode-collapse"]),
    "practice ablation": (practice.main, ["ablation"]),
    "practice ema-bn": (practice.main, ["ema-bn", "{ckpt}"]),
    "vae beta-sweep": (vae.main, ["beta-sweep"]),
    "vae_vs_gan compare": (vae_vs_gan.main, ["compare"]),
    "bench": (bench.main, []),
    "bench fid-parity": (bench.main, ["fid-parity"]),
    "bench vae": (bench.main, ["vae"]),
    "classifier train": (classifier.main, ["train"]),
    "classifier evaluate": (classifier.main, ["evaluate"]),
}

#: (command, bad options, the option the message must name)
BAD_VALUES = [
    ("applications augment", ["--seeds", "0"], "--seeds"),
    ("applications anomaly", ["--steps", "-3"], "--steps"),
    ("challenges dcgan-failure", ["--workers", "0"], "--workers"),
    ("challenges dcgan-failure", ["--threads", "-1"], "--threads"),
    ("challenges dcgan-failure", ["--seed", "-1"], "--seed"),
    ("challenges small-data", ["--n-train", "60000"], "--n-train"),
    ("challenges small-data", ["--steps", "100"], "--steps"),
    ("challenges hyperparameters", ["--seeds", "0"], "--seeds"),
    ("challenges hyperparameters", ["--threads", "0"], "--threads"),
    ("dcgan_recipe ablation", ["--steps", "0"], "--steps"),
    ("dcgan_recipe ablation", ["--workers", "0"], "--workers"),
    ("dcgan_recipe ablation", ["--seeds", "-1"], "--seeds"),
    ("dcgan_recipe ablation", ["--seeds", "1", "1"], "--seeds"),
    ("evaluation calibrate", ["--seed", "x"], "--seed"),
    ("evaluation validate", ["--n", "0"], "--n"),
    ("evaluation validate", ["--n-reference", "20000"], "--n-reference"),
    ("experiments mode-collapse", ["--seeds", "0"], "--seeds"),
    ("experiments mode-collapse", ["--steps", "0"], "--steps"),
    ("experiments mode-collapse", ["--workers", "0"], "--workers"),
    ("experiments mode-collapse", ["--configs", "nonsaturating,nope"], "--configs"),
    ("practice ablation", ["--steps", "0"], "--steps"),
    ("vae beta-sweep", ["--iwae-k", "-5"], "--iwae-k"),
    ("vae beta-sweep", ["--nll-images", "0"], "--nll-images"),
    ("vae beta-sweep", ["--threads", "0"], "--threads"),
    ("vae_vs_gan compare", ["--threads", "0"], "--threads"),
    ("bench", ["--steps", "0"], "--steps"),
    ("bench", ["--repeats", "0"], "--repeats"),
    ("bench", ["--batch-size", "0"], "--batch-size"),
    ("bench", ["--threads", "-2"], "--threads"),
    ("bench", ["--compile", "fast"], "--compile"),
    ("bench", ["--device", "nonsense"], "--device"),
    ("bench fid-parity", ["--n-samples", "1"], "--n-samples"),
    ("bench fid-parity", ["--steps", "0"], "--steps"),
    ("bench vae", ["--epochs", "0"], "--epochs"),
    ("classifier train", ["--epochs", "0"], "--epochs"),
    ("classifier train", ["--threads", "0"], "--threads"),
]

#: (command, an empty or emptied list, the option the message must name)
EMPTY_LISTS = [
    ("dcgan_recipe ablation", ["--seeds"], "--seeds"),
    ("dcgan_recipe ablation", ["--arms"], "--arms"),
    ("experiments mode-collapse", ["--configs", ","], "--configs"),
    ("experiments mode-collapse", ["--datasets", " "], "--datasets"),
    ("bench", ["--versions", ""], "--versions"),
    ("bench fid-parity", ["--seeds", ","], "--seeds"),
]

#: (command, output option): every output file a command writes
OUTPUTS = [(name, "--out") for name in COMMANDS if name != "classifier evaluate"] + [("bench vae", "--json")]

STUDIES = [(applications, "augmentation_study"), (applications, "anomaly_study"), (challenges, "small_data_study"),
           (challenges, "hyperparameter_study"), (challenges, "dcgan_failure"), (dcgan_recipe, "ablation"),
           (evaluation, "calibration"), (evaluation, "validation"), (evaluation, "ranking"),
           (experiments, "run_mode_collapse"), (practice, "ablation"), (practice, "ema_batchnorm"),
           (vae, "load_mnist"), (vae, "beta_sweep"), (vae_vs_gan, "compare"), (bench, "throughput"),
           (bench, "fid_parity"), (bench, "vae_benchmark"), (classifier, "train_classifier"),
           (classifier, "load_mnist")]


@pytest.fixture
def no_work(monkeypatch):
    """Every command's work replaced by a failure: a refused command must not start it."""
    monkeypatch.delenv("GANLIB_DEBUG", raising=False)
    for module, name in STUDIES:
        monkeypatch.setattr(module, name, _started(name))


def _started(name):
    def work(*args, **kwargs):
        raise AssertionError(f"{name} started")

    return work


def _refused(command, argv, option, tmp_path, capsys, out=None):
    """Run the command; check the refusal (exit 2, one line naming ``option``, in seconds, no output)."""
    main, prefix = COMMANDS[command]
    ckpt = tmp_path / "checkpoint.safetensors"
    ckpt.write_bytes(b"")
    out = out if out is not None else tmp_path / "results" / "out.json"
    given = [a.format(ckpt=ckpt) for a in prefix] + list(argv)
    if not any(a in ("--out", "--json") for a in argv) and command != "classifier evaluate":
        given += ["--out", str(out)]
    start = time.perf_counter()
    with pytest.raises(SystemExit) as exit_info:
        main(given)
    seconds = time.perf_counter() - start
    err = capsys.readouterr().err
    assert exit_info.value.code == 2, err
    assert len(err.strip().splitlines()) == 1 and err.endswith("\n"), err
    assert option in err and "error:" in err and "Traceback" not in err, err
    assert seconds < 5, f"refused only after {seconds:.1f} s"
    assert not out.exists() and not (tmp_path / "results").exists()
    return err


@pytest.mark.parametrize("command, argv, option", BAD_VALUES, ids=[f"{c} {' '.join(a)}" for c, a, _ in BAD_VALUES])
def test_a_value_out_of_range_is_refused_before_any_work(command, argv, option, tmp_path, capsys, no_work):
    err = _refused(command, argv, option, tmp_path, capsys)
    assert any(says in err for says in ("expected", "choose from", "once")), err  # says what is expected


@pytest.mark.parametrize("command, argv, option", EMPTY_LISTS, ids=[f"{c} {' '.join(a)}" for c, a, _ in EMPTY_LISTS])
def test_an_empty_list_is_refused_before_any_work(command, argv, option, tmp_path, capsys, no_work):
    _refused(command, argv, option, tmp_path, capsys)


@pytest.mark.parametrize("command, option", OUTPUTS, ids=[f"{c} {o}" for c, o in OUTPUTS])
def test_an_output_under_a_file_is_refused_before_any_work(command, option, tmp_path, capsys, no_work):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    out = blocker / "results.json"
    err = _refused(command, [option, str(out)], option, tmp_path, capsys, out=out)
    assert "is a file, not a folder" in err or "not writable" in err
    assert blocker.read_text() == "not a folder"


@pytest.mark.parametrize("command, option", OUTPUTS, ids=[f"{c} {o}" for c, o in OUTPUTS])
def test_a_folder_given_for_an_output_file_is_refused_before_any_work(command, option, tmp_path, capsys, no_work):
    folder = tmp_path / "a-folder"
    folder.mkdir()
    err = _refused(command, [option, str(folder)], option, tmp_path, capsys, out=folder / "results.json")
    assert "is a folder" in err
    assert list(folder.iterdir()) == []


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs a user that read-only folders stop")
@pytest.mark.parametrize("command", ["vae beta-sweep", "bench", "classifier train"])
def test_an_output_in_a_read_only_folder_is_refused_before_any_work(command, tmp_path, capsys, no_work):
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        err = _refused(command, ["--out", str(folder / "out.json")], "--out", tmp_path, capsys, out=folder / "out.json")
    finally:
        folder.chmod(0o755)
    assert "not writable" in err


def test_results_that_cannot_be_combined_are_refused_before_the_training(tmp_path, capsys, no_work):
    out = tmp_path / "recipe.json"
    out.write_text('{"steps": 500, "common_options": []}\n')
    err = _refused("dcgan_recipe ablation", ["--steps", "2000", "--out", str(out)], "--out", tmp_path, capsys,
                   out=tmp_path / "none.json")
    assert "500 steps" in err and out.read_text() == '{"steps": 500, "common_options": []}\n'


def test_missing_input_files_are_refused_before_any_work(tmp_path, capsys, no_work):
    _refused("classifier evaluate", ["--weights", str(tmp_path / "none.safetensors")], "--weights", tmp_path, capsys)
    with pytest.raises(SystemExit) as exit_info:
        practice.main(["ema-bn", str(tmp_path / "none.safetensors"), "--out", str(tmp_path / "out.json")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "CHECKPOINT" in err and len(err.splitlines()) == 1


def test_a_markdown_out_is_refused_where_a_markdown_twin_is_written(tmp_path, capsys, no_work):
    _refused("experiments mode-collapse", ["--out", str(tmp_path / "results" / "out.md")], "--out", tmp_path, capsys,
             out=tmp_path / "results" / "out.md")


def test_an_error_during_the_work_is_one_line_and_debug_shows_it(tmp_path, capsys, monkeypatch, single_thread):
    monkeypatch.delenv("GANLIB_DEBUG", raising=False)

    def boom(*args, **kwargs):
        raise RuntimeError("the study failed\nhalfway")

    monkeypatch.setattr(vae_vs_gan, "compare", boom)
    argv = ["compare", "--out", str(tmp_path / "out.json")]
    with pytest.raises(SystemExit) as exit_info:
        vae_vs_gan.main(argv)
    assert exit_info.value.code == 1
    assert capsys.readouterr().err == "python -m ganlib.chapters.vae_vs_gan compare: error: the study failed halfway\n"
    with pytest.raises(RuntimeError, match="the study failed"):  # --debug: the exception, with its traceback
        vae_vs_gan.main(argv + ["--debug"])
    with pytest.raises(UsageError, match="--out"):
        bench.main(["vae", "--out", str(tmp_path), "--debug"])


def test_ctrl_c_during_the_work_ends_with_one_line(tmp_path, capsys, monkeypatch, single_thread):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(evaluation, "calibration", interrupted)
    with pytest.raises(SystemExit) as exit_info:
        evaluation.main(["calibrate", "--out", str(tmp_path / "out.json")])
    assert exit_info.value.code == 130
    assert capsys.readouterr().err == "python -m ganlib.chapters.evaluation calibrate: interrupted\n"


@pytest.mark.parametrize("argv, option", [(["ganlib.chapters.vae", "beta-sweep", "--iwae-k", "-5"], "--iwae-k"),
                                          (["ganlib.bench", "--steps", "0"], "--steps")])
def test_the_command_line_refuses_in_one_line(argv, option, tmp_path):
    env = {key: value for key, value in os.environ.items() if key != "GANLIB_DEBUG"}
    done = subprocess.run([sys.executable, "-m", *argv, "--out", str(tmp_path / "out.json")], capture_output=True,
                          text=True, env=env, timeout=120)
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.splitlines()) == 1 and option in done.stderr and "Traceback" not in done.stderr
    assert done.stdout == "" and not (tmp_path / "out.json").exists()
