"""A trainer's state: what its checkpoint holds, writing it, and restoring a trainer from it.

A checkpoint holds everything a run needs to continue exactly: models, optimizers, EMA, step,
history, the RNG states (torch's global one and the trainer's two generators), the
:class:`~ganlib.data.DeviceLoader` position, the config, each model's spec (so the models can be
rebuilt without the code that built them) and the run's spec (``"run"``, see
:class:`ganlib.spec.RunSpec`; the trainer keeps it without reading it). On the CPU, at the same
number of torch threads, a resumed run is bitwise equal to an uninterrupted one.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from .. import distributed
from ..checkpoint import FORMAT, NonFiniteCheckpointError, check_trainer_state, load_trainer_state, save_checkpoint
from ..models import build_model
from .config import config_from_checkpoint
from .step_log import NonFiniteLossError


def set_learning_rate(group: dict, value: float) -> None:
    """Set one optimizer param group's learning rate to ``value``.

    Under ``cuda_graph=True`` the rate is a one-element device tensor that the captured optimizer
    step reads at every replay: a Python float would be baked into the graph when it is captured,
    and later changes would be silently ignored. So a tensor rate is changed in place, never
    replaced by another object (the graph would go on reading the old one).
    """
    if isinstance(group["lr"], torch.Tensor):
        group["lr"].fill_(value)
    else:
        group["lr"] = value


def trainer_state(trainer) -> dict:
    """Everything needed to resume ``trainer``: models, optimizers, EMA, step, RNGs, loader, history."""
    trainer.flush_logs()
    rng = {"torch": torch.get_rng_state(), "noise": trainer.noise_gen.get_state(),
           "data": trainer.data_gen.get_state(), "device_type": trainer.device.type}
    if trainer.device.type == "cuda":
        rng["cuda"] = torch.cuda.get_rng_state_all()
    return {
        "format": FORMAT, "kind": type(trainer).__name__, "step": trainer.step,
        "config": dataclasses.asdict(trainer.config),
        "specs": {name: getattr(m, "spec", None) for name, m in trainer.models.items()},
        "models": {name: m.state_dict() for name, m in trainer.models.items()},
        "optimizers": {name: o.state_dict() for name, o in trainer.optimizers.items()},
        "ema": trainer.ema.state_dict() if trainer.ema is not None else None,
        "rng": rng,
        "loader": trainer.loader.state_dict() if trainer.loader is not None else None,
        "history": trainer.history,
        "run": trainer.run_spec_fields,
    }


def restore_state(trainer, state: dict) -> None:
    """Load ``state`` (from :func:`trainer_state`) into ``trainer``, which has the same models and data."""
    if state.get("kind") != type(trainer).__name__:
        raise ValueError(f"this checkpoint was written by {state.get('kind')!r}, not {type(trainer).__name__}")
    for name, model in trainer.models.items():
        model.load_state_dict(state["models"][name])
    for name, opt in trainer.optimizers.items():
        saved = state["optimizers"][name]
        # load_state_dict would bring back the saved run's kernel flags with its hyperparameters; a
        # run saved under cuda_graph (capturable) must resume on the CPU and the other way round.
        # Patched in the saved groups: torch places each "step" tensor by those groups' flags.
        groups = [{**old, **{k: now[k] for k in ("capturable", "fused", "foreach") if k in now}}
                  for old, now in zip(saved["param_groups"], opt.param_groups)]
        opt.load_state_dict({**saved, "param_groups": groups})
        for group in opt.param_groups:  # this run's kind of lr, whichever kind was saved
            group["lr"] = trainer.learning_rate(group["lr"])
    if trainer.ema is not None and state.get("ema") is not None:
        trainer.ema.load_state_dict(state["ema"])
    trainer.step = int(state["step"])
    trainer.history = {k: list(v) for k, v in state["history"].items()}
    for field in trainer.learning_rate_fields:  # checkpoints of older ganlib logged no rates: keep rows aligned
        trainer.history.setdefault(field, [None] * len(trainer.history["step"]))
    trainer.run_spec_fields = dict(state.get("run") or {})
    _restore_random_streams(trainer, state)


def _restore_random_streams(trainer, state: dict) -> None:
    rng = state["rng"]
    torch.set_rng_state(rng["torch"])
    trainer.data_gen.set_state(rng["data"])
    same_device = rng.get("device_type") == trainer.device.type
    if same_device:  # generator states do not carry across device types
        trainer.noise_gen.set_state(rng["noise"])
        if "cuda" in rng:
            torch.cuda.set_rng_state_all(rng["cuda"])
    if trainer.loader is not None and state.get("loader") is not None and same_device:
        trainer.loader.load_state_dict(state["loader"])
    if trainer.dist.rank > 0:  # the checkpoint holds rank 0's streams; the other ranks draw their own
        trainer.noise_gen.manual_seed(distributed.rank_seed(trainer.config.seed) + trainer.step)
        trainer.data_gen.manual_seed(distributed.rank_seed(trainer.config.seed + 1) + trainer.step)


def save_trainer(trainer, path=None) -> Path:
    """Write ``trainer``'s checkpoint (atomically) to ``path`` or ``config.checkpoint_path``.

    Under torchrun only rank 0 writes; the other ranks return the path without writing. A state
    with a non-finite tensor is not written: :class:`NonFiniteLossError` says which tensor, and
    the previous checkpoint stays on disk.
    """
    path = path or trainer.config.checkpoint_path
    if path is None:
        raise ValueError("no checkpoint path: pass save(path) or set config.checkpoint_path")
    if not trainer.dist.is_main:
        return Path(path)
    try:
        path = save_checkpoint(trainer_state(trainer), path)
    except NonFiniteCheckpointError as err:
        raise NonFiniteLossError(
            f"the state at step {trainer.step} has a non-finite tensor ({err.key}), so it was not checkpointed; "
            f"training stopped ({trainer.kept_checkpoint()}). The last update diverged: try a lower learning "
            "rate, a gradient penalty or spectral norm, or check the data for NaN/inf.", trainer.step, err.key) from None
    trainer.last_checkpoint = (trainer.step, path)
    return path


def trainer_from_state(cls, state: dict, data, callbacks=(), source="the checkpoint", **overrides):
    """A ``cls`` trainer rebuilt from a checkpoint's ``state``: models from their specs, the config
    with ``overrides`` applied, then the state restored (``source`` names it in messages).

    A new learning rate (or ``betas``) reaches the optimizers, not only the config; the other
    fields are read at every step, so they take effect from the next one.
    """
    check_trainer_state(state, source)
    if state.get("kind") != cls.__name__:
        raise ValueError(f"{source} was written by {state.get('kind')} and cannot be resumed by {cls.__name__}; "
                         f"use {state.get('kind')}.from_checkpoint")
    config = config_from_checkpoint(cls.config_class, state["config"], overrides, source)
    models = {}
    for name, spec in state["specs"].items():
        if spec is None:
            raise ValueError(f"the checkpoint's {name} has no spec; build the models yourself and use load()")
        models[name] = build_model(spec)
    trainer = cls.from_models(models, data, config, callbacks)
    trainer.load_state_dict(state)
    for field, name in cls.learning_rate_fields.items():
        if field in overrides:  # the optimizer state holds the saved rate: set the new one
            for group in trainer.optimizers[name].param_groups:
                set_learning_rate(group, float(overrides[field]))
    if "betas" in overrides:
        for opt in trainer.optimizers.values():
            for group in opt.param_groups:
                group["betas"] = tuple(config.betas)
    return trainer


def trainer_from_checkpoint(cls, path, data, callbacks=(), **overrides):
    """:func:`trainer_from_state` for the checkpoint file at ``path``."""
    return trainer_from_state(cls, load_trainer_state(path), data, callbacks, source=path, **overrides)
