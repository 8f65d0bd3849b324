"""DeNS training, fine-tuning and evaluation (see README "Training with DeNS")."""

from .config import ConfigError, DeNSConfig, TrainConfig, load_config, write_config
from .dens import Corruption, corrupt, draw_sigmas, lambda_dens_at, select_samples, sigma_grid
from .evaluate import evaluate_file, format_table
from .loop import TrainResult, load_resume_config, train
from .loss import LossWeights, loss_terms, training_loss
from .pretrained import Start, choose_start, resolve_init
from .state import SpikeGuard, TrainingDiverged

__all__ = [
    "ConfigError", "DeNSConfig", "TrainConfig", "load_config", "write_config",
    "Corruption", "corrupt", "draw_sigmas", "lambda_dens_at", "select_samples", "sigma_grid",
    "evaluate_file", "format_table", "TrainResult", "load_resume_config", "train",
    "LossWeights", "loss_terms", "training_loss", "Start", "choose_start", "resolve_init",
    "SpikeGuard", "TrainingDiverged",
]
