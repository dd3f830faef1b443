"""``bpinn.config``: TOML -> RunConfig -> Problem and ModelSettings, and every ConfigError path."""

from __future__ import annotations

import dataclasses
import textwrap
import tomllib

import jax.numpy as jnp
import pytest

from bpinn.config import (
    _SCHEMA,
    ConfigError,
    InferenceSettings,
    build_problem,
    build_settings,
    load_config,
)
from bpinn.models.networks import Network
from bpinn.models.priors import Fixed, Prior

MINIMAL = textwrap.dedent("""\
    [problem]
    pde = "heat"

    [domain]
    x = [0.0, 1.0]
    t = [0.0, 1.0]

    [coefficients]
    D = { prior = "LogNormal", loc = -3.0, scale = 1.0 }

    [data]
    file = "sensors.csv"
    coords = { x = "x", t = "t" }
    value = "u"
    noise = { prior = "HalfNormal", scale = 0.1 }
""")


def write(case, text: str, name: str = "minimal.toml"):
    path = case.root / name
    path.write_text(text)
    return path


# --------------------------------------------------------------------------------------------
# What a valid config turns into


def test_heat_case_study_builds(heat_case):
    raw = tomllib.loads(heat_case.text)
    cfg = load_config(heat_case.config)
    assert cfg.base_dir == heat_case.root
    assert cfg.inference == InferenceSettings(**raw["inference"])
    assert dict(cfg.truth) == raw["truth"] == {"D": 0.07, "sigma": 0.02}

    problem = build_problem(cfg)
    assert problem.domain.coord_names == ("x", "t")
    assert problem.pde.name == "heat"
    assert problem.pde.coefficient_names == ("D",)
    assert problem.coefficients["D"] == Prior(
        "LogNormal", {"loc": -2.995732273553991, "scale": 1.0},
        where=f"{heat_case.config} [coefficients] D",
    )
    assert isinstance(problem.noise, Prior) and problem.noise.family == "HalfNormal"
    assert [(c.kind, c.boundary, c.hard) for c in problem.conditions] == [
        ("dirichlet", "all", True), ("initial", "all", True),
    ]
    assert callable(problem.conditions[1].value)  # "initial:u0" beside the config
    obs = problem.observations
    assert obs.n == 48
    assert obs.group_names == ("S1", "S2", "S3", "S4", "S5", "S6")
    assert problem.likelihood == "normal" and not problem.per_group_noise

    settings = build_settings(cfg, problem.domain)
    model = raw["model"]
    assert settings.network.layer_sizes == (2,) + (model["width"],) * model["depth"] + (1,)
    assert settings.num_collocation == model["num_collocation"]
    assert settings.residual_noise == Fixed(model["residual_noise"])


def test_minimal_config_takes_every_default(heat_case):
    cfg = load_config(write(heat_case, MINIMAL))
    assert cfg.inference == InferenceSettings()
    assert dict(cfg.truth) == {}
    problem = build_problem(cfg)
    assert problem.conditions == ()
    assert problem.source_description == "0"
    assert problem.observations.group_names == ("all",)
    settings = build_settings(cfg, problem.domain)
    model = _SCHEMA["model"]
    assert settings.network.layer_sizes == (2,) + (model["width"],) * model["depth"] + (1,)
    assert settings.num_collocation == model["num_collocation"]
    assert settings.residual_noise == Fixed(model["residual_noise"])


def test_schema_defaults_match_inference_settings():
    fields = {f.name: f.default for f in dataclasses.fields(InferenceSettings)}
    assert fields == _SCHEMA["inference"]


def test_overrides_replace_inference_keys(heat_case):
    cfg = load_config(heat_case.config, overrides={"num_samples": 7, "seed": 3,
                                                   "num_chains": None, "method": None})
    assert cfg.inference.num_samples == 7
    assert cfg.inference.seed == 3
    assert cfg.inference.num_chains == 4  # None leaves the file's value
    assert cfg.inference.method == "nuts"


def test_integer_valued_floats_are_accepted(heat_case):
    cfg = load_config(heat_case(inference={"num_chains": 2.0}))
    assert cfg.inference.num_chains == 2 and isinstance(cfg.inference.num_chains, int)


def test_known_coefficient_and_constant_source(heat_case):
    path = heat_case(("D = {", "D = 0.07\n# D = {"), ('pde = "heat"', 'pde = "heat"\nsource = 2'))
    problem = build_problem(load_config(path))
    assert problem.coefficients["D"] == Fixed(0.07)
    assert problem.source_description == "2"
    assert float(problem.source(jnp.array([0.5, 0.5]), {})) == 2.0


def test_user_defined_pde_and_source_beside_the_config(heat_case):
    (heat_case.root / "mypde.py").write_text(textwrap.dedent("""\
        import jax

        def damped(u_fn, z, coeffs):
            return coeffs["a"] * u_fn(z) + jax.grad(u_fn)(z)[1]

        def forcing(z):
            return z[0] * 0.0 + 1.0
    """))
    path = heat_case(
        ('pde = "heat"', 'pde = "mypde:damped"\nsource = "mypde:forcing"'), ("D = {", "a = {"),
    )
    problem = build_problem(load_config(path))
    assert problem.pde.coefficient_names == ("a",)
    assert problem.pde.name == "mypde:damped"
    assert problem.source_description == "mypde:forcing"


def test_per_group_noise_and_student_t(heat_case):
    path = heat_case(('group = "sensor"', 'group = "sensor"\nper_group_noise = true\n'
                      'likelihood = "student_t"\nstudent_t_df = 3'))
    problem = build_problem(load_config(path))
    assert problem.per_group_noise
    assert problem.likelihood == "student_t" and problem.student_t_df == 3.0


@pytest.mark.parametrize("network", ["mlp", "fourier", "siren"])
def test_model_section_builds_each_network(heat_case, network):
    cfg = load_config(heat_case(model={"network": network, "width": 5, "depth": 3,
                                       "num_fourier": 4, "fan_in_scaled": True}))
    settings = build_settings(cfg, build_problem(cfg).domain)
    assert isinstance(settings.network, Network)
    assert settings.network.kind == network
    first = 8 if network == "fourier" else 2
    assert settings.network.layer_sizes == (first, 5, 5, 5, 1)
    assert settings.fan_in_scaled


def test_residual_noise_may_be_a_prior(heat_case):
    path = heat_case(("residual_noise = 0.05",
                      'residual_noise = { prior = "HalfNormal", scale = 0.1 }'))
    cfg = load_config(path)
    settings = build_settings(cfg, build_problem(cfg).domain)
    assert settings.residual_noise == Prior(
        "HalfNormal", {"scale": 0.1}, where=f"{path} [model] residual_noise"
    )


# --------------------------------------------------------------------------------------------
# Errors: each names the file and the key (and the value where there is one)


def test_config_error_is_a_value_error():
    assert issubclass(ConfigError, ValueError)


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("num_chains", 0, "num_chains: must be >= 1, got 0"),
    ("num_chains", "4", "num_chains: expected a number, got '4'"),
    ("num_chains", True, "num_chains: expected a number, got True"),
    ("num_warmup", 10, "num_warmup: must be >= 20, got 10"),
    ("num_samples", 2.5, "num_samples: expected an integer, got 2.5"),
    ("seed", -1, "seed: must be >= 0, got -1"),
    ("max_tree_depth", 0, "max_tree_depth: must be >= 1"),
    ("implicit_prior_max_tree_depth", 0, "implicit_prior_max_tree_depth: must be >= 1"),
    ("target_acceptance", 1.0, "target_acceptance: must be in (0, 1), got 1.0"),
    ("target_acceptance", 0.0, "target_acceptance: must be > 0, got 0.0"),
    ("map_learning_rate", -0.1, "map_learning_rate: must be > 0"),
    ("adapt_mass_matrix", 1, "adapt_mass_matrix: expected true or false, got 1"),
    ("method", "nutz", "method: unknown method 'nutz'; valid methods are nuts"),
    ("svi_coordinates", "white",
     "svi_coordinates: unknown value 'white'; valid: ('whitened', 'raw')"),
])
def test_bad_inference_values(heat_case, key, value, expected):
    path = heat_case(inference={key: value})
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert str(exc.value).startswith(f"{path} [inference] {key}")
    assert expected in str(exc.value)


def test_bad_override_is_labelled_as_an_override(heat_case):
    with pytest.raises(ConfigError, match=r"\[inference\] num_chains \(overridden\): must be >= 1"):
        load_config(heat_case.config, overrides={"num_chains": 0})


@pytest.mark.parametrize(("edit", "expected"), [
    (("[data]", "[dataa]"), "unknown section(s) ['dataa']"),
    (('pde = "heat"\n', ""), "[problem]: missing required key 'pde'"),
    (("x = [0.0, 1.0]", "x = [0.0]"), "[domain] x: expected [low, high], got [0.0]"),
    (("x = [0.0, 1.0]\n", ""), "[domain]: missing required key 'x': bpinn needs one or two "
     "space coordinates"),
    (("x = [0.0, 1.0]", "x = [1.0, 1.0]"), "[domain] x: expected low < high, got [1.0, 1.0]"),
    (("t = [0.0, 1.0]", 't = [0.0, "1"]'), "[domain] t[1]: expected a number, got '1'"),
    (("sigma = 0.02", 'sigma = "small"'), "[truth] sigma: expected a number, got 'small'"),
    (('pde = "heat"', 'pde = "heat"\noptions = 3'), "[problem] options: expected a table"),
    (('pde = "heat"', 'pde = "heat"\noptions = { velocity = 1.0 }'),
     "[problem]: heat: unknown option(s) ['velocity']"),
    (('pde = "heat"', 'pde = "heat"\ncoefficients = ["D"]'),
     "[problem] coefficients: only user-defined PDEs"),
    (('pde = "heat"', 'pde = "heat"\nsource = "initial:nope"'),
     "[problem] source: module 'initial' has no function 'nope'"),
    (('pde = "heat"', 'pde = "heat"\nsource = true'), "[problem] source: expected a number"),
    (('pde = "heat"', 'pde = "heat"\nreference = 3'),
     "[problem] reference: expected 'module:function', got 3"),
    (('pde = "heat"', 'pde = "heat"\nreference = "initial:u0"'),
     "[problem] reference: calling 'initial:u0' as forward(points, coeffs) with points = "
     "[[0.5, 0.5]] (one row per point, the domain's coordinates in order ['x', 't']) and "
     "coeffs = {'D': 0.05} failed with TypeError"),
    (("D = {", "D = true\n# D = {"), "[coefficients] D: expected a number or a prior table"),
    (('prior = "LogNormal", ', ""), "[coefficients] D: a prior table needs a 'prior' key"),
    (("loc = -2.995732273553991, ", ""), "LogNormal takes parameters ['loc', 'scale']; "
     "missing ['loc']"),
    (('file = "sensors.csv"', "file = 3"), "[data] file: expected a file name, got 3"),
    (('coords = { x = "x", t = "t" }', 'coords = { x = "x" }'),
     "[data] coords: must map exactly the domain's coordinates ['x', 't']"),
    (('group = "sensor"', 'group = "sensor"\nper_group_noise = "yes"'),
     "[data] per_group_noise: expected true or false, got 'yes'"),
    (('group = "sensor"\n', "per_group_noise = true\n"),
     "[data] per_group_noise: needs a 'group' column"),
    (('value = "u"', 'value = "u"\nstudent_t_df = 0'), "[data] student_t_df: must be > 0"),
    (("width = 16", "width = 0"), "[model] width: must be >= 1, got 0"),
    (('network = "mlp"', 'network = "mpl"'), "[model]: network kind 'mpl' is unknown"),
    (('network = "mlp"', 'network = "mlp"\nactivation = "relu"'),
     "[model]: network activation 'relu' is unknown"),
    (("residual_noise = 0.05", "residual_noise = 0"), "[model] residual_noise: must be > 0"),
    (('kind = "dirichlet"', 'kind = "robin"'), "[[conditions]][0]: condition kind 'robin'"),
    (('kind = "dirichlet"', 'kind = "neumann"'),
     "[[conditions]][0]: hard = true is available for dirichlet and initial conditions"),
    (('kind = "dirichlet"\nboundary = "all"', 'kind = "periodic"\nboundary = "t"'),
     "[[conditions]][0]: hard = true is available"),
    (('boundary = "all"\nvalue = 0.0\nhard = true',
      'boundary = "t"\nvalue = 0.0\nhard = false'),
     "[[conditions]][0]: boundary 't' is unknown for this domain; valid: ['all', 'x_min', "
     "'x_max']"),
    (('hard = true\n\n[[conditions]]', 'hard = 1\n\n[[conditions]]'),
     "[[conditions]][0] hard: expected true or false, got 1"),
    (('hard = true\n\n[[conditions]]', 'hadr = true\n\n[[conditions]]'),
     "[[conditions]][0]: unknown key(s) ['hadr']"),
    (('pde = "heat"', 'pde = "heat"\nsource = "initial:failing"'),
     "[problem] source: calling 'initial:failing' with one point z = (x, t) = [0.5, 0.5] "
     "failed with ZeroDivisionError"),
    (('value = "initial:u0"', "value = [1.0]"),
     "[[conditions]][1] value: expected a number or 'module:function', got [1.0]"),
])
def test_bad_values_name_the_key(heat_case, edit, expected):
    module = heat_case.root / "initial.py"
    module.write_text(module.read_text() + "\n\ndef failing(z):\n    return 1 / 0\n")
    path = heat_case(edit)
    with pytest.raises(ConfigError) as exc:
        cfg = load_config(path)
        build_settings(cfg, build_problem(cfg).domain)
    message = str(exc.value)
    assert expected in message
    assert message.startswith(str(path))
    assert message.count(str(path)) == 1, message


def test_periodic_condition_must_name_a_space_axis(heat_case):
    path = heat_case(('kind = "dirichlet"\nboundary = "all"\nvalue = 0.0\nhard = true',
                      'kind = "periodic"\nboundary = "t"'))
    with pytest.raises(ConfigError, match=r"\[\[conditions\]\]\[0\]: periodic boundary must name "
                                          r"a spatial axis \('x',\), got 't'"):
        build_problem(load_config(path))


def test_initial_condition_needs_time(heat_case):
    path = heat_case(('pde = "heat"', 'pde = "poisson"'), ("t = [0.0, 1.0]\n", ""),
                     ("D = {", "k = {"), ('coords = { x = "x", t = "t" }', 'coords = { x = "x" }'))
    with pytest.raises(ConfigError, match=r"\[\[conditions\]\]\[1\]: an initial condition needs "
                                          r"a time domain"):
        build_problem(load_config(path))


def test_initial_rate_needs_time_and_builds_a_soft_term(heat_case):
    rate = '[[conditions]]\nkind = "initial_rate"\nvalue = 0.0\n\n[data]'
    problem = build_problem(load_config(heat_case(("[data]", rate))))
    assert [c.kind for c in problem.conditions][-1] == "initial_rate"
    steady = heat_case(('pde = "heat"', 'pde = "poisson"'), ("t = [0.0, 1.0]\n", ""),
                       ("D = {", "k = {"),
                       ('coords = { x = "x", t = "t" }', 'coords = { x = "x" }'),
                       ('kind = "initial"\nvalue = "initial:u0"\nhard = true',
                        'kind = "initial_rate"\nvalue = 0.0'))
    with pytest.raises(ConfigError, match=r"\[\[conditions\]\]\[1\]: an initial_rate condition "
                                          r"needs a time domain"):
        build_problem(load_config(steady))


def test_config_path_errors(heat_case):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(heat_case.root / "missing.toml")
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(heat_case.root)
    bad = write(heat_case, "[problem\n")
    with pytest.raises(ConfigError, match=r"minimal\.toml: not valid TOML"):
        load_config(bad)


REQUIRED_SECTIONS = {
    "problem": '[problem]\npde = "heat"\n',
    "domain": "[domain]\nx = [0.0, 1.0]\nt = [0.0, 1.0]\n",
    "data": MINIMAL[MINIMAL.index("[data]"):],
}


@pytest.mark.parametrize("section", sorted(REQUIRED_SECTIONS))
def test_required_sections(heat_case, section):
    text = MINIMAL.replace(REQUIRED_SECTIONS[section], "")
    with pytest.raises(ConfigError, match=rf"missing required section \[{section}\]"):
        load_config(write(heat_case, text))


def test_fourier_scale_per_coordinate(heat_case):
    from bpinn.api import prepare

    model = prepare(load_config(heat_case(model={"network": "fourier"}, extra="")))
    assert model.settings.network.fourier_scale == 1.0
    path = heat_case(("network = \"mlp\"", "network = \"fourier\"\nfourier_scale = [2.0, 0.25]"))
    scales = prepare(load_config(path)).settings.network.fourier_scale
    assert scales == (2.0, 0.25)
    path = heat_case(("network = \"mlp\"", "network = \"fourier\"\nfourier_scale = [2.0]"))
    with pytest.raises(ConfigError, match=r"\[model\] fourier_scale: expected one scale per "
                                          r"coordinate \('x', 't'\), got 1"):
        prepare(load_config(path))
    path = heat_case(("network = \"mlp\"", "network = \"fourier\"\nfourier_scale = [2.0, -1]"))
    with pytest.raises(ConfigError, match=r"fourier_scale\[1\]"):
        prepare(load_config(path))
