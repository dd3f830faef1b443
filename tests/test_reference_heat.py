"""The sine-series heat solution: PDE, boundary and initial data, projection, convergence."""

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from bpinn.models.pdes import partial, second_partial  # noqa: E402
from bpinn.reference.heat import heat_sine_coefficients, heat_sine_series  # noqa: E402

INTERVALS = [(0.0, 1.0), (-1.0, 2.5)]
COEFFS = np.array([1.0, -0.3, 0.5, 0.0, 0.12])


@pytest.mark.parametrize("interval", INTERVALS)
@pytest.mark.parametrize("t0", [0.0, 0.4])
def test_series_satisfies_heat_equation(interval, t0):
    D = 0.23
    a, b = interval

    def u(z):
        return heat_sine_series(z[0], z[1], D, COEFFS, interval=interval, t0=t0)

    rng = np.random.default_rng(0)
    z = jnp.asarray(np.column_stack([rng.uniform(a, b, 50), rng.uniform(t0, t0 + 2.0, 50)]))
    r = jax.vmap(lambda zi: partial(u, zi, 1) - D * second_partial(u, zi, 0))(z)
    assert float(jnp.max(jnp.abs(r))) < 1e-10


@pytest.mark.parametrize("interval", INTERVALS)
def test_boundary_and_initial_values(interval):
    a, b = interval
    t = jnp.linspace(0.0, 3.0, 7)
    for x_edge in (a, b):
        u_edge = heat_sine_series(x_edge, t, 0.4, COEFFS, interval=interval, t0=0.0)
        np.testing.assert_allclose(u_edge, 0.0, atol=1e-14)
    x = np.linspace(a, b, 101)
    u_init = heat_sine_series(x, 1.5, 0.4, COEFFS, interval=interval, t0=1.5)
    k = np.arange(1, COEFFS.size + 1)
    expected = np.sin(np.pi * np.outer(x - a, k) / (b - a)) @ COEFFS
    np.testing.assert_allclose(u_init, expected, atol=1e-14)


def test_single_mode_decay_and_broadcasting():
    D, L = 0.05, 2.0
    x = jnp.linspace(0.0, L, 11)[:, None]  # (11, 1)
    t = jnp.array([0.0, 0.5, 2.0])  # (3,)
    u = heat_sine_series(x, t, D, [0.0, 2.0], interval=(0.0, L))
    assert u.shape == (11, 3)
    expected = 2.0 * np.sin(2 * np.pi * x / L) * np.exp(-D * (2 * np.pi / L) ** 2 * t)
    np.testing.assert_allclose(u, expected, atol=1e-14)


def test_differentiable_in_D():
    x, t = 0.3, 0.8
    b = jnp.asarray(COEFFS)

    def u_of_D(D):
        return heat_sine_series(x, t, D, b)

    k = np.arange(1, COEFFS.size + 1)
    rate = (k * np.pi) ** 2
    expected = np.sum(COEFFS * np.sin(k * np.pi * x) * (-rate * t) * np.exp(-0.1 * rate * t))
    np.testing.assert_allclose(jax.grad(u_of_D)(0.1), expected, rtol=1e-12)
    np.testing.assert_allclose(jax.jit(jax.grad(u_of_D))(0.1), expected, rtol=1e-12)


@pytest.mark.parametrize("interval", INTERVALS)
def test_projection_recovers_known_coefficients(interval):
    a, b = interval
    k = np.arange(1, COEFFS.size + 1)

    def u0(x):
        return jnp.sin(jnp.pi * jnp.outer(x - a, k) / (b - a)) @ COEFFS

    got = heat_sine_coefficients(u0, 8, interval=interval)
    np.testing.assert_allclose(got, np.r_[COEFFS, 0.0, 0.0, 0.0], atol=1e-13)


def test_projection_of_x_one_minus_x():
    # b_k = 2 int_0^1 x(1-x) sin(k pi x) dx = 4 (1 - (-1)^k) / (k pi)^3: 8 / (k pi)^3 for odd k.
    K = 40
    b = np.asarray(heat_sine_coefficients(lambda x: x * (1 - x), K))
    k = np.arange(1, K + 1)
    exact = 4 * (1 - (-1.0) ** k) / (k * np.pi) ** 3
    np.testing.assert_allclose(b, exact, rtol=1e-12, atol=1e-15)


def test_projection_coefficients_decay_like_k_cubed():
    # For u0 smooth with u0(0) = u0(1) = 0 but u0''(0) != 0, two integrations by parts give
    # |b_k| ~ k^-3: the slope of log|b_k| against log k over odd k is -3.
    b = np.asarray(heat_sine_coefficients(lambda x: x * (1 - x), 64))
    k = np.arange(1, 65)
    odd = k % 2 == 1
    slope = np.polyfit(np.log(k[odd][4:]), np.log(np.abs(b[odd][4:])), 1)[0]
    assert slope == pytest.approx(-3.0, abs=0.01)


def test_projected_series_converges_at_algebraic_rate():
    # |b_k| ~ k^-3 implies: sup-norm truncation error <= sum_{k>K} |b_k| ~ K^-2, and
    # L2 error = sqrt(L/2 * sum_{k>K} b_k^2) ~ K^-2.5. Checked at t = t0, where the heat
    # semigroup has not yet smoothed anything (for t > t0 convergence is exponential).
    x = np.linspace(0.0, 1.0, 2001)
    exact = x * (1 - x)
    Ks = np.array([8, 16, 32, 64])
    sup_err, l2_err = [], []
    for K in Ks:
        b = heat_sine_coefficients(lambda x: x * (1 - x), int(K))
        err = np.asarray(heat_sine_series(x, 0.0, 0.1, b)) - exact
        sup_err.append(np.max(np.abs(err)))
        l2_err.append(np.sqrt(np.trapezoid(err**2, x)))
    sup_rates = np.diff(np.log(sup_err)) / np.diff(np.log(Ks))
    l2_rates = np.diff(np.log(l2_err)) / np.diff(np.log(Ks))
    assert np.all(np.diff(sup_err) < 0) and np.all(np.diff(l2_err) < 0)
    np.testing.assert_allclose(sup_rates, -2.0, atol=0.05)
    np.testing.assert_allclose(l2_rates, -2.5, atol=0.05)
    # Constant of the sup bound: sum_{k>K odd} 8 / (k pi)^3 ~ 1 / (pi^3 K^2).
    assert sup_err[-1] <= 8 / np.pi**3 * sum(1 / k**3 for k in range(Ks[-1] + 1, 10**5, 2))


def test_series_errors():
    with pytest.raises(ValueError, match=r"coefficients must be a non-empty 1-D"):
        heat_sine_series(0.5, 0.1, 0.1, [])
    with pytest.raises(ValueError, match=r"coefficients must be a non-empty 1-D"):
        heat_sine_series(0.5, 0.1, 0.1, [[1.0]])
    with pytest.raises(ValueError, match=r"interval must be a pair \(a, b\)"):
        heat_sine_series(0.5, 0.1, 0.1, [1.0], interval=(1.0, 0.0))
    with pytest.raises(ValueError, match=r"D must be a scalar"):
        heat_sine_series(0.5, 0.1, [0.1, 0.2], [1.0])
    with pytest.raises(ValueError, match=r"\(3,\) and \(2,\)|broadcast|Incompatible"):
        heat_sine_series(jnp.zeros(3), jnp.zeros(2), 0.1, [1.0])


def test_coefficients_errors():
    with pytest.raises(ValueError, match=r"K must be an int >= 1, got 0"):
        heat_sine_coefficients(jnp.sin, 0)
    with pytest.raises(ValueError, match=r"num_quad must be an int >= 1"):
        heat_sine_coefficients(jnp.sin, 3, num_quad=0)
    with pytest.raises(ValueError, match=r"interval must be a pair"):
        heat_sine_coefficients(jnp.sin, 3, interval=(0.0,))
    with pytest.raises(ValueError, match=r"u0_fn must be vectorised"):
        heat_sine_coefficients(lambda x: 1.0, 3)


def test_grid_posterior_matches_the_linearised_posterior():
    """Flat priors, 48 readings of a known field with noise sd 0.01: the grid posterior of D
    is centred within 3 sd of the truth and its sd is the delta-method sd
    sigma / |du/dD| (within 15%: sigma itself is inferred from 48 readings)."""
    from bpinn.reference.heat import heat_grid_posterior

    rng = np.random.default_rng(4)
    x, t = np.meshgrid(np.linspace(0.15, 0.9, 6), np.linspace(0.1, 0.8, 8))
    x, t = x.ravel(), t.ravel()
    modes, d_true, noise = [1.0, 0.0, 0.5], 0.05, 0.01
    u = np.asarray(heat_sine_series(x, t, d_true, modes)) + rng.normal(0, noise, x.size)
    post = heat_grid_posterior(x, t, u, modes, np.linspace(0.03, 0.07, 801),
                               np.linspace(0.004, 0.03, 400), np.zeros_like, np.zeros_like)
    sensitivity = np.asarray(jax.jacfwd(lambda d: heat_sine_series(x, t, d, modes))(d_true))
    linear_sd = noise / np.sqrt(np.sum(sensitivity**2))
    assert abs(post["mean"] - d_true) < 3 * post["sd"]
    assert post["sd"] == pytest.approx(linear_sd, rel=0.15)
    assert post["q2.5"] < post["mean"] < post["q97.5"]
