"""Does a face detector nobody here trained agree with the renderer's ground truth?

MTCNN (facenet-pytorch) must find the rendered face (probability >= 0.9, overlapping the true face box)
and put its five points where the ground truth says: eye centres (mean of iBUG 36-41 and 42-47), nose
tip (30) and mouth corners (48, 54). Errors are normalised by the true inter-ocular distance (NME).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from facenet_pytorch import MTCNN

from forensics.landmarks import five_points  # noqa: F401  (re-exported: forensics.synthetic.five_points)

POINT_NAMES = ("eye_left", "eye_right", "nose", "mouth_left", "mouth_right")   # image-left / image-right


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def default_detector():
    return MTCNN(keep_all=True, device="cpu")


def _detect(detector, frames: Sequence[np.ndarray], batch: int = 16):
    """MTCNN on frames, batched by equal size; returns per-frame (boxes, probs, points) arrays or Nones."""
    out = [None] * len(frames)
    by_shape: dict = {}
    for i, f in enumerate(frames):
        by_shape.setdefault(f.shape, []).append(i)
    for idx in by_shape.values():
        for s in range(0, len(idx), batch):
            chunk = idx[s:s + batch]
            boxes, probs, points = detector.detect(np.stack([frames[i] for i in chunk]), landmarks=True)
            for j, i in enumerate(chunk):
                out[i] = (boxes[j], probs[j], points[j])
    return out


def mtcnn_agreement(frames: Sequence[np.ndarray], truths: Sequence, detector=None,
                    min_prob: float = 0.9, min_iou: float = 0.3) -> dict:
    """Detection rate at ``min_prob`` and landmark NME of MTCNN against the ground truth of each frame."""
    if len(frames) != len(truths):
        raise ValueError(f"{len(frames)} frames but {len(truths)} truths")
    detector = detector or default_detector()
    results = _detect(detector, list(frames))
    per_frame = []
    for (boxes, probs, points), truth in zip(results, truths):
        gt = five_points(truth.landmarks)
        iod = float(np.linalg.norm(gt[1] - gt[0]))
        rec = {"index": int(truth.index), "identity": int(truth.identity), "yaw": float(truth.pose[0]),
               "pitch": float(truth.pose[1]), "roll": float(truth.pose[2]), "prob": 0.0, "detected": False,
               "nme": None, "point_errors": None, "iod": iod}
        if boxes is not None:
            best = None
            for b, p, pts in zip(boxes, probs, points):
                if p >= min_prob and _iou(np.asarray(b), np.asarray(truth.face_box)) >= min_iou:
                    if best is None or p > best[1]:
                        best = (b, p, pts)
            rec["prob"] = float(max(probs)) if len(probs) else 0.0
            if best is not None:
                pts = np.asarray(best[2], np.float64)
                eyes, mouth = pts[:2][np.argsort(pts[:2, 0])], pts[3:5][np.argsort(pts[3:5, 0])]
                pred = np.stack([eyes[0], eyes[1], pts[2], mouth[0], mouth[1]])
                err = np.linalg.norm(pred - gt, axis=1) / iod
                rec.update(prob=float(best[1]), detected=True, nme=float(err.mean()),
                           point_errors=[float(e) for e in err])
        per_frame.append(rec)
    return summarise(per_frame)


def summarise(per_frame: list[dict]) -> dict:
    """Aggregate per-frame records (from one or several calls) into rates and NME statistics."""
    found = [r for r in per_frame if r["detected"]]
    nme = np.array([r["nme"] for r in found]) if found else np.array([])
    point = np.array([r["point_errors"] for r in found]) if found else np.zeros((0, 5))
    return {
        "frames": len(per_frame),
        "detected": len(found),
        "detection_rate": len(found) / len(per_frame) if per_frame else 0.0,
        "nme_mean": float(nme.mean()) if len(nme) else None,
        "nme_median": float(np.median(nme)) if len(nme) else None,
        "nme_p95": float(np.percentile(nme, 95)) if len(nme) else None,
        "point_nme": {n: float(point[:, i].mean()) for i, n in enumerate(POINT_NAMES)} if len(nme) else None,
        "per_frame": per_frame,
    }
