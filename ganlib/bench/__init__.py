"""How fast does ganlib train? DCGAN on MNIST, timed three ways in one run.

::

    python -m ganlib.bench                                # all three versions, printed as a table
    python -m ganlib.bench --batch-size 512 --out bench/RESULTS.md
    python -m ganlib.bench fid-parity --steps 3000        # does the fast path train as well as fp32?
    python -m ganlib.bench vae --epochs 10                # pytorch/examples' VAE loop against VAETrainer

The throughput benchmark trains the same DCGAN (ganlib's 28x28 :class:`~ganlib.models.DCGANGenerator`
and :class:`~ganlib.models.DCGANDiscriminator`), with the same batch size and number of steps, as

* **(a) classic**: the loop of the canonical PyTorch DCGAN example (``pytorch/examples/dcgan``):
  the torchvision dataset through a ``DataLoader`` with worker processes and ``ToTensor`` +
  ``Normalize`` transforms, fp32, a sigmoid output with ``BCELoss``, two separate Adam optimizers,
  and ``.item()`` on the losses and D outputs every step for the log line;
* **(b) ganlib default**: :class:`~ganlib.train.GANTrainer` with its default :class:`~ganlib.train.GANConfig`
  (data resident on the device, channels_last layout, bf16 autocast and fused Adam on CUDA, host
  syncs only every ``log_every`` steps);
* **(c) ganlib fast**: the same trainer with ``compile=...`` (``torch.compile`` of the models;
  ``"reduce-overhead"`` adds CUDA graphs) and no host sync until the end of each timed window.

Each version runs ``--warmup`` untimed steps (compilation, cuDNN autotuning, worker start-up),
then ``--repeats`` timed windows of ``--steps`` steps; the device is synchronised around each
window and the median images/s is reported. For each version the table also gives the peak device
memory, the matmul/convolution FLOPs of one training step per image (counted with
``torch.utils.flop_counter.FlopCounterMode``), and the achieved fraction of the device's matmul
rate, measured in the same run with a large bf16 matmul (CUDA) or fp32 matmul (CPU).

MNIST comes from :func:`ganlib.data.load_mnist` when it is on disk (``$GANLIB_DATA``); otherwise
random tensors (and torchvision's ``FakeData`` for the classic loop) of the same shape stand in,
and the output says so.

Modules: ``classic_loop`` (version (a) and its data), ``throughput`` (the timed versions),
``fid_parity`` (fp32 vs fast path by FID), ``vae_examples`` (the VAE mode), ``measure`` (timing, FLOPs, reporting), ``cli``.
"""
from __future__ import annotations

from .cli import main
from .measure import flops_per_image
from .throughput import Result, ganlib_config, ganlib_trainer

__all__ = ["Result", "flops_per_image", "ganlib_config", "ganlib_trainer", "main"]
