"""The end-to-end path: config -> problem -> B-PINN -> MAP -> sampler -> DataTree + summary.

Each step is a plain function call; ``run`` strings them together and is what ``bpinn run``
calls. It returns the results and writes nothing unless given an output directory.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from bpinn import __version__
from bpinn.checkpoint import CheckpointStore
from bpinn.config import ConfigError, RunConfig, build_problem, build_settings, load_config
from bpinn.data import file_sha256
from bpinn.diagnostics import identify, local_information
from bpinn.inference import implicit_prior
from bpinn.inference.collocation import resample_collocation
from bpinn.inference.map import fit_map
from bpinn.inference.methods import Draws, Method, MethodContext, get_method
from bpinn.inference.results import (
    build_datatree,
    field_summary,
    field_warnings,
    summarize,
    write_results,
)
from bpinn.inference.target import make_target
from bpinn.models.fields import field_grid, values_on
from bpinn.models.likelihood import BPINN, build_model
from bpinn.models.priors import Fixed
from bpinn.utils import configure_jax

NUM_PRIOR_DRAWS = 1000
_VERSIONED = ("jax", "jaxlib", "numpyro", "blackjax", "optax", "arviz-base", "arviz-stats",
              "numpy", "xarray")


@dataclass(frozen=True)
class RunResult:
    datatree: object  # xarray.DataTree
    summary: dict
    paths: dict  # name -> Path of written files (empty when not written)


def versions() -> dict[str, str]:
    out = {"bpinn": __version__, "python": platform.python_version()}
    for name in _VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def prepare(config: RunConfig) -> BPINN:
    """Config -> the B-PINN model (loads and validates data; raises ConfigError on bad input)."""
    problem = build_problem(config)
    settings = build_settings(config, problem.domain, problem.pde.outputs,
                              problem.pde.num_equations)
    try:
        return build_model(problem, settings)
    except ValueError as err:
        raise ConfigError(f"{config.path} [model]: {err}") from None


class MAPError(RuntimeError):
    """The MAP optimisation diverged from every initialisation it was given."""


MAP_RESTARTS = 3  # fresh initialisations tried for MAP fits that diverged, before giving up


def method_context(model: BPINN, settings, target_key, init_key, *, needs_map: bool = True,
                   progress: bool = False) -> MethodContext:
    """The flat target, chain starts and (when ``needs_map``) the MAP fits every method starts
    from; ``settings`` is the ``[inference]`` table (``InferenceSettings``).

    A MAP fit that ends at a non-finite log density is restarted from a fresh initialisation
    (the other fits keep theirs), at most ``MAP_RESTARTS`` times; then :class:`MAPError`.
    """
    target = make_target(target_key, model.model)

    def draw_starts(key):
        return jnp.stack([target.from_constrained(model.initial_values(k))
                          for k in jax.random.split(key, settings.num_chains)])

    starts = draw_starts(init_key)
    fit, timing = None, {"map_s": None, "compile_s": 0.0}
    if not needs_map:
        return MethodContext(model=model, target=target, settings=settings, starts=starts,
                             map_fit=fit, progress=progress, timing=timing)
    t0, compile_s = time.perf_counter(), 0.0
    for attempt in range(MAP_RESTARTS + 1):
        fit = fit_map(
            target, starts, num_adam_steps=settings.map_adam_steps,
            learning_rate=settings.map_learning_rate, num_lbfgs_steps=settings.map_lbfgs_steps,
            physics_ramp=settings.map_physics_ramp, progress=progress,
            **_map_remedies(model, target, settings),
        )
        compile_s += fit.compile_seconds
        diverged = ~np.isfinite(np.asarray(fit.logdensity))
        if not diverged.any():
            break
        if attempt == MAP_RESTARTS:
            raise MAPError(
                f"the MAP optimisation diverged (non-finite log density) from "
                f"{int(diverged.sum())} of {settings.num_chains} initialisations even after "
                f"{MAP_RESTARTS} restarts from fresh ones; lower [inference] map_learning_rate "
                f"(now {settings.map_learning_rate:g}), or check that the priors and the "
                "residual and noise scales suit the data"
            )
        if progress:
            print(f"MAP diverged from {int(diverged.sum())} initialisation(s); restarting "
                  f"them from fresh ones ({attempt + 1} of {MAP_RESTARTS})", file=sys.stderr)
        fresh = draw_starts(jax.random.fold_in(init_key, attempt + 1))
        starts = jnp.where(jnp.asarray(diverged)[:, None], fresh, starts)
    map_info = {}
    if fit.term_weights is not None:
        map_info["term_weights"] = {k: np.asarray(v).tolist() for k, v in fit.term_weights.items()}
    if settings.map_resample_rounds:
        model, target, fit, map_info["collocation_resampling"] = _resample_collocation(
            model, target, fit, settings, target_key, init_key, progress=progress)
        compile_s += fit.compile_seconds
    timing.update(map_s=time.perf_counter() - t0 - compile_s, compile_s=compile_s)
    return MethodContext(model=model, target=target, settings=settings, starts=starts,
                         map_fit=fit, progress=progress, timing=timing, map_restarts=attempt,
                         map_info=map_info)


def _map_remedies(model: BPINN, target, settings) -> dict:
    """``fit_map`` keywords for the MAP-training remedies ``[inference]`` switches on."""
    training = {}
    if settings.map_causal_epsilon:
        training["causal_epsilon"] = settings.map_causal_epsilon
    if settings.map_time_marching:
        training["time_marching"] = True
    out = {"training": training}
    if settings.map_ntk_balance:
        from bpinn.ntk import balanced_weights, ntk_traces

        out["term_weights_fn"] = lambda flat: balanced_weights(ntk_traces(model, target, flat))
        out["rebalance_every"] = max(1, settings.map_adam_steps // 20)
    return out


def _resample_collocation(model: BPINN, target, fit, settings, target_key, init_key, *,
                          progress: bool):
    """``map_resample_rounds`` rounds of residual-based resampling of the collocation points,
    each followed by a refit from the current fits (Adam at a tenth of the learning rate for a
    quarter of the steps, no physics ramp: the fits are already in their basin; then L-BFGS)."""
    rounds = []
    for r in range(settings.map_resample_rounds):
        best = target.constrained(fit.best())
        model, info = resample_collocation(model, best, jax.random.fold_in(init_key, 10_000 + r),
                                           round_index=r)
        target = make_target(target_key, model.model)
        fit = fit_map(
            target, fit.position, num_adam_steps=settings.map_adam_steps // 4,
            learning_rate=settings.map_learning_rate / 10,
            num_lbfgs_steps=settings.map_lbfgs_steps, physics_ramp=0.0, progress=progress,
            **_map_remedies(model, target, settings),
        )
        if not np.all(np.isfinite(np.asarray(fit.logdensity))):
            raise MAPError(f"the MAP refit after resampling the collocation points (round "
                           f"{r + 1}) diverged; lower [inference] map_learning_rate or "
                           "map_resample_rounds")
        info["map_logdensity"] = float(np.max(np.asarray(fit.logdensity)))
        rounds.append(info)
        if progress:
            print(f"collocation resampled (round {r + 1}): mean |residual| on the pool "
                  f"{info['pool_mean_abs_residual']:.3g}, {info['share_in_top_decile']:.0%} of "
                  "the points in its top decile", file=sys.stderr)
    return model, target, fit, rounds


def checked_method(model: BPINN, settings) -> Method:
    """The method ``settings.method`` names; ``ValueError`` when it cannot handle the model."""
    method = get_method(settings.method)
    if method.implicit_prior != "none":
        implicit_prior.check_supported(
            settings, method.name, model=model,
            unsupported={"kept": "it samples the posterior with the implied prior left in",
                         "mode": "it is built on posterior modes, which feel only part of the "
                                 "implied prior"}.get(method.implicit_prior))
    if method.check is not None:
        method.check(model, settings)
    return method


class _Inference(NamedTuple):
    ctx: MethodContext
    draws: Draws
    prior_key: jax.Array
    predictive_key: jax.Array


class RunKeys(NamedTuple):
    """The keys a run's seed is split into, one per use."""

    target: jax.Array
    init: jax.Array
    sample: jax.Array
    prior: jax.Array
    predictive: jax.Array


def run_keys(seed: int) -> RunKeys:
    """The one place the seed is split, so ``run``, ``posterior_samples`` and the diagnostics
    that rebuild a run's starts and MAP fits (``bpinn ntk``) see the same keys."""
    return RunKeys(*jax.random.split(jax.random.key(seed), 5))


def _infer(model: BPINN, settings, method: Method, *, progress: bool) -> _Inference:
    """Run ``method`` on the model with the keys of ``run_keys``."""
    keys = run_keys(settings.seed)
    ctx = method_context(model, settings, keys.target, keys.init, needs_map=method.needs_map,
                         progress=progress)
    return _Inference(ctx, method.run(keys.sample, ctx), keys.prior, keys.predictive)


def _constrained_draws(inference: _Inference) -> dict:
    """Named constrained values of every draw, flattened over (chain, draw)."""
    draws = inference.draws
    target = draws.target or inference.ctx.target
    return jax.vmap(target.constrained)(draws.position.reshape(-1, draws.position.shape[-1]))


def _by_chain(values, chains: int, num_draws: int) -> np.ndarray:
    return np.asarray(values).reshape(chains, num_draws, *np.shape(values)[1:])


def posterior_samples(model: BPINN, settings, *, progress: bool = False) -> dict:
    """Run ``settings.method`` on a prepared model; named constrained draws (chain, draw, ...)
    of the reported sites. What ``run`` does without the results tree (calibration loops)."""
    return posterior_samples_and_info(model, settings, progress=progress)[0]


def posterior_samples_and_info(model: BPINN, settings, *,
                               progress: bool = False) -> tuple[dict, dict]:
    """:func:`posterior_samples` and the method's facts about the run (``method_info`` of
    summary.json: step sizes, the implied prior's measured shift, ...)."""
    inference = _infer(model, settings, checked_method(model, settings), progress=progress)
    chains, num_draws, _ = inference.draws.position.shape
    values = _constrained_draws(inference)
    draws = {n: _by_chain(values[n], chains, num_draws)
             for n in model.reported_sites if n in values}
    return draws, inference.draws.info


def _priors(model: BPINN) -> dict:
    """Reported site -> its prior (a ``Prior``), for the unknowns a user set priors on."""
    p = model.problem
    quantities = {n: p.coefficients[n] for n in model.unknown_coefficients}
    quantities.update({
        "sigma": p.noise, "sigma_pde": model.settings.residual_noise,
        "sigma_bc": model.settings.condition_noise, "sigma_source": p.source_noise,
    })
    quantities.update({r.noise_site: r.noise for r in p.field_data})
    return {n: q for n, q in quantities.items() if n in model.reported_sites}


def _prior_draws(rng_key, model: BPINN) -> dict:
    priors = _priors(model)
    out = {}
    keys = jax.random.split(rng_key, len(priors))
    for key, (name, q) in zip(keys, priors.items(), strict=True):
        draws = q.distribution().sample(key, (NUM_PRIOR_DRAWS,))
        if name == "sigma":
            draws = jnp.broadcast_to(draws[:, None] if model.noise_shape else draws,
                                     (NUM_PRIOR_DRAWS, *model.noise_shape))
        out[name] = np.asarray(draws)[None]
    return out


def _log_prior(model: BPINN, posterior: dict) -> dict:
    """Log prior density of each reported site at each posterior draw, per element (one noise
    scale per sensor group keeps its ``group`` dim; the priors of the elements are
    independent, and power-scaling sums them)."""
    out = {}
    for name, q in _priors(model).items():
        if name not in posterior:
            continue
        values = jnp.asarray(posterior[name])
        lp = q.distribution().log_prob(values)
        out[name] = np.asarray(lp)
    return out


def _posterior_arrays(model: BPINN, inference: _Inference, constrained: dict,
                      save_weights: bool):
    """Named posterior draws, predictions at the sensors and pointwise log likelihood."""
    draws = inference.draws
    chains, num_draws, _ = draws.position.shape
    obs = model.problem.observations
    predict = _predictor(model, draws)(obs.coords)

    def per_draw(values, key):
        u_pred = model.at_readings(predict(values))
        sigma = values.get("sigma", getattr(model.problem.noise, "value", None))
        d = model.data_distribution(u_pred, sigma)
        return d.sample(key), d.log_prob(jnp.asarray(obs.values)), u_pred

    keys = jax.random.split(inference.predictive_key, chains * num_draws)
    u_rep, loglik, u_pred = jax.jit(jax.vmap(per_draw))(constrained, keys)
    names = [n for n in model.reported_sites if n in constrained]
    if save_weights and "weights" in constrained:
        names.append("weights")
    posterior = {n: _by_chain(constrained[n], chains, num_draws) for n in names}
    shape = (chains, num_draws, obs.n)
    return (
        posterior,
        {"u_obs": np.asarray(u_rep).reshape(shape), "u_pred": np.asarray(u_pred).reshape(shape)},
        {"u_obs": np.asarray(loglik).reshape(shape)},
    )


# Grid points per axis of a coefficient field in the results (every draw is kept: the field is
# a few hundred numbers per draw, and its pointwise R-hat and ESS need them all).
COEFFICIENT_FIELD_POINTS = {1: (101,), 2: (21, 21), 3: (11, 11, 11)}


def _coefficient_fields(model: BPINN, constrained: dict, chains: int, num_draws: int):
    """Each unknown coefficient field on a grid over its axes, for every draw: (posterior
    entries (chain, draw, *grid), dims, coords). Dims are named ``<field>_<axis>``."""
    posterior, dims, coords = {}, {}, {}
    for name in model.field_coefficients:
        spec = model.problem.coefficients[name]
        axes, points = _coefficient_field_grid(spec)
        latent = _by_chain(constrained[name], chains, num_draws)
        values = np.asarray(jax.jit(values_on, static_argnums=0)(spec, latent, points))
        shape = tuple(len(a) for a in axes.values())
        posterior[name] = values.reshape(chains, num_draws, *shape)
        dims[name] = [f"{name}_{a}" for a in axes]
        coords.update({f"{name}_{a}": v for a, v in axes.items()})
    return posterior, dims, coords


# What a field's summary says about the prior the physics terms imply on it.
FIELD_IMPLIED_PRIOR = (
    "not removed: the measurement and removal of the prior the physics terms imply "
    "(docs/sampling.md, section 7) cover scalar coefficients only; on the reaction_field case "
    "study the B-PINN's band was narrower than the gold standard's (sd ratio 0.33 where k is "
    "largest), so compare with a reference solver where you have one")


def _coefficient_field_grid(spec):
    """(axis name -> coordinates, points) of the grid a coefficient field is stored on."""
    return field_grid(spec, COEFFICIENT_FIELD_POINTS[len(spec.axes)])


def _field_summaries(model: BPINN, dt, truth: dict, identifiability: dict,
                     has_physics_terms: bool = True) -> dict:
    """``summary.json`` ``fields``: the pointwise posterior of each coefficient field, with its
    truth (a function of the point in ``[truth]``) where given, and where the data determine
    it (from ``identifiability``, the run's ``identify`` report). ``has_physics_terms``: False
    for a method with no network (the reference inversion), where no implied prior arises."""
    out = {}
    for name in model.field_coefficients:
        spec = model.problem.coefficients[name]
        true_values = None
        if callable(truth.get(name)):
            _, points = _coefficient_field_grid(spec)
            full = np.tile((model.problem.domain.lower + model.problem.domain.upper) / 2,
                           (len(points), 1))
            full[:, list(spec.axes)] = points
            true_values = np.asarray(jax.vmap(truth[name])(jnp.asarray(full)))
        verdict = identifiability["fields"][name]
        out[name] = {"prior": spec.describe(),
                     "implied_prior": FIELD_IMPLIED_PRIOR if has_physics_terms else None,
                     **field_summary(dt, name, truth=true_values),
                     **{key: verdict[key] for key in ("contraction", "identified_threshold",
                                                      "identified_fraction")}}
        for readings in model.problem.field_data:
            if readings.field == name:
                obs = readings.observations
                out[name]["readings"] = {
                    "points": obs.coords.tolist(), "values": obs.values.tolist(),
                    "of": f"log {name}" if readings.log else name, "origin": obs.origin}
    return out


FIELD_DRAWS_PER_CHAIN = 50  # thinned draws of the field over the domain (predictions group)
FIELD_POINTS = {1: (201,), 2: (41, 41), 3: (25, 25, 9)}  # grid points per axis, by dimension


def _predictor(model: BPINN, draws: Draws):
    """``points -> (named values -> u at points)``: the method's own forward model, or the
    network's."""
    if draws.predictor is not None:
        return lambda points: draws.predictor(jnp.asarray(points))
    return lambda points: (lambda values: model.predict(values["weights"], jnp.asarray(points)))


def field_predictions(model: BPINN, draws: Draws, constrained: dict):
    """The field u on a grid over the domain, for a thinned subset of the draws.

    Returns ``({output: u of shape (chain, thinned draw, *grid)}, draw indices, {coord: grid
    axis})``: the one output ``u``, or each output of a system by its name.
    """
    chains, num_draws, _ = draws.position.shape
    domain = model.problem.domain
    names = domain.coord_names
    axes = {f"field_{n}": np.linspace(lo, hi, k) for n, lo, hi, k in
            zip(names, domain.lower, domain.upper, FIELD_POINTS[len(names)], strict=True)}
    mesh = np.meshgrid(*axes.values(), indexing="ij")
    predict = _predictor(model, draws)(np.stack([m.ravel() for m in mesh], axis=-1))
    keep = np.unique(np.linspace(0, num_draws - 1, min(num_draws, FIELD_DRAWS_PER_CHAIN))
                     .round().astype(int))
    thinned = jax.tree.map(
        lambda a: a.reshape(chains, num_draws, *a.shape[1:])[:, keep]
        .reshape(chains * keep.size, *a.shape[1:]), constrained)
    u = np.asarray(jax.jit(jax.vmap(predict))(thinned))
    if not model.problem.pde.is_system:
        u = u[..., None]  # the one output, "u"
    fields = {name: u[..., k].reshape(chains, keep.size, *mesh[0].shape)
              for k, name in enumerate(model.problem.pde.outputs)}
    return fields, keep, axes


def holdout_predictions(model: BPINN, inference: _Inference, constrained: dict
                        ) -> np.ndarray | None:
    """Posterior-predictive draws (noise included) of the held-out readings, shape
    (chain, draw, n); None without held-out sensors."""
    holdout = model.problem.holdout
    draws = inference.draws
    if holdout is None:
        return None
    chains, num_draws, _ = draws.position.shape
    predict = _predictor(model, draws)(holdout.coords)

    def per_draw(values, key):
        # One noise sd for every sensor: the config refuses holdout with per_group_noise.
        sigma = values.get("sigma", getattr(model.problem.noise, "value", None))
        return model.reading_distribution(predict(values), sigma).sample(key)

    # A key of its own, so holding sensors out leaves every other draw of the run unchanged.
    keys = jax.random.split(jax.random.fold_in(inference.predictive_key, 1), chains * num_draws)
    y = jax.jit(jax.vmap(per_draw))(constrained, keys)
    return np.asarray(y).reshape(chains, num_draws, holdout.n)


def _holdout_groups(model: BPINN, replicates: np.ndarray) -> dict:
    """The held-out readings for the DataTree: predictive draws, readings, coordinates."""
    holdout = model.problem.holdout
    constant = {f"holdout_{n}": holdout.coords[:, i]
                for i, n in enumerate(model.problem.domain.coord_names)}
    constant["holdout_group"] = np.asarray(holdout.group_index)
    return {"posterior_predictive": {"u_holdout": replicates},
            "observed_data": {"u_holdout": np.asarray(holdout.values)},
            "constant_data": constant}


def _holdout_summary(model: BPINN, replicates: np.ndarray) -> dict:
    """Coverage of the held-out readings, with a warning when the 90% intervals cover fewer
    of them than a calibrated model plausibly would."""
    from bpinn.calibration import predictive_coverage

    holdout = model.problem.holdout
    out = predictive_coverage(replicates, holdout.values)
    out["groups"] = list(holdout.group_names)
    lo = out["band"]["0.9"][0]
    out["warnings"] = [] if out["coverage"]["0.9"] >= lo else [
        f"the 90% predictive intervals cover {100 * out['coverage']['0.9']:.0f}% of the "
        f"{out['n']} held-out readings ({', '.join(out['groups'])}), below the {100 * lo:.0f}% "
        "a calibrated model reaches with 95% probability: the posterior is overconfident away "
        "from the fitted sensors"]
    return out


def _attrs(config: RunConfig, model: BPINN, seed: int, method: str) -> dict:
    p = model.problem
    obs = p.observations
    return {
        **_fingerprint(config, model),
        "platform": platform.platform(),
        "config_path": str(Path(config.path).resolve()),  # anchors its relative paths
        "seed": seed,
        "method": method,
        "pde": p.pde.name,
        "equation": p.pde.equation,
        "source": p.source_description,
        "coord_names": list(p.domain.coord_names),  # not "coordinates": CF reserves it
        "domain_lower": p.domain.lower.tolist(),
        "domain_upper": p.domain.upper.tolist(),
        "data_file": obs.origin,
        "group_names": list(obs.group_names),
        "outputs": list(p.pde.outputs),  # the unknown functions (a system has several)
        "priors": {n: (f"fixed {q.value:g}" if isinstance(q, Fixed) else q.describe())
                   for n, q in p.coefficients.items()},
        "network": f"{model.settings.network.kind} {model.settings.network.layer_sizes}",
        "num_weights": model.num_weights,
        "num_collocation": int(model.collocation.shape[0]),
    }


def rerun(results_path, *, outdir=None, overrides: dict | None = None,
          progress: bool = False, checkpoint_dir=None) -> RunResult:
    """Run again the config recorded in a results file: same tables, same ``[inference]``
    settings (overrides included) and seed, checked against the recorded data hash. The config
    file itself need not exist any more; its data and function files must.

    ``overrides`` changes ``[inference]`` keys on top of the recorded ones.
    """
    from bpinn.inference.results import decode_attrs, read_results

    path = Path(results_path)
    try:
        attrs = decode_attrs(read_results(path))
    except Exception as err:  # any reader failure means "not a results file"
        raise ConfigError(f"{path}: cannot be read as a bpinn results file: {err}") from None
    missing = [k for k in ("config", "config_path", "inference", "data_sha256") if k not in attrs]
    if missing:
        raise ConfigError(f"{path}: the results do not record {missing}; they cannot be rerun")
    recorded = {**attrs["inference"], **{k: v for k, v in (overrides or {}).items()
                                         if v is not None}}
    return run(attrs["config_path"], outdir=outdir, overrides=recorded, progress=progress,
               checkpoint_dir=checkpoint_dir, tables=attrs["config"],
               data_sha256=attrs["data_sha256"])


def _fingerprint(config: RunConfig, model: BPINN) -> dict:
    """The run's inputs, not where they live: what must match for a checkpoint to be resumed,
    and the provenance every results file records."""
    return {"config": json.loads(json.dumps(dict(config.raw), default=str)),
            "inference": asdict(config.inference),  # as run: overrides applied
            "data_sha256": file_sha256(model.problem.observations.origin),
            "bpinn_version": __version__, "versions": versions(),
            "device": jax.devices()[0].device_kind}


def _reported_truth(truth, posterior: dict) -> dict:
    """The config's [truth] for the unknowns the run reports: values of fixed (known) quantities
    are dropped, and one value for a per-group sigma applies to every group."""
    out = {}
    for name, value in truth.items():
        if name not in posterior or callable(value):  # a field's truth: see _field_summaries
            continue
        event_shape = np.shape(posterior[name])[2:]
        out[name] = np.broadcast_to(np.asarray(value, dtype=float), event_shape).tolist() \
            if event_shape and np.ndim(value) == 0 else value
    return out


def _map_fits(names: list[str], target, fit) -> list[dict]:
    """Coefficients and scales at each MAP fit, best first: evidence of several modes."""
    order = np.argsort(-np.nan_to_num(np.asarray(fit.logdensity), nan=-np.inf))
    fits = []
    for i in order:
        values = target.constrained(fit.position[i])
        entry = {"logdensity": float(fit.logdensity[i])}
        entry.update({n: np.asarray(values[n]).tolist() for n in names})
        fits.append(entry)
    return fits


def _map_warnings(fits: list[dict], summary: dict, inf) -> list[str]:
    """Warn when MAP fits from different initialisations disagree beyond the posterior sd."""
    if len(fits) < 2:
        return []
    out = []
    for name, stats in summary["parameters"].items():
        values = [f[name] for f in fits if name in f and np.ndim(f[name]) == 0]
        sd = stats.get("sd")
        if len(values) < 2 or not sd:
            continue
        spread = max(values) - min(values)
        if spread > sd:
            where = ("the chains explored only the best one (chain_init = 'best_map'; "
                     "'per_chain' samples each)" if inf.chain_init == "best_map"
                     else "R-hat compares them")
            out.append(
                f"MAP fits from {len(values)} network initialisations disagree on {name} "
                f"(from {min(values):.4g} to {max(values):.4g}; posterior sd {sd:.3g}): the "
                f"optimiser ends in different network modes; {where}"
            )
    return out


def run(
    config_path,
    *,
    outdir=None,
    seed: int | None = None,
    method: str | None = None,
    overrides: dict | None = None,
    progress: bool = False,
    checkpoint_dir=None,
    tables: dict | None = None,
    data_sha256: str | None = None,
) -> RunResult:
    """Run the inference a config describes; write ``posterior.nc`` and ``summary.json``.

    Parameters
    ----------
    config_path : the TOML config.
    outdir : directory for the results; nothing is written when None.
    seed, method : override ``[inference] seed`` / ``method``.
    overrides : other ``[inference]`` keys to override (e.g. ``{"num_samples": 200}``).
    progress : show progress bars on stderr.
    checkpoint_dir : save the state of every loop here after each chunk, and continue from what
        is there (a checkpoint of the same run; see :mod:`bpinn.checkpoint`). The directory is
        left in place: remove it once the results are safely written.
    tables, data_sha256 : a recorded config's tables (used instead of reading ``config_path``,
        which then only anchors relative paths) and the sha256 its data file must still have;
        see :func:`rerun`.

    Examples
    --------
    >>> # result = run("case_studies/heat_diffusion/config.toml")   # doctest: +SKIP
    >>> # result.summary["parameters"]["D"]["mean"]                 # doctest: +SKIP
    """
    configure_jax()  # float64; compiled programs cached on disk
    t_start = time.perf_counter()
    # seed= and method= win over the same keys in overrides, but only when given.
    explicit = {k: v for k, v in (("seed", seed), ("method", method)) if v is not None}
    config = load_config(config_path, overrides={**(overrides or {}), **explicit},
                         tables=tables)
    inf = config.inference
    model = prepare(config)  # all input validation happens before any output exists
    data_file = model.problem.observations.origin
    current = file_sha256(data_file) if data_sha256 is not None else None
    if current != data_sha256:
        raise ConfigError(
            f"{data_file}: the data file has changed since the recorded run (sha256 "
            f"{current[:12]}... instead of {data_sha256[:12]}...); a rerun would not reproduce "
            "it; restore the original file or run the config afresh")
    try:
        method = checked_method(model, inf)
    except ValueError as err:
        raise ConfigError(f"{config.path}: [inference] method = {inf.method!r}: {err}") from err

    if checkpoint_dir is None:
        inference = _infer(model, inf, method, progress=progress)
    else:
        store = CheckpointStore(checkpoint_dir, _fingerprint(config, model))
        with store.active():
            inference = _infer(model, inf, method, progress=progress)
    ctx, draws = inference.ctx, inference.draws
    model = ctx.model  # with the collocation points the MAP fit ended on, if they moved
    target, fit = ctx.target, ctx.map_fit
    constrained = _constrained_draws(inference)
    posterior, predictive, loglik = _posterior_arrays(model, inference, constrained,
                                                      inf.save_weights)
    field = field_predictions(model, draws, constrained)
    reported = [n for n in model.reported_sites if n in posterior]
    fields, field_dims, field_coords = _coefficient_fields(model, constrained,
                                                           *draws.position.shape[:2])
    obs = model.problem.observations
    names = model.problem.domain.coord_names
    coords_data = {name: obs.coords[:, i] for i, name in enumerate(names)}
    coords_data["group"] = np.asarray(obs.group_index)
    held_out = holdout_predictions(model, inference, constrained)
    extra = _holdout_groups(model, held_out) if held_out is not None else {}
    dims = {"u_obs": ["obs"], "u_pred": ["obs"], "weights": ["weight"]}
    dims.update({name: ["holdout_obs"] for group in extra.values() for name in group})
    coords = {"group": list(obs.group_names)}
    dims.update({name: list(field[2]) for name in field[0]})
    coords.update(field[2])
    posterior.update(fields)
    dims.update(field_dims)
    coords.update(field_coords)
    if model.problem.per_group_noise:
        dims["sigma"] = ["group"]
    if "collocation_resampling" in ctx.map_info:
        # The moved points define the physics likelihood that was sampled: keep them.
        coords_data["collocation_points"] = np.asarray(model.collocation)
        dims["collocation_points"] = ["collocation_point", "coordinate"]
        coords["coordinate"] = list(names)
    attrs = _attrs(config, model, inf.seed, inf.method)
    attrs["exact_mcmc"] = method.exact_mcmc
    attrs["coefficient_fields"] = {
        n: {"prior_sd": model.problem.coefficients[n].scale,
            "log": model.problem.coefficients[n].log} for n in model.field_coefficients}
    attrs["method_info"] = draws.info
    attrs["map_fits"] = _map_fits(reported, target, fit) if fit is not None else []
    attrs["map_restarts"] = ctx.map_restarts
    attrs["map_training"] = ctx.map_info
    if fit is not None:
        attrs["local_identifiability"] = local_information(model, target, ctx.best_map())
    if held_out is not None:
        attrs["holdout_groups"] = list(model.problem.holdout.group_names)
    dt = build_datatree(
        posterior=posterior,
        sample_stats={k: np.asarray(v) for k, v in draws.sample_stats.items()} or None,
        prior=_prior_draws(inference.prior_key, model),
        posterior_predictive={"u_obs": predictive["u_obs"], "u_pred": predictive["u_pred"],
                              **extra.get("posterior_predictive", {})},
        observed_data={"u_obs": np.asarray(obs.values), **extra.get("observed_data", {})},
        constant_data={**coords_data, **extra.get("constant_data", {})},
        log_likelihood=loglik,
        log_prior=_log_prior(model, posterior),
        predictions=field[0],
        predictions_draws=field[1],
        dims=dims,
        coords=coords,
        attrs=attrs,
    )
    timing = {**draws.timing, **ctx.timing,
              "compile_s": ctx.timing["compile_s"] + draws.timing.get("compile_s", 0.0),
              "total_s": time.perf_counter() - t_start}
    summary = summarize(
        dt, var_names=reported, method=inf.method, seed=inf.seed, timing=timing,
        truth=_reported_truth(model.problem.truth, posterior) or None,
        max_tree_depth=draws.info.get("max_tree_depth"),
        extra={"config": str(config.path), "equation": model.problem.pde.equation,
               "exact_mcmc": method.exact_mcmc, "method_info": draws.info,
               "method_limitations": list(method.limitations)},
    )
    if not method.exact_mcmc:
        summary["diagnostics"]["warnings"].append(
            f"{method.name} is an approximation, not MCMC: R-hat and ESS describe its own draws, "
            "not how close it is to the posterior" + "".join(f"; {x}" for x in method.limitations)
        )
    # what the method itself found wrong with its run (an ELBO still rising, a failed
    # importance check, a path too short for a covariance)
    summary["diagnostics"]["warnings"].extend(
        f"{method.name}: {w}" for w in draws.info.get("warnings", ()))
    summary["identifiability"] = identify(dt, reported)
    if model.field_coefficients:
        summary["fields"] = _field_summaries(model, dt, model.problem.truth,
                                             summary["identifiability"],
                                             method.implicit_prior != "none")
        for name, f in summary["fields"].items():
            summary["diagnostics"]["warnings"].extend(field_warnings(name, f))
    summary["map_fits"] = attrs["map_fits"]
    summary["map_restarts"] = ctx.map_restarts
    if ctx.map_info:
        summary["map_training"] = ctx.map_info
    if held_out is not None:
        summary["holdout"] = _holdout_summary(model, held_out)
        summary["diagnostics"]["warnings"].extend(summary["holdout"].pop("warnings"))
    summary["diagnostics"]["warnings"].extend(_map_warnings(attrs["map_fits"], summary, inf))
    summary["diagnostics"]["warnings"].extend(
        implicit_prior.warnings(draws.info.get("implicit_prior")))
    paths = write_results(outdir, dt, summary) if outdir is not None else {}
    return RunResult(datatree=dt, summary=summary, paths=paths)
