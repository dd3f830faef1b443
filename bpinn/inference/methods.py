"""One interface for every inference method: a context in, draws on the flat target out.

A method is a function ``run(rng_key, ctx) -> Draws``. It sees the posterior only as the flat
``Target`` (plus the model, for methods that exploit its structure, such as last-layer Laplace)
and returns draws of the flat unconstrained position with shape ``(chain, draw, dim)``. Everything
downstream (named sites, predictions at the sensors, the DataTree, summary.json) is the same for
all methods, so their results can be compared cell for cell.

Methods are looked up by name in ``METHODS`` (``"name" -> "module:attribute"``), imported on
first use so that choosing one method does not import the others' dependencies.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import jax.numpy as jnp

from bpinn.inference.map import MAPResult
from bpinn.inference.target import Target


@dataclass(frozen=True, eq=False)
class MethodContext:
    """Everything a method may use.

    Attributes
    ----------
    model : the ``bpinn.models.likelihood.BPINN`` (problem, settings, network).
    target : the posterior as a flat log density.
    settings : the ``[inference]`` settings (``bpinn.config.InferenceSettings``).
    starts : (num_chains, dim) initial positions drawn from the model's initialisation.
    map_fit : MAP fits from ``starts`` (None for methods with ``needs_map=False``).
    progress : show progress bars on stderr.
    timing : ``map_s`` and ``compile_s`` spent on the MAP fits.
    map_restarts : how many times MAP fits that diverged were restarted from fresh starts.
    map_info : what the MAP-training remedies did (balanced term weights, collocation
        resampling rounds); empty when none was on.
    """

    model: Any
    target: Target
    settings: Any
    starts: jnp.ndarray
    map_fit: MAPResult | None
    progress: bool = False
    timing: dict = field(default_factory=dict)  # seconds spent building the context (MAP)
    map_restarts: int = 0
    map_info: dict = field(default_factory=dict)

    def best_map(self) -> jnp.ndarray:
        """The MAP fit with the highest log density."""
        return self.map_fit.best()

    def chain_centers(self) -> jnp.ndarray:
        """(num_chains, dim) centres of the MAP-whitened samplers: every chain at the best MAP
        (``chain_init = "best_map"``) or one MAP fit per chain (``"per_chain"``)."""
        if self.settings.chain_init == "best_map":
            return jnp.broadcast_to(self.best_map(), self.map_fit.position.shape)
        return self.map_fit.position

    def weight_damping(self) -> jnp.ndarray:
        """(dim,) ``weight_damping`` on the network weights, 0 on coefficients and scales: added
        to the preconditioning Hessian (see ``nuts.curvature_preconditioner`` for why)."""
        damping = jnp.zeros(self.target.dim)
        if "weights" in self.target.site_slices:
            weights = slice(*self.target.site_slices["weights"])
            damping = damping.at[weights].set(self.settings.weight_damping)
        return damping


class Draws(NamedTuple):
    """What every method returns.

    position : (chain, draw, dim) flat unconstrained positions.
    sample_stats : ArviZ-named per-draw statistics, each (chain, draw) (empty when none apply).
    info : JSON-serialisable facts about the run (step sizes, final ELBO, members, ...);
        ``info["warnings"]``, a list of strings, go into the run's warnings.
    timing : seconds per phase (``compile_s``, ``warmup_s``, ``sampling_s``, or method-specific
        keys such as ``optimization_s``).
    target, predictor : for methods that sample a model of their own (the classical reference
        inversion): its target, and ``predictor(points)``, which returns a function from named
        values to u at those points (the readings, the field grid, held-out sensors). The
        Laplace methods give a predictor only: the network linearised at their centre.
    """

    position: jnp.ndarray
    sample_stats: dict
    info: dict
    timing: dict
    target: Target | None = None  # the target ``position`` lives in; None: ctx.target
    predictor: Callable | None = None  # points -> (named values -> u there); None: network


# The methods whose ``Method.implicit_prior`` is "removed" (svi_* in whitened coordinates only).
REMOVING_METHODS = ("nuts", "chees", "hmc", "mclmc", "pathfinder", "svi_meanfield",
                    "svi_lowrank", "svi_structured")

# The limitation every method that keeps the implied prior states (added by ``Method``).
KEPT_LIMITATION = (
    "samples the posterior with the prior the physics terms imply on the coefficients left in "
    f"(the methods that remove it: {', '.join(REMOVING_METHODS)}; [inference] implicit_prior): "
    "measured 1.3 to 1.9 exact sds low on the heat case and the trivial solution on the "
    "nonlinear Fisher-KPP case; to cross-check them, run them with implicit_prior = 'ignored'")

# The limitation every method built on posterior modes states instead (added by ``Method``).
MODE_LIMITATION = (
    "built on modes (MAP fits) of the posterior with the prior the physics terms imply on the "
    "coefficients left in: a mode feels that prior's peak but not its volume, the part that "
    "moves the sampled posterior, so removing the measured prior would over-correct it (the "
    "GGN Laplace at the heat case's MAP sat 0.14 exact sds from the exact mean, re-centred at "
    "the corrected posterior's mode 1.56 sds high; docs/sampling.md, section 7); on the "
    "nonlinear Fisher-KPP case it sat 1.5 to 2.2 gold sds low; cross-check with nuts")


@dataclass(frozen=True)
class Method:
    """An inference method and what a user must know about it.

    exact_mcmc : True when the draws are asymptotically exact (an MCMC chain targeting the
        posterior); False for approximations (VI, Laplace, ensembles).
    limitations : plain-language statements of what its results cannot show; they go into
        summary.json and the report.
    needs_map : whether the caller must run the shared MAP fit first.
    check : ``check(model, settings)`` raises ``ValueError`` naming the unsupported setting,
        before any work starts; None when every configuration is supported.
    implicit_prior : what the method does with the prior the physics terms imply on the
        coefficients (``bpinn.inference.implicit_prior``): "removed" where ``[inference]
        implicit_prior`` asks (its ``run`` calls ``implicit_prior.for_method``), "kept" (it
        samples the posterior with it left in), "mode" (built on posterior modes, which only
        part of it moves), "none" (no network, no implied prior). For "kept" and "mode" an
        explicit "measured" or "corrected" is refused.
    """

    name: str
    run: Callable[[Any, MethodContext], Draws]
    exact_mcmc: bool
    description: str
    limitations: tuple[str, ...] = ()
    needs_map: bool = True
    check: Callable[[Any, Any], None] | None = field(default=None)
    implicit_prior: str = "kept"

    def __post_init__(self):
        stated = {"kept": KEPT_LIMITATION, "mode": MODE_LIMITATION}.get(self.implicit_prior)
        if stated is not None and stated not in self.limitations:
            object.__setattr__(self, "limitations", (*self.limitations, stated))


METHODS: dict[str, str] = {
    "nuts": "bpinn.inference.nuts:METHOD",
    "numpyro_nuts": "bpinn.inference.numpyro_mcmc:METHOD",
    "chees": "bpinn.inference.chees:METHOD",
    "hmc": "bpinn.inference.hmc:METHOD",
    "mclmc": "bpinn.inference.mclmc:METHOD",
    "reference": "bpinn.inference.reference:METHOD",
    "laplace": "bpinn.inference.laplace:LAPLACE",
    "laplace_last_layer": "bpinn.inference.laplace:LAPLACE_LAST_LAYER",
    "ensemble": "bpinn.inference.ensemble:ENSEMBLE",
    "rto": "bpinn.inference.ensemble:RTO",
    "pathfinder": "bpinn.inference.variational:PATHFINDER",
    "svi_meanfield": "bpinn.inference.variational:SVI_MEANFIELD",
    "svi_lowrank": "bpinn.inference.variational:SVI_LOWRANK",
    "svi_structured": "bpinn.inference.variational:SVI_STRUCTURED",
}


def method_names() -> tuple[str, ...]:
    return tuple(METHODS)


def get_method(name: str) -> Method:
    """The method registered as ``name``; ``ValueError`` listing the valid names otherwise."""
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; valid methods are {', '.join(METHODS)}")
    module_name, attribute = METHODS[name].split(":")
    method = getattr(importlib.import_module(module_name), attribute)
    if method.name != name:
        raise RuntimeError(f"method table entry {name!r} points at method {method.name!r}")
    return method
