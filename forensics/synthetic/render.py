"""Render one frame: background, shoulders, neck and the ray-traced head, with its ground truth.

Shading happens in linear light (wrapped Lambert with a warm subsurface tint for skin, hemisphere
ambient with SDF ambient occlusion, Blinn-Phong specular, a rim light), then exposure, sRGB encoding,
optional lens blur and camera noise. Same inputs give the same pixels bit for bit: camera noise is
seeded from the scene seed and the frame index.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from forensics.synthetic.albedo import Painter
from forensics.synthetic.camera import Camera, FrameState, make_camera
from forensics.synthetic.glasses import draw_glasses
from forensics.synthetic.identity import Identity
from forensics.synthetic.landmarks import forehead_points, landmarks_3d
from forensics.synthetic.rig import build_rig, smoothstep
from forensics.synthetic.scene import SceneConfig, background, torso_layer
from forensics.synthetic.sdf import build_head
from forensics.synthetic.texture import linear_to_srgb, srgb_to_linear
from forensics.synthetic.trace import Hits, trace

F32 = np.float32
TORSO_DEPTH = 0.3          # camera-space z of the shoulders: in front of the neck, behind the chin
NECK_Z, NECK_DEPTH = -0.2, 0.32
_PAINTERS: dict = {}


@dataclass
class FrameTruth:
    """Ground truth of one frame, in the frame's pixel coordinates (OpenCV convention)."""

    index: int
    t: float
    box: np.ndarray                  # (4,) x1, y1, x2, y2: tight box of the 68 landmarks
    face_box: np.ndarray             # (4,) landmarks plus the forehead, like a detector's box
    landmarks: np.ndarray            # (68, 2) float32, iBUG order
    pose: tuple                      # yaw, pitch, roll in degrees
    expression: dict = field(default_factory=dict)
    identity: int = 0

    def to_dict(self) -> dict:
        return {"index": self.index, "t": round(float(self.t), 6),
                "box": [round(float(v), 3) for v in self.box],
                "face_box": [round(float(v), 3) for v in self.face_box],
                "landmarks68": [[round(float(x), 3), round(float(y), 3)] for x, y in self.landmarks],
                "pose": {"yaw": round(self.pose[0], 4), "pitch": round(self.pose[1], 4), "roll": round(self.pose[2], 4)},
                "expression": {k: round(float(v), 4) for k, v in self.expression.items()},
                "identity": self.identity}

    @classmethod
    def from_dict(cls, d: dict) -> "FrameTruth":
        pose = d["pose"]
        return cls(index=d["index"], t=d["t"], box=np.asarray(d["box"], F32), face_box=np.asarray(d["face_box"], F32),
                   landmarks=np.asarray(d["landmarks68"], F32), pose=(pose["yaw"], pose["pitch"], pose["roll"]),
                   expression=dict(d["expression"]), identity=d["identity"])


def _painter(identity: Identity) -> Painter:
    key = _identity_key(identity)
    if key not in _PAINTERS:
        if len(_PAINTERS) > 64:
            _PAINTERS.pop(next(iter(_PAINTERS)))
        _PAINTERS[key] = Painter(identity)
    return _PAINTERS[key]


def _identity_key(identity: Identity) -> tuple:
    return tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in identity.to_dict().items())


def render_frame(identity: Identity, state: FrameState, scene: SceneConfig | None = None,
                 size: int = 256) -> tuple[np.ndarray, FrameTruth]:
    """RGB uint8 (size, size, 3) frame and its ground truth."""
    scene = scene if scene is not None else SceneConfig()
    rig = build_rig(identity, state.expression())
    head = build_head(identity, rig)
    cam = make_camera(state, size, scene.base_scale, scene.anchor)
    key = _identity_key(identity)

    points3d = landmarks_3d(head, key)
    landmarks, _ = cam.project(points3d)
    face_pts, _ = cam.project(np.concatenate([points3d, forehead_points(head)]))

    colour = background(scene, size).copy()
    depth = np.full((size, size), -np.inf, F32)
    _draw_neck(colour, depth, identity, scene, cam, chin_y=float(cam.to_camera(points3d[8:9])[0, 1]))
    torso, alpha = torso_layer(scene, size, cam.cx, cam.cy, cam.f)     # shoulders stay put as the head turns
    covered = alpha > 0
    in_front = covered & (depth < TORSO_DEPTH)
    colour[in_front] = colour[in_front] * (1 - alpha[in_front, None]) + torso[in_front] * alpha[in_front, None]
    depth[covered & (alpha > 0.5)] = np.maximum(depth[covered & (alpha > 0.5)], TORSO_DEPTH)

    hits = trace(head, cam, size)
    if hits is not None:
        _composite_head(colour, depth, hits, identity, rig, scene, cam)
    if identity.glasses:
        draw_glasses(colour, depth, identity, rig, cam)
    image = _finish(colour, scene, state.index, _auto_exposure(identity))
    truth = FrameTruth(
        index=state.index, t=state.t,
        box=_box(landmarks), face_box=_box(face_pts), landmarks=landmarks.astype(F32),
        pose=(float(state.yaw), float(state.pitch), float(state.roll)),
        expression={"mouth_open": state.mouth_open, "smile": state.smile, "blink": state.blink,
                    "brow": state.brow, "gaze_x": state.gaze_x, "gaze_y": state.gaze_y},
        identity=identity.id)
    return image, truth


def _box(pts: np.ndarray) -> np.ndarray:
    return np.array([pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max()], F32)


def _light(scene: SceneConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    light = np.asarray(scene.light_dir, F32)
    light = light / np.linalg.norm(light)
    half = light + np.array([0, 0, 1], F32)
    return light, half / np.linalg.norm(half), np.asarray(scene.light_rgb, F32)


def _shade(albedo, normal_cam, ao, scene: SceneConfig, sss, ks, shininess) -> np.ndarray:
    """Linear colour (N,3) of points with camera-space unit normals (3,N)."""
    light, half, light_rgb = _light(scene)
    ndl = light @ normal_cam
    wrap = 0.15 + 0.25 * sss
    diffuse = np.clip((ndl + wrap) / (1 + wrap), 0, 1)
    lambert = np.clip(ndl, 0, 1)
    scatter = (diffuse - lambert) * sss
    ny = normal_cam[1]
    ambient = (np.asarray(scene.sky_rgb, F32)[None] * (0.5 + 0.5 * ny)[:, None]
               + np.asarray(scene.ground_rgb, F32)[None] * (0.5 - 0.5 * ny)[:, None]) * ao[:, None]
    direct = light_rgb[None] * (diffuse * (0.55 + 0.45 * ao))[:, None]
    spec = ks * np.clip(half @ normal_cam, 0, 1) ** shininess * (0.3 + 0.7 * ao)
    rim = scene.rim * np.clip(1 - normal_cam[2], 0, 1) ** 3
    warm = np.array([0.55, 0.12, 0.06], F32)
    col = albedo * (ambient + direct + scatter[:, None] * warm * light_rgb + rim[:, None] * light_rgb)
    return col + spec[:, None] * light_rgb


def _composite_head(colour, depth, hits: Hits, identity, rig, scene, cam: Camera) -> None:
    px = 1.0 / cam.f
    surf = _painter(identity).paint(rig, hits.point[0], hits.point[1], hits.point[2], hits.is_hair, px)
    normal_cam = (cam.R @ hits.normal).astype(F32)
    col = _shade(surf.albedo, normal_cam, hits.occlusion, scene, surf.sss, surf.ks, surf.shininess) + surf.emit
    flat_c = colour.reshape(-1, 3)
    flat_d = depth.reshape(-1)
    front = hits.depth > flat_d[hits.pixel]
    pix = hits.pixel[front]
    a = hits.coverage[front][:, None]
    flat_c[pix] = flat_c[pix] * (1 - a) + col[front] * a
    solid = front & (hits.coverage >= 1)
    flat_d[hits.pixel[solid]] = hits.depth[solid]


def _draw_neck(colour, depth, identity: Identity, scene: SceneConfig, cam: Camera, chin_y: float) -> None:
    """The neck: a vertical elliptic cylinder in camera space under the pivot (it does not turn with the head)."""
    size = colour.shape[0]
    a = 0.34 * identity.jaw_width
    u0 = max(int(np.floor(cam.cx - cam.f * a)) - 1, 0)
    u1 = min(int(np.ceil(cam.cx + cam.f * a)) + 2, size)
    v0 = max(int(np.floor(cam.cy + cam.f * 0.3)), 0)
    if u0 >= u1 or v0 >= size:
        return
    vv, uu = np.mgrid[v0:size, u0:u1].astype(F32)
    X = (uu - cam.cx) / cam.f
    Y = (cam.cy - vv) / cam.f
    s = np.clip(1 - (X / a) ** 2, 0, 1)
    Z = NECK_Z + NECK_DEPTH * np.sqrt(s)
    n = np.stack([X / a ** 2, np.zeros_like(X), (Z - NECK_Z) / NECK_DEPTH ** 2]).reshape(3, -1)
    n /= np.linalg.norm(n, axis=0, keepdims=True) + 1e-6
    shadow = 0.35 + 0.65 * smoothstep(chin_y + 0.05, chin_y - 0.45, Y).reshape(-1)
    albedo = srgb_to_linear(identity.skin_rgb) * 0.93 * np.ones((n.shape[1], 3), F32)
    col = _shade(albedo, n.astype(F32), shadow.astype(F32), scene, np.ones(n.shape[1], F32),
                 np.full(n.shape[1], 0.05, F32), np.full(n.shape[1], 10.0, F32))
    cover = np.clip((a - np.abs(X)) * cam.f, 0, 1).reshape(-1, 1)
    region = colour[v0:size, u0:u1].reshape(-1, 3)
    region = region * (1 - cover) + col * cover
    colour[v0:size, u0:u1] = region.reshape(size - v0, u1 - u0, 3)
    d = depth[v0:size, u0:u1]
    d[cover.reshape(d.shape) > 0.5] = Z[cover.reshape(d.shape) > 0.5]


def _auto_exposure(identity: Identity) -> float:
    """Cameras meter on the face: darker skin gets more exposure (up to 1.8x), without hiding how dark it is."""
    luma = float(srgb_to_linear(identity.skin_rgb) @ np.array([0.2126, 0.7152, 0.0722], F32))
    return float(np.clip((0.3 / max(luma, 1e-3)) ** 0.5, 1.0, 1.8))


def _finish(colour: np.ndarray, scene: SceneConfig, index: int, gain: float = 1.0) -> np.ndarray:
    """Exposure, sRGB encoding, lens blur and camera noise, to uint8."""
    img = colour * F32(scene.exposure * gain)
    img = img / (1 + 0.15 * np.maximum(img - 0.8, 0))      # roll off highlights instead of clipping hard
    img = linear_to_srgb(img) * 255
    if scene.blur_sigma > 0:
        img = cv2.GaussianBlur(img, (0, 0), scene.blur_sigma)
    if scene.noise_sigma > 0:
        img += _camera_noise(scene, img.shape[0], index)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def _camera_noise(scene: SceneConfig, size: int, index: int) -> np.ndarray:
    """Per-frame sensor noise (chroma + stronger luma), cut from a per-video bank at a frame-seeded offset:
    drawing fresh Gaussians for every frame would cost more than the rest of the finishing."""
    key = ("noise", size)
    if key not in scene._cache:
        rng = np.random.default_rng([scene.seed, 0x0153])
        chroma = rng.standard_normal((2 * size, 2 * size, 3), dtype=F32) * F32(0.6)
        luma = rng.standard_normal((2 * size, 2 * size, 1), dtype=F32) * F32(0.6)
        scene._cache[key] = (chroma + luma) * F32(scene.noise_sigma)
    bank = scene._cache[key]
    oy, ox = np.random.default_rng([scene.seed, int(index), 0x0154]).integers(0, size, 2)
    return bank[oy:oy + size, ox:ox + size]
