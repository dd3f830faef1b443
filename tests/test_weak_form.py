"""The weak (variational) residual: quadrature, integration by parts, and its config checks."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import pytest

from bpinn.api import prepare
from bpinn.config import ConfigError, load_config
from bpinn.models.likelihood import WeakResidual

POISSON = """\
[problem]
pde = "{pde}"
source = 2.0
{problem_extra}
[domain]
x = [0.5, 2.5]
[coefficients]
k = {{ prior = "LogNormal", loc = 0.0, scale = 1.0 }}
[[conditions]]
kind = "dirichlet"
boundary = "all"
value = 0.0
hard = true
[data]
file = "obs.csv"
noise = 0.01
[model]
width = 8
num_collocation = 64
residual_form = "weak"
{model_extra}
"""

USER_PDE = '''\
import jax

def operator(u_fn, z, coeffs):
    return -coeffs["k"] * jax.hessian(u_fn)(z)[0, 0]

def flux(u_fn, z, coeffs):
    return coeffs["k"] * jax.grad(u_fn)(z)[0], 0.0

def bad_flux(u_fn, z, coeffs):
    return coeffs["k"]
'''


def _config(tmp_path, pde="poisson", problem_extra="", model_extra="", inference=""):
    (tmp_path / "obs.csv").write_text("x,u\n1.0,0.3\n1.5,0.5\n2.0,0.3\n")
    (tmp_path / "userpde.py").write_text(USER_PDE)
    path = tmp_path / "config.toml"
    path.write_text(POISSON.format(pde=pde, problem_extra=problem_extra,
                                   model_extra=model_extra) + inference)
    return path


def test_quadrature_integrates_the_test_functions_exactly():
    weak = WeakResidual.build(0.5, 2.5, 64, 16)
    length = 2.0
    gram = (weak.v * weak.weights) @ weak.v.T  # integral of v_j v_k = L/2 delta_jk
    np.testing.assert_allclose(gram, np.eye(16) * length / 2, atol=1e-12)
    np.testing.assert_allclose(weak.v[:, [0, -1]], 0.0, atol=0.1)  # nodes near the ends
    assert np.all((weak.points > 0.5) & (weak.points < 2.5))


def test_weak_residual_of_the_exact_solution_vanishes():
    # -k u'' = f with u = sin(pi (x - a) / L) * 3, k = 0.7: f = k (pi/L)^2 u.
    a, b, k = 0.5, 2.5, 0.7
    w = np.pi / (b - a)
    weak = WeakResidual.build(a, b, 64, 16)

    def u(z):
        return 3.0 * jnp.sin(w * (z[0] - a))

    r = weak.residual(lambda z: (k * jax.grad(u)(z)[0], jnp.zeros(())),
                      lambda z: k * w**2 * u(z))
    np.testing.assert_allclose(np.asarray(r), 0.0, atol=1e-10)
    # and a wrong k leaves exactly mode 1, with the amplitude of the strong residual (0.1 w^2 3)
    r = weak.residual(lambda z: (0.8 * jax.grad(u)(z)[0], jnp.zeros(())),
                      lambda z: k * w**2 * u(z))
    np.testing.assert_allclose(np.asarray(r), [0.1 * w**2 * 3] + [0.0] * 15, atol=1e-10)


@pytest.mark.parametrize("pde,extra", [("poisson", ""),
                                       ("userpde:operator", 'flux = "userpde:flux"')])
def test_weak_residual_is_the_strong_residual_integrated_by_parts(tmp_path, pde, extra):
    model = prepare(load_config(_config(tmp_path, pde=pde, problem_extra=extra)))
    weak = model.weak
    np.testing.assert_array_equal(model.collocation, weak.points)
    values = {"weights": jax.random.normal(jax.random.key(0), (model.num_weights,)),
              "k": jnp.asarray(1.3)}
    coeffs = model.coefficient_values(values)
    strong = np.asarray(model.residuals(values["weights"], coeffs, weak.points))
    projected = weak.scale * (weak.v @ (weak.weights * strong))
    tr = numpyro.handlers.trace(numpyro.handlers.substitute(
        numpyro.handlers.seed(model.model, 0), data=values)).get_trace()
    site = tr["pde_residual"]
    assert site["value"].shape == (16,)
    np.testing.assert_allclose(np.asarray(site["fn"].loc), projected, rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize("kwargs,match", [
    ({"pde": "heat"}, None),
    ({"model_extra": "num_test_functions = 40"}, r"num_test_functions must be .* 32"),
    ({"model_extra": "residual_gradient_noise = 0.1"}, r"needs the strong residual"),
    ({"model_extra": 'residual_form = "variational"'}, None),
    ({"inference": "[inference]\nmap_resample_rounds = 1\n"}, r"map_resample_rounds: .*weak"),
    ({"pde": "userpde:operator"}, r"\[problem\] flux = 'module:function'"),
    ({"pde": "userpde:operator", "problem_extra": 'flux = "userpde:bad_flux"'},
     r"\[problem\] flux: flux 'userpde:bad_flux' must return a pair"),
    ({"problem_extra": 'flux = "userpde:flux"'}, r"\[problem\] flux: only user-defined"),
])
def test_weak_form_config_errors(tmp_path, kwargs, match):
    if kwargs.get("model_extra", "").startswith("residual_form"):
        path = _config(tmp_path)
        path.write_text(path.read_text().replace('residual_form = "weak"',
                                                 'residual_form = "variational"'))
        match = r"residual_form 'variational' is unknown; valid: \('strong', 'weak'\)"
    elif kwargs.get("pde") == "heat":
        path = _config(tmp_path)
        text = path.read_text().replace('pde = "poisson"', 'pde = "heat"')
        path.write_text(text.replace("x = [0.5, 2.5]", "x = [0.5, 2.5]\nt = [0.0, 1.0]")
                        .replace("k = {", "D = {").replace("x,u\n", "x,t,u\n"))
        (tmp_path / "obs.csv").write_text("x,t,u\n1.0,0.1,0.3\n1.5,0.2,0.5\n2.0,0.3,0.3\n")
        match = r"\[model\]: residual_form = 'weak' is built for steady 1-D problems"
    else:
        path = _config(tmp_path, **kwargs)
    with pytest.raises(ConfigError, match=match):
        prepare(load_config(path))
