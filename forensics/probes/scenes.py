"""More scenes of the world's own identities, rendered for the probes only.

A world has one or two videos per identity, and everything in a video's scene (key light direction and
colour, exposure, background, camera noise) is constant. A classifier trained on so few scenes learns
"which lighting" as much as "which face": on data/synth, training on one video per identity and testing on
the other gave 27 % identity accuracy; with 6 extra scenes x 8 frames per identity 74 %, with 24 x 4, 98 %.
Fakes put an identity into another video's scene, so the identity probe must not care. The renderer can show the same identities under new scenes, so we do:
`count` short clips per identity with fresh scene seeds (never the world's own video seeds), aligned on
the true five points exactly like load_faceset's crops. They are cached beside the probes.
"""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from forensics.faces.align import align_face
from forensics.io import atomic_path
from forensics.synthetic import Identity, VideoConfig, five_points, render_video
from forensics.synthetic.world import video_seed

# Video indices far above any world's videos_per_identity, so a scene here is never a scene of the world.
SCENE_OFFSET = 100_000


def render_scenes(world: str | Path, identities: list[int], count: int, frames: int, size: int, margin: float,
                  cache: str | Path | None = None) -> dict[str, np.ndarray]:
    """{"images" [N,S,S,3] uint8, "landmarks" [N,68,2] float32 crop pixels, "identity" [N], "scene" [N]}."""
    if cache is not None and Path(cache).is_file():
        with np.load(cache, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    world = Path(world)
    settings = json.loads((world / "world.json").read_text())
    by_id = {int(d["id"]): Identity.from_dict(d) for d in json.loads((world / "identities.json").read_text())}
    missing = sorted(set(identities) - set(by_id))
    if missing:
        raise ValueError(f"{world}: identities.json lacks identities {missing[:5]}")
    video = VideoConfig(size=int(settings.get("size", 256)), frames=frames)
    images, landmarks, ids, scenes = [], [], [], []
    for person in identities:
        for k in range(count):
            seed = video_seed(int(settings.get("seed", 0)), person, SCENE_OFFSET + k)
            rendered, truths = render_video(by_id[person], seed, video)
            for image, truth in zip(rendered, truths):
                image = _jpeg(image, quality=85)  # the world's frames went through H.264; these get a codec too
                lm68 = np.asarray(truth.landmarks, np.float64)
                crop, matrix = align_face(image, five_points(lm68), size=size, margin=margin)
                images.append(crop)
                landmarks.append((lm68 @ matrix[:, :2].T + matrix[:, 2]).astype(np.float32))
                ids.append(person)
                scenes.append(k)
    out = {"images": np.stack(images), "landmarks": np.stack(landmarks), "identity": np.array(ids, np.int64),
           "scene": np.array(scenes, np.int64)}
    if cache is not None:
        with atomic_path(cache) as tmp:
            with open(tmp, "wb") as fh:
                np.savez_compressed(fh, **out)
    return out


def _jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    ok, data = cv2.imencode(".jpg", image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1].copy() if ok else image
