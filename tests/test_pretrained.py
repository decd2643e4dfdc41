"""The generators that ship with ganlib: hash-checked loading, their records, and their metrics."""
import dataclasses
import json
import math
import re

import pytest
import torch

from ganlib import models, pretrained
from ganlib.checkpoint import load_model
from ganlib.models import refresh_batch_norm
from ganlib.train import GANConfig, GANTrainer


@pytest.fixture
def tiny_shipped(tmp_path):
    """A folder holding one small 'shipped' DCGAN, written by pretrained.save."""
    torch.manual_seed(0)
    G = models.DCGANGenerator(8, 28, 1, 4)
    record = pretrained.save("dcgan-mnist", G, {"name": "dcgan-mnist", "wall_time_s": 60.0, "device": "cpu",
                                                 "metrics": {}}, folder=tmp_path)
    return tmp_path, G, record


def test_save_then_load_gives_the_same_generator(tiny_shipped):
    folder, G, record = tiny_shipped
    loaded = pretrained.load("dcgan-mnist", folder=folder)
    z = torch.randn(5, 8)
    assert torch.equal(loaded(z), G.eval()(z))
    assert record["sha256"] == pretrained.file_sha256(folder / "dcgan-mnist.safetensors")
    assert not list(folder.glob("*.tmp"))


def test_load_refuses_a_file_whose_hash_differs_and_says_how_to_regenerate(tiny_shipped):
    folder, _, _ = tiny_shipped
    path = folder / "dcgan-mnist.safetensors"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # one flipped bit in the last weight: still a valid safetensors file
    path.write_bytes(bytes(data))
    with pytest.raises(pretrained.PretrainedError, match="SHA-256") as err:
        pretrained.load("dcgan-mnist", folder=folder)
    assert "python -m ganlib.pretrained make dcgan-mnist" in str(err.value)


def test_a_missing_file_names_the_command_that_makes_it(tiny_shipped):
    folder, _, _ = tiny_shipped
    (folder / "dcgan-mnist.safetensors").unlink()
    with pytest.raises(pretrained.PretrainedError, match="missing") as err:
        pretrained.load("dcgan-mnist", folder=folder)
    assert "python -m ganlib.pretrained make dcgan-mnist" in str(err.value)
    (folder / "dcgan-mnist.json").unlink()
    with pytest.raises(pretrained.PretrainedError, match="python -m ganlib.pretrained make dcgan-mnist"):
        pretrained.info("dcgan-mnist", folder=folder)


def test_an_unknown_name_lists_the_shipped_ones():
    with pytest.raises(pretrained.PretrainedError, match="dcgan-mnist"):
        pretrained.load("stylegan-mnist")


def test_save_refuses_non_finite_weights(tmp_path):
    G = models.DCGANGenerator(8, 28, 1, 4)
    with torch.no_grad():
        next(G.parameters())[0].fill_(float("nan"))
    with pytest.raises(pretrained.PretrainedError, match="non-finite"):
        pretrained.save("dcgan-mnist", G, {}, folder=tmp_path)
    assert not list(tmp_path.iterdir())


# ----------------------------------------------------------------------------- the shipped files


@pytest.mark.parametrize("name", pretrained.names())
def test_every_shipped_generator_loads_and_generates_images(name):
    G = pretrained.load(name)
    images, labels = pretrained.generate(G, 20, seed=1)
    assert images.shape == (20, 1, 28, 28)
    assert torch.isfinite(images).all() and images.min() >= -1 and images.max() <= 1
    assert images.std() > 0.1  # not a constant image
    if G.num_classes:
        assert labels.tolist() == [i % 10 for i in range(20)]
    # same seed, same images
    assert torch.equal(pretrained.generate(G, 20, seed=1)[0], images)


@pytest.mark.parametrize("name", pretrained.names())
def test_every_shipped_record_has_its_provenance(name):
    record = pretrained.info(name)
    for key in ("command", "train_command", "date", "device", "versions", "steps", "wall_time_s", "metrics", "sha256"):
        assert key in record, key
    assert record["command"] == f"python -m ganlib.pretrained make {name}"
    assert record["train_command"] == pretrained.RECIPES[name].train_command()
    assert record["steps"] == pretrained.RECIPES[name].steps
    assert all(math.isfinite(record["metrics"][k]) for k in ("fid", "inception_score", "precision", "recall"))
    assert abs(sum(record["metrics"]["label_histogram"]) - 1) < 1e-6


def test_the_shipped_files_are_a_few_megabytes():
    total = sum((pretrained.WEIGHTS_DIR / f"{n}.safetensors").stat().st_size for n in pretrained.names())
    assert total < 10e6


@pytest.mark.slow
@pytest.mark.parametrize("name", pretrained.names())
def test_recorded_metrics_are_recomputed_from_the_shipped_weights(name, single_thread):
    # the noise is seeded, so on a CPU the samples are the same up to float rounding
    for key, (recorded, now) in pretrained.check(name).items():
        assert now == pytest.approx(recorded, rel=0.01, abs=0.01), key


# ----------------------------------------------------------------------------- EMA and batch norm


def test_refresh_batch_norm_sets_the_statistics_of_the_generators_own_activations():
    torch.manual_seed(0)
    G = models.DCGANGenerator(8, 28, 1, 4).eval()
    bn = G.net[1]
    bn.running_mean.fill_(5.0)
    bn.running_var.fill_(9.0)
    refresh_batch_norm(G, batches=3, batch_size=50, seed=7)
    # the same noise, replayed: the first BN layer's input is the first transposed convolution's output
    rng = torch.Generator().manual_seed(7)
    zs = [torch.randn(50, 8, generator=rng) for _ in range(3)]
    with torch.no_grad():
        acts = [G.net[0](z[:, :, None, None]) for z in zs]
    means = torch.stack([a.mean((0, 2, 3)) for a in acts]).mean(0)
    assert torch.allclose(bn.running_mean, means, atol=1e-5)
    assert not G.training  # its mode is restored
    assert bn.momentum == 0.1


def test_sampling_the_ema_generator_uses_fresh_statistics_and_leaves_training_alone():
    torch.manual_seed(0)
    x = torch.rand(64, 1, 28, 28) * 2 - 1
    G, D = models.DCGANGenerator(8, 28, 1, 4), models.DCGANDiscriminator(28, 1, 4)
    trainer = GANTrainer(G, D, x, GANConfig(steps=3, batch_size=16, ema_decay=0.5, progress=False))
    trainer.fit()
    before = {k: v.clone() for k, v in trainer.ema.state_dict().items()}
    sampler = trainer.sampling_generator()
    assert sampler is not trainer.ema.module
    assert not torch.allclose(sampler.net[1].running_mean, trainer.ema.module.net[1].running_mean)
    trainer.sample(8)
    assert all(torch.equal(before[k], v) for k, v in trainer.ema.state_dict().items())
    assert trainer.sampling_generator() is sampler  # one copy per step
    assert trainer.sampling_generator(ema=False) is trainer.generator


def test_load_model_gives_the_ema_generator_with_fresh_statistics(tmp_path):
    torch.manual_seed(0)
    x = torch.rand(64, 1, 28, 28) * 2 - 1
    trainer = GANTrainer(models.DCGANGenerator(8, 28, 1, 4), models.DCGANDiscriminator(28, 1, 4), x,
                         GANConfig(steps=3, batch_size=16, ema_decay=0.5, progress=False,
                                   checkpoint_path=str(tmp_path / "c.safetensors")))
    trainer.fit()
    G = load_model(tmp_path / "c.safetensors")
    z = torch.randn(4, 8)
    assert torch.allclose(G(z), trainer.sample(z=z), atol=1e-6)


def test_seeds_keeps_other_processes_rows(tmp_path, monkeypatch):
    out = tmp_path / "seeds.json"
    out.write_text(json.dumps({"train_command": pretrained.RECIPES["dcgan-mnist"].train_command(), "runs": [
        {"seed": 5, "from": "another process", "date": "2026-01-01", "ema": {"fid": 10.0, "inception_score": 9.0,
                                                                               "precision": 0.8, "recall": 0.7}}]}))
    monkeypatch.setattr(pretrained, "info", lambda name: (_ for _ in ()).throw(pretrained.PretrainedError("none")))

    class FakeTrainer:
        ema = None
        def sampling_generator(self, ema):
            return None

    seeds_trained = []
    monkeypatch.setattr(pretrained, "_train", lambda recipe, out, every: (
        seeds_trained.append(recipe.spec.seed) or FakeTrainer(), None, 1.0))
    monkeypatch.setattr(pretrained, "measure", lambda G: {"fid": 20.0, "inception_score": 8.0, "precision": 0.6,
                                                          "recall": 0.5})
    result = pretrained.seeds("dcgan-mnist", [7], out)
    assert [r["seed"] for r in result["runs"]] == [5, 7] and seeds_trained == [7]
    assert result["summary"]["ema_fid"]["mean"] == 15.0
    assert result["summary"]["ema_fid"]["std"] == pytest.approx(math.sqrt(50.0))


def test_models_ship_in_float16_and_load_as_the_rounded_float32_model(tmp_path):
    from safetensors.torch import load_file

    torch.manual_seed(0)
    G = models.MLPGenerator(4, 6, hidden=(8,), batchnorm=True)
    stored = pretrained.as_stored(G)
    for (k, a), b in zip(G.state_dict().items(), stored.state_dict().values()):
        if a.is_floating_point():
            assert torch.equal(b, a.half().float()), k
    pretrained.RECIPES["tiny-test"] = pretrained.Recipe(pretrained.RunSpec("ring"), steps=1)
    try:
        pretrained.save("tiny-test", stored, {"name": "tiny-test"}, tmp_path, dtype=pretrained.STORED_DTYPE)
        raw = load_file(str(tmp_path / "tiny-test.safetensors"))
        assert {v.dtype for v in raw.values() if v.is_floating_point()} == {torch.float16}
        loaded = pretrained.load("tiny-test", tmp_path)
        assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), stored.state_dict().values()))
        assert next(loaded.parameters()).dtype == torch.float32
    finally:
        del pretrained.RECIPES["tiny-test"]


def test_the_shipped_vae_records_its_likelihood():
    record = pretrained.info("vae-mnist")
    lik = record["likelihood"]
    assert lik["k"] == pretrained.NLL_SAMPLES
    assert lik["nll_iwae"] <= lik["negative_elbo"]  # the IWAE bound is tighter than the ELBO
    assert 0 < lik["active_units"] <= lik["latent_dim"]
    vae = pretrained.load("vae-mnist")
    assert isinstance(vae, models.VAE) and vae.likelihood == "bernoulli"


def test_names_by_kind():
    assert pretrained.names("vae") == ["vae-mnist"]
    assert set(pretrained.names("gan")) == {"mlp-mnist", "dcgan-mnist", "cdcgan-mnist"}
    assert pretrained.names() == sorted(pretrained.names("gan") + pretrained.names("vae"))
    with pytest.raises(ValueError, match="kind"):
        pretrained.names("diffusion")


def test_make_resumed_after_an_interruption_ships_the_same_weights(tmp_path, monkeypatch, single_thread):
    from safetensors.torch import load_file

    images = torch.rand(64, 1, 28, 28) * 2 - 1
    monkeypatch.setattr("ganlib.spec.load_data", lambda dataset: (images, torch.zeros(64, dtype=torch.long)))
    # a stand-in for the MNIST metrics: a number that depends on every weight of the measured generator
    monkeypatch.setattr(pretrained, "measure", lambda G, n=0, seed=0, full=True: {
        "fid": float(sum(p.detach().double().sum() for p in G.parameters())), "inception_score": 1.0})
    monkeypatch.setattr(pretrained, "CHECKPOINT_EVERY", 2)
    recipe = pretrained.Recipe(pretrained.RunSpec("mnist", "dcgan", base_width=4, batch_size=16), steps=6,
                               ema_decay=0.9)
    monkeypatch.setitem(pretrained.RECIPES, "tiny-test", recipe)
    whole = pretrained.make("tiny-test", tmp_path / "whole", tmp_path / "run-whole", track_every=2)
    # the same recipe stopped after step 4 (a shorter --steps stands in for the interruption), then resumed
    monkeypatch.setitem(pretrained.RECIPES, "tiny-test", dataclasses.replace(recipe, steps=4))
    pretrained.make("tiny-test", tmp_path / "part", tmp_path / "run-part", track_every=2)
    monkeypatch.setitem(pretrained.RECIPES, "tiny-test", recipe)
    resumed = pretrained.make("tiny-test", tmp_path / "part", tmp_path / "run-part", track_every=2, resume=True)
    a = load_file(str(tmp_path / "whole" / "tiny-test.safetensors"))
    b = load_file(str(tmp_path / "part" / "tiny-test.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [r["step"] for r in resumed["fid_over_training"]] == [2, 4, 6]
    assert resumed["fid_over_training"] == whole["fid_over_training"]
    assert resumed["steps"] == 6 and resumed["wall_time_s"] > 0
    with pytest.raises(pretrained.PretrainedError, match="--run-dir"):
        pretrained.make("tiny-test", tmp_path / "x", resume=True)


def _copy_shipped(tmp_path, name="mlp-mnist"):
    import shutil

    for suffix in (".safetensors", ".json"):
        shutil.copy(pretrained.WEIGHTS_DIR / f"{name}{suffix}", tmp_path / f"{name}{suffix}")
    return tmp_path


def _rename(folder, old, new):
    for suffix in (".safetensors", ".json"):
        (folder / f"{old}{suffix}").rename(folder / f"{new}{suffix}")


def _nan_weights(folder, name="mlp-mnist"):
    from safetensors.torch import load_file, save_file

    path = folder / f"{name}.safetensors"
    with pretrained.safe_open(str(path), "pt") as f:
        metadata = f.metadata()
    tensors = load_file(str(path))
    first = next(k for k, v in tensors.items() if v.is_floating_point())
    tensors[first] = torch.full_like(tensors[first], float("nan"))
    save_file(tensors, str(path), metadata=metadata)
    record = json.loads((folder / f"{name}.json").read_text())
    (folder / f"{name}.json").write_text(json.dumps({**record, "sha256": pretrained.file_sha256(path)}))


def _pickle_behind_its_hash(folder, name="mlp-mnist"):
    path = folder / f"{name}.safetensors"
    torch.save({"w": torch.ones(2)}, path)
    record = json.loads((folder / f"{name}.json").read_text())
    (folder / f"{name}.json").write_text(json.dumps({**record, "sha256": pretrained.file_sha256(path)}))


@pytest.mark.parametrize("damage, name, phrase", [
    (lambda f: _rename(f, "mlp-mnist", "dcgan-mnist"), "dcgan-mnist", "is the record of 'mlp-mnist', not of 'dcgan-mnist'"),
    (_nan_weights, "mlp-mnist", "has non-finite weights"),
    (_pickle_behind_its_hash, "mlp-mnist", "is not a ganlib model file"),
])
def test_load_refuses_files_that_are_not_the_named_model(tmp_path, damage, name, phrase):
    folder = _copy_shipped(tmp_path)
    damage(folder)
    with pytest.raises(pretrained.PretrainedError, match=re.escape(phrase)) as info:
        pretrained.load(name, folder)
    assert "python -m ganlib.pretrained make" in str(info.value)


def test_check_says_when_a_record_has_no_metrics(tmp_path):
    folder = _copy_shipped(tmp_path)
    record = json.loads((folder / "mlp-mnist.json").read_text())
    del record["metrics"]
    (folder / "mlp-mnist.json").write_text(json.dumps(record))
    with pytest.raises(pretrained.PretrainedError, match="records no metrics"):
        pretrained.check("mlp-mnist", folder)


@pytest.mark.parametrize("argv, phrase", [
    (["make", "dcgan-mnist", "--threads", "0"], "--threads: expected an integer >= 1, got '0'"),
    (["make", "dcgan-mnist", "--folder", "{file}/weights"], "--folder: {file} is a file, not a folder"),
    (["make", "dcgan-mnist", "--resume"], "--resume continues the run kept in --run-dir"),
    (["make", "dcgan-mnist", "--run-dir", "{locked}"], "--run-dir {locked} is in use by another run"),
    (["seeds", "dcgan-mnist", "--seeds", "-1"], "--seeds: expected an integer >= 0"),
    (["seeds", "dcgan-mnist", "--out", "{file}/seeds.json"], "--out: {file} is a file, not a folder"),
    (["check", "nosuch"], "no shipped model 'nosuch'"),
])
def test_the_commands_refuse_bad_input_before_training(tmp_path, capsys, monkeypatch, argv, phrase):
    import os
    import socket

    from ganlib.command import LOCK_NAME

    monkeypatch.setattr(pretrained, "make", lambda *a, **k: pytest.fail("trained before refusing"))
    monkeypatch.setattr(pretrained, "seeds", lambda *a, **k: pytest.fail("trained before refusing"))
    (tmp_path / "file").write_text("x")
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked" / LOCK_NAME).write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))
    paths = {"file": tmp_path / "file", "locked": tmp_path / "locked"}
    with pytest.raises(SystemExit) as info:
        pretrained.main([a.format(**paths) for a in argv])
    err = capsys.readouterr().err
    assert info.value.code == 2 and phrase.format(**paths) in err, err
    assert err.count("\n") == 1 and "Traceback" not in err
