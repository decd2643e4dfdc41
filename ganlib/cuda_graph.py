"""Replaying a whole GAN training step as one CUDA graph (``GANConfig(cuda_graph=True)``).

A small GAN asks the GPU for hundreds of tiny kernels per step, and launching them from Python
costs more than running them. :class:`CUDAGraphStep` runs a step eagerly a few times, captures it
once in a ``torch.cuda.CUDAGraph`` and from then on only replays it. A captured graph reads its
inputs from the addresses it saw at capture, so :class:`StaticFeed` copies each step's data and
noise into fixed buffers first. :class:`ganlib.train.GANTrainer` wires the two together.
"""
from __future__ import annotations

import contextlib

import torch


class StaticFeed:
    """The fixed input buffers of a CUDA-graphed GAN step.

    A captured graph reads its inputs from the addresses it saw at capture. Before each step,
    :meth:`fill` copies the step's data batches (one per D update) and draws its noise (one batch
    per D update, one for G's) into the same buffers; while the step runs (:meth:`reading`), the
    trainer's ``next_batch()`` and ``noise()`` hand them out in the order they are asked for.
    """

    def __init__(self):
        self.batches: list[tuple[torch.Tensor, torch.Tensor | None]] = []
        self.noises: list[torch.Tensor] = []
        self.active = False
        self._next_batch = self._next_noise = 0

    def fill(self, trainer) -> None:
        k = trainer.config.d_steps
        for i in range(k):
            x, labels = trainer.next_batch()
            if i == len(self.batches):
                self.batches.append((x.clone(), None if labels is None else labels.clone()))
            else:
                self.batches[i][0].copy_(x)
                if labels is not None:
                    self.batches[i][1].copy_(labels)
        n = self.batches[0][0].shape[0]
        while len(self.noises) < k + 1:
            self.noises.append(torch.empty(n, trainer.generator.latent_dim, device=trainer.device))
        for z in self.noises:
            z.normal_(generator=trainer.noise_gen)  # the same numbers torch.randn(..., generator) draws

    @contextlib.contextmanager
    def reading(self):
        self._next_batch = self._next_noise = 0
        self.active = True
        try:
            yield
        finally:
            self.active = False

    def batch(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        self._next_batch += 1
        return self.batches[self._next_batch - 1]

    def noise(self, n: int) -> torch.Tensor:
        self._next_noise += 1
        z = self.noises[self._next_noise - 1]
        if z.shape[0] != n:
            raise RuntimeError(f"a CUDA-graphed step needs fixed batch sizes; got {n}, captured {z.shape[0]}")
        return z


class CUDAGraphStep:
    """Run a step function eagerly ``warmup`` times (on a side stream, as CUDA graph capture wants),
    then capture it once in a CUDA graph and from then on only replay it. Returns the function's
    outputs, which a replay overwrites in place."""

    def __init__(self, warmup: int = 3, before_capture=None):
        self.warmup_left = warmup
        self.before_capture = before_capture
        self.graph = None
        self.outputs = None

    def __call__(self, step):
        if self.warmup_left > 0:
            self.warmup_left -= 1
            return self._warm_up(step)
        if self.graph is None:
            if self.before_capture is not None:
                self.before_capture()
            self.outputs = self._capture(step)
        self._replay()
        return self.outputs

    def _warm_up(self, step):
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            outputs = step()
        torch.cuda.current_stream().wait_stream(side)
        return outputs

    def _capture(self, step):
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):  # records the kernels; runs nothing
            return step()

    def _replay(self) -> None:
        self.graph.replay()
