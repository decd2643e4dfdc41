"""Trainers for GANs and VAEs that share one loop and resume exactly.

Modules:
  config      TrainConfig, GANConfig, VAEConfig (checked when made), compile modes
  loop        Trainer: the shared loop (draw inputs, step, log, callbacks)
  state       what a checkpoint holds; saving it, and rebuilding a trainer from it (resume)
  gan         GANTrainer: Goodfellow et al.'s Algorithm 1, its inputs (GANStepInputs), penalties, EMA
  gan_sampling  GANTrainer's sampling: the EMA generator (batch norm re-estimated) or the raw one
  vae         VAETrainer: the negative ELBO
  ema         the EMA copy of the generator
  batches     where batches come from (tensors, a DeviceLoader, a distribution)
  step_log    logged values kept on the device, copied to the host in one transfer and checked
  callbacks   KLWarmup, LinearLRDecay, SampleSnapshots, save_samples

Fast path (``python -m ganlib.bench`` measures it). ``channels_last=True`` (the default) stores
conv weights and image batches in NHWC layout, which oneDNN on CPUs and cuDNN's bf16 convolutions
prefer (``bench/RESULTS.md`` has measurements); ``compile=`` runs the models' forward (and so
their backward) through ``torch.compile``, ``"reduce-overhead"`` also replays them as CUDA graphs.
Penalties that differentiate twice (``gp_weight``, ``r1_weight``) call the plain, eager
discriminator: compiled graphs do not support double backward (pytorch issues #91469, #181581).
Checkpoints and :meth:`GANTrainer.sample` always use the plain modules. ``cuda_graph=True`` goes
furthest: after three eager warm-up steps, the whole GAN step (both updates, both optimizer steps)
is captured once in a CUDA graph (:mod:`ganlib.cuda_graph`) and replayed, so a step costs one
launch instead of hundreds; the inputs :meth:`GANTrainer.draw_inputs` drew are copied into the
graph's fixed buffers first. The learning rates are then device tensors that the graph reads at
every replay: change them with :func:`set_learning_rate` (as :class:`LinearLRDecay` does).
"""
from .callbacks import KLWarmup, LinearLRDecay, SampleSnapshots, save_samples
from .config import COMPILE_MODES, CUDAGRAPH_MODES, GANConfig, TrainConfig, VAEConfig, compile_mode
from .ema import EMA
from .gan import GANStepInputs, GANTrainer, frozen
from .loop import Trainer, eval_mode
from .state import set_learning_rate
from .step_log import NonFiniteLossError
from .vae import VAEStepInputs, VAETrainer

__all__ = ["COMPILE_MODES", "CUDAGRAPH_MODES", "EMA", "GANConfig", "GANStepInputs", "GANTrainer", "KLWarmup",
           "LinearLRDecay", "NonFiniteLossError", "SampleSnapshots", "TrainConfig", "Trainer", "VAEConfig", "VAEStepInputs",
           "VAETrainer", "compile_mode", "eval_mode", "frozen", "save_samples", "set_learning_rate"]
