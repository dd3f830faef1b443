"""TOML config -> validated, frozen ``RunConfig``; every bad key or value is named with its path.

The config speaks the user's language (files, column names, priors by name); ``build_problem``
turns it into the library's types. Nothing in a config is ever evaluated as code: functions are
referenced as ``"module:function"`` and imported (a ``module.py`` beside the config is found).

A minimal config::

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
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType

from bpinn.data import load_observations, validate_observations
from bpinn.inference.methods import method_names
from bpinn.models.conditions import Condition, hard_constraint, soft_terms
from bpinn.models.networks import Network
from bpinn.models.pdes import BUILTIN_PDES, make_pde
from bpinn.models.priors import Fixed, Prior, parse_quantity
from bpinn.models.problem import PDE, Domain, Problem, zero_source
from bpinn.utils import resolve_reference


class ConfigError(ValueError):
    """A config file that cannot be run; the message names the key and what would be valid."""


# best_map: every chain explores the mode of the best MAP fit (the other fits are reported);
# per_chain: each chain explores the mode of its own MAP fit, so R-hat compares modes.
CHAIN_INITS = ("best_map", "per_chain")


@dataclass(frozen=True)
class InferenceSettings:
    """``[inference]``: its keys and defaults (the schema is read from these fields)."""

    method: str = "nuts"
    seed: int = 0
    num_chains: int = 4
    num_warmup: int = 500
    num_samples: int = 500
    max_tree_depth: int = 10
    target_acceptance: float = 0.9
    adapt_mass_matrix: bool = False
    weight_damping: float = 1000.0
    curvature_floor: float = 1.0
    map_adam_steps: int = 5000
    map_learning_rate: float = 0.01
    map_lbfgs_steps: int = 1000
    map_physics_ramp: float = 0.5
    chain_init: str = "best_map"
    save_weights: bool = False
    # method-specific (ignored by methods that do not use them)
    num_leapfrog_steps: int = 50  # hmc: fixed trajectory length
    svi_steps: int = 5000  # svi_*: optimisation steps
    svi_learning_rate: float = 0.005
    svi_num_particles: int = 4  # Monte Carlo draws per ELBO gradient
    svi_rank: int = 8  # svi_lowrank: rank of the covariance factor
    num_members: int = 8  # ensemble, rto: number of independent fits


# section -> {key: default}; ``...`` marks a required key.
_SCHEMA: dict[str, dict[str, object]] = {
    "problem": {"pde": ..., "coefficients": None, "options": {}, "source": 0.0},
    "domain": {"x": ..., "y": None, "t": None},
    "coefficients": {},  # free-form: one entry per coefficient
    "data": {
        "file": ..., "format": None, "coords": None, "value": "u", "group": None,
        "noise": ..., "per_group_noise": False, "likelihood": "normal", "student_t_df": 4.0,
    },
    "source_data": {
        "file": ..., "format": None, "coords": None, "value": "f", "noise": ...,
    },
    "model": {
        "network": "mlp", "width": 16, "depth": 2, "activation": "tanh", "num_fourier": 16,
        "fourier_scale": 1.0, "siren_omega0": 30.0, "weight_prior_scale": 3.0,
        "fan_in_scaled": False, "num_collocation": 128, "residual_noise": 0.05,
        "condition_noise": 0.01, "num_condition_points": 32,
    },
    "inference": {f.name: f.default for f in fields(InferenceSettings)},
    "truth": {},  # free-form: name -> value
}
_CONDITION_KEYS = {"kind": ..., "boundary": "all", "value": 0.0, "hard": False, "file": None,
                   "format": None, "coords": None, "value_column": "u"}
_TOP_LEVEL = set(_SCHEMA) | {"conditions"}
_LIKELIHOODS = ("normal", "student_t")


def _fail(path: str, msg: str):
    raise ConfigError(f"{path}: {msg}")


def _check_keys(table: dict, allowed: dict, path: str) -> dict:
    if not isinstance(table, dict):
        _fail(path, f"expected a table, got {type(table).__name__}")
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        _fail(
            path,
            f"unknown key(s) {unknown}; valid keys are {sorted(allowed)}"
            + _suggest(unknown[0], allowed),
        )
    out = {}
    for key, default in allowed.items():
        if key in table:
            out[key] = table[key]
        elif default is ...:
            _fail(path, f"missing required key {key!r}")
        else:
            out[key] = default
    return out


def _suggest(word: str, options) -> str:
    import difflib

    close = difflib.get_close_matches(word, list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _number(value, path: str, *, positive=False, integer=False, minimum=None):
    if isinstance(value, bool) or not isinstance(value, int | float):
        _fail(path, f"expected a number, got {value!r}")
    if integer and not (isinstance(value, int) or float(value).is_integer()):
        _fail(path, f"expected an integer, got {value!r}")
    if not math.isfinite(value):
        _fail(path, f"expected a finite number, got {value!r}")
    if positive and not value > 0:
        _fail(path, f"must be > 0, got {value!r}")
    if minimum is not None and value < minimum:
        _fail(path, f"must be >= {minimum}, got {value!r}")
    return int(value) if integer else float(value)


def _interval(value, path: str):
    if value is None:
        return None
    if not (isinstance(value, list) and len(value) == 2):
        _fail(path, f"expected [low, high], got {value!r}")
    lo, hi = (_number(v, f"{path}[{i}]") for i, v in enumerate(value))
    if not lo < hi:
        _fail(path, f"expected low < high, got [{lo}, {hi}]")
    return (lo, hi)


def _quantity(value, path: str, *, positive=False):
    try:
        return parse_quantity(value, where=path, positive=positive)
    except ValueError as err:
        raise ConfigError(str(err)) from None


def _bool(value, path):
    if not isinstance(value, bool):
        _fail(path, f"expected true or false, got {value!r}")
    return value




@dataclass(frozen=True)
class RunConfig:
    """A parsed config: the raw tables (for provenance) plus the parsed pieces."""

    path: Path
    raw: MappingProxyType
    inference: InferenceSettings
    truth: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))

    @property
    def base_dir(self) -> Path:
        return self.path.parent


def load_config(path, *, overrides: dict | None = None) -> RunConfig:
    """Read and validate a TOML config. ``overrides`` replaces ``[inference]`` keys (CLI flags).

    Validation here is structural (keys, types, ranges). Files and functions are checked by
    ``build_problem``, which needs them anyway.
    """
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path}: is a directory; give the path of a TOML config file")
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from None
    unknown = sorted(set(raw) - _TOP_LEVEL)
    if unknown:
        raise ConfigError(
            f"{path}: unknown section(s) {unknown}; valid sections are {sorted(_TOP_LEVEL)}"
            + _suggest(unknown[0], _TOP_LEVEL)
        )
    for section in ("problem", "domain", "data"):
        if section not in raw:
            raise ConfigError(f"{path}: missing required section [{section}]")
    for section, allowed in _SCHEMA.items():
        if section in raw and allowed:
            _check_keys(raw[section], allowed, f"{path} [{section}]")
    inf_raw = raw.get("inference", {})
    if not isinstance(inf_raw, dict):
        _fail(f"{path} [inference]", f"expected a table, got {type(inf_raw).__name__}")
    overridden = {k: v for k, v in (overrides or {}).items() if v is not None}
    inf = _check_keys({**inf_raw, **overridden}, _SCHEMA["inference"], f"{path} [inference]")

    def p(key):
        # A bad value given on the command line must not send the user hunting in the file.
        where = f"{path} [inference] {key}"
        return f"{where} (overridden)" if key in overridden else where

    if inf["method"] not in method_names():
        _fail(p("method"), f"unknown method {inf['method']!r}; valid methods are "
              f"{', '.join(method_names())}")
    settings = InferenceSettings(
        method=inf["method"],
        seed=_number(inf["seed"], p("seed"), integer=True, minimum=0),
        num_chains=_number(inf["num_chains"], p("num_chains"), integer=True, minimum=1),
        num_warmup=_number(inf["num_warmup"], p("num_warmup"), integer=True, minimum=20),
        num_samples=_number(inf["num_samples"], p("num_samples"), integer=True, minimum=1),
        max_tree_depth=_number(inf["max_tree_depth"], p("max_tree_depth"), integer=True,
                               minimum=1),
        target_acceptance=_number(inf["target_acceptance"], p("target_acceptance"),
                                  positive=True),
        adapt_mass_matrix=_bool(inf["adapt_mass_matrix"], p("adapt_mass_matrix")),
        weight_damping=_number(inf["weight_damping"], p("weight_damping"), minimum=0),
        curvature_floor=_number(inf["curvature_floor"], p("curvature_floor"), positive=True),
        map_adam_steps=_number(inf["map_adam_steps"], p("map_adam_steps"), integer=True,
                               minimum=0),
        map_learning_rate=_number(inf["map_learning_rate"], p("map_learning_rate"),
                                  positive=True),
        map_lbfgs_steps=_number(inf["map_lbfgs_steps"], p("map_lbfgs_steps"), integer=True,
                                minimum=0),
        map_physics_ramp=_number(inf["map_physics_ramp"], p("map_physics_ramp"), minimum=0),
        chain_init=inf["chain_init"],
        save_weights=_bool(inf["save_weights"], p("save_weights")),
        num_leapfrog_steps=_number(inf["num_leapfrog_steps"], p("num_leapfrog_steps"),
                                   integer=True, minimum=1),
        svi_steps=_number(inf["svi_steps"], p("svi_steps"), integer=True, minimum=1),
        svi_learning_rate=_number(inf["svi_learning_rate"], p("svi_learning_rate"),
                                  positive=True),
        svi_num_particles=_number(inf["svi_num_particles"], p("svi_num_particles"),
                                  integer=True, minimum=1),
        svi_rank=_number(inf["svi_rank"], p("svi_rank"), integer=True, minimum=1),
        num_members=_number(inf["num_members"], p("num_members"), integer=True, minimum=2),
    )
    if settings.chain_init not in CHAIN_INITS:
        _fail(p("chain_init"), f"unknown value {settings.chain_init!r}; valid: {CHAIN_INITS}")
    if not settings.target_acceptance < 1:
        _fail(p("target_acceptance"), f"must be in (0, 1), got {settings.target_acceptance}")
    truth = raw.get("truth", {})
    if not isinstance(truth, dict):
        _fail(f"{path} [truth]", f"expected a table, got {type(truth).__name__}")
    for name, value in truth.items():
        if isinstance(value, list):
            for i, v in enumerate(value):
                _number(v, f"{path} [truth] {name}[{i}]")
        else:
            _number(value, f"{path} [truth] {name}")
    return RunConfig(path=path, raw=MappingProxyType(raw), inference=settings,
                     truth=MappingProxyType(dict(truth)))


def _domain(cfg: RunConfig) -> Domain:
    p = f"{cfg.path} [domain]"
    d = _check_keys(cfg.raw["domain"], _SCHEMA["domain"], p)
    space = [_interval(d["x"], f"{p} x")]
    if d["y"] is not None:
        space.append(_interval(d["y"], f"{p} y"))
    return Domain(space=tuple(space), time=_interval(d["t"], f"{p} t"))


def _function_or_number(value, path: str, base_dir: Path, domain: Domain | None = None):
    """A number, or "module:function" resolved to a callable of the coordinate vector.

    With ``domain`` the function is called once at the domain's centre, so that a wrong
    signature or a non-scalar result is reported here, naming the key, and not as a traceback
    from deep inside model building.
    """
    if isinstance(value, bool):
        _fail(path, f"expected a number or 'module:function', got {value!r}")
    if isinstance(value, int | float):
        return _number(value, path)
    if isinstance(value, str):
        try:
            fn = resolve_reference(value, base_dir=base_dir, where=path)
        except ValueError as err:
            raise ConfigError(str(err)) from None
        if domain is not None:
            _check_point_function(fn, value, path, domain)
        return fn
    _fail(path, f"expected a number or 'module:function', got {value!r}")


def _check_point_function(fn, ref: str, path: str, domain: Domain) -> None:
    import jax.numpy as jnp

    z = jnp.asarray((domain.lower + domain.upper) / 2)
    names = ", ".join(domain.coord_names)
    try:
        shape = jnp.shape(fn(z))
    except Exception as err:  # user code: any failure is a bad config value
        _fail(path, f"calling {ref!r} with one point z = ({names}) = {z.tolist()} failed with "
              f"{type(err).__name__}: {err}; it must take the coordinate vector z as its only "
              "argument and return a number")
    if shape != ():
        _fail(path, f"{ref!r} must return one number for one point z = ({names}), got an array "
              f"of shape {shape}")


def _pde(cfg: RunConfig, domain: Domain) -> PDE:
    p = f"{cfg.path} [problem]"
    prob = _check_keys(cfg.raw["problem"], _SCHEMA["problem"], p)
    name = prob["pde"]
    if not isinstance(name, str):
        _fail(f"{p} pde", f"expected a PDE name or 'module:function', got {name!r}")
    if ":" in name:
        operator = _function_or_number(name, f"{p} pde", cfg.base_dir)
        coeffs = prob["coefficients"]
        if coeffs is None:
            coeffs = sorted(cfg.raw.get("coefficients", {}))
        if not (isinstance(coeffs, list) and all(isinstance(c, str) for c in coeffs)):
            _fail(f"{p} coefficients", f"expected a list of names, got {coeffs!r}")
        return PDE(name=name, coefficient_names=tuple(coeffs), operator=operator,
                   equation=f"{name}[u] = f (user-defined)")
    if prob["coefficients"] is not None:
        _fail(f"{p} coefficients", "only user-defined PDEs ('module:function') list coefficients")
    if name not in BUILTIN_PDES:
        _fail(f"{p} pde", f"unknown PDE {name!r}; built-in PDEs are {sorted(BUILTIN_PDES)}, "
              "or give a user-defined operator as 'module:function'" + _suggest(name, BUILTIN_PDES))
    if not isinstance(prob["options"], dict):
        _fail(f"{p} options", f"expected a table such as {{ velocity = 1.0 }}, got "
              f"{prob['options']!r}")
    try:
        return make_pde(name, domain, **prob["options"])
    except (ValueError, TypeError) as err:
        raise ConfigError(f"{p}: {err}") from None


def _coefficients(cfg: RunConfig, pde: PDE) -> dict:
    p = f"{cfg.path} [coefficients]"
    table = cfg.raw.get("coefficients", {})
    out = {}
    for name, value in table.items():
        if name not in pde.coefficient_names:
            _fail(p, f"{name!r} is not a coefficient of the {pde.name} PDE; its coefficients are "
                  f"{list(pde.coefficient_names)}" + _suggest(name, pde.coefficient_names))
        out[name] = _quantity(value, f"{p} {name}")
    missing = [n for n in pde.coefficient_names if n not in out]
    if missing:
        _fail(p, f"coefficient(s) {missing} of the {pde.name} PDE have neither a value nor a "
              f"prior; add e.g. {missing[0]} = {{ prior = \"LogNormal\", loc = 0.0, scale = 1.0 }}"
              f" or {missing[0]} = 1.0 if it is known")
    return out


def _resolve_file(cfg: RunConfig, value, path: str) -> Path:
    if not isinstance(value, str):
        _fail(path, f"expected a file name, got {value!r}")
    file = Path(value)
    return file if file.is_absolute() else cfg.base_dir / file


def _coords_map(value, domain: Domain, path: str) -> dict:
    if value is None:
        return {n: n for n in domain.coord_names}
    if not isinstance(value, dict):
        _fail(path, f"expected a table such as {{ x = \"x\", t = \"time\" }}, got {value!r}")
    extra = sorted(set(value) - set(domain.coord_names))
    missing = [n for n in domain.coord_names if n not in value]
    if extra or missing:
        _fail(path, f"must map exactly the domain's coordinates {list(domain.coord_names)} to "
              f"column names; missing {missing}, unexpected {extra}")
    return {n: value[n] for n in domain.coord_names}


def _observations(cfg, table, domain, path, *, value_key, group=None):
    from bpinn.data import DataError

    file = _resolve_file(cfg, table["file"], f"{path} file")
    coords = _coords_map(table["coords"], domain, f"{path} coords")
    try:
        obs = load_observations(file, coords=coords, value=table[value_key], group=group,
                                format=table["format"])
        validate_observations(obs, domain)
    except DataError as err:
        raise ConfigError(str(err)) from None
    return obs


def _conditions(cfg: RunConfig, domain: Domain) -> tuple[Condition, ...]:
    out = []
    raw = cfg.raw.get("conditions", [])
    if not isinstance(raw, list):
        _fail(f"{cfg.path} [[conditions]]", "expected an array of tables ([[conditions]])")
    for i, table in enumerate(raw):
        p = f"{cfg.path} [[conditions]][{i}]"
        c = _check_keys(table, _CONDITION_KEYS, p)
        points = targets = None
        if c["file"] is not None:
            if c["kind"] != "dirichlet":
                _fail(f"{p} file", "boundary data files are supported for dirichlet conditions")
            obs = _observations(cfg, {**c, "value": c["value_column"]}, domain, p,
                                value_key="value")
            points, targets = obs.coords, obs.values
            value = 0.0
        else:
            value = _function_or_number(c["value"], f"{p} value", cfg.base_dir, domain)
        hard = _bool(c["hard"], f"{p} hard")
        try:
            cond = Condition(kind=c["kind"], boundary=c["boundary"], value=value, hard=hard,
                             points=points, targets=targets)
            # Build the condition's terms once now: a bad boundary name, an initial condition
            # without a time domain or a non-homogeneous hard face in 2-D fails here, naming
            # the condition, instead of deep inside model building.
            if hard:
                hard_constraint(domain, [cond])
            else:
                soft_terms(domain, [cond], num_points=1)
        except ValueError as err:
            raise ConfigError(f"{p}: {err}") from None
        out.append(cond)
    return tuple(out)


def build_problem(cfg: RunConfig) -> Problem:
    """Load the data, resolve functions and return the validated ``Problem``."""
    domain = _domain(cfg)
    pde = _pde(cfg, domain)
    coefficients = _coefficients(cfg, pde)
    p = f"{cfg.path} [data]"
    data = _check_keys(cfg.raw["data"], _SCHEMA["data"], p)
    obs = _observations(cfg, data, domain, p, value_key="value", group=data["group"])
    noise = _quantity(data["noise"], f"{p} noise", positive=True)
    per_group = _bool(data["per_group_noise"], f"{p} per_group_noise")
    if per_group and data["group"] is None:
        _fail(f"{p} per_group_noise", "needs a 'group' column naming each reading's sensor group")

    prob = _check_keys(cfg.raw["problem"], _SCHEMA["problem"], f"{cfg.path} [problem]")
    src = _function_or_number(prob["source"], f"{cfg.path} [problem] source", cfg.base_dir,
                              domain)
    if callable(src):
        user_source = src

        def source(z, coeffs):
            return user_source(z)

        source_text = prob["source"]
    elif src == 0.0:
        source, source_text = zero_source, "0"
    else:
        constant = src

        def source(z, coeffs):
            return constant + 0.0 * z[0]

        source_text = f"{constant:g}"

    likelihood = data["likelihood"]
    if likelihood not in _LIKELIHOODS:
        _fail(f"{p} likelihood", f"unknown likelihood {likelihood!r}; valid: "
              f"{', '.join(map(repr, _LIKELIHOODS))}" + _suggest(str(likelihood), _LIKELIHOODS))
    student_t_df = _number(data["student_t_df"], f"{p} student_t_df", positive=True)
    conditions = _conditions(cfg, domain)

    source_data = source_noise = None
    if "source_data" in cfg.raw:
        ps = f"{cfg.path} [source_data]"
        sd = _check_keys(cfg.raw["source_data"], _SCHEMA["source_data"], ps)
        source_data = _observations(cfg, sd, domain, ps, value_key="value")
        source_noise = _quantity(sd["noise"], f"{ps} noise", positive=True)

    try:
        return Problem(
            domain=domain, pde=pde, coefficients=coefficients, observations=obs, noise=noise,
            conditions=conditions, source=source, source_description=source_text,
            source_data=source_data, source_noise=source_noise, per_group_noise=per_group,
            likelihood=likelihood, student_t_df=student_t_df, truth=dict(cfg.truth),
        )
    except ValueError as err:
        raise ConfigError(f"{cfg.path}: {err}") from None


def build_settings(cfg: RunConfig, domain: Domain):
    """The ``ModelSettings`` of the ``[model]`` section."""
    from bpinn.models.likelihood import ModelSettings

    p = f"{cfg.path} [model]"
    m = _check_keys(cfg.raw.get("model", {}), _SCHEMA["model"], p)
    try:
        network = Network(
            input_dim=domain.ndim, width=_number(m["width"], f"{p} width", integer=True,
                                                 minimum=1),
            depth=_number(m["depth"], f"{p} depth", integer=True, minimum=1),
            kind=m["network"], activation=m["activation"],
            num_fourier=_number(m["num_fourier"], f"{p} num_fourier", integer=True, minimum=1),
            fourier_scale=_number(m["fourier_scale"], f"{p} fourier_scale", positive=True),
            siren_omega0=_number(m["siren_omega0"], f"{p} siren_omega0", positive=True),
            fourier_seed=cfg.inference.seed,
        )
        return ModelSettings(
            network=network,
            weight_prior_scale=_number(m["weight_prior_scale"], f"{p} weight_prior_scale",
                                       positive=True),
            fan_in_scaled=_bool(m["fan_in_scaled"], f"{p} fan_in_scaled"),
            num_collocation=_number(m["num_collocation"], f"{p} num_collocation", integer=True,
                                   minimum=1),
            residual_noise=_quantity(m["residual_noise"], f"{p} residual_noise", positive=True),
            condition_noise=_quantity(m["condition_noise"], f"{p} condition_noise",
                                      positive=True),
            num_condition_points=_number(m["num_condition_points"], f"{p} num_condition_points",
                                         integer=True, minimum=1),
        )
    except ConfigError:
        raise
    except ValueError as err:
        raise ConfigError(f"{p}: {err}") from None


__all__ = ["ConfigError", "RunConfig", "InferenceSettings", "load_config", "build_problem",
           "build_settings", "Fixed", "Prior"]
