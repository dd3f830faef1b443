"""Ensembles of MAP fits: a deep ensemble, and randomise-then-optimise (RTO).

``ensemble`` fits ``num_members`` MAPs from different random network initialisations; each fit is
one draw. Its spread measures how much the optimum depends on the start (the modes the
optimiser finds), not the posterior's width around a mode.

``rto`` follows the randomized PINN of Zong, Barajas-Solano and Tartakovsky (2025): each member
minimises the negative log posterior with its data and its Gaussian prior perturbed by one fresh
draw of their noise. For a linear-Gaussian model the minimisers are exact posterior draws; for a
PINN they are an approximation that also reflects the posterior's width.

The members are fitted together, vmapped, by ``bpinn.inference.map.fit_map`` with the
``map_*`` settings (Adam with the physics ramp, then L-BFGS).
"""

from __future__ import annotations

import dataclasses
import time

import jax
import jax.numpy as jnp
import numpy as np

from bpinn.inference.laplace import SiteTerms, location_scale_terms, total_logdensity
from bpinn.inference.map import MAPResult, fit_map
from bpinn.inference.methods import Draws, Method, MethodContext
from bpinn.inference.target import Target


def member_starts(rng_key, ctx: MethodContext, num_members: int) -> jnp.ndarray:
    """(num_members, dim) random starts, drawn as ``bpinn.api.method_context`` draws chains'."""
    return jnp.stack([
        ctx.target.from_constrained(ctx.model.initial_values(key))
        for key in jax.random.split(rng_key, num_members)
    ])


def fit_members(target: Target, starts, settings, *, progress: bool = False) -> MAPResult:
    """``fit_map`` from every start with the ``map_*`` options of ``settings``."""
    return fit_map(
        target, starts, num_adam_steps=settings.map_adam_steps,
        learning_rate=settings.map_learning_rate, num_lbfgs_steps=settings.map_lbfgs_steps,
        physics_ramp=settings.map_physics_ramp, progress=progress,
    )


def _optional_float(x) -> float | None:
    x = float(x)
    return x if np.isfinite(x) else None


def member_draws(positions, logdensity, name: str) -> tuple[Draws, dict]:
    """Members as one chain of draws, dropping the fits that failed (non-finite).

    Returns (draws without timing, info) where info lists each member's final log density
    (None when non-finite) and warns about dropped members.
    """
    ok = np.asarray(jnp.isfinite(logdensity) & jnp.all(jnp.isfinite(positions), axis=-1))
    info = {"num_members": int(ok.size), "member_logdensity": [
        _optional_float(v) for v in np.asarray(logdensity)], "warnings": []}
    if not ok.any():
        raise RuntimeError(f"{name}: every member's fit failed (non-finite log density); try a "
                           "smaller map_learning_rate or more map_adam_steps")
    if not ok.all():
        dropped = np.flatnonzero(~ok).tolist()
        info["dropped_members"] = dropped
        info["warnings"].append(
            f"{len(dropped)} of {ok.size} members were dropped because their fit failed "
            f"(non-finite): members {dropped}")
    kept = np.flatnonzero(ok)
    position = positions[kept][None]
    return Draws(position, {"lp": jnp.asarray(logdensity)[kept][None]}, info, {}), info


def ensemble(rng_key, ctx: MethodContext) -> Draws:
    """The ``ensemble`` method: ``num_members`` MAP fits from random starts, one draw each."""
    inf = ctx.settings
    starts = member_starts(rng_key, ctx, inf.num_members)
    t0 = time.perf_counter()
    fit = fit_members(ctx.target, starts, inf, progress=ctx.progress)
    elapsed = time.perf_counter() - t0
    draws, _ = member_draws(fit.position, fit.logdensity, "ensemble")
    timing = {"compile_s": fit.compile_seconds, "optimization_s": elapsed - fit.compile_seconds}
    return draws._replace(timing=timing)


# ---- randomise-then-optimise ------------------------------------------------------------------

def rto_shift(terms: SiteTerms, noise: dict):
    """How much one member's perturbation changes the log density at the terms' position.

    For an observed Normal site with location m(theta), scale s(theta), observation y and
    handler weight w, the observation is perturbed to ``y + s eps / sqrt(w)``; for a latent site
    with a Normal(m, s) prior, the prior mean is perturbed to ``m + s delta / sqrt(w)``. Expanding
    the squares,

        w (m - y - s eps/sqrt(w))^2 / (2 s^2) = w (m - y)^2 / (2 s^2) - sqrt(w) eps (m - y)/s
                                                + eps^2 / 2
        w (x - m - s delta/sqrt(w))^2 / (2 s^2) = w (x - m)^2 / (2 s^2) - sqrt(w) delta (x - m)/s
                                                  + delta^2 / 2

    so, up to a constant and whatever m and s depend on, the perturbed negative log density is
    the original one minus ``sum(sqrt(w) eps (m - y)/s)`` over observed sites minus
    ``sum(sqrt(w) delta (x - m)/s)`` over latent ones, and no model needs rebuilding. With w = 1
    (the posterior) and the zero-mean weight prior this is ``-sum(eps (loc - y)/scale)
    - sum(delta weights/s)``. The log density therefore gains the returned shift.
    tests/test_method_ensemble.py checks it against a model rebuilt with perturbed values.

    Parameters
    ----------
    terms : ``location_scale_terms`` at the position.
    noise : site name -> standard normal draws of the site's shape, for the observed Normal
        sites (eps) and the latent Normal sites (delta) of ``terms``.

    Returns
    -------
    The scalar added to the log density.
    """
    shift = jnp.zeros(())
    for name, site in terms.observed.items():
        shift = shift + jnp.sum(jnp.sqrt(site.weight) * noise[name] * (site.loc - site.value)
                                / site.scale)
    for name, site in terms.latent_gaussian.items():
        shift = shift + jnp.sum(jnp.sqrt(site.weight) * noise[name] * (site.value - site.loc)
                                / site.scale)
    return shift


def rto_noise(rng_key, model_fn, target: Target, num_members: int) -> dict:
    """Standard normal perturbations, site name -> (num_members, *site shape).

    One per observed Normal site and per latent Normal site; ``ValueError`` when an observed
    site is not Normal (RTO perturbs Gaussian terms only).
    """
    shapes = jax.eval_shape(
        lambda flat: location_scale_terms(model_fn, target, flat), target.initial_position)
    not_normal = [n for n, s in shapes.observed.items() if s.family != "normal"]
    if not_normal:
        raise ValueError(f"rto perturbs Gaussian likelihood terms only; observed sites "
                         f"{not_normal} are not Normal")
    sites = {n: s.value.shape for n, s in shapes.observed.items()}
    sites.update({n: s.value.shape for n, s in shapes.latent_gaussian.items()})
    keys = jax.random.split(rng_key, len(sites))
    return {name: jax.random.normal(key, (num_members, *sites[name]))
            for key, name in zip(keys, sorted(sites), strict=True)}


def perturbed_logdensity(model_fn, target: Target, flat, noise: dict, model_kwargs=None):
    """One member's perturbed log density at ``flat`` (training keywords ``model_kwargs``, as
    in ``Target.training_logdensity_fn``), from a single model trace."""
    terms = location_scale_terms(model_fn, target, flat, model_kwargs=model_kwargs or {})
    return total_logdensity(terms) + rto_shift(terms, noise)


def members_target(model_fn, target: Target, noise: dict) -> Target:
    """A ``Target`` on ``[position, member index]`` for ``fit_map``, one perturbation per member.

    ``fit_map`` optimises every row of its starts against one target. To fit members with
    different perturbations in the same vmapped loops, each row carries its member's index as one
    extra coordinate; its gradient is exactly zero (``stop_gradient``), so Adam's update and
    L-BFGS's direction never move it. Only ``fit_map`` may use this target: its other fields
    still describe the unextended position.
    """
    def training(x, model_kwargs):
        index = jnp.round(jax.lax.stop_gradient(x[-1])).astype(jnp.int32)
        member_noise = jax.tree.map(lambda a: a[index], noise)
        return perturbed_logdensity(model_fn, target, x[:-1], member_noise, model_kwargs)

    return dataclasses.replace(
        target, logdensity_fn=lambda x: training(x, {}), training_logdensity_fn=training,
        initial_position=jnp.append(target.initial_position, 0.0))


def rto(rng_key, ctx: MethodContext) -> Draws:
    """The ``rto`` method: ``num_members`` fits of randomly perturbed posteriors, one draw each."""
    inf, target, model_fn = ctx.settings, ctx.target, ctx.model.model
    noise_key, start_key = jax.random.split(rng_key)
    noise = rto_noise(noise_key, model_fn, target, inf.num_members)
    starts = member_starts(start_key, ctx, inf.num_members)
    indexed = jnp.concatenate([starts, jnp.arange(inf.num_members, dtype=starts.dtype)[:, None]],
                              axis=1)
    t0 = time.perf_counter()
    fit = fit_members(members_target(model_fn, target, noise), indexed, inf,
                      progress=ctx.progress)
    position = fit.position[:, :-1]
    logdensity = jax.jit(jax.vmap(target.logdensity_fn))(position)  # the unperturbed posterior
    elapsed = time.perf_counter() - t0
    draws, info = member_draws(position, logdensity, "rto")
    info["member_perturbed_logdensity"] = [_optional_float(v) for v in fit.logdensity]
    info["perturbed_sites"] = sorted(noise)
    timing = {"compile_s": fit.compile_seconds, "optimization_s": elapsed - fit.compile_seconds}
    return draws._replace(info=info, timing=timing)


def check_rto(model, settings) -> None:
    """``ValueError`` for a Student-t likelihood: RTO perturbs Gaussian terms only."""
    del settings
    likelihood = model.problem.likelihood
    if likelihood != "normal":
        raise ValueError(
            f"[data] likelihood = {likelihood!r}: rto perturbs Gaussian likelihood terms only; "
            "use likelihood = 'normal' or another method (e.g. ensemble, laplace)")


ENSEMBLE = Method(
    name="ensemble",
    run=ensemble,
    exact_mcmc=False,
    description="Deep ensemble: num_members MAP fits from random initialisations, one draw each.",
    limitations=(
        "each draw is a mode, not a posterior draw: the spread shows how the optimum depends on "
        "the network initialisation, not the posterior's width around a mode, so it usually "
        "underestimates the uncertainty of the coefficients",
        "with few members (num_members) the mean and sd are themselves very uncertain",
    ),
    needs_map=False,
    implicit_prior="mode",
)

RTO = Method(
    name="rto",
    run=rto,
    exact_mcmc=False,
    description="Randomise-then-optimise (randomized PINN): num_members MAP fits with perturbed "
                "data, residual targets and Gaussian priors.",
    limitations=(
        "exact only for linear-Gaussian models; for a PINN the draws come from an unknown "
        "distribution near the posterior (no Jacobian correction is applied)",
        "only Gaussian terms are perturbed: the data and residual likelihoods and Normal priors "
        "(the network weights); non-Gaussian priors (e.g. LogNormal coefficients, HalfNormal "
        "noise scales) are not, and inferred noise scales scale their own perturbation",
        "with few members (num_members) the mean and sd are themselves very uncertain",
    ),
    needs_map=False,
    check=check_rto,
    implicit_prior="mode",
)
