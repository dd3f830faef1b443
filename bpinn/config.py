"""TOML config -> validated, frozen ``RunConfig``; every bad key or value is named with its path.

The config speaks the user's language (files, column names, priors by name); ``build_problem``
turns it into the library's types. Nothing in a config is ever evaluated as code: functions are
referenced as ``"module:function"`` and imported (a ``module.py`` beside the config is found).
A module name is a dotted Python name (no paths: ``..``, ``/`` or a leading dot are refused);
a name that is not a file beside the config must be an installed package outside the standard
library (``os:system`` or ``builtins:print`` are refused, never imported or called). Every
function is called once at the domain's centre while the config is checked, so a wrong signature
is reported naming the key. Paths in a config (``file = ...``) are read, never written, and a
relative path is resolved against the config's folder, not the working directory.

Integer settings have upper bounds (``_MAXIMUM``) far above any real problem, so that a typo such
as ``num_samples = 1000000000000`` is reported instead of exhausting memory or running for days.

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

import copy
import math
import sys
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType

from bpinn.data import load_observations, validate_observations
from bpinn.inference.methods import method_names
from bpinn.models.conditions import Condition, UnknownValue, faces, hard_constraint, soft_terms
from bpinn.models.fields import (
    FIELDS_KEY,
    FieldReadings,
    FieldValue,
    GaussianProcessField,
    default_num_basis,
)
from bpinn.models.fields import KERNELS as FIELD_KERNELS
from bpinn.models.fields import MAX_BASIS as FIELD_MAX_BASIS
from bpinn.models.networks import Network
from bpinn.models.pdes import BUILTIN_PDES, make_pde
from bpinn.models.priors import PRIOR_FAMILIES, Fixed, Prior, parse_quantity
from bpinn.models.problem import PDE, Domain, Problem, zero_source
from bpinn.utils import resolve_reference


class ConfigError(ValueError):
    """A config file that cannot be run; the message names the key and what would be valid."""


# best_map: every chain explores the mode of the best MAP fit (the other fits are reported);
# per_chain: each chain explores the mode of its own MAP fit, so R-hat compares modes.
CHAIN_INITS = ("best_map", "per_chain")
SVI_COORDINATES = ("whitened", "raw")
OUTPUT_LAYER_MODES = ("sampled", "marginal", "auto")
IMPLICIT_PRIOR_MODES = ("auto", "ignored", "measured", "corrected")


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
    # MAP-training remedies (docs/failure_modes.md); none of them changes the posterior
    map_causal_epsilon: float = 0.0  # > 0: causal time weighting of residuals
    map_time_marching: bool = False  # residual weight as a front moving forward in time
    map_ntk_balance: bool = False  # term weights from NTK traces (bpinn.ntk)
    map_resample_rounds: int = 0  # residual-based resampling of the collocation points
    chain_init: str = "best_map"
    # nuts: "marginal" integrates the output layer out (bpinn.inference.marginal); "auto" does
    # so where the model allows it (linear PDE, Gaussian readings)
    output_layer: str = "auto"
    # the prior the physics terms imply on the coefficients (bpinn.inference.implicit_prior;
    # the methods whose Method.implicit_prior is "removed"): "measured" reports its slope,
    # "corrected" also removes it, "auto" corrects wherever a coefficient is unknown
    implicit_prior: str = "auto"
    # values per coefficient, on either side of the MAP, where its slope is also measured
    # (implicit_prior.profile_points; 4 is a good start); 0: at the MAP only (a first-order
    # correction), the default until the profile has been through the full test suite and a
    # calibration (docs/sampling.md, section 7)
    implicit_prior_points: int = 0
    # cap on the tree depth of the measurement's physics-only NUTS run (it runs at the smaller
    # of this and max_tree_depth; 20, the largest max_tree_depth, is no cap): on the heat case
    # depth 8 cost a third of depth 10 but steepened the slope by about 15% (docs/benchmarks.md)
    implicit_prior_max_tree_depth: int = 20
    save_weights: bool = False
    # method-specific (ignored by methods that do not use them)
    num_leapfrog_steps: int = 50  # hmc: fixed trajectory length
    svi_steps: int = 5000  # svi_*: optimisation steps
    svi_learning_rate: float = 0.005
    svi_num_particles: int = 4  # Monte Carlo draws per ELBO gradient
    svi_rank: int = 8  # svi_lowrank: rank of the covariance factor
    # svi_*: "whitened" fits the guide in coordinates where the damped Laplace approximation at
    # the MAP is a standard normal (variational.laplace_whitening); "raw" in the model's own
    # coordinates, where the heat case's guides drift to D = 0 (docs/sampling.md)
    svi_coordinates: str = "whitened"
    num_members: int = 8  # ensemble, rto: number of independent fits


# section -> {key: default}; ``...`` marks a required key.
_SCHEMA: dict[str, dict[str, object]] = {
    "problem": {"pde": ..., "coefficients": None, "options": {}, "source": 0.0, "flux": None,
                "reference": None, "outputs": None},
    "domain": {"x": ..., "y": None, "t": None},
    "coefficients": {},  # free-form: one entry per coefficient
    "data": {
        "file": ..., "format": None, "coords": None, "value": "u", "group": None,
        "noise": ..., "per_group_noise": False, "likelihood": "normal", "student_t_df": 4.0,
        "holdout": [],
    },
    "source_data": {
        "file": ..., "format": None, "coords": None, "value": "f", "noise": ...,
    },
    "model": {
        "network": "mlp", "width": 16, "depth": 2, "activation": "tanh", "num_fourier": 16,
        "fourier_scale": 1.0, "siren_omega0": 30.0, "weight_prior_scale": 3.0,
        "fan_in_scaled": False, "num_collocation": 128, "residual_noise": 0.05,
        "condition_noise": 0.01, "num_condition_points": 32, "residual_gradient_noise": None,
        "residual_form": "strong", "num_test_functions": 16, "equation_scales": None,
    },
    "inference": {f.name: f.default for f in fields(InferenceSettings)},
    "truth": {},  # free-form: name -> value
}
_CONDITION_KEYS = {"kind": ..., "boundary": "all", "value": 0.0, "hard": False, "file": None,
                   "output": None,
                   "format": None, "coords": None, "value_column": "u"}
# [[field_data]]: direct readings of a coefficient field, in the field's own coordinates.
_FIELD_DATA_KEYS = {"field": ..., "file": ..., "format": None, "coords": None, "value": None,
                    "noise": ..., "log": False}
_TOP_LEVEL = set(_SCHEMA) | {"conditions", "field_data"}
_LIKELIHOODS = ("normal", "student_t")
# Upper bounds of integer settings: generous for real problems, far below what would exhaust
# memory or run for days when a value has a few zeros too many. seed: a JAX/NumPy seed.
_MAXIMUM = {
    "seed": 2**32 - 1, "num_chains": 1024, "num_warmup": 10**6, "num_samples": 10**6,
    "max_tree_depth": 20, "map_adam_steps": 10**9, "map_lbfgs_steps": 10**9,
    "num_leapfrog_steps": 10**5, "svi_steps": 10**9, "svi_num_particles": 10**4,
    "svi_rank": 10**4, "num_members": 1024, "map_resample_rounds": 100,
    "implicit_prior_points": 64, "implicit_prior_max_tree_depth": 20,
    "width": 4096, "depth": 64, "num_fourier": 4096, "num_collocation": 10**6,
    "num_condition_points": 10**5, "num_test_functions": 10**5,
}
_FLOAT_MAX = sys.float_info.max
# Every weight is held several times per chain (and NUTS whitens with a dense Hessian).
_MAX_WEIGHTS = 10**6


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


def _show(value) -> str:
    """``repr`` for messages, short even for a 10**400 integer or a megabyte of text."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**30:
        return f"an integer of about {int(value.bit_length() * 0.30103)} digits"
    text = repr(value)
    return text if len(text) <= 80 else text[:60] + f"... ({len(text)} characters)"


def _number(value, path: str, *, positive=False, integer=False, minimum=None, maximum=None,
            why="larger values would exhaust memory or run for days"):
    if isinstance(value, bool) or not isinstance(value, int | float):
        _fail(path, f"expected a number, got {_show(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        _fail(path, f"expected a finite number, got {_show(value)}")
    if integer and not (isinstance(value, int) or value.is_integer()):
        _fail(path, f"expected an integer, got {_show(value)}")
    if positive and not value > 0:
        _fail(path, f"must be > 0, got {_show(value)}")
    if minimum is not None and value < minimum:
        _fail(path, f"must be >= {minimum}, got {_show(value)}")
    if maximum is not None and value > maximum:
        _fail(path, f"must be <= {maximum}, got {_show(value)}; {why}")
    if isinstance(value, int) and abs(value) > _FLOAT_MAX:
        _fail(path, f"{_show(value)} is too large for a float64 (at most about 1.8e308)")
    return int(value) if integer else float(value)


def _count(value, path: str, key: str, minimum: int) -> int:
    """An integer setting between ``minimum`` and its bound in ``_MAXIMUM``."""
    return _number(value, path, integer=True, minimum=minimum, maximum=_MAXIMUM[key],
                   **({"why": "seeds are 32-bit"} if key == "seed" else {}))


def _interval(value, path: str):
    if value is None:
        return None
    if not (isinstance(value, list) and len(value) == 2):
        _fail(path, f"expected [low, high], got {_show(value)}")
    lo, hi = (_number(v, f"{path}[{i}]") for i, v in enumerate(value))
    if not lo < hi:
        _fail(path, f"expected low < high, got [{lo}, {hi}]")
    if not math.isfinite(hi - lo):  # coordinates are scaled by the width
        _fail(path, f"the width high - low overflows float64, got [{lo}, {hi}]")
    return (lo, hi)


def _quantity(value, path: str, *, positive=False):
    if isinstance(value, dict) and "prior" not in value:  # name a typo such as 'prir'
        typo = next((k for k in sorted(value) if _suggest(k, ["prior"])), None)
        _fail(path, f"a prior table needs a 'prior' key naming the family "
              f"({', '.join(PRIOR_FAMILIES)}), e.g. {{ prior = \"HalfNormal\", scale = 0.1 }}; "
              f"got keys {sorted(value)}" + (_suggest(typo, ["prior"]) if typo else ""))
    try:
        return parse_quantity(value, where=path, positive=positive)
    except ValueError as err:
        message = str(err)  # Fixed(inf) says "a known value must be finite", without the key
        raise ConfigError(message if message.startswith(path) else f"{path}: {message}") from None
    except OverflowError:  # an integer parameter beyond float64
        _fail(path, f"a number is too large for float64 in {_show(value)}")


def _bool(value, path):
    if not isinstance(value, bool):
        _fail(path, f"expected true or false, got {_show(value)}")
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


def load_config(path, *, overrides: dict | None = None, tables: dict | None = None
                ) -> RunConfig:
    """Read and validate a TOML config. ``overrides`` replaces ``[inference]`` keys (CLI flags).

    Validation here is structural (keys, types, ranges). Files and functions are checked by
    ``build_problem``, which needs them anyway. ``tables`` are the parsed tables of a config
    recorded earlier (``bpinn run --from``): they are validated the same way, and ``path`` (which
    need not exist any more) only anchors the relative paths they name.
    """
    path = Path(path)
    if tables is not None:
        return _validated(path, copy.deepcopy(dict(tables)), overrides)
    try:
        is_dir, is_file, exists = path.is_dir(), path.is_file(), path.exists()
    except (OSError, ValueError) as err:  # a name too long, a NUL byte in the name
        raise ConfigError(f"{_show(str(path))}: cannot be opened: {err}") from None
    if is_dir:
        raise ConfigError(f"{path}: is a directory; give the path of a TOML config file")
    if not exists:
        raise ConfigError(f"{path}: config file not found")
    if not is_file:  # a FIFO or a device would block or never end
        raise ConfigError(f"{path}: not a regular file; give the path of a TOML config file")
    try:
        raw = tomllib.loads(path.read_bytes().decode("utf-8-sig"))  # as some editors save it
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text ({err}); a config is a TOML text file") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot be read ({err.strerror or err})") from None
    except (tomllib.TOMLDecodeError, ValueError) as err:
        # ValueError: e.g. an integer with more digits than Python converts
        raise ConfigError(f"{path}: not valid TOML: {err}") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid TOML: arrays or tables nested too deeply") from None
    return _validated(path, raw, overrides)


def _validated(path: Path, raw: dict, overrides: dict | None) -> RunConfig:
    unknown = sorted(set(raw) - _TOP_LEVEL)
    if unknown:
        raise ConfigError(
            f"{path}: unknown section(s) {unknown}; valid sections are {sorted(_TOP_LEVEL)}"
            + _suggest(unknown[0], _TOP_LEVEL)
        )
    for section in ("problem", "domain", "data"):
        if section not in raw:
            raise ConfigError(f"{path}: missing required section [{section}]")
    for section in _SCHEMA:
        if section in raw and not isinstance(raw[section], dict):
            _fail(f"{path} [{section}]", f"expected a table, got {_show(raw[section])}")
    # time without space (an ODE): say how to write it; a misspelt x is named as unknown below
    if "x" not in raw["domain"] and set(raw["domain"]) <= {"y", "t"}:
        _fail(f"{path} [domain]", f"missing required key 'x': {_TIME_ONLY_HINT}")
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
        _fail(p("method"), f"unknown method {_show(inf['method'])}; valid methods are "
              f"{', '.join(method_names())}" + _suggest(str(inf["method"]), method_names()))

    def count(key, minimum):
        return _count(inf[key], p(key), key, minimum)

    settings = InferenceSettings(
        method=inf["method"],
        seed=count("seed", 0),
        num_chains=count("num_chains", 1),
        num_warmup=count("num_warmup", 20),
        num_samples=count("num_samples", 1),
        max_tree_depth=count("max_tree_depth", 1),
        target_acceptance=_number(inf["target_acceptance"], p("target_acceptance"),
                                  positive=True),
        adapt_mass_matrix=_bool(inf["adapt_mass_matrix"], p("adapt_mass_matrix")),
        weight_damping=_number(inf["weight_damping"], p("weight_damping"), minimum=0),
        curvature_floor=_number(inf["curvature_floor"], p("curvature_floor"), positive=True),
        map_adam_steps=count("map_adam_steps", 0),
        map_learning_rate=_number(inf["map_learning_rate"], p("map_learning_rate"),
                                  positive=True),
        map_lbfgs_steps=count("map_lbfgs_steps", 0),
        map_physics_ramp=_number(inf["map_physics_ramp"], p("map_physics_ramp"), minimum=0),
        map_causal_epsilon=_number(inf["map_causal_epsilon"], p("map_causal_epsilon"),
                                   minimum=0),
        map_time_marching=_bool(inf["map_time_marching"], p("map_time_marching")),
        map_ntk_balance=_bool(inf["map_ntk_balance"], p("map_ntk_balance")),
        map_resample_rounds=count("map_resample_rounds", 0),
        chain_init=inf["chain_init"],
        output_layer=inf["output_layer"],
        implicit_prior=inf["implicit_prior"],
        implicit_prior_points=count("implicit_prior_points", 0),
        implicit_prior_max_tree_depth=count("implicit_prior_max_tree_depth", 1),
        save_weights=_bool(inf["save_weights"], p("save_weights")),
        num_leapfrog_steps=count("num_leapfrog_steps", 1),
        svi_steps=count("svi_steps", 1),
        svi_learning_rate=_number(inf["svi_learning_rate"], p("svi_learning_rate"),
                                  positive=True),
        svi_num_particles=count("svi_num_particles", 1),
        svi_rank=count("svi_rank", 1),
        svi_coordinates=inf["svi_coordinates"],
        num_members=count("num_members", 2),
    )
    if settings.svi_coordinates not in SVI_COORDINATES:
        _fail(p("svi_coordinates"),
              f"unknown value {_show(settings.svi_coordinates)}; valid: {SVI_COORDINATES}")
    if settings.chain_init not in CHAIN_INITS:
        _fail(p("chain_init"), f"unknown value {_show(settings.chain_init)}; valid: {CHAIN_INITS}")
    if settings.output_layer not in OUTPUT_LAYER_MODES:
        _fail(p("output_layer"),
              f"unknown value {_show(settings.output_layer)}; valid: {OUTPUT_LAYER_MODES}")
    if settings.output_layer == "marginal" and settings.method != "nuts":
        _fail(p("output_layer"), f"'marginal' is supported by method 'nuts' only, not "
              f"{settings.method!r}; use 'sampled' (or 'auto', which samples it there)")
    if settings.implicit_prior not in IMPLICIT_PRIOR_MODES:
        _fail(p("implicit_prior"),
              f"unknown value {_show(settings.implicit_prior)}; valid: {IMPLICIT_PRIOR_MODES}")
    if not settings.target_acceptance < 1:
        _fail(p("target_acceptance"), f"must be in (0, 1), got {settings.target_acceptance}")
    steady = isinstance(raw.get("domain"), dict) and raw["domain"].get("t") is None
    for key in ("map_causal_epsilon", "map_time_marching"):
        if steady and getattr(settings, key):
            _fail(p(key), "weighs residuals by time, but the problem is steady (no [domain] t); "
                  "remove it or add a time range")
    truth = raw.get("truth", {})
    if not isinstance(truth, dict):
        _fail(f"{path} [truth]", f"expected a table, got {type(truth).__name__}")
    for name, value in truth.items():
        if isinstance(value, list):
            for i, v in enumerate(value):
                _number(v, f"{path} [truth] {name}[{i}]")
        elif not (isinstance(value, str) and ":" in value):  # 'module:function': a field's truth
            _number(value, f"{path} [truth] {name}")
    return RunConfig(path=path, raw=MappingProxyType(raw), inference=settings,
                     truth=MappingProxyType(dict(truth)))


# Time-only problems (ODEs) have no space coordinate to give; how to write them instead.
_TIME_ONLY_HINT = (
    "bpinn needs one or two space coordinates (x, y) and an optional time t. A problem in time "
    "alone (an ODE) is written with time as the space coordinate x and no t: the initial value "
    "as a dirichlet condition at x_min, an initial rate u'(t0) = v as a neumann condition at "
    "x_min with value = -v (the outward normal points to decreasing x), and the ODE as a "
    "user-defined operator in x; README, 'Problems in time alone'")


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
        fn = _reference(value, path, base_dir)
        if domain is not None:
            _check_point_function(fn, value, path, domain)
        return fn
    _fail(path, f"expected a number or 'module:function', got {_show(value)}")


def _reference(ref: str, path: str, base_dir: Path):
    """Import ``"module:function"``: a dotted module name, beside the config or installed outside
    the standard library; nothing else is imported, and import errors name the key."""
    module, _, func = ref.partition(":")
    usage = (f"expected 'module:function' (a dotted Python module name, such as a module.py "
             f"beside the config, and a function name), got {_show(ref)}")
    if ref.count(":") != 1 or not func.isidentifier() or not all(
            part.isidentifier() for part in module.split(".")):
        _fail(path, usage)
    beside = (base_dir / (module.replace(".", "/") + ".py")).is_file()
    if not beside and module.split(".")[0] in sys.stdlib_module_names:
        # os:system, builtins:exec, shutil:rmtree... are never model functions: refuse them
        # without importing or calling anything.
        _fail(path, f"{ref!r} refers to the Python standard library module {module!r}; refer to "
              f"a function in a module.py beside the config ({base_dir}) or in an installed "
              "package")
    # Importing a module beside the config must not write __pycache__ there: a run writes
    # nothing outside OUTDIR.
    write_bytecode, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        return resolve_reference(ref, base_dir=base_dir, where=path)
    except (Exception, SystemExit) as err:
        if isinstance(err, ValueError) and str(err).startswith(path):
            raise ConfigError(str(err)) from None  # resolve_reference's own, naming the key
        # The module's own code failed while importing (a SyntaxError, bytes that are not
        # UTF-8, an exception or exit at module level).
        _fail(path, f"importing module {module!r} for {ref!r} failed with "
              f"{type(err).__name__}: {_show_error(err)}")
    finally:
        sys.dont_write_bytecode = write_bytecode


def _show_error(err: BaseException) -> str:
    text = str(err)
    return text if len(text) <= 300 else text[:300] + "..."


def _check_point_function(fn, ref: str, path: str, domain: Domain) -> None:
    import jax.numpy as jnp

    z = jnp.asarray((domain.lower + domain.upper) / 2)
    names = ", ".join(domain.coord_names)
    try:
        out = fn(z)
    except (Exception, SystemExit) as err:  # user code: any failure is a bad config value
        _fail(path, f"calling {ref!r} with one point z = ({names}) = {z.tolist()} failed with "
              f"{type(err).__name__}: {_show_error(err)}; it must take the coordinate vector z "
              "as its only argument and return a number")
    _check_scalar(out, f"{ref!r} must return one number for one point z = ({names})", path)


def _check_scalar(out, what: str, path: str) -> None:
    import jax.numpy as jnp

    try:
        result = jnp.asarray(out)
    except (TypeError, ValueError):
        _fail(path, f"{what}, got {_show(out)}")
    if result.shape != () or not jnp.issubdtype(result.dtype, jnp.number):
        _fail(path, f"{what}, got an array of shape {result.shape} and dtype {result.dtype}")


def _check_operator(operator, ref: str, path: str, domain: Domain, names, *,
                    flux: bool = False, fields=(), outputs=("u",)) -> int:
    """Call a user-defined PDE operator (or, with ``flux``, its divergence form) once, on a
    smooth trial function at the domain's centre, so that a wrong signature or result is
    reported here and not as a traceback mid-run. ``fields``: the coefficients declared as
    fields, which the operator also finds as functions under ``coeffs["fields"]``. For a
    system (several ``outputs``) the trial function returns one value per output and the
    operator must return one value per equation. Returns the number of equations."""
    import jax.numpy as jnp

    z = jnp.asarray((domain.lower + domain.upper) / 2)
    coeffs = {name: jnp.asarray(1.0) for name in names}
    if fields:
        coeffs[FIELDS_KEY] = {n: (lambda point: 1.0 + 0.0 * jnp.sum(point)) for n in fields}
    system = len(outputs) > 1
    call, returns = (("flux", "(F, G) with L[u] = -dF/dx + G, two numbers") if flux
                     else ("operator", "L[u](z), one number") if not system
                     else ("operator", "a vector with one entry per equation"))

    def trial(point):
        if system:  # one value per output, each a different smooth function
            return jnp.sin(jnp.sum(point) + 0.5 + jnp.arange(len(outputs)))
        return jnp.sum(jnp.sin(point + 0.5))

    try:
        out = operator(trial, z, coeffs)
    except (Exception, SystemExit) as err:  # user code: any failure is a bad config value
        _fail(path, f"calling {ref!r} as {call}(u_fn, z, coeffs) with a trial u_fn, z = "
              f"{z.tolist()} and coeffs = {{{', '.join(f'{n!r}: 1.0' for n in names)}}} failed "
              f"with {type(err).__name__}: {_show_error(err)}; it must return {returns} "
              "(list the coefficients it reads in [problem] coefficients)")
    if system:
        result = jnp.asarray(out)
        if result.ndim != 1 or result.size < 1 or not jnp.issubdtype(result.dtype, jnp.number):
            _fail(path, f"operator {ref!r} of a system with outputs {list(outputs)} must return "
                  f"a vector with one entry per equation for one point (u_fn(z) returns one "
                  f"value per output, in that order), got shape {result.shape}")
        return int(result.size)
    if not flux:
        _check_scalar(out, f"operator {ref!r} must return one number L[u](z) for one point",
                      path)
        return 1
    if not (isinstance(out, tuple | list) and len(out) == 2):
        _fail(path, f"flux {ref!r} must return a pair (F, G), got {_show(out)}")
    for part in out:
        _check_scalar(part, f"flux {ref!r} must return two numbers (F, G) for one point", path)
    return 1


def _pde(cfg: RunConfig, domain: Domain) -> PDE:
    p = f"{cfg.path} [problem]"
    prob = _check_keys(cfg.raw["problem"], _SCHEMA["problem"], p)
    name = prob["pde"]
    if not isinstance(name, str):
        _fail(f"{p} pde", f"expected a PDE name or 'module:function', got {_show(name)}")
    if ":" in name:
        operator = _function_or_number(name, f"{p} pde", cfg.base_dir)
        coeffs = prob["coefficients"]
        if coeffs is None:
            coeffs = sorted(cfg.raw.get("coefficients", {}))
        if not (isinstance(coeffs, list) and all(isinstance(c, str) for c in coeffs)):
            _fail(f"{p} coefficients", f"expected a list of names, got {_show(coeffs)}")
        field_coeffs = [n for n in _field_names(cfg) if n in coeffs]
        outputs = _outputs(prob["outputs"], f"{p} outputs", domain, coeffs)
        num_equations = _check_operator(operator, name, f"{p} pde", domain, coeffs,
                                        fields=field_coeffs, outputs=outputs)
        flux = None
        if prob["flux"] is not None:
            if len(outputs) > 1:
                _fail(f"{p} flux", "the weak residual (flux) is for a single unknown function, "
                      f"not a system with outputs {list(outputs)}")
            flux = _user_function(prob["flux"], f"{p} flux", cfg.base_dir)
            _check_operator(flux, prob["flux"], f"{p} flux", domain, coeffs, flux=True,
                            fields=field_coeffs)
        unknown = "u" if len(outputs) == 1 else f"({', '.join(outputs)})"
        return PDE(name=name, coefficient_names=tuple(coeffs), operator=operator,
                   equation=f"{name}[{unknown}] = f (user-defined)", flux=flux,
                   outputs=outputs, num_equations=num_equations)
    if prob["outputs"] is not None:
        _fail(f"{p} outputs", "only user-defined PDEs ('module:function') are systems with "
              "several outputs; the built-in PDEs have the one unknown u")
    if prob["flux"] is not None:
        _fail(f"{p} flux", "only user-defined PDEs ('module:function') take a flux; built-in "
              "PDEs bring their own divergence form")
    if prob["coefficients"] is not None:
        _fail(f"{p} coefficients", "only user-defined PDEs ('module:function') list coefficients")
    if name not in BUILTIN_PDES:
        _fail(f"{p} pde", f"unknown PDE {_show(name)}; built-in PDEs are {sorted(BUILTIN_PDES)}, "
              "or give a user-defined operator as 'module:function'" + _suggest(name, BUILTIN_PDES))
    if not isinstance(prob["options"], dict):
        _fail(f"{p} options", f"expected a table such as {{ velocity = 1.0 }}, got "
              f"{prob['options']!r}")
    try:
        return make_pde(name, domain, **prob["options"])
    except (ValueError, TypeError) as err:
        if "domain" in str(err):  # time-dependent PDE and steady domain, or the reverse
            raise ConfigError(f"{p} pde: {str(err).rstrip('.')} (the config's [domain] sets "
                              f"{', '.join(domain.coord_names)})") from None
        raise ConfigError(f"{p}: {err}") from None


def _outputs(value, path: str, domain: Domain, coefficients) -> tuple[str, ...]:
    """``[problem] outputs``: the unknown functions of a system, e.g. ["u", "v"]; ("u",) when
    absent (one unknown function)."""
    if value is None:
        return ("u",)
    if not (isinstance(value, list) and len(value) >= 2
            and all(isinstance(v, str) and v.isidentifier() for v in value)):
        _fail(path, "expected a list of two or more names, one per unknown function of the "
              f"system, such as [\"u\", \"v\"], got {_show(value)}")
    clashes = sorted(set(value) & (set(domain.coord_names) | set(coefficients)
                                   | {"sigma", "weights"}))
    if len(set(value)) != len(value) or clashes:
        _fail(path, f"names must be distinct and differ from the coordinates, coefficients and "
              f"'sigma' / 'weights'; {_show(value)} repeats or reuses {clashes or 'a name'}")
    return tuple(value)


def _field_names(cfg: RunConfig) -> list[str]:
    """Coefficients the config declares as fields (a table with a 'field' key)."""
    return [n for n, v in cfg.raw.get("coefficients", {}).items()
            if isinstance(v, dict) and "field" in v]


_FIELD_KEYS = {"field": ..., "loc": 0.0, "scale": 1.0, "length_scale": None, "log": True,
               "over": None, "num_basis": None, "kernel": "squared_exponential"}
_FIELD_KINDS = ("gp",)
# The default prior length scale of a field, as a fraction of each axis's extent.
DEFAULT_FIELD_LENGTH_FRACTION = 0.25


def _per_axis(value, path: str, axes: list[str], **number) -> list:
    """A number for every axis, or a list with one per axis."""
    if isinstance(value, list):
        if len(value) != len(axes):
            _fail(path, f"expected one value per axis {axes} or a single number, got "
                  f"{_show(value)}")
        return [_number(v, f"{path}[{i}]", **number) for i, v in enumerate(value)]
    return [_number(value, path, **number)] * len(axes)


def _field(value: dict, path: str, name: str, domain: Domain) -> GaussianProcessField:
    """``{ field = "gp", loc, scale, length_scale, log, over, num_basis }``: an unknown
    coefficient field with a Gaussian process prior (``bpinn.models.fields``)."""
    f = _check_keys(value, _FIELD_KEYS, path)
    if f["field"] not in _FIELD_KINDS:
        _fail(f"{path} field", f"unknown field prior {_show(f['field'])}; valid: "
              f"{list(_FIELD_KINDS)} (a Gaussian process)")
    space = list(domain.coord_names[: domain.space_dims])
    over = space if f["over"] is None else f["over"]
    if (not isinstance(over, list) or not over or len(set(over)) != len(over)
            or any(a not in domain.coord_names for a in over)):
        _fail(f"{path} over", f"expected a list of distinct coordinates out of "
              f"{list(domain.coord_names)}, e.g. {space}, got {_show(over)}")
    if f["kernel"] not in FIELD_KERNELS:
        _fail(f"{path} kernel", f"unknown kernel {_show(f['kernel'])}; valid: "
              f"{list(FIELD_KERNELS)}" + _suggest(str(f["kernel"]), FIELD_KERNELS))
    axes = [domain.coord_names.index(a) for a in over]
    lower, upper = domain.lower[axes], domain.upper[axes]
    if f["length_scale"] is None:
        ell = list(DEFAULT_FIELD_LENGTH_FRACTION * (upper - lower))
    else:
        ell = _per_axis(f["length_scale"], f"{path} length_scale", over, positive=True)
    if f["num_basis"] is None:
        m = list(default_num_basis(ell, (upper - lower) / 2, f["kernel"]))
    else:
        m = _per_axis(f["num_basis"], f"{path} num_basis", over, integer=True, minimum=1,
                      maximum=FIELD_MAX_BASIS, why="the latent vector is sampled")
    try:
        return GaussianProcessField(
            name=name, axes=tuple(axes), axis_names=tuple(over),
            lower=tuple(map(float, lower)), upper=tuple(map(float, upper)),
            loc=_number(f["loc"], f"{path} loc"),
            scale=_number(f["scale"], f"{path} scale", positive=True),
            length_scale=tuple(float(v) for v in ell), log=_bool(f["log"], f"{path} log"),
            num_basis=tuple(int(v) for v in m), kernel=f["kernel"])
    except ValueError as err:
        raise ConfigError(f"{path}: {err}") from None


def _names_a_coefficient(value) -> bool:
    """A condition value ``"u0"`` names an unknown coefficient; a 'module:function' has a
    colon."""
    return isinstance(value, str) and ":" not in value


def _condition_unknowns(cfg: RunConfig) -> tuple[str, ...]:
    """Names that conditions give as their value (an unknown boundary or initial value
    declared under [coefficients])."""
    raw = cfg.raw.get("conditions", [])
    values = [t.get("value") for t in raw if isinstance(t, dict)] if isinstance(raw, list) else []
    return tuple(dict.fromkeys(v for v in values if _names_a_coefficient(v)))


def _coefficients(cfg: RunConfig, pde: PDE, domain: Domain) -> dict:
    p = f"{cfg.path} [coefficients]"
    table = cfg.raw.get("coefficients", {})
    readers = pde.coefficient_names + tuple(
        n for n in _condition_unknowns(cfg) if n not in pde.coefficient_names)
    out = {}
    for name, value in table.items():
        if name not in readers:
            _fail(p, f"{name!r} is not a coefficient of the {pde.name} PDE; its coefficients are "
                  f"{list(pde.coefficient_names)}" + _suggest(name, pde.coefficient_names)
                  + " (a coefficient only a condition reads is named by that condition's "
                  "value, value = \"name\")")
        if isinstance(value, dict) and "field" in value:
            out[name] = _field(value, f"{p} {name}", name, domain)
        else:
            out[name] = _quantity(value, f"{p} {name}")
    missing = [n for n in pde.coefficient_names if n not in out]
    if missing:
        _fail(p, f"coefficient(s) {missing} of the {pde.name} PDE have neither a value nor a "
              f"prior; add e.g. {missing[0]} = {{ prior = \"LogNormal\", loc = 0.0, scale = 1.0 }}"
              f" or {missing[0]} = 1.0 if it is known")
    return out


def _resolve_file(cfg: RunConfig, value, path: str) -> Path:
    """The file a config names, relative to the config's folder (it is only ever read)."""
    if not isinstance(value, str) or not value.strip() or "\0" in value:
        _fail(path, f"expected a file name, got {_show(value)}")
    file = Path(value)
    return file if file.is_absolute() else cfg.base_dir / file


def _column(value, path: str, *, optional=False):
    """A column or variable name: checked here so the message names the config key."""
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value:
        _fail(path, f"expected a column or variable name (a non-empty string), got "
              f"{_show(value)}")
    return value


def _coords_map(value, domain: Domain, path: str) -> dict:
    if value is None:
        return {n: n for n in domain.coord_names}
    if not isinstance(value, dict):
        _fail(path, f"expected a table such as {{ x = \"x\", t = \"time\" }}, got "
              f"{_show(value)}")
    extra = sorted(set(value) - set(domain.coord_names))
    missing = [n for n in domain.coord_names if n not in value]
    if extra or missing:
        whose = "the domain's" if isinstance(domain, Domain) else "the field's"
        _fail(path, f"must map exactly {whose} coordinates {list(domain.coord_names)} to "
              f"column names; missing {missing}, unexpected {extra}")
    return {n: _column(value[n], f"{path} {n}") for n in domain.coord_names}


def _observations(cfg, table, domain, path, *, value_key, group=None, value_label=None,
                  allow_missing=False):
    """Load and validate one sensor file; ``allow_missing`` leaves empty cells of the value
    (NaN) to the caller, which validates what it keeps."""
    from bpinn.data import FORMATS, DataError

    file = _resolve_file(cfg, table["file"], f"{path} file")
    coords = _coords_map(table["coords"], domain, f"{path} coords")
    value = _column(table[value_key], f"{path} {value_label or value_key}")
    group = _column(group, f"{path} group", optional=True)
    fmt = table["format"]
    if fmt is not None and not (isinstance(fmt, str) and fmt.lower() in FORMATS):
        _fail(f"{path} format", f"unknown format {_show(table['format'])}; valid: "
              f"{', '.join(FORMATS)}, or leave it out to infer it from the file's suffix")
    try:
        obs = load_observations(file, coords=coords, value=value, group=group,
                                format=table["format"])
        if not allow_missing:
            validate_observations(obs, domain)
    except DataError as err:
        raise ConfigError(str(err)) from None
    return obs


def _system_observations(cfg, table, domain, path, outputs):
    """The readings of a system: ``[data] value`` maps outputs to columns, e.g.
    ``{ u = "prey", v = "predator" }``. Each column is read with the same coordinates; an empty
    cell means that output was not read there (in a table with one column per output not every
    output is read at every point). The readings' groups are the outputs they measure, in the
    order of ``[problem] outputs``; an output without a column is inferred from the physics
    alone."""
    import numpy as np

    from bpinn.data import DataError, Observations

    columns = table["value"]
    if table["group"] is not None:
        _fail(f"{path} group", f"a system's readings are grouped by output {list(outputs)}; "
              "a sensor group column is not supported with several outputs")
    if table["holdout"]:
        _fail(f"{path} holdout", "holding out readings is supported for a single unknown "
              "function, not a system")
    if not isinstance(columns, dict) or not columns:
        _fail(f"{path} value", f"a system with outputs {list(outputs)} needs a table mapping "
              f"outputs to columns, such as {{ {outputs[0]} = \"column\" }}, got "
              f"{_show(columns)}")
    unknown = sorted(set(columns) - set(outputs))
    if unknown:
        _fail(f"{path} value", f"{unknown} are not outputs of the system; valid: "
              f"{list(outputs)}")
    parts = []
    for name in (o for o in outputs if o in columns):
        obs = _observations(cfg, {**table, "value": columns[name]}, domain, f"{path} value",
                            value_key="value", value_label=name, allow_missing=True)
        read = np.isfinite(obs.values)
        if not read.any():
            _fail(f"{path} value {name}", f"column {columns[name]!r} of {obs.origin} has no "
                  "readings")
        parts.append((name, obs.coords[read], obs.values[read]))
    try:
        obs = Observations(
            coords=np.concatenate([c for _, c, _ in parts]),
            values=np.concatenate([v for _, _, v in parts]),
            group_index=np.concatenate([np.full(len(v), k) for k, (_, _, v) in
                                        enumerate(parts)]),
            group_names=tuple(n for n, _, _ in parts), coord_names=domain.coord_names,
            origin=obs.origin, value_name=", ".join(columns.values()),
            coord_columns=obs.coord_columns)
        validate_observations(obs, domain)
    except DataError as err:
        raise ConfigError(str(err)) from None
    return obs


def _condition_output(value, path: str, outputs) -> int | None:
    """``output`` of a condition: which unknown function of a system it is on (required for a
    system; a single unknown function takes none)."""
    if len(outputs) == 1:
        if value is not None and value != outputs[0]:
            _fail(path, f"only a system ([problem] outputs) has several outputs; this problem's "
                  f"one unknown is {outputs[0]!r}: leave output out")
        return None
    if value not in outputs:
        _fail(path, f"a condition of a system must name the output it is on, one of "
              f"{list(outputs)}; got " + ("none" if value is None else _show(value)))
    return outputs.index(value)


def _unknown_value(c: dict, path: str, coefficients: dict, domain: Domain) -> UnknownValue:
    """``value = "name"``: the condition's value is the coefficient ``name``, declared under
    [coefficients] with a prior (a number) or as a field over the coordinates that vary along
    the condition's face (x for an initial value; t, say, for a wall in time)."""
    name = c["value"]
    if name not in coefficients:
        _fail(path, f"expected a number, 'module:function' (a function in a module beside the "
              f"config) or the name of a coefficient declared under [coefficients]; {name!r} is "
              "none of these. An unknown value is declared there, e.g. "
              f"{name} = {{ prior = \"Normal\", loc = 0.0, scale = 1.0 }} or, for a value that "
              f"varies along the boundary, {name} = {{ field = \"gp\", over = [...] }}")
    spec = coefficients[name]
    if c["kind"] == "periodic":
        _fail(path, "a periodic condition takes no value")
    if isinstance(spec, GaussianProcessField):
        if c["kind"] in ("initial", "initial_rate"):
            fixed = [domain.coord_names[domain.time_index]] if domain.has_time else []
        elif c["kind"] in ("dirichlet", "neumann") and isinstance(c["boundary"], str):
            try:
                axes = {a for a, _ in faces(domain, c["boundary"])}
            except ValueError as err:
                raise ConfigError(f"{path}: {err}") from None
            # held fixed on every face (one axis for a named face; none for the whole boundary
            # of a 2-D domain, whose value may vary along the perimeter)
            fixed = [domain.coord_names[a] for a in axes] if len(axes) == 1 else []
        else:
            fixed = []
        clash = [a for a in spec.axis_names if a in fixed]
        if clash:
            varying = [n for n in domain.coord_names if n not in fixed]
            _fail(path, f"the field {name!r} varies over {clash}, which stay fixed on this "
                  f"{c['kind']} condition's points; declare it over the coordinates that vary "
                  f"there: [coefficients] {name} = {{ field = \"gp\", over = {varying} }}")
    return UnknownValue(name)


def _conditions(cfg: RunConfig, domain: Domain, outputs: tuple[str, ...],
                coefficients: dict) -> tuple[Condition, ...]:
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
                                value_key="value", value_label="value_column")
            points, targets = obs.coords, obs.values
            value = 0.0
        elif _names_a_coefficient(c["value"]):
            value = _unknown_value(c, f"{p} value", coefficients, domain)
        else:
            value = _function_or_number(c["value"], f"{p} value", cfg.base_dir, domain)
        hard = _bool(c["hard"], f"{p} hard")
        output = _condition_output(c["output"], f"{p} output", outputs)
        try:
            cond = Condition(kind=c["kind"], boundary=c["boundary"], value=value, hard=hard,
                             points=points, targets=targets, output=output)
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


class _FieldBox:
    """The box a field's readings must lie in: the domain along the field's own axes (what
    ``_observations`` needs of a domain)."""

    def __init__(self, spec: GaussianProcessField):
        import numpy as np

        self.coord_names = spec.axis_names
        self.lower, self.upper = np.asarray(spec.lower), np.asarray(spec.upper)

    def contains(self, points):
        import numpy as np

        p = np.asarray(points)
        return np.all((p >= self.lower) & (p <= self.upper), axis=-1)


def _field_data(cfg: RunConfig, coefficients: dict) -> tuple:
    """``[[field_data]]``: readings of coefficient fields, each in the field's coordinates."""
    raw = cfg.raw.get("field_data", [])
    if not isinstance(raw, list):
        _fail(f"{cfg.path} [[field_data]]", "expected an array of tables ([[field_data]])")
    fields = [n for n, v in coefficients.items() if isinstance(v, GaussianProcessField)]
    out = []
    for i, table in enumerate(raw):
        p = f"{cfg.path} [[field_data]][{i}]"
        t = _check_keys(table, _FIELD_DATA_KEYS, p)
        name = t["field"]
        if name not in fields:
            kind = ("a scalar coefficient: what is known of it belongs in its prior"
                    if name in coefficients else "not a coefficient of this config")
            _fail(f"{p} field", f"{_show(name)} is {kind}; readings can be given for a "
                  f"coefficient field (field = \"gp\"): {fields or 'none is declared'}"
                  + (_suggest(str(name), fields) if fields else ""))
        if f"sigma_{name}" in coefficients:
            _fail(f"{p} field", f"the readings' noise sd is named sigma_{name}, which is "
                  "already a coefficient's name; rename that coefficient")
        spec = coefficients[name]
        obs = _observations(cfg, {**t, "value": name if t["value"] is None else t["value"]},
                            _FieldBox(spec), p, value_key="value")
        log = _bool(t["log"], f"{p} log")
        if log and not spec.log:
            _fail(f"{p} log", f"readings of log {name} need a field on the log scale, but "
                  f"[coefficients] {name} has log = false (it may be negative); read {name} "
                  "itself (log = false)")
        out.append(FieldReadings(field=name, observations=obs,
                                 noise=_quantity(t["noise"], f"{p} noise", positive=True),
                                 log=log))
    repeated = sorted({r.field for r in out if [q.field for q in out].count(r.field) > 1})
    if repeated:
        _fail(f"{cfg.path} [[field_data]]", f"field(s) {repeated} are read in more than one "
              "table; put each field's readings in one file (one noise sd per field)")
    return tuple(out)


def build_problem(cfg: RunConfig) -> Problem:
    """Load the data, resolve functions and return the validated ``Problem``."""
    domain = _domain(cfg)
    pde = _pde(cfg, domain)
    coefficients = _coefficients(cfg, pde, domain)
    p = f"{cfg.path} [data]"
    data = _check_keys(cfg.raw["data"], _SCHEMA["data"], p)
    if pde.is_system:
        obs = _system_observations(cfg, data, domain, p, pde.outputs)
    else:
        obs = _observations(cfg, data, domain, p, value_key="value", group=data["group"])
    noise = _quantity(data["noise"], f"{p} noise", positive=True)
    per_group = _bool(data["per_group_noise"], f"{p} per_group_noise")
    if per_group and data["group"] is None and not pde.is_system:
        _fail(f"{p} per_group_noise", "needs a 'group' column naming each reading's sensor group")
    obs, holdout = _held_out(obs, data, per_group, p)

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
        _fail(f"{p} likelihood", f"unknown likelihood {_show(likelihood)}; valid: "
              f"{', '.join(map(repr, _LIKELIHOODS))}" + _suggest(str(likelihood), _LIKELIHOODS))
    student_t_df = _number(data["student_t_df"], f"{p} student_t_df", positive=True)
    conditions = _conditions(cfg, domain, pde.outputs, coefficients)
    reference = _user_forward(prob["reference"], f"{cfg.path} [problem] reference", cfg.base_dir,
                             domain, coefficients, pde.outputs)

    source_data = source_noise = None
    if "source_data" in cfg.raw:
        ps = f"{cfg.path} [source_data]"
        if pde.is_system:
            _fail(ps, "measured source values are supported for a single unknown function, not "
                  f"a system with outputs {list(pde.outputs)}")
        sd = _check_keys(cfg.raw["source_data"], _SCHEMA["source_data"], ps)
        source_data = _observations(cfg, sd, domain, ps, value_key="value")
        source_noise = _quantity(sd["noise"], f"{ps} noise", positive=True)

    field_data = _field_data(cfg, coefficients)
    try:
        problem = Problem(
            domain=domain, pde=pde, coefficients=coefficients, observations=obs, noise=noise,
            conditions=conditions, source=source, source_description=source_text,
            source_data=source_data, source_noise=source_noise, per_group_noise=per_group,
            likelihood=likelihood, student_t_df=student_t_df,
            truth=_truth(cfg, coefficients, domain),
            holdout=holdout, reference=reference, field_data=field_data,
        )
    except ValueError as err:
        raise ConfigError(f"{cfg.path}: {err}") from None
    return problem


def _truth(cfg: RunConfig, coefficients: dict, domain: Domain) -> dict:
    """``[truth]`` with each field's 'module:function' resolved to the function of the point
    (checked once at the domain's centre), and a number given for a field made the constant
    function; other numbers pass through."""
    out = dict(cfg.truth)
    for name, value in cfg.truth.items():
        path = f"{cfg.path} [truth] {name}"
        is_field = isinstance(coefficients.get(name), GaussianProcessField)
        if isinstance(value, str):
            if not is_field:
                _fail(path, "a 'module:function' truth is for a coefficient field (a table with "
                      f"field = \"gp\" in [coefficients]); {name} takes a number")
            out[name] = _function_or_number(value, path, cfg.base_dir, domain)
        elif is_field:  # a constant field
            constant = _number(value, path)
            out[name] = lambda z, v=constant: v + 0.0 * z[0]
    return out


def _user_function(value, path: str, base_dir: Path):
    """A key that only takes a ``"module:function"`` (not a number): the resolved function."""
    if not isinstance(value, str) or ":" not in value:
        _fail(path, f"expected 'module:function', got {_show(value)}")
    return _function_or_number(value, path, base_dir)


def _user_forward(value, path: str, base_dir: Path, domain: Domain, coefficients: dict,
                  outputs=("u",)):
    """``[problem] reference``: the user's own forward model ``forward(points, coeffs) -> u``
    (the classical solver or closed form of a user-defined PDE; for a system, one column per
    output), or None. Called once at the domain's centre with every coefficient at its value or
    prior median, so a wrong signature or result is reported here."""
    import jax
    import jax.numpy as jnp

    if value is None:
        return None
    forward = _user_function(value, path, base_dir)
    points = jnp.asarray((domain.lower + domain.upper) / 2)[None]

    def typical(c):  # the known value, or the prior's median (a field: its prior mean)
        if isinstance(c, Fixed):
            return jnp.asarray(c.value, float)
        if isinstance(c, GaussianProcessField):
            return FieldValue(c, jnp.zeros(c.num_latent))
        prior = c.distribution()
        try:
            return jnp.broadcast_to(prior.icdf(jnp.asarray(0.5)), prior.batch_shape)
        except Exception:  # a family without a quantile function here (Gamma): sample it
            return jnp.median(prior.sample(jax.random.key(0), (1001,)), axis=0)

    coeffs = {n: typical(c) for n, c in coefficients.items()}
    shown = ", ".join(f"{n!r}: a field (a function of one point)" if isinstance(v, FieldValue)
                      else f"{n!r}: {float(jnp.ravel(v)[0]):.4g}" for n, v in coeffs.items())
    try:
        out = jnp.asarray(forward(points, coeffs))
    except (Exception, SystemExit) as err:  # user code: any failure is a bad config value
        _fail(path, f"calling {value!r} as forward(points, coeffs) with points = "
              f"{points.tolist()} (one row per point, the domain's coordinates in order "
              f"{list(domain.coord_names)}) and coeffs = {{{shown}}} failed with "
              f"{type(err).__name__}: {_show_error(err)}; it must return u at each point, one "
              "number per row, written with jax.numpy so that NUTS can differentiate it")
    if len(outputs) > 1:
        if out.shape != (1, len(outputs)) or not bool(jnp.all(jnp.isfinite(out))):
            _fail(path, f"forward(points, coeffs) of a system must return an array of shape "
                  f"(number of points, {len(outputs)}), one finite column per output "
                  f"{list(outputs)}; for one point it returned shape {out.shape}")
        return forward
    if out.shape not in ((1,), ()) or not bool(jnp.all(jnp.isfinite(out))):
        _fail(path, f"forward(points, coeffs) must return one finite number per row of points; "
              f"for one point it returned {_show(out.tolist())} (shape {out.shape})")
    return forward


def _held_out(obs, data: dict, per_group: bool, p: str):
    """Split off the sensor groups ``[data] holdout`` names: (fitted, held out or None).

    Held-out readings stay out of the likelihood; the run predicts them, so the report can say
    how often the predictive intervals cover readings the fit never saw.
    """
    names = data["holdout"]
    where = f"{p} holdout"
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        _fail(where, f"expected a list of sensor group names, got {_show(names)}")
    if not names:
        return obs, None
    if data["group"] is None:
        _fail(where, "needs a 'group' column naming each reading's sensor group")
    unknown = [n for n in names if n not in obs.group_names]
    if unknown:
        _fail(where, f"no sensor group(s) {unknown} in {obs.origin}; the groups are "
              f"{list(obs.group_names)}" + _suggest(unknown[0], obs.group_names))
    kept = [g for g in obs.group_names if g not in names]
    if not kept:
        _fail(where, "holds out every sensor group; keep at least one to fit")
    if per_group:
        _fail(where, "cannot be combined with per_group_noise: a held-out group's noise sd "
              "would never be learnt")
    return obs.groups(kept), obs.groups(list(dict.fromkeys(names)))


def build_settings(cfg: RunConfig, domain: Domain, outputs=("u",), num_equations: int = 1):
    """The ``ModelSettings`` of the ``[model]`` section; the network has one output per unknown
    function (``Problem.pde.outputs``), and ``equation_scales`` one entry per equation
    (``Problem.pde.num_equations``)."""
    from bpinn.models.likelihood import ModelSettings

    p = f"{cfg.path} [model]"
    m = _check_keys(cfg.raw.get("model", {}), _SCHEMA["model"], p)
    try:
        network = Network(
            input_dim=domain.ndim, width=_count(m["width"], f"{p} width", "width", 1),
            depth=_count(m["depth"], f"{p} depth", "depth", 1),
            kind=m["network"], activation=m["activation"],
            num_fourier=_count(m["num_fourier"], f"{p} num_fourier", "num_fourier", 1),
            fourier_scale=_fourier_scale(m["fourier_scale"], f"{p} fourier_scale", domain),
            siren_omega0=_number(m["siren_omega0"], f"{p} siren_omega0", positive=True),
            fourier_seed=cfg.inference.seed, output_dim=len(outputs),
        )
        if network.num_params > _MAX_WEIGHTS:
            _fail(p, f"width = {network.width} and depth = {network.depth} give "
                  f"{network.num_params} network weights; at most {_MAX_WEIGHTS} are supported "
                  "(more would exhaust memory)")
        settings = ModelSettings(
            network=network,
            weight_prior_scale=_number(m["weight_prior_scale"], f"{p} weight_prior_scale",
                                       positive=True),
            fan_in_scaled=_bool(m["fan_in_scaled"], f"{p} fan_in_scaled"),
            num_collocation=_count(m["num_collocation"], f"{p} num_collocation",
                                   "num_collocation", 1),
            residual_noise=_quantity(m["residual_noise"], f"{p} residual_noise", positive=True),
            condition_noise=_quantity(m["condition_noise"], f"{p} condition_noise",
                                      positive=True),
            num_condition_points=_count(m["num_condition_points"], f"{p} num_condition_points",
                                        "num_condition_points", 1),
            residual_gradient_noise=(
                None if m["residual_gradient_noise"] is None else _number(
                    m["residual_gradient_noise"], f"{p} residual_gradient_noise", positive=True)),
            residual_form=m["residual_form"],
            num_test_functions=_count(m["num_test_functions"], f"{p} num_test_functions",
                                      "num_test_functions", 1),
            equation_scales=_equation_scales(m["equation_scales"], f"{p} equation_scales",
                                             num_equations),
        )
        if settings.residual_form == "weak" and cfg.inference.map_resample_rounds:
            _fail(f"{cfg.path} [inference] map_resample_rounds",
                  "moves collocation points, but [model] residual_form = 'weak' puts them at "
                  "fixed Gauss-Legendre nodes; use one or the other")
    except ConfigError:
        raise
    except ValueError as err:
        raise ConfigError(f"{p}: {err}") from None
    _check_truth(cfg)  # last: a config that builds must also summarise
    return settings


def _equation_scales(value, path: str, num_equations: int):
    """One positive factor per equation of a system, or ``None``."""
    if value is None:
        return None
    if num_equations == 1:
        _fail(path, "scales the equations of a system against each other, but this PDE has "
              "one equation; set [model] residual_noise to its residual's sd instead")
    if not isinstance(value, list) or len(value) != num_equations:
        _fail(path, f"expected a list of {num_equations} numbers, one per equation in the order "
              f"the operator returns them, got {_show(value)}")
    return tuple(_number(v, f"{path}[{i}]", positive=True) for i, v in enumerate(value))


def _fourier_scale(value, path: str, domain: Domain):
    """One positive number, or one per coordinate in the order (x[, y][, t])."""
    if not isinstance(value, list):
        return _number(value, path, positive=True)
    if len(value) != domain.ndim:
        _fail(path, f"expected one scale per coordinate {domain.coord_names}, got {len(value)}")
    return tuple(_number(v, f"{path}[{i}]", positive=True) for i, v in enumerate(value))


def _check_truth(cfg: RunConfig) -> None:
    """``[truth]`` names a coefficient or a scale (a list only for per-group sigma): a typo
    would otherwise only surface when the summary is written, after the whole run."""
    p = f"{cfg.path} [truth]"
    data = cfg.raw["data"]
    per_group = data.get("per_group_noise") is True and isinstance(data.get("noise"), dict)
    read_fields = [t.get("field") for t in cfg.raw.get("field_data", [])
                   if isinstance(t, dict) and isinstance(t.get("field"), str)]
    valid = sorted(set(cfg.raw.get("coefficients", {}))
                   | {"sigma", "sigma_pde", "sigma_bc", "sigma_source"}
                   | {f"sigma_{name}" for name in read_fields})
    for name, value in cfg.truth.items():
        entry = per_group and name.startswith("sigma[") and name.endswith("]")
        if name not in valid and not entry:
            _fail(f"{p} {name}", "not a coefficient or noise scale of this config; valid: "
                  f"{valid}" + (", or sigma[GROUP] for one group" if per_group else "")
                  + _suggest(name, valid))
        if isinstance(value, list) and not (name == "sigma" and per_group):
            _fail(f"{p} {name}", f"expected a number, got {_show(value)}")


__all__ = ["ConfigError", "RunConfig", "InferenceSettings", "load_config", "build_problem",
           "build_settings", "Fixed", "Prior"]
