"""The Dirac-GAN of Mescheder et al. (2018): the smallest GAN whose training does not converge.

Mescheder, Geiger and Nowozin, "Which Training Methods for GANs do actually Converge?", ICML 2018
(``mescheder2018r1`` in references.bib), Section 2. The data distribution is a point mass at 0; the
generator is a point mass at theta, p_theta = delta_theta; the discriminator is linear,
D_psi(x) = psi * x. The paper writes every GAN objective as (its eq. 1)

    L(theta, psi) = E_{p(z)}[ f(D_psi(G_theta(z))) ] + E_{p_D(x)}[ f(-D_psi(x)) ],

maximised by D (over psi) and minimised by G (over theta). For the Dirac-GAN this is
L(theta, psi) = f(psi * theta) + f(0), and gradient training follows the vector field (its eq. 2)

    v(theta, psi) = ( -dL/dtheta, dL/dpsi ) = ( -psi f'(psi theta), theta f'(psi theta) ).

``loss`` picks f and the generator's component of v:

* ``minimax``: f(t) = -log(1 + exp(-t)), so f'(t) = sigmoid(-t) and f'(0) = 1/2; v_theta = -psi f'(psi theta).
* ``nonsaturating``: the same f for D; G minimises -f(-psi theta) instead, v_theta = -psi f'(-psi theta).
* ``wasserstein``: f(t) = t (a WGAN without any Lipschitz constraint), f' = 1; v_theta = -psi.

With f(t) = log sigmoid(t), sigmoid(D_psi) is the probability that a sample is *fake* (D scores
fakes high); ganlib's discriminators score data high, D_ganlib = -D_psi. The sign flip changes
nothing in the dynamics.

R1 (the paper's eq. 9) adds (gamma / 2) E_{p_D}[ |grad_x D_psi(x)|^2 ] = (gamma / 2) psi^2 to the
discriminator's objective (D maximises L - R1), so the psi component of v gains -gamma * psi.

Closed forms that the functions below reproduce (``tests/test_dirac.py``):

* the only equilibrium is (theta, psi) = (0, 0), where the Jacobian of v is
  [[0, -f'(0)], [f'(0), -gamma]]: eigenvalues +-i f'(0) without R1 (the paper's Lemma 2.2), on the
  imaginary axis, and -gamma/2 +- sqrt(gamma^2/4 - f'(0)^2) with R1, whose real parts are negative;
* a simultaneous step x <- x + h v(x) multiplies |x|^2 by exactly 1 + h^2 f'(psi theta)^2 for the
  minimax loss: the iterates spiral outwards for every step size h (the update's Jacobian at 0
  has eigenvalues 1 +- i h f'(0), of modulus sqrt(1 + h^2 f'(0)^2) > 1). The non-saturating loss
  has the same Jacobian at 0, so its iterates leave the equilibrium too, but only locally: further
  out a term of order h (psi theta)^2 damps them, and they settle on a cycle around it;
* alternating steps (here D first, then G with the new psi, the order of ganlib's GANTrainer)
  have an update Jacobian of determinant 1 whose eigenvalues lie on the unit circle for
  h f'(0) < 2: the iterates neither converge nor diverge but cycle. For the linear (Wasserstein)
  game the quadratic form theta^2 + psi^2 + h theta psi is conserved exactly
  (:func:`alternating_invariant`).
"""
from __future__ import annotations

import numpy as np
import torch

LOSSES = ("minimax", "nonsaturating", "wasserstein")
MODES = ("simultaneous", "alternating")


def _check(loss: str, mode: str | None = None) -> None:
    if loss not in LOSSES:
        raise ValueError(f"unknown Dirac-GAN loss {loss!r}; choose from {', '.join(LOSSES)}")
    if mode is not None and mode not in MODES:
        raise ValueError(f"unknown update mode {mode!r}; choose from {', '.join(MODES)}")


def _sigmoid(t):
    if isinstance(t, torch.Tensor):
        return torch.sigmoid(t)
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(t, dtype=np.float64)))  # overflow-free sigmoid


def f_prime(t, loss: str = "minimax"):
    """f'(t) of the paper's eq. 1: sigmoid(-t) for the standard GAN losses, 1 for Wasserstein."""
    _check(loss)
    if loss == "wasserstein":
        return torch.ones_like(t) if isinstance(t, torch.Tensor) else np.ones_like(np.asarray(t, dtype=np.float64))
    return _sigmoid(-t)


def vector_field(theta, psi, loss: str = "minimax", gamma: float = 0.0):
    """The gradient vector field v(theta, psi) = (-dL_G/dtheta, dL_D/dpsi) of the Dirac-GAN (eq. 2),
    with R1 of weight ``gamma`` (eq. 9): v_psi = theta f'(psi theta) - gamma psi.

    Works on floats, NumPy arrays (e.g. a grid for a quiver plot) and torch tensors (for autograd).
    """
    _check(loss)
    if loss == "nonsaturating":  # G minimises -f(-psi theta): the same f, the other sign of D's score
        v_theta = -psi * f_prime(-psi * theta, loss)
    else:
        v_theta = -psi * f_prime(psi * theta, loss)
    v_psi = theta * f_prime(psi * theta, loss) - gamma * psi
    return v_theta, v_psi


def step(theta: float, psi: float, lr: float, loss: str = "minimax", gamma: float = 0.0,
         mode: str = "simultaneous"):
    """One gradient step of both players with step size ``lr``.

    ``simultaneous``: both move along v at the current point. ``alternating``: D moves first,
    then G moves using D's new psi (one update each, as in Goodfellow et al.'s Algorithm 1 with k = 1).
    """
    _check(loss, mode)
    if mode == "simultaneous":
        v_theta, v_psi = vector_field(theta, psi, loss, gamma)
        return theta + lr * v_theta, psi + lr * v_psi
    _, v_psi = vector_field(theta, psi, loss, gamma)
    psi = psi + lr * v_psi
    v_theta, _ = vector_field(theta, psi, loss, gamma)
    return theta + lr * v_theta, psi


def trajectory(theta0: float = 1.0, psi0: float = 1.0, steps: int = 500, lr: float = 0.1,
               loss: str = "minimax", gamma: float = 0.0, mode: str = "simultaneous") -> np.ndarray:
    """The iterates of :func:`step` from (theta0, psi0): an array of shape (steps + 1, 2), rows (theta, psi)."""
    _check(loss, mode)
    out = np.empty((steps + 1, 2))
    theta, psi = float(theta0), float(psi0)
    out[0] = theta, psi
    for k in range(steps):
        theta, psi = step(theta, psi, lr, loss, gamma, mode)
        out[k + 1] = float(theta), float(psi)
    return out


def jacobian(theta: float = 0.0, psi: float = 0.0, loss: str = "minimax", gamma: float = 0.0) -> np.ndarray:
    """The Jacobian of :func:`vector_field` at (theta, psi), by autograd (rows: v_theta, v_psi)."""
    x = torch.tensor([theta, psi], dtype=torch.float64)
    J = torch.autograd.functional.jacobian(lambda x: torch.stack(vector_field(x[0], x[1], loss, gamma)), x)
    return J.numpy()


def update_jacobian(lr: float, loss: str = "minimax", gamma: float = 0.0, mode: str = "simultaneous",
                    theta: float = 0.0, psi: float = 0.0) -> np.ndarray:
    """The Jacobian of one :func:`step` (the update operator) at (theta, psi), by autograd."""
    x = torch.tensor([theta, psi], dtype=torch.float64)
    J = torch.autograd.functional.jacobian(lambda x: torch.stack(step(x[0], x[1], lr, loss, gamma, mode)), x)
    return J.numpy()


def equilibrium_eigenvalues(loss: str = "minimax", gamma: float = 0.0) -> np.ndarray:
    """Closed form: the eigenvalues of v's Jacobian at (0, 0), -gamma/2 +- sqrt(gamma^2/4 - f'(0)^2)
    (+-i f'(0) for gamma = 0, Lemma 2.2 of the paper)."""
    fp0 = float(f_prime(0.0, loss))
    root = np.sqrt(complex(gamma ** 2 / 4 - fp0 ** 2))
    return np.array([-gamma / 2 + root, -gamma / 2 - root])


def alternating_invariant(theta, psi, lr: float):
    """theta^2 + psi^2 + lr * theta * psi: conserved exactly by alternating steps (D first) of the
    linear game v = (-psi, theta), i.e. the Wasserstein Dirac-GAN; its level sets are the ellipses
    on which those iterates cycle."""
    return theta ** 2 + psi ** 2 + lr * theta * psi


def plot_trajectory(ax, traj: np.ndarray, loss: str = "minimax", gamma: float = 0.0, title: str | None = None,
                    lim: float | None = None, color: str = "tab:blue"):
    """One panel in the (theta, psi) plane: the vector field (grey arrows), the iterates, their start
    (a dot) and the equilibrium (0, 0) (a cross). Returns the Axes."""
    if lim is None:
        lim = 1.15 * max(float(np.abs(traj).max()), 1.0)
    grid = np.linspace(-lim, lim, 15)
    T, P = np.meshgrid(grid, grid)
    U, V = vector_field(T, P, loss, gamma)
    ax.quiver(T, P, U, V, color="0.75", angles="xy", width=0.004)
    ax.plot(traj[:, 0], traj[:, 1], color=color, lw=1)
    ax.plot(*traj[0], "o", color=color, ms=4)
    ax.plot(0, 0, "kx", ms=7)
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.set_xlabel(r"$\theta$ (generator)")
    ax.set_ylabel(r"$\psi$ (discriminator)")
    if title:
        ax.set_title(title, fontsize=9)
    return ax
