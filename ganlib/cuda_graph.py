"""Replaying a whole training step as one CUDA graph (``GANConfig(cuda_graph=True)``).

A small GAN asks the GPU for hundreds of tiny kernels per step, and launching them from Python
costs more than running them. :class:`CUDAGraphStep` wraps a step function ``step(inputs)``: it
runs it eagerly a few times, captures it once in a ``torch.cuda.CUDAGraph`` and from then on only
replays it. A captured graph reads its inputs from the addresses it saw at capture, so before
each replay the runner copies the call's inputs (the data batches and noise the trainer drew)
into the static buffers it captured with. It knows nothing about trainers: any step that is a
function of its input tensors, with fixed shapes, can be graphed this way.
"""
from __future__ import annotations

import torch


def clone_inputs(inputs):
    """A copy of ``inputs`` (tensors inside tuples, named tuples, lists, dicts; None kept)."""
    if isinstance(inputs, torch.Tensor):
        return inputs.clone()
    if isinstance(inputs, dict):
        return {k: clone_inputs(v) for k, v in inputs.items()}
    if isinstance(inputs, tuple) and hasattr(inputs, "_fields"):  # a NamedTuple
        return type(inputs)(*(clone_inputs(v) for v in inputs))
    if isinstance(inputs, (tuple, list)):
        return type(inputs)(clone_inputs(v) for v in inputs)
    if inputs is None:
        return None
    raise TypeError(f"a graphed step's inputs must be tensors in tuples/lists/dicts; got {type(inputs).__name__}")


def copy_inputs(static, inputs) -> None:
    """Copy ``inputs`` into ``static``, a structure of the same shape made by :func:`clone_inputs`."""
    if isinstance(static, torch.Tensor):
        if inputs.shape != static.shape:
            raise RuntimeError(f"a CUDA-graphed step needs the same input shapes at every step; got "
                               f"{tuple(inputs.shape)}, captured {tuple(static.shape)}")
        static.copy_(inputs)
    elif isinstance(static, dict):
        for k in static:
            copy_inputs(static[k], inputs[k])
    elif isinstance(static, (tuple, list)):
        for s, x in zip(static, inputs, strict=True):
            copy_inputs(s, x)


def copy_logs(logs: dict) -> dict:
    """A copy of a dict of scalar tensors, made by one kernel (stacked, then split)."""
    keys = list(logs)
    return dict(zip(keys, torch.stack([logs[key].float() for key in keys]).unbind()))


class CUDAGraphStep:
    """``CUDAGraphStep(step)(inputs)``: ``step(inputs)``, eagerly for ``warmup`` calls (on a side
    stream, as CUDA graph capture wants), then captured once and replayed.

    ``before_capture`` runs just before the capture (e.g. to drop gradients, which must then be
    allocated from the graph's memory pool). The returned outputs are the graph's own output
    tensors, which the next replay overwrites: copy what you keep, or pass ``copy_outputs=True``
    for a step that returns a dict of scalar tensors (a training step's logs): each call then
    returns a fresh copy, made by one small kernel.
    """

    def __init__(self, step, warmup: int = 3, before_capture=None, copy_outputs: bool = False):
        self.step = step
        self.copy_outputs = copy_outputs
        self.warmup_left = warmup
        self.before_capture = before_capture
        self.graph = None
        self.static_inputs = None
        self.outputs = None

    def __call__(self, inputs):
        outputs = self._run(inputs)
        return copy_logs(outputs) if self.copy_outputs else outputs

    def _run(self, inputs):
        if self.warmup_left > 0:
            self.warmup_left -= 1
            return self._warm_up(inputs)
        if self.graph is None:
            self.static_inputs = clone_inputs(inputs)
            if self.before_capture is not None:
                self.before_capture()
            self.outputs = self._capture(self.static_inputs)
        else:
            copy_inputs(self.static_inputs, inputs)
        self._replay()
        return self.outputs

    def _warm_up(self, inputs):
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            outputs = self.step(inputs)
        torch.cuda.current_stream().wait_stream(side)
        return outputs

    def _capture(self, static_inputs):
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):  # records the kernels; runs nothing
            return self.step(static_inputs)

    def _replay(self) -> None:
        self.graph.replay()
