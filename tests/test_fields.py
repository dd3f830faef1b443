"""Coefficient fields (``bpinn.models.fields``): the reduced-rank Gaussian-process prior, the
divergence form of the built-in diffusion terms, and the config keys that declare a field."""

from __future__ import annotations

import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bpinn.config import ConfigError, build_problem, load_config
from bpinn.models.fields import (
    FieldValue,
    GaussianProcessField,
    coefficients_at,
    default_num_basis,
    values_on,
)
from bpinn.models.pdes import heat, poisson
from bpinn.models.problem import Domain, residual, zero_source
from bpinn.reference.registry import problem_forward


def _field(lower, upper, length_scale, scale=1.0, log=False, loc=0.0):
    half = (np.asarray(upper) - np.asarray(lower)) / 2
    return GaussianProcessField(
        name="k", axes=tuple(range(len(lower))), axis_names=("x", "y")[: len(lower)],
        lower=tuple(lower), upper=tuple(upper), loc=loc, scale=scale,
        length_scale=tuple(length_scale), log=log,
        num_basis=default_num_basis(length_scale, half))


@pytest.mark.parametrize("ell", [0.05, 0.2, 1.0])
def test_basis_reproduces_the_squared_exponential_kernel_in_1d(ell):
    """The default box and number of basis functions approximate the kernel (Riutort-Mayol et
    al. 2022): the prior covariance over the domain within 1% of the amplitude's variance."""
    spec = _field([0.0], [2.0], [ell * 2], scale=0.7)
    x = np.linspace(0.0, 2.0, 41)[:, None]
    basis = np.asarray(spec.basis_on(x))
    kernel = 0.49 * np.exp(-0.5 * (x - x.T) ** 2 / (ell * 2) ** 2)
    assert np.max(np.abs(basis @ basis.T - kernel)) < 0.01 * 0.49


@pytest.mark.parametrize(("kernel", "nu"), [("matern52", 2.5), ("matern32", 1.5)])
def test_basis_reproduces_matern_kernels(kernel, nu):
    """The Matern kernels with their own box and basis rules; rougher kernels converge more
    slowly in the number of basis functions, so the stated tolerance is 3% of the variance."""
    ell = 0.2
    spec = GaussianProcessField("k", (0,), ("x",), (0.0,), (1.0,), scale=1.0,
                                length_scale=(ell,), log=False, kernel=kernel,
                                num_basis=default_num_basis([ell], [0.5], kernel))
    x = np.linspace(0.0, 1.0, 41)[:, None]
    basis = np.asarray(spec.basis_on(x))
    r = np.sqrt(2 * nu) * np.abs(x - x.T) / ell
    if nu == 2.5:
        kernel_values = (1 + r + r**2 / 3) * np.exp(-r)
    else:
        kernel_values = (1 + r) * np.exp(-r)
    assert np.max(np.abs(basis @ basis.T - kernel_values)) < 0.03


def test_basis_reproduces_an_anisotropic_kernel_in_2d():
    spec = _field([0.0, -1.0], [1.0, 1.0], [0.3, 0.5])
    points = np.random.default_rng(0).uniform([0.0, -1.0], [1.0, 1.0], (30, 2))
    basis = np.asarray(spec.basis_on(points))
    scaled = (points[:, None] - points[None]) / np.array([0.3, 0.5])
    kernel = np.exp(-0.5 * np.sum(scaled**2, axis=-1))
    assert np.max(np.abs(basis @ basis.T - kernel)) < 0.02


def test_a_field_value_is_a_pytree_that_jit_and_vmap_carry():
    spec = _field([0.0], [1.0], [0.2], log=True, loc=-1.0)
    latents = jax.random.normal(jax.random.key(0), (3, spec.num_latent))
    z = jnp.array([0.3])

    @jax.jit
    def at(coeffs):
        return coeffs["k"](z)

    direct = jnp.exp(-1.0 + spec.basis(z) @ latents[0])
    assert float(at({"k": FieldValue(spec, latents[0])})) == pytest.approx(float(direct))
    batched = jax.vmap(lambda lat: at({"k": FieldValue(spec, lat)}))(latents)
    np.testing.assert_allclose(batched, values_on(spec, latents, np.array([[0.3]]))[:, 0],
                               rtol=1e-12)


def test_coefficients_at_evaluates_fields_and_passes_numbers_through():
    spec = _field([0.0], [1.0], [0.2])
    field = FieldValue(spec, jnp.ones(spec.num_latent))
    z = jnp.array([0.4])
    out = coefficients_at({"k": field, "D": jnp.asarray(2.0)}, z)
    assert float(out["k"]) == pytest.approx(float(field(z)))
    assert float(out["D"]) == 2.0
    assert out["fields"] == {"k": field}
    plain = {"D": jnp.asarray(2.0)}
    assert coefficients_at(plain, z) is plain


def test_builtin_poisson_with_a_conductivity_field_is_in_divergence_form():
    """-div(k grad u) against the same expression differentiated directly."""
    domain = Domain(space=((0.0, 1.0), (0.0, 2.0)))
    spec = GaussianProcessField("k", (0, 1), ("x", "y"), (0.0, 0.0), (1.0, 2.0), loc=0.2,
                                scale=0.5, length_scale=(0.4, 0.6), log=True,
                                num_basis=(6, 6))
    field = FieldValue(spec, jax.random.normal(jax.random.key(1), (spec.num_latent,)))

    def u(z):
        return jnp.sin(2 * z[0]) * jnp.cos(z[1]) + z[0] * z[1] ** 2

    def flux_divergence(z):
        return sum(jax.grad(lambda s, i=i: field(s) * jax.grad(u)(s)[i])(z)[i] for i in (0, 1))

    pde = poisson(domain)
    for z in (jnp.array([0.3, 0.7]), jnp.array([0.9, 1.6])):
        r = residual(pde, zero_source, u, z, {"k": field})
        assert float(r) == pytest.approx(-float(flux_divergence(z)), rel=1e-10)


def test_builtin_heat_with_a_constant_field_agrees_with_the_number():
    """A field whose latent is zero and log = false is the constant loc: the divergence form
    then adds nothing."""
    domain = Domain(space=((0.0, 1.0),), time=(0.0, 1.0))
    spec = GaussianProcessField("D", (0,), ("x",), (0.0,), (1.0,), loc=0.3, scale=1.0,
                                length_scale=(0.2,), log=False, num_basis=(8,))
    field = FieldValue(spec, jnp.zeros(spec.num_latent))

    def u(z):
        return jnp.exp(-z[1]) * jnp.sin(3 * z[0])

    z = jnp.array([0.4, 0.5])
    pde = heat(domain)
    assert float(residual(pde, zero_source, u, z, {"D": field})) == pytest.approx(
        float(residual(pde, zero_source, u, z, {"D": jnp.asarray(0.3)})), rel=1e-12)


# --------------------------------------------------------------------------------------------
# Config

FIELD_CONFIG = textwrap.dedent("""\
    [problem]
    pde = "poisson"
    source = 1.0

    [domain]
    x = [0.0, 2.0]

    [coefficients]
    k = {field}

    [[conditions]]
    kind = "dirichlet"
    boundary = "all"
    value = 0.0
    hard = true

    [data]
    file = "sensors.csv"
    coords = {{ x = "x" }}
    value = "u"
    noise = 0.01
    {truth}
""")


def _config(tmp_path, field: str, truth: str = ""):
    x = np.linspace(0.1, 1.9, 10)
    (tmp_path / "sensors.csv").write_text(
        "x,u\n" + "".join(f"{a},{a * (2 - a) / 2}\n" for a in x))
    (tmp_path / "truth.py").write_text("import jax.numpy as jnp\n\ndef k(z):\n"
                                       "    return 1.0 + 0.0 * z[0]\n")
    path = tmp_path / "config.toml"
    path.write_text(FIELD_CONFIG.format(field=field, truth=truth))
    return path


def test_config_field_with_defaults(tmp_path):
    problem = build_problem(load_config(_config(tmp_path, '{ field = "gp" }')))
    spec = problem.coefficients["k"]
    assert isinstance(spec, GaussianProcessField)
    assert spec.axis_names == ("x",) and spec.lower == (0.0,) and spec.upper == (2.0,)
    assert spec.length_scale == (0.5,)  # a quarter of the extent
    assert spec.log and spec.loc == 0.0 and spec.scale == 1.0
    assert spec.num_basis == default_num_basis([0.5], [1.0])


def test_config_field_truth_is_a_function_of_the_point(tmp_path):
    path = _config(tmp_path, '{ field = "gp", length_scale = 0.3, num_basis = 12 }',
                   '[truth]\nk = "truth:k"')
    problem = build_problem(load_config(path))
    assert problem.coefficients["k"].num_basis == (12,)
    assert float(problem.truth["k"](jnp.array([0.5]))) == 1.0


def test_config_field_truth_may_be_a_constant(tmp_path):
    problem = build_problem(load_config(_config(tmp_path, '{ field = "gp" }', "[truth]\nk = 2.5")))
    assert float(problem.truth["k"](jnp.array([0.7]))) == 2.5


@pytest.mark.parametrize(("field", "truth", "message"), [
    ('{ field = "gq" }', "", "unknown field prior 'gq'"),
    ('{ field = "gp", lenght_scale = 0.2 }', "", "did you mean 'length_scale'"),
    ('{ field = "gp", over = ["t"] }', "", "coordinates out of ['x']"),
    ('{ field = "gp", length_scale = [0.1, 0.2] }', "", "one value per axis ['x']"),
    ('{ field = "gp", length_scale = -1.0 }', "", "length_scale: must be > 0"),
    ('{ field = "gp", num_basis = 1000 }', "", "num_basis: must be <= 400"),
    ('{ field = "gp", scale = 0 }', "", "scale: must be > 0"),
    ('{ field = "gp", log = "yes" }', "", "log: expected true or false"),
    ('{ field = "gp", kernel = "matern" }', "", "unknown kernel 'matern'"),
    ('{ prior = "LogNormal", loc = 0.0, scale = 1.0 }', '[truth]\nk = "truth:k"',
     "is for a coefficient field"),
])
def test_config_field_errors_name_the_key(tmp_path, field, truth, message):
    with pytest.raises(ConfigError, match="coefficients\\] k|truth\\] k") as err:
        build_problem(load_config(_config(tmp_path, field, truth)))
    assert message in str(err.value)


def test_builtin_reference_solvers_refuse_fields_and_say_what_to_do(tmp_path):
    problem = build_problem(load_config(_config(tmp_path, '{ field = "gp" }')))
    with pytest.raises(ValueError, match="k is a coefficient field.*\\[problem\\] reference"):
        problem_forward(problem)


# --------------------------------------------------------------------------------------------
# The field's summary


def _field_tree(values):
    from bpinn.inference.results import build_datatree

    return build_datatree(posterior={"k": values}, dims={"k": ["k_x"]},
                          coords={"k_x": np.linspace(0.0, 1.0, values.shape[-1])})


def test_field_summary_states_contraction_band_and_truth():
    from bpinn.diagnostics import field_identifiability
    from bpinn.inference.results import field_summary, field_warnings

    rng = np.random.default_rng(0)
    sd_of_log = np.array([0.1, 0.5, 0.9])  # prior sd 1: contractions 0.99, 0.75, 0.19
    log_k = rng.normal(0.0, 1.0, (4, 2000, 3)) * sd_of_log
    tree = _field_tree(np.exp(log_k))
    verdict = field_identifiability(tree, "k", prior_sd=1.0, log=True)
    np.testing.assert_allclose(verdict["contraction"], 1 - sd_of_log**2, atol=0.02)
    assert verdict["identified_fraction"] == pytest.approx(2 / 3)
    f = field_summary(tree, "k", truth=np.array([1.0, 1.0, 100.0]))
    assert f["axes"] == {"x": [0.0, 0.5, 1.0]}
    assert f["truth_in_95_fraction"] == pytest.approx(2 / 3)  # 100 is outside every band
    assert f["max_r_hat"] < 1.01 and f["min_ess_bulk"] > 1000
    assert field_warnings("k", f) == []


def test_field_warnings_name_chains_that_disagree_on_the_field():
    from bpinn.inference.results import field_summary, field_warnings

    values = np.random.default_rng(1).normal(0.0, 1.0, (2, 500, 4))
    values[1, :, 2] += 3.0  # the second chain sits elsewhere at one grid point
    f = field_summary(_field_tree(values), "k")
    warnings = field_warnings("k", f)
    assert f["max_r_hat"] > 1.5
    assert any("R-hat of the field k" in w for w in warnings), warnings


# --------------------------------------------------------------------------------------------
# End to end in 2-D: a conductivity field in -div(k grad u) = f (Darcy-like)

DARCY = textwrap.dedent("""\
    [problem]
    pde = "poisson"
    source = "src:f"

    [domain]
    x = [0.0, 1.0]
    y = [0.0, 1.0]

    [coefficients]
    k = { field = "gp", loc = 0.0, scale = 0.5, length_scale = 0.3 }

    [[conditions]]
    kind = "dirichlet"
    boundary = "all"
    value = 0.0
    hard = true

    [data]
    file = "sensors.csv"
    coords = { x = "x", y = "y" }
    value = "u"
    noise = { prior = "HalfNormal", scale = 0.05 }

    [model]
    num_collocation = 128
    residual_noise = 0.1

    [inference]
    num_chains = 2
    num_warmup = 100
    num_samples = 100
    max_tree_depth = 6

    [truth]
    k = "src:k"
""")


@pytest.mark.slow
def test_a_2d_conductivity_field_is_recovered_where_readings_are(tmp_path):
    """u = sin(pi x) sin(pi y) with k = 1 everywhere, 40 readings of sd 0.01: the band at the
    centre, amid the readings, holds k = 1; the report maps the field."""
    (tmp_path / "src.py").write_text(
        "import jax.numpy as jnp\n\n"
        "def f(z):\n    return 2 * jnp.pi**2 * jnp.sin(jnp.pi * z[0]) * jnp.sin(jnp.pi * z[1])\n\n"
        "def k(z):\n    return 1.0 + 0.0 * z[0]\n")
    rng = np.random.default_rng(0)
    p = rng.uniform(0.05, 0.95, (40, 2))
    u = np.sin(np.pi * p[:, 0]) * np.sin(np.pi * p[:, 1]) + rng.normal(0.0, 0.01, 40)
    (tmp_path / "sensors.csv").write_text(
        "x,y,u\n" + "".join(f"{a},{b},{c}\n" for (a, b), c in zip(p, u, strict=True)))
    (tmp_path / "config.toml").write_text(DARCY)
    from bpinn.api import run

    result = run(tmp_path / "config.toml", outdir=tmp_path / "out")
    field = result.summary["fields"]["k"]
    assert result.datatree["posterior"]["k"].dims == ("chain", "draw", "k_x", "k_y")
    centre = np.ravel_multi_index((10, 10), (21, 21))  # (x, y) = (0.5, 0.5)
    assert field["q2.5"][centre] <= 1.0 <= field["q97.5"][centre]
    assert field["contraction"][centre] > 0.9
    from bpinn.report import write_report

    report = write_report(tmp_path / "out").read_text()
    assert "id='fields'" in report and "alt='field k'" in report


def test_calibration_refuses_fields_before_any_work(tmp_path):
    from bpinn.calibration import calibrate

    with pytest.raises(ConfigError, match="coefficient fields \\(k\\) are not supported"):
        calibrate(_config(tmp_path, '{ field = "gp" }'), num_datasets=2)
