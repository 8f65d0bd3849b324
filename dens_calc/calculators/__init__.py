"""ASE calculators."""

from .dens import DeNSCalculator

__all__ = ["DeNSCalculator"]
