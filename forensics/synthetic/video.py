"""A clip of one identity: a sampled scene plus a motion trajectory, rendered frame by frame."""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np

from forensics.synthetic.identity import Identity
from forensics.synthetic.render import FrameTruth, render_frame
from forensics.synthetic.scene import SceneConfig, sample_scene
from forensics.synthetic.trajectory import MotionLimits, video_trajectory


@dataclass
class VideoConfig:
    """Clip format and how rough the camera is (``noise`` scales the sampled sensor noise; 0 turns it off)."""

    size: int = 256
    frames: int = 48
    fps: int = 25
    crf: int = 23
    noise: float = 1.0
    blur: bool = True
    max_yaw: float = 35.0
    max_pitch: float = 20.0
    max_roll: float = 15.0

    def to_dict(self) -> dict:
        return asdict(self)


def video_scene(seed: int, config: VideoConfig | None = None) -> SceneConfig:
    """The scene a clip with this seed is rendered in (noise and blur adjusted by the config)."""
    config = config or VideoConfig()
    scene = sample_scene(np.random.default_rng([int(seed), 0x5C]))
    return replace(scene, noise_sigma=scene.noise_sigma * config.noise,
                   blur_sigma=scene.blur_sigma if config.blur else 0.0, _cache={})


def render_video(identity: Identity, seed: int, config: VideoConfig | None = None
                 ) -> tuple[list[np.ndarray], list[FrameTruth]]:
    """Frames (RGB uint8) and per-frame ground truth of one clip; same seed, same pixels."""
    config = config or VideoConfig()
    scene = video_scene(seed, config)
    limits = MotionLimits(yaw=config.max_yaw, pitch=config.max_pitch, roll=config.max_roll)
    states = video_trajectory(np.random.default_rng([int(seed), 0x7A]), config.frames, config.fps, limits)
    frames, truths = [], []
    for state in states:
        image, truth = render_frame(identity, state, scene, config.size)
        frames.append(image)
        truths.append(truth)
    return frames, truths
