"""The reference-solver registry and its forward models: names, adapters, Problem, gradients."""

from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from bpinn.config import build_problem, load_config  # noqa: E402
from bpinn.data import Observations  # noqa: E402
from bpinn.models.conditions import Condition  # noqa: E402
from bpinn.models.pdes import BUILTIN_PDES, make_pde  # noqa: E402
from bpinn.models.problem import Domain, Problem  # noqa: E402
from bpinn.reference import (  # noqa: E402
    available_reference_solvers,
    heat_sine_series,
    problem_forward,
    reaction_diffusion_mol,
    reference_solver,
)

HEAT_CONFIG = Path(__file__).resolve().parents[1] / "case_studies/heat_diffusion/config.toml"
EXACT = 1e-11


def _points(rng, boxes, n=25):
    return np.column_stack([rng.uniform(lo, hi, n) for lo, hi in boxes])


def test_names_and_the_unknown_name_error():
    names = available_reference_solvers()
    assert names == ("advection", "burgers", "heat", "poisson", "reaction_diffusion")
    assert set(names) <= set(BUILTIN_PDES)  # every solver belongs to a PDE of pdes.py
    for name in names:
        solver = reference_solver(name)
        assert solver.pde_name == name and solver.method and solver.coverage
    with pytest.raises(
        ValueError,
        match=r"^no reference solver for PDE 'wave'; available: advection, burgers, heat, "
        r"poisson, reaction_diffusion; or give your own forward model as \[problem\] "
        r"reference = 'module:function' \(forward\(points, coeffs\) -> u\)$",
    ):
        reference_solver("wave")


def test_heat_case_study_through_problem_forward():
    # The case study's data were made with the sine series at D = 0.07: the forward model built
    # from its config must reproduce that series, and the readings must scatter around it
    # with the stated noise sd 0.02 (48 readings: the sample sd is 0.02 within 3 standard
    # errors, 0.02 * 3 / sqrt(2 * 47) ~ 0.006).
    problem = build_problem(load_config(HEAT_CONFIG))
    forward = problem_forward(problem, grid_shape=16)
    obs = problem.observations
    u = forward({"D": 0.07})
    expected = heat_sine_series(obs.coords[:, 0], obs.coords[:, 1], 0.07, [1.0, 0.0, 0.5])
    np.testing.assert_allclose(u, expected, rtol=0, atol=EXACT)
    assert 0.014 < float(np.std(obs.values - u, ddof=1)) < 0.026

    def log_likelihood(D):
        return -0.5 * jnp.sum((obs.values - forward({"D": D, "sigma": 0.02})) ** 2) / 0.02**2

    grad = float(jax.jit(jax.grad(log_likelihood))(0.07))
    h = 1e-6
    fd = float((log_likelihood(0.07 + h) - log_likelihood(0.07 - h)) / (2 * h))
    assert grad == pytest.approx(fd, rel=1e-6)


def test_heat_with_source_routes_to_the_method_of_lines():
    # u = x^3 + t^2 + x t is reproduced to rounding by Crank-Nicolson finite differences (see
    # test_reference_mol); here the pointwise initial, boundary and source functions of the
    # package conventions go through the adapters, and the source depends on D.
    domain = Domain(space=((-1.0, 2.0),), time=(0.0, 1.0))

    def u(z):
        return z[0] ** 3 + z[1] ** 2 + z[0] * z[1]

    def source(z, coeffs):
        return 2 * z[1] + z[0] - 6 * coeffs["D"] * z[0]

    points = _points(np.random.default_rng(0), [(-1.0, 2.0), (0.0, 1.0)])
    forward = reference_solver("heat").forward(
        domain, points, initial=u, boundary_values=u, source=source, num_cells=6, num_steps=4
    )
    np.testing.assert_allclose(forward({"D": 0.4}), jax.vmap(u)(jnp.asarray(points)),
                               rtol=0, atol=EXACT)
    with pytest.raises(ValueError, match=r"spectral heat solver has no source term"):
        reference_solver("heat").forward(domain, points, initial=u, source=source,
                                         method="spectral")


def test_advection_2d_names_c_x_and_c_y():
    domain = Domain(space=((0.0, 1.0), (0.0, 2.0)), time=(0.0, 1.0))

    def profile(x, y):
        return jnp.cos(2 * jnp.pi * x) * jnp.sin(jnp.pi * y)

    points = _points(np.random.default_rng(1), [(0.0, 1.0), (0.0, 2.0), (0.0, 1.0)])
    forward = reference_solver("advection").forward(
        domain, points, initial=lambda z: profile(z[0], z[1]), grid_shape=8
    )
    got = forward({"c_x": 0.3, "c_y": -0.7})
    x, y, t = points.T
    np.testing.assert_allclose(got, profile(x - 0.3 * t, y + 0.7 * t), rtol=0, atol=EXACT)
    with pytest.raises(ValueError, match=r"coefficient\(s\) \['c_y'\] missing"):
        forward({"c_x": 0.3})
    with pytest.raises(ValueError, match=r"covers periodic boundaries"):
        reference_solver("advection").forward(domain, points, initial=0.0, boundary="dirichlet")


def test_poisson_2d_with_constant_boundary_value_and_coefficient_dependent_source():
    domain = Domain(space=((0.0, 1.0), (0.0, 1.0)))

    def source(z, coeffs):
        return coeffs["k"] * 2 * jnp.pi**2 * jnp.sin(jnp.pi * z[0]) * jnp.sin(jnp.pi * z[1])

    points = _points(np.random.default_rng(2), [(0.0, 1.0), (0.0, 1.0)])
    forward = reference_solver("poisson").forward(
        domain, points, source=source, boundary_values=0.5, grid_shape=8
    )
    x, y = points.T
    expected = 0.5 + np.sin(np.pi * x) * np.sin(np.pi * y)
    np.testing.assert_allclose(forward({"k": 3.0}), expected, rtol=0, atol=EXACT)
    # The solution does not depend on k when f is proportional to k.
    grad = jax.grad(lambda k: jnp.sum(forward({"k": k})))(3.0)
    assert abs(float(grad)) < 1e-12


def test_fisher_kpp_wave_through_the_registry():
    # Exact travelling wave with Dirichlet values taken from it (functions of z = (x, t)).
    D, k = 0.1, 1.0
    speed = 5 * np.sqrt(D * k / 6)

    def wave(z):
        return (1 + jnp.exp(np.sqrt(k / (6 * D)) * (z[0] - speed * z[1]))) ** -2

    domain = Domain(space=((-5.0, 5.0),), time=(0.0, 2.0))
    points = _points(np.random.default_rng(3), [(-5.0, 5.0), (0.0, 2.0)])
    forward = jax.jit(reference_solver("reaction_diffusion").forward(
        domain, points, initial=wave, boundary_values=wave, options={"reaction": "logistic"},
        num_cells=200, num_steps=400,
    ))
    error = float(jnp.max(jnp.abs(forward({"D": D, "k": k}) - jax.vmap(wave)(points))))
    # Leading space error ~ dx^2 / 12 * D max|u_xxxx| * t with dx = 0.05, u_xxxx ~ (k / 6D)^2:
    # about 1e-4 (time error ~ 100x smaller). A wrong sign or coefficient would give O(0.1).
    assert error < 2e-4


def _observations(points):
    n = len(points)
    return Observations(coords=points, values=np.zeros(n), group_index=np.zeros(n, int),
                        group_names=("all",), coord_names=("x", "t"), origin="test")


def test_problem_forward_periodic_reaction_diffusion_matches_the_solver():
    domain = Domain(space=((0.0, 2.0),), time=(0.0, 1.0))
    pde = make_pde("reaction_diffusion", domain, reaction="cubic")
    points = _points(np.random.default_rng(4), [(0.0, 2.0), (0.0, 1.0)], n=10)
    problem = Problem(
        domain=domain, pde=pde, coefficients={"D": None, "k": None},
        observations=_observations(points), noise=None,
        conditions=(Condition("initial", value=lambda z: 0.5 * jnp.cos(jnp.pi * z[0])),
                    Condition("periodic", boundary="x")),
    )
    forward = problem_forward(problem, num_cells=32, num_steps=50)
    direct = reaction_diffusion_mol(
        points, 0.2, 2.0, lambda x: 0.5 * jnp.cos(jnp.pi * x), reaction="cubic",
        interval=(0.0, 2.0), time=(0.0, 1.0), boundary="periodic", num_cells=32, num_steps=50,
    )
    np.testing.assert_allclose(forward({"D": 0.2, "k": 2.0}), direct, rtol=0, atol=1e-14)


def test_problem_forward_rejects_what_has_no_reference_counterpart():
    domain = Domain(space=((0.0, 1.0),), time=(0.0, 1.0))
    pde = make_pde("heat", domain)
    points = np.array([[0.5, 0.5]])

    def problem(*conditions):
        return Problem(domain=domain, pde=pde, coefficients={"D": None},
                       observations=_observations(points), noise=None, conditions=conditions)

    initial = Condition("initial", value=0.0)
    with pytest.raises(ValueError, match=r"a neumann condition has no reference solver"):
        problem_forward(problem(initial, Condition("neumann", boundary="all")))
    with pytest.raises(ValueError, match=r"face\(s\) \['x_max'\] have no condition"):
        problem_forward(problem(initial, Condition("dirichlet", boundary="x_min")))
    with pytest.raises(ValueError, match=r"needs an initial condition"):
        problem_forward(problem(Condition("dirichlet", boundary="all")))


def test_forward_argument_errors():
    domain = Domain(space=((0.0, 1.0),), time=(0.0, 1.0))
    heat = reference_solver("heat")
    with pytest.raises(ValueError, match=r"points must have shape \(num_points, 2\)"):
        heat.forward(domain, np.zeros((3, 3)), initial=0.0)
    with pytest.raises(ValueError, match=r"1 point\(s\) lie outside the domain"):
        heat.forward(domain, np.array([[0.5, 0.5], [0.5, 1.5]]), initial=0.0)
    with pytest.raises(ValueError, match=r"method must be 'auto' or one of"):
        heat.forward(domain, np.array([[0.5, 0.5]]), initial=0.0, method="fem")
    with pytest.raises(ValueError, match=r"reaction_diffusion solver covers 1-D space with time"):
        reference_solver("reaction_diffusion").forward(
            Domain(space=((0.0, 1.0), (0.0, 1.0)), time=(0.0, 1.0)), np.array([[0.5, 0.5, 0.5]]),
            initial=0.0,
        )
    with pytest.raises(ValueError, match=r"every axis is periodic .* drop them"):
        heat.forward(domain, np.array([[0.5, 0.5]]), initial=0.0, boundary="periodic",
                     boundary_values=1.0)
    with pytest.raises(ValueError, match=r"one entry per spatial axis \(1\)"):
        heat.forward(domain, np.array([[0.5, 0.5]]), initial=0.0, boundary=("periodic",) * 2)
    with pytest.raises(ValueError, match=r"unknown option"):
        reference_solver("reaction_diffusion").forward(
            domain, np.array([[0.5, 0.5]]), initial=0.0, options={"kind": "cubic"}
        )
