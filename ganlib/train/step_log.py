"""The logged values of each step, kept on the device and copied to the host in one transfer.

A ``.item()`` per loss per step would make the host wait for the GPU at every step. Instead each
step's logged tensors stay where they are; :meth:`StepLog.flush` (at logging steps and before
checkpoints) stacks them, copies them to the host at once, and checks that they are finite.
"""
from __future__ import annotations

import torch


class NonFiniteLossError(FloatingPointError):
    """A logged loss, or a tensor of the state to be checkpointed, became inf or NaN; ``step`` and
    ``name`` say where."""

    def __init__(self, message: str, step: int, name: str):
        super().__init__(message)
        self.step, self.name = step, name


class StepLog:
    """Pending ``(step, {name: 0-d tensor})`` entries, appended to a history dict at each flush."""

    def __init__(self):
        self.pending: list[tuple[int, dict[str, torch.Tensor]]] = []

    def append(self, step: int, logs: dict[str, torch.Tensor]) -> None:
        """Keep one step's logged tensors (still on the device) until the next :meth:`flush`."""
        self.pending.append((step, logs))

    def flush(self, history: dict[str, list], constants: dict[str, float], kept: str = "") -> None:
        """Move the pending values into ``history`` (one list per name, and ``history["step"]``).

        ``constants`` (e.g. the learning rates, which change only between flushes) are logged for
        every flushed step. A non-finite value raises :class:`NonFiniteLossError` for the first bad
        step and name, and nothing is appended; ``kept`` says which checkpoint survives.
        """
        if not self.pending:
            return
        pending, self.pending = self.pending, []
        keys = list(pending[0][1])
        values = torch.stack([torch.stack([logs[k].float() for k in keys]) for _, logs in pending]).cpu()
        bad = ~torch.isfinite(values)
        if bad.any():
            i, j = (int(v) for v in bad.nonzero()[0])
            step, name = pending[i][0], keys[j]
            raise NonFiniteLossError(
                f"{name} became {values[i, j].item()} at step {step}; training stopped ({kept}). Try a lower "
                "learning rate, a gradient penalty or spectral norm, or check the data for NaN/inf.", step, name)
        history["step"].extend(step for step, _ in pending)
        for j, key in enumerate(keys):
            history.setdefault(key, []).extend(values[:, j].tolist())
        for key, value in constants.items():
            history.setdefault(key, []).extend([value] * len(pending))
