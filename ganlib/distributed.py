"""Data-parallel training over several processes with PyTorch's DistributedDataParallel (DDP).

Launch any ganlib training command with ``torchrun`` and it runs data-parallel::

    torchrun --nproc_per_node=4 -m ganlib train ...     # one process per GPU

``torchrun`` starts one process per device and sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR`` and ``MASTER_PORT``. :func:`init_distributed` reads them and joins the process
group (NCCL on CUDA, gloo on the CPU). The trainers then:

* give each rank its own shard of the data (:func:`shard`) and its own noise and data seeds
  (:func:`rank_seed`), so the ranks together see ``world_size`` different batches per step;
* wrap the models in DDP, which averages gradients across ranks during ``backward()``, so every
  rank takes the same optimizer step and the weights stay identical;
* run callbacks on every rank (a learning-rate schedule must change every rank's rate), and let
  only rank 0 (:func:`is_main_process`) show progress and write files;
* save the plain models, not their DDP wrappers, so a checkpoint has exactly the single-process
  format and resumes on one device.

Batch norm. By default each rank normalises with its own batch's statistics (plain
``BatchNorm2d``): the effective batch for the statistics is the per-rank batch, and each rank keeps
its own running averages (rank 0's are the ones saved). ``sync_bn=True`` converts the models to
``SyncBatchNorm``, which computes the statistics over the global batch at the cost of one
all-reduce per batch-norm layer per forward (GPUs only: PyTorch's SyncBatchNorm has no CPU kernel).
"""
from __future__ import annotations

import inspect
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from .env import default_device

# offset between the seeds of consecutive ranks; rank 0 keeps the configured seed, so a
# one-process run and rank 0 of a multi-process run draw the same noise
_RANK_SEED_STRIDE = 1_000_003


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in the job (``world_size == 1`` when not distributed)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """True on rank 0, the process that logs and saves."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """True when the job has more than one process."""
        return self.world_size > 1


def launched_by_torchrun() -> bool:
    """True when the environment variables of ``torchrun`` (``RANK``, ``WORLD_SIZE``) are set."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def init_distributed(device: str | torch.device | None = None, backend: str | None = None) -> torch.device:
    """Join the process group that ``torchrun`` set up; return this rank's device.

    Without ``torchrun`` it does nothing and returns the default device. On CUDA each process
    takes GPU ``LOCAL_RANK`` and the backend is NCCL; elsewhere it is gloo. Safe to call twice.
    """
    dev = default_device(device)
    if not launched_by_torchrun():
        return dev
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if dev.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise RuntimeError(
                f"LOCAL_RANK={local_rank} but only {torch.cuda.device_count()} CUDA device(s) are visible; "
                "use --nproc_per_node at most the number of GPUs"
            )
        dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        dist.init_process_group(backend or ("nccl" if dev.type == "cuda" else "gloo"))
    return dev


def info() -> DistInfo:
    """This process's rank, world size and local rank (0, 1, 0 outside a distributed job)."""
    if not (dist.is_available() and dist.is_initialized()):
        return DistInfo()
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))


def is_distributed() -> bool:
    """True inside an initialised process group of more than one process."""
    return info().distributed


def is_main_process() -> bool:
    """True on rank 0 (and in any non-distributed run): the process that logs and saves."""
    return info().is_main


def rank_seed(seed: int, rank: int | None = None) -> int:
    """The seed of ``rank`` (default: this process) derived from a base seed; rank 0 keeps ``seed``."""
    rank = info().rank if rank is None else rank
    return seed + _RANK_SEED_STRIDE * rank


def shard(*tensors: torch.Tensor, rank: int | None = None, world_size: int | None = None):
    """This rank's shard of each tensor: examples ``rank, rank + W, rank + 2W, ...``.

    Every shard gets the same number of examples (``N // W``; up to ``W - 1`` examples are dropped),
    so ranks run the same number of batches per epoch. Returns a tuple, one shard per tensor.

    Args:
        tensors: tensors of one length N (e.g. images and labels), sharded alike.
        rank, world_size: default: this process's (:func:`info`).

    Shape:
        - each tensor: (N, *)
        - each shard: (N // world_size, *)
    """
    me = info()
    rank = me.rank if rank is None else rank
    world_size = me.world_size if world_size is None else world_size
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, world_size={world_size}), got {rank}")
    if not tensors:
        raise ValueError("shard() needs at least one tensor")
    n = len(tensors[0])
    if any(len(t) != n for t in tensors):
        raise ValueError(f"all tensors must have the same length; got {[len(t) for t in tensors]}")
    per_rank = n // world_size
    if per_rank == 0:
        raise ValueError(f"cannot split {n} examples over {world_size} ranks")
    return tuple(t[rank::world_size][:per_rank] for t in tensors)


def check_sync_bn(device: torch.device) -> None:
    """SyncBatchNorm needs a GPU; raise a clear error before training starts otherwise."""
    if torch.device(device).type == "cpu":
        raise ValueError("sync_bn=True needs GPUs: PyTorch's SyncBatchNorm has no CPU implementation. "
                         "Drop --sync-bn (each rank then uses its own batch statistics) or train on CUDA.")


def wrap_ddp(module: nn.Module, device: torch.device, sync_bn: bool = False) -> nn.Module:
    """``module`` in DistributedDataParallel (and SyncBatchNorm if ``sync_bn``); as is if not distributed.

    The wrapper shares the module's parameters: optimizers and checkpoints keep using ``module``.
    Buffers are not synced before each forward: each rank keeps its own batch-norm running
    averages (see the module docstring); broadcasting rank 0's before every call would be one more
    collective per forward, for statistics that only eval mode uses.
    """
    if not is_distributed():
        return module
    if sync_bn:
        check_sync_bn(device)
        # converts the BatchNorm children in place (sharing their parameters and buffers); the
        # state-dict keys are unchanged, so checkpoints load into plain BatchNorm on one device
        nn.SyncBatchNorm.convert_sync_batchnorm(module)
    if not any(p.requires_grad for p in module.parameters()):
        return module
    device = torch.device(device)
    ids = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else None
    ddp = nn.parallel.DistributedDataParallel
    # newer torch renames the flag (and deprecates the old name); torch 2.4 only knows broadcast_buffers
    no_buffer_sync = ({"forward_sync_buffers": False} if "forward_sync_buffers" in inspect.signature(ddp).parameters
                      else {"broadcast_buffers": False})
    return ddp(module, device_ids=ids, **no_buffer_sync)


def any_rank(flag: bool, device: torch.device) -> bool:
    """True if ``flag`` is true on any rank (an all-reduce; a plain ``bool`` when not distributed)."""
    if not is_distributed():
        return bool(flag)
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def cleanup() -> None:
    """Leave the process group if this process joined one."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def broadcast_parameters(module: nn.Module) -> None:
    """Copy rank 0's parameters and buffers to every rank (what DDP does when it wraps a model)."""
    if is_distributed():
        for t in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(t.data, src=0)


def average_gradients(module: nn.Module) -> None:
    """All-reduce and average the gradients of ``module`` over the ranks (for models not in DDP)."""
    if not is_distributed():
        return
    world = dist.get_world_size()
    for p in module.parameters():
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad.div_(world)
