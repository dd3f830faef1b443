"""Spectral reference solvers: closed forms, PDE residuals in the pdes.py conventions, gradients.

Band-limited data are represented exactly by the grid's modes, so every solution below is exact
up to rounding; the bound 1e-11 leaves room for the O(num_modes * eps) rounding of the sums.
"""

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from bpinn.models.pdes import advection, heat, poisson  # noqa: E402
from bpinn.models.problem import Domain  # noqa: E402
from bpinn.reference.heat import heat_sine_series  # noqa: E402
from bpinn.reference.spectral import (  # noqa: E402
    advection_spectral,
    heat_spectral,
    poisson_spectral,
    schrodinger_spectral,
    spectral_grid,
)

EXACT = 1e-11


def random_points(rng, boxes, n=40):
    """(n, len(boxes)) points uniform in the product of the intervals."""
    return np.column_stack([rng.uniform(lo, hi, n) for lo, hi in boxes])


def central_difference(fn, value, step):
    """Fourth-order central difference: truncation ~ step^4 f^(5) / 30, rounding ~ eps / step."""
    return (
        -fn(value + 2 * step) + 8 * fn(value + step) - 8 * fn(value - step) + fn(value - 2 * step)
    ) / (12 * step)


# ---------------------------------------------------------------------------------------------
# Grids
# ---------------------------------------------------------------------------------------------


def test_spectral_grid_nodes():
    (x,) = spectral_grid((-1.0, 3.0), 4)
    np.testing.assert_allclose(x, [-1.0, 0.0, 1.0, 2.0])
    (x,) = spectral_grid((-1.0, 3.0), 3, "dirichlet")
    np.testing.assert_allclose(x, [0.0, 1.0, 2.0])
    x, y = spectral_grid(((0.0, 1.0), (0.0, 2.0)), (2, 3), ("periodic", "dirichlet"))
    np.testing.assert_allclose(x, [0.0, 0.5])
    np.testing.assert_allclose(y, [0.5, 1.0, 1.5])


# ---------------------------------------------------------------------------------------------
# Heat
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("interval", [(0.0, 1.0), (-1.0, 2.5)])
@pytest.mark.parametrize("n", [15, 16])  # odd and even (even: the Nyquist mode is present)
def test_heat_periodic_modes_decay_exactly(interval, n):
    a, b = interval
    L, D, t0 = b - a, 0.13, 0.2
    # Wavenumbers 0, 1, 3 and the highest the grid holds (the Nyquist cosine for even n).
    top = n // 2
    modes = [(0, 0.7, "cos"), (1, 1.0, "cos"), (3, -0.4, "sin"), (top, 0.25, "cos")]

    def exact(x, t):
        total = 0.0
        for m, amp, kind in modes:
            kappa = 2 * np.pi * m / L
            wave = np.cos if kind == "cos" else np.sin
            total = total + amp * wave(kappa * (x - a)) * np.exp(-D * kappa**2 * (t - t0))
        return total

    (nodes,) = spectral_grid(interval, n)
    pts = random_points(np.random.default_rng(1), [interval, (t0, t0 + 1.0)])
    u = heat_spectral(pts, D, exact(nodes, t0), space=interval, t0=t0)
    np.testing.assert_allclose(u, exact(pts[:, 0], pts[:, 1]), rtol=0, atol=EXACT)


@pytest.mark.parametrize("interval", [(0.0, 1.0), (-1.0, 2.5)])
def test_heat_dirichlet_sine_modes_decay_like_exp_minus_d_k2_pi2_t(interval):
    a, b = interval
    L, D = b - a, 0.23
    coefficients = np.array([1.0, -0.3, 0.5, 0.0, 0.12])
    k = np.arange(1, 6)

    def u0(x):
        return jnp.sin(jnp.pi * jnp.outer(x - a, k) / L) @ coefficients

    pts = random_points(np.random.default_rng(2), [interval, (0.0, 2.0)])
    u = heat_spectral(pts, D, u0, space=interval, boundary="dirichlet", grid_shape=8)
    x, t = pts[:, 0], pts[:, 1]
    decay = np.exp(-D * np.outer(t, k**2) * np.pi**2 / L**2)
    exact = (np.sin(np.pi * np.outer(x - a, k) / L) * decay) @ coefficients
    np.testing.assert_allclose(u, exact, rtol=0, atol=EXACT)
    # Same answer as the existing sine-series module.
    series = heat_sine_series(x, t, D, coefficients, interval=interval)
    np.testing.assert_allclose(u, series, rtol=0, atol=EXACT)


def test_heat_dirichlet_boundary_values_by_linear_lift():
    a, b, D = -1.0, 1.0, 0.4
    g_a, g_b = 2.0, -1.0

    def line(x):
        return g_a + (g_b - g_a) * (x - a) / (b - a)

    def exact(x, t):  # the line is steady; the sine mode on top of it decays
        return line(x) + np.sin(2 * np.pi * (x - a) / (b - a)) * np.exp(-D * np.pi**2 * t)

    (nodes,) = spectral_grid((a, b), 12, "dirichlet")
    pts = random_points(np.random.default_rng(3), [(a, b), (0.0, 1.0)])
    u = heat_spectral(pts, D, exact(nodes, 0.0), space=(a, b), boundary="dirichlet",
                      boundary_values=(g_a, g_b))
    np.testing.assert_allclose(u, exact(pts[:, 0], pts[:, 1]), rtol=0, atol=EXACT)
    ends = heat_spectral(np.array([[a, 0.3], [b, 0.7]]), D, exact(nodes, 0.0), space=(a, b),
                         boundary="dirichlet", boundary_values=(g_a, g_b))
    np.testing.assert_allclose(ends, [g_a, g_b], rtol=0, atol=EXACT)


@pytest.mark.parametrize("boundary", ["dirichlet", ("periodic", "dirichlet"), "periodic"])
def test_heat_2d_product_modes(boundary):
    space = ((0.0, 1.0), (-1.0, 1.0))
    kinds = (boundary,) * 2 if isinstance(boundary, str) else boundary
    D, g = 0.05, 0.0 if kinds == ("periodic", "periodic") else 0.3

    def axis_mode(kind, coord, lo, hi, m):
        if kind == "periodic":
            return np.cos(2 * np.pi * m * (coord - lo) / (hi - lo)), 2 * np.pi * m / (hi - lo)
        return np.sin(np.pi * m * (coord - lo) / (hi - lo)), np.pi * m / (hi - lo)

    def exact(x, y, t):
        total = g
        for (mx, my), amp in (((1, 1), 1.0), ((2, 3), -0.5)):
            fx, kx = axis_mode(kinds[0], x, *space[0], mx)
            fy, ky = axis_mode(kinds[1], y, *space[1], my)
            total = total + amp * fx * fy * np.exp(-D * (kx**2 + ky**2) * t)
        return total

    x, y = np.meshgrid(*spectral_grid(space, (10, 12), boundary), indexing="ij")
    pts = random_points(np.random.default_rng(4), [*space, (0.0, 1.0)])
    u = heat_spectral(pts, D, exact(x, y, 0.0), space=space, boundary=boundary,
                      boundary_values=None if g == 0.0 else g)
    np.testing.assert_allclose(u, exact(pts[:, 0], pts[:, 1], pts[:, 2]), rtol=0, atol=EXACT)


def test_heat_satisfies_the_pdes_py_operator():
    # The series, differentiated by the package's own jvp helpers, has zero heat residual: the
    # solver and pdes.heat agree on the sign and meaning of D.
    space, D = ((0.0, 2.0), (0.0, 1.0)), 0.3
    pde = heat(Domain(space=space, time=(0.0, 1.0)))
    rng = np.random.default_rng(5)
    data = rng.normal(size=(8, 8))  # arbitrary band-limited data

    def u_fn(z):
        return heat_spectral(z[None], D, data, space=space, boundary="periodic")[0]

    z = jnp.asarray(random_points(rng, [*space, (0.0, 0.5)], n=10))
    residual = jax.jit(jax.vmap(lambda zi: pde.operator(u_fn, zi, {"D": D})))(z)
    assert float(jnp.max(jnp.abs(residual))) < 1e-9


def test_heat_callable_initial_on_nodes_reproduces_grid_samples():
    # At t = t0 and at the nodes the series interpolates the data exactly, band-limited or not.
    (nodes,) = spectral_grid((0.0, 1.0), 9, "dirichlet")
    u0 = lambda x: x * (1.0 - x) ** 2 + 0.1  # noqa: E731  (not zero at x = 0: Gibbs elsewhere)
    pts = np.column_stack([nodes, np.zeros_like(nodes)])
    u = heat_spectral(pts, 0.1, u0, space=(0.0, 1.0), boundary="dirichlet", grid_shape=9)
    np.testing.assert_allclose(u, u0(nodes), rtol=0, atol=EXACT)


# ---------------------------------------------------------------------------------------------
# Advection
# ---------------------------------------------------------------------------------------------


def test_advection_shifts_band_limited_profile_exactly():
    a, b, c = -1.0, 1.0, 0.8
    L = b - a

    def profile(x):
        xi = 2 * np.pi * (x - a) / L
        return 0.3 + np.sin(xi) - 0.5 * np.cos(3 * xi) + 0.2 * np.cos(8 * xi)  # 8 = Nyquist

    (nodes,) = spectral_grid((a, b), 16)
    pts = random_points(np.random.default_rng(6), [(a, b), (0.0, 3.0)])
    u = advection_spectral(pts, c, profile(nodes), space=(a, b))
    np.testing.assert_allclose(u, profile(pts[:, 0] - c * pts[:, 1]), rtol=0, atol=EXACT)


def test_advection_smooth_periodic_profile_to_spectral_accuracy():
    # exp(sin(x)) has Fourier coefficients I_m(1) ~ 1 / (2^m m!): 64 nodes leave < 1e-40.
    c, t = -0.37, 2.2
    profile = lambda x: jnp.exp(jnp.sin(x))  # noqa: E731
    pts = random_points(np.random.default_rng(7), [(0.0, 2 * np.pi), (0.0, t)])
    u = advection_spectral(pts, c, profile, space=(0.0, 2 * np.pi), grid_shape=64)
    np.testing.assert_allclose(u, np.exp(np.sin(pts[:, 0] - c * pts[:, 1])), rtol=0, atol=EXACT)


def test_advection_2d_and_pdes_py_operator():
    space, c = ((0.0, 1.0), (0.0, 2.0)), (0.5, -0.3)

    def profile(x, y):
        return jnp.sin(2 * jnp.pi * x) * jnp.cos(np.pi * y) + 0.4 * jnp.cos(2 * np.pi * y)

    pts = random_points(np.random.default_rng(8), [*space, (0.0, 1.5)])
    u = advection_spectral(pts, c, profile, space=space, grid_shape=(8, 10))
    shifted = profile(pts[:, 0] - c[0] * pts[:, 2], pts[:, 1] - c[1] * pts[:, 2])
    np.testing.assert_allclose(u, shifted, rtol=0, atol=EXACT)

    pde = advection(Domain(space=space, time=(0.0, 1.5)))
    coeffs = {"c_x": c[0], "c_y": c[1]}

    def u_fn(z):
        return advection_spectral(z[None], c, profile, space=space, grid_shape=(8, 10))[0]

    residual = jax.jit(jax.vmap(lambda z: pde.operator(u_fn, z, coeffs)))(jnp.asarray(pts[:10]))
    assert float(jnp.max(jnp.abs(residual))) < 1e-9


# ---------------------------------------------------------------------------------------------
# Linear Schrodinger
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("m", [-3, 0, 5])
def test_schrodinger_plane_wave(m):
    a, b = 0.0, 2.0
    kappa = 2 * np.pi * m / (b - a)
    pts = random_points(np.random.default_rng(9), [(a, b), (0.0, 1.0)])
    h = schrodinger_spectral(pts, lambda x: jnp.exp(1j * kappa * x), space=(a, b), grid_shape=12)
    exact = np.exp(1j * (kappa * pts[:, 0] - 0.5 * kappa**2 * pts[:, 1]))
    np.testing.assert_allclose(h, exact, rtol=0, atol=EXACT)


def test_schrodinger_gaussian_packet():
    # Free-space packet h0 = exp(-x^2 / (2 s^2) + i k0 x):
    #   h = (1 + i t / s^2)^(-1/2) exp(-(x - k0 t)^2 / (2 s^2 (1 + i t / s^2)) + i k0 x
    #       - i k0^2 t / 2).
    # On [-40, 40] the periodic images are below exp(-30^2 / 20) ~ 1e-20 for t <= 2, and the
    # spectrum exp(-s^2 (kappa - k0)^2 / 2) is below 1e-17 at the Nyquist wavenumber of 256 nodes.
    s, k0 = 1.0, 1.5

    def packet(x, t):
        spread = 1 + 1j * t / s**2
        return spread**-0.5 * np.exp(
            -((x - k0 * t) ** 2) / (2 * s**2 * spread) + 1j * k0 * x - 0.5j * k0**2 * t
        )

    pts = random_points(np.random.default_rng(10), [(-5.0, 8.0), (0.0, 2.0)])
    h = schrodinger_spectral(pts, lambda x: packet(x, 0.0), space=(-40.0, 40.0), grid_shape=256)
    np.testing.assert_allclose(h, packet(pts[:, 0], pts[:, 1]), rtol=0, atol=1e-10)
    # Mass is conserved: |h|^2 integrates to s sqrt(pi) at every time.
    x = np.linspace(-40.0, 40.0, 4001)
    h2 = schrodinger_spectral(np.column_stack([x, np.full_like(x, 2.0)]),
                              lambda x: packet(x, 0.0), space=(-40.0, 40.0), grid_shape=256)
    assert np.trapezoid(np.abs(h2) ** 2, x) == pytest.approx(s * np.sqrt(np.pi), rel=1e-10)


def test_schrodinger_2d_dirichlet_mode():
    space = ((0.0, 1.0), (0.0, 1.0))
    pts = random_points(np.random.default_rng(11), [*space, (0.0, 1.0)])
    h = schrodinger_spectral(
        pts, lambda x, y: jnp.sin(np.pi * x) * jnp.sin(2 * np.pi * y) + 0j, space=space,
        boundary="dirichlet", grid_shape=6, dispersion=0.7,
    )
    x, y, t = pts.T
    exact = np.sin(np.pi * x) * np.sin(2 * np.pi * y) * np.exp(-0.7j * 5 * np.pi**2 * t)
    np.testing.assert_allclose(h, exact, rtol=0, atol=EXACT)


# ---------------------------------------------------------------------------------------------
# Poisson
# ---------------------------------------------------------------------------------------------


def test_poisson_1d_dirichlet_manufactured_with_boundary_values():
    # u = 1 + x / 2 + sin(pi x) + 0.3 sin(4 pi x) on [0, 2]; -k u'' = f has no contribution
    # from the line, which the boundary values carry.
    a, b, k = 0.0, 2.0, 1.7

    def u(x):
        return 1 + x / 2 + np.sin(np.pi * x) + 0.3 * np.sin(4 * np.pi * x)

    def f(x):
        return k * np.pi**2 * (np.sin(np.pi * x) + 0.3 * 16 * np.sin(4 * np.pi * x))

    pts = random_points(np.random.default_rng(12), [(a, b)])
    got = poisson_spectral(pts, k, f, space=(a, b), grid_shape=16, boundary_values=(1.0, 2.0))
    np.testing.assert_allclose(got, u(pts[:, 0]), rtol=0, atol=EXACT)


@pytest.mark.parametrize("boundary", ["dirichlet", "periodic", ("periodic", "dirichlet")])
def test_poisson_2d_manufactured_and_pdes_py_operator(boundary):
    space, k = ((0.0, 1.0), (0.0, 2.0)), 0.6
    kinds = (boundary,) * 2 if isinstance(boundary, str) else boundary

    def factor(kind, coord, length, m):
        if kind == "periodic":  # a zero-mean periodic mode
            return jnp.cos(2 * np.pi * m * coord / length), 2 * np.pi * m / length
        return jnp.sin(np.pi * m * coord / length), np.pi * m / length

    def u(x, y):
        fx, _ = factor(kinds[0], x, 1.0, 1)
        fy, _ = factor(kinds[1], y, 2.0, 2)
        return fx * fy

    def f(x, y):
        _, kx = factor(kinds[0], x, 1.0, 1)
        _, ky = factor(kinds[1], y, 2.0, 2)
        return k * (kx**2 + ky**2) * u(x, y)

    pts = random_points(np.random.default_rng(13), space)
    got = poisson_spectral(pts, k, f, space=space, boundary=boundary, grid_shape=(8, 9))
    np.testing.assert_allclose(got, u(pts[:, 0], pts[:, 1]), rtol=0, atol=EXACT)

    pde = poisson(Domain(space=space))

    def u_fn(z):
        return poisson_spectral(z[None], k, f, space=space, boundary=boundary,
                                grid_shape=(8, 9))[0]

    residual = jax.jit(jax.vmap(lambda z: pde.operator(u_fn, z, {"k": k}) - f(z[0], z[1])))(
        jnp.asarray(pts[:10])
    )
    assert float(jnp.max(jnp.abs(residual))) < 1e-8


def test_poisson_periodic_drops_the_mean_of_the_source():
    # f = 3 + k cos(x) on [0, 2 pi]: only the zero-mean part is solvable; u = cos(x).
    k = 2.0
    pts = random_points(np.random.default_rng(14), [(0.0, 2 * np.pi)])
    got = poisson_spectral(pts, k, lambda x: 3.0 + k * jnp.cos(x), space=(0.0, 2 * np.pi),
                           boundary="periodic", grid_shape=8)
    np.testing.assert_allclose(got, np.cos(pts[:, 0]), rtol=0, atol=EXACT)


def test_poisson_dirichlet_source_not_vanishing_at_ends_converges_at_order_two():
    # f = 2 (u = x (1 - x), k = 1) does not vanish at the ends: its odd extension jumps, so its
    # sine coefficients decay like 1 / m and those of u like 1 / m^3; the truncated tail
    # sum_{m > n} m^-3 ~ n^-2 sets the max error. Expected order 2 (within 0.3).
    x = np.linspace(0.0, 1.0, 41)[1:-1, None]
    sizes = np.array([16, 32, 64, 128])
    errors = [
        np.max(np.abs(poisson_spectral(x, 1.0, lambda x: 2.0 + 0 * x, space=(0.0, 1.0),
                                       grid_shape=int(n)) - x[:, 0] * (1 - x[:, 0])))
        for n in sizes
    ]
    orders = -np.diff(np.log(errors)) / np.diff(np.log(sizes))
    np.testing.assert_allclose(orders, 2.0, atol=0.3)


# ---------------------------------------------------------------------------------------------
# Differentiability and jit
# ---------------------------------------------------------------------------------------------


def test_gradients_match_finite_differences():
    rng = np.random.default_rng(15)
    pts1 = random_points(rng, [(0.0, 1.0), (0.0, 1.0)], n=20)
    pts2 = random_points(rng, [(0.0, 1.0), (0.0, 2.0), (0.0, 1.0)], n=20)
    weights = rng.normal(size=20)  # a generic linear functional of the outputs
    data1 = rng.normal(size=12)
    data2 = rng.normal(size=(8, 8))
    source2 = lambda x, y: jnp.sin(2 * np.pi * x) * jnp.sin(np.pi * y) + x * y  # noqa: E731

    cases = {
        "heat D (dirichlet)": (
            lambda D: heat_spectral(pts1, D, data1, space=(0.0, 1.0), boundary="dirichlet"),
            0.07,
        ),
        "heat D (2-D periodic)": (
            lambda D: heat_spectral(pts2, D, data2, space=((0.0, 1.0), (0.0, 2.0))), 0.2
        ),
        "advection c": (lambda c: advection_spectral(pts1, c, data1, space=(0.0, 1.0)), 0.4),
        "advection c_y": (
            lambda c: advection_spectral(pts2, jnp.stack([0.3, c]), data2,
                                         space=((0.0, 1.0), (0.0, 2.0))),
            -0.6,
        ),
        "poisson k": (
            lambda k: poisson_spectral(pts2[:, :2], k, source2, space=((0.0, 1.0), (0.0, 2.0)),
                                       grid_shape=16),
            1.3,
        ),
        "schrodinger dispersion": (
            # Smooth data: with white noise up to kappa = 16 pi the phase kappa^2 a t varies on
            # the scale da ~ 4e-4, too close to the finite-difference step.
            lambda a: jnp.abs(schrodinger_spectral(
                pts1, lambda x: jnp.exp(1j * jnp.cos(2 * np.pi * x)), space=(0.0, 1.0),
                grid_shape=16, dispersion=a)) ** 2,
            0.5,
        ),
    }
    for name, (solve, value) in cases.items():
        functional = jax.jit(lambda v, solve=solve: jnp.dot(weights, solve(v)))
        grad = float(jax.grad(functional)(value))
        fd = float(central_difference(functional, value, 1e-5 * abs(value)))
        # With h = 1e-5 |value|: truncation ~ (h / scale)^4 and rounding ~ eps / h, both far
        # below the 1e-6 tolerance for the smooth dependences here.
        assert grad == pytest.approx(fd, rel=1e-6, abs=1e-9), name


def test_heat_gradient_in_d_is_the_analytic_one():
    # d/dD of b exp(-D kappa^2 t) sin(kappa x) = -kappa^2 t u.
    x, t, D = 0.3, 0.8, 0.1
    pts = np.array([[x, t]])
    u0 = lambda x: jnp.sin(2 * np.pi * x)  # noqa: E731
    grad = jax.grad(lambda D: heat_spectral(pts, D, u0, space=(0.0, 1.0), grid_shape=8)[0])(D)
    kappa2 = (2 * np.pi) ** 2
    assert float(grad) == pytest.approx(
        -kappa2 * t * np.exp(-D * kappa2 * t) * np.sin(2 * np.pi * x), rel=1e-12
    )


def test_jit_matches_eager_with_traced_points_and_data():
    rng = np.random.default_rng(16)
    pts = random_points(rng, [(0.0, 1.0), (0.0, 1.0)])
    data = rng.normal(size=10)

    def solve(pts, D, data):
        return heat_spectral(pts, D, data, space=(0.0, 1.0), boundary="dirichlet")

    np.testing.assert_allclose(jax.jit(solve)(pts, 0.2, data), solve(pts, 0.2, data),
                               rtol=0, atol=1e-14)


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


def test_errors_name_the_argument():
    pts = np.zeros((3, 2))
    data = np.zeros(8)
    with pytest.raises(ValueError, match=r"heat_spectral: points must have shape \(num_points, 2"):
        heat_spectral(np.zeros((3, 3)), 0.1, data, space=(0.0, 1.0))
    with pytest.raises(ValueError, match=r"boundary must be one of"):
        heat_spectral(pts, 0.1, data, space=(0.0, 1.0), boundary="neumann")
    with pytest.raises(ValueError, match=r"space must be an interval"):
        heat_spectral(pts, 0.1, data, space=(1.0, 0.0))
    with pytest.raises(ValueError, match=r"D must be a scalar"):
        heat_spectral(pts, [0.1, 0.2], data, space=(0.0, 1.0))
    with pytest.raises(ValueError, match=r"initial must be vectorised"):
        heat_spectral(pts, 0.1, lambda x: 1.0, space=(0.0, 1.0))
    with pytest.raises(ValueError, match=r"samples have shape \(8,\) but grid_shape is \(16,\)"):
        heat_spectral(pts, 0.1, data, space=(0.0, 1.0), grid_shape=16)
    with pytest.raises(ValueError, match=r"no axis has a Dirichlet boundary"):
        heat_spectral(pts, 0.1, data, space=(0.0, 1.0), boundary_values=1.0)
    with pytest.raises(ValueError, match=r"pair of boundary values .* 1-D only"):
        heat_spectral(np.zeros((3, 3)), 0.1, np.zeros((4, 4)), space=((0, 1), (0, 1)),
                      boundary="dirichlet", boundary_values=(0.0, 1.0))
    with pytest.raises(ValueError, match=r"c must be a scalar in 1-D or a pair"):
        advection_spectral(pts, (0.1, 0.2), data, space=(0.0, 1.0))
    with pytest.raises(ValueError, match=r"grid_shape must be an int >= 2"):
        poisson_spectral(np.zeros((3, 1)), 1.0, jnp.sin, space=(0.0, 1.0), grid_shape=1)
