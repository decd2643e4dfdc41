"""Self-checks for the book's exercises: call one with your answer and it tells you if you are right.

Each function prints a one-line verdict and returns ``True`` or ``False``, so a reader can use it
interactively and a test can assert on it. Sections follow the chapters. The verdicts of the
chapters that the Chinese edition translates go through :func:`ganlib.i18n._`.
"""
from __future__ import annotations

import math

import torch

from ..i18n import _
from ..losses import discriminator_loss
from ..models import mnist_mlp_generator
from .classic import causal_mask
from .practice import transposed_conv_size


def _verdict(ok: bool, right: str, wrong: str) -> bool:
    """Print the verdict for an answer and return whether it was right."""
    print((_("Correct: ") + right) if ok else (_("Not yet: ") + wrong))
    return ok


def _close(answer: float, expected: float, rel: float = 1e-3, abs_: float = 1e-6) -> bool:
    try:
        return math.isclose(float(answer), expected, rel_tol=rel, abs_tol=abs_)
    except (TypeError, ValueError):
        return False


# ----------------------------------------------------------------------------- Part I: GAN concepts,
# the training algorithm, the math of GANs (book/gan_concepts, training_algorithm, gan_math)


def check_concepts_value_at_half(answer: float) -> bool:
    """Exercise ex-gan-concepts-value: V(D, G) when D(x) = 1/2 for every x (any p_data and p_g)."""
    expected = -math.log(4.0)
    return _verdict(_close(answer, expected, rel=1e-3),
                    _("log(1/2) + log(1/2) = -log 4 = {expected:.4f}, whatever the two densities are."
                      ).format(expected=expected),
                    _("each expectation is of a constant: E[log 1/2] = log 1/2. Add the two terms."))


def check_training_real_samples(answer: int, k: int = 5, batch_size: int = 64, iterations: int = 1000) -> bool:
    """Exercise ex-training-algorithm-count: real samples D sees in Algorithm 1 with k, m and a
    number of outer iterations (defaults: k = 5, m = 64, 1000 iterations)."""
    expected = k * batch_size * iterations
    try:
        ok = int(answer) == expected
    except (TypeError, ValueError):
        ok = False
    return _verdict(ok, _("k * m * iterations = {k} * {m} * {iterations} = {expected:,}.").format(
                        k=k, m=batch_size, iterations=iterations, expected=expected),
                    _("every one of the k discriminator steps of every iteration takes a fresh minibatch "
                      "of m real examples; the generator step takes none."))


def check_math_optimal_discriminator(answer: float) -> bool:
    """Exercise ex-gan-math-dstar: D*(0) for p_data = N(0, 1) and p_g = N(2, 1)."""
    expected = 1.0 / (1.0 + math.exp(-2.0))
    return _verdict(_close(answer, expected, rel=1e-3),
                    _("D*(0) = phi(0) / (phi(0) + phi(-2)) = 1 / (1 + e^-2) = {expected:.4f}.").format(
                        expected=expected),
                    _("evaluate both densities at x = 0 and plug them into p_data / (p_data + p_g); "
                      "the normalising constants cancel."))


def check_math_disjoint_value(answer: float) -> bool:
    """Exercise ex-gan-math-disjoint: V(D*, G) when p_data and p_g have disjoint supports."""
    return _verdict(_close(answer, 0.0, abs_=1e-3),
                    _("JSD = log 2, so V(D*, G) = -log 4 + 2 log 2 = 0: D* is 1 on the data and 0 on the "
                      "fakes, and both log terms vanish."),
                    _("on disjoint supports D* is exactly 1 where p_data > 0 and 0 where p_g > 0. "
                      "What are log 1 and log(1 - 0)?"))


# ----------------------------------------------------------------------------- Chapter 1: generative
# models (book/generative_models): Bernoulli, Gaussian and Markov pixel models

# Exercise ex-generative-bernoulli: a 2x3 binary image and the Bernoulli model's pixel probabilities.
BERNOULLI_EXERCISE_IMAGE = ((1, 1, 0), (0, 1, 0))
BERNOULLI_EXERCISE_PROBS = ((0.9, 0.6, 0.2), (0.1, 0.7, 0.5))


def check_bernoulli_log_likelihood(answer: float, image=BERNOULLI_EXERCISE_IMAGE,
                                   probs=BERNOULLI_EXERCISE_PROBS) -> bool:
    """Exercise ex-generative-bernoulli: log p(image) in nats under independent Bernoulli pixels.

    ``image`` (0/1 entries) and ``probs`` (P(pixel = 1)) are nested sequences or arrays of the same
    shape; the defaults are the exercise's.
    """
    pixels = [float(v) for v in _flatten(image)]
    mus = [float(v) for v in _flatten(probs)]
    if len(pixels) != len(mus) or any(v not in (0.0, 1.0) for v in pixels):
        raise ValueError("image must hold only 0s and 1s and have as many entries as probs")
    expected = sum(math.log(m) if v == 1.0 else math.log(1.0 - m) for v, m in zip(pixels, mus))
    if _close(answer, -expected, rel=1e-3):
        return _verdict(False, "", _("you have the right size but the wrong sign: a log-probability of a "
                                     "discrete outcome is <= 0."))
    if _close(answer, expected / math.log(2), rel=1e-3):
        return _verdict(False, "", _("that is in bits (log base 2); the book measures log-likelihoods in "
                                     "nats (natural log)."))
    return _verdict(_close(answer, expected, rel=1e-3),
                    _("log p(x) = sum_i [x_i log mu_i + (1 - x_i) log(1 - mu_i)] = {expected:.4f} nats."
                      ).format(expected=expected),
                    _("for each pixel take log mu_i if it is 1 and log(1 - mu_i) if it is 0, then add "
                      "the logs (natural log) over all pixels."))


def check_rescaled_log_density(answer: float, log_density: float, dim: int = 784, scale: float = 255.0) -> bool:
    """Exercise ex-generative-scale: the log-density of ``scale * x`` given ``log p(x) = log_density``.

    For ``y = scale * x`` in ``dim`` dimensions, ``p_y(y) = p_x(y / scale) / scale**dim``.
    """
    expected = float(log_density) - dim * math.log(scale)
    if _close(answer, float(log_density) + dim * math.log(scale), rel=1e-6, abs_=1e-3):
        return _verdict(False, "", _("right size, wrong direction: stretching the data by a factor > 1 "
                                     "spreads the same probability over a larger volume, so the density goes down."))
    return _verdict(_close(answer, expected, rel=1e-6, abs_=1e-3),
                    _("log p_y(y) = log p_x(x) - D log(scale) = {expected:.2f} nats: same model, same "
                      "data, a different number, because a density has units of 1/volume.").format(expected=expected),
                    _("use the change of variables y = scale * x: p_y(y) = p_x(y / scale) / |det(scale I)|, "
                      "and det(scale I) = scale**D."))


def check_markov_parameter_count(answer: int, height: int = 28, width: int = 28, radius: int | None = None) -> bool:
    """Exercise ex-generative-params: how many parameters ``MarkovPixels(radius)`` has (weights + biases)."""

    weights = int(causal_mask(height, width, radius).sum().item())
    d = height * width
    expected = weights + d
    if _close(answer, weights, rel=0, abs_=0.5):
        return _verdict(False, "", _("you counted the weights; add one bias per pixel."))
    what = _("the whole prefix") if radius is None else _("the radius-{radius} neighbourhood").format(radius=radius)
    return _verdict(_close(answer, expected, rel=0, abs_=0.5),
                    _("{weights:,} weights (one per pixel pair in {what}) + {d} biases = {expected:,}.").format(
                        weights=weights, what=what, d=d, expected=expected),
                    _("count, for every pixel i, the pixels j < i in its context (one weight each), then add "
                      "one bias per pixel. For the whole prefix that is 0 + 1 + ... + (D - 1)."))


def _flatten(values):
    """Nested sequences / arrays / tensors -> a flat list of numbers."""
    if hasattr(values, "tolist"):
        values = values.tolist()
    if isinstance(values, (list, tuple)):
        return [v for item in values for v in _flatten(item)]
    return [values]


# ----------------------------------------------------------------------------- Part II: losses


def check_losses_generator_gradients(minimax: float, nonsaturating: float, d_fake: float = 0.1) -> bool:
    """Exercise ex-losses-gradient: dL_G/dl at D(G(z)) = sigmoid(l) = ``d_fake``, for both losses."""
    right_mm, right_ns = -d_fake, -(1 - d_fake)
    if _close(minimax, d_fake) and _close(nonsaturating, 1 - d_fake):
        return _verdict(False, "", "the sizes are right; now the signs: both losses fall as l grows.")
    return _verdict(_close(minimax, right_mm) and _close(nonsaturating, right_ns),
                    f"minimax: -D = {right_mm:.3g}; non-saturating: -(1 - D) = {right_ns:.3g}. Where D "
                    "rejects the fakes, the minimax gradient is small and the non-saturating one is not.",
                    "use d/dl log(1 - sigmoid(l)) = -sigmoid(l) and d/dl [-log sigmoid(l)] = -(1 - sigmoid(l)).")


def check_losses_hinge(fn) -> bool:
    """Exercise ex-losses-hinge: ``fn(real, fake)`` must equal the hinge discriminator loss."""
    g = torch.Generator().manual_seed(0)
    real, fake = 2 * torch.randn(256, generator=g), 2 * torch.randn(256, generator=g)
    try:
        got = float(fn(real, fake))
    except Exception as err:  # the reader's code may fail in any way; say how
        return _verdict(False, "", f"calling fn(real, fake) raised {type(err).__name__}: {err}")
    expected = float(discriminator_loss("hinge", real, fake))
    return _verdict(_close(got, expected, rel=1e-5),
                    f"{got:.4f} equals ganlib.losses.discriminator_loss('hinge', ...) on random scores.",
                    f"got {got:.4f}, expected {expected:.4f}: the loss is mean(relu(1 - real)) + mean(relu(1 + fake)).")


def check_losses_reverse_kl(answer: float, modes_hit: int = 4, n_modes: int = 8) -> bool:
    """Exercise ex-losses-rkl: reverse KL of a histogram spread evenly over ``modes_hit`` of ``n_modes``."""
    expected = math.log(n_modes / modes_hit)
    return _verdict(_close(answer, expected),
                    f"sum_k p_k log(K p_k) = log({n_modes}/{modes_hit}) = {expected:.4f} nats.",
                    f"each hit mode has p_k = 1/{modes_hit}; use KL(p || uniform) = sum_k p_k log(p_k / (1/{n_modes})).")


# ----------------------------------------------------------------------------- Practice on MNIST
# (book/practice_mnist)


def _as_int(answer) -> int | None:
    try:
        value = float(answer)
    except (TypeError, ValueError):
        return None
    return int(value) if value.is_integer() else None


def check_practice_parameter_count(answer: int) -> bool:
    """Exercise ex-practice-params: parameters of the source's generator, 100-128-256-512-1024-784
    (``ganlib.models.mnist_mlp_generator()``: dense layers with biases, no batch norm)."""
    expected = sum(p.numel() for p in mnist_mlp_generator().parameters())
    widths = [100, 128, 256, 512, 1024, 784]
    weights_only = sum(a * b for a, b in zip(widths, widths[1:]))
    got = _as_int(answer)
    if got == weights_only:
        return _verdict(False, "", "that counts the weight matrices; each layer also has one bias per output.")
    return _verdict(got == expected, f"sum over layers of (inputs + 1) * outputs = {expected:,}.",
                    "a dense layer from a to b units has a * b weights and b biases; add the five layers.")


def check_practice_transposed_conv(answer: int, size: int = 7, kernel: int = 4, stride: int = 2,
                                   padding: int = 1) -> bool:
    """Exercise ex-practice-convt: output side of ConvTranspose2d(kernel, stride, padding) on a
    ``size`` x ``size`` input (defaults: the DCGAN's 7 -> ? stage)."""
    expected = transposed_conv_size(size, kernel, stride, padding)
    return _verdict(_as_int(answer) == expected,
                    f"(size - 1) * stride - 2 * padding + kernel = ({size} - 1) * {stride} - 2 * {padding} + {kernel} "
                    f"= {expected}: each stride-2 stage of the DCGAN doubles the side.",
                    "a transposed convolution undoes a convolution's shape: out = (in - 1) * stride - 2 * padding + kernel.")


#: the training step of exercise ex-practice-bug, one statement per line (line 1 first)
BUGGY_STEP = """fake = G(z)
loss_d = discriminator_loss("nonsaturating", D(real), D(fake))
opt_d.zero_grad()
loss_d.backward()
opt_d.step()
loss_g = generator_loss("nonsaturating", D(fake))
opt_g.zero_grad()
loss_g.backward()
opt_g.step()"""


def check_practice_bug(line: int) -> bool:
    """Exercise ex-practice-bug: the line of :data:`BUGGY_STEP` that must change."""
    got = _as_int(line)
    if got in (4, 8):
        return _verdict(False, "", "that line is where PyTorch complains, not where the mistake is: what does "
                        "loss_d.backward() reach that it should not?")
    return _verdict(got == 2,
                    "line 2 must score D(fake.detach()). Without it, loss_d.backward() also runs back into G "
                    "(wasted work) and frees the graph of G(z), so line 8 raises 'Trying to backward through the "
                    "graph a second time'.",
                    "look for a tensor that D's update uses and that still carries G's graph.")


# ----------------------------------------------------------------------------- Part IV: VAEs
# (book/vae, book/vae_vs_gan)


def check_vae_gaussian_kl(answer: float, mu: float = 1.0, sigma: float = 0.5) -> bool:
    """Exercise ex-vae-kl: KL(N(mu, sigma^2) || N(0, 1)) in nats, for one latent dimension."""
    expected = 0.5 * (mu**2 + sigma**2 - 1 - math.log(sigma**2))
    if _close(answer, 0.5 * (mu**2 + sigma**2 - 1 - math.log(sigma))):
        return _verdict(False, "", "the log term is log sigma^2 = 2 log sigma, not log sigma.")
    return _verdict(_close(answer, expected), f"0.5 (mu^2 + sigma^2 - 1 - log sigma^2) = {expected:.4f} nats.",
                    "use the closed form 0.5 * (mu^2 + sigma^2 - 1 - log sigma^2) of ganlib.losses.gaussian_kl.")


def check_vae_posterior_variance(answer: float, w: float = 2.0, sigma: float = 1.0) -> bool:
    """Exercise ex-vae-ppca: the posterior variance of z in p(z) = N(0, 1), p(x|z) = N(w z, sigma^2)."""
    expected = sigma**2 / (w**2 + sigma**2)
    return _verdict(_close(answer, expected), f"sigma^2 / (w^2 + sigma^2) = {expected:.4f}: one observation "
                    "shrinks the prior's variance 1 by the factor sigma^2 / (w^2 + sigma^2).",
                    "multiply prior and likelihood: the precisions add, 1 + w^2 / sigma^2.")


def check_vs_gan_bits_per_pixel(answer: float, nll_nats: float, pixels: int = 784) -> bool:
    """Exercise ex-vs-gan-bits: a test NLL in nats per image as bits per pixel."""
    expected = nll_nats / (pixels * math.log(2))
    if _close(answer, nll_nats / pixels):
        return _verdict(False, "", "that is nats per pixel; divide by log 2 to get bits.")
    return _verdict(_close(answer, expected), f"{nll_nats:.2f} / (784 log 2) = {expected:.4f} bits per pixel.",
                    "divide by the number of pixels and by log 2 (nats to bits).")


# ----------------------------------------------------------------------------- Part V: evaluation
# (book/evaluation)


def check_eval_fid_shifted_mean(answer: float, shift: float = 0.5, dim: int = 128) -> bool:
    """Exercise ex-eval-fid-shift: FID between N(0, I) and N(shift * 1, I) in ``dim`` dimensions."""
    expected = dim * shift**2
    if _close(answer, shift * math.sqrt(dim)):
        return _verdict(False, "", "that is the distance |mu1 - mu2|; the Frechet distance of FID is its square.")
    return _verdict(_close(answer, expected), f"equal covariances cancel, leaving |mu1 - mu2|^2 = {dim} x {shift}^2 "
                    f"= {expected:g}.", "with Sigma1 = Sigma2 the trace terms cancel: only |mu1 - mu2|^2 remains.")


def check_eval_inception_score_collapse(answer: float, classes_kept: int = 4) -> bool:
    """Exercise ex-eval-is-collapse: the IS of a generator that draws ``classes_kept`` classes evenly,
    each image classified with certainty."""
    expected = float(classes_kept)
    return _verdict(_close(answer, expected), f"KL(p(y|x) || p(y)) = log {classes_kept} for every x, so IS = "
                    f"{classes_kept}: the score counts confidently, evenly used classes, whatever happens inside them.",
                    "p(y|x) is one-hot and p(y) uniform over the kept classes: compute the KL, then exp.")


# ----------------------------------------------------------------------------- Part VI: applications
# (book/applications, applications_image)


def check_app_flipped_auc(answer: float, auc: float) -> bool:
    """Exercise ex-app-flipped-auc: the ROC AUC of the negated score, when the score's AUC is ``auc``."""
    expected = 1.0 - auc
    return _verdict(_close(answer, expected, rel=1e-6, abs_=1e-9),
                    f"1 - {auc:.3f} = {expected:.3f}: negating a score reverses every comparison between an "
                    "anomaly and a normal example, so a detector below 0.5 is a detector of the other way round.",
                    "the AUC is P(score of a random anomaly > score of a random normal example). "
                    "What happens to each such comparison when both scores change sign?")


def check_app_l2_l1_minimisers(l2: float, l1: float, targets=(-1.0, -1.0, -1.0, 1.0)) -> bool:
    """Exercise ex-app-l2-mean: the single output that minimises the summed squared (``l2``) and absolute
    (``l1``) error to equally likely ``targets`` (one pixel of the sharp digits behind one input)."""
    values = sorted(float(t) for t in targets)
    mean = sum(values) / len(values)
    middle = len(values) // 2
    # an even count has a whole interval of medians: any point between the two middle values
    low, high = (values[middle - 1], values[middle]) if len(values) % 2 == 0 else (values[middle],) * 2
    try:
        l1_ok = low - 1e-9 <= float(l1) <= high + 1e-9
    except (TypeError, ValueError):
        l1_ok = False
    return _verdict(_close(l2, mean, rel=1e-6, abs_=1e-9) and l1_ok,
                    f"squared error is minimised by the mean ({mean:+.2f}), a grey that none of the targets has; "
                    f"absolute error by a median ({low:+.2f}" + (f" to {high:+.2f}" if high != low else "") +
                    "), which is one of them: L1 blurs less, but neither picks a sharp digit as a whole.",
                    "set the derivative of sum_i (y - t_i)^2 to zero for L2; for L1, move y and count how many "
                    "targets lie on each side.")


def check_app_receptive_field(answer: int, layers: int = 3, kernel: int = 3) -> bool:
    """Exercise ex-app-receptive-field: the side of the input window one output pixel of
    :class:`ganlib.chapters.applications.Translator` depends on (``layers`` stride-1 convolutions)."""
    expected = 1 + layers * (kernel - 1)
    got = _as_int(answer)
    return _verdict(got == expected,
                    f"each {kernel}x{kernel} convolution widens the window by {kernel - 1}: "
                    f"1 + {layers} x {kernel - 1} = {expected}.",
                    f"one {kernel}x{kernel} convolution sees a {kernel}x{kernel} window; what does a second one, "
                    "applied to its output, see of the original input?")


# ----------------------------------------------------------------------------- Part VII: challenges and FAQ
# (book/challenges, challenges_data, faq)


def check_challenges_update_radius(answer: float, lr: float = 0.1, slope: float = 0.5) -> bool:
    """Exercise ex-chal-radius: the spectral radius of one simultaneous gradient step of the Dirac-GAN
    at its equilibrium, with step size ``lr`` and f'(0) = ``slope`` (0.5 for the standard GAN losses)."""
    expected = math.sqrt(1 + (lr * slope) ** 2)
    return _verdict(_close(answer, expected, rel=1e-6, abs_=1e-9),
                    f"the step is I + lr J with J's eigenvalues +-i f'(0), so its eigenvalues are 1 +- i lr f'(0), "
                    f"of modulus sqrt(1 + (lr f'(0))^2) = {expected:.6f} > 1 for every lr > 0: a smaller step only "
                    "slows the outward spiral.",
                    "write the update as (theta, psi) <- (I + lr J)(theta, psi), with J = [[0, -f'(0)], [f'(0), 0]] "
                    "at the equilibrium; what are J's eigenvalues, and what does adding 1 do to their modulus?")


def check_challenges_small_data_gap(answer: float, train_accuracy: float, held_out_accuracy: float) -> bool:
    """Exercise ex-chal-gap: the gap between D's accuracy on its training reals and on held-out reals."""
    expected = train_accuracy - held_out_accuracy
    return _verdict(_close(answer, expected, rel=1e-6, abs_=1e-9),
                    f"{train_accuracy:.3f} - {held_out_accuracy:.3f} = {expected:.3f}: a gap that a D which only "
                    "told real from fake would not have; it has learned the training images themselves.",
                    "subtract the held-out accuracy from the training accuracy, both as fractions.")
