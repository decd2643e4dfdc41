"""ganlib.chapters.dirac: the Dirac-GAN of Mescheder et al. (2018) against its closed forms."""
import numpy as np
import pytest

from ganlib.chapters import dirac


@pytest.mark.parametrize("loss, fp0", [("minimax", 0.5), ("nonsaturating", 0.5), ("wasserstein", 1.0)])
def test_equilibrium_jacobian_is_a_rotation_without_r1(loss, fp0):
    # the paper's Lemma 2.2: J = [[0, -f'(0)], [f'(0), 0]] at (0, 0), eigenvalues +-i f'(0)
    J = dirac.jacobian(0.0, 0.0, loss)
    assert np.allclose(J, [[0.0, -fp0], [fp0, 0.0]], atol=1e-12)
    eig = np.sort_complex(np.linalg.eigvals(J))
    assert np.allclose(eig, [-1j * fp0, 1j * fp0], atol=1e-12)
    assert np.allclose(np.sort_complex(dirac.equilibrium_eigenvalues(loss)), eig, atol=1e-12)


@pytest.mark.parametrize("gamma", [0.3, 1.0, 3.0])  # complex, repeated and real eigenvalues for f'(0) = 1/2
def test_r1_moves_the_eigenvalues_into_the_left_half_plane(gamma):
    J = dirac.jacobian(0.0, 0.0, "minimax", gamma)
    assert np.allclose(J, [[0.0, -0.5], [0.5, -gamma]], atol=1e-12)
    eig = np.linalg.eigvals(J)
    assert np.all(eig.real < 0)
    # closed form -gamma/2 +- sqrt(gamma^2/4 - f'(0)^2)
    expected = dirac.equilibrium_eigenvalues("minimax", gamma)
    assert np.allclose(np.sort_complex(eig), np.sort_complex(expected), atol=1e-6)
    assert np.isclose(expected.sum().real, -gamma) and np.isclose(np.prod(expected).real, 0.25)


def test_simultaneous_steps_grow_the_norm_by_the_closed_form_factor():
    h = 0.1
    traj = dirac.trajectory(1.0, 1.0, steps=300, lr=h, loss="minimax", mode="simultaneous")
    sq = (traj ** 2).sum(1)
    # |x_{k+1}|^2 = (1 + h^2 f'(psi_k theta_k)^2) |x_k|^2, exactly (the cross terms cancel)
    factor = 1 + h ** 2 * dirac.f_prime(traj[:-1, 0] * traj[:-1, 1]) ** 2
    assert np.allclose(sq[1:], factor * sq[:-1], rtol=1e-12)
    assert np.all(np.diff(sq) > 0) and sq[-1] > 1.2 * sq[0]
    # the update's Jacobian at 0: eigenvalues 1 +- i h f'(0), modulus sqrt(1 + h^2 / 4) > 1
    eig = np.linalg.eigvals(dirac.update_jacobian(h, "minimax", mode="simultaneous"))
    assert np.allclose(np.sort_complex(eig), [1 - 0.5j * h, 1 + 0.5j * h])


def test_nonsaturating_simultaneous_steps_also_leave_the_equilibrium():
    # same Jacobian at 0 as minimax, so the same local instability: eigenvalues 1 +- i h f'(0)
    h = 0.1
    eig = np.linalg.eigvals(dirac.update_jacobian(h, "nonsaturating", mode="simultaneous"))
    assert np.allclose(np.abs(eig), np.sqrt(1 + h ** 2 / 4))
    traj = dirac.trajectory(0.05, 0.05, steps=3000, lr=h, loss="nonsaturating", mode="simultaneous")
    r = np.linalg.norm(traj, axis=1)
    assert r[-1] > 3 * r[0]  # (further out, a damping term of order h (theta psi)^2 stops the growth)


@pytest.mark.parametrize("h", [0.05, 0.3, 1.0])
def test_alternating_steps_cycle_on_a_conserved_ellipse_in_the_linear_game(h):
    traj = dirac.trajectory(1.0, 1.0, steps=2000, lr=h, loss="wasserstein", mode="alternating")
    q = dirac.alternating_invariant(traj[:, 0], traj[:, 1], h)
    assert np.allclose(q, q[0], rtol=1e-9)
    # det 1 and |lambda| = 1: neither convergence nor divergence
    eig = np.linalg.eigvals(dirac.update_jacobian(h, "wasserstein", mode="alternating"))
    assert np.allclose(np.abs(eig), 1.0) and np.isclose(np.prod(eig).real, 1.0)
    # the simultaneous iterates of the same game grow by exactly sqrt(1 + h^2) per step
    sim = dirac.trajectory(1.0, 1.0, steps=50, lr=h, loss="wasserstein", mode="simultaneous")
    assert np.isclose(np.linalg.norm(sim[-1]) / np.linalg.norm(sim[0]), (1 + h ** 2) ** 25)


def test_alternating_steps_stay_bounded_in_the_standard_game():
    traj = dirac.trajectory(1.0, 1.0, steps=3000, lr=0.1, loss="minimax", mode="alternating")
    r = np.linalg.norm(traj, axis=1)
    assert 0.8 * r[0] < r.min() and r.max() < 1.2 * r[0]  # no spiral in or out over 3,000 steps
    # and it keeps moving: theta changes sign many times (a cycle, not a fixed point)
    assert (np.diff(np.sign(traj[:, 0])) != 0).sum() >= 4


@pytest.mark.parametrize("mode", dirac.MODES)
@pytest.mark.parametrize("loss", ["minimax", "nonsaturating"])
def test_r1_makes_both_update_rules_converge(loss, mode):
    traj = dirac.trajectory(1.0, 1.0, steps=3000, lr=0.1, loss=loss, gamma=0.3, mode=mode)
    assert np.linalg.norm(traj[-1]) < 1e-3 * np.linalg.norm(traj[0])
    # the simultaneous update's spectral radius at 0 is |1 + h lambda| < 1 for h < gamma / f'(0)^2
    eig = np.linalg.eigvals(dirac.update_jacobian(0.1, loss, 0.3, mode))
    assert np.abs(eig).max() < 1


def test_bad_names_are_refused():
    with pytest.raises(ValueError, match="unknown Dirac-GAN loss"):
        dirac.vector_field(0.0, 0.0, "hinge")
    with pytest.raises(ValueError, match="unknown update mode"):
        dirac.trajectory(mode="adam")
