"""ASE calculators."""

from .dens import DeNSCalculator, NonFiniteOutputError

__all__ = ["DeNSCalculator", "NonFiniteOutputError"]
