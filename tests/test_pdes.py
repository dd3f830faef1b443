"""Built-in PDE operators vanish on exact solutions; derivative helpers match closed forms."""

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from bpinn.models import pdes  # noqa: E402
from bpinn.models.problem import PDE, Domain, residual, zero_source  # noqa: E402
from bpinn.reference.heat import heat_sine_series  # noqa: E402

PI = jnp.pi
TOL = 1e-8
NUM_POINTS = 64


def random_points(domain: Domain, seed: int, num: int = NUM_POINTS) -> jnp.ndarray:
    rng = np.random.default_rng(seed)
    return jnp.asarray(rng.uniform(domain.lower, domain.upper, size=(num, domain.ndim)))


def max_residual(pde, source, u_fn, domain, coeffs, seed=0):
    z = random_points(domain, seed)
    coeffs = {k: jnp.asarray(v, dtype=jnp.float64) for k, v in coeffs.items()}
    r = jax.jit(jax.vmap(lambda zi: residual(pde, source, u_fn, zi, coeffs)))(z)
    assert r.shape == (NUM_POINTS,)
    assert r.dtype == jnp.float64
    return float(jnp.max(jnp.abs(r)))


# --------------------------------------------------------------------------------------------
# Exact / manufactured solutions, one per case: (pde name, options, domain, coeffs, u, f)
# f = None means the zero source (exact solution of the homogeneous equation).
# --------------------------------------------------------------------------------------------

D1 = Domain(space=((0.0, 2.0),), time=(0.0, 1.0))
D2 = Domain(space=((0.0, 1.0), (-1.0, 1.0)), time=(0.0, 0.5))
S1 = Domain(space=((-1.0, 1.5),))
S2 = Domain(space=((0.0, 1.0), (0.0, 2.0)))


def heat_1d():
    coeffs = {"D": 0.3}
    b = jnp.array([1.0, -0.4, 0.25, 0.1])

    def u(z):
        return heat_sine_series(z[0], z[1], coeffs["D"], b, interval=(0.0, 2.0))

    return "heat", {}, D1, coeffs, u, None


def heat_2d():
    coeffs = {"D": 0.2}
    m, n = 2, 3

    def u(z):
        x, y, t = z
        decay = jnp.exp(-coeffs["D"] * PI**2 * (m**2 + n**2) * t)
        return jnp.sin(m * PI * x) * jnp.sin(n * PI * y) * decay

    return "heat", {}, D2, coeffs, u, None


def advection_1d():
    coeffs = {"c": 1.7}

    def u(z):
        return jnp.sin(z[0] - coeffs["c"] * z[1])

    return "advection", {}, D1, coeffs, u, None


def advection_2d():
    coeffs = {"c_x": 0.8, "c_y": -1.3}

    def u(z):
        x, y, t = z
        xi, eta = x - coeffs["c_x"] * t, y - coeffs["c_y"] * t
        return jnp.sin(2 * xi) * jnp.cos(eta) + xi * eta**2

    return "advection", {}, D2, coeffs, u, None


def poisson_1d():
    coeffs = {"k": 2.5}

    def u(z):
        x = z[0]
        return jnp.sin(2 * x) + x**3

    def f(z, c):
        x = z[0]
        return c["k"] * (4 * jnp.sin(2 * x) - 6 * x)  # -k u''

    return "poisson", {}, S1, coeffs, u, f


def poisson_2d():
    coeffs = {"k": 0.7}

    def u(z):
        x, y = z
        return jnp.sin(PI * x) * jnp.cosh(y) + x**2 * y

    def f(z, c):
        x, y = z
        lap = (1 - PI**2) * jnp.sin(PI * x) * jnp.cosh(y) + 2 * y
        return -c["k"] * lap

    return "poisson", {}, S2, coeffs, u, f


def burgers_front():
    # u = c - A tanh(A (x - c t) / (2 nu)): with T = tanh(.), u_x = -A^2 (1 - T^2) / (2 nu),
    # u_t = -c u_x and u_xx = A^3 T (1 - T^2) / (2 nu^2), so
    # u_t + u u_x = (u - c) u_x = -A T u_x = A^3 T (1 - T^2) / (2 nu) = nu u_xx.
    coeffs = {"nu": 0.15}
    c, A = 0.4, 0.6

    def u(z):
        x, t = z
        return c - A * jnp.tanh(A * (x - 1.0 - c * t) / (2 * coeffs["nu"]))

    return "burgers", {}, D1, coeffs, u, None


def burgers_manufactured():
    coeffs = {"nu": 0.05}

    def u(z):
        x, t = z
        return jnp.exp(-t) * jnp.sin(PI * x)

    def f(z, c):
        x, t = z
        e, s, co = jnp.exp(-t), jnp.sin(PI * x), jnp.cos(PI * x)
        return -e * s + (e * s) * (PI * e * co) + c["nu"] * PI**2 * e * s

    return "burgers", {}, D1, coeffs, u, f


REACTIONS = {
    "logistic": lambda u: u * (1 - u),
    "cubic": lambda u: u - u**3,
    "tanh": jnp.tanh,
    "linear": lambda u: u,
    "quadratic": lambda u: u**2,
}


def reaction_unsteady_1d(reaction):
    coeffs = {"D": 0.4, "k": 1.3}

    def u(z):
        x, t = z
        return 0.3 + 0.5 * jnp.exp(-t) * jnp.sin(PI * x)

    def f(z, c):
        x, t = z
        w = 0.5 * jnp.exp(-t) * jnp.sin(PI * x)
        # u_t = -w, u_xx = -pi^2 w
        return -w + c["D"] * PI**2 * w - c["k"] * REACTIONS[reaction](0.3 + w)

    return "reaction_diffusion", {"reaction": reaction}, D1, coeffs, u, f


def reaction_unsteady_2d(reaction):
    coeffs = {"D": 0.1, "k": 0.6}

    def u(z):
        x, y, t = z
        return jnp.cos(t) * x * y + 0.2 * y**2

    def f(z, c):
        x, y, t = z
        uu = jnp.cos(t) * x * y + 0.2 * y**2
        return -jnp.sin(t) * x * y - c["D"] * 0.4 - c["k"] * REACTIONS[reaction](uu)

    return "reaction_diffusion", {"reaction": reaction}, D2, coeffs, u, f


def reaction_steady_2d(reaction):
    coeffs = {"D": 0.9, "k": 2.0}

    def u(z):
        x, y = z
        return 0.5 * jnp.sin(PI * x) * jnp.sin(0.5 * PI * y) + 0.2 * x

    def f(z, c):
        x, y = z
        w = 0.5 * jnp.sin(PI * x) * jnp.sin(0.5 * PI * y)
        lap = -(PI**2 + 0.25 * PI**2) * w
        return -c["D"] * lap - c["k"] * REACTIONS[reaction](w + 0.2 * x)

    return "reaction_diffusion", {"reaction": reaction}, S2, coeffs, u, f


def reaction_steady_1d(reaction):
    coeffs = {"D": 0.5, "k": 0.8}

    def u(z):
        x = z[0]
        return x**2 - 0.5 * x

    def f(z, c):
        x = z[0]
        return -c["D"] * 2.0 - c["k"] * REACTIONS[reaction](x**2 - 0.5 * x)

    return "reaction_diffusion", {"reaction": reaction}, S1, coeffs, u, f


CASES = {
    "heat-1d": heat_1d,
    "heat-2d": heat_2d,
    "advection-1d": advection_1d,
    "advection-2d": advection_2d,
    "poisson-1d": poisson_1d,
    "poisson-2d": poisson_2d,
    "burgers-front": burgers_front,
    "burgers-manufactured": burgers_manufactured,
}
for _reaction in REACTIONS:
    for _label, _case in [
        ("unsteady-1d", reaction_unsteady_1d),
        ("unsteady-2d", reaction_unsteady_2d),
        ("steady-1d", reaction_steady_1d),
        ("steady-2d", reaction_steady_2d),
    ]:
        CASES[f"reaction-{_reaction}-{_label}"] = lambda c=_case, r=_reaction: c(r)


@pytest.mark.parametrize("case", list(CASES))
def test_residual_vanishes_on_exact_solution(case):
    name, options, domain, coeffs, u, f = CASES[case]()
    pde = pdes.make_pde(name, domain, **options)
    source = zero_source if f is None else f
    assert max_residual(pde, source, u, domain, coeffs) < TOL


@pytest.mark.parametrize(
    "case",
    [
        "heat-1d",
        "advection-2d",
        "poisson-2d",
        "burgers-front",
        "burgers-manufactured",
        "reaction-cubic-unsteady-1d",
        "reaction-logistic-steady-2d",
    ],
)
def test_residual_detects_wrong_coefficient(case):
    # Guards against an operator that vanishes trivially.
    name, options, domain, coeffs, u, f = CASES[case]()
    pde = pdes.make_pde(name, domain, **options)
    source = zero_source if f is None else f
    # The source keeps the true coefficients; only the operator sees the perturbed ones.
    fixed_source = (lambda z, c: source(z, coeffs)) if f is not None else source
    wrong = {k: 1.5 * v for k, v in coeffs.items()}
    assert max_residual(pde, fixed_source, u, domain, wrong) > 1e-3


def test_every_builtin_is_covered():
    covered = {CASES[c]()[0] for c in CASES}
    assert covered == set(pdes.BUILTIN_PDES)


# --------------------------------------------------------------------------------------------
# PDE metadata
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "domain", "options", "coefficient_names", "equation"),
    [
        ("heat", D1, {}, ("D",), "u_t = D * (u_xx) + f"),
        ("heat", D2, {}, ("D",), "u_t = D * (u_xx + u_yy) + f"),
        ("advection", D1, {}, ("c",), "u_t + c * u_x = f"),
        ("advection", D2, {}, ("c_x", "c_y"), "u_t + c_x * u_x + c_y * u_y = f"),
        ("poisson", S1, {}, ("k",), "-k * (u_xx) = f"),
        ("poisson", S2, {}, ("k",), "-k * (u_xx + u_yy) = f"),
        (
            "reaction_diffusion",
            D1,
            {},
            ("D", "k"),
            "u_t = D * (u_xx) + k * u * (1 - u) + f",
        ),
        (
            "reaction_diffusion",
            S2,
            {"reaction": "tanh"},
            ("D", "k"),
            "-D * (u_xx + u_yy) - k * tanh(u) = f",
        ),
        ("burgers", D1, {}, ("nu",), "u_t + u * u_x = nu * u_xx + f"),
    ],
)
def test_pde_metadata(name, domain, options, coefficient_names, equation):
    pde = pdes.make_pde(name, domain, **options)
    assert isinstance(pde, PDE)
    assert pde.name == name
    assert pde.coefficient_names == coefficient_names
    assert pde.equation == equation
    if name == "reaction_diffusion":
        assert dict(pde.options) == {"reaction": options.get("reaction", "logistic")}
    else:
        assert dict(pde.options) == {}


def test_make_pde_matches_factory():
    for name, factory in pdes.BUILTIN_PDES.items():
        domain = S1 if name == "poisson" else D1
        assert pdes.make_pde(name, domain).equation == factory(domain).equation


# --------------------------------------------------------------------------------------------
# Error paths
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "domain", "match"),
    [
        ("heat", S1, r"heat: .*time"),
        ("heat", S2, r"heat: .*time"),
        ("advection", S1, r"advection: .*time"),
        ("poisson", D1, r"poisson: .*steady"),
        ("poisson", D2, r"poisson: .*steady"),
        ("burgers", S1, r"burgers: .*1-D space with time"),
        ("burgers", D2, r"burgers: .*1-D space with time"),
    ],
)
def test_wrong_domain_raises(name, domain, match):
    with pytest.raises(ValueError, match=match) as info:
        pdes.make_pde(name, domain)
    assert "Domain(" in str(info.value)  # names the domain received


@pytest.mark.parametrize("name", list(pdes.BUILTIN_PDES))
def test_unknown_option_raises(name):
    domain = S1 if name == "poisson" else D1
    with pytest.raises(ValueError, match=rf"{name}: unknown option\(s\) \['colour'\]"):
        pdes.make_pde(name, domain, colour="red")


def test_unknown_option_lists_valid_ones():
    with pytest.raises(ValueError, match=r"valid options: 'reaction'"):
        pdes.reaction_diffusion(D1, reacton="cubic")
    with pytest.raises(ValueError, match=r"valid options: none"):
        pdes.heat(D1, reaction="cubic")


@pytest.mark.parametrize("reaction", ["fisher", "", None, 3])
def test_unknown_reaction_raises(reaction):
    with pytest.raises(ValueError, match=r"reaction must be one of \['cubic', 'linear'"):
        pdes.reaction_diffusion(D1, reaction=reaction)


@pytest.mark.parametrize("name", ["Heat", "wave", "", 3])
def test_unknown_name_raises(name):
    with pytest.raises(ValueError, match=r"unknown PDE name .*valid names: \['advection'"):
        pdes.make_pde(name, D1)


def test_non_domain_raises():
    with pytest.raises(TypeError, match=r"heat: domain must be a bpinn.models.problem.Domain"):
        pdes.heat(((0.0, 1.0),))


def test_missing_coefficient_raises():
    pde = pdes.heat(D1)
    with pytest.raises(KeyError, match=r"coefficient 'D' missing"):
        pde.operator(lambda z: z[0] * z[1], jnp.array([0.1, 0.2]), {"nu": 1.0})


# --------------------------------------------------------------------------------------------
# Derivative helpers against closed forms
# --------------------------------------------------------------------------------------------


def _u(z):
    x, y, t = z
    return jnp.sin(x) * jnp.exp(2 * y) + x**2 * t**3 + jnp.cos(x * y)


def _grad_u(z):
    x, y, t = z
    return np.array(
        [
            np.cos(x) * np.exp(2 * y) + 2 * x * t**3 - y * np.sin(x * y),
            2 * np.sin(x) * np.exp(2 * y) - x * np.sin(x * y),
            3 * x**2 * t**2,
        ]
    )


def _second_u(z):
    x, y, t = z
    return np.array(
        [
            -np.sin(x) * np.exp(2 * y) + 2 * t**3 - y**2 * np.cos(x * y),
            4 * np.sin(x) * np.exp(2 * y) - x**2 * np.cos(x * y),
            6 * x**2 * t,
        ]
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_derivative_helpers_match_closed_forms(seed):
    z = jnp.asarray(np.random.default_rng(seed).uniform(-1.0, 1.0, size=3))
    zn = np.asarray(z)
    np.testing.assert_allclose(pdes.gradient(_u, z), _grad_u(zn), rtol=1e-12, atol=1e-12)
    for i in range(3):
        np.testing.assert_allclose(pdes.partial(_u, z, i), _grad_u(zn)[i], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(
            pdes.second_partial(_u, z, i), _second_u(zn)[i], rtol=1e-12, atol=1e-12
        )
    for space_dims in (1, 2, 3):
        np.testing.assert_allclose(
            pdes.laplacian(_u, z, space_dims),
            _second_u(zn)[:space_dims].sum(),
            rtol=1e-12,
            atol=1e-12,
        )


def test_derivative_helpers_compose_with_jit_and_vmap():
    z = jnp.asarray(np.random.default_rng(3).uniform(-1.0, 1.0, size=(5, 3)))
    lap = jax.jit(jax.vmap(lambda zi: pdes.laplacian(_u, zi, 2)))(z)
    expected = np.array([_second_u(zi)[:2].sum() for zi in np.asarray(z)])
    np.testing.assert_allclose(lap, expected, rtol=1e-12, atol=1e-12)
    # Differentiable through the helpers (needed to take gradients of residual losses).
    g = jax.grad(lambda a: pdes.second_partial(lambda w: a * w[0] ** 3, jnp.array([2.0]), 0))(1.0)
    np.testing.assert_allclose(g, 12.0)


@pytest.mark.parametrize("fn", [pdes.partial, pdes.second_partial])
def test_helper_index_errors(fn):
    z = jnp.zeros(2)
    with pytest.raises(ValueError, match=r"0 <= i < 2 .* got 2"):
        fn(_u, z, 2)
    with pytest.raises(ValueError, match=r"got -1"):
        fn(_u, z, -1)
    with pytest.raises(TypeError, match=r"i must be an int"):
        fn(_u, z, 0.5)
    with pytest.raises(TypeError, match=r"i must be an int"):
        fn(_u, z, True)


def test_helper_shape_and_space_dims_errors():
    with pytest.raises(ValueError, match=r"gradient: z must be a single point .* \(4, 3\)"):
        pdes.gradient(_u, jnp.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"laplacian: z must be a single point"):
        pdes.laplacian(_u, jnp.zeros(()), 1)
    with pytest.raises(ValueError, match=r"1 <= space_dims <= 3 .* got 4"):
        pdes.laplacian(_u, jnp.zeros(3), 4)
    with pytest.raises(ValueError, match=r"got 0"):
        pdes.laplacian(_u, jnp.zeros(3), 0)
    with pytest.raises(TypeError, match=r"space_dims must be an int"):
        pdes.laplacian(_u, jnp.zeros(3), 2.0)


# --------------------------------------------------------------------------------------------
# derivative: any mixed or higher partial


def test_derivative_matches_closed_forms_up_to_fourth_order():
    """u = sin(2x) exp(-t y): u_xxx = -8 cos(2x) e, u_xxxx = 16 sin(2x) e, u_xt = -2y cos(2x) e
    and u_xyt mixes three axes (e = exp(-t y))."""
    u = lambda z: jnp.sin(2 * z[0]) * jnp.exp(-z[2] * z[1])  # noqa: E731
    x, y, t = 0.3, 0.7, 0.4
    z = jnp.array([x, y, t])
    e = np.exp(-t * y)
    d = lambda *axes: float(pdes.derivative(u, z, *axes))  # noqa: E731
    assert d(0, 0, 0) == pytest.approx(-8 * np.cos(2 * x) * e, rel=1e-12)
    assert d(0, 0, 0, 0) == pytest.approx(16 * np.sin(2 * x) * e, rel=1e-12)
    assert d(0, 2) == pytest.approx(-2 * y * np.cos(2 * x) * e, rel=1e-12)
    # d/dy d/dt of exp(-t y) = (t y - 1) exp(-t y); times d/dx sin(2x) = 2 cos(2x)
    assert d(2, 1, 0) == pytest.approx(
        2 * np.cos(2 * x) * (t * y - 1) * e, rel=1e-12)
    assert d(1) == pytest.approx(float(pdes.partial(u, z, 1)), rel=1e-12)


def test_derivative_differentiates_every_output_of_a_system():
    u = lambda z: jnp.stack([z[0] ** 3, jnp.sin(z[0])])  # noqa: E731
    out = pdes.derivative(u, jnp.array([0.5]), 0, 0, 0)
    np.testing.assert_allclose(out, [6.0, -np.cos(0.5)], rtol=1e-12)


@pytest.mark.parametrize(("axes", "message"), [((), "name at least one axis"),
                                               ((0, 2), "0 <= i < 2")])
def test_derivative_rejects_bad_axes(axes, message):
    with pytest.raises((ValueError, IndexError), match=message):
        pdes.derivative(lambda z: z[0], jnp.array([0.1, 0.2]), *axes)
