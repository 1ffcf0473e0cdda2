"""A contact sheet of identities: the quickest way for a person to judge whether faces look like faces."""
from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from forensics.io import atomic_path
from forensics.synthetic.camera import FrameState
from forensics.synthetic.render import render_frame
from forensics.synthetic.scene import sample_scene
from forensics.synthetic.world import world_identity

# a few poses and expressions so the sheet also shows turning, smiling, talking and blinking
_POSES = [FrameState(), FrameState(yaw=-22, smile=0.7), FrameState(yaw=18, pitch=8, mouth_open=0.6),
          FrameState(pitch=-10, roll=6, smile=0.3), FrameState(yaw=30, brow=1.0), FrameState(yaw=-12, blink=1.0)]


def identity_sheet(path, n: int = 16, seed: int = 0, size: int = 192) -> Path:
    """Render identities 0..n-1 of world ``seed`` on a grid PNG (labelled), written atomically."""
    if n < 1:
        raise ValueError("n must be >= 1")
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    sheet = np.full((rows * size, cols * size, 3), 255, np.uint8)
    for k in range(n):
        identity = world_identity(seed, k)
        scene = sample_scene(np.random.default_rng([int(seed), k, 0x5E]))
        image, _ = render_frame(identity, _POSES[k % len(_POSES)], scene, size)
        image = image.copy()
        label = identity.name
        scale = size / 480
        (w, h), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        image[size - h - base - 6:, :w + 8] //= 3
        cv2.putText(image, label, (4, size - base - 3), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
        r, c = divmod(k, cols)
        sheet[r * size:(r + 1) * size, c * size:(c + 1) * size] = image
    path = Path(path)
    with atomic_path(path, suffix=".png") as tmp:
        if not cv2.imwrite(str(tmp), sheet[..., ::-1]):
            raise OSError(f"{path}: could not encode PNG")
    return path
