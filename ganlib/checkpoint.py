"""Checkpoints that are written atomically and load without unpickling anything.

A checkpoint is one `safetensors <https://huggingface.co/docs/safetensors>`_ file. Any nested
structure of dicts, lists, tuples, numbers, strings, None and tensors (model and optimizer state
dicts, RNG states, histories, configs) is split in two: its tensors are stored as safetensors
tensors, and the rest as JSON in the file's metadata, with a placeholder where each tensor was.
Loading parses JSON and raw tensor bytes: no Python object is ever unpickled, so a checkpoint cannot
run code on load.

:func:`load_checkpoint` also reads plain ``torch.save`` files of tensors (e.g. state dicts), but
only through ``torch.load(weights_only=True)``; a file that holds any other pickled object (which
could run code when unpickled) is refused with :class:`UnsafeCheckpointError`.

:func:`save_checkpoint` writes to a temporary file in the same folder, flushes it to disk, then
renames it over the target with ``os.replace``, which is atomic: a crash mid-write leaves the
previous checkpoint intact.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch

FORMAT = "ganlib-checkpoint-v1"


class CheckpointError(RuntimeError):
    """A checkpoint could not be read; the message says why."""


class UnsafeCheckpointError(CheckpointError):
    """The file holds pickled objects that could run code on load; it was not loaded."""


# ----------------------------------------------------------------------------- nested state <-> (JSON, tensors)


def _flatten(obj, tensors: dict, path: str):
    """Replace tensors in ``obj`` by {"__tensor__": key}, collecting them into ``tensors``."""
    if isinstance(obj, torch.Tensor):
        key = path or "root"
        # own, contiguous CPU copies: safetensors refuses tensors that share memory
        tensors[key] = obj.detach().to("cpu", copy=True).contiguous()
        return {"__tensor__": key}
    if isinstance(obj, dict):
        for k in obj:
            if not isinstance(k, (str, int)) or isinstance(k, bool):
                raise TypeError(f"checkpoint dict keys must be str or int; got {k!r} at {path or 'root'}")
        return {"__dict__": [[k, _flatten(v, tensors, f"{path}/{k}")] for k, v in obj.items()]}
    if isinstance(obj, tuple):
        return {"__tuple__": [_flatten(v, tensors, f"{path}/{i}") for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_flatten(v, tensors, f"{path}/{i}") for i, v in enumerate(obj)]
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
            return tensors[obj["__tensor__"]]
        if "__tuple__" in obj:
            return tuple(_unflatten(v, tensors) for v in obj["__tuple__"])
        if "__dict__" in obj:
            return {k: _unflatten(v, tensors) for k, v in obj["__dict__"]}
        if "__dtype__" in obj:
            return getattr(torch, obj["__dtype__"])
        raise CheckpointError(f"malformed checkpoint structure: {sorted(obj)}")
    return obj


# ----------------------------------------------------------------------------- save / load


def save_checkpoint(state: dict, path: str | os.PathLike) -> Path:
    """Write ``state`` (nested dicts/lists of tensors and plain values) to ``path`` atomically."""
    from safetensors.torch import save

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    structure = _flatten(state, tensors, "")
    blob = save(tensors, metadata={"format": FORMAT, "structure": json.dumps(structure)})
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".ckpt.tmp", dir=path.parent)
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
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _is_safetensors(path: Path) -> bool:
    # safetensors: 8-byte little-endian header length, then a JSON header starting with "{"
    with open(path, "rb") as f:
        head = f.read(9)
    return len(head) == 9 and head[8:9] == b"{"


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a checkpoint written by :func:`save_checkpoint` (tensors on the CPU).

    Also reads ``torch.save`` files of plain tensors/containers with ``weights_only=True``;
    anything else raises :class:`UnsafeCheckpointError` without running the file's code.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    if _is_safetensors(path):
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt", device="cpu") as f:
                meta = f.metadata() or {}
                tensors = {k: f.get_tensor(k) for k in f.keys()}
        except Exception as err:
            raise CheckpointError(f"{path} is not a readable safetensors file: {err}") from None
        if meta.get("format") != FORMAT:
            return tensors  # a plain safetensors file of tensors (e.g. published weights)
        return _unflatten(json.loads(meta["structure"]), tensors)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle.UnpicklingError (unsafe globals), or not a torch file at all
        raise UnsafeCheckpointError(
            f"refused to load {path}: it is not a ganlib (safetensors) checkpoint, and "
            f"torch.load(weights_only=True) rejected it ({type(err).__name__}: {str(err).splitlines()[0]}). "
            "Such a file can hold pickled Python objects that run code when loaded. Use checkpoints "
            "written by ganlib (trainer.save / save_checkpoint); if you wrote this file yourself and "
            "trust it, re-save its tensors with ganlib.checkpoint.save_checkpoint."
        ) from None


def load_model(path: str | os.PathLike, name: str | None = None, ema: bool = True) -> torch.nn.Module:
    """Rebuild one model from a trainer checkpoint, in eval mode on the CPU.

    ``name`` is ``"generator"``, ``"discriminator"`` or ``"vae"`` (default: the generator, or
    the VAE). With ``ema=True`` the generator gets the EMA weights when the run kept them.
    """
    from .models import build_model

    state = load_checkpoint(path)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a ganlib trainer checkpoint")
    name = name or ("generator" if "generator" in state["models"] else "vae")
    if name not in state["models"]:
        raise KeyError(f"the checkpoint has no model {name!r}; it has {sorted(state['models'])}")
    model = build_model(state["specs"][name])
    weights = state["models"][name]
    if ema and name == "generator" and state.get("ema") is not None:
        weights = {k.removeprefix("module."): v for k, v in state["ema"].items() if k.startswith("module.")}
    model.load_state_dict(weights)
    return model.eval()
