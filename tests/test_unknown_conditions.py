"""Boundary and initial values that are themselves unknown: a condition whose value names a
coefficient (``value = "T"``), a number with a prior or a field such as an unknown initial
temperature u0(x), inferred with everything else."""

from __future__ import annotations

import textwrap

import jax.numpy as jnp
import numpy as np
import pytest

from bpinn.api import prepare
from bpinn.config import ConfigError, build_problem, load_config
from bpinn.models.conditions import Condition, UnknownValue, soft_terms
from bpinn.models.fields import FieldValue, GaussianProcessField
from bpinn.models.problem import Domain
from bpinn.reference.registry import problem_forward

WALL = textwrap.dedent("""\
    [problem]
    pde = "poisson"

    [domain]
    x = [0.0, 1.0]

    [coefficients]
    k = 1.0
    {declared}

    [[conditions]]
    kind = "dirichlet"
    boundary = "x_min"
    value = 0.0
    hard = true

    [[conditions]]
    kind = "{kind}"
    boundary = "x_max"
    value = "{value}"
    {extra}

    [data]
    file = "sensors.csv"
    coords = {{ x = "x" }}
    value = "u"
    noise = 0.01

    [model]
    width = 8
    num_collocation = 32

    [inference]
    num_chains = 2
    num_warmup = 150
    num_samples = 200
    seed = 0
    implicit_prior = "ignored"   # measured at 0.00 sds here; its own tests cover it
    {truth}
""")

T_TRUE = 0.7


def _wall(tmp_path, declared='T = { prior = "Normal", loc = 0.0, scale = 1.0 }',
          kind="dirichlet", value="T", extra="", truth=""):
    """-u'' = 0 on [0, 1], u(0) = 0 exactly and u(1) = T unknown: u = T x. Six readings of
    0.7 x with noise sd 0.01 (seed 0)."""
    x = np.linspace(0.15, 0.9, 6)
    u = T_TRUE * x + np.random.default_rng(0).normal(0.0, 0.01, x.size)
    (tmp_path / "sensors.csv").write_text(
        "x,u\n" + "".join(f"{a},{b}\n" for a, b in zip(x, u, strict=True)))
    path = tmp_path / "config.toml"
    path.write_text(WALL.format(declared=declared, kind=kind, value=value, extra=extra,
                                truth=truth))
    return path


def test_a_condition_value_naming_a_coefficient_makes_it_unknown(tmp_path):
    problem = build_problem(load_config(_wall(tmp_path)))
    wall = problem.conditions[1]
    assert wall.value == UnknownValue("T") and wall.unknown == "T" and not wall.hard
    assert problem.coefficient_names == ("k", "T")  # the PDE's, then the conditions'
    model = prepare(load_config(_wall(tmp_path)))
    assert model.unknown_coefficients == ("T",)
    assert model.reported_sites == ("T",)


def test_the_soft_term_compares_u_with_the_unknown_value():
    domain = Domain(space=((0.0, 1.0),))
    cond = Condition("dirichlet", boundary="x_max", value=UnknownValue("T"))
    (term,) = soft_terms(domain, [cond], num_points=1)
    z = jnp.asarray(term.points[0])
    assert float(term.residual_fn(lambda p: jnp.asarray(0.5), z, {"T": 0.3})) == pytest.approx(0.2)


def test_an_unknown_field_value_is_read_at_the_condition_point():
    """An initial value u0(x): the term at (x, t0) compares u with the field at x."""
    domain = Domain(space=((0.0, 1.0),), time=(0.0, 1.0))
    spec = GaussianProcessField("u0", (0,), ("x",), (0.0,), (1.0,), scale=1.0,
                                length_scale=(0.2,), log=False, num_basis=(12,))
    latent = jnp.linspace(-1.0, 1.0, spec.num_latent)
    u0 = FieldValue(spec, latent)
    (term,) = soft_terms(domain, [Condition("initial", value=UnknownValue("u0"))], num_points=4)
    for point in term.points:
        z = jnp.asarray(point)
        r = term.residual_fn(lambda p: p[0] ** 2, z, {"u0": u0})
        assert float(r) == pytest.approx(float(z[0] ** 2 - u0(z)))


def test_an_unknown_initial_field_defaults_to_the_space_coordinates(tmp_path):
    text = (_wall(tmp_path).read_text()
            .replace('pde = "poisson"', 'pde = "heat"').replace("k = 1.0", "D = 0.1")
            .replace('x = [0.0, 1.0]', 'x = [0.0, 1.0]\nt = [0.0, 0.5]')
            .replace('T = { prior = "Normal", loc = 0.0, scale = 1.0 }',
                     'u0 = { field = "gp", log = false }')
            .replace('kind = "dirichlet"\nboundary = "x_max"\nvalue = "T"',
                     'kind = "initial"\nvalue = "u0"')
            .replace('coords = { x = "x" }', 'coords = { x = "x", t = "t" }'))
    (tmp_path / "sensors.csv").write_text("x,t,u\n0.5,0.2,0.1\n0.3,0.4,0.05\n")
    (tmp_path / "heat.toml").write_text(text)
    problem = build_problem(load_config(tmp_path / "heat.toml"))
    spec = problem.coefficients["u0"]
    assert isinstance(spec, GaussianProcessField) and spec.axis_names == ("x",)
    assert problem.coefficient_names == ("D", "u0")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"value": "Tw", "declared": ""},
     "or the name of a coefficient declared under [coefficients]; 'Tw' is none of these"),
    ({"extra": "hard = true"},
     "unknown coefficient 'T', which is imposed softly: set hard = false"),
    ({"declared": 'T = { field = "gp", log = false }'},
     "the field 'T' varies over ['x'], which stay fixed on this dirichlet condition's points"),
    ({"declared": 'T = { prior = "Normal", loc = 0.0, scale = 1.0 }\nS = 1.0'},
     "'S' is not a coefficient of the poisson PDE"),
])
def test_unknown_condition_values_errors_name_the_key(tmp_path, kwargs, message):
    with pytest.raises(ConfigError) as err:
        build_problem(load_config(_wall(tmp_path, **kwargs)))
    assert message in str(err.value)
    assert "[[conditions]][1]" in str(err.value) or "[coefficients]" in str(err.value)


def test_builtin_reference_solvers_refuse_unknown_condition_values(tmp_path):
    problem = build_problem(load_config(_wall(tmp_path)))
    with pytest.raises(ValueError,
                       match="T is an unknown condition value.*\\[problem\\] reference"):
        problem_forward(problem)


def test_an_unknown_wall_value_is_recovered_within_its_interval(tmp_path):
    """u = T x: six readings of sd 0.01 on x in [0.15, 0.9] determine T to about 0.01 (least
    squares on the line through 0); the 95% interval holds 0.7 and is that narrow."""
    from bpinn.api import run

    result = run(_wall(tmp_path, truth=f"[truth]\nT = {T_TRUE}"), outdir=tmp_path / "out")
    row = result.summary["parameters"]["T"]
    assert row["q2.5"] <= T_TRUE <= row["q97.5"]
    assert row["sd"] < 0.03
    assert result.summary["diagnostics"]["max_r_hat"] < 1.05


def test_check_says_which_condition_an_unknown_value_belongs_to(tmp_path, capsys):
    from bpinn.cli import main

    assert main(["check", str(_wall(tmp_path))]) == 0
    out = capsys.readouterr().out
    assert "unknowns      T" in out
    assert "unknown value T is the value of [[conditions]][1] (dirichlet on x_max)" in out


def test_a_field_over_space_may_be_the_value_on_the_whole_boundary_of_a_2d_domain(tmp_path):
    """On every face of a square one coordinate is fixed, but not the same one: a field over
    (x, y) varies along the perimeter, so it is accepted there."""
    text = (_wall(tmp_path).read_text()
            .replace('x = [0.0, 1.0]', 'x = [0.0, 1.0]\ny = [0.0, 1.0]')
            .replace('T = { prior = "Normal", loc = 0.0, scale = 1.0 }',
                     'g = { field = "gp", log = false }')
            .replace('boundary = "x_min"\nvalue = 0.0\nhard = true', 'boundary = "x_min"\n'
                     'value = 0.0')
            .replace('boundary = "x_max"\nvalue = "T"', 'boundary = "all"\nvalue = "g"')
            .replace('coords = { x = "x" }', 'coords = { x = "x", y = "y" }'))
    (tmp_path / "sensors.csv").write_text("x,y,u\n0.5,0.2,0.1\n0.3,0.4,0.05\n")
    (tmp_path / "square.toml").write_text(text)
    problem = build_problem(load_config(tmp_path / "square.toml"))
    assert problem.coefficients["g"].axis_names == ("x", "y")
    assert problem.conditions[1].unknown == "g"


def test_an_unknown_flux_in_time_and_an_unknown_value_of_one_output_of_a_system():
    """A Neumann wall whose flux q(t) is a field over t (the inverse heat-conduction problem),
    and a system's condition on its second output: each term reads its own unknown."""
    domain = Domain(space=((0.0, 1.0),), time=(0.0, 1.0))
    spec = GaussianProcessField("q", (1,), ("t",), (0.0,), (1.0,), scale=1.0,
                                length_scale=(0.3,), log=False, num_basis=(8,))
    q = FieldValue(spec, jnp.linspace(-1.0, 1.0, spec.num_latent))
    (flux,) = soft_terms(domain, [Condition("neumann", boundary="x_max",
                                            value=UnknownValue("q"))], num_points=3)
    for point in flux.points:
        z = jnp.asarray(point)  # u = x^2: outward derivative 2 at x = 1
        r = flux.residual_fn(lambda p: p[0] ** 2, z, {"q": q})
        assert float(r) == pytest.approx(2.0 - float(q(z)))
    (second,) = soft_terms(domain, [Condition("dirichlet", boundary="x_min", output=1,
                                              value=UnknownValue("T"))], num_points=1)
    z = jnp.asarray(second.points[0])
    r = second.residual_fn(lambda p: jnp.stack([p[0] + 5.0, p[1]]), z, {"T": 0.25})
    assert float(r) == pytest.approx(float(z[1]) - 0.25)
