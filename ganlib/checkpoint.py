"""Checkpoints that are written atomically, checked on load, and load without unpickling anything.

A checkpoint is one `safetensors <https://huggingface.co/docs/safetensors>`_ file. Any nested
structure of dicts, lists, tuples, numbers, strings, None and tensors (model and optimizer state
dicts, RNG states, histories, configs) is split in two: its tensors are stored as safetensors
tensors named ``t0``, ``t1``, ... in the order they occur, and the rest as JSON in the file's
metadata, with a placeholder naming the tensor where each one was. (Names by position, not by path,
so keys such as ``1`` and ``"1"``, or keys containing ``/``, cannot collide.) The metadata also holds
a SHA-256 checksum of every tensor's name, dtype, shape and bytes, and one of the structure itself
(the step, config, history and run spec stored beside the tensors), both verified on load, so a
damaged or edited file is refused instead of resuming a run from silently wrong weights or a
wrong step. Metadata that ganlib does not write, and placeholders it does not write (a ``dtype``
that names some other torch attribute), are refused too. Loading parses JSON and raw
tensor bytes: no Python object is ever unpickled, so a checkpoint cannot run code on load.

:func:`load_checkpoint` also reads plain ``torch.save`` files of tensors (e.g. state dicts), but
only through ``torch.load(weights_only=True)``; a file that holds any other pickled object (which
could run code when unpickled) is refused with :class:`UnsafeCheckpointError`. Any other unreadable
file raises :class:`CheckpointError` with what is wrong with it: empty or truncated, corrupt, or not
a checkpoint at all.

:func:`save_checkpoint` refuses a state with a NaN or inf tensor (:class:`NonFiniteCheckpointError`),
writes to a temporary file in the same folder, flushes it to disk, then renames it over the target
with ``os.replace``, which is atomic: a crash mid-write leaves the previous checkpoint intact. It
then syncs the folder (so the rename itself survives a power cut) and removes temporary files that
earlier crashed writes to the same target left behind.
"""
from __future__ import annotations

import glob
import hashlib
import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save

from .models import build_model, refresh_batch_norm

FORMAT = "ganlib-checkpoint-v1"
# Files written before tensors were named by position (path names like "/models/generator/w") and
# before the checksum still load: placeholders name whichever key was stored, and a missing
# checksum is not checked. New files stay readable by older ganlib versions for the same reason, so
# the format name is unchanged.
_CHECKSUM_KEY = "checksum"
_STRUCTURE_CHECKSUM_KEY = "structure_checksum"  # the header's own checksum; files of older ganlib lack it
_CHECKSUM_ALGO = "sha256"
_METADATA_KEYS = {"format", "structure", _CHECKSUM_KEY, _STRUCTURE_CHECKSUM_KEY}  # all that save_checkpoint writes
_MIN_SIZE = 9  # 8-byte header length + "{": nothing shorter is a safetensors or torch.save file
_TMP_SUFFIX = ".ckpt.tmp"

__all__ = ["FORMAT", "CheckpointError", "UnsafeCheckpointError", "NonFiniteCheckpointError",
           "save_checkpoint", "load_checkpoint", "load_model", "check_trainer_state", "load_trainer_state"]


class CheckpointError(RuntimeError):
    """A checkpoint could not be read (or written); the message says why."""


class UnsafeCheckpointError(CheckpointError):
    """The file holds pickled objects that could run code on load; it was not loaded."""


class NonFiniteCheckpointError(CheckpointError):
    """:func:`save_checkpoint` was given a state with a NaN or inf tensor and wrote nothing.

    ``key`` is that tensor's path in the state, e.g. ``"optimizers/discriminator/state/0/exp_avg_sq"``.
    """

    def __init__(self, message: str, key: str):
        super().__init__(message)
        self.key = key

    def __reduce__(self):  # keep .key when the error crosses a process boundary (pickled)
        return type(self), (str(self), self.key)


# ----------------------------------------------------------------------------- nested state <-> (JSON, tensors)


def _join(path: str, key) -> str:
    return f"{path}/{key}" if path else str(key)


def _flatten(obj, tensors: dict, paths: dict, path: str):
    """Replace tensors in ``obj`` by {"__tensor__": name}, collecting them into ``tensors``.

    Storage names are positions (``t0``, ``t1``, ...), which cannot collide; ``paths`` maps each
    name to its human-readable path in the state, for error messages only.
    """
    if isinstance(obj, torch.Tensor):
        name = f"t{len(tensors)}"
        # own, contiguous CPU copies: safetensors refuses tensors that share memory
        tensors[name] = obj.detach().to("cpu", copy=True).contiguous()
        paths[name] = path or "root"
        return {"__tensor__": name}
    if isinstance(obj, dict):
        for k in obj:
            if not isinstance(k, (str, int)) or isinstance(k, bool):
                raise TypeError(f"checkpoint dict keys must be str or int; got {k!r} at {path or 'root'}")
        return {"__dict__": [[k, _flatten(v, tensors, paths, _join(path, k))] for k, v in obj.items()]}
    if isinstance(obj, tuple):
        return {"__tuple__": [_flatten(v, tensors, paths, _join(path, i)) for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_flatten(v, tensors, paths, _join(path, i)) for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, torch.dtype):
        return {"__dtype__": str(obj).removeprefix("torch.")}
    raise TypeError(f"cannot store {type(obj).__name__} at {path or 'root'} in a checkpoint; "
                    "convert it to tensors, numbers, strings, lists or dicts first")


def _unflatten(obj, tensors: dict):
    if isinstance(obj, list):
        return [_unflatten(v, tensors) for v in obj]
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return tensors[obj["__tensor__"]]  # KeyError: a placeholder without its tensor (caller reports)
        if "__tuple__" in obj:
            return tuple(_unflatten(v, tensors) for v in obj["__tuple__"])
        if "__dict__" in obj:
            return {k: _unflatten(v, tensors) for k, v in obj["__dict__"]}
        if "__dtype__" in obj:
            dtype = getattr(torch, str(obj["__dtype__"]), None)
            if not isinstance(dtype, torch.dtype):  # never hand back another torch attribute (a function, say)
                raise CheckpointError(f"malformed checkpoint structure: {obj['__dtype__']!r} is not a torch dtype")
            return dtype
        raise CheckpointError(f"malformed checkpoint structure: {sorted(obj)}")
    return obj


def _checksum(tensors: dict) -> str:
    """SHA-256 over every tensor's name, dtype, shape and bytes, in sorted name order.

    Computed from the tensors themselves rather than from the file's byte layout, so it does not
    depend on how safetensors orders or pads the data, and save and load hash the same thing.
    """
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        data = t.reshape(-1).view(torch.uint8).numpy()  # raw bytes of any dtype (bf16 too), no copy
        # length-prefixed fields: no two different tensors hash the same byte stream
        h.update(f"{len(name)}:{name}|{t.dtype}|{tuple(t.shape)}|{data.nbytes}|".encode())
        h.update(memoryview(data))
    return f"{_CHECKSUM_ALGO}:{h.hexdigest()}"


def _structure_checksum(structure_json: str) -> str:
    """SHA-256 of the header's structure (the JSON text, as stored): step, config, history, run spec."""
    return f"{_CHECKSUM_ALGO}:{hashlib.sha256(structure_json.encode()).hexdigest()}"


def _first_non_finite(tensors: dict) -> str | None:
    """Name of the first floating-point tensor (in storage order) holding a NaN or inf, else None."""
    for name, t in tensors.items():  # insertion order = position in the state
        # on the CPU copies _flatten made: no extra device sync, and integer/bool tensors (RNG
        # states, steps) cannot be non-finite
        if (t.is_floating_point() or t.is_complex()) and not bool(torch.isfinite(t).all()):
            return name
    return None


# ----------------------------------------------------------------------------- save


def save_checkpoint(state: dict, path: str | os.PathLike, require_finite: bool = True) -> Path:
    """Write ``state`` (nested dicts/lists of tensors and plain values) to ``path`` atomically.

    With ``require_finite`` (the default) a state whose floating-point tensors are not all finite
    raises :class:`NonFiniteCheckpointError` (its ``.key`` names the tensor) and nothing is written:
    the previous checkpoint at ``path`` stays as it was. After the write, temporary files of earlier
    crashed writes to the same ``path`` are removed (one writer per target is assumed).
    """
    path = Path(path)
    tensors: dict[str, torch.Tensor] = {}
    paths: dict[str, str] = {}
    structure = _flatten(state, tensors, paths, "")
    if require_finite:
        bad = _first_non_finite(tensors)
        if bad is not None:
            t = tensors[bad]
            raise NonFiniteCheckpointError(
                f"refused to write the checkpoint {path}: the tensor at {paths[bad]!r} (shape "
                f"{tuple(t.shape)}, {int((~torch.isfinite(t)).sum())} of {t.numel()} values NaN or inf) "
                "is not finite; the previous checkpoint is kept. A NaN/inf state usually means training "
                "diverged (pass require_finite=False to write it anyway, e.g. for debugging).",
                paths[bad])
    structure_json = json.dumps(structure)
    metadata = {"format": FORMAT, "structure": structure_json, _CHECKSUM_KEY: _checksum(tensors),
                _STRUCTURE_CHECKSUM_KEY: _structure_checksum(structure_json)}
    blob = save(tensors, metadata=metadata)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=_TMP_SUFFIX, dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    _fsync_dir(path.parent)
    _remove_stale_temp_files(path)
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    """Flush the folder's entry for the renamed file, so the rename survives a power cut too.

    Best effort: Windows cannot open a directory (os.open raises), and some file systems refuse to
    fsync one; the data itself was already fsynced, so skipping only weakens the rename's durability.
    """
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _remove_stale_temp_files(path: Path) -> None:
    """Delete ``{path.name}.*.ckpt.tmp`` files: what writes to ``path`` that crashed left behind.

    Runs after this save's own temp file was renamed, so every match belongs to an earlier write
    (a second process writing the same target at the same moment is not supported: the two would
    overwrite each other's checkpoints anyway). Only this target's pattern is touched, never other
    checkpoints' temp files. Best effort: a file that cannot be removed does not fail the save.
    """
    for stale in glob.glob(os.path.join(glob.escape(str(path.parent)), glob.escape(path.name) + ".*" + _TMP_SUFFIX)):
        try:
            os.remove(stale)
        except OSError:
            pass


# ----------------------------------------------------------------------------- load


def _read_safetensors_header(path: Path, size: int) -> dict:
    """Parse and sanity-check a safetensors header, so damage gets a precise message.

    safetensors itself would also refuse these files, but with messages such as "incomplete
    metadata, file not fully covered" that do not say the file is truncated.
    """
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        if n > size - 8:
            raise CheckpointError(
                f"{path} is corrupt or truncated: its header says it is {n} bytes long, but the file has "
                f"only {size - 8} bytes after the 8-byte length field. Use an earlier checkpoint or retrain.")
        raw = f.read(n)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{path} is corrupt or truncated: its safetensors header is not valid JSON "
                              f"({err}). Use an earlier checkpoint or retrain.") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path} is corrupt or truncated: its safetensors header is not a JSON object")
    end = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            end = max(end, int(info["data_offsets"][1]))
        except (TypeError, KeyError, IndexError, ValueError):
            raise CheckpointError(f"{path} is corrupt: the header entry of tensor {name!r} has no valid "
                                  "data_offsets. Use an earlier checkpoint or retrain.") from None
    available = size - 8 - n
    if end > available:
        raise CheckpointError(
            f"{path} is truncated: its tensors need {end} bytes of data but the file holds only "
            f"{available} ({size} bytes in all); the write was probably cut off. Use an earlier "
            "checkpoint or retrain.")
    return header


def _load_safetensors(path: Path, size: int):
    _read_safetensors_header(path, size)
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as err:
        raise CheckpointError(f"{path} is corrupt: safetensors could not read it ({err}). "
                              "Use an earlier checkpoint or retrain.") from None
    if meta.get("format") != FORMAT:
        return tensors  # a plain safetensors file of tensors (e.g. published weights)
    unknown = sorted(set(meta) - _METADATA_KEYS)
    if unknown:
        raise CheckpointError(f"{path} is corrupt: its header holds metadata that ganlib does not write "
                              f"({', '.join(map(repr, unknown))}). Use an earlier checkpoint or retrain.")
    expected = meta.get(_STRUCTURE_CHECKSUM_KEY)
    if expected is not None and _structure_checksum(meta.get("structure", "")) != expected:
        raise CheckpointError(
            f"{path} is corrupt: checksum mismatch in its header (the step, config, history or run spec "
            "stored beside the tensors changed after it was written: a disk, copy or transfer error, or "
            "an edit). Use an earlier checkpoint or retrain.")
    expected = meta.get(_CHECKSUM_KEY)
    if expected is not None:  # older ganlib checkpoints have none
        got = _checksum(tensors)
        if got != expected:
            raise CheckpointError(
                f"{path} is corrupt: checksum mismatch (stored {expected}, the tensor data hashes to "
                f"{got}). The file was damaged after it was written (disk, copy or transfer error); "
                "use an earlier checkpoint or retrain.")
    try:
        structure = json.loads(meta["structure"])
    except KeyError:
        raise CheckpointError(f"{path} is corrupt: it is marked {FORMAT} but has no 'structure' "
                              "metadata. Use an earlier checkpoint or retrain.") from None
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path} is corrupt or truncated: its 'structure' metadata is not valid "
                              f"JSON ({err}). Use an earlier checkpoint or retrain.") from None
    try:
        return _unflatten(structure, tensors)
    except KeyError as err:
        raise CheckpointError(f"{path} is corrupt: its structure refers to tensor {err.args[0]!r}, which "
                              "the file does not hold. Use an earlier checkpoint or retrain.") from None
    except (TypeError, ValueError, AttributeError) as err:
        raise CheckpointError(f"{path} is corrupt: its structure metadata is malformed ({err}). "
                              "Use an earlier checkpoint or retrain.") from None


def _is_torch_file(head: bytes) -> bool:
    # torch.save writes a zip archive ("PK\x03\x04"), or with _use_new_zipfile_serialization=False a
    # pickle stream, which for protocol >= 2 starts with the PROTO opcode \x80 and the protocol number
    return head[:4] == b"PK\x03\x04" or (head[:1] == b"\x80" and 2 <= head[1] <= 5)


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a checkpoint written by :func:`save_checkpoint` (tensors on the CPU).

    Also reads ``torch.save`` files of plain tensors/containers with ``weights_only=True``;
    anything else raises :class:`UnsafeCheckpointError` without running the file's code. A file
    that is empty, truncated, damaged (checksum mismatch) or not a checkpoint at all raises
    :class:`CheckpointError` saying which.
    """
    import pickle

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(_MIN_SIZE)
    if size < _MIN_SIZE:
        raise CheckpointError(f"{path} is empty or truncated ({size} bytes: too short for a safetensors or "
                              "torch.save file). If a write or copy was cut off, use an earlier checkpoint "
                              "or retrain.")
    if head[8:9] == b"{":  # safetensors: 8-byte little-endian header length, then a JSON header
        return _load_safetensors(path, size)
    if not _is_torch_file(head):
        raise CheckpointError(f"{path} is not a checkpoint (neither safetensors nor a torch.save file): "
                              f"it starts with {head[:8]!r}. Pass a file written by ganlib's save_checkpoint "
                              "(or trainer.save) or by torch.save.")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:  # the weights-only unpickler refused a global or opcode
        raise UnsafeCheckpointError(
            f"refused to load {path}: it is not a ganlib (safetensors) checkpoint, and "
            f"torch.load(weights_only=True) rejected it ({type(err).__name__}: {str(err).splitlines()[0]}). "
            "Such a file can hold pickled Python objects that run code when loaded. Use checkpoints "
            "written by ganlib (trainer.save / save_checkpoint); if you wrote this file yourself and "
            "trust it, re-save its tensors with ganlib.checkpoint.save_checkpoint."
        ) from None
    except Exception as err:  # EOFError, RuntimeError("PytorchStreamReader failed ..."), ...
        first = (str(err).strip().splitlines() or [""])[0]
        if head[:1] == b"\x80":  # a raw pickle stream (pickle.dump, or the legacy torch.save) that torch.load refused
            raise UnsafeCheckpointError(
                f"refused to load {path}: it is a Python pickle (whatever its name says), not a ganlib "
                "(safetensors) checkpoint, and ganlib never unpickles files: they can run code when loaded. "
                "Use checkpoints written by ganlib (trainer.save / save_checkpoint).") from None
        raise CheckpointError(
            f"{path} is corrupt or truncated: it looks like a torch.save file, but torch.load could not "
            f"read it ({type(err).__name__}: {first or 'unexpected end of file'}). Use an earlier "
            "checkpoint or re-save it."
        ) from None


def check_trainer_state(state, source="the checkpoint") -> dict:
    """``state`` itself, if it is what a trainer's checkpoint holds; else :class:`CheckpointError`."""
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{source} is not a ganlib trainer checkpoint (written by trainer.save or "
                              "python -m ganlib train); it holds other data")
    return state


def load_trainer_state(path: str | os.PathLike) -> dict:
    """A trainer's checkpoint, read by :func:`load_checkpoint` and checked by :func:`check_trainer_state`."""
    return check_trainer_state(load_checkpoint(path), path)


def load_model(path: str | os.PathLike, name: str | None = None, ema: bool = True) -> torch.nn.Module:
    """Rebuild one model from a trainer checkpoint, in eval mode on the CPU.

    ``name`` is ``"generator"``, ``"discriminator"`` or ``"vae"`` (default: the generator, or
    the VAE). With ``ema=True`` the generator gets the EMA weights when the run kept them, with
    batch-norm statistics re-estimated for them (as :meth:`GANTrainer.sample` does).
    """
    state = load_trainer_state(path)
    name = name or ("generator" if "generator" in state["models"] else "vae")
    if name not in state["models"]:
        raise KeyError(f"the checkpoint has no model {name!r}; it has {sorted(state['models'])}")
    model = build_model(state["specs"][name])
    weights = state["models"][name]
    averaged = ema and name == "generator" and state.get("ema") is not None
    if averaged:
        weights = {k.removeprefix("module."): v for k, v in state["ema"].items() if k.startswith("module.")}
    model.load_state_dict(weights)
    if averaged:  # the EMA's running BN statistics belong to the raw weights: re-estimate them
        refresh_batch_norm(model, seed=int(state["config"].get("seed", 0)) + 3)
    return model.eval()
