"""Priors for PDE coefficients and noise scales, declared by name with keyword parameters.

A quantity is either *known* (``Fixed``: a number) or *unknown* (``Prior``: a distribution).
Both are plain frozen dataclasses built from config tables such as
``{ prior = "LogNormal", loc = -3.0, scale = 1.0 }``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import MappingProxyType

import numpyro.distributions as dist

# name -> (required parameters, optional parameters with defaults, support is positive)
_FAMILIES: dict[str, tuple[tuple[str, ...], dict[str, float], bool]] = {
    "Normal": (("loc", "scale"), {}, False),
    "LogNormal": (("loc", "scale"), {}, True),
    "HalfNormal": (("scale",), {}, True),
    "HalfCauchy": (("scale",), {}, True),
    "Exponential": (("rate",), {}, True),
    "Gamma": (("concentration", "rate"), {}, True),
    "InverseGamma": (("concentration", "rate"), {}, True),
    "Uniform": (("low", "high"), {}, False),
    "TruncatedNormal": (("loc", "scale"), {"low": -math.inf, "high": math.inf}, False),
}
PRIOR_FAMILIES = tuple(_FAMILIES)
_POSITIVE_PARAMS = {"scale", "rate", "concentration"}


@dataclass(frozen=True)
class Fixed:
    """A known quantity."""

    value: float

    def __post_init__(self):
        if not math.isfinite(self.value):
            raise ValueError(f"a known value must be finite, got {self.value!r}")


@dataclass(frozen=True)
class Prior:
    """An unknown quantity with a prior distribution.

    Examples
    --------
    >>> p = Prior("LogNormal", {"loc": -3.0, "scale": 1.0})
    >>> float(p.distribution().mean) > 0
    True
    """

    family: str
    params: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    where: str = "prior"  # config path, for error messages

    def __post_init__(self):
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))
        if self.family not in _FAMILIES:
            raise ValueError(
                f"{self.where}: unknown prior {self.family!r}; valid: {', '.join(PRIOR_FAMILIES)}"
            )
        required, optional, _ = _FAMILIES[self.family]
        missing = [p for p in required if p not in self.params]
        unknown = [p for p in self.params if p not in required and p not in optional]
        if missing or unknown:
            problems = []
            if missing:
                problems.append(f"missing {missing}")
            if unknown:
                problems.append(f"unknown {unknown}")
            raise ValueError(
                f"{self.where}: {self.family} takes parameters {list(required)}"
                + (f" and optionally {list(optional)}" if optional else "")
                + f"; {'; '.join(problems)}"
            )
        for name, value in self.params.items():
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise ValueError(f"{self.where}.{name} must be a number, got {value!r}")
            if name in _POSITIVE_PARAMS and not value > 0:
                raise ValueError(f"{self.where}.{name} must be > 0, got {value!r}")
            # Only a truncation bound may be infinite (it means "no bound").
            if math.isnan(value) or (math.isinf(value) and (
                    self.family != "TruncatedNormal" or name not in ("low", "high"))):
                raise ValueError(f"{self.where}.{name} must be finite, got {value!r}")
        lo, hi = self.params.get("low"), self.params.get("high")
        if lo is not None and hi is not None and not lo < hi:
            raise ValueError(f"{self.where}: low must be < high, got low={lo}, high={hi}")

    @property
    def is_positive(self) -> bool:
        """Whether the support lies in (0, inf), so a log-scale summary makes sense."""
        if self.family in ("Uniform", "TruncatedNormal"):
            return self.params.get("low", -math.inf) >= 0
        return _FAMILIES[self.family][2]

    def distribution(self) -> dist.Distribution:
        p = {**_FAMILIES[self.family][1], **self.params}
        if self.family == "TruncatedNormal":
            low = None if math.isinf(p["low"]) else p["low"]
            high = None if math.isinf(p["high"]) else p["high"]
            return dist.TruncatedNormal(p["loc"], p["scale"], low=low, high=high)
        return getattr(dist, self.family)(**p)

    def describe(self) -> str:
        args = ", ".join(f"{k}={v:g}" for k, v in self.params.items())
        return f"{self.family}({args})"


def parse_quantity(value, *, where: str, positive: bool = False) -> Fixed | Prior:
    """A number -> ``Fixed``; a table ``{prior = NAME, ...}`` -> ``Prior``.

    ``positive`` requires a fixed value > 0 and a prior whose support is positive (noise scales).
    """
    if isinstance(value, bool):
        raise ValueError(f"{where}: expected a number or a prior table, got {value!r}")
    if isinstance(value, int | float):
        if positive and not value > 0:
            raise ValueError(f"{where}: must be > 0, got {value!r}")
        return Fixed(float(value))
    if isinstance(value, dict):
        if "prior" not in value:
            raise ValueError(
                f"{where}: a prior table needs a 'prior' key naming the family "
                f"({', '.join(PRIOR_FAMILIES)}), e.g. {{ prior = \"HalfNormal\", scale = 0.1 }}"
            )
        params = {k: v for k, v in value.items() if k != "prior"}
        prior = Prior(str(value["prior"]), params, where=where)
        if positive and not prior.is_positive:
            raise ValueError(
                f"{where}: a scale needs a prior on (0, inf) such as HalfNormal or LogNormal, "
                f"got {prior.describe()}"
            )
        return prior
    raise ValueError(
        f"{where}: expected a number (known) or a prior table such as "
        f"{{ prior = \"LogNormal\", loc = 0.0, scale = 1.0 }}, got {value!r}"
    )
