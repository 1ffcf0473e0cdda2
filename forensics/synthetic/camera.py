"""Frame state and the orthographic camera that maps head coordinates to pixels.

Conventions: head x points to the image right, y up, z towards the camera. Positive yaw turns the nose
towards the image right, positive pitch lifts it, positive roll tilts the head counter-clockwise on
screen. The head turns about a pivot in the neck, as people do. Pixel coordinates are OpenCV's (the
centre of pixel column j is at x = j).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from forensics.synthetic.rig import Expression

PIVOT = np.array([0.0, -0.35, -0.2])


@dataclass
class FrameState:
    """Pose and expression of one frame (angles in degrees; tx/ty in frame fractions; others 0..1)."""

    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0
    tx: float = 0.0
    ty: float = 0.0
    scale: float = 1.0
    mouth_open: float = 0.0
    smile: float = 0.0
    blink: float = 0.0
    brow: float = 0.0
    gaze_x: float = 0.0
    gaze_y: float = 0.0
    index: int = 0
    t: float = 0.0

    def expression(self) -> Expression:
        return Expression(mouth_open=self.mouth_open, smile=self.smile, blink=self.blink, brow=self.brow,
                          gaze_x=self.gaze_x, gaze_y=self.gaze_y)

    def to_dict(self) -> dict:
        return asdict(self)


def rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Head-to-camera rotation R = Rz(roll) Rx(pitch) Ry(yaw) (degrees in)."""
    y, p, r = np.deg2rad([yaw, pitch, roll])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return rz @ rx @ ry


@dataclass(frozen=True)
class Camera:
    """Orthographic view: pixel (u, v) <- (cx + f*X, cy - f*Y) of the camera-space point (X, Y, Z)."""

    R: np.ndarray
    f: float
    cx: float
    cy: float

    def to_camera(self, p: np.ndarray) -> np.ndarray:
        """(N,3) head points -> (N,3) camera points (rotation about the neck pivot)."""
        return (np.asarray(p, np.float64) - PIVOT) @ self.R.T + PIVOT

    def project(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N,3) head points -> (N,2) pixels and (N,) depth (larger is nearer the camera)."""
        c = self.to_camera(p)
        uv = np.stack([self.cx + self.f * c[:, 0], self.cy - self.f * c[:, 1]], axis=1)
        return uv, c[:, 2]

    def rays(self, u: np.ndarray, v: np.ndarray, z0: float = 4.0) -> tuple[np.ndarray, np.ndarray]:
        """Origins (3,N) in head space of the rays through pixels (u, v), and their shared direction (3,)."""
        cam = np.stack([(u - self.cx) / self.f, (self.cy - v) / self.f, np.full_like(u, z0)])
        origin = self.R.T @ (cam - PIVOT[:, None]) + PIVOT[:, None]
        direction = -self.R[2, :]
        return origin.astype(np.float32), direction.astype(np.float32)


def make_camera(state: FrameState, size: int, base_scale: float, anchor: tuple) -> Camera:
    f = size * base_scale * state.scale
    cx = size * (anchor[0] + state.tx)
    cy = size * (anchor[1] + state.ty)
    # the anchor is where the head origin lands when frontal; rotating about the pivot keeps the neck put
    return Camera(R=rotation(state.yaw, state.pitch, state.roll), f=float(f), cx=float(cx), cy=float(cy))
