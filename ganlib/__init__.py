"""ganlib: the training code behind the open GAN/VAE tutorial book.

Modules, one concept each:
  env          profile (quick/full), device, seeding, version report
  data         datasets (MNIST, 8x8 digits, toy distributions) and a device-resident loader
  classic      the classic generative models of chapter 1: Bernoulli, Gaussian, Markov pixels
  losses       GAN losses, gradient/R1 penalties, the VAE's negative ELBO (pure functions)
  models       MLP and DCGAN generators/discriminators, VAEs
  pacgan       PacGAN's packed discriminator
  train        GANTrainer / VAETrainer on one shared loop; configs are dataclasses
  checkpoint   atomic safetensors checkpoints that never unpickle
  distributed  DistributedDataParallel under torchrun
  theory       the math chapter's closed forms: optimal D, value function, KL and JSD
  metrics      mode coverage, Frechet distance, MNIST FID / IS / precision-recall
  classifier   the MNIST feature network behind the metrics, and its training command
  experiments  long runs whose results the book shows (python -m ganlib.experiments)
  bench        the speed benchmark (python -m ganlib.bench)
  plots, animation  figures and the training animation
  selfcheck    answer checks for the exercises
  __main__     the command line: python -m ganlib train|sample
"""
__version__ = "0.1.0"

from .env import by_profile, default_device, describe_environment, profile, seed_everything

__all__ = ["by_profile", "default_device", "describe_environment", "profile", "seed_everything"]
