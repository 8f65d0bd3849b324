"""The ``dens-calc`` command line (thin wrappers over ``dens_calc``)."""
