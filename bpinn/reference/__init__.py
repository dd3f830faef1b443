"""Classical reference solvers: the gold standard a B-PINN posterior is checked against.

All solvers are pure ``jax.numpy`` (jit-able, differentiable in the PDE coefficients) and use
the sign conventions and coefficient names of :mod:`bpinn.models.pdes`. Points are arrays of
shape ``(num_points, ndim)`` with columns ``(x[, y][, t])``.

Modules
-------
:mod:`bpinn.reference.heat`
    ``heat_sine_series``, ``heat_sine_coefficients``: the 1-D Dirichlet heat solution as a sine
    series with given coefficients, and Gauss-Legendre projection onto it.
:mod:`bpinn.reference.spectral`
    Exact spectral solutions (one multiplier per mode, no time stepping), 1-D and 2-D, periodic
    (Fourier) or Dirichlet (sine) per axis: ``heat_spectral`` (``u_t = D lap u``),
    ``advection_spectral`` (``u_t + c . grad u = 0``, periodic), ``poisson_spectral``
    (``-k lap u = f``), ``schrodinger_spectral`` (linear ``i h_t + a lap h = 0``, complex; not a
    PDE of ``pdes.py``, so not in the registry); ``spectral_grid`` gives the data nodes.
:mod:`bpinn.reference.mol`
    Method of lines in 1-D, second order in space and time (Crank-Nicolson diffusion, Heun for
    the rest), ``lax.scan`` in time, cubic interpolation to the requested points:
    ``heat_mol`` (with a source), ``reaction_diffusion_mol`` (all reaction kinds),
    ``burgers_mol``; ``mol_grid`` gives the nodes. ``reaction_diffusion_steady``: the steady
    1-D problem with Dirichlet ends on the same grid, by damped Newton (implicit derivatives).
:mod:`bpinn.reference.registry`
    ``reference_solver(pde_name)`` and ``available_reference_solvers()``: which PDE names have
    a reference solver; ``ReferenceSolver.forward(domain, points, initial=..., ...)`` and
    ``problem_forward(problem)`` build ``forward(coeffs) -> u at the points`` for simulating
    sensor data and for a classical Bayesian inversion over the coefficients.

Not provided: the cubic (nonlinear) Schrodinger equation, advection-diffusion, steady
reaction-diffusion in 2-D, and method-of-lines solvers in 2-D space.

Examples
--------
>>> import numpy as np, jax.numpy as jnp
>>> from bpinn.models.problem import Domain
>>> forward = reference_solver("heat").forward(
...     Domain(space=((0.0, 1.0),), time=(0.0, 1.0)), np.array([[0.5, 1.0]]),
...     initial=lambda z: jnp.sin(jnp.pi * z[0]))
>>> bool(np.allclose(forward({"D": 0.1}), np.exp(-0.1 * np.pi**2)))
True
"""

from bpinn.reference.heat import heat_sine_coefficients, heat_sine_series
from bpinn.reference.mol import (
    burgers_mol,
    heat_mol,
    mol_grid,
    reaction_diffusion_mol,
    reaction_diffusion_steady,
)
from bpinn.reference.registry import (
    REFERENCE_SOLVERS,
    ReferenceSolver,
    available_reference_solvers,
    problem_forward,
    reference_solver,
)
from bpinn.reference.spectral import (
    advection_spectral,
    heat_spectral,
    poisson_spectral,
    schrodinger_spectral,
    spectral_grid,
)

__all__ = [
    "REFERENCE_SOLVERS",
    "ReferenceSolver",
    "advection_spectral",
    "available_reference_solvers",
    "burgers_mol",
    "heat_mol",
    "heat_sine_coefficients",
    "heat_sine_series",
    "heat_spectral",
    "mol_grid",
    "poisson_spectral",
    "problem_forward",
    "reaction_diffusion_mol",
    "reaction_diffusion_steady",
    "reference_solver",
    "schrodinger_spectral",
    "spectral_grid",
]
