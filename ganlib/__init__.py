"""ganlib: the training code behind the open GAN/VAE tutorial book.

The engine, one concept a module:
  env          profile (quick/full/smoke), device, seeding, versions, the results folder
  spec         RunSpec: what defines a run; it builds the data, models and trainer, and is checkpointed
  data         datasets (MNIST, 8x8 digits, toy distributions) and a device-resident loader
  models       MLP and DCGAN generators/discriminators, VAEs, rebuilt from their specs
  losses       GAN losses, gradient/R1 penalties, the VAE's negative ELBO (pure functions)
  train        the training loop, GANTrainer / VAETrainer, their configs and callbacks
  checkpoint   atomic, checksummed safetensors checkpoints that never unpickle
  likelihood   a VAE's ELBO and IWAE bound on binarised images, active units
  metrics      mode coverage, Frechet distance, MNIST FID / IS / precision-recall
  classifier   the MNIST feature network behind the metrics, and its training command
  cuda_graph   the fast path: a whole training step replayed as one CUDA graph
  distributed  DistributedDataParallel under torchrun
  command      what every command shares: one-line errors, output checks, the run-folder lock, signals
  i18n         what ganlib prints, in English or Chinese (GANLIB_LANG)
  __main__     the command line: python -m ganlib train|sample (argparse mapped onto a RunSpec)
  pretrained   the generators that ship with ganlib (load, info) and the command that makes them

Beside the engine:
  chapters     helpers that serve one chapter, and shared teaching tools (self-checks, plots)
  bench        the speed benchmark (python -m ganlib.bench)
"""
__version__ = "0.1.0"

from .env import by_profile, default_device, describe_environment, profile, seed_everything

__all__ = ["by_profile", "default_device", "describe_environment", "profile", "seed_everything"]
