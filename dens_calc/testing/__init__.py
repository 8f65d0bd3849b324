"""Reusable physics assertions for potentials (any ASE calculator); the model-contract suite is
:mod:`dens_calc.testing.contract` (it needs pytest)."""

from .physics import (
    assert_batch_equals_single,
    assert_equivariant,
    assert_forces_match_finite_differences,
    assert_rotation_equivariant,
    assert_separable,
    assert_size_extensive,
    assert_smooth_at_cutoff,
    assert_stress_matches_finite_differences,
    model_energy,
    random_rotation,
    tiny_model,
)

__all__ = [
    "assert_batch_equals_single",
    "assert_equivariant",
    "assert_separable",
    "assert_size_extensive",
    "assert_smooth_at_cutoff",
    "assert_forces_match_finite_differences",
    "assert_rotation_equivariant",
    "assert_stress_matches_finite_differences",
    "model_energy",
    "random_rotation",
    "tiny_model",
]
