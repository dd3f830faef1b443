"""bpinn: Bayesian inverse problems with physics-informed neural networks.

Public API (re-exports only). ``bpinn.run`` does everything a config describes; the pieces are
available for users who assemble a problem in Python.
"""

__version__ = "0.1.0"  # before the imports: submodules record it in their results

from bpinn.api import RunResult, posterior_samples, prepare, run
from bpinn.calibration import calibrate, calibration_summary
from bpinn.config import ConfigError, build_problem, build_settings, load_config
from bpinn.data import DataError, Observations, load_observations, validate_observations
from bpinn.diagnostics import identify, rank_sensor_candidates
from bpinn.inference.map import fit_map
from bpinn.inference.methods import Method, get_method, method_names
from bpinn.inference.nuts import run_nuts
from bpinn.inference.results import format_summary, read_results, summarize, write_results
from bpinn.inference.target import make_target
from bpinn.models.conditions import Condition
from bpinn.models.likelihood import BPINN, ModelSettings, build_model
from bpinn.models.networks import Network
from bpinn.models.pdes import BUILTIN_PDES, make_pde
from bpinn.models.priors import Fixed, Prior
from bpinn.models.problem import PDE, Domain, Problem
from bpinn.reference.baseline import least_squares_estimate
from bpinn.reference.registry import problem_forward

__all__ = [
    "BPINN", "BUILTIN_PDES", "PDE", "Condition", "ConfigError", "DataError", "Domain", "Fixed",
    "Method", "ModelSettings", "Network", "Observations", "Prior", "Problem", "RunResult",
    "build_model", "build_problem", "build_settings", "calibrate", "calibration_summary",
    "fit_map", "format_summary", "get_method", "identify", "least_squares_estimate",
    "load_config", "load_observations", "make_pde", "make_target", "method_names",
    "posterior_samples", "prepare", "problem_forward", "rank_sensor_candidates", "read_results",
    "run", "run_nuts", "summarize", "validate_observations", "write_results",
]
