"""Where a trainer's data batches come from: tensors, a DeviceLoader, or a distribution."""
from __future__ import annotations

import torch

from .. import distributed
from ..data import DeviceLoader


def batch_source(data, batch_size: int, device: torch.device, seed: int, dist: distributed.DistInfo):
    """``(loader, distribution)``, one of them None, for the ``data`` a trainer was given.

    Tensors (images, or an ``(images, labels)`` tuple) go into a :class:`~ganlib.data.DeviceLoader`
    on ``device``, seeded per rank; under torchrun each rank keeps its own shard. A loader the
    caller built is used as it is (under torchrun, give it this rank's shard). Anything with
    ``.sample(n, generator)`` is a distribution, sampled at every step.
    """
    if isinstance(data, torch.Tensor):
        data = (data,)
    if isinstance(data, DeviceLoader):
        return data, None
    if isinstance(data, (tuple, list)) and data and all(isinstance(t, torch.Tensor) for t in data):
        if dist.distributed:
            data = distributed.shard(*data)
        if batch_size > len(data[0]):
            raise ValueError(f"batch_size={batch_size} is larger than the data ({len(data[0])} examples); "
                             "use a smaller batch_size or more data")
        return DeviceLoader(*data, batch_size=batch_size, device=device, seed=distributed.rank_seed(seed)), None
    if hasattr(data, "sample"):
        return None, data
    raise TypeError(f"data must be a tensor, an (images, labels) tuple of tensors, a ganlib.data.DeviceLoader, "
                    f"or a distribution with .sample(n, generator); got {type(data).__name__}")
