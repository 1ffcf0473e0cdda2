"""facenet-pytorch's MTCNN without torch: its three networks through onnxruntime, the rest in numpy.

Why: `forensics detect` must start in under 2 s and importing torch alone costs ~1.9 s, so face detection
must not need torch. Why a port rather than another detector: boxes, probabilities and landmarks must match
facenet's `MTCNN.detect(batch, landmarks=True)` (keep_all, select_largest=False), which everything downstream
was tuned on. So `detect_face` (facenet_pytorch/models/utils/detect_face.py) is mirrored step by step in
float32, with the same operation order: `interpolate(mode="area")` is adaptive average pooling (window sums
from an integral image, divided by the window height then its width, as torch does: bit-exact); the per-scale
and per-image NMS are torchvision's `batched_nms` (IoU without +1, both its coordinate-offset and its per-image
branch) and the final one is facenet's numpy 'Min' NMS (with +1). What remains is ONNX-vs-torch convolution
rounding (~1e-6), which can only flip a decision sitting exactly on a threshold or a pixel boundary.
The ONNX files come from `forensics.faces.mtcnn_export.export_mtcnn_onnx`. This module must not import torch.
"""
from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional, Sequence

import cv2
import numpy as np
import onnxruntime as ort

from forensics.faces.backends import FACE_BACKENDS, MANIFEST, MTCNN_FORMAT, ONNX, mtcnn_export_dir
from forensics.faces.detector import Face, FaceDetectorConfig, faces_from_mtcnn
from forensics.io import sha256_file

NETS = ("pnet", "rnet", "onet")
F32 = np.float32
# Frames per pass, and passes side by side (one thread each, the cores shared among them). A cold `detect` of 32
# 640-px frames on 2 cores: MTCNN 0.55 s and 400 MB peak with chunks of 2 on 2 workers, against 1.15 s and 760 MB
# in one pass of 16 frames (1 frame: 0.55 s, 350 MB; 4: 0.60 s, 575 MB).
ONNX_CHUNK = 2
MAX_WORKERS = 4

# Per image: boxes [N, 4] float32 (x1, y1, x2, y2), probs [N] float32, points [N, 5, 2] float32 (x, y); or None.
Detection = Optional[tuple[np.ndarray, np.ndarray, np.ndarray]]


def mtcnn_files_ready(directory: str | Path) -> bool:
    """True if `directory` holds pnet/rnet/onet.onnx and an mtcnn.json of our format whose sha256s match them."""
    directory = Path(directory)
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
        files = manifest["files"]
        if manifest.get("format") != MTCNN_FORMAT:
            return False
        for net in NETS:
            name = f"{net}.onnx"
            if sha256_file(directory / name) != files[name]:
                return False
        return True
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


class OnnxMTCNN:
    """`detect(batch)` equals facenet's `MTCNN(min_face_size, thresholds, factor, post_process=False,
    select_largest=False, keep_all=True).detect(batch, landmarks=True)`, returned as one entry per image:
    None when no face, else (boxes [N,4], probs [N], points [N,5,2]), all float32, in facenet's order.

    Where facenet raises (a candidate box lying wholly outside the frame makes its crop list shorter than its
    box list) this raises ValueError, so callers keep their retry-per-frame fallback; where facenet raises on an
    empty pyramid (frame shorter than min_face_size) this returns None for every image instead.
    """

    def __init__(self, directory: str | Path, min_face_size: float = 20, thresholds: Sequence[float] = (0.6, 0.7, 0.7),
                 factor: float = 0.709, threads: int | None = None) -> None:
        directory = Path(directory)
        missing = [n for n in NETS if not (directory / f"{n}.onnx").is_file()]
        if missing:
            raise FileNotFoundError(f"MTCNN ONNX files missing in {directory}: {', '.join(missing)} "
                                    "(write them with forensics.faces.mtcnn_export.export_mtcnn_onnx)")
        self.min_face_size, self.factor = min_face_size, float(factor)
        self.thresholds = [float(t) for t in thresholds]
        # P-Net runs on every pyramid size: no memory pattern to reuse, and an arena would keep the largest
        # level's activations (hundreds of MB for a batch of 640-px frames) for the rest of the process.
        options = ort.SessionOptions()
        options.enable_cpu_mem_arena = False
        options.enable_mem_pattern = False
        options.log_severity_level = 3
        if threads:
            options.intra_op_num_threads = int(threads)
        self._pnet, self._rnet, self._onet = (
            ort.InferenceSession(str(directory / f"{n}.onnx"), options, providers=["CPUExecutionProvider"])
            for n in NETS)

    def detect(self, batch: np.ndarray) -> list[Detection]:
        """Faces in a uint8 RGB batch [B, H, W, 3] (or one image [H, W, 3]) of same-size frames."""
        imgs = np.asarray(batch)
        if imgs.ndim == 3:
            imgs = imgs[None]
        if imgs.ndim != 4 or imgs.shape[3] != 3 or imgs.dtype != np.uint8:
            raise ValueError(f"OnnxMTCNN.detect wants uint8 [B, H, W, 3], got {imgs.dtype} {imgs.shape}")
        n_img, h, w = imgs.shape[:3]
        scales, scale_i, minl = [], 12.0 / self.min_face_size, min(h, w) * 12.0 / self.min_face_size
        while minl >= 12:  # facenet's pyramid, in Python floats like facenet
            scales.append(scale_i)
            scale_i, minl = scale_i * self.factor, minl * self.factor
        if n_img == 0 or not scales:
            return [None] * n_img
        # Integral images: every area-resize below (pyramid levels, crops) is a difference of exact integers.
        total = _integral(imgs)                                   # [B, H+1, W+1, 3], for crops
        planes = np.ascontiguousarray(total.transpose(0, 3, 1, 2))  # [B, 3, H+1, W+1], for pyramid levels
        t1, t2, t3 = self.thresholds

        # First stage: P-Net on each pyramid level, NMS per (scale, image), then per image.
        boxes, inds, picks, offset = [], [], [], 0
        for scale in scales:
            oh, ow = int(h * scale + 1), int(w * scale + 1)
            (y0, y1), (x0, x1) = _bounds(h, oh), _bounds(w, ow)
            rows = np.take(planes, y1, axis=2) - np.take(planes, y0, axis=2)  # [B, 3, oh, W+1]
            sums = np.take(rows, x1, axis=3) - np.take(rows, x0, axis=3)     # [B, 3, oh, ow]
            reg, prob = self._pnet.run(None, {"input": _normalise(sums, (y1 - y0)[:, None], x1 - x0)})
            b, q = _generate_bounding_box(reg, prob[:, 1], scale, t1)
            picks.append(_batched_nms(b[:, :4], b[:, 4], q, 0.5) + offset)
            boxes.append(b), inds.append(q)
            offset += len(b)
        pick = np.concatenate(picks)
        boxes, inds = np.concatenate(boxes)[pick], np.concatenate(inds)[pick]
        pick = _batched_nms(boxes[:, :4], boxes[:, 4], inds, 0.7)
        boxes, inds = boxes[pick], inds[pick]
        regw, regh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        boxes = np.stack([boxes[:, 0] + boxes[:, 5] * regw, boxes[:, 1] + boxes[:, 6] * regh,
                          boxes[:, 2] + boxes[:, 7] * regw, boxes[:, 3] + boxes[:, 8] * regh, boxes[:, 4]], 1)
        boxes = _rerec(boxes)

        # Second stage: R-Net on 24x24 crops.
        if len(boxes) > 0:
            reg, prob = _run_chunked(self._rnet, _crops(total, inds, boxes, w, h, 24))
            keep = prob[:, 1] > t2
            boxes = np.concatenate([boxes[keep, :4], prob[keep, 1:2]], 1)
            inds, reg = inds[keep], reg[keep]
            pick = _batched_nms(boxes[:, :4], boxes[:, 4], inds, 0.7)
            boxes = _rerec(_bbreg(boxes[pick], reg[pick]))
            inds = inds[pick]

        # Third stage: O-Net on 48x48 crops, landmarks, facenet's 'Min' NMS.
        points = np.zeros((0, 5, 2), F32)
        if len(boxes) > 0:
            reg, marks, prob = _run_chunked(self._onet, _crops(total, inds, boxes, w, h, 48))
            keep = prob[:, 1] > t3
            boxes = np.concatenate([boxes[keep, :4], prob[keep, 1:2]], 1)
            inds, reg, marks = inds[keep], reg[keep], marks[keep].T
            w_i, h_i = boxes[:, 2] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 1] + 1
            px = w_i * marks[:5] + boxes[:, 0] - 1
            py = h_i * marks[5:10] + boxes[:, 1] - 1
            points = np.stack([px, py]).transpose(2, 1, 0)
            boxes = _bbreg(boxes, reg)
            pick = _batched_nms_min(boxes[:, :4], boxes[:, 4], inds, 0.7)
            boxes, inds, points = boxes[pick], inds[pick], points[pick]

        out: list[Detection] = []
        for i in range(n_img):
            sel = inds == i
            out.append((boxes[sel, :4].copy(), boxes[sel, 4].copy(), points[sel].copy()) if sel.any() else None)
        return out


def _bounds(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """torch's adaptive-pool windows: [floor(o*in/out), ceil((o+1)*in/out)) in exact integer arithmetic."""
    o = np.arange(n_out, dtype=np.int64)
    return (o * n_in) // n_out, -((-(o + 1) * n_in) // n_out)


def _integral(imgs: np.ndarray) -> np.ndarray:
    """Summed-area tables [B, H+1, W+1, 3] (cv2's is ~10x faster than numpy's cumsum; int64 if int32 could overflow)."""
    n_img, h, w = imgs.shape[:3]
    if 255 * h * w < 2**31:
        return np.stack([cv2.integral(np.ascontiguousarray(im), sdepth=cv2.CV_32S) for im in imgs])
    total = np.zeros((n_img, h + 1, w + 1, 3), np.int64)
    total[:, 1:, 1:] = imgs.cumsum(axis=1, dtype=np.int64).cumsum(axis=2)
    return total


def _normalise(sums: np.ndarray, kh: np.ndarray, kw: np.ndarray) -> np.ndarray:
    """NCHW window sums -> torch's area-resize value (sum / kh / kw in float32, kh and kw the window heights and
    widths, broadcastable to sums) -> facenet's (x - 127.5) * 0.0078125, C-contiguous for onnxruntime."""
    x = sums.astype(F32, order="C")
    x /= kh.astype(F32)
    x /= kw.astype(F32)
    x -= F32(127.5)
    x *= F32(0.0078125)
    return x


def _crops(total: np.ndarray, inds: np.ndarray, boxes: np.ndarray, w: int, h: int, size: int) -> np.ndarray:
    """facenet's pad + crop + imresample(size) for every box, as normalised NCHW float32."""
    x, y = np.trunc(boxes[:, 0]).astype(np.int32), np.trunc(boxes[:, 1]).astype(np.int32)
    ex, ey = np.trunc(boxes[:, 2]).astype(np.int32), np.trunc(boxes[:, 3]).astype(np.int32)
    x, y, ex, ey = np.maximum(x, 1), np.maximum(y, 1), np.minimum(ex, w), np.minimum(ey, h)
    if not ((ey > y - 1) & (ex > x - 1)).all():
        raise ValueError("MTCNN candidate box outside the frame (facenet-pytorch fails on this batch too)")
    o = np.arange(size, dtype=np.int64)
    ch, cw = (ey - y + 1).astype(np.int64)[:, None], (ex - x + 1).astype(np.int64)[:, None]
    ys0, ys1 = y[:, None] - 1 + (o * ch) // size, y[:, None] - 1 - ((-(o + 1) * ch) // size)
    xs0, xs1 = x[:, None] - 1 + (o * cw) // size, x[:, None] - 1 - ((-(o + 1) * cw) // size)
    flat, h1, w1 = total.reshape(-1, 3), total.shape[1], total.shape[2]
    r0, r1 = (inds[:, None] * h1 + ys0) * w1, (inds[:, None] * h1 + ys1) * w1  # row starts in `flat`

    def at(rows, cols):  # total[inds, rows, cols] for every (row, col) pair of each crop: [N, size, size, 3]
        index = (rows[:, :, None] + cols[:, None, :]).reshape(-1)
        return np.take(flat, index, axis=0).reshape(len(inds), size, size, 3)

    sums = at(r1, xs1) - at(r0, xs1) - at(r1, xs0) + at(r0, xs0)
    return _normalise(sums.transpose(0, 3, 1, 2), (ys1 - ys0)[:, None, :, None], (xs1 - xs0)[:, None, None, :])


def _run_chunked(session: ort.InferenceSession, data: np.ndarray, chunk: int = 512) -> list[np.ndarray]:
    """facenet's fixed_batch_process: the net on 512 crops at a time (bounds memory; results per crop)."""
    parts = [session.run(None, {"input": data[i:i + chunk]}) for i in range(0, len(data), chunk)]
    return [np.concatenate(p) for p in zip(*parts)]


def _generate_bounding_box(reg, probs, scale, thresh):
    """P-Net map cells with prob >= thresh -> [N, 9] (x1, y1, x2, y2, score, reg x4) and image indices."""
    mask = probs >= thresh
    image, yy, xx = np.nonzero(mask)
    bb = np.stack([xx, yy], 1).astype(F32)
    q1 = np.floor((2 * bb + 1) / F32(scale))
    q2 = np.floor((2 * bb + 12 - 1 + 1) / F32(scale))
    box = np.concatenate([q1, q2, probs[mask][:, None], reg[image, :, yy, xx]], 1)
    return box.astype(F32, copy=False), image.astype(np.int64)


def _rerec(b: np.ndarray) -> np.ndarray:
    """Boxes to squares around the same centre (facenet's rerec, same float32 operation order)."""
    b = b.copy()
    h, w = b[:, 3] - b[:, 1], b[:, 2] - b[:, 0]
    side = np.maximum(w, h)
    b[:, 0] = b[:, 0] + w * F32(0.5) - side * F32(0.5)
    b[:, 1] = b[:, 1] + h * F32(0.5) - side * F32(0.5)
    b[:, 2:4] = b[:, :2] + side[:, None]
    return b


def _bbreg(b: np.ndarray, reg: np.ndarray) -> np.ndarray:
    """Apply box regression (facenet's bbreg: widths with +1)."""
    b = b.copy()
    w, h = b[:, 2] - b[:, 0] + 1, b[:, 3] - b[:, 1] + 1
    b[:, :4] = np.stack([b[:, 0] + reg[:, 0] * w, b[:, 1] + reg[:, 1] * h,
                         b[:, 2] + reg[:, 2] * w, b[:, 3] + reg[:, 3] * h], 1)
    return b


def _nms(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """torchvision.ops.nms on CPU: stable descending score order, IoU without +1, suppress IoU > threshold."""
    x1, y1, x2, y2 = boxes.T
    areas = (x2 - x1) * (y2 - y1)
    order, keep = np.argsort(-scores, kind="stable"), []
    with np.errstate(invalid="ignore", divide="ignore"):
        while order.size:
            i, rest = order[0], order[1:]
            keep.append(i)
            wid = np.maximum(F32(0), np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]))
            hei = np.maximum(F32(0), np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]))
            inter = wid * hei
            ovr = inter / (areas[i] + areas[rest] - inter)
            order = rest[~(ovr.astype(np.float64) > threshold)]
    return np.asarray(keep, np.int64)


def _batched_nms(boxes, scores, idxs, threshold) -> np.ndarray:
    """torchvision.ops.batched_nms on CPU, both branches (so float rounding of the offsets matches)."""
    if boxes.size == 0:
        return np.zeros(0, np.int64)
    if boxes.size > 4000:  # torchvision's per-class loop; its final unstable sort is made stable here
        keep = np.sort(np.concatenate([members[_nms(boxes[members], scores[members], threshold)]
                                       for members in (np.nonzero(idxs == c)[0] for c in np.unique(idxs))]))
        return keep[np.argsort(-scores[keep], kind="stable")]
    offsets = idxs.astype(F32) * (boxes.max() + F32(1))
    return _nms(boxes + offsets[:, None], scores, threshold)


def _batched_nms_min(boxes, scores, idxs, threshold) -> np.ndarray:
    """facenet's batched_nms_numpy + nms_numpy with method 'Min' (areas with +1, numpy's default argsort)."""
    if boxes.size == 0:
        return np.zeros(0, np.int64)
    boxes = boxes + (idxs.astype(F32) * (boxes.max() + 1))[:, None]
    x1, y1, x2, y2 = boxes.T
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order, pick = np.argsort(scores), []
    while order.size > 0:
        i, idx = order[-1], order[:-1]
        pick.append(i)
        wid = np.maximum(0.0, np.minimum(x2[i], x2[idx]) - np.maximum(x1[i], x1[idx]) + 1)
        hei = np.maximum(0.0, np.minimum(y2[i], y2[idx]) - np.maximum(y1[i], y1[idx]) + 1)
        o = wid * hei / np.minimum(area[i], area[idx])
        order = order[np.where(o <= threshold)]
    return np.asarray(pick, np.int64)


@FACE_BACKENDS.register(ONNX)
def onnx_mtcnn(config: FaceDetectorConfig):
    """FaceDetector's onnx backend: the export in the model cache (forensics.faces.backends.mtcnn_export_dir).

    Images are independent in MTCNN (NMS runs per image), so a batch is detected in chunks of ONNX_CHUNK frames,
    the same faces as in one pass: memory holds a few frames' pyramids, and chunks run side by side on a thread
    each (sessions are thread-safe and release the GIL, as does most of the numpy between them). On the 2-core
    machine two one-thread workers detect 32 640-px frames in half the time of one two-thread pass (figures at
    ONNX_CHUNK): the numpy steps between network calls no longer leave a core idle."""
    directory = mtcnn_export_dir()
    if not mtcnn_files_ready(directory):
        raise ValueError(f"{directory}: no complete MTCNN ONNX export (forensics export --cache writes it)")
    workers = _workers()
    mtcnn = OnnxMTCNN(directory, min_face_size=config.min_face_size, thresholds=config.thresholds,
                      factor=config.factor, threads=max(1, (os.cpu_count() or 1) // workers))
    pool = _pool() if workers > 1 else None

    def detect(batch: np.ndarray) -> list[list[Face]]:
        chunks = [batch[start:start + ONNX_CHUNK] for start in range(0, len(batch), ONNX_CHUNK)]
        done = pool.map(mtcnn.detect, chunks) if pool is not None and len(chunks) > 1 else map(mtcnn.detect, chunks)
        found = [d for chunk in done for d in chunk]
        return faces_from_mtcnn([d[0] if d else None for d in found], [d[1] if d else None for d in found],
                                [d[2] if d else None for d in found], len(found))

    return detect


def _workers() -> int:
    return max(1, min(MAX_WORKERS, os.cpu_count() or 1))


_POOL: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    """One pool per process, as there is one set of cores: every backend instance (one per face size) shares it."""
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(_workers(), thread_name_prefix="mtcnn")
    return _POOL
