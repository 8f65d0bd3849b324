"""Equivariant network: blocks, the DeNS potential and energy/force/stress evaluation."""

from .model import DeNSPotential, ModelConfig, evaluate

__all__ = ["DeNSPotential", "ModelConfig", "evaluate"]
