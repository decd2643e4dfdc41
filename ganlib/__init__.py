"""ganlib: the training code behind the open GAN/VAE tutorial book.

Modules, one concept each:
  env      profile (quick/full), device, seeding, version report
  data     datasets (MNIST, 8x8 digits, toy distributions) and a device-resident loader
  losses   GAN losses, gradient/R1 penalties, the VAE's negative ELBO (pure functions)
  models   MLP and DCGAN generators/discriminators, VAEs
  train    GANTrainer / VAETrainer on one shared loop; configs are dataclasses
  checkpoint  atomic safetensors checkpoints that never unpickle
  __main__ the command line: python -m ganlib train|sample
"""
__version__ = "0.1.0"

from .env import by_profile, default_device, describe_environment, profile, seed_everything

__all__ = ["by_profile", "default_device", "describe_environment", "profile", "seed_everything"]
