"""Landmark conventions shared by the renderer, the face pipeline and the blending code (numpy only, so
torch-free modules such as generators.blending can use it)."""
from __future__ import annotations

import numpy as np


def five_points(landmarks68: np.ndarray) -> np.ndarray:
    """(5,2) MTCNN-style points from iBUG-68: eye centres, nose tip, mouth corners, image-left first."""
    lm = np.asarray(landmarks68, np.float64)
    eyes = np.stack([lm[36:42].mean(axis=0), lm[42:48].mean(axis=0)])
    mouth = np.stack([lm[48], lm[54]])
    eyes = eyes[np.argsort(eyes[:, 0])]
    mouth = mouth[np.argsort(mouth[:, 0])]
    return np.stack([eyes[0], eyes[1], lm[30], mouth[0], mouth[1]])
