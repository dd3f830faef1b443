"""bpinn: Bayesian inverse problems with physics-informed neural networks.

Public API (re-exports only). ``bpinn.run`` does everything a config describes; the pieces are
available for users who assemble a problem in Python.
"""

__version__ = "0.1.0"  # before the imports: submodules record it in their results

from bpinn.api import RunResult, prepare, run
from bpinn.config import ConfigError, build_problem, build_settings, load_config
from bpinn.data import DataError, Observations, load_observations, validate_observations
from bpinn.inference.map import fit_map
from bpinn.inference.nuts import run_nuts
from bpinn.inference.results import format_summary, read_results, summarize, write_results
from bpinn.inference.target import make_target
from bpinn.models.conditions import Condition
from bpinn.models.likelihood import BPINN, ModelSettings, build_model
from bpinn.models.networks import Network
from bpinn.models.pdes import BUILTIN_PDES, make_pde
from bpinn.models.priors import Fixed, Prior
from bpinn.models.problem import PDE, Domain, Problem

__all__ = [
    "BPINN", "BUILTIN_PDES", "PDE", "Condition", "ConfigError", "DataError", "Domain", "Fixed",
    "ModelSettings", "Network", "Observations", "Prior", "Problem", "RunResult", "build_model",
    "build_problem", "build_settings", "fit_map", "format_summary", "load_config",
    "load_observations", "make_pde", "make_target", "prepare", "read_results", "run", "run_nuts",
    "summarize", "validate_observations", "write_results",
]
