"""Method-of-lines solvers: exact and manufactured solutions, convergence orders, gradients.

The scheme is second order in space (three-point Laplacian, central flux difference) and in
time (IMEX trapezoidal: Crank-Nicolson + Heun), so halving dx or dt must divide the error by
about 4: every observed order is asserted within 0.3 of 2. Manufactured forcings are computed by
the operators of bpinn.models.pdes, so the solvers are checked against the package's own sign
conventions.
"""

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from bpinn.models.pdes import burgers, heat, reaction_diffusion  # noqa: E402
from bpinn.models.problem import Domain  # noqa: E402
from bpinn.reference.mol import (  # noqa: E402
    burgers_mol,
    heat_mol,
    mol_grid,
    reaction_diffusion_mol,
    reaction_diffusion_steady,
)

ORDER_TOLERANCE = 0.3


def manufactured_source(pde, u_exact, coeffs):
    """``f = L[u_exact]`` by the package's operator: the forcing that makes u_exact a solution."""

    def source(x, t):
        z = jnp.stack([x, jnp.full_like(x, t)], axis=1)
        return jax.vmap(lambda zi: pde.operator(u_exact, zi, coeffs))(z)

    return source


def exact_boundary(u_exact, x_face):
    return lambda t: u_exact(jnp.stack([jnp.asarray(x_face, float), t]))


class Case:
    """One PDE with a known solution, and how to run the matching solver on it."""

    def __init__(self, name, solver, coeffs, u_exact, interval, time, boundary, *, pde=None,
                 options=None, space_cells=(16, 32, 64, 128), time_cells=64,
                 time_steps=(8, 16, 32, 64)):
        self.name, self.solver, self.coeffs, self.u_exact = name, solver, coeffs, u_exact
        self.interval, self.time, self.boundary = interval, time, boundary
        self.pde, self.options = pde, options or {}
        self.space_cells, self.time_cells, self.time_steps = space_cells, time_cells, time_steps

    def exact(self, points):
        return jax.vmap(self.u_exact)(jnp.asarray(points))

    def run(self, points, num_cells, num_steps, coeffs=None):
        coeffs = coeffs or self.coeffs
        a, b = self.interval
        t0 = self.time[0]
        u_exact = self.u_exact
        kwargs = dict(
            interval=self.interval, time=self.time, boundary=self.boundary,
            num_cells=num_cells, num_steps=num_steps,
            initial=lambda x: jax.vmap(lambda xi: u_exact(jnp.stack([xi, t0])))(x),
        )
        if self.boundary == "dirichlet":
            kwargs["boundary_values"] = (exact_boundary(u_exact, a), exact_boundary(u_exact, b))
        if self.pde is not None:
            kwargs["source"] = manufactured_source(self.pde, u_exact, coeffs)
        return self.solver(points, coeffs, **kwargs, **self.options)


def _heat(points, coeffs, **kw):
    return heat_mol(points, coeffs["D"], kw.pop("initial"), **kw)


def _rd(points, coeffs, **kw):
    return reaction_diffusion_mol(points, coeffs["D"], coeffs["k"], kw.pop("initial"), **kw)


def _burgers(points, coeffs, **kw):
    return burgers_mol(points, coeffs["nu"], kw.pop("initial"), **kw)


def _domain(interval, time):
    return Domain(space=(interval,), time=time)


def _smooth_periodic(z):  # period 2 in x
    x, t = z[0], z[1]
    return 0.5 + 0.3 * jnp.sin(jnp.pi * x - t) + 0.1 * jnp.cos(2 * jnp.pi * x) * jnp.exp(-t)


def _smooth_bounded(z):
    x, t = z[0], z[1]
    return 0.2 + 0.5 * jnp.sin(jnp.pi * x + 0.3) * jnp.exp(-0.5 * t) + 0.1 * x * t


def _fisher_kpp_wave(D, k):
    # Ablowitz-Zeppetella: u = (1 + exp(sqrt(k / (6 D)) (x - c t)))^-2, c = 5 sqrt(D k / 6),
    # an exact travelling wave of u_t = D u_xx + k u (1 - u).
    speed = 5 * np.sqrt(D * k / 6)
    return lambda z: (1 + jnp.exp(np.sqrt(k / (6 * D)) * (z[0] - speed * z[1]))) ** -2


def _burgers_cole_hopf(nu, a=2.0):
    # phi = a + exp(-nu pi^2 t) cos(pi x) solves phi_t = nu phi_xx, so u = -2 nu phi_x / phi
    # solves u_t + u u_x = nu u_xx, periodic with period 2.
    def u(z):
        decay = jnp.exp(-nu * jnp.pi**2 * z[1])
        return 2 * nu * jnp.pi * decay * jnp.sin(jnp.pi * z[0]) / (
            a + decay * jnp.cos(jnp.pi * z[0])
        )

    return u


def _burgers_front(nu, c=0.25, amplitude=0.5):
    return lambda z: c - amplitude * jnp.tanh(amplitude * (z[0] - c * z[1]) / (2 * nu))


def _heat_smooth(z):
    return jnp.sin(jnp.pi * z[0]) * jnp.cos(z[1]) + z[0] ** 2 * z[1]


def _cases():
    unit, sym, periodic2 = (0.0, 1.0), (-1.0, 1.0), (0.0, 2.0)
    rd = {"D": 0.1, "k": 1.5}
    cases = [
        Case("heat, source, g(t)", _heat, {"D": 0.3}, _heat_smooth, unit, (0.0, 0.5),
             "dirichlet", pde=heat(_domain(unit, (0.0, 0.5)))),
    ]
    for reaction, boundary, u_exact, interval in (
        ("logistic", "periodic", _smooth_periodic, periodic2),
        ("cubic", "dirichlet", _smooth_bounded, sym),
        ("tanh", "periodic", _smooth_periodic, periodic2),
        ("linear", "dirichlet", _smooth_bounded, sym),
    ):
        pde = reaction_diffusion(_domain(interval, (0.0, 0.5)), reaction=reaction)
        cases.append(Case(f"reaction {reaction}, {boundary}", _rd, rd, u_exact, interval,
                          (0.0, 0.5), boundary, pde=pde, options={"reaction": reaction}))
    cases += [
        Case("Fisher-KPP travelling wave", _rd, {"D": 0.1, "k": 1.0},
             _fisher_kpp_wave(0.1, 1.0), (-5.0, 5.0), (0.0, 2.0), "dirichlet",
             options={"reaction": "logistic"}, space_cells=(40, 80, 160, 320)),
        Case("Burgers Cole-Hopf, periodic", _burgers, {"nu": 0.1}, _burgers_cole_hopf(0.1),
             sym, (0.0, 0.5), "periodic"),
        Case("Burgers tanh front, dirichlet", _burgers, {"nu": 0.1}, _burgers_front(0.1),
             (-2.0, 2.0), (0.0, 1.0), "dirichlet", space_cells=(32, 64, 128, 256),
             time_steps=(16, 32, 64, 128)),
        Case("Burgers manufactured, dirichlet", _burgers, {"nu": 0.05}, _smooth_bounded, sym,
             (0.0, 0.5), "dirichlet", pde=burgers(_domain(sym, (0.0, 0.5)))),
    ]
    return cases


CASES = _cases()


def _points(case, rng, n=30):
    return np.column_stack([rng.uniform(*case.interval, n), rng.uniform(*case.time, n)])


def _orders(sizes, errors):
    return -np.diff(np.log(errors)) / np.diff(np.log(sizes))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_second_order_in_space(case):
    # dt = T / 2000: the time error (~ dt^2) is < 1e-3 of the finest space error (~ dx^2).
    points = _points(case, np.random.default_rng(0))
    exact = case.exact(points)
    errors = []
    for num_cells in case.space_cells:
        u = jax.jit(lambda p, n=num_cells: case.run(p, n, 2000))(points)
        errors.append(float(jnp.max(jnp.abs(u - exact))))
    orders = _orders(case.space_cells, errors)
    np.testing.assert_allclose(orders, 2.0, atol=ORDER_TOLERANCE, err_msg=f"{errors}")


# One case per code path of the time stepper (plain Crank-Nicolson; Heun on a reaction, periodic
# and Dirichlet; Heun on the Burgers flux, periodic and Dirichlet; a solution without forcing).
TIME_CASES = [CASES[i] for i in (0, 1, 2, 5, 6, 8)]


@pytest.mark.parametrize("case", TIME_CASES, ids=lambda c: c.name)
def test_second_order_in_time(case):
    # The time error alone: each run against the same grid with 16x finer steps (whose own
    # time error is 1/256 of the finest run's). Output times are steps of every run.
    t0, t1 = case.time
    rng = np.random.default_rng(1)
    times = t0 + (t1 - t0) * np.repeat([0.25, 0.5, 0.75, 1.0], 5)
    points = np.column_stack([rng.uniform(*case.interval, times.size), times])
    reference = jax.jit(lambda p: case.run(p, case.time_cells, 16 * case.time_steps[-1]))(points)
    errors = []
    for num_steps in case.time_steps:
        u = jax.jit(lambda p, n=num_steps: case.run(p, case.time_cells, n))(points)
        errors.append(float(jnp.max(jnp.abs(u - reference))))
    orders = _orders(case.time_steps, errors)
    np.testing.assert_allclose(orders, 2.0, atol=ORDER_TOLERANCE, err_msg=f"{errors}")


def test_joint_refinement_at_off_grid_points():
    # Points off every grid node and step: the cubic interpolation (O(dx^4 + dt^4)) must not
    # spoil the scheme's O(dx^2 + dt^2) when dx and dt are halved together.
    case = CASES[0]
    points = _points(case, np.random.default_rng(2))
    exact = case.exact(points)
    sizes = (8, 16, 32, 64)
    errors = [
        float(jnp.max(jnp.abs(jax.jit(lambda p, n=n: case.run(p, n, n))(points) - exact)))
        for n in sizes
    ]
    np.testing.assert_allclose(_orders(sizes, errors), 2.0, atol=ORDER_TOLERANCE)


def test_heat_reproduces_a_cubic_in_x_quadratic_in_t_exactly():
    # u = x^3 + t^2 + x t: the three-point Laplacian is exact for cubics, the trapezoidal rule
    # for a linear u_t, and cubic interpolation for cubic x and quadratic t, so only rounding
    # remains, at arbitrary points, with time-dependent Dirichlet values and a source.
    D, a, b = 0.7, -1.0, 2.0

    def u(x, t):
        return x**3 + t**2 + x * t

    def source(x, t):
        return 2 * t + x - D * 6 * x

    rng = np.random.default_rng(3)
    points = np.column_stack([rng.uniform(a, b, 50), rng.uniform(0.0, 1.0, 50)])
    got = heat_mol(points, D, lambda x: u(x, 0.0), interval=(a, b), time=(0.0, 1.0),
                   boundary_values=(lambda t: u(a, t), lambda t: u(b, t)), source=source,
                   num_cells=7, num_steps=5)
    np.testing.assert_allclose(got, u(points[:, 0], points[:, 1]), rtol=0, atol=1e-12)


def test_array_initial_on_mol_grid_matches_callable():
    nodes = mol_grid((0.0, 2.0), 32, "periodic")
    points = _points(CASES[1], np.random.default_rng(4), n=5)
    settings = dict(interval=(0.0, 2.0), time=(0.0, 0.5), boundary="periodic", num_cells=32,
                    num_steps=20)
    from_array = reaction_diffusion_mol(points, 0.1, 1.0, np.cos(np.pi * nodes), **settings)
    from_callable = reaction_diffusion_mol(points, 0.1, 1.0, lambda x: jnp.cos(jnp.pi * x),
                                           **settings)
    np.testing.assert_allclose(from_array, from_callable, rtol=0, atol=1e-14)


def test_odd_initial_data_stay_odd_for_burgers():
    # u(-x, t) = -u(x, t) is preserved by the PDE and by the symmetric discretisation.
    x = np.linspace(0.1, 0.9, 5)
    points = np.column_stack([np.r_[x, -x], np.full(10, 0.8)])
    u = burgers_mol(points, 0.05, lambda x: -jnp.sin(jnp.pi * x), interval=(-1.0, 1.0),
                    time=(0.0, 0.8), num_cells=64, num_steps=160)
    np.testing.assert_allclose(u[:5], -u[5:], rtol=0, atol=1e-13)


def _fourth_order_difference(fn, value, step):
    """Truncation ~ step^4 f^(5) / 30, rounding ~ eps / step."""
    return (
        -fn(value + 2 * step) + 8 * fn(value + step) - 8 * fn(value - step) + fn(value - 2 * step)
    ) / (12 * step)


@pytest.mark.parametrize(
    ("case_index", "name"),
    [(0, "D"), (1, "D"), (1, "k"), (5, "k"), (6, "nu"), (8, "nu")],
)
def test_gradients_match_finite_differences(case_index, name):
    # The discrete solution is a smooth function of the coefficient (forcing included, when it
    # depends on it), so the reverse-mode gradient through lax.scan must equal the difference
    # quotient of the same discrete solver up to the quotient's own error (< 1e-9 relative).
    case = CASES[case_index]
    points = _points(case, np.random.default_rng(5), n=10)
    weights = np.random.default_rng(6).normal(size=10)

    def functional(value):
        coeffs = {**case.coeffs, name: value}
        return jnp.dot(weights, case.run(points, 32, 64, coeffs))

    functional = jax.jit(functional)
    value = case.coeffs[name]
    grad = float(jax.grad(functional)(value))
    fd = float(_fourth_order_difference(functional, value, 1e-4 * value))
    assert grad == pytest.approx(fd, rel=1e-7, abs=1e-10)


def test_jit_with_traced_points_matches_eager():
    case = CASES[6]
    points = _points(case, np.random.default_rng(7))
    eager = case.run(points, 32, 40)
    jitted = jax.jit(lambda p, nu: case.run(p, 32, 40, {"nu": nu}))(points, 0.1)
    np.testing.assert_allclose(jitted, eager, rtol=0, atol=1e-13)


def test_errors_name_the_argument():
    pts = np.array([[0.5, 0.5]])
    settings = dict(interval=(0.0, 1.0), time=(0.0, 1.0))
    with pytest.raises(ValueError, match=r"requested t values must lie in \[0.0, 1.0\]"):
        heat_mol(np.array([[0.5, 1.5]]), 0.1, jnp.sin, **settings)
    with pytest.raises(ValueError, match=r"requested x values must lie"):
        heat_mol(np.array([[-0.5, 0.5]]), 0.1, jnp.sin, **settings)
    with pytest.raises(ValueError, match=r"points must have shape \(num_points, 2\)"):
        heat_mol(np.zeros((2, 3)), 0.1, jnp.sin, **settings)
    with pytest.raises(ValueError, match=r"boundary must be one of"):
        heat_mol(pts, 0.1, jnp.sin, boundary="neumann", **settings)
    with pytest.raises(ValueError, match=r"drop them for periodic boundaries"):
        heat_mol(pts, 0.1, jnp.sin, boundary="periodic", boundary_values=1.0, **settings)
    with pytest.raises(ValueError, match=r"initial samples must have shape \(129,\)"):
        heat_mol(pts, 0.1, np.zeros(128), **settings)
    with pytest.raises(ValueError, match=r"initial must be vectorised"):
        heat_mol(pts, 0.1, lambda x: 0.0, **settings)
    with pytest.raises(ValueError, match=r"source\(x, t\) must be vectorised"):
        heat_mol(pts, 0.1, jnp.sin, source=lambda x, t: t, **settings)
    with pytest.raises(ValueError, match=r"num_steps must be an int >= 3"):
        heat_mol(pts, 0.1, jnp.sin, num_steps=2, **settings)
    with pytest.raises(ValueError, match=r"num_cells must be an int >= 4"):
        burgers_mol(pts, 0.1, jnp.sin, num_cells=3, **settings)
    with pytest.raises(ValueError, match=r"reaction must be one of"):
        reaction_diffusion_mol(pts, 0.1, 1.0, jnp.sin, reaction="quintic", **settings)
    with pytest.raises(ValueError, match=r"k must be a scalar"):
        reaction_diffusion_mol(pts, 0.1, [1.0, 2.0], jnp.sin, **settings)


# ---- steady reaction-diffusion by Newton -------------------------------------------------------
# -D u'' - k tanh(u) = f on [-0.7, 0.7] with u = sin(6x)^3 (the diffusion_reaction_tanh case):
# the manufactured source comes from the package's steady operator, so the sign conventions are
# the package's. D = 0.01 and k = 0.7 make the linearised operator indefinite (D pi^2 / L^2 is
# about 0.05 < k), the hard case for Newton.
STEADY_INTERVAL, STEADY_D, STEADY_K = (-0.7, 0.7), 0.01, 0.7
_STEADY_PDE = reaction_diffusion(Domain(space=(STEADY_INTERVAL,)), reaction="tanh")


def _steady_exact(z):
    return jnp.sin(6.0 * z[0]) ** 3


def _steady_source(x, coeffs=None):
    coeffs = coeffs or {"D": STEADY_D, "k": STEADY_K}
    return jax.vmap(lambda xi: _STEADY_PDE.operator(_steady_exact, xi[None], coeffs))(x)


def _steady_solve(points, num_cells, D=STEADY_D, k=STEADY_K, **kw):
    ends = tuple(float(np.sin(6.0 * x) ** 3) for x in STEADY_INTERVAL)
    return reaction_diffusion_steady(points, D, k, reaction="tanh", interval=STEADY_INTERVAL,
                                     boundary_values=ends, source=_steady_source,
                                     num_cells=num_cells, **kw)


def test_steady_newton_is_second_order_in_space():
    points = np.random.default_rng(8).uniform(-0.7, 0.7, (25, 1))
    exact = np.sin(6.0 * points[:, 0]) ** 3
    errors = [float(np.max(np.abs(_steady_solve(points, n) - exact))) for n in (32, 64, 128)]
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    np.testing.assert_allclose(orders, 2.0, atol=ORDER_TOLERANCE)


def test_steady_gradient_is_the_derivative_of_the_discrete_solution():
    """Implicit derivatives (custom_root) against a difference quotient of the same solver."""
    points = np.linspace(-0.6, 0.6, 7)[:, None]
    weights = np.random.default_rng(9).normal(size=7)

    def functional(k):
        return jnp.dot(weights, _steady_solve(points, 64, k=k))

    functional = jax.jit(functional)
    grad = float(jax.grad(functional)(STEADY_K))
    fd = float(_fourth_order_difference(functional, STEADY_K, 1e-4))
    assert grad == pytest.approx(fd, rel=1e-6, abs=1e-10)


def test_steady_returns_nan_where_newton_has_not_converged():
    points = np.array([[0.1]])
    assert bool(jnp.all(jnp.isfinite(_steady_solve(points, 64))))
    assert bool(jnp.all(jnp.isnan(_steady_solve(points, 64, newton_steps=1))))


def test_steady_registry_forward_and_its_refusals():
    from bpinn.reference.registry import reference_solver

    solver = reference_solver("reaction_diffusion")
    domain = Domain(space=(STEADY_INTERVAL,))
    points = np.array([[-0.3], [0.2]])
    forward = solver.forward(domain, points, boundary_values=_steady_exact,
                             source=lambda z, c: _steady_source(z, c)[0],
                             options={"reaction": "tanh"}, num_cells=128)
    u = forward({"D": STEADY_D, "k": STEADY_K, "sigma": 0.1})
    np.testing.assert_allclose(u, np.sin(6.0 * points[:, 0]) ** 3, atol=2e-3)
    with pytest.raises(ValueError, match="needs Dirichlet ends"):
        solver.forward(domain, points, boundary="periodic", boundary_values=None)
    with pytest.raises(ValueError, match="covers 1-D space"):
        solver.forward(Domain(space=((0.0, 1.0), (0.0, 1.0))), np.array([[0.5, 0.5]]))
