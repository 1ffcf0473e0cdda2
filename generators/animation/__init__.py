"""Face animation (first-order-motion family): unsupervised keypoints + dense motion + occlusion-aware
generator, trained by self-reconstruction across frames of one video; `animate` makes a still face move
like a driving video.

    from generators.animation import AnimationConfig, animate, train_animation
    config = AnimationConfig.from_preset("cpu-small")               # world: data/synth
    result, ckpt = train_animation(config, "runs/animation")         # the shared training loop + export
    recipe = animate(ckpt, "face.png", "driver.mp4", "animated.mp4")
"""
from .animate import Reenactment, animate, reenact_crops, relative_motion, transfer
from .checkpoint import (AnimationModel, GeneratorCheckpointError, load_animation, load_generator, save_animation,
                         save_generator)
from .dense_motion import DenseMotionNetwork
from .discriminator import MultiScaleDiscriminator
from .generator import OcclusionAwareGenerator
from .keypoints import KeypointDetector
from .task import FAMILY, AnimationConfig, AnimationTask, build_modules, make_task, train_animation

GENERATOR = dict(name=FAMILY, config=AnimationConfig, make_task=make_task, load=load_animation, train=train_animation,
                 description="first-order-motion face animation: a still face moved like a driving video")

__all__ = ["GENERATOR", "AnimationConfig", "AnimationTask", "AnimationModel", "GeneratorCheckpointError",
           "KeypointDetector", "DenseMotionNetwork", "OcclusionAwareGenerator", "MultiScaleDiscriminator",
           "Reenactment", "animate", "reenact_crops", "relative_motion", "transfer", "build_modules",
           "load_animation", "load_generator", "make_task", "save_animation", "save_generator", "train_animation"]
