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
  dirac        "Losses": the Dirac-GAN of Mescheder et al. 2018 (simultaneous/alternating steps, R1)
  practice     "Practice on MNIST": the sources' code defects as runs, DCGAN arithmetic, the chapter's
               DCGAN runs, interpolation, the latent explorer, and its result commands
               (python -m ganlib.chapters.practice ablation | ema-bn)
  dcgan_recipe "Practice on MNIST": the layout study behind the shipped dcgan-mnist, seven DCGAN
               layouts over three seeds (python -m ganlib.chapters.dcgan_recipe ablation)
  vae          "Variational autoencoders": closed forms (Gaussian KL by Monte Carlo, gradient
               estimators, the PPCA VAE), the chapter's VAE runs and pictures, the beta sweep
               (python -m ganlib.chapters.vae beta-sweep), source 002's VAE and GAN transcribed
  vae_vs_gan   "VAE vs GAN": the shipped models' comparison and the ring VAE
               (python -m ganlib.chapters.vae_vs_gan compare)
  evaluation   "Evaluating generative models": controlled failures, every metric on one set, the
               verdicts, a GAN's losses and discriminator as judges, the test set's order, the
               ranking (python -m ganlib.chapters.evaluation calibrate | validate | rank)
  applications "Applications" and "Restoring and translating images": conditional accuracy, latent
               arithmetic, augmentation from few labels, VAE anomaly scores and ROC AUC, token
               gradients (why text GANs struggle), inpainting by latent search, L2/L1 vs adversarial
               super-resolution and pix2pix (python -m ganlib.chapters.applications augment | anomaly)
  challenges   "Challenges" and "Mode collapse, small data and artefacts": PyTorch's DCGAN example
               failing and its fixes, the lr-ratio x beta1 grid, a collapsing MNIST generator, D
               memorising small data, checkerboard artefacts
               (python -m ganlib.chapters.challenges dcgan-failure | small-data | hyperparameters)
  faq          "Challenges and FAQ": the readers' questions as small runs (detach, zero_grad and
               accumulation, loss curves, loaders, error messages, KL and BCE curves)

Shared teaching tools:
  code         a class's or function's installed source, shown on a page (so page and package agree)
  parallel     independent, self-seeding runs in parallel processes (the results commands, small grids)
  results      the results commands' files: book/results/ (RESULTS_DIR), the provenance record each
               starts with, their loader, and the command-line pieces the commands share
  selfcheck    answer checks for the exercises, one section per chapter
  plots        image grids, densities with D(x), 2D scatter plots
  figures      figures drawn from code: the GAN schematic (data and gradient flow)
  animation    a 2D GAN animated while it trains (a trainer callback plus a to_jshtml player)
  interactive  a widget for a live kernel and its static counterpart for the site, in one output
  tables       plain-text tables whose columns stay aligned with Chinese text in them
  fonts        a CJK font for figures, made matplotlib's fallback in the Chinese edition

The submodules are imported on use (``from ganlib.chapters import theory``), so importing the
package does not load matplotlib, except in the Chinese edition (``GANLIB_LANG=zh_CN``), where the
figures' font is set up first.
"""
from .fonts import use_edition_font

use_edition_font()  # labels from ganlib.i18n._ are Chinese there, and DejaVu Sans has no Chinese glyphs

