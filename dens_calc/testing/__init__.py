"""Reusable physics assertions for potentials (used by our tests; usable on any ASE calculator)."""

from .physics import (
    assert_forces_match_finite_differences,
    assert_rotation_equivariant,
    assert_stress_matches_finite_differences,
    random_rotation,
    tiny_model,
)

__all__ = [
    "assert_forces_match_finite_differences",
    "assert_rotation_equivariant",
    "assert_stress_matches_finite_differences",
    "random_rotation",
    "tiny_model",
]
