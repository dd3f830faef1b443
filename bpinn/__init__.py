"""bpinn: Bayesian inverse problems with physics-informed neural networks."""

__version__ = "0.1.0"
