"""Systems of equations: a user-defined PDE with several unknown functions ([problem] outputs).

The toy system is the rotation u' = a v, v' = -a u on [0, 1] with u(0) = 0, v(0) = 1, whose
solution u = sin(a x), v = cos(a x) is known in closed form; it is also the reference solver.
"""

from __future__ import annotations

import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bpinn.api import prepare, run
from bpinn.config import ConfigError, load_config
from bpinn.diagnostics import sensor_design
from bpinn.models.conditions import Condition, soft_terms
from bpinn.models.problem import Domain

TRUE_A = 2.0
NOISE_SD = 0.02

MODULE = '''
import jax.numpy as jnp
from bpinn.models.pdes import partial


def operator(u_fn, z, coeffs):
    du, u = partial(u_fn, z, 0), u_fn(z)
    return jnp.stack([du[0] - coeffs["a"] * u[1], du[1] + coeffs["a"] * u[0]])


def list_operator(u_fn, z, coeffs):
    du, u = partial(u_fn, z, 0), u_fn(z)
    return [du[0] - coeffs["a"] * u[1], du[1] + coeffs["a"] * u[0]]


def scalar_operator(u_fn, z, coeffs):
    return partial(u_fn, z, 0)[0]


def forward(points, coeffs):
    x = points[:, 0]
    return jnp.stack([jnp.sin(coeffs["a"] * x), jnp.cos(coeffs["a"] * x)], axis=1)


def forward_one_column(points, coeffs):
    return jnp.sin(coeffs["a"] * points[:, 0])
'''

CONFIG = '''
[problem]
pde = "rotation:operator"
outputs = ["u", "v"]
coefficients = ["a"]
reference = "rotation:forward"

[domain]
x = [0.0, 1.0]

[coefficients]
a = { prior = "LogNormal", loc = 0.0, scale = 1.0 }

[[conditions]]
kind = "dirichlet"
boundary = "x_min"
value = 0.0
output = "u"

[[conditions]]
kind = "dirichlet"
boundary = "x_min"
value = 1.0
output = "v"

[data]
file = "sensors.csv"
value = { u = "u", v = "v" }
noise = { prior = "HalfNormal", scale = 0.1 }
per_group_noise = true

[model]
width = 12
num_collocation = 64

[inference]
method = "nuts"
num_chains = 2
num_warmup = 150
num_samples = 150
max_tree_depth = 7

[truth]
a = 2.0
'''


def _write_case(root, config=CONFIG, *, skip_v_every=3):
    """The toy system's module, readings (v missing at every ``skip_v_every``-th point) and
    config in ``root``; returns the config path."""
    (root / "rotation.py").write_text(MODULE)
    rng = np.random.default_rng(0)
    x = np.linspace(0.05, 1.0, 12)
    u = np.sin(TRUE_A * x) + NOISE_SD * rng.normal(size=x.size)
    v = np.cos(TRUE_A * x) + NOISE_SD * rng.normal(size=x.size)
    rows = [f"{a},{b},{'' if skip_v_every and i % skip_v_every == 0 else c}"
            for i, (a, b, c) in enumerate(zip(x, u, v, strict=True))]
    (root / "sensors.csv").write_text("x,u,v\n" + "\n".join(rows) + "\n")
    path = root / "config.toml"
    path.write_text(textwrap.dedent(config))
    return path


def _edit(text, old, new):
    assert old in text, old
    return text.replace(old, new)


@pytest.fixture
def case(tmp_path):
    return _write_case(tmp_path)


def test_readings_are_grouped_by_output_and_empty_cells_are_not_readings(case):
    model = prepare(load_config(case))
    obs = model.problem.observations
    assert obs.group_names == ("u", "v")
    assert obs.n == 12 + 8  # every u; v skips every third of the 12 points
    np.testing.assert_array_equal(model.reading_outputs, obs.group_index)
    assert model.settings.network.output_dim == 2
    assert model.noise_shape == (2,)


def test_each_reading_is_predicted_by_its_own_output(case):
    model = prepare(load_config(case))
    obs = model.problem.observations
    u_at = jnp.stack([10.0 + jnp.arange(obs.n), 20.0 + jnp.arange(obs.n)], axis=1)
    picked = np.asarray(model.at_readings(u_at))
    expected = np.where(obs.group_index == 0, 10.0, 20.0) + np.arange(obs.n)
    np.testing.assert_array_equal(picked, expected)
    weights = jnp.zeros(model.num_weights)
    assert model.predict(weights, obs.coords).shape == (obs.n, 2)


def test_the_residual_has_one_entry_per_equation_and_vanishes_on_the_solution(case):
    model = prepare(load_config(case))
    problem = model.problem
    coeffs = {"a": jnp.asarray(TRUE_A)}

    def exact(z):
        return jnp.stack([jnp.sin(TRUE_A * z[0]), jnp.cos(TRUE_A * z[0])])

    z = jnp.asarray([0.3])
    r = problem.pde.operator(exact, z, coeffs)
    assert r.shape == (2,)
    np.testing.assert_allclose(r, 0.0, atol=1e-12)
    wrong = problem.pde.operator(exact, z, {"a": jnp.asarray(1.5)})
    assert np.all(np.abs(np.asarray(wrong)) > 0.1)


def test_an_operator_may_return_its_equations_as_a_list(tmp_path):
    path = _write_case(tmp_path, _edit(CONFIG, 'pde = "rotation:operator"',
                                       'pde = "rotation:list_operator"'))
    model = prepare(load_config(path))
    weights = jnp.zeros(model.num_weights)
    r = model.residuals(weights, {"a": jnp.asarray(TRUE_A)}, model.collocation[:5])
    assert r.shape == (5, 2)


def test_each_output_is_scaled_by_its_own_readings(tmp_path):
    path = _write_case(tmp_path, skip_v_every=0)
    model = prepare(load_config(path))
    obs = model.problem.observations
    for k in range(2):
        values = obs.values[obs.group_index == k]
        assert model.solution.value_offset[k] == pytest.approx(values.mean())
        assert model.solution.value_scale[k] == pytest.approx(values.std())


def test_an_output_never_read_is_inferred_from_the_physics_alone(tmp_path):
    """Only v is read: the readings' one group is v, and u takes the read outputs' scale."""
    path = _write_case(tmp_path, _edit(CONFIG, 'value = { u = "u", v = "v" }',
                                       'value = { v = "v" }'))
    model = prepare(load_config(path))
    assert model.problem.observations.group_names == ("v",)
    np.testing.assert_array_equal(model.reading_outputs, 1)
    assert model.solution.value_offset[0] == 0.0
    assert model.solution.value_scale[0] == pytest.approx(model.solution.value_scale[1])


def test_a_soft_condition_applies_to_its_output_only():
    domain = Domain(space=((0.0, 1.0),))
    (term,) = soft_terms(domain, [Condition("dirichlet", "x_min", value=1.0, output=1)],
                         num_points=4)

    def u_fn(z):
        return jnp.stack([5.0 + z[0], 3.0 + z[0]])

    np.testing.assert_allclose(term.residual_fn(u_fn, jnp.asarray([0.0]), {}), 2.0)


@pytest.mark.parametrize(
    ("old", "new", "named"),
    [
        ('outputs = ["u", "v"]', 'outputs = ["u"]', "outputs"),
        ('outputs = ["u", "v"]', 'outputs = ["u", "a"]', "outputs"),
        ('outputs = ["u", "v"]', 'outputs = ["u", "u"]', "outputs"),
        ('outputs = ["u", "v"]', 'outputs = ["u", "x"]', "outputs"),
        ('pde = "rotation:operator"', 'pde = "rotation:scalar_operator"', "pde"),
        ('value = { u = "u", v = "v" }', 'value = "u"', "value"),
        ('value = { u = "u", v = "v" }', 'value = { u = "u", w = "v" }', "value"),
        ('output = "v"', 'output = "w"', "output"),
        ('reference = "rotation:forward"', 'reference = "rotation:forward_one_column"',
         "reference"),
        ("per_group_noise = true", 'per_group_noise = true\ngroup = "u"', "group"),
    ],
)
def test_bad_system_configs_are_refused_naming_the_key(tmp_path, old, new, named):
    path = _write_case(tmp_path, _edit(CONFIG, old, new))
    with pytest.raises(ConfigError, match=named):
        prepare(load_config(path))


def test_hard_conditions_of_a_system_hold_for_their_outputs_whatever_the_weights(tmp_path):
    """u(0) = 0 and v(0) = 1 imposed exactly: any weights give them at x = 0, and inside the
    domain the outputs are free."""
    config = _edit(_edit(CONFIG, 'output = "u"\n', 'output = "u"\nhard = true\n'),
                   'output = "v"\n', 'output = "v"\nhard = true\n')
    model = prepare(load_config(_write_case(tmp_path, config)))
    assert not model.soft
    weights = jax.random.normal(jax.random.key(1), (model.num_weights,))
    u = np.asarray(model.predict(weights, np.array([[0.0], [0.5]])))
    np.testing.assert_allclose(u[0], [0.0, 1.0], atol=1e-12)
    assert np.all(np.abs(u[1] - [0.0, 1.0]) > 1e-3)


def test_a_hard_condition_on_one_output_leaves_the_other_free(tmp_path):
    model = prepare(load_config(_write_case(
        tmp_path, _edit(CONFIG, 'output = "v"\n', 'output = "v"\nhard = true\n'))))
    assert [term.name for term in model.soft] == ["dirichlet_0_x_min"]
    weights = jax.random.normal(jax.random.key(2), (model.num_weights,))
    u0 = np.asarray(model.predict(weights, np.array([[0.0]])))[0]
    assert u0[1] == pytest.approx(1.0, abs=1e-12)
    assert abs(u0[0]) > 1e-3


def test_a_condition_of_a_system_must_name_its_output(tmp_path):
    path = _write_case(tmp_path, _edit(CONFIG, 'value = 1.0\noutput = "v"', "value = 1.0"))
    with pytest.raises(ConfigError, match=r"conditions\]\]\[1\] output.*one of \['u', 'v'\]"):
        prepare(load_config(path))


def test_a_builtin_pde_has_no_outputs(tmp_path):
    path = _write_case(tmp_path)
    text = path.read_text()
    text = _edit(text, 'pde = "rotation:operator"', 'pde = "poisson"')
    path.write_text(text)
    with pytest.raises(ConfigError, match="outputs.*user-defined"):
        prepare(load_config(path))


def test_the_output_layer_marginal_refuses_a_system(case):
    from bpinn.inference.marginal import unsupported_reason

    assert "system" in unsupported_reason(prepare(load_config(case)))


@pytest.fixture(scope="module")
def system_run(tmp_path_factory):
    path = _write_case(tmp_path_factory.mktemp("system"))
    return run(path, progress=False)


def test_nuts_recovers_the_coefficient_of_a_system(system_run):
    """The truth lies in the 95% interval, and both outputs' noise sds are inferred."""
    a = system_run.summary["parameters"]["a"]
    assert a["q2.5"] < TRUE_A < a["q97.5"]
    sigma = system_run.datatree["posterior"]["sigma"]
    assert list(sigma["group"].values) == ["u", "v"]
    assert system_run.datatree["log_prior"]["sigma"].dims == ("chain", "draw", "group")


def test_the_results_keep_one_field_per_output(system_run):
    dt = system_run.datatree
    u, v = dt["predictions"]["u"], dt["predictions"]["v"]
    x = u["field_x"].values
    # the posterior mean follows the true solution within a few noise sds
    np.testing.assert_allclose(u.mean(("chain", "draw")), np.sin(TRUE_A * x), atol=5 * NOISE_SD)
    np.testing.assert_allclose(v.mean(("chain", "draw")), np.cos(TRUE_A * x), atol=5 * NOISE_SD)
    pred = dt["posterior_predictive"]["u_pred"].mean(("chain", "draw")).values
    np.testing.assert_allclose(pred, dt["observed_data"]["u_obs"].values, atol=4 * NOISE_SD)


def test_sensor_design_ranks_every_output(system_run):
    """At x = 1, v = cos(2x) is more sensitive to a than u = sin(2x) (|x sin 2x| = 0.91 against
    |x cos 2x| = 0.42): the best new reading is of v, near the right end."""
    design = sensor_design(system_run.datatree, top=5)
    best = design["candidates"][0]
    assert best["output"] == "v"
    assert best["x"] > 0.8
    assert set(design["noise_sd"]) == {"u", "v"}


def test_reference_method_runs_on_a_system(tmp_path):
    path = _write_case(tmp_path)
    result = run(path, method="reference", progress=False)
    a = result.summary["parameters"]["a"]
    assert a["q2.5"] < TRUE_A < a["q97.5"]
    assert jax.numpy.asarray(result.datatree["predictions"]["v"].values).ndim == 3


def _trace(model, **kwargs):
    import numpyro

    seeded = numpyro.handlers.seed(model.model, rng_seed=0)
    return numpyro.handlers.trace(seeded).get_trace(**kwargs)


def test_the_likelihood_terms_of_a_system_have_one_entry_per_equation(tmp_path):
    """The residual and its gradient (gPINN) have an equation axis, summed inside each point's
    log density; the readings have one entry each."""
    path = _write_case(tmp_path, _edit(CONFIG, "num_collocation = 64",
                                       "num_collocation = 64\nresidual_gradient_noise = 0.1"))
    model = prepare(load_config(path))
    tr = _trace(model)
    assert tr["pde_residual"]["value"].shape == (64, 2)
    assert tr["pde_residual"]["fn"].event_shape == (2,)
    assert tr["pde_residual_gradient"]["value"].shape == (64, 2, 1)
    assert tr["u_obs"]["value"].shape == (model.problem.observations.n,)
    assert tr["sigma"]["value"].shape == (2,)


def test_causal_weights_of_a_system_sum_the_equations_at_each_point():
    """Causal weighting (MAP training) on a time-dependent system: the weight of a point falls
    with the squared whitened residuals of every equation at the earlier times."""
    from bpinn.models.likelihood import CAUSAL_BINS

    model = _time_dependent_system()
    whitened = np.zeros((model.collocation.shape[0], 2))
    tau = model.collocation_time()
    early = tau < 1.0 / CAUSAL_BINS
    whitened[early, 1] = 3.0  # only the second equation is violated, only in the first slice
    w = np.asarray(model._residual_point_weights(jnp.asarray(whitened), 1.0, 1.0, False))
    assert np.all(w[early] == 1.0)
    assert np.all(w[~early] < 1e-3)


def _time_dependent_system():
    from bpinn.data import Observations
    from bpinn.models.likelihood import ModelSettings, build_model
    from bpinn.models.networks import Network
    from bpinn.models.priors import Fixed, Prior
    from bpinn.models.problem import PDE, Problem

    domain = Domain(space=((0.0, 1.0),), time=(0.0, 1.0))

    def operator(u_fn, z, coeffs):
        from bpinn.models.pdes import partial
        return partial(u_fn, z, 1) - coeffs["a"] * u_fn(z)[::-1]

    pde = PDE("pair", ("a",), operator, outputs=("u", "v"), num_equations=2)
    obs = Observations(coords=[[0.5, 0.5], [0.5, 0.5]], values=[1.0, 2.0], group_index=[0, 1],
                       group_names=("u", "v"), coord_names=("x", "t"), origin="synthetic")
    prior = Prior("LogNormal", {"loc": 0.0, "scale": 1.0})
    problem = Problem(domain=domain, pde=pde, coefficients={"a": prior}, observations=obs,
                      noise=Fixed(0.1))
    return build_model(problem, ModelSettings(network=Network(input_dim=2, output_dim=2),
                                              num_collocation=256))


@pytest.mark.slow
def test_calibration_simulates_each_reading_from_its_own_output(tmp_path):
    """Calibration of a system with the reference method, truths drawn from the prior: each
    dataset's posterior mean lies within 4 posterior sds of its truth. Readings simulated from
    the wrong output (v as sin, not cos) would contradict the model the posterior is from."""
    from bpinn.calibration import calibrate

    path = _write_case(tmp_path)
    out = calibrate(path, num_datasets=3, method="reference",
                    overrides={"num_chains": 1, "num_warmup": 100, "num_samples": 100})
    per = out["parameters"]["a"]["per_dataset"]
    assert len(per["truth"]) == 3
    for truth, mean, sd in zip(per["truth"], per["mean"], per["sd"], strict=True):
        assert abs(mean - truth) < 4 * sd, (truth, mean, sd)


def test_check_names_the_outputs_and_what_was_read(case, capsys):
    from bpinn.cli import main

    assert main(["check", str(case)]) == 0
    out = capsys.readouterr().out
    assert "outputs       u, v; 2 equations; read: u (12 readings), v (8 readings)" in out


def test_equation_scales_give_each_equation_its_own_residual_sd(tmp_path):
    """Equation i's residual has sd residual_noise * equation_scales[i], and so does its gPINN
    gradient (with residual_gradient_noise): the log density is the sum of Normals with those
    sds, and the terms read back site by site (NTK, GGN) have one scale per value."""
    from jax.scipy.stats import norm

    from bpinn.inference.target import make_target
    from bpinn.ntk import _whitened_sites

    config = _edit(CONFIG, "num_collocation = 64", "num_collocation = 64\nresidual_noise = 0.05\n"
                   "equation_scales = [1.0, 4.0]\nresidual_gradient_noise = 0.1")
    model = prepare(load_config(_write_case(tmp_path, config)))
    assert model.settings.equation_scales == (1.0, 4.0)
    site = _trace(model)["pde_residual"]
    r = site["fn"].base_dist.loc
    expected = norm.logpdf(0.0, r[:, 0], 0.05).sum() + norm.logpdf(0.0, r[:, 1], 0.2).sum()
    np.testing.assert_allclose(site["fn"].log_prob(site["value"]).sum(), expected, rtol=1e-6)
    grad_sd = _trace(model)["pde_residual_gradient"]["fn"].base_dist.scale
    np.testing.assert_allclose(grad_sd[:, 0, 0], 0.1)
    np.testing.assert_allclose(grad_sd[:, 1, 0], 0.4)

    target = make_target(jax.random.key(0), model.model)
    whitened, scale = _whitened_sites(model, target, jnp.zeros(target.dim))["pde_residual"]
    assert whitened.shape == (64 * 2,)
    np.testing.assert_allclose(scale, np.tile([0.05, 0.2], 64), rtol=1e-6)


def test_equation_scales_multiply_an_inferred_residual_sd(tmp_path):
    config = _edit(CONFIG, "num_collocation = 64", "num_collocation = 64\n"
                   'residual_noise = { prior = "HalfNormal", scale = 0.1 }\n'
                   "equation_scales = [1.0, 0.5]")
    model = prepare(load_config(_write_case(tmp_path, config)))
    tr = _trace(model)
    sd = tr["pde_residual"]["fn"].base_dist.scale
    sigma_pde = float(tr["sigma_pde"]["value"])
    np.testing.assert_allclose(sd[:, 0], sigma_pde, rtol=1e-6)
    np.testing.assert_allclose(sd[:, 1], 0.5 * sigma_pde, rtol=1e-6)


@pytest.mark.parametrize(
    ("scales", "message"),
    [
        ("[1.0]", "expected a list of 2 numbers"),
        ("[1.0, 2.0, 3.0]", "expected a list of 2 numbers"),
        ("0.5", "expected a list of 2 numbers"),
        ("[1.0, -2.0]", r"equation_scales\[1\]: must be > 0"),
        ('[1.0, "big"]', r"equation_scales\[1\]: expected a number"),
    ],
)
def test_bad_equation_scales_are_refused_naming_the_entry(tmp_path, scales, message):
    config = _edit(CONFIG, "num_collocation = 64",
                   f"num_collocation = 64\nequation_scales = {scales}")
    with pytest.raises(ConfigError, match=message):
        prepare(load_config(_write_case(tmp_path, config)))


def test_equation_scales_need_a_system_of_several_equations(tmp_path):
    import shutil
    from pathlib import Path

    heat = Path(__file__).resolve().parents[1] / "case_studies" / "heat_diffusion"
    for name in ("config.toml", "sensors.csv", "initial.py"):
        shutil.copy(heat / name, tmp_path / name)
    path = tmp_path / "config.toml"
    path.write_text(_edit(path.read_text(), "[model]\n", "[model]\nequation_scales = [1.0]\n"))
    with pytest.raises(ConfigError, match=r"one equation; set \[model\] residual_noise"):
        prepare(load_config(path))


def test_check_prints_the_equation_scales(tmp_path, capsys):
    from bpinn.cli import main

    config = _edit(CONFIG, "num_collocation = 64", "num_collocation = 64\n"
                   "equation_scales = [1.0, 0.25]")
    assert main(["check", str(_write_case(tmp_path, config))]) == 0
    assert "residual_noise x (1, 0.25), equation by equation" in capsys.readouterr().out
