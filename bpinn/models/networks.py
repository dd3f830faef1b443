"""Solution networks: tanh MLP, Fourier-feature MLP and SIREN, as pure functions of a params pytree.

A network maps *scaled* coordinates (each in [-1, 1]) to one scalar, or to a vector for a system
of equations (``output_dim`` > 1). ``SolutionModel`` wraps
it into ``u(z)`` of physical coordinates, restoring the user's units and applying an optional
hard-constraint transform, so PDE operators never see the scaling.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

NETWORK_KINDS = ("mlp", "fourier", "siren")
ACTIVATIONS: dict[str, Callable] = {
    "tanh": jnp.tanh,
    "sin": jnp.sin,
    "gelu": jax.nn.gelu,
    "softplus": jax.nn.softplus,
    "swish": jax.nn.swish,
}

Params = list[tuple[jnp.ndarray, jnp.ndarray]]  # [(W, b), ...] with W of shape (fan_in, fan_out)


@dataclass(frozen=True, eq=False)
class Network:
    """A fully connected network ``R^ndim -> R`` (``R^output_dim`` for a system).

    Parameters
    ----------
    input_dim : number of coordinates (space dims plus time).
    width, depth : hidden layer width and number of hidden layers.
    kind : "mlp" (default), "fourier" (random Fourier features of the input, Tancik et al. 2020)
        or "siren" (sine activations with omega_0 scaling, Sitzmann et al. 2020).
    activation : hidden activation for "mlp" and "fourier" (one of ``ACTIVATIONS``).
    num_fourier : number of random frequencies for "fourier" (features = 2 * num_fourier).
    fourier_scale : standard deviation of the random frequencies, in cycles per unit of scaled
        coordinate (each in [-1, 1]); one number, or one per coordinate (``input_dim`` of them).
        Per-coordinate scales matter in space-time: a field with a fine pattern in x and a smooth
        decay in t needs high frequencies in x only, and isotropic frequencies put oscillations
        in t that the network must then cancel.
    siren_omega0 : frequency factor of SIREN's first layer.
    fourier_seed : seed of the fixed (not inferred) Fourier frequency matrix.
    output_dim : number of outputs; 1 gives a scalar, more a vector (one unknown function of a
        system each, sharing the hidden layers).

    Examples
    --------
    >>> import jax
    >>> net = Network(input_dim=2, width=8, depth=2)
    >>> params = net.init(jax.random.key(0))
    >>> net.apply(params, jax.numpy.zeros(2)).shape
    ()
    """

    input_dim: int
    width: int = 20
    depth: int = 2
    kind: str = "mlp"
    activation: str = "tanh"
    num_fourier: int = 16
    fourier_scale: float | tuple[float, ...] = 1.0
    siren_omega0: float = 30.0
    fourier_seed: int = 0
    output_dim: int = 1
    fourier_matrix: jnp.ndarray | None = field(default=None, repr=False)

    def __post_init__(self):
        if self.kind not in NETWORK_KINDS:
            raise ValueError(f"network kind {self.kind!r} is unknown; valid: {NETWORK_KINDS}")
        if self.kind != "siren" and self.activation not in ACTIVATIONS:
            raise ValueError(
                f"network activation {self.activation!r} is unknown; valid: {tuple(ACTIVATIONS)}"
            )
        for name in ("input_dim", "width", "depth", "output_dim"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"network {name} must be a positive integer, got {value!r}")
        scales = np.atleast_1d(np.asarray(self.fourier_scale, dtype=float))
        if scales.ndim != 1 or scales.size not in (1, self.input_dim) or not np.all(scales > 0):
            raise ValueError(
                f"network fourier_scale must be a positive number or {self.input_dim} positive "
                f"numbers (one per coordinate), got {self.fourier_scale!r}")
        if self.kind == "fourier" and self.fourier_matrix is None:
            key = jax.random.key(self.fourier_seed)
            matrix = jnp.asarray(np.broadcast_to(scales, (self.input_dim,)))[:, None] * \
                jax.random.normal(key, (self.input_dim, self.num_fourier))
            object.__setattr__(self, "fourier_matrix", matrix)

    @property
    def layer_sizes(self) -> tuple[int, ...]:
        first = 2 * self.num_fourier if self.kind == "fourier" else self.input_dim
        return (first,) + (self.width,) * self.depth + (self.output_dim,)

    @property
    def num_params(self) -> int:
        sizes = self.layer_sizes
        return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:], strict=True))

    def init_scales(self) -> list[tuple[float, float]]:
        """Per-layer (weight, bias) standard deviations used for random initialisation."""
        sizes = self.layer_sizes
        scales = []
        for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            if self.kind == "siren":
                # Sitzmann et al.: sin(omega0 (W x + b)) with W ~ U(-1/n, 1/n) first and
                # U(-sqrt(6/n)/omega0, ...) after. Here omega0 is folded into the later layers'
                # weights (W' = omega0 W, the same functions), so every hidden pre-activation is
                # O(1) and a Gaussian prior of a few init sds stays a sensible prior; each
                # uniform is replaced by the Gaussian of the same variance.
                bound = 1.0 / fan_in if i == 0 else np.sqrt(6.0 / fan_in)
                scales.append((bound / np.sqrt(3.0), bound / np.sqrt(3.0)))
            else:
                scales.append((np.sqrt(2.0 / (fan_in + fan_out)), 0.0))  # Glorot normal
        return scales

    def init(self, rng_key) -> Params:
        """Random initial parameters (Glorot for tanh/Fourier, Sitzmann's scheme for SIREN)."""
        sizes = self.layer_sizes
        keys = jax.random.split(rng_key, 2 * (len(sizes) - 1))
        params = []
        for i, ((fan_in, fan_out), (w_sd, b_sd)) in enumerate(
            zip(zip(sizes[:-1], sizes[1:], strict=True), self.init_scales(), strict=True)
        ):
            w = w_sd * jax.random.normal(keys[2 * i], (fan_in, fan_out))
            b = b_sd * jax.random.normal(keys[2 * i + 1], (fan_out,))
            params.append((w, b))
        return params

    def prior_scales(self, scale: float, *, fan_in_scaled: bool) -> Params:
        """Standard deviations of the Gaussian weight prior, in the params layout.

        With ``fan_in_scaled`` each weight has sd ``scale / sqrt(fan_in)`` (biases ``scale``), so
        the prior over functions does not grow with the width; otherwise every sd is ``scale``.
        A SIREN's prior is its initialisation widened ``scale`` times (``fan_in_scaled`` does
        not apply): a SIREN only represents smooth, well-spread functions near that
        distribution, and an sd of ``scale`` on its first layer would mean frequencies of
        ``omega0 * scale``.
        """
        sizes = self.layer_sizes
        if self.kind == "siren":
            return [
                (jnp.full((fan_in, fan_out), scale * w_sd), jnp.full((fan_out,), scale * b_sd))
                for (fan_in, fan_out), (w_sd, b_sd) in zip(
                    zip(sizes[:-1], sizes[1:], strict=True), self.init_scales(), strict=True)
            ]
        out = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
            w_sd = scale / np.sqrt(fan_in) if fan_in_scaled else scale
            out.append((jnp.full((fan_in, fan_out), w_sd), jnp.full((fan_out,), scale)))
        return out

    def features(self, z_scaled):
        if self.kind == "fourier":
            proj = 2.0 * jnp.pi * z_scaled @ self.fourier_matrix
            return jnp.concatenate([jnp.sin(proj), jnp.cos(proj)])
        return z_scaled

    def apply(self, params: Params, z_scaled) -> jnp.ndarray:
        """Network output at one point of scaled coordinates (shape (input_dim,))."""
        h = self.features(z_scaled)
        *hidden, (w_out, b_out) = params
        for i, (w, b) in enumerate(hidden):
            pre = h @ w + b
            if self.kind == "siren":
                h = jnp.sin(self.siren_omega0 * pre if i == 0 else pre)  # omega0 folded in
            else:
                h = ACTIVATIONS[self.activation](pre)
        out = h @ w_out + b_out
        return out[0] if self.output_dim == 1 else out


@dataclass(frozen=True, eq=False)
class SolutionModel:
    """``u(z)`` in physical units from a network of scaled coordinates.

    ``u(z) = lift(z) + distance(z) * (offset + scale * net(scaled(z)))`` where, without hard
    constraints, ``lift = 0`` and ``distance = 1``. The lift and distance functions come from
    ``bpinn.models.conditions.hard_constraint`` and make Dirichlet/initial conditions hold exactly.
    For a system, ``offset`` and ``scale`` hold one value per output (outputs can differ in size
    by orders of magnitude).
    """

    network: Network
    lower: np.ndarray
    upper: np.ndarray
    value_offset: float | np.ndarray = 0.0
    value_scale: float | np.ndarray = 1.0
    lift_fn: Callable | None = None
    distance_fn: Callable | None = None

    def scale_coords(self, z):
        return 2.0 * (z - self.lower) / (self.upper - self.lower) - 1.0

    def u_fn(self, params: Params) -> Callable:
        """The solution ``u: (ndim,) -> scalar`` (``(output_dim,)`` for a system) for given
        network parameters."""

        def u(z):
            out = self.value_offset + self.value_scale * self.network.apply(
                params, self.scale_coords(z)
            )
            if self.distance_fn is not None:
                out = self.distance_fn(z) * out
            if self.lift_fn is not None:
                out = self.lift_fn(z) + out
            return out

        return u
