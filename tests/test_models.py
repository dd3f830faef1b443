"""``bpinn.models``: priors, networks, boundary/initial conditions and the numpyro B-PINN model."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
import scipy.stats

from bpinn.config import build_problem, build_settings, load_config
from bpinn.models.conditions import Condition, hard_constraint, soft_terms
from bpinn.models.likelihood import build_model, collocation_points
from bpinn.models.networks import NETWORK_KINDS, Network, SolutionModel
from bpinn.models.priors import PRIOR_FAMILIES, Fixed, Prior, parse_quantity
from bpinn.models.problem import Domain, residual
from bpinn.reference.heat import heat_sine_series

EXACT = 1e-12
HEAT_SINES = [1.0, 0.0, 0.5]  # u0 = sin(pi x) + 0.5 sin(3 pi x), as in the case study
HEAT_D = 0.07


# --------------------------------------------------------------------------------------------
# Priors


VALID_PRIORS = [
    ("Normal", {"loc": 0.5, "scale": 2.0}, False),
    ("LogNormal", {"loc": -3.0, "scale": 1.0}, True),
    ("HalfNormal", {"scale": 0.1}, True),
    ("HalfCauchy", {"scale": 0.1}, True),
    ("Exponential", {"rate": 3.0}, True),
    ("Gamma", {"concentration": 2.0, "rate": 1.0}, True),
    ("InverseGamma", {"concentration": 3.0, "rate": 1.0}, True),
    ("Uniform", {"low": 0.01, "high": 2.0}, True),
    ("Uniform", {"low": -1.0, "high": 1.0}, False),
    ("TruncatedNormal", {"loc": 0.0, "scale": 1.0}, False),
    ("TruncatedNormal", {"loc": 0.1, "scale": 1.0, "low": 0.0}, True),
    ("TruncatedNormal", {"loc": 0.1, "scale": 1.0, "high": 0.5}, False),
    ("TruncatedNormal", {"loc": 0.1, "scale": 1.0, "low": -math.inf, "high": 0.5}, False),
    ("TruncatedNormal", {"loc": 0.1, "scale": 1.0, "low": 0.0, "high": 0.5}, True),
]


def test_every_family_is_exercised():
    assert {family for family, _, _ in VALID_PRIORS} == set(PRIOR_FAMILIES)


@pytest.mark.parametrize(("family", "params", "positive"), VALID_PRIORS)
def test_every_family_builds_a_numpyro_distribution(family, params, positive):
    prior = parse_quantity({"prior": family, **params}, where="cfg [coefficients] D")
    assert prior == Prior(family, params, where="cfg [coefficients] D")
    assert prior.is_positive is positive
    d = prior.distribution()
    assert isinstance(d, dist.Distribution)
    assert d.batch_shape == () and d.event_shape == ()
    draws = d.sample(jax.random.key(0), (200,))
    assert draws.shape == (200,)
    assert bool(jnp.all(jnp.isfinite(draws)))
    assert bool(jnp.all(d.support(draws)))
    assert bool(jnp.all(jnp.isfinite(d.log_prob(draws))))
    if positive:
        assert bool(jnp.all(draws > 0))
    if "low" in params:
        assert bool(jnp.all(draws >= params["low"]))
    if "high" in params:
        assert bool(jnp.all(draws <= params["high"]))
    assert prior.describe().startswith(f"{family}(")


def test_truncated_normal_defaults_to_no_bounds():
    # Regression: the optional bounds' defaults were not applied, so a TruncatedNormal with
    # only `low` (the usual way to write a positive one) raised KeyError('high').
    d = Prior("TruncatedNormal", {"loc": 0.0, "scale": 1.0, "low": 0.0}).distribution()
    assert not bool(d.support(-0.1))
    assert bool(jnp.all(d.sample(jax.random.key(0), (100,)) >= 0.0))
    assert math.isfinite(float(d.log_prob(0.1)))


@pytest.mark.parametrize(("value", "expected"), [
    (0.07, Fixed(0.07)),
    (3, Fixed(3.0)),
    (-1.5, Fixed(-1.5)),
])
def test_numbers_are_known_values(value, expected):
    q = parse_quantity(value, where="w")
    assert q == expected and isinstance(q.value, float)


WHERE = "cfg.toml [coefficients] D"


@pytest.mark.parametrize(("value", "positive", "expected"), [
    (True, False, f"{WHERE}: expected a number or a prior table, got True"),
    ("0.1", False, f"{WHERE}: expected a number (known) or a prior table"),
    ([0.1], False, f"{WHERE}: expected a number (known) or a prior table"),
    ({"loc": 0.0, "scale": 1.0}, False, f"{WHERE}: a prior table needs a 'prior' key"),
    ({"prior": "Cauchy", "loc": 0.0, "scale": 1.0}, False,
     f"{WHERE}: unknown prior 'Cauchy'; valid: Normal, LogNormal"),
    ({"prior": "Normal", "loc": 0.0}, False,
     f"{WHERE}: Normal takes parameters ['loc', 'scale']; missing ['scale']"),
    ({"prior": "Normal", "loc": 0.0, "scale": 1.0, "rate": 2.0}, False, "unknown ['rate']"),
    ({"prior": "TruncatedNormal", "loc": 0.0}, False, "and optionally ['low', 'high']"),
    ({"prior": "Normal", "loc": "0", "scale": 1.0}, False, f"{WHERE}.loc must be a number"),
    ({"prior": "Normal", "loc": True, "scale": 1.0}, False, f"{WHERE}.loc must be a number"),
    ({"prior": "Normal", "loc": math.inf, "scale": 1.0}, False, f"{WHERE}.loc must be finite"),
    ({"prior": "Normal", "loc": math.nan, "scale": 1.0}, False, f"{WHERE}.loc must be finite"),
    ({"prior": "HalfNormal", "scale": -1.0}, False, f"{WHERE}.scale must be > 0, got -1.0"),
    ({"prior": "HalfNormal", "scale": 0.0}, False, f"{WHERE}.scale must be > 0, got 0.0"),
    ({"prior": "HalfNormal", "scale": math.inf}, False, f"{WHERE}.scale must be finite"),
    ({"prior": "Exponential", "rate": 0}, False, f"{WHERE}.rate must be > 0, got 0"),
    ({"prior": "Gamma", "concentration": -2.0, "rate": 1.0}, False,
     f"{WHERE}.concentration must be > 0"),
    ({"prior": "Uniform", "low": 1.0, "high": 1.0}, False,
     f"{WHERE}: low must be < high, got low=1.0, high=1.0"),
    ({"prior": "Uniform", "low": -math.inf, "high": 1.0}, False, f"{WHERE}.low must be finite"),
    ({"prior": "TruncatedNormal", "loc": 0.0, "scale": 1.0, "low": 2.0, "high": 1.0}, False,
     f"{WHERE}: low must be < high"),
    ({"prior": "TruncatedNormal", "loc": 0.0, "scale": 1.0, "low": math.nan}, False,
     f"{WHERE}.low must be finite"),
    (0.0, True, f"{WHERE}: must be > 0, got 0.0"),
    (-0.1, True, f"{WHERE}: must be > 0, got -0.1"),
    ({"prior": "Normal", "loc": 0.0, "scale": 1.0}, True,
     f"{WHERE}: a scale needs a prior on (0, inf) such as HalfNormal or LogNormal, got "
     "Normal(loc=0, scale=1)"),
    ({"prior": "Uniform", "low": -1.0, "high": 1.0}, True, "a scale needs a prior on (0, inf)"),
])
def test_bad_quantities_name_the_path(value, positive, expected):
    with pytest.raises(ValueError) as exc:
        parse_quantity(value, where=WHERE, positive=positive)
    assert expected in str(exc.value)


def test_fixed_must_be_finite():
    with pytest.raises(ValueError, match="a known value must be finite, got inf"):
        Fixed(math.inf)


# --------------------------------------------------------------------------------------------
# Networks


def expected_num_params(input_dim, width, depth, first):
    return first * width + width + (depth - 1) * (width * width + width) + width + 1


@pytest.mark.parametrize("kind", NETWORK_KINDS)
@pytest.mark.parametrize(("input_dim", "width", "depth"), [(1, 5, 1), (2, 8, 2), (3, 4, 3)])
def test_network_shapes_and_param_count(kind, input_dim, width, depth):
    net = Network(input_dim=input_dim, width=width, depth=depth, kind=kind, num_fourier=6)
    first = 12 if kind == "fourier" else input_dim
    assert net.layer_sizes == (first,) + (width,) * depth + (1,)
    assert net.num_params == expected_num_params(input_dim, width, depth, first)

    params = net.init(jax.random.key(1))
    assert sum(leaf.size for leaf in jax.tree.leaves(params)) == net.num_params
    assert [(w.shape, b.shape) for w, b in params] == [
        ((a, b), (b,)) for a, b in zip(net.layer_sizes[:-1], net.layer_sizes[1:], strict=True)
    ]
    z = jax.random.uniform(jax.random.key(2), (7, input_dim), minval=-1.0, maxval=1.0)
    out = jax.vmap(lambda zi: net.apply(params, zi))(z)
    assert net.apply(params, z[0]).shape == ()
    assert out.shape == (7,)
    assert out.dtype == jnp.float64
    assert bool(jnp.all(jnp.isfinite(out)))
    assert float(jnp.std(out)) > 0  # the output depends on the input


@pytest.mark.parametrize("kind", NETWORK_KINDS)
def test_init_is_a_pure_function_of_the_key(kind):
    net = Network(input_dim=2, width=6, depth=2, kind=kind)
    a, b, c = (net.init(jax.random.key(k)) for k in (0, 0, 1))
    leaves = jax.tree.leaves
    assert all(bool(jnp.array_equal(x, y)) for x, y in zip(leaves(a), leaves(b), strict=True))
    assert not all(bool(jnp.array_equal(x, y)) for x, y in zip(leaves(a), leaves(c), strict=True))


@pytest.mark.parametrize("kind", [k for k in NETWORK_KINDS if k != "siren"])
@pytest.mark.parametrize("fan_in_scaled", [False, True])
def test_prior_scales(kind, fan_in_scaled):
    net = Network(input_dim=2, width=9, depth=2, kind=kind, num_fourier=8)
    scale = 1.5
    sds = net.prior_scales(scale, fan_in_scaled=fan_in_scaled)
    params = net.init(jax.random.key(0))
    assert jax.tree.structure(sds) == jax.tree.structure(params)
    for (w_sd, b_sd), (w, b) in zip(sds, params, strict=True):
        assert w_sd.shape == w.shape and b_sd.shape == b.shape
        fan_in = w.shape[0]
        expected = scale / math.sqrt(fan_in) if fan_in_scaled else scale
        np.testing.assert_allclose(w_sd, expected, rtol=1e-15)
        np.testing.assert_allclose(b_sd, scale, rtol=1e-15)


def test_siren_init_follows_sitzmann():
    net = Network(input_dim=2, width=4, depth=2, kind="siren", siren_omega0=30.0)
    (w0, b0), (w1, _), _ = net.init_scales()
    assert w0 == pytest.approx(1.0 / 2 / math.sqrt(3.0))
    assert w1 == pytest.approx(math.sqrt(6.0 / 4) / math.sqrt(3.0))  # omega0 folded in


def test_siren_hidden_preactivations_are_order_one_at_init():
    # Sitzmann et al.'s principled init: every hidden sine sees inputs of sd about 1 (the
    # arcsine activations keep their distribution with depth), not near-linear tiny values.
    net = Network(input_dim=2, width=256, depth=3, kind="siren", siren_omega0=30.0)
    params = net.init(jax.random.key(0))
    z = jax.random.uniform(jax.random.key(1), (512, 2), minval=-1.0, maxval=1.0)
    h = jnp.sin(30.0 * (z @ params[0][0] + params[0][1]))
    for w, b in params[1:-1]:
        pre = h @ w + b
        assert 0.6 < float(jnp.std(pre)) < 1.6
        h = jnp.sin(pre)


def test_siren_prior_is_its_initialisation_widened():
    net = Network(input_dim=2, width=8, depth=2, kind="siren")
    for (w_sd, b_sd), (w0, b0) in zip(net.prior_scales(2.0, fan_in_scaled=False),
                                      net.init_scales(), strict=True):
        np.testing.assert_allclose(np.asarray(w_sd), 2.0 * w0)
        np.testing.assert_allclose(np.asarray(b_sd), 2.0 * b0)


def test_fourier_matrix_is_fixed_by_its_seed():
    a = Network(input_dim=2, kind="fourier", num_fourier=5, fourier_seed=0)
    b = Network(input_dim=2, kind="fourier", num_fourier=5, fourier_seed=0)
    c = Network(input_dim=2, kind="fourier", num_fourier=5, fourier_seed=1)
    assert a.fourier_matrix.shape == (2, 5)
    assert bool(jnp.array_equal(a.fourier_matrix, b.fourier_matrix))
    assert not bool(jnp.array_equal(a.fourier_matrix, c.fourier_matrix))
    assert Network(input_dim=2).fourier_matrix is None


@pytest.mark.parametrize(("kwargs", "expected"), [
    ({"kind": "resnet"}, "network kind 'resnet' is unknown; valid: ('mlp', 'fourier', 'siren')"),
    ({"activation": "relu"}, "network activation 'relu' is unknown"),
    ({"width": 0}, "network width must be a positive integer, got 0"),
    ({"depth": 2.0}, "network depth must be a positive integer, got 2.0"),
    ({"input_dim": 0}, "network input_dim must be a positive integer, got 0"),
])
def test_bad_network_arguments(kwargs, expected):
    with pytest.raises(ValueError) as exc:
        Network(**{"input_dim": 2, **kwargs})
    assert expected in str(exc.value)


def test_solution_model_scales_coordinates_to_the_unit_box():
    lower, upper = np.array([-1.0, 0.5]), np.array([2.0, 3.0])
    sol = SolutionModel(network=Network(input_dim=2), lower=lower, upper=upper)
    np.testing.assert_allclose(sol.scale_coords(lower), [-1.0, -1.0])
    np.testing.assert_allclose(sol.scale_coords(upper), [1.0, 1.0])
    np.testing.assert_allclose(sol.scale_coords((lower + upper) / 2), [0.0, 0.0], atol=1e-15)


# --------------------------------------------------------------------------------------------
# Hard constraints


def random_solution(domain, conditions, seed, *, kind="mlp"):
    """Two batched solutions u(z) of different random networks, under the hard constraints.

    The weights are drawn wider than Glorot, and the output is offset and scaled, so the
    network's own output is far from zero on the boundary: only the transform can pin u there.
    """
    net = Network(input_dim=domain.ndim, width=8, depth=2, kind=kind)
    params = jax.tree.map(lambda a: 3.0 * a, net.init(jax.random.key(seed)))
    lift, distance = hard_constraint(domain, conditions)
    sol = SolutionModel(network=net, lower=domain.lower, upper=domain.upper, value_offset=0.7,
                        value_scale=2.5, lift_fn=lift, distance_fn=distance)
    return jax.vmap(sol.u_fn(params)), jax.vmap(sol.u_fn([(w, b + 1.0) for w, b in params]))


def grid(domain, n=9, **fixed):
    """An n^ndim grid over the domain with some coordinates held fixed (by name)."""
    axes = [
        np.array([fixed[name]]) if name in fixed else np.linspace(lo, hi, n)
        for name, lo, hi in zip(domain.coord_names, domain.lower, domain.upper, strict=True)
    ]
    mesh = np.meshgrid(*axes, indexing="ij")
    return jnp.asarray(np.stack([m.reshape(-1) for m in mesh], axis=1))


def heat_u0(z):
    x = z[0]
    return jnp.sin(jnp.pi * x) + 0.5 * jnp.sin(3 * jnp.pi * x)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("kind", NETWORK_KINDS)
def test_hard_dirichlet_and_initial_in_1d_space_time(seed, kind):
    domain = Domain(space=((0.0, 1.0),), time=(0.0, 1.0))
    conditions = [Condition("dirichlet", "all", 0.0, hard=True),
                  Condition("initial", value=heat_u0, hard=True)]
    solutions = random_solution(domain, conditions, seed, kind=kind)
    for u in solutions:
        for x in (0.0, 1.0):
            np.testing.assert_allclose(u(grid(domain, x=x)), 0.0, atol=EXACT)
        z0 = grid(domain, n=33, t=0.0)
        np.testing.assert_allclose(u(z0), jax.vmap(heat_u0)(z0), atol=EXACT)
    # Inside, u is the network's: two networks that meet the same constraints still differ.
    inside = jnp.array([[0.3, 0.4], [0.6, 0.8], [0.9, 0.1]])
    u_a, u_b = solutions
    assert float(jnp.max(jnp.abs(u_a(inside) - u_b(inside)))) > 1e-3


@pytest.mark.parametrize("seed", [0, 1])
def test_hard_time_dependent_dirichlet_with_compatible_initial_value(seed):
    domain = Domain(space=((-1.0, 2.0),), time=(0.5, 2.0))

    def g_lo(z):
        return 1.0 + jnp.sin(z[1])

    def g_hi(z):
        return -2.0 * z[1]

    def u0(z):  # equals g_lo and g_hi at the corners (t = 0.5)
        s = (z[0] + 1.0) / 3.0
        return (1.0 - s) * (1.0 + jnp.sin(0.5)) + s * -1.0 + jnp.sin(jnp.pi * s) ** 2

    conditions = [Condition("dirichlet", "x_min", g_lo, hard=True),
                  Condition("dirichlet", "x_max", g_hi, hard=True),
                  Condition("initial", value=u0, hard=True)]
    for u in random_solution(domain, conditions, seed):
        lo_face, hi_face = grid(domain, x=-1.0), grid(domain, x=2.0)
        np.testing.assert_allclose(u(lo_face), jax.vmap(g_lo)(lo_face), atol=EXACT)
        np.testing.assert_allclose(u(hi_face), jax.vmap(g_hi)(hi_face), atol=EXACT)
        z0 = grid(domain, t=0.5)
        np.testing.assert_allclose(u(z0), jax.vmap(u0)(z0), atol=EXACT)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hard_nonzero_dirichlet_at_both_ends_of_a_steady_1d_problem(seed):
    domain = Domain(space=((-1.0, 2.0),))
    conditions = [Condition("dirichlet", "x_min", 1.5, hard=True),
                  Condition("dirichlet", "x_max", -0.5, hard=True)]
    for u in random_solution(domain, conditions, seed):
        ends = u(jnp.array([[-1.0], [2.0]]))
        np.testing.assert_allclose(ends, [1.5, -0.5], atol=EXACT)
        assert float(jnp.std(u(jnp.linspace(-1.0, 2.0, 11)[:, None]))) > 1e-3


def test_hard_dirichlet_on_one_face_only():
    domain = Domain(space=((0.0, 1.0),), time=(0.0, 1.0))
    for u in random_solution(domain, [Condition("dirichlet", "x_max", 2.0, hard=True)], 0):
        np.testing.assert_allclose(u(grid(domain, x=1.0)), 2.0, atol=EXACT)
        assert float(jnp.max(jnp.abs(u(grid(domain, x=0.0)) - 2.0))) > 1e-3


@pytest.mark.parametrize("seed", [0, 1])
def test_hard_homogeneous_dirichlet_in_2d_space(seed):
    domain = Domain(space=((0.0, 1.0), (0.0, 2.0)), time=(0.0, 0.5))

    def u0(z):
        return jnp.sin(jnp.pi * z[0]) * jnp.sin(jnp.pi * z[1] / 2.0)

    conditions = [Condition("dirichlet", "all", 0.0, hard=True),
                  Condition("initial", value=u0, hard=True)]
    for u in random_solution(domain, conditions, seed):
        for face in ({"x": 0.0}, {"x": 1.0}, {"y": 0.0}, {"y": 2.0}):
            np.testing.assert_allclose(u(grid(domain, n=7, **face)), 0.0, atol=EXACT)
        z0 = grid(domain, n=7, t=0.0)
        np.testing.assert_allclose(u(z0), jax.vmap(u0)(z0), atol=EXACT)

    steady = Domain(space=((0.0, 1.0), (0.0, 2.0)))
    for u in random_solution(steady, [Condition("dirichlet", "all", 0.0, hard=True)], seed):
        for face in ({"x": 0.0}, {"x": 1.0}, {"y": 0.0}, {"y": 2.0}):
            np.testing.assert_allclose(u(grid(steady, n=7, **face)), 0.0, atol=EXACT)


def test_hard_constraint_errors_and_no_op():
    plane = Domain(space=((0.0, 1.0), (0.0, 1.0)))
    with pytest.raises(ValueError, match="must be homogeneous"):
        hard_constraint(plane, [Condition("dirichlet", "x_min", 1.0, hard=True)])
    with pytest.raises(ValueError, match="an initial condition needs a time domain"):
        hard_constraint(plane, [Condition("initial", value=0.0, hard=True)])
    with pytest.raises(ValueError, match="hard = true is available for dirichlet and initial"):
        Condition("neumann", "x_min", 0.0, hard=True)
    assert hard_constraint(plane, [Condition("dirichlet", "all", 1.0)]) == (None, None)


# --------------------------------------------------------------------------------------------
# Soft terms


SPACE_TIME = Domain(space=((-1.0, 2.0),), time=(0.5, 1.5))
PLANE_TIME = Domain(space=((0.0, 1.0), (0.0, 2.0)), time=(0.0, 1.0))


def assert_inside(points, domain):
    assert bool(np.all(domain.contains(points)))


@pytest.mark.parametrize(("domain", "faces"), [
    (SPACE_TIME, {"x_min": (0, -1.0), "x_max": (0, 2.0)}),
    (PLANE_TIME, {"x_min": (0, 0.0), "x_max": (0, 1.0), "y_min": (1, 0.0), "y_max": (1, 2.0)}),
])
def test_soft_dirichlet_points_lie_on_their_faces(domain, faces):
    terms = soft_terms(domain, [Condition("dirichlet", "all", 0.0)], num_points=10)
    assert [t.name for t in terms] == [f"dirichlet_0_{face}" for face in faces]
    for term, (axis, value) in zip(terms, faces.values(), strict=True):
        assert term.points.shape == (10, domain.ndim)
        assert_inside(term.points, domain)
        np.testing.assert_array_equal(term.points[:, axis], value)
        others = np.delete(term.points, axis, axis=1)
        assert len(np.unique(others, axis=0)) == 10  # spread over the face
        assert term.targets is None


def test_soft_single_face_and_initial_points():
    terms = soft_terms(SPACE_TIME, [Condition("dirichlet", "x_max", 1.0),
                                    Condition("initial", value=heat_u0)], num_points=6)
    assert [t.name for t in terms] == ["dirichlet_0_x_max", "initial_1"]
    np.testing.assert_array_equal(terms[0].points[:, 0], 2.0)
    np.testing.assert_array_equal(terms[1].points[:, 1], 0.5)
    assert_inside(terms[1].points, SPACE_TIME)

    def u(z):
        return 1.0 + 0.0 * z[0]

    r = jax.vmap(lambda z: terms[0].residual_fn(u, z, {}))(jnp.asarray(terms[0].points))
    np.testing.assert_allclose(r, 0.0, atol=EXACT)


def test_hard_conditions_give_no_soft_terms():
    conditions = [Condition("dirichlet", "all", 0.0, hard=True),
                  Condition("initial", value=heat_u0, hard=True)]
    assert soft_terms(SPACE_TIME, conditions, num_points=4) == []


def evaluate(term, u):
    return jax.vmap(lambda z: term.residual_fn(u, z, {}))(jnp.asarray(term.points))


def test_periodic_residual_vanishes_for_a_periodic_function():
    terms = soft_terms(SPACE_TIME, [Condition("periodic", "x")], num_points=8)
    assert [t.name for t in terms] == ["periodic_0_value", "periodic_0_slope"]
    np.testing.assert_array_equal(terms[0].points[:, 0], -1.0)  # matched against x = 2

    def periodic(z):  # period 3 = the domain's length in x
        return jnp.sin(2 * jnp.pi * z[0] / 3.0 + 0.3) * jnp.exp(-z[1]) + jnp.cos(
            4 * jnp.pi * z[0] / 3.0) * z[1]

    for term in terms:
        np.testing.assert_allclose(evaluate(term, periodic), 0.0, atol=1e-12)

    def not_periodic(z):
        return z[0] ** 2 + z[1]

    for term in terms:
        assert float(jnp.min(jnp.abs(evaluate(term, not_periodic)))) > 0.5


def test_periodic_in_y_of_a_2d_domain():
    terms = soft_terms(PLANE_TIME, [Condition("periodic", "y")], num_points=8)
    np.testing.assert_array_equal(terms[0].points[:, 1], 0.0)

    def u(z):  # period 2 in y
        return jnp.cos(jnp.pi * z[1]) * (1.0 + z[0] * z[2])

    for term in terms:
        np.testing.assert_allclose(evaluate(term, u), 0.0, atol=1e-12)


def test_neumann_residual_vanishes_for_the_right_normal_derivative():
    def u(z):  # u_x = 2 x: outward derivative -2 * (-1) = 2 at x = -1, 2 * 2 = 4 at x = 2
        return z[0] ** 2 + jnp.sin(z[1])

    per_face = soft_terms(SPACE_TIME, [Condition("neumann", "x_min", 2.0),
                                       Condition("neumann", "x_max", 4.0)], num_points=8)
    as_function = soft_terms(SPACE_TIME, [Condition("neumann", "all", lambda z: 2 * abs(z[0]))],
                             num_points=8)
    for term in per_face + as_function:
        np.testing.assert_allclose(evaluate(term, u), 0.0, atol=1e-12)
    # The inward derivative at x_min would be -2: the sign convention matters.
    wrong = soft_terms(SPACE_TIME, [Condition("neumann", "x_min", -2.0)], num_points=8)
    np.testing.assert_allclose(evaluate(wrong[0], u), 4.0, atol=1e-12)


def test_initial_rate_residual_is_the_time_derivative_at_t0():
    """u_t(x, t0) = g: the second initial condition of the wave equation (soft only)."""
    def u(z):  # u_t = 3 x^2 + 2 t: 3 x^2 + 1 at t0 = 0.5
        return jnp.sin(z[0]) + 3 * z[0] ** 2 * z[1] + z[1] ** 2

    (term,) = soft_terms(SPACE_TIME, [Condition("initial_rate", value=lambda z: 3 * z[0] ** 2
                                                + 1.0)], num_points=8)
    assert term.name == "initial_rate_0"
    np.testing.assert_array_equal(term.points[:, 1], 0.5)
    np.testing.assert_allclose(evaluate(term, u), 0.0, atol=1e-12)
    (zero,) = soft_terms(SPACE_TIME, [Condition("initial_rate", value=0.0)], num_points=8)
    np.testing.assert_allclose(evaluate(zero, u), 3 * zero.points[:, 0] ** 2 + 1.0, atol=1e-12)
    with pytest.raises(ValueError, match="hard = true is available for dirichlet and initial"):
        Condition("initial_rate", value=0.0, hard=True)


def test_neumann_on_a_y_face():
    def u(z):  # u_y = 2 y: 4 at y = 2
        return z[0] + z[1] ** 2

    (term,) = soft_terms(PLANE_TIME, [Condition("neumann", "y_max", 4.0)], num_points=8)
    np.testing.assert_array_equal(term.points[:, 1], 2.0)
    np.testing.assert_allclose(evaluate(term, u), 0.0, atol=1e-12)


def test_dirichlet_data_points_become_targets():
    pts = np.array([[-1.0, 0.7], [-1.0, 1.2]])
    cond = Condition("dirichlet", "x_min", points=pts, targets=np.array([0.3, -0.2]))
    (term,) = soft_terms(SPACE_TIME, [cond], num_points=8)
    np.testing.assert_array_equal(term.points, pts)
    np.testing.assert_array_equal(term.targets, [0.3, -0.2])


@pytest.mark.parametrize(("condition", "expected"), [
    (Condition("dirichlet", "left"), "boundary 'left' is unknown for this domain"),
    (Condition("neumann", "y_min"), "boundary 'y_min' is unknown"),
    (Condition("periodic", "t"), "periodic boundary must name a spatial axis"),
])
def test_bad_boundaries(condition, expected):
    with pytest.raises(ValueError, match=expected):
        soft_terms(SPACE_TIME, [condition], num_points=4)


def test_bad_condition_kind():
    with pytest.raises(ValueError, match="condition kind 'robin' is unknown; valid: dirichlet"):
        Condition("robin")


# --------------------------------------------------------------------------------------------
# The numpyro model


SMALL_MODEL = {"width": 4, "depth": 1, "num_collocation": 16}


def build(path):
    cfg = load_config(path)
    problem = build_problem(cfg)
    return build_model(problem, build_settings(cfg, problem.domain))


def trace(bpinn, *, physics_weight=1.0, data=None, seed=0):
    model = numpyro.handlers.seed(bpinn.model, rng_seed=seed)
    if data is not None:
        model = numpyro.handlers.substitute(model, data=data)
    return numpyro.handlers.trace(model).get_trace(physics_weight=physics_weight)


def test_model_sites(heat_case):
    bpinn = build(heat_case(model=SMALL_MODEL))
    tr = trace(bpinn)
    sample_sites = {n for n, s in tr.items() if s["type"] == "sample"}
    assert sample_sites == {"weights", "D", "sigma", "u_obs", "pde_residual"}
    assert tr["weights"]["value"].shape == (bpinn.num_weights,)
    assert bpinn.num_weights == bpinn.settings.network.num_params == 2 * 4 + 4 + 4 + 1
    assert tr["D"]["value"].shape == () and float(tr["D"]["value"]) > 0
    assert tr["sigma"]["value"].shape == ()
    obs = bpinn.problem.observations
    assert tr["u_obs"]["is_observed"] and tr["pde_residual"]["is_observed"]
    np.testing.assert_array_equal(tr["u_obs"]["value"], obs.values)
    assert tr["u_obs"]["value"].shape == (48,)
    assert tr["pde_residual"]["value"].shape == (16,)
    assert bpinn.unknown_coefficients == ("D",)
    assert bpinn.scale_sites == ("sigma",)
    assert bpinn.soft == ()


def test_model_log_likelihood_matches_the_formula(heat_case):
    bpinn = build(heat_case(model=SMALL_MODEL))
    p = bpinn.problem
    weights = 0.5 * jax.random.normal(jax.random.key(3), (bpinn.num_weights,))
    values = {"weights": weights, "D": 0.05, "sigma": 0.04}
    tr = trace(bpinn, data=values, physics_weight=0.25)

    u_pred = np.asarray(bpinn.predict(weights, p.observations.coords))
    site = tr["u_obs"]
    np.testing.assert_allclose(
        site["fn"].log_prob(site["value"]),
        scipy.stats.norm.logpdf(p.observations.values, u_pred, 0.04),
        rtol=1e-10,
    )
    u = bpinn.u_fn(weights)
    r = jax.vmap(lambda z: residual(p.pde, p.source, u, z, {"D": jnp.asarray(0.05)}))(
        jnp.asarray(bpinn.collocation)
    )
    site = tr["pde_residual"]
    np.testing.assert_allclose(site["fn"].loc, r, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(site["fn"].scale, bpinn.settings.residual_noise.value)
    assert site["scale"] == pytest.approx(0.25)  # MAP's physics tempering
    assert tr["u_obs"]["scale"] is None  # the data are never tempered


def test_model_respects_the_hard_constraints(heat_case):
    bpinn = build(heat_case(model=SMALL_MODEL))
    weights = jax.random.normal(jax.random.key(0), (bpinn.num_weights,))
    domain = bpinn.problem.domain
    for x in (0.0, 1.0):
        np.testing.assert_allclose(bpinn.predict(weights, grid(domain, x=x)), 0.0, atol=EXACT)
    z0 = grid(domain, n=17, t=0.0)
    np.testing.assert_allclose(bpinn.predict(weights, z0), jax.vmap(heat_u0)(z0), atol=EXACT)


def test_per_group_noise_gives_one_sigma_per_group(heat_case):
    path = heat_case(('group = "sensor"', 'group = "sensor"\nper_group_noise = true'),
                     model=SMALL_MODEL)
    bpinn = build(path)
    groups = len(bpinn.problem.observations.group_names)
    assert groups == 6
    tr = trace(bpinn)
    assert tr["sigma"]["value"].shape == (groups,)
    assert bpinn.initial_values(jax.random.key(0))["sigma"].shape == (groups,)
    sigma = jnp.arange(1.0, groups + 1.0)
    per_reading = bpinn.noise_per_reading(sigma)
    np.testing.assert_array_equal(per_reading, bpinn.problem.observations.group_index + 1.0)


def test_student_t_likelihood(heat_case):
    path = heat_case(('value = "u"', 'value = "u"\nlikelihood = "student_t"\nstudent_t_df = 3'),
                     model=SMALL_MODEL)
    bpinn = build(path)
    fn = trace(bpinn)["u_obs"]["fn"]
    assert isinstance(fn, dist.StudentT)
    np.testing.assert_array_equal(fn.df, 3.0)
    u_pred = jnp.zeros(48)
    d = bpinn.data_distribution(u_pred, 0.1)
    np.testing.assert_allclose(
        d.log_prob(bpinn.problem.observations.values),
        scipy.stats.t.logpdf(bpinn.problem.observations.values, 3, 0.0, 0.1), rtol=1e-10,
    )


def test_known_coefficient_and_noise_have_no_sample_site(heat_case):
    path = heat_case(("D = {", "D = 0.07\n# D = {"),
                     ('noise = { prior = "HalfNormal", scale = 0.1 }', "noise = 0.02"),
                     model=SMALL_MODEL)
    bpinn = build(path)
    tr = trace(bpinn)
    assert "D" not in tr and "sigma" not in tr
    assert bpinn.unknown_coefficients == () and bpinn.scale_sites == ()
    assert float(bpinn.coefficient_values({})["D"]) == 0.07
    np.testing.assert_allclose(tr["u_obs"]["fn"].scale, 0.02)


def test_inferred_residual_noise_and_soft_conditions(heat_case):
    path = heat_case(("hard = true\n\n[[conditions]]", "hard = false\n\n[[conditions]]"),
                     ("residual_noise = 0.05",
                      'residual_noise = { prior = "HalfNormal", scale = 0.1 }\n'
                      'condition_noise = { prior = "HalfNormal", scale = 0.05 }\n'
                      "num_condition_points = 5"),
                     model=SMALL_MODEL)
    bpinn = build(path)
    assert bpinn.scale_sites == ("sigma", "sigma_pde", "sigma_bc")
    tr = trace(bpinn)
    for name in ("sigma_pde", "sigma_bc", "condition.dirichlet_0_x_min",
                 "condition.dirichlet_0_x_max"):
        assert name in tr
    assert tr["condition.dirichlet_0_x_min"]["value"].shape == (5,)
    assert "condition.initial_1" not in tr  # still hard


def test_collocation_points_fill_the_domain():
    for domain in (SPACE_TIME, PLANE_TIME, Domain(space=((-2.0, -1.0),))):
        pts = collocation_points(domain, 64)
        assert pts.shape == (64, domain.ndim)
        assert_inside(pts, domain)
        assert len(np.unique(pts, axis=0)) == 64
        np.testing.assert_array_equal(pts, collocation_points(domain, 64))  # deterministic
        # Low discrepancy: every half of every axis holds a fair share of the points.
        mid = (domain.lower + domain.upper) / 2
        assert np.all(np.abs((pts < mid).mean(axis=0) - 0.5) < 0.1)


def test_residual_vanishes_on_the_exact_heat_solution(heat_case):
    bpinn = build(heat_case(model=SMALL_MODEL))
    p = bpinn.problem

    def exact(z):
        return heat_sine_series(z[0], z[1], HEAT_D, HEAT_SINES)

    def max_residual(D):
        r = jax.vmap(lambda z: residual(p.pde, p.source, exact, z, {"D": jnp.asarray(D)}))(
            jnp.asarray(collocation_points(p.domain, 128))
        )
        return float(jnp.max(jnp.abs(r)))

    assert max_residual(HEAT_D) < 1e-10
    assert max_residual(1.5 * HEAT_D) > 0.1
    # The exact solution meets the case study's initial condition, so the data make sense.
    z0 = grid(p.domain, t=0.0)
    np.testing.assert_allclose(jax.vmap(exact)(z0), jax.vmap(heat_u0)(z0), atol=1e-12)


def test_measured_source_adds_its_own_likelihood_term(heat_case):
    """A source known only through noisy values at points: its own site and noise scale."""
    (heat_case.root / "source.csv").write_text("x,t,f\n0.5,0.5,0.0\n0.25,0.75,0.1\n0.8,0.2,-0.1\n")
    path = heat_case(
        model=SMALL_MODEL,
        extra='\n[source_data]\nfile = "source.csv"\nvalue = "f"\n'
              'noise = { prior = "HalfNormal", scale = 0.5 }\n',
    )
    bpinn = build(path)
    tr = trace(bpinn)
    assert tr["source_obs"]["is_observed"]
    np.testing.assert_array_equal(tr["source_obs"]["value"], [0.0, 0.1, -0.1])
    assert "sigma_source" in bpinn.scale_sites and tr["sigma_source"]["value"].shape == ()
    # The term compares L[u] with the measured f: its mean is the operator at those points.
    u = bpinn.u_fn(tr["weights"]["value"])
    coeffs = {"D": tr["D"]["value"]}
    expected = jax.vmap(lambda z: bpinn.problem.pde.operator(u, z, coeffs))(
        jnp.asarray(bpinn.problem.source_data.coords))
    np.testing.assert_allclose(tr["source_obs"]["fn"].mean, expected, rtol=1e-12)


def test_soft_conditions_with_an_inferred_scale(heat_case):
    heat_case.text = heat_case.text.replace("hard = true", "hard = false")  # both conditions
    path = heat_case(
        ("residual_noise = 0.05",
         'residual_noise = 0.05\ncondition_noise = { prior = "HalfNormal", scale = 0.1 }'),
        model={**SMALL_MODEL, "num_condition_points": 8},
    )
    bpinn = build(path)
    tr = trace(bpinn)
    assert "sigma_bc" in bpinn.scale_sites
    condition_sites = sorted(n for n in tr if n.startswith("condition."))
    # Dirichlet on the two faces x = 0 and x = 1, and the initial condition: 8 points each
    assert len(condition_sites) == 3
    assert all(tr[n]["value"].shape == (8,) for n in condition_sites)


def test_fourier_scales_per_coordinate():
    iso = Network(input_dim=2, kind="fourier", num_fourier=4000, fourier_scale=2.0)
    aniso = Network(input_dim=2, kind="fourier", num_fourier=4000, fourier_scale=(2.0, 0.25))
    # the same standard normal draws, scaled row by row
    np.testing.assert_allclose(np.asarray(aniso.fourier_matrix[0]),
                               np.asarray(iso.fourier_matrix[0]))
    np.testing.assert_allclose(np.asarray(aniso.fourier_matrix[1]),
                               np.asarray(iso.fourier_matrix[1]) / 8.0)
    sd = np.std(np.asarray(aniso.fourier_matrix), axis=1)
    np.testing.assert_allclose(sd, [2.0, 0.25], rtol=0.05)  # 4000 draws: sd within ~2%
    for bad in ((1.0, 2.0, 3.0), (1.0, -1.0), 0.0):
        with pytest.raises(ValueError, match="fourier_scale must be a positive number or 2"):
            Network(input_dim=2, kind="fourier", fourier_scale=bad)
