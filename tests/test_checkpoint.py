"""ganlib.checkpoint: round trips, atomic writes, and refusing files that would run code on load."""
import os

import pytest
import torch

from ganlib.checkpoint import (CheckpointError, UnsafeCheckpointError, load_checkpoint, load_model,
                               save_checkpoint)

pytestmark = pytest.mark.usefixtures("single_thread")

MARKER = []


def _marker(path):
    """What the malicious pickle calls on load: it would create ``path``."""
    MARKER.append(path)
    open(path, "w").close()
    return "pwned"


class Malicious:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (_marker, (self.path,))


def test_round_trip_keeps_structure_types_and_bits(tmp_path):
    state = {
        "w": torch.randn(3, 4),
        "scalar": torch.tensor(2.5),
        "bf16": torch.randn(5).to(torch.bfloat16),
        "flags": torch.tensor([True, False]),
        "rng": torch.Generator().manual_seed(3).get_state(),
        "optim": {"state": {0: {"step": torch.tensor(7.0), "exp_avg": torch.ones(2)}},
                  "param_groups": [{"lr": 2e-4, "betas": (0.5, 0.999), "params": [0], "fused": None}]},
        "history": {"loss": [0.1, float("nan"), 1e-300], "step": [1, 2, 3]},
        "name": "run", "ok": True,
    }
    path = save_checkpoint(state, tmp_path / "a" / "ckpt.safetensors")
    back = load_checkpoint(path)
    assert back.keys() == state.keys()
    for k in ("w", "scalar", "bf16", "flags", "rng"):
        assert back[k].dtype == state[k].dtype and torch.equal(back[k], state[k])
    assert list(back["optim"]["state"]) == [0]  # int keys stay ints
    assert back["optim"]["param_groups"][0]["betas"] == (0.5, 0.999)  # tuples stay tuples
    assert back["optim"]["param_groups"][0]["fused"] is None
    assert back["history"]["loss"][2] == 1e-300 and back["history"]["loss"][1] != back["history"]["loss"][1]
    assert back["name"] == "run" and back["ok"] is True


def test_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.safetensors"
    save_checkpoint({"x": torch.zeros(3)}, path)

    def crash(*args):
        raise OSError("disk unplugged")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk unplugged"):
        save_checkpoint({"x": torch.ones(3)}, path)
    monkeypatch.undo()
    assert torch.equal(load_checkpoint(path)["x"], torch.zeros(3))  # the old checkpoint is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.safetensors"]  # no temp file left


def test_pickle_that_runs_code_is_refused(tmp_path):
    marker = tmp_path / "marker"
    evil = tmp_path / "evil.pt"
    torch.save({"weights": torch.zeros(2), "payload": Malicious(str(marker))}, evil)
    MARKER.clear()
    with pytest.raises(UnsafeCheckpointError, match="refused to load") as err:
        load_checkpoint(evil)
    assert "run code" in str(err.value)
    assert not marker.exists() and MARKER == []
    # a raw (non-zip) pickle is refused too
    import pickle

    raw = tmp_path / "evil.pkl"
    raw.write_bytes(pickle.dumps(Malicious(str(marker)), protocol=2))
    with pytest.raises(UnsafeCheckpointError):
        load_checkpoint(raw)
    assert not marker.exists() and MARKER == []


def test_plain_state_dict_loads_with_weights_only(tmp_path):
    sd = torch.nn.Linear(3, 2).state_dict()
    torch.save(sd, tmp_path / "linear.pt")
    back = load_checkpoint(tmp_path / "linear.pt")
    assert all(torch.equal(back[k], sd[k]) for k in sd)


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "nope.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes((50).to_bytes(8, "little") + b"{not json")
    with pytest.raises(CheckpointError):
        load_checkpoint(bad)
    with pytest.raises(TypeError, match="cannot store"):
        save_checkpoint({"obj": object()}, tmp_path / "x.safetensors")


def test_load_model_prefers_ema(tmp_path):
    from ganlib.data import gaussian_ring
    from ganlib.models import MLPDiscriminator, MLPGenerator
    from ganlib.train import GANConfig, GANTrainer

    torch.manual_seed(0)
    config = GANConfig(steps=4, batch_size=8, ema_decay=0.5, device="cpu", progress=False,
                       checkpoint_path=str(tmp_path / "run.safetensors"))
    trainer = GANTrainer(MLPGenerator(2, 2, hidden=(8,)), MLPDiscriminator(2, hidden=(8,)), gaussian_ring(), config)
    trainer.fit()
    ema, raw = load_model(tmp_path / "run.safetensors"), load_model(tmp_path / "run.safetensors", ema=False)
    z = torch.randn(5, 2)
    with torch.no_grad():
        assert torch.equal(ema(z), trainer.ema.module(z))
        assert torch.equal(raw(z), trainer.generator(z))
        assert not torch.equal(ema(z), raw(z))
