"""Direct readings of a coefficient field (``[[field_data]]``): a conductivity measured at wells,
an initial value measured at a few places.

The problem is -div(k grad u) = 1 on [0, 2] with u = 0 at both ends and k(x) an unknown field;
the readings of u are those of k = 1, and k is read at three points.
"""

import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bpinn.api import prepare
from bpinn.config import ConfigError, load_config
from bpinn.models.fields import values_on
from bpinn.models.priors import Fixed, Prior

CONFIG = textwrap.dedent("""\
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

    [[field_data]]
    field = "k"
    file = "wells.csv"
    {readings}
    """)
WELLS_X = (0.1, 1.0, 1.9)


def _case(tmp_path, readings='coords = { x = "x" }\nnoise = 0.05', *,
          field='{ field = "gp", loc = 0.0, scale = 1.0, length_scale = 0.5 }', extra=""):
    x = np.linspace(0.1, 1.9, 10)
    (tmp_path / "sensors.csv").write_text(
        "x,u\n" + "".join(f"{a},{a * (2 - a) / 2}\n" for a in x))
    (tmp_path / "wells.csv").write_text(
        "x,k,logk\n" + "".join(f"{a},{1.0 + 0.1 * a},{np.log(1.0 + 0.1 * a)}\n"
                               for a in WELLS_X))
    path = tmp_path / "config.toml"
    path.write_text(CONFIG.format(field=field, readings=textwrap.dedent(readings)) + extra)
    return path


def _trace(model):
    import numpyro

    seeded = numpyro.handlers.seed(model.model, rng_seed=3)
    return numpyro.handlers.trace(seeded).get_trace()


def test_readings_are_loaded_in_the_fields_own_coordinates(tmp_path):
    model = prepare(load_config(_case(tmp_path)))
    (readings,) = model.problem.field_data
    assert readings.field == "k" and not readings.log
    assert readings.observations.coords.shape == (3, 1)
    np.testing.assert_allclose(readings.observations.values, [1.01, 1.1, 1.19])
    assert readings.noise == Fixed(0.05)
    assert "sigma_k" not in model.reported_sites  # known noise: nothing to infer


@pytest.mark.parametrize("log", [False, True])
def test_each_reading_is_the_field_at_its_point_with_its_noise(tmp_path, log):
    readings = ('coords = { x = "x" }\nnoise = 0.05'
                + ('\nvalue = "logk"\nlog = true' if log else ""))
    model = prepare(load_config(_case(tmp_path, readings)))
    tr = _trace(model)
    site = tr["field_obs.k"]
    spec = model.problem.coefficients["k"]
    latent = tr["k"]["value"]
    g = values_on(spec, latent, np.array(WELLS_X)[:, None])  # exp(log k): the field k
    expected = jnp.log(g) if log else g
    np.testing.assert_allclose(site["fn"].loc, expected, rtol=1e-10)
    np.testing.assert_allclose(site["fn"].scale, 0.05)
    np.testing.assert_allclose(site["value"], [np.log(1 + 0.1 * a) if log else 1 + 0.1 * a
                                               for a in WELLS_X], rtol=1e-12)


def test_an_inferred_noise_sd_is_a_reported_site_with_its_prior(tmp_path):
    readings = 'coords = { x = "x" }\nnoise = { prior = "HalfNormal", scale = 0.1 }'
    path = _case(tmp_path, readings, extra="\n[truth]\nsigma_k = 0.05\n")
    model = prepare(load_config(path))
    assert model.reported_sites[-1] == "sigma_k"
    assert isinstance(model.problem.field_data[0].noise, Prior)
    assert _trace(model)["sigma_k"]["value"] > 0


def test_the_readings_are_left_out_of_the_physics_only_model_but_keep_its_layout(tmp_path):
    """The implied-prior measurement conditions the weights on the physics alone: field
    readings are data, so they are not observed there, and the sites sampled are the same."""
    import numpyro

    readings = 'coords = { x = "x" }\nnoise = { prior = "HalfNormal", scale = 0.1 }'
    model = prepare(load_config(_case(tmp_path, readings)))
    seeded = numpyro.handlers.seed(lambda: model.model(observe_data=False), rng_seed=0)
    tr = numpyro.handlers.trace(seeded).get_trace()
    assert "field_obs.k" not in tr
    latent = {n for n, s in tr.items() if s["type"] == "sample" and not s["is_observed"]}
    assert latent == {n for n, s in _trace(model).items()
                      if s["type"] == "sample" and not s["is_observed"]}


def test_the_gold_standard_model_observes_the_readings_too(tmp_path):
    import numpyro

    model = prepare(load_config(_case(tmp_path)))
    classical = model.classical_model(lambda coeffs: jnp.zeros(model.problem.observations.n))
    tr = numpyro.handlers.trace(numpyro.handlers.seed(classical, rng_seed=0)).get_trace()
    assert tr["field_obs.k"]["is_observed"]


def test_check_names_the_field_readings(tmp_path, capsys):
    from bpinn.cli import main

    assert main(["check", str(_case(tmp_path))]) == 0
    assert "field data    3 readings of k from" in capsys.readouterr().out


@pytest.mark.parametrize(("readings", "field", "message"), [
    ('field = "q"\ncoords = { x = "x" }\nnoise = 0.05', None,
     r"\[\[field_data\]\]\[0\] field: 'q' is not a coefficient of this config"),
    ('coords = { x = "x" }\nnoise = 0.05', '{ prior = "LogNormal", loc = 0.0, scale = 1.0 }',
     "a scalar coefficient: what is known of it belongs in its prior"),
    ('coords = { x = "x", t = "t" }\nnoise = 0.05', None,
     r"coords: must map exactly the field's coordinates \['x'\]"),
    ('coords = { x = "x" }\nnoise = 0.05\nvalue = "conductivity"', None, "conductivity"),
    ('coords = { x = "x" }\nnoise = -0.05', None, r"noise: must be > 0"),
    ('coords = { x = "x" }\nnoise = 0.05\nlog = true', '{ field = "gp", log = false }',
     "need a field on the log scale"),
    ('coords = { x = "x" }\nnoise = 0.05\nlog = "yes"', None, "log: expected true or false"),
    ('coords = { x = "x" }\nnoise = 0.05\nunit = "m"', None, r"unknown key\(s\) \['unit'\]"),
])
def test_bad_field_readings_are_refused_naming_the_key(tmp_path, readings, field, message):
    kwargs = {} if field is None else {"field": field}
    path = _case(tmp_path, readings, **kwargs)
    if readings.startswith("field"):  # the case's own field = "k" would come first
        path.write_text(path.read_text().replace('field = "k"\n', "", 1))
    with pytest.raises(ConfigError, match=message):
        prepare(load_config(path))


def test_a_reading_outside_the_fields_box_names_the_row(tmp_path):
    path = _case(tmp_path)
    (tmp_path / "wells.csv").write_text("x,k\n0.5,1.0\n2.5,1.2\n")
    with pytest.raises(ConfigError, match=r"wells.csv.*2\.5"):
        prepare(load_config(path))


def test_a_field_read_in_two_tables_is_refused(tmp_path):
    path = _case(tmp_path)
    text = path.read_text()
    path.write_text(text + '\n[[field_data]]\nfield = "k"\nfile = "wells.csv"\nnoise = 0.1\n')
    with pytest.raises(ConfigError, match=r"\['k'\] are read in more than one table"):
        prepare(load_config(path))


def test_readings_pull_the_gold_standard_posterior_of_the_field_to_them(tmp_path):
    """Linear-Gaussian check: with log = false the readings are Gaussian in the field's latent
    vector, so the posterior mean of the field at the read points follows in closed form when
    the u readings carry no information (a forward model that ignores k)."""
    from numpyro.infer.util import log_density

    field = '{ field = "gp", log = false, loc = 0.0, scale = 1.0, length_scale = 0.5 }'
    model = prepare(load_config(_case(tmp_path, field=field)))
    classical = model.classical_model(lambda coeffs: jnp.asarray(
        model.problem.observations.values))
    spec = model.problem.coefficients["k"]
    basis = np.asarray(spec.basis_on(np.array(WELLS_X)[:, None]))  # (3, M)
    y = np.array([1 + 0.1 * a for a in WELLS_X])
    # latent | y ~ N(m, C): C = (I + B^T B / s^2)^-1, m = C B^T y / s^2
    s2 = 0.05**2
    cov = np.linalg.inv(np.eye(spec.num_latent) + basis.T @ basis / s2)
    mean = cov @ basis.T @ y / s2

    def neg_log_post(latent):
        return -log_density(classical, (), {}, {"k": latent})[0]

    start = jnp.zeros(spec.num_latent)
    grad = jax.grad(neg_log_post)(start)
    hess = jax.hessian(neg_log_post)(start)
    mode = start - jnp.linalg.solve(hess, grad)  # exact: the log density is quadratic
    np.testing.assert_allclose(mode, mean, atol=1e-8)
    np.testing.assert_allclose(basis @ np.asarray(mode), basis @ mean, atol=1e-8)
    assert np.all(np.abs(basis @ mean - y) < 0.05)  # pulled to the readings, within their sd


def test_a_run_reports_the_readings_and_the_report_marks_them(tmp_path):
    """End to end with the Laplace method (seconds): summary.json keeps the readings beside the
    field, the report says the field was read and draws them, and the field's band at a read
    point holds the reading it was pulled to."""
    from bpinn.api import run
    from bpinn.inference.results import format_summary
    from bpinn.report import write_report

    path = _case(tmp_path, extra="\n[inference]\nmethod = \"laplace\"\nnum_samples = 200\n"
                 "map_adam_steps = 1500\nmap_lbfgs_steps = 300\n")
    result = run(path, outdir=tmp_path / "out")
    f = result.summary["fields"]["k"]
    assert f["readings"]["of"] == "k" and f["readings"]["values"] == pytest.approx(
        [1.01, 1.1, 1.19])
    assert f["readings"]["points"] == [[a] for a in WELLS_X]
    grid = np.asarray(f["axes"]["x"])
    at_well = np.argmin(np.abs(grid - 1.0))
    assert f["q2.5"][at_well] < 1.1 < f["q97.5"][at_well]
    html = write_report(tmp_path / "out").read_text()
    assert "read directly at 3 points (readings of k: the crosses)" in html
    # Only a field is unknown (the noise is known): no scalar rows, and the printed summary
    # still says what was run and shows the field.
    assert result.summary["parameters"] == {}
    text = format_summary(result.summary)
    assert "field k" in text


def test_a_2d_field_is_read_at_points_in_both_its_coordinates(tmp_path):
    """A conductivity k(x, y) of a 2-D steady problem read at wells: the readings carry both
    coordinates (in the file's own column names), and each is the field at its point."""
    text = CONFIG.format(
        field='{ field = "gp", loc = 0.0, scale = 0.5, length_scale = 0.3 }',
        readings='coords = { x = "east", y = "north" }\nnoise = 0.05\nvalue = "logk"\nlog = true')
    text = text.replace('x = [0.0, 2.0]', 'x = [0.0, 2.0]\ny = [0.0, 1.0]').replace(
        'coords = { x = "x" }\nvalue = "u"', 'coords = { x = "x", y = "y" }\nvalue = "u"')
    (tmp_path / "config.toml").write_text(text)
    pts = np.array([[0.2, 0.3], [1.0, 0.5], [1.8, 0.9]])
    (tmp_path / "sensors.csv").write_text(
        "x,y,u\n" + "".join(f"{a},{b},{0.1 * a * (2 - a) * b * (1 - b)}\n"
                            for a, b in np.random.default_rng(0).uniform(0.1, 0.9, (8, 2))))
    (tmp_path / "wells.csv").write_text(
        "east,north,logk\n" + "".join(f"{a},{b},{0.1 * a - 0.2 * b}\n" for a, b in pts))
    model = prepare(load_config(tmp_path / "config.toml"))
    (readings,) = model.problem.field_data
    np.testing.assert_allclose(readings.observations.coords, pts)
    tr = _trace(model)
    spec = model.problem.coefficients["k"]
    expected = np.log(values_on(spec, tr["k"]["value"], pts))
    np.testing.assert_allclose(tr["field_obs.k"]["fn"].loc, expected, rtol=1e-10)
