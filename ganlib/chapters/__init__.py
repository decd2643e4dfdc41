"""Helpers that serve one chapter of the book, and the teaching tools the chapters share.

Nothing in the engine (``ganlib.data``, ``models``, ``losses``, ``train``, ...) imports from here:
these modules build on the engine to show one idea. A new chapter puts its own helpers here, in a
module named after its topic.

One chapter's helpers:
  classic      "Generative models": Bernoulli, Gaussian and Markov pixel models, generative classifiers
  theory       "The math of GANs": optimal D, value function, KL and JSD on a grid, fitted Gaussians
  experiments  "Losses": the mode-collapse experiment (python -m ganlib.chapters.experiments) and
               the chapter's demonstration runs (saturation, critic objectives, the Markov-chain loss)
  pacgan       "Losses": PacGAN's packed discriminator, the anti-collapse configuration

Shared teaching tools:
  selfcheck    answer checks for the exercises, one section per chapter
  plots        image grids, densities with D(x), 2D scatter plots
  animation    a 2D GAN animated while it trains (a trainer callback plus a to_jshtml player)

The submodules are imported on use (``from ganlib.chapters import theory``), so importing the
package does not load matplotlib.
"""
