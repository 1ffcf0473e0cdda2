"""The torch-free MTCNN (forensics.faces.mtcnn_onnx) against facenet-pytorch's, on rendered faces."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from facenet_pytorch import MTCNN

from forensics.faces.mtcnn_export import export_mtcnn_onnx
from forensics.faces.mtcnn_onnx import OnnxMTCNN, mtcnn_files_ready
from forensics.synthetic import FrameState, SceneConfig, render_frame, world_identity

BOX_TOL, POINT_TOL, PROB_TOL = 0.5, 0.5, 1e-3


@pytest.fixture(scope="module")
def onnx_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("mtcnn_onnx")
    paths = export_mtcnn_onnx(directory)
    assert [p.name for p in paths] == ["pnet.onnx", "rnet.onnx", "onet.onnx"]
    return directory


@pytest.fixture(scope="module")
def faces():
    """Three rendered heads (256 px), turned a little differently."""
    return [render_frame(world_identity(0, k), FrameState(yaw=yaw, mouth_open=0.3), SceneConfig(), 256)[0]
            for k, yaw in ((0, 0.0), (1, 15.0), (2, -20.0))]


def _facenet(batch: np.ndarray, **kw):
    mtcnn = MTCNN(post_process=False, select_largest=False, keep_all=True, **kw).eval()
    with torch.inference_mode():
        return mtcnn.detect(batch, landmarks=True)


def _assert_same(batch: np.ndarray, onnx_dir, **kw) -> list[int]:
    """facenet and the port agree face for face; returns the face count per image."""
    boxes, probs, points = _facenet(batch, **kw)
    ported = OnnxMTCNN(onnx_dir, **kw).detect(batch)
    assert len(ported) == len(batch)
    counts = []
    for i, got in enumerate(ported):
        if boxes[i] is None:
            assert got is None, f"image {i}: facenet found nothing, the port found {got}"
            counts.append(0)
            continue
        assert got is not None, f"image {i}: the port found nothing"
        ref_b = np.asarray(boxes[i], np.float32).reshape(-1, 4)
        ref_p = np.asarray(probs[i], np.float32).reshape(-1)
        ref_l = np.asarray(points[i], np.float32).reshape(-1, 5, 2)
        b, p, lm = got
        assert b.dtype == p.dtype == lm.dtype == np.float32
        assert b.shape == ref_b.shape and p.shape == ref_p.shape and lm.shape == ref_l.shape
        # Same order as facenet (by probability); match by box anyway, so exact probability ties cannot matter.
        order = [int(np.abs(ref_b - box).max(axis=1).argmin()) for box in b]
        assert sorted(order) == list(range(len(b)))
        assert np.abs(b - ref_b[order]).max() <= BOX_TOL
        assert np.abs(lm - ref_l[order]).max() <= POINT_TOL
        assert np.abs(p - ref_p[order]).max() <= PROB_TOL
        counts.append(len(b))
    return counts


def test_batch_of_same_size_faces_matches_facenet(onnx_dir, faces):
    assert _assert_same(np.stack(faces), onnx_dir) == [1, 1, 1]


def test_wide_frame_with_two_faces_and_an_empty_frame_match_facenet(onnx_dir, faces):
    rng = np.random.default_rng(0)
    wide = np.full((360, 640, 3), (70, 90, 110), np.uint8)
    wide[40:220, 60:240] = cv2.resize(faces[0], (180, 180), interpolation=cv2.INTER_AREA)
    wide[150:270, 420:540] = cv2.resize(faces[1], (120, 120), interpolation=cv2.INTER_AREA)
    wide = np.clip(wide + rng.normal(0, 3, wide.shape), 0, 255).astype(np.uint8)
    grey = np.clip(rng.normal(128, 6, wide.shape), 0, 255).astype(np.uint8)
    assert _assert_same(np.stack([wide, grey]), onnx_dir) == [2, 0]
    assert _assert_same(grey[None], onnx_dir) == [0]
    # Other settings (min_face_size below 12 upsamples the first pyramid levels) agree too.
    assert _assert_same(wide[None], onnx_dir, min_face_size=10, thresholds=[0.5, 0.6, 0.6], factor=0.6) == [2]


def test_output_format_single_image_and_tiny_frames(onnx_dir, faces):
    mtcnn = OnnxMTCNN(onnx_dir)
    [(boxes, probs, points)] = mtcnn.detect(faces[0])  # one HxWx3 image is a batch of one
    assert boxes.shape == (1, 4) and probs.shape == (1,) and points.shape == (1, 5, 2)
    assert probs[0] > 0.9 and boxes[0, 0] < points[0, :, 0].min() and boxes[0, 2] > points[0, :, 0].max()
    assert mtcnn.detect(np.zeros((2, 15, 40, 3), np.uint8)) == [None, None]  # shorter than min_face_size
    assert mtcnn.detect(np.zeros((0, 64, 64, 3), np.uint8)) == []
    with pytest.raises(ValueError, match="uint8"):
        mtcnn.detect(faces[0].astype(np.float32))


def test_files_ready_checks_manifest_and_hashes(onnx_dir, tmp_path):
    assert mtcnn_files_ready(onnx_dir)
    manifest = json.loads((onnx_dir / "mtcnn.json").read_text())
    assert manifest["format"] == "forensics-mtcnn-onnx/1" and manifest["facenet_pytorch"]
    assert sorted(manifest["files"]) == ["onet.onnx", "pnet.onnx", "rnet.onnx"]
    assert not list(onnx_dir.glob(".*.tmp"))  # no temp files left behind

    copy = tmp_path / "copy"
    shutil.copytree(onnx_dir, copy)
    assert mtcnn_files_ready(copy)
    with open(copy / "rnet.onnx", "ab") as f:
        f.write(b"\0")
    assert not mtcnn_files_ready(copy)
    shutil.copy(onnx_dir / "rnet.onnx", copy / "rnet.onnx")
    (copy / "mtcnn.json").unlink()
    assert not mtcnn_files_ready(copy)
    assert not mtcnn_files_ready(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="export_mtcnn_onnx"):
        OnnxMTCNN(tmp_path / "nowhere")


def test_importing_the_port_does_not_import_torch():
    code = ("import sys, forensics.faces.mtcnn_onnx\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'facenet_pytorch'))\n"
            "assert not bad, ('torch loaded', sorted(m for m in sys.modules if m.startswith('forensics')))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
