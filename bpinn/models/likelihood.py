"""The B-PINN as a numpyro model: priors on weights, coefficients and scales, plus likelihood terms.

Sites (names are what appear in the results):

- ``weights``: all network parameters, flattened, Gaussian prior;
- one site per unknown PDE coefficient, named as in the PDE (for a coefficient field, the
  white-normal weights of its basis, ``bpinn.models.fields``);
- ``sigma``: sensor noise sd (dim ``group`` when per group), ``sigma_pde``, ``sigma_bc``,
  ``sigma_source`` when inferred;
- ``sigma_<field>``: the noise sd of a field's direct readings, when inferred;
- observed: ``u_obs`` (readings), ``pde_residual`` (residual at collocation points, target 0),
  ``pde_residual_gradient`` (its gradient, gPINN, when ``residual_gradient_noise`` is set),
  ``condition.<name>`` (soft conditions), ``source_obs`` (measured source values) and
  ``field_obs.<field>`` (direct readings of a coefficient field).

The model's keyword arguments reweight these terms for MAP training only (physics ramp, term
weights, causal weights, time marching); with their defaults it is the posterior.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jax.flatten_util import ravel_pytree

from bpinn.models.conditions import (
    SoftTerm,
    halton,
    hard_constraint,
    soft_terms,
    system_hard_constraint,
)
from bpinn.models.fields import FieldValue, GaussianProcessField, coefficients_at
from bpinn.models.networks import Network, SolutionModel
from bpinn.models.priors import Fixed, Prior
from bpinn.models.problem import Problem, residual


@dataclass(frozen=True, eq=False)
class ModelSettings:
    """How the problem is turned into a B-PINN (everything that is not physics or data).

    Parameters
    ----------
    network : the solution network.
    weight_prior_scale : sd of the Gaussian prior on network parameters. It is a prior over
        functions: too tight and the posterior is pulled toward the smooth functions small
        weights make (on the heat case, sd 1 biased D by -3%; sd 3 removed the bias at the MAP).
    fan_in_scaled : divide weight sds by sqrt(fan_in) (prior over functions independent of width).
    num_collocation : residual points, a deterministic Halton set in the domain.
    residual_noise : sd of the PDE residual likelihood (``Fixed`` or ``Prior``), in the residual's
        physical units. Smaller trusts the PDE more; it must stay above the network's ability to
        satisfy the PDE or the posterior is overconfident.
    condition_noise : sd of soft boundary/initial condition terms, in the units of u.
    num_condition_points : points per soft condition face.
    residual_gradient_noise : when set, the gradient-enhanced residual (gPINN, Yu et al. 2022):
        the derivatives of the residual along every coordinate, each multiplied by that
        coordinate's domain length (so it has the residual's units), are observed to be 0 with
        this sd. It asks the network to satisfy the PDE smoothly between collocation points;
        it is extra information only where the solution is smooth (see docs/failure_modes.md).
    residual_form : "strong" (the PDE residual at collocation points) or "weak": the residual
        integrated against ``num_test_functions`` sine test functions that vanish at the ends
        (a variational PINN, Kharazmi et al. 2019), with the flux integrated by parts so the
        network's second derivatives are never formed. Steady 1-D problems whose PDE has a
        divergence form (``PDE.flux``); ``num_collocation`` Gauss-Legendre points then carry
        the quadrature. For solutions of low regularity (a kinked u, a discontinuous source).
        ``residual_noise`` is then the sd of one mode's amplitude: N strong residuals of sd s
        pin it to about ``s * sqrt(2 / N)``, so use that for an equally strong constraint.
    num_test_functions : test functions of the weak residual.
    equation_scales : a system only: one positive factor per equation, so that equation ``i``'s
        residual (and its gPINN gradient) has sd ``residual_noise * equation_scales[i]``. For
        equations whose terms differ in size (momentum against continuity), so that one
        inferred or fixed ``residual_noise`` means the same relative misfit in each. ``None``:
        every equation has sd ``residual_noise``.
    """

    network: Network
    weight_prior_scale: float = 3.0
    fan_in_scaled: bool = False
    num_collocation: int = 128
    residual_noise: Fixed | Prior = Fixed(0.05)
    condition_noise: Fixed | Prior = Fixed(0.01)
    num_condition_points: int = 32
    residual_gradient_noise: float | None = None
    residual_form: str = "strong"
    num_test_functions: int = 16
    equation_scales: tuple[float, ...] | None = None

    def __post_init__(self):
        if self.equation_scales is not None and not (
                len(self.equation_scales) >= 1
                and all(math.isfinite(v) and v > 0 for v in self.equation_scales)):
            raise ValueError("equation_scales must be one finite number > 0 per equation, got "
                             f"{self.equation_scales!r}")
        if not self.weight_prior_scale > 0:
            raise ValueError(f"weight_prior_scale must be > 0, got {self.weight_prior_scale!r}")
        if not (isinstance(self.num_collocation, int) and self.num_collocation >= 1):
            raise ValueError(
                f"num_collocation must be a positive integer, got {self.num_collocation!r}"
            )
        if not (isinstance(self.num_condition_points, int) and self.num_condition_points >= 1):
            raise ValueError(
                "num_condition_points must be a positive integer, "
                f"got {self.num_condition_points!r}"
            )
        if self.residual_gradient_noise is not None and not self.residual_gradient_noise > 0:
            raise ValueError(
                "residual_gradient_noise must be > 0 (or unset to switch the gradient-enhanced "
                f"residual off), got {self.residual_gradient_noise!r}")
        if self.residual_form not in RESIDUAL_FORMS:
            raise ValueError(f"residual_form {self.residual_form!r} is unknown; valid: "
                             f"{RESIDUAL_FORMS}")
        if self.residual_form == "weak":
            if self.residual_gradient_noise is not None:
                raise ValueError("residual_gradient_noise needs the strong residual; the weak "
                                 "form never differentiates it pointwise")
            if not (isinstance(self.num_test_functions, int)
                    and 1 <= self.num_test_functions <= self.num_collocation // 2):
                raise ValueError(
                    f"num_test_functions must be an integer from 1 to num_collocation / 2 = "
                    f"{self.num_collocation // 2} (the quadrature must resolve the highest test "
                    f"function), got {self.num_test_functions!r}")


RESIDUAL_FORMS = ("strong", "weak")
CAUSAL_BINS = 16  # time slices of the causal residual weighting (Wang, Sankaran, Perdikaris)
MARCHING_WIDTH = 0.1  # width of the time-marching front, as a fraction of the time window


def collocation_points(domain, n: int, *, skip: int = 1) -> np.ndarray:
    """``n`` deterministic Halton points filling the domain box (from the ``skip``-th)."""
    u = halton(n, domain.ndim, skip=skip)
    return domain.lower + u * (domain.upper - domain.lower)


@dataclass(frozen=True, eq=False)
class WeakResidual:
    """Gauss-Legendre quadrature on [a, b] and sine test functions ``v_k = sin(k pi (x-a)/L)``.

    The weak residual of mode k is ``(2/L) * sum_q w_q (F v_k' + (G - f) v_k)(x_q)``: with
    ``L[u] = -F' + G`` and ``v_k(a) = v_k(b) = 0`` it equals ``(2/L) * integral of
    (L[u] - f) v_k``, the amplitude of mode k of the strong residual (so it has the residual's
    units, and ``residual_noise`` is its sd).
    """

    points: np.ndarray  # (n, 1) quadrature nodes
    weights: np.ndarray  # (n,)
    v: np.ndarray  # (K, n) test functions at the nodes
    dv: np.ndarray  # (K, n) their derivatives
    scale: float  # 2 / L

    @classmethod
    def build(cls, lower: float, upper: float, num_points: int, num_test_functions: int):
        nodes, weights = np.polynomial.legendre.leggauss(num_points)
        length = upper - lower
        x = lower + (nodes + 1.0) * length / 2.0
        k = np.arange(1, num_test_functions + 1)[:, None]
        phase = k * np.pi * (x[None, :] - lower) / length
        return cls(points=x[:, None], weights=weights * length / 2.0, v=np.sin(phase),
                   dv=(k * np.pi / length) * np.cos(phase), scale=2.0 / length)

    def residual(self, flux_fn, source_fn):
        """Weak residuals (K,) of ``flux_fn(z) -> (F, G)`` and ``source_fn(z) -> f``."""
        points = jnp.asarray(self.points)
        f_flux, g = jax.vmap(flux_fn)(points)
        f = jax.vmap(source_fn)(points)
        w = jnp.asarray(self.weights)
        return self.scale * (jnp.asarray(self.dv) @ (w * f_flux)
                             + jnp.asarray(self.v) @ (w * (g - f)))


def _scaled(weight):
    """Scale the log likelihood of the sites inside by ``weight``; no handler at exactly 1, so
    the posterior's trace carries no scale factors."""
    if isinstance(weight, float) and weight == 1.0:
        return contextlib.nullcontext()
    return numpyro.handlers.scale(scale=weight)


def _sample_scale(name, quantity, *, shape=()):
    if isinstance(quantity, Fixed):
        return jnp.full(shape, quantity.value)
    d = quantity.distribution()
    if shape:
        d = d.expand(shape).to_event(len(shape))
    return numpyro.sample(name, d)


@dataclass(frozen=True, eq=False)
class BPINN:
    """A problem turned into a numpyro model, with the pieces inference and results need."""

    problem: Problem
    settings: ModelSettings
    solution: SolutionModel
    collocation: np.ndarray
    soft: tuple[SoftTerm, ...]
    weight_prior_sd: np.ndarray  # flat
    unravel: object  # flat vector -> params pytree
    weak: WeakResidual | None = None  # the weak residual's quadrature, if residual_form="weak"

    @property
    def unknown_coefficients(self) -> tuple[str, ...]:
        return tuple(
            n for n in self.problem.coefficient_names
            if isinstance(self.problem.coefficients[n], Prior)
        )

    @property
    def field_coefficients(self) -> tuple[str, ...]:
        """Unknown coefficient fields: each is a latent site of its basis weights (white
        normals), reported as the field's values on a grid, not as a scalar."""
        return tuple(
            n for n in self.problem.coefficient_names
            if isinstance(self.problem.coefficients[n], GaussianProcessField)
        )

    @property
    def scale_sites(self) -> tuple[str, ...]:
        """Inferred scale sites, in a fixed order."""
        p, s = self.problem, self.settings
        sites = []
        if isinstance(p.noise, Prior):
            sites.append("sigma")
        if isinstance(s.residual_noise, Prior):
            sites.append("sigma_pde")
        if self.soft and isinstance(s.condition_noise, Prior):
            sites.append("sigma_bc")
        if p.source_data is not None and isinstance(p.source_noise, Prior):
            sites.append("sigma_source")
        sites += [r.noise_site for r in p.field_data if isinstance(r.noise, Prior)]
        return tuple(sites)

    @property
    def reported_sites(self) -> tuple[str, ...]:
        """What results and summaries report: unknown coefficients, then inferred scales."""
        return self.unknown_coefficients + self.scale_sites

    @property
    def noise_shape(self) -> tuple[int, ...]:
        """Shape of the sensor noise sd: one per sensor group, or a scalar."""
        p = self.problem
        return (len(p.observations.group_names),) if p.per_group_noise else ()

    @property
    def num_weights(self) -> int:
        return int(self.weight_prior_sd.size)

    def u_fn(self, weights, output_layer=None):
        """u for one flat weight vector; ``output_layer`` (the output layer's weights then bias,
        ``fan_in + 1`` values) replaces the one inside ``weights`` when given."""
        params = self.unravel(weights)
        if output_layer is not None:
            # A separate argument, so derivatives with respect to it never touch the hidden
            # layers (bpinn.inference.marginal pushes one tangent per output weight).
            w_out, b_out = params[-1]
            params = [*params[:-1], (output_layer[:-1].reshape(w_out.shape),
                                     output_layer[-1:].reshape(b_out.shape))]
        return self.solution.u_fn(params)

    def residuals(self, weights, coeffs: dict, points):
        """PDE residual at ``points`` (n, ndim) for one flat weight vector and the full
        coefficient dict (``coefficient_values``)."""
        p, u = self.problem, self.u_fn(weights)
        return jax.vmap(lambda z: residual(p.pde, p.source, u, z, coeffs))(jnp.asarray(points))

    def with_collocation(self, points) -> BPINN:
        """The same model with other collocation points (adaptive resampling)."""
        points = np.asarray(points, dtype=float)
        if points.ndim != 2 or points.shape[1] != self.problem.domain.ndim:
            raise ValueError(f"collocation points must have shape (n, "
                             f"{self.problem.domain.ndim}), got {points.shape}")
        return dataclasses.replace(self, collocation=points)

    def collocation_time(self) -> np.ndarray | None:
        """Each collocation point's time as a fraction of the time window; None when steady."""
        domain = self.problem.domain
        if not domain.has_time:
            return None
        k = domain.time_index
        return (self.collocation[:, k] - domain.lower[k]) / (domain.upper[k] - domain.lower[k])

    def predict(self, weights, points):
        """u at ``points`` (n, ndim) for one flat weight vector: shape (n,), or (n, outputs)
        for a system."""
        return jax.vmap(self.u_fn(weights))(jnp.asarray(points))

    @property
    def reading_outputs(self) -> np.ndarray | None:
        """For a system, the output each reading measures (index into ``PDE.outputs``; the
        readings' groups are the outputs read); None for a single unknown function."""
        pde, obs = self.problem.pde, self.problem.observations
        if not pde.is_system:
            return None
        of_group = np.array([pde.outputs.index(g) for g in obs.group_names], dtype=np.int32)
        return of_group[obs.group_index]

    def at_readings(self, u_at_sensors):
        """The predicted readings from u at the sensors, ``(n,)`` or for a system
        ``(n, outputs)``: each reading's own output."""
        index = self.reading_outputs
        if index is None:
            return u_at_sensors
        return jnp.take_along_axis(u_at_sensors, jnp.asarray(index)[:, None], axis=1)[:, 0]

    def coefficient_values(self, sampled: dict) -> dict:
        """Every coefficient by name from the sampled sites: a number, or for a field a
        ``FieldValue`` (a function of the point) made from its latent site."""
        out = {}
        for name in self.problem.coefficient_names:
            q = self.problem.coefficients[name]
            if isinstance(q, GaussianProcessField):
                out[name] = FieldValue(q, sampled[name])
            else:
                out[name] = sampled[name] if isinstance(q, Prior) else jnp.asarray(q.value)
        return out

    def noise_per_reading(self, sigma):
        """Sensor noise sd for each reading (expands a per-group sigma)."""
        obs = self.problem.observations
        sigma = jnp.asarray(sigma)
        if sigma.ndim == 0:
            return jnp.broadcast_to(sigma, (obs.n,))
        return sigma[jnp.asarray(obs.group_index)]

    def data_distribution(self, u_pred, sigma):
        return self.reading_distribution(u_pred, self.noise_per_reading(sigma))

    def reading_distribution(self, u_pred, scale):
        """The noise model of readings with predicted values ``u_pred`` and noise sd ``scale``."""
        if self.problem.likelihood == "student_t":
            return dist.StudentT(self.problem.student_t_df, u_pred, scale)
        return dist.Normal(u_pred, scale)

    def initial_values(self, rng_key) -> dict:
        """Constrained starting values for optimisation: random network weights, small noise.

        Starting the noise scales small matters: a large sensor noise lets the fit explain the
        readings as noise, and joint MAP then stalls with a network that ignores the data.
        """
        flat, _ = ravel_pytree(self.settings.network.init(rng_key))
        values = {"weights": flat}
        small = 0.05 * float(np.min(self.solution.value_scale))
        if "sigma" in self.scale_sites:
            values["sigma"] = jnp.full(self.noise_shape, small)
        if "sigma_bc" in self.scale_sites:
            values["sigma_bc"] = jnp.asarray(small)
        return values

    def _sample_coefficients_and_noise(self):
        p = self.problem
        sampled = {
            name: numpyro.sample(name, p.coefficients[name].distribution())
            for name in self.unknown_coefficients
        }
        for name in self.field_coefficients:
            size = p.coefficients[name].num_latent
            sampled[name] = numpyro.sample(name, dist.Normal(0.0, 1.0).expand((size,))
                                           .to_event(1))
        return self.coefficient_values(sampled), _sample_scale(
            "sigma", p.noise, shape=self.noise_shape)

    def _observe_readings(self, u_pred, sigma):
        obs = self.problem.observations
        with numpyro.plate("obs", obs.n):
            numpyro.sample("u_obs", self.data_distribution(u_pred, sigma), obs=obs.values)

    def _observe_field_readings(self, coeffs, observe=True, weight=lambda name: 1.0):
        """Direct readings of coefficient fields (``Problem.field_data``). Their noise sites
        are sampled even when ``observe`` is False, so the latent layout does not change."""
        for readings in self.problem.field_data:
            sd = _sample_scale(readings.noise_site, readings.noise)
            if not observe:
                continue
            field = coeffs[readings.field]
            predicted = readings.predicted(field.spec, field.latent)
            with numpyro.plate(f"plate.{readings.site}", predicted.shape[0]), _scaled(
                    weight(readings.site)):
                numpyro.sample(readings.site, dist.Normal(predicted, sd),
                               obs=jnp.asarray(readings.observations.values))

    def classical_model(self, forward):
        """The same priors and data model with a classical solver in place of the network.

        ``forward(coeffs) -> u`` at the sensors. No network and no physics terms: the solver
        satisfies the PDE. This is the gold-standard Bayesian inversion a B-PINN posterior is
        compared with.
        """

        def model(physics_weight=1.0, **training):
            del physics_weight, training  # no physics terms to temper or reweight
            coeffs, sigma = self._sample_coefficients_and_noise()
            self._observe_readings(self.at_readings(forward(coeffs)), sigma)
            self._observe_field_readings(coeffs)

        return model

    def model(self, physics_weight=1.0, term_weights=None, causal_epsilon=0.0,
              time_marching=False, output_layer=None, observe_data=True):
        """The numpyro model; data and points are part of the model object.

        With the defaults this is the posterior. The keywords reweight the likelihood terms for
        MAP training (``bpinn.inference.map.fit_map``); none of them is used when sampling.

        physics_weight : tempers the PDE residual and source terms. MAP training ramps it up
            from 0 so the network fits the data before the physics can pull it into the
            trivial solutions that satisfy the PDE but not the data.
        term_weights : observed site name -> weight of its log likelihood (NTK balancing);
            missing names weigh 1.
        causal_epsilon : > 0 weighs the residual at each time slice by
            ``exp(-causal_epsilon * sum of the mean squared whitened residuals of the earlier
            slices)`` (gradients stopped), so later times are only fitted once earlier ones
            are (Wang, Sankaran, Perdikaris 2022). Time-dependent problems only.
        time_marching : the physics weight becomes a front moving forward in time: a residual
            point at time fraction tau weighs ``clip((physics_weight * (1 + w) - tau) / w, 0, 1)``
            with ``w = MARCHING_WIDTH`` (a curriculum in time; Krishnapriyan et al. 2021).
        output_layer : the output layer's weights and bias, used in place of those in the
            ``weights`` site (whose prior still applies to the site's own values); for
            ``bpinn.inference.marginal``, which needs the terms' Jacobians with respect to
            them alone.
        observe_data : False leaves the readings (and source data and field readings)
            unobserved: the weights' prior conditioned on the physics alone, for
            ``bpinn.inference.implicit_prior``. The latent sites, hence the flat layout, are
            the same.
        """
        p, s = self.problem, self.settings

        def weight(name):
            return 1.0 if term_weights is None else term_weights.get(name, 1.0)

        weights = numpyro.sample(
            "weights", dist.Normal(0.0, jnp.asarray(self.weight_prior_sd)).to_event(1)
        )
        coeffs, sigma = self._sample_coefficients_and_noise()
        u = self.u_fn(weights, output_layer)
        if observe_data:
            with _scaled(weight("u_obs")):
                self._observe_readings(
                    self.at_readings(jax.vmap(u)(jnp.asarray(p.observations.coords))), sigma)
        self._observe_field_readings(coeffs, observe_data, weight)

        sigma_pde = _sample_scale("sigma_pde", s.residual_noise)
        if self.weak is not None:
            r = self.weak.residual(lambda z: p.pde.flux(u, z, coefficients_at(coeffs, z)),
                                   lambda z: p.source(z, coefficients_at(coeffs, z)))
            with numpyro.plate("test_functions", r.shape[0]), _scaled(
                    physics_weight * weight("pde_residual")):
                numpyro.sample("pde_residual", dist.Normal(r, sigma_pde), obs=jnp.zeros_like(r))
        else:
            self._strong_residual(u, coeffs, sigma_pde, physics_weight, weight, causal_epsilon,
                                  time_marching)
        self._conditions_and_source(u, coeffs, physics_weight, weight, observe_data)

    def _strong_residual(self, u, coeffs, sigma_pde, physics_weight, weight, causal_epsilon,
                         time_marching):
        p, s = self.problem, self.settings
        points = jnp.asarray(self.collocation)

        def residual_at(z):
            return residual(p.pde, p.source, u, z, coeffs)

        r = jax.vmap(residual_at)(points)  # (n,), or (n, equations) for a system
        scales = s.equation_scales
        # Per-equation sds are broadcast to the residual's shape: likelihood terms are read
        # back site by site (ntk, GGN), one scale per observed value.
        sd = sigma_pde if scales is None else jnp.broadcast_to(
            sigma_pde * jnp.asarray(scales), r.shape)
        point_weight = self._residual_point_weights(r / sd, physics_weight,
                                                    causal_epsilon, time_marching)
        with numpyro.plate("collocation", r.shape[0]), numpyro.handlers.scale(
            scale=point_weight * weight("pde_residual")
        ):
            numpyro.sample("pde_residual", dist.Normal(r, sd).to_event(r.ndim - 1),
                           obs=jnp.zeros_like(r))

        if s.residual_gradient_noise is not None:
            lengths = jnp.asarray(p.domain.upper - p.domain.lower)
            grad_r = jax.vmap(jax.jacfwd(residual_at))(points) * lengths
            grad_sd = s.residual_gradient_noise if scales is None else jnp.broadcast_to(
                s.residual_gradient_noise * jnp.asarray(scales)[:, None], grad_r.shape)
            with numpyro.plate("collocation", r.shape[0]), numpyro.handlers.scale(
                scale=point_weight * weight("pde_residual_gradient")
            ):
                numpyro.sample(
                    "pde_residual_gradient",
                    dist.Normal(grad_r, grad_sd).to_event(grad_r.ndim - 1),
                    obs=jnp.zeros_like(grad_r),
                )

    def _conditions_and_source(self, u, coeffs, physics_weight, weight, observe_data=True):
        p, s = self.problem, self.settings
        if self.soft:
            sigma_bc = _sample_scale("sigma_bc", s.condition_noise)
            for term in self.soft:
                vals = jax.vmap(lambda z, fn=term.residual_fn: fn(u, z, coeffs))(
                    jnp.asarray(term.points))
                target = (
                    jnp.zeros_like(vals) if term.targets is None else jnp.asarray(term.targets)
                )
                name = f"condition.{term.name}"
                with numpyro.plate(f"plate.{term.name}", vals.shape[0]), _scaled(weight(name)):
                    numpyro.sample(name, dist.Normal(vals, sigma_bc), obs=target)

        if p.source_data is not None:
            sigma_f = _sample_scale("sigma_source", p.source_noise)
            if not observe_data:
                return
            lf = jax.vmap(lambda z: p.pde.operator(u, z, coefficients_at(coeffs, z)))(
                jnp.asarray(p.source_data.coords)
            )
            with numpyro.plate("source_points", lf.shape[0]), numpyro.handlers.scale(
                scale=physics_weight * weight("source_obs")
            ):
                numpyro.sample(
                    "source_obs", dist.Normal(lf, sigma_f), obs=jnp.asarray(p.source_data.values)
                )

    def _residual_point_weights(self, whitened, physics_weight, causal_epsilon, time_marching):
        """Per-collocation-point weight of the residual terms (see ``model``)."""
        if not (causal_epsilon or time_marching):
            return physics_weight
        tau = self.collocation_time()
        if tau is None:
            raise ValueError("causal weighting and time marching need a time-dependent problem "
                             "(a [domain] t range)")
        tau = jnp.asarray(tau)
        if time_marching:
            front = physics_weight * (1.0 + MARCHING_WIDTH)
            point_weight = jnp.clip((front - tau) / MARCHING_WIDTH, 0.0, 1.0)
        else:
            point_weight = physics_weight * jnp.ones_like(tau)
        if causal_epsilon:
            bins = jnp.minimum((tau * CAUSAL_BINS).astype(jnp.int32), CAUSAL_BINS - 1)
            sq = jax.lax.stop_gradient(whitened) ** 2
            sq = sq.reshape(sq.shape[0], -1).sum(axis=1)  # a system: every equation at a point
            total = jax.ops.segment_sum(sq, bins, num_segments=CAUSAL_BINS)
            count = jax.ops.segment_sum(jnp.ones_like(sq), bins, num_segments=CAUSAL_BINS)
            mean = total / jnp.maximum(count, 1.0)
            earlier = jnp.cumsum(mean) - mean
            point_weight = point_weight * jnp.exp(-causal_epsilon * earlier)[bins]
        return point_weight


def build_model(problem: Problem, settings: ModelSettings) -> BPINN:
    """Turn a validated problem into a B-PINN.

    Examples
    --------
    See ``bpinn.api.run`` for the end-to-end path from a config file.
    """
    domain = problem.domain
    if settings.network.input_dim != domain.ndim:
        raise ValueError(
            f"network input_dim {settings.network.input_dim} does not match the domain's "
            f"{domain.ndim} coordinates {domain.coord_names}"
        )
    outputs = problem.pde.outputs
    if settings.network.output_dim != len(outputs):
        raise ValueError(
            f"the network has {settings.network.output_dim} output(s) but the PDE has "
            f"{len(outputs)} unknown function(s) {list(outputs)}")
    scales = settings.equation_scales
    if scales is not None and len(scales) != problem.pde.num_equations:
        raise ValueError(
            f"equation_scales has {len(scales)} entries but the PDE has "
            f"{problem.pde.num_equations} equation(s); give one per equation, in the order the "
            "operator returns them")
    if problem.pde.is_system:
        return _assemble(problem, settings, *_system_scales(problem))
    lift, distance = hard_constraint(domain, problem.conditions)
    offset, scale = _output_scale(problem.observations.values, problem.observations.coords,
                                  lift, distance)
    return _assemble(problem, settings, offset, scale, lift, distance)


def _output_scale(values, coords, lift, distance) -> tuple[float, float]:
    """Offset and scale of the network's output for these readings: their mean and spread, so
    the network sees them at size one. Under a hard constraint the network models
    (u - lift) / distance, which can be much larger than u itself where the distance is small
    (early times, near walls): no offset, and the scale covers that target at the sensors, so
    the weight prior is not fighting the fit."""
    values = np.asarray(values)
    scale = float(np.std(values)) if values.size > 1 else 0.0
    scale = scale if scale > 0 else max(float(np.max(np.abs(values))), 1.0)
    if lift is None:
        return float(np.mean(values)), scale
    coords = jnp.asarray(coords)
    dist_at = np.asarray(jax.vmap(distance)(coords))
    inside = dist_at > 0.1
    if np.any(inside):
        target = (values - np.asarray(jax.vmap(lift)(coords)))[inside] / dist_at[inside]
        scale = max(scale, float(np.sqrt(np.mean(target**2))))
    return 0.0, scale


def _system_scales(problem: Problem):
    """A system's (offsets, scales, lift, distance), one entry per output: each output scaled
    by its own readings (``_output_scale``) and constrained by its own hard conditions. An
    output never read takes the mean of the read outputs' scales and offset 0: nothing else
    says how large it is."""
    obs, outputs = problem.observations, problem.pde.outputs
    lift, distance, per_output = system_hard_constraint(problem.domain, problem.conditions,
                                                        len(outputs))
    offset, scale = np.zeros(len(outputs)), np.full(len(outputs), np.nan)
    for g, name in enumerate(obs.group_names):
        k = outputs.index(name)
        read = obs.group_index == g
        offset[k], scale[k] = _output_scale(obs.values[read], obs.coords[read], *per_output[k])
    scale[np.isnan(scale)] = float(np.nanmean(scale))
    return offset, scale, lift, distance


def _assemble(problem: Problem, settings: ModelSettings, offset, scale, lift, distance) -> BPINN:
    domain = problem.domain
    solution = SolutionModel(
        network=settings.network,
        lower=domain.lower,
        upper=domain.upper,
        value_offset=offset,
        value_scale=scale,
        lift_fn=lift,
        distance_fn=distance,
    )
    prior_sd = settings.network.prior_scales(
        settings.weight_prior_scale, fan_in_scaled=settings.fan_in_scaled
    )
    flat_sd, unravel = ravel_pytree(prior_sd)
    terms = soft_terms(domain, problem.conditions, num_points=settings.num_condition_points)
    weak = _weak_residual(problem, settings)
    return BPINN(
        problem=problem,
        settings=settings,
        solution=solution,
        collocation=(collocation_points(domain, settings.num_collocation) if weak is None
                     else weak.points),
        soft=tuple(terms),
        weight_prior_sd=np.asarray(flat_sd),
        unravel=unravel,
        weak=weak,
    )


def _weak_residual(problem: Problem, settings: ModelSettings) -> WeakResidual | None:
    if settings.residual_form != "weak":
        return None
    domain = problem.domain
    if domain.has_time or domain.space_dims != 1:
        raise ValueError(
            "residual_form = 'weak' is built for steady 1-D problems; this domain has "
            f"coordinates {domain.coord_names}")
    if problem.pde.flux is None:
        raise ValueError(
            f"residual_form = 'weak' needs the divergence form L[u] = -dF/dx + G of the PDE, "
            f"which {problem.pde.name!r} does not provide (built in: poisson in 1-D; a "
            "user-defined PDE gives it as [problem] flux = 'module:function' returning (F, G))")
    (lower, upper), = domain.space
    return WeakResidual.build(lower, upper, settings.num_collocation,
                              settings.num_test_functions)
