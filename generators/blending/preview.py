"""A picture of what self-blending does, for eyes rather than tests: real crop | mask | pseudo-fake | difference;
and of the temporal pseudo-fakes: a real clip, then per kind the fake clip and its amplified difference.

    python -m generators.blending.preview --out docs/sbi_grid.png
    python -m generators.blending.preview --temporal --out docs/temporal_pseudo_fakes.jpg

Faces come from the synthetic world, aligned with forensics.faces.align_face from their true landmarks;
rows cycle through the three landmark inputs (68 points, 5 points, none) so all code paths are on show.
"""
from __future__ import annotations

import argparse
import sys

import cv2
import numpy as np

from forensics.faces import align_face
from forensics.io import atomic_write_bytes
from forensics.synthetic import (FrameState, VideoConfig, five_points, render_frame, render_video, sample_scene,
                                  world_identity)
from generators.blending import self_blend
from generators.blending.temporal import TEMPORAL_KINDS, apply_recipe, draw_recipe

COLUMNS = ("real", "mask", "pseudo-fake", "|diff| x4")


def synthetic_crops(n: int, size: int, seed: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """n aligned crops with their 68 and 5 landmarks in crop pixels (varied identity, pose, expression, light)."""
    rng = np.random.default_rng(seed)
    crops = []
    for k in range(n):
        state = FrameState(yaw=rng.uniform(-25, 25), pitch=rng.uniform(-10, 10), roll=rng.uniform(-10, 10),
                           mouth_open=rng.uniform(0, 0.6), smile=rng.uniform(0, 0.8))
        frame, truth = render_frame(world_identity(seed, k), state, sample_scene(rng), 2 * size)
        crop, matrix = align_face(frame, five_points(truth.landmarks), size=size, margin=0.25)
        lm68 = truth.landmarks.astype(np.float64) @ matrix[:, :2].T + matrix[:, 2]
        crops.append((crop, lm68, five_points(lm68)))
    return crops


def _caption(cell: np.ndarray, text: str) -> np.ndarray:
    cell = cell.copy()
    cv2.rectangle(cell, (0, cell.shape[0] - 13), (cell.shape[1], cell.shape[0]), (0, 0, 0), -1)
    cv2.putText(cell, text, (2, cell.shape[0] - 3), cv2.FONT_HERSHEY_SIMPLEX, 0.33, (255, 255, 255), 1, cv2.LINE_AA)
    return cell


def preview_grid(n: int = 8, size: int = 128, seed: int = 0) -> np.ndarray:
    """RGB uint8 grid, one row per face."""
    rng = np.random.default_rng(seed + 1)
    rows = []
    header = np.full((16, size * len(COLUMNS), 3), 255, np.uint8)
    for j, name in enumerate(COLUMNS):
        cv2.putText(header, name, (j * size + 4, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    rows.append(header)
    for i, (crop, lm68, lm5) in enumerate(synthetic_crops(n, size, seed)):
        landmarks = (lm68, lm5, None)[i % 3]
        fake, mask, recipe = self_blend(crop, landmarks, rng)
        mask_rgb = np.repeat((mask * 255).round().astype(np.uint8)[:, :, None], 3, axis=2)
        diff = np.clip(np.abs(fake.astype(int) - crop.astype(int)) * 4, 0, 255).astype(np.uint8)
        m = recipe["mask"]
        cells = [_caption(crop, recipe["landmark_source"]),
                 _caption(mask_rgb, f"{m['mask_type']} r={recipe['blend_ratio']} s={m['blur_sigma_px']:.0f}"),
                 _caption(fake, f"{recipe['frequency']['kind']}"),
                 diff]
        rows.append(np.hstack(cells))
    return np.vstack(rows)


def synthetic_clip(length: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`length` consecutive frames of a rendered talking head, aligned on their true five points like the
    face pipeline aligns MTCNN's: (clip uint8 [T, S, S, 3], five points per frame in crop pixels [T, 5, 2])."""
    frames, truths = render_video(world_identity(seed, 3), seed, VideoConfig(size=2 * size, frames=length, fps=25))
    crops, points = [], []
    for frame, truth in zip(frames, truths):
        five = five_points(truth.landmarks)
        crop, matrix = align_face(frame, five, size=size, margin=0.25)
        crops.append(crop)
        points.append(np.asarray(five, np.float64) @ matrix[:, :2].T + matrix[:, 2])
    return np.stack(crops), np.stack(points)


def temporal_grid(length: int = 8, size: int = 128, seed: int = 0, gain: int = 6) -> np.ndarray:
    """RGB uint8 grid: the real clip, then for each kind its fake (changed frames marked *) and |fake - real|."""
    clip, points = synthetic_clip(length, size, seed)
    rows = [np.hstack([_caption(f, f"real t={t}") for t, f in enumerate(clip)])]
    for k, kind in enumerate(TEMPORAL_KINDS):
        recipe = draw_recipe(kind, length, np.random.default_rng([seed, k]))
        fake = apply_recipe(clip, points, recipe)
        diff = np.clip(np.abs(fake.astype(int) - clip.astype(int)) * gain, 0, 255).astype(np.uint8)
        rows.append(np.hstack([_caption(f, (f"{kind} {recipe.region} " if t == 0 else "") +
                                        ("*" if t in recipe.frames else "")) for t, f in enumerate(fake)]))
        rows.append(np.hstack([_caption(d, f"|diff| x{gain}") if t == 0 else d for t, d in enumerate(diff)]))
    return np.vstack(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m generators.blending.preview", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/sbi_grid.png")
    parser.add_argument("--faces", type=int, default=8)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--temporal", action="store_true", help="the temporal pseudo-fakes of one clip instead")
    parser.add_argument("--frames", type=int, default=8, help="clip length with --temporal (default 8)")
    args = parser.parse_args(argv)
    grid = temporal_grid(args.frames, args.size, args.seed) if args.temporal else \
        preview_grid(args.faces, args.size, args.seed)
    suffix = ".jpg" if str(args.out).lower().endswith((".jpg", ".jpeg")) else ".png"
    ok, png = cv2.imencode(suffix, cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    if not ok:
        print(f"preview: could not encode {args.out}", file=sys.stderr)
        return 1
    atomic_write_bytes(args.out, png.tobytes())
    print(f"wrote {args.out} ({grid.shape[1]}x{grid.shape[0]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
