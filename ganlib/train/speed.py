"""The fast path of a training step: Adam's kernels, learning rates a CUDA graph can read, and the
GAN trainer's speed options (DDP and ``torch.compile`` wrappers, whole-step CUDA graphs).

``python -m ganlib.bench`` measures each of them against the plain eager step.
"""
from __future__ import annotations

import torch

from .. import distributed
from ..cuda_graph import CUDAGraphStep
from .config import CUDAGRAPH_MODES, GANConfig, compile_mode


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes in bfloat16 natively: a CUDA GPU of compute capability 8.0
    (Ampere) or newer. Older GPUs, such as Colab's free T4 (7.5), have no bf16 tensor cores and
    emulate it slowly, so the trainers keep float32 there (``TrainConfig.bf16`` asks for bf16
    only where it is native)."""
    return device.type == "cuda" and torch.cuda.get_device_capability(device) >= (8, 0)


def adam(params, lr: float | torch.Tensor, betas, device: torch.device, fused_adam: bool,
         capturable: bool) -> torch.optim.Adam:
    """Adam with the fastest kernels that keep CPU runs bitwise as they were.

    Args:
        lr: a float, or under CUDA graphs a device tensor (see :func:`learning_rate`).
        fused_adam: use the fused kernels on CUDA.
        capturable: keep the step counter on the GPU, so that optimizer steps can be graph-captured.
    """
    fused = True if (fused_adam and device.type == "cuda") else None
    # On the CPU torch's default is the per-tensor loop; the multi-tensor (foreach) one computes the
    # same numbers, bitwise, and makes a small VAE's step ~25% faster (python -m ganlib.bench vae).
    # CPU-fused Adam would be faster still but rounds differently, which would change every CPU run.
    foreach = True if device.type == "cpu" and isinstance(lr, float) else None  # tensor rates: torch's default
    return torch.optim.Adam(params, lr=lr, betas=tuple(betas), fused=fused, foreach=foreach, capturable=capturable)


def learning_rate(value: float, device: torch.device, graphed: bool) -> float | torch.Tensor:
    """A param group's ``lr``: a float, or for a ``graphed`` step a device tensor that the captured
    optimizer step reads at every replay (see :func:`~ganlib.train.set_learning_rate`)."""
    return torch.tensor(float(value), device=device) if graphed else float(value)


def set_up_gan_speed(trainer, config: GANConfig) -> None:
    """Turn on ``config``'s speed options for a GAN trainer whose device is known: CUDA graphs
    (``use_cuda_graph``, with autocast's weight cache off, as capture needs) and the step marks
    that ``torch.compile``'s CUDA-graph trees need (``marks_cudagraph_steps``)."""
    if config.cuda_graph and trainer.dist.distributed:
        raise ValueError("cuda_graph=True does not work under torchrun (DDP); set cuda_graph=False")
    trainer.use_cuda_graph = bool(config.cuda_graph) and trainer.device.type == "cuda"
    if trainer.use_cuda_graph:  # autocast's weight-cast cache must be off inside capture (torch.cuda.graph docs)
        trainer.autocast = torch.autocast(trainer.device.type, dtype=torch.bfloat16, enabled=trainer.use_bf16,
                                          cache_enabled=False)
    trainer.marks_cudagraph_steps = (trainer.device.type == "cuda"
                                     and compile_mode(config.compile) in CUDAGRAPH_MODES)


def wrap(module: torch.nn.Module, device: torch.device, config: GANConfig, ddp: bool = True):
    """What training steps call instead of ``module``: DDP (under torchrun) and/or ``torch.compile``.

    The wrappers share ``module``'s parameters; checkpoints and sampling use ``module`` itself.
    """
    if ddp:
        module = distributed.wrap_ddp(module, device, config.sync_bn)
    mode = compile_mode(config.compile)
    return torch.compile(module, mode=mode) if mode else module


def graphed(step, optimizers: dict) -> CUDAGraphStep:
    """``step`` replayed as one CUDA graph, returning copies of its logs; the gradients are dropped
    just before capture, so that they are allocated from the graph's memory pool."""
    def drop_gradients():
        for opt in optimizers.values():
            opt.zero_grad(set_to_none=True)

    return CUDAGraphStep(step, before_capture=drop_gradients, copy_outputs=True)
