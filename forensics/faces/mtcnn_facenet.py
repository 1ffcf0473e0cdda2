"""The facenet-pytorch backend of FaceDetector: MTCNN on torch (CPU or CUDA), the reference the ONNX backend
is checked against."""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from facenet_pytorch import MTCNN

from forensics.device import resolve_device
from forensics.faces.backends import FACE_BACKENDS, FACENET
from forensics.faces.detector import Face, FaceDetectorConfig, faces_from_mtcnn


@FACE_BACKENDS.register(FACENET)
def facenet_mtcnn(config: FaceDetectorConfig) -> Callable[[np.ndarray], list[list[Face]]]:
    mtcnn = MTCNN(min_face_size=config.min_face_size, thresholds=list(config.thresholds), factor=config.factor,
                  post_process=False, select_largest=False, keep_all=True,
                  device=resolve_device(config.device)).eval()

    def detect(batch: np.ndarray) -> list[list[Face]]:
        with torch.inference_mode():
            boxes, probs, points = mtcnn.detect(batch, landmarks=True)
        return faces_from_mtcnn(boxes, probs, points, len(batch))

    return detect
