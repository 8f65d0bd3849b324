"""dens-calc: DeNS-trained equivariant interatomic potentials as ASE calculators."""

__version__ = "0.1.0"

__all__ = ["DeNSCalculator", "__version__"]


def __getattr__(name):
    # import lazily so that `import dens_calc` (e.g. for the CLI's --help) stays fast
    if name == "DeNSCalculator":
        from .calculators import DeNSCalculator

        return DeNSCalculator
    raise AttributeError(name)
