"""Bad input gets an early, clear error (issue 11): damaged checkpoints, shapes and values that the
models, losses, metrics and data loader used to accept silently or report misleadingly.

Each case in the tables below asserts the exception type and a phrase of its message (or the
warning); the tests after them check the checkpoint format's guarantees on real files.
"""
import json
import os
import pickle
import re
import stat
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from ganlib import data, losses, metrics, models
from ganlib.checkpoint import (FORMAT, CheckpointError, NonFiniteCheckpointError, UnsafeCheckpointError,
                               load_checkpoint, save_checkpoint)

pytestmark = pytest.mark.usefixtures("single_thread")


# ----------------------------------------------------------------------------- unreadable checkpoint files


def _good_blob(tmp_path: Path) -> bytes:
    path = save_checkpoint({"w": torch.arange(16, dtype=torch.float32), "step": 3}, tmp_path / "good.safetensors")
    return path.read_bytes()


def _structure_blob(tmp_path: Path) -> bytes:
    from safetensors.torch import save

    return save({"t0": torch.zeros(2)}, metadata={"format": FORMAT, "structure": '{"__dict__": [["w", {"__ten'})


def _torch_zip_truncated(tmp_path: Path) -> bytes:
    torch.save({"w": torch.zeros(8)}, tmp_path / "full.pt")
    blob = (tmp_path / "full.pt").read_bytes()
    return blob[: len(blob) // 2]


def _unsafe_pickle(tmp_path: Path) -> bytes:
    # a harmless object whose class is not on torch's weights-only allowlist
    return pickle.dumps(Fraction(1, 3), protocol=2)


UNREADABLE = {
    # name: (file contents from tmp_path, exception type, phrase of the message)
    "empty": (lambda p: b"", CheckpointError, "is empty or truncated"),
    "five_bytes": (lambda p: b"\x01\x02\x03\x04\x05", CheckpointError, "is empty or truncated"),
    "text": (lambda p: b"step,loss\n1,0.69\n2,0.68\n", CheckpointError,
             "is not a checkpoint (neither safetensors nor a torch.save file)"),
    "png": (lambda p: b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64), CheckpointError,
            "is not a checkpoint (neither safetensors nor a torch.save file)"),
    "truncated_header": (lambda p: _good_blob(p)[:40], CheckpointError, "is corrupt or truncated: its header says"),
    "header_not_json": (lambda p: (12).to_bytes(8, "little") + b"{not json!!}", CheckpointError,
                        "is corrupt or truncated: its safetensors header is not valid JSON"),
    "structure_not_json": (_structure_blob, CheckpointError,
                           "is corrupt or truncated: its 'structure' metadata is not valid JSON"),
    "truncated_tensor_data": (lambda p: _good_blob(p)[:-5], CheckpointError, "is truncated: its tensors need"),
    "truncated_torch_zip": (_torch_zip_truncated, CheckpointError, "is corrupt or truncated: it looks like a torch.save"),
    "unsafe_pickle": (_unsafe_pickle, UnsafeCheckpointError, "refused to load"),
}


@pytest.mark.parametrize("case", list(UNREADABLE))
def test_unreadable_checkpoint_gets_an_accurate_message(case, tmp_path):
    make, exc, phrase = UNREADABLE[case]
    path = tmp_path / f"{case}.ckpt"
    path.write_bytes(make(tmp_path))
    with pytest.raises(exc, match=re.escape(phrase)) as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)
    if exc is not UnsafeCheckpointError:  # damage is not reported as a security problem
        assert not isinstance(info.value, UnsafeCheckpointError)
        assert "unsafe" not in str(info.value) and "pickled" not in str(info.value)


# ----------------------------------------------------------------------------- shapes and values


def _dcgan_d():
    return models.DCGANDiscriminator(image_size=28, channels=1, base_width=4)


def _dcgan_g():
    return models.DCGANGenerator(latent_dim=8, image_size=28, base_width=4)


def _mlp_g(**kw):
    return models.MLPGenerator(4, (1, 4, 4), hidden=(8,), **kw)


def _mlp_d(**kw):
    return models.MLPDiscriminator((1, 4, 4), hidden=(8,), **kw)


def _vae():
    return models.VAE((1, 8, 8), latent_dim=3, hidden=(8,))


N = 4
R, F_ = torch.randn(N), torch.randn(N)

# name: (call, exception type, phrase of the message)
RAISES = {
    # models: the input's shape against the configured one
    "dcgan_d_32px_into_28px": (lambda: _dcgan_d()(torch.randn(2, 1, 32, 32)), ValueError,
                               "needs images of shape (N, 1, 28, 28); got shape (2, 1, 32, 32)"),
    "dcgan_d_3_channels_into_1": (lambda: _dcgan_d()(torch.randn(2, 3, 28, 28)), ValueError,
                                  "channels=1) needs images of shape (N, 1, 28, 28)"),
    "dcgan_d_unbatched_image": (lambda: _dcgan_d()(torch.randn(1, 28, 28)), ValueError, "got shape (1, 28, 28)"),
    "dcgan_g_1d_z": (lambda: _dcgan_g()(torch.randn(8)), ValueError, "needs z of shape (N, 8); got shape (8,)"),
    "dcgan_g_4d_z": (lambda: _dcgan_g()(torch.randn(2, 8, 1, 1)), ValueError, "got shape (2, 8, 1, 1)"),
    "mlp_g_1d_z": (lambda: _mlp_g()(torch.randn(4)), ValueError, "needs z of shape (N, 4); got shape (4,)"),
    "mlp_g_wrong_latent_dim": (lambda: _mlp_g()(torch.randn(2, 5)), ValueError, "latent_dim=4"),
    "mlp_d_wrong_size": (lambda: _mlp_d()(torch.randn(2, 1, 5, 5)), ValueError,
                         "needs x of shape (N, 1, 4, 4) (16 values per example); got shape (2, 1, 5, 5)"),
    "mlp_d_unbatched": (lambda: models.MLPDiscriminator(2, hidden=(8,))(torch.randn(2)), ValueError,
                        "got shape (2,)"),
    "labels_wrong_length": (lambda: _mlp_g(num_classes=3)(torch.randn(2, 4), labels=torch.tensor([0, 1, 2])),
                            ValueError, "needs labels of shape (N,) = (2,)"),
    "vae_encode_wrong_image": (lambda: _vae()(torch.randn(2, 1, 28, 28)), ValueError,
                               "image_shape=(1, 8, 8)) needs x of shape (N, 1, 8, 8)"),
    "vae_decode_wrong_z": (lambda: _vae().decode(torch.randn(2, 4)), ValueError, "needs z of shape (N, 3)"),
    # losses: one score per example; equal shapes where two tensors are combined elementwise
    "d_loss_real_n_by_10": (lambda: losses.discriminator_loss("minimax", torch.randn(N, 10), F_), ValueError,
                            "real must hold one discriminator output per example, shape (N,) or (N, 1)"),
    "d_loss_fake_n_by_10": (lambda: losses.discriminator_loss("hinge", R, torch.randn(N, 10)), ValueError,
                            "fake must hold one discriminator output per example"),
    "d_loss_scalar": (lambda: losses.discriminator_loss("wasserstein", R.mean(), F_), ValueError, "got shape ()"),
    "d_loss_empty_batch": (lambda: losses.discriminator_loss("lsgan", torch.zeros(0), F_), ValueError, "N >= 1"),
    "g_loss_n_by_10": (lambda: losses.generator_loss("nonsaturating", torch.randn(N, 10)), ValueError,
                       "got shape (4, 10)"),
    "gradient_penalty_mismatch": (lambda: losses.gradient_penalty(torch.nn.Linear(3, 1), torch.randn(4, 3),
                                                                  torch.randn(1, 3)), ValueError,
                                  "real and fake must have the same shape"),
    "gaussian_kl_mismatch": (lambda: losses.gaussian_kl(torch.zeros(4, 3), torch.zeros(4, 1)), ValueError,
                             "got mu (4, 3) and logvar (4, 1)"),
    "gaussian_nll_n1_vs_n": (lambda: losses.reconstruction_nll(torch.zeros(4, 1), torch.zeros(4), "gaussian"),
                             ValueError, "x and decoded must have the same shape"),
    "vae_loss_gaussian_n1_vs_n": (lambda: losses.vae_loss(torch.zeros(4, 1), torch.zeros(4), torch.zeros(4, 2),
                                                          torch.zeros(4, 2), likelihood="gaussian"),
                                  ValueError, "got x (4, 1) and decoded (4,)"),
    "vae_loss_batch_mismatch": (lambda: losses.vae_loss(torch.rand(4, 6), torch.zeros(4, 6), torch.zeros(3, 2),
                                                        torch.zeros(3, 2)), ValueError, "same batch size N"),
    "log_scale_not_broadcastable": (lambda: losses.reconstruction_nll(torch.zeros(4, 6), torch.zeros(4, 6),
                                                                      "gaussian", torch.zeros(4, 6, 2)),
                                    ValueError, "log_scale must broadcast to x's shape (4, 6)"),
    "bernoulli_target_minus_one_one": (lambda: losses.reconstruction_nll(torch.linspace(-1, 1, 12).view(2, 6),
                                                                         torch.zeros(2, 6)), ValueError,
                                       "x (the Bernoulli target) must be in [0, 1]; got values in [-1, 1]"),
    "bernoulli_target_nan": (lambda: losses.reconstruction_nll(torch.full((2, 3), float("nan")), torch.zeros(2, 3)),
                             ValueError, "must be in [0, 1]"),
    # metrics: evaluation functions also check values
    "mode_coverage_no_samples": (lambda: metrics.mode_coverage(torch.zeros(0, 2), data.gaussian_ring().centers, 0.01),
                                 ValueError, "needs at least one sample"),
    "fid_nan_features": (lambda: metrics.frechet_distance_from_features(
        np.r_[np.random.default_rng(0).standard_normal((20, 3)), [[np.nan, 0, 0]]],
        np.random.default_rng(1).standard_normal((20, 3))), ValueError, "features contain NaN/inf"),
    "frechet_distance_inf_sigma": (lambda: metrics.frechet_distance(np.zeros(2), np.diag([1.0, np.inf]),
                                                                    np.zeros(2), np.eye(2)),
                                   ValueError, "sigma1 contains NaN/inf"),
    "precision_recall_nan": (lambda: metrics.precision_recall(torch.full((10, 2), float("nan")), torch.randn(10, 2)),
                             ValueError, "real_features contain NaN/inf"),
    "inception_score_splits_above_n": (lambda: metrics.inception_score(np.full((4, 10), 0.1), splits=5),
                                       ValueError, "splits must be an integer between 1 and N=4"),
    "inception_score_zero_splits": (lambda: metrics.inception_score(np.full((4, 10), 0.1), splits=0),
                                    ValueError, "got splits=0"),
}


@pytest.mark.parametrize("case", list(RAISES))
def test_bad_shape_or_value_raises_naming_it(case):
    call, exc, phrase = RAISES[case]
    with pytest.raises(exc, match=re.escape(phrase)):
        call()


def test_fid_with_fewer_samples_than_dimensions_warns():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((5, 8)), rng.standard_normal((5, 8))
    with pytest.warns(UserWarning, match=r"only n=5 samples of d=8 features: their covariance is singular") as rec:
        metrics.frechet_distance_from_features(a, b)
    assert "not meaningful" in str(rec[0].message) and "at least 9 samples" in str(rec[0].message)
    import warnings

    with warnings.catch_warnings():  # and enough samples do not warn
        warnings.simplefilter("error")
        metrics.frechet_distance_from_features(rng.standard_normal((9, 8)), rng.standard_normal((9, 8)))


def test_valid_inputs_still_pass():
    """The checks refuse only what was wrong: these layouts worked before and still do."""
    D = _dcgan_d()
    assert D(torch.randn(2, 1, 28, 28).to(memory_format=torch.channels_last)).shape == (2,)
    D_mlp = _mlp_d()
    assert D_mlp(torch.randn(2, 16)).shape == D_mlp(torch.randn(2, 1, 4, 4)).shape == (2,)  # flattened anyway
    # (N, 1) scores give the same loss as (N,)
    r, f = torch.randn(5), torch.randn(3)
    for name in losses.LOSSES:
        assert torch.equal(losses.discriminator_loss(name, r[:, None], f[:, None]), losses.discriminator_loss(name, r, f))
    # a Bernoulli target exactly at 0 and 1 is fine, and so is a per-dimension log_scale
    assert losses.reconstruction_nll(torch.tensor([[0.0, 1.0]]), torch.zeros(1, 2)).shape == (1,)
    assert losses.reconstruction_nll(torch.zeros(3, 2), torch.zeros(3, 2), "gaussian", torch.zeros(2)).shape == (3,)
    assert metrics.inception_score(np.eye(4)[np.arange(8) % 4], splits=8) == pytest.approx(1.0)


# ----------------------------------------------------------------------------- damaged MNIST files


def _idx_header(*dims: int) -> bytes:
    return bytes([0, 0, 8, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims)


def test_truncated_mnist_file_is_reported_as_corrupt_not_missing(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-labels-idx1-ubyte"):
        (raw / name).write_bytes(b"")  # torchvision only checks that they exist before reading the split's files
    (raw / "t10k-images-idx3-ubyte").write_bytes(_idx_header(10_000, 28, 28) + bytes(5_000))  # cut off
    with pytest.raises(data.DatasetCorruptError) as info:
        data.load_mnist("test", root=tmp_path, download=False)
    message = str(info.value)
    assert isinstance(info.value, data.DatasetNotFoundError)  # still handled like "no usable data"
    assert f"{raw / 't10k-images-idx3-ubyte'} is truncated" in message and "7,840,016 bytes" in message
    assert "delete" in message and "*-ubyte.gz" in message and str(raw) in message
    assert "is not in" not in message and "\n" not in message


def test_mnist_gz_failing_md5_is_reported_as_corrupt(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    (raw / "t10k-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b" + bytes(100))  # a gzip cut short
    with pytest.raises(data.DatasetCorruptError, match="fails torchvision's MD5 check") as info:
        data.load_mnist("test", root=tmp_path, download=False)
    assert str(raw / "t10k-images-idx3-ubyte.gz") in str(info.value)


def test_really_missing_mnist_is_still_not_found(tmp_path):
    with pytest.raises(data.DatasetNotFoundError) as info:
        data.load_mnist("test", root=tmp_path, download=False)
    assert not isinstance(info.value, data.DatasetCorruptError) and "is not in" in str(info.value)


# ----------------------------------------------------------------------------- checkpoint format guarantees


def test_flipped_byte_in_tensor_data_fails_the_checksum(tmp_path):
    path = save_checkpoint({"w": torch.arange(64, dtype=torch.float32)}, tmp_path / "c.safetensors")
    blob = bytearray(path.read_bytes())
    data_start = 8 + int.from_bytes(blob[:8], "little")
    blob[data_start + 101] ^= 0x10  # inside w's bytes: the file still parses, one value differs
    path.write_bytes(bytes(blob))
    with pytest.raises(CheckpointError, match="corrupt: checksum mismatch") as info:
        load_checkpoint(path)
    assert "earlier checkpoint" in str(info.value) and "damaged" in str(info.value)


def _rewrite_header(path, edit):
    """Apply ``edit`` to the JSON header of the safetensors file at ``path``, keeping the data."""
    import json

    blob = path.read_bytes()
    n = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8:8 + n])
    edit(header["__metadata__"])
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)  # safetensors pads the header to 8 bytes
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + blob[8 + n:])


def _set_step(meta, old=50, new=90):
    meta["structure"] = meta["structure"].replace(f'["step", {old}]', f'["step", {new}]')


def _set_lr(meta):
    meta["structure"] = meta["structure"].replace('["lr_g", 0.0002]', '["lr_g", 0.02]')


def _dtype_to_load(meta):
    meta["structure"] = meta["structure"].replace('{"__dtype__": "float32"}', '{"__dtype__": "load"}')


def _extra_key(meta):
    meta["note"] = "added by hand"


def _older_file(meta):  # what ganlib wrote before the header had its own checksum
    del meta["structure_checksum"]


@pytest.mark.parametrize("edit, phrase", [
    (_set_step, "checksum mismatch in its header"),          # one byte, as a disk error would change it
    (_set_lr, "checksum mismatch in its header"),            # an edited config
    (_extra_key, "metadata that ganlib does not write ('note')"),
])
def test_a_changed_header_is_refused(tmp_path, edit, phrase):
    state = {"step": 50, "config": {"lr_g": 0.0002}, "w": torch.ones(3), "dtype": torch.float32}
    path = save_checkpoint(state, tmp_path / "c.safetensors")
    _rewrite_header(path, edit)
    with pytest.raises(CheckpointError, match=re.escape(phrase)) as info:
        load_checkpoint(path)
    assert "earlier checkpoint" in str(info.value)


def test_a_dtype_placeholder_must_name_a_dtype_and_older_files_still_load(tmp_path):
    state = {"step": 50, "w": torch.ones(3), "dtype": torch.float32}
    path = save_checkpoint(state, tmp_path / "c.safetensors")
    _rewrite_header(path, _older_file)
    assert load_checkpoint(path)["step"] == 50  # no header checksum: an older ganlib's file
    _rewrite_header(path, _dtype_to_load)  # without the header checksum, the placeholder check still holds
    with pytest.raises(CheckpointError, match="'load' is not a torch dtype"):
        load_checkpoint(path)


def test_non_finite_state_is_not_written_and_the_old_file_stays(tmp_path):
    path = tmp_path / "run.safetensors"
    good = {"models": {"d": {"w": torch.ones(3)}},
            "optimizers": {"discriminator": {"state": {0: {"exp_avg_sq": torch.ones(3)}}}}}
    save_checkpoint(good, path)
    before = path.read_bytes()
    bad = {"models": {"d": {"w": torch.ones(3)}},
           "optimizers": {"discriminator": {"state": {0: {"exp_avg_sq": torch.tensor([1.0, float("inf"), 2.0])}}}}}
    with pytest.raises(NonFiniteCheckpointError) as info:
        save_checkpoint(bad, path)
    assert isinstance(info.value, CheckpointError)
    assert info.value.key == "optimizers/discriminator/state/0/exp_avg_sq"
    assert "optimizers/discriminator/state/0/exp_avg_sq" in str(info.value)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.safetensors"]  # no temp file either
    # NaN in bfloat16 too; integer tensors are never "non-finite"
    with pytest.raises(NonFiniteCheckpointError, match="'x'"):
        save_checkpoint({"rng": torch.zeros(4, dtype=torch.uint8), "x": torch.tensor([float("nan")]).bfloat16()},
                        tmp_path / "other.safetensors")
    # opting out writes it
    save_checkpoint(bad, path, require_finite=False)
    assert torch.isinf(load_checkpoint(path)["optimizers"]["discriminator"]["state"][0]["exp_avg_sq"][1])


def test_stale_temp_files_of_the_same_target_are_removed(tmp_path):
    target = tmp_path / "run[1].safetensors"  # glob characters in the name must be taken literally
    stale = [tmp_path / "run[1].safetensors.k3j2_x.ckpt.tmp", tmp_path / "run[1].safetensors.abc.ckpt.tmp"]
    kept = [tmp_path / "other.safetensors.abc.ckpt.tmp", tmp_path / "run1.safetensors.abc.ckpt.tmp",
            tmp_path / "run[1].safetensors.abc.tmp", tmp_path / "run[1].safetensors.bak"]
    for p in stale + kept:
        p.write_bytes(b"half a checkpoint")
    save_checkpoint({"x": torch.zeros(2)}, target)
    assert not any(p.exists() for p in stale)
    assert all(p.exists() for p in kept)
    assert torch.equal(load_checkpoint(target)["x"], torch.zeros(2))


def test_colliding_keys_round_trip(tmp_path):
    state = {1: torch.tensor([1.0]), "1": torch.tensor([2.0]), "a/b": torch.tensor([3.0]),
             "a": {"b": torch.tensor([4.0])}, "/": [torch.tensor([5.0])]}
    back = load_checkpoint(save_checkpoint(state, tmp_path / "c.safetensors"))
    assert list(back) == [1, "1", "a/b", "a", "/"]
    assert [back[1].item(), back["1"].item(), back["a/b"].item(), back["a"]["b"].item(), back["/"][0].item()] == \
        [1.0, 2.0, 3.0, 4.0, 5.0]


def test_checkpoint_written_with_path_names_and_no_checksum_still_loads(tmp_path):
    """The format before issue 11: tensors named by their /-joined path, no checksum."""
    from safetensors.torch import save

    tensors = {"/w": torch.arange(3.0), "/opt/state/0/step": torch.tensor(7.0)}
    structure = {"__dict__": [["w", {"__tensor__": "/w"}],
                              ["opt", {"__dict__": [["state", {"__dict__": [[0, {"__dict__": [
                                  ["step", {"__tensor__": "/opt/state/0/step"}]]}]]}]]}]]}
    path = tmp_path / "old.safetensors"
    path.write_bytes(save(tensors, metadata={"format": FORMAT, "structure": json.dumps(structure)}))
    back = load_checkpoint(path)
    assert torch.equal(back["w"], torch.arange(3.0)) and back["opt"]["state"][0]["step"].item() == 7.0


def test_folder_is_fsynced_after_the_rename_and_skipped_where_it_cannot_be(tmp_path, monkeypatch):
    synced_dirs = []
    real_fsync, real_open = os.fsync, os.open

    def recording_fsync(fd):
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            synced_dirs.append(fd)
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    save_checkpoint({"x": torch.zeros(2)}, tmp_path / "a.safetensors")
    assert len(synced_dirs) == 1

    def no_directories(path, *args, **kwargs):  # what Windows does
        if os.path.isdir(path):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", no_directories)
    save_checkpoint({"x": torch.ones(2)}, tmp_path / "a.safetensors")
    assert torch.equal(load_checkpoint(tmp_path / "a.safetensors")["x"], torch.ones(2))
    assert len(synced_dirs) == 1


def test_checksum_covers_names_and_shapes_not_only_bytes(tmp_path):
    """Swapping two same-sized tensors' data, or reshaping one, keeps the bytes but not the checksum."""
    from ganlib.checkpoint import _checksum

    a, b = torch.arange(4.0), torch.arange(4.0) + 10
    base = _checksum({"t0": a, "t1": b})
    assert base.startswith("sha256:")
    assert _checksum({"t0": b, "t1": a}) != base
    assert _checksum({"t0": a.view(2, 2), "t1": b}) != base
    assert _checksum({"t0": a.to(torch.int32), "t1": b}) != base


def test_a_pickle_named_safetensors_is_called_a_pickle_and_not_loaded(tmp_path):
    path = tmp_path / "checkpoint.safetensors"
    path.write_bytes(pickle.dumps({"w": [1, 2]}))
    with pytest.raises(UnsafeCheckpointError, match="it is a Python pickle .* never unpickles"):
        load_checkpoint(path)
