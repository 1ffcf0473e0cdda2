"""One training loop for detectors and GANs: accumulation, AMP, DDP, early stopping, safe checkpoints.

    from forensics.training import TrainConfig, Trainer
    result = Trainer(task, TrainConfig(epochs=5, checkpoint_dir="runs/x"), run=run).fit()

See api.TrainTask for what a task implements and loop.py for what gets logged where.
"""
from .api import FitResult, TrainConfig, TrainTask
from .checkpoint import CheckpointError, find_checkpoint, load_module_weights, read_checkpoint
from .loop import Trainer
from .seed import seed_everything
from .step import StepContext

__all__ = ["TrainConfig", "Trainer", "TrainTask", "StepContext", "FitResult", "load_module_weights",
           "find_checkpoint", "read_checkpoint", "CheckpointError", "seed_everything"]
