"""Unknown coefficient fields: a coefficient that varies over the domain, k(x), with a Gaussian
process prior.

Why a Gaussian process and not a second network: a scientist can state a prior over functions
in the terms of the problem (a level, an amplitude, a length scale over which the coefficient
varies), and the posterior's spread then means "what the data leave open within that prior".
A network's weight prior says nothing that plain.

The process is represented by a reduced-rank expansion (Solin and Sarkka 2020; Riutort-Mayol
et al. 2022): the Laplacian's Dirichlet eigenfunctions on a box somewhat larger than the
domain, each weighted by the square root of the kernel's spectral density at its frequency,

    g(z) = loc + sum_j sqrt(S(omega_j)) phi_j(z) xi_j,      xi_j ~ N(0, 1),

and the coefficient is ``exp(g)`` (``log = true``: positive, marginally LogNormal(loc, scale)
at every point) or ``g`` itself. The sampled latent ``xi`` is white, so the sampler meets a
standard normal prior, the best-conditioned kind. The kernel is the squared exponential with
amplitude ``scale`` and one length scale per coordinate the field depends on; Matern
5/2 and 3/2 kernels give rougher fields.

A PDE operator reads ``coeffs[name]`` as the field's value at the point it is evaluated at, so
built-in and user operators that multiply by a coefficient take fields unchanged. The function
itself is in ``coeffs["fields"][name]`` for terms that differentiate it (divergence forms: the
built-in diffusion terms use ``div(k grad u)`` when k is a field).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import cached_property

import jax
import jax.numpy as jnp
import numpy as np

# The key of coeffs under which a PDE operator finds the coefficient fields as functions.
FIELDS_KEY = "fields"
# The basis lives on a box this many times the domain's half-width (at least), so the
# eigenfunctions' zero boundary values stay away from the domain (Riutort-Mayol et al. 2022
# recommend at least 1.2; at 2 the prior variance at the domain's edges is within 1% of the
# stated one; long length scales need more, see ``boundary_factor``).
MIN_BOUNDARY_FACTOR = 2.0
# At most this many basis functions in all: the latent vector is sampled with the weights.
MAX_BASIS = 400
# kernel -> (smoothness nu, None for the squared exponential; the box factor c >= a l / S and
# the basis count m >= b c S / l of Riutort-Mayol et al. 2022, Table/eqs for each kernel).
KERNELS = {
    "squared_exponential": (None, 3.2, 1.75),
    "matern52": (2.5, 4.1, 2.65),
    "matern32": (1.5, 4.5, 3.42),
}


@dataclass(frozen=True)
class GaussianProcessField:
    """The prior of an unknown coefficient field.

    Attributes
    ----------
    name : the coefficient's name.
    axes : indices of the domain coordinates the field depends on (space by default).
    axis_names : their names, for messages and results.
    lower, upper : the domain's bounds along those axes.
    loc : mean of g (of log k when ``log``).
    scale : prior sd of g at every point (the kernel's amplitude).
    length_scale : one per axis, in the coordinates' units.
    log : the coefficient is exp(g) (positive); otherwise g.
    num_basis : basis functions per axis.
    kernel : "squared_exponential" (smooth), "matern52" or "matern32" (rougher fields:
        twice and once differentiable).
    """

    name: str
    axes: tuple[int, ...]
    axis_names: tuple[str, ...]
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    loc: float = 0.0
    scale: float = 1.0
    length_scale: tuple[float, ...] = ()
    log: bool = True
    num_basis: tuple[int, ...] = ()
    kernel: str = "squared_exponential"

    def __post_init__(self):
        if self.kernel not in KERNELS:
            raise ValueError(f"field {self.name!r}: unknown kernel {self.kernel!r}; valid: "
                             f"{list(KERNELS)}")
        n = len(self.axes)
        for key in ("axis_names", "lower", "upper", "length_scale", "num_basis"):
            if len(getattr(self, key)) != n:
                raise ValueError(f"field {self.name!r}: {key} needs one entry per axis "
                                 f"({n}), got {getattr(self, key)!r}")
        if not (math.isfinite(self.scale) and self.scale > 0):
            raise ValueError(f"field {self.name!r}: scale must be a positive number, got "
                             f"{self.scale!r}")
        if not math.isfinite(self.loc):
            raise ValueError(f"field {self.name!r}: loc must be finite, got {self.loc!r}")
        if any(not (math.isfinite(s) and s > 0) for s in self.length_scale):
            raise ValueError(f"field {self.name!r}: every length_scale must be a positive "
                             f"number, got {list(self.length_scale)}")
        if any(m < 1 for m in self.num_basis) or self.num_latent > MAX_BASIS:
            raise ValueError(f"field {self.name!r}: num_basis {list(self.num_basis)} gives "
                             f"{self.num_latent} basis functions; each axis needs at least 1 "
                             f"and at most {MAX_BASIS} are supported in all (a longer "
                             "length_scale needs fewer)")

    @property
    def num_latent(self) -> int:
        return int(np.prod(self.num_basis))

    @property
    def half_widths(self) -> np.ndarray:
        return (np.asarray(self.upper) - np.asarray(self.lower)) / 2

    @cached_property
    def _tables(self):
        """(centre, box half-width L, frequencies (M, axes), sqrt spectral density (M,))."""
        half = self.half_widths
        ell = np.asarray(self.length_scale)
        box = boundary_factor(ell, half, self.kernel) * half
        centre = (np.asarray(self.lower) + np.asarray(self.upper)) / 2
        index = np.array(list(itertools.product(*(range(1, m + 1) for m in self.num_basis))))
        omega = np.pi * index / (2 * box)
        # one length scale per axis: the unit-length-scale density at the scaled frequency
        density = (self.scale**2 * np.prod(ell)
                   * unit_spectral_density(self.kernel, np.sum((ell * omega) ** 2, axis=1),
                                           len(self.axes)))
        return centre, box, omega, np.sqrt(density)

    def basis_on(self, points_on_axes) -> jnp.ndarray:
        """The weighted basis at points given in the field's own axes (n, axes): (n, M)."""
        centre, box, omega, weight = self._tables
        s = jnp.asarray(points_on_axes)[:, None, :] - centre + box
        return weight * jnp.prod(jnp.sin(omega[None] * s) / np.sqrt(box), axis=2)

    def basis(self, z) -> jnp.ndarray:
        """The weighted basis at one point ``z`` (the domain's full coordinate vector): (M,)."""
        return self.basis_on(jnp.asarray(z)[jnp.asarray(self.axes)][None])[0]

    def log_value(self, latent, z):
        """g(z): the Gaussian process itself."""
        return self.loc + self.basis(z) @ latent

    def value(self, latent, z):
        g = self.log_value(latent, z)
        return jnp.exp(g) if self.log else g

    def describe(self) -> str:
        kind = f"log {self.name}" if self.log else self.name
        ell = ", ".join(f"{a}: {v:g}" for a, v in zip(self.axis_names, self.length_scale,
                                                      strict=True))
        return (f"field over ({', '.join(self.axis_names)}): {kind} ~ GP(mean {self.loc:g}, "
                f"sd {self.scale:g}, {self.kernel.replace('_', '-')}, length scale {ell}; "
                f"{self.num_latent} basis functions)")


def unit_spectral_density(kernel: str, omega_sq, dim: int) -> np.ndarray:
    """Spectral density of the kernel with unit amplitude and length scale in ``dim``
    dimensions, at squared frequencies ``omega_sq`` (Rasmussen and Williams 2006, 4.2)."""
    nu = KERNELS[kernel][0]
    if nu is None:
        return (2 * np.pi) ** (dim / 2) * np.exp(-0.5 * omega_sq)
    const = (2**dim * np.pi ** (dim / 2) * math.gamma(nu + dim / 2) * (2 * nu) ** nu
             / math.gamma(nu))
    return const * (2 * nu + omega_sq) ** -(nu + dim / 2)


def boundary_factor(length_scale, half_width, kernel: str = "squared_exponential"
                    ) -> np.ndarray:
    """How much larger than the domain the basis box is, per axis: long length scales need a
    larger box, or the prior's variance sags towards the domain's edges (Riutort-Mayol et al.
    2022: c >= a l / S, a = 3.2 for the squared exponential)."""
    return np.maximum(MIN_BOUNDARY_FACTOR, KERNELS[kernel][1] * np.asarray(length_scale)
                      / half_width)


def default_num_basis(length_scale, half_width, kernel: str = "squared_exponential"
                      ) -> tuple[int, ...]:
    """Basis functions per axis for a good approximation of the kernel (Riutort-Mayol et al.
    2022: m >= b c S / l, b = 1.75 for the squared exponential), plus two for margin."""
    ell, half = np.asarray(length_scale, float), np.asarray(half_width, float)
    factor = KERNELS[kernel][2]
    m = np.ceil(factor * boundary_factor(ell, half, kernel) * half / ell).astype(int) + 2
    return tuple(int(v) for v in m)


@jax.tree_util.register_pytree_node_class
@dataclass(frozen=True)
class FieldValue:
    """One draw of a coefficient field: a function of the point, ``field(z) -> k(z)``.

    A pytree (the latent vector is its leaf), so it travels through jit and vmap inside the
    coefficient dict like a scalar coefficient does.
    """

    spec: GaussianProcessField
    latent: jnp.ndarray

    def __call__(self, z):
        return self.spec.value(self.latent, z)

    def tree_flatten(self):
        return (self.latent,), self.spec

    @classmethod
    def tree_unflatten(cls, spec, children):
        return cls(spec, children[0])


@dataclass(frozen=True, eq=False)
class FieldReadings:
    """Direct, noisy readings of an unknown coefficient field at points: a conductivity
    measured at wells, an initial temperature measured at a few places. They inform the field
    where they are, independently of the solution.

    Attributes
    ----------
    field : the field's name (a ``GaussianProcessField`` of the problem).
    observations : ``bpinn.data.Observations`` at points in the field's own coordinates
        (its ``axis_names``), so a field over x alone is read at an x, whatever the time.
    noise : the readings' noise sd, ``Fixed`` or ``Prior`` (site ``sigma_<field>``).
    log : the readings are of log k (Gaussian noise on the log) rather than of k.
    """

    field: str
    observations: object
    noise: object
    log: bool = False

    @property
    def site(self) -> str:
        """The observed site of the readings."""
        return f"field_obs.{self.field}"

    @property
    def noise_site(self) -> str:
        """The site of their noise sd, when it is inferred."""
        return f"sigma_{self.field}"

    def predicted(self, spec: GaussianProcessField, latent) -> jnp.ndarray:
        """The readings' expected values for the field's latent vector: (n,)."""
        g = spec.loc + spec.basis_on(self.observations.coords) @ latent
        return g if (self.log or not spec.log) else jnp.exp(g)


def has_fields(coeffs) -> bool:
    return any(isinstance(v, FieldValue) for v in coeffs.values())


def coefficients_at(coeffs, z):
    """The coefficient dict a PDE operator sees at point ``z``: every field replaced by its
    value there, and the fields themselves under ``coeffs["fields"]``. Unchanged without
    fields."""
    if not has_fields(coeffs):
        return coeffs
    fields = {n: v for n, v in coeffs.items() if isinstance(v, FieldValue)}
    out = {n: (v(z) if n in fields else v) for n, v in coeffs.items()}
    out[FIELDS_KEY] = fields
    return out


def field_grid(spec: GaussianProcessField, points_per_axis: tuple[int, ...]):
    """A regular grid over the field's axes: (axis name -> coordinates, points (n, axes))."""
    axes = [np.linspace(lo, hi, n) for lo, hi, n in
            zip(spec.lower, spec.upper, points_per_axis, strict=True)]
    mesh = np.meshgrid(*axes, indexing="ij")
    points = np.stack([m.ravel() for m in mesh], axis=1)
    return dict(zip(spec.axis_names, axes, strict=True)), points


def values_on(spec: GaussianProcessField, latent, points_on_axes) -> jnp.ndarray:
    """The field at points given in the field's own axes (n, axes), for a batch of latent
    draws (..., M): shape (..., n)."""
    g = spec.loc + jnp.asarray(latent) @ spec.basis_on(points_on_axes).T
    return jnp.exp(g) if spec.log else g
