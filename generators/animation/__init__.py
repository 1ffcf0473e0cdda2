"""Face animation (first-order-motion family): unsupervised keypoints + dense motion + occlusion-aware
generator, trained by self-reconstruction across frames of one video; `animate` makes a still face move
like a driving video.

    from generators.animation import AnimationConfig, animate, train_animation
    config = AnimationConfig.from_preset("cpu-small")               # world: data/synth
    result, ckpt = train_animation(config, "runs/animation")         # the shared training loop + export
    recipe = animate(ckpt, "face.png", "driver.mp4", "animated.mp4")

Importing the package registers the family (family.AnimationFamily) with generators.registry.
"""
from generators.registry import register_family

from .animate import Reenactment, animate, reenact_crops, relative_motion, transfer
from .checkpoint import AnimationModel, GeneratorCheckpointError, load_animation, save_animation, save_generator
from .config import FAMILY, AnimationConfig
from .dense_motion import DenseMotionNetwork
from .discriminator import MultiScaleDiscriminator
from .family import AnimationFamily
from .generator import OcclusionAwareGenerator
from .keypoints import KeypointDetector
from .model import build_modules
from .task import AnimationTask, make_task, train_animation

FAMILY_SPEC = register_family(AnimationFamily())

__all__ = ["FAMILY", "FAMILY_SPEC", "AnimationConfig", "AnimationFamily", "AnimationTask", "AnimationModel",
           "GeneratorCheckpointError", "KeypointDetector", "DenseMotionNetwork", "OcclusionAwareGenerator",
           "MultiScaleDiscriminator", "Reenactment", "animate", "reenact_crops", "relative_motion", "transfer",
           "build_modules", "load_animation", "make_task", "save_animation", "save_generator", "train_animation"]
