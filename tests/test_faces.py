"""forensics.faces: alignment maths, tracking, downscale mapping, and the real MTCNN on drawn faces."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from forensics.faces import (
    CANONICAL_LANDMARKS_5,
    CropSpec,
    Face,
    FaceConfig,
    FaceDetector,
    FaceDetectorConfig,
    FaceInputError,
    FacePipeline,
    IoUTracker,
    align_face,
    box_iou,
    crop_box,
    detection_size,
    faces_from_mtcnn,
    get_face_detector,
    scale_face,
    similarity_transform,
    template_in_crop,
    to_rgb_uint8,
    track_faces,
)
from forensics.faces.tracking import is_scene_cut, scene_signature


def draw_face(size: int = 160, skin=(224, 172, 138), background=(70, 90, 110), seed: int = 0):
    """A cartoon frontal face MTCNN finds with prob > 0.9 (shaded skin ellipse, hair, brows, eyes with dark
    irises, nose, nostrils, lips). Returns (RGB image, drawn 5 landmarks in the same order as MTCNN's)."""
    rng = np.random.default_rng(seed)
    img = np.zeros((size, size, 3), np.uint8)
    img[:] = background
    s = size / 160.0
    cx, cy = size / 2.0, size * 0.52

    def p(x, y):
        return int(round(cx + x * s)), int(round(cy + y * s))

    def ln(v):
        return max(1, int(round(v * s)))

    hair, dark_skin = (40, 28, 20), tuple(int(c * 0.75) for c in skin)
    cv2.rectangle(img, p(-18, 30), p(18, 90), tuple(int(c * 0.85) for c in skin), -1)  # neck
    cv2.ellipse(img, p(0, -12), (ln(50), ln(58)), 0, 0, 360, hair, -1)
    cv2.ellipse(img, p(0, 2), (ln(42), ln(54)), 0, 0, 360, skin, -1)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    r = np.sqrt(((xx - cx) / (42 * s)) ** 2 + ((yy - (cy + 2 * s)) / (54 * s)) ** 2)
    shade = np.clip(1.0 - 0.35 * np.clip(r - 0.55, 0, 1) / 0.45, 0.6, 1.0)  # darker towards jaw and temples
    inside = r <= 1.0
    img[inside] = (img[inside] * shade[inside, None]).astype(np.uint8)
    cv2.ellipse(img, p(0, -40), (ln(44), ln(22)), 0, 180, 360, hair, -1)  # fringe
    for sx in (-1, 1):
        cv2.ellipse(img, p(sx * 18, -18), (ln(11), ln(4)), 0, 180, 360, (60, 40, 30), ln(3))  # brow
        cv2.ellipse(img, p(sx * 18, -8), (ln(10), ln(5)), 0, 0, 360, (245, 245, 245), -1)  # eye white
        cv2.circle(img, p(sx * 18, -8), ln(4.5), (60, 40, 25), -1)  # iris
        cv2.circle(img, p(sx * 18, -8), ln(2), (10, 10, 10), -1)  # pupil
        cv2.ellipse(img, p(sx * 18, -8), (ln(10), ln(5)), 0, 180, 360, (90, 60, 50), ln(1.5))  # lid
    cv2.line(img, p(-3, -4), p(-6, 14), dark_skin, ln(2))
    cv2.ellipse(img, p(0, 16), (ln(8), ln(4)), 0, 0, 180, dark_skin, ln(2))
    for sx in (-1, 1):
        cv2.circle(img, p(sx * 5, 15), ln(2), tuple(int(c * 0.5) for c in skin), -1)  # nostril
    cv2.ellipse(img, p(0, 30), (ln(15), ln(5)), 0, 0, 360, (170, 70, 70), -1)
    cv2.line(img, p(-15, 30), p(15, 30), (110, 40, 40), ln(1.5))
    img = cv2.GaussianBlur(img, (0, 0), 1.0 * s)
    img = np.clip(img + rng.normal(0, 3, img.shape), 0, 255).astype(np.uint8)
    landmarks = np.array([[-18, -8], [18, -8], [0, 12], [-15, 30], [15, 30]], np.float32) * s + [cx, cy]
    return img, landmarks.astype(np.float32)


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return get_face_detector(FaceDetectorConfig(device="cpu", batch_size=2))


def _rotation_scale(angle_deg: float, scale: float) -> np.ndarray:
    a = np.deg2rad(angle_deg)
    return scale * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])


# ---------------------------------------------------------------- alignment maths


def test_similarity_transform_recovers_rotation_scale_translation():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, size=(5, 2))
    linear, shift = _rotation_scale(27.0, 1.7), np.array([12.5, -40.0])
    dst = src @ linear.T + shift
    m = similarity_transform(src, dst)
    assert m.shape == (2, 3)
    np.testing.assert_allclose(m[:, :2], linear, atol=1e-9)
    np.testing.assert_allclose(m[:, 2], shift, atol=1e-7)


def test_similarity_transform_is_least_squares_and_never_reflects():
    rng = np.random.default_rng(1)
    src = rng.uniform(0, 50, size=(5, 2))
    dst = src @ _rotation_scale(-10, 0.8).T + 3 + rng.normal(0, 0.5, size=(5, 2))
    m = similarity_transform(src, dst)
    residual = np.linalg.norm(src @ m[:, :2].T + m[:, 2] - dst, axis=1).mean()
    assert residual < 1.0
    perturbed = m.copy()
    perturbed[:, 2] += 0.3  # any other transform fits worse
    assert np.linalg.norm(src @ perturbed[:, :2].T + perturbed[:, 2] - dst, axis=1).mean() > residual
    mirrored = similarity_transform(src, src * [-1, 1])
    assert np.linalg.det(mirrored[:, :2]) > 0
    with pytest.raises(FaceInputError):
        similarity_transform(np.ones((5, 2)), dst)


def test_canonical_template_is_arcface_layout_in_unit_square():
    t = CANONICAL_LANDMARKS_5
    assert t.shape == (5, 2) and t.min() > 0 and t.max() < 1
    assert t[0, 0] < t[2, 0] < t[1, 0] and t[3, 0] < t[4, 0]      # image-left before image-right
    assert t[0, 1] < t[2, 1] < t[3, 1]                             # eyes above nose above mouth
    wide = template_in_crop(224, 0.5)
    tight = template_in_crop(224, 0.0)
    np.testing.assert_allclose(tight, t * 224, atol=1e-4)
    assert np.ptp(wide[:, 0]) == pytest.approx(np.ptp(tight[:, 0]) / 1.5, rel=1e-6)


def test_align_face_puts_drawn_landmarks_on_template_within_one_pixel():
    image = np.zeros((300, 400, 3), np.uint8)
    # the template, rotated, scaled and moved into the image: alignment must undo exactly that
    landmarks = (CANONICAL_LANDMARKS_5 - 0.5) * 120 @ _rotation_scale(20, 1.0).T + [230, 140]
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255)]
    for (x, y), colour in zip(landmarks, colours):
        cv2.circle(image, (int(round(x)), int(round(y))), 4, colour, -1)
    size, margin = 160, 0.3
    crop, matrix = align_face(image, landmarks, size=size, margin=margin)
    assert crop.shape == (size, size, 3) and crop.dtype == np.uint8
    expected = template_in_crop(size, margin)
    mapped = landmarks @ matrix[:, :2].T + matrix[:, 2]
    np.testing.assert_allclose(mapped, expected, atol=1.0)
    for target, colour in zip(expected, colours):  # the blobs themselves land on the template
        mask = np.all(np.abs(crop.astype(int) - colour) < 60, axis=2)
        ys, xs = np.nonzero(mask)
        centre = np.array([xs.mean(), ys.mean()])
        assert np.linalg.norm(centre - target) < 1.0


def test_crop_box_centres_the_box_with_margin_and_survives_frame_edges():
    image = np.zeros((200, 300, 3), np.uint8)
    cv2.rectangle(image, (100, 50), (159, 109), (255, 255, 255), -1)  # 60x60 white square
    crop = crop_box(image, np.array([100, 50, 160, 110]), size=120, margin=1.0)
    assert crop.shape == (120, 120, 3)
    ys, xs = np.nonzero(crop[:, :, 0] > 127)  # the square fills the middle half
    assert abs(xs.min() - 30) <= 1 and abs(xs.max() - 89) <= 1
    assert abs(ys.min() - 30) <= 1 and abs(ys.max() - 89) <= 1
    edge = crop_box(image, np.array([-40, -40, 20, 20]), size=64)
    assert edge.shape == (64, 64, 3)
    with pytest.raises(FaceInputError):
        crop_box(image, np.array([10, 10, 10, 50]))


def test_to_rgb_uint8_converts_gray_rgba_and_floats_and_rejects_bad_shapes():
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert to_rgb_uint8(gray).shape == (3, 4, 3)
    assert (to_rgb_uint8(gray)[:, :, 2] == gray).all()
    rgba = np.full((2, 2, 4), 7, np.uint8)
    assert to_rgb_uint8(rgba).shape == (2, 2, 3)
    assert to_rgb_uint8(np.ones((2, 2, 3), np.float32)).max() == 255
    assert to_rgb_uint8(np.full((2, 2, 3), 65535, np.uint16)).max() == 255
    with pytest.raises(FaceInputError, match="frame 3"):
        to_rgb_uint8(np.zeros((4, 4, 2)), "frame 3")


# ---------------------------------------------------------------- downscale mapping


def test_detection_size_keeps_small_frames_and_caps_the_long_side():
    assert detection_size(360, 640, 640) == (360, 640)
    assert detection_size(720, 1280, 640) == (360, 640)
    assert detection_size(1280, 720, 640) == (640, 360)
    assert detection_size(700, 1000, 640) == (448, 640)


def test_downscaled_box_maps_back_to_original_pixels_exactly():
    face = Face(box=np.array([10.0, 20.0, 110.0, 220.0], np.float32), prob=0.99,
                landmarks=np.array([[30, 60], [90, 60], [60, 100], [40, 150], [80, 150]], np.float32))
    h, w = 700, 1000
    dh, dw = detection_size(h, w, 640)
    back = scale_face(face, w / dw, h / dh)
    np.testing.assert_allclose(back.box, face.box * [w / dw, h / dh, w / dw, h / dh], rtol=1e-6)
    np.testing.assert_allclose(back.landmarks, face.landmarks * [w / dw, h / dh], rtol=1e-6)
    assert back.prob == face.prob
    # and on pixels: a rectangle found on the resized copy maps back onto where it was drawn
    image = np.zeros((h, w), np.uint8)
    image[140:420, 300:700] = 255
    small = cv2.resize(image, (dw, dh), interpolation=cv2.INTER_AREA)
    ys, xs = np.nonzero(small > 127)
    found = Face(box=np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32), prob=1.0,
                 landmarks=np.zeros((5, 2), np.float32))
    np.testing.assert_allclose(scale_face(found, w / dw, h / dh).box, [300, 140, 700, 420], atol=1.6)


def test_faces_from_mtcnn_handles_ragged_uniform_and_empty_outputs():
    one = np.array([[1, 2, 30, 40]], np.float32)
    pts = np.zeros((1, 5, 2), np.float32)
    ragged = faces_from_mtcnn(np.array([one, None], dtype=object), np.array([[0.95], [None]], dtype=object),
                              np.array([pts, None], dtype=object), 2)
    assert [len(f) for f in ragged] == [1, 0]
    uniform = faces_from_mtcnn(np.array([one, one], dtype=object), np.array([[0.9], [0.8]], dtype=object),
                               np.array([pts, pts], dtype=object), 2)
    assert [f[0].prob for f in uniform] == pytest.approx([0.9, 0.8])
    assert uniform[1][0].box.dtype == np.float32 and uniform[1][0].landmarks.shape == (5, 2)


# ---------------------------------------------------------------- tracking


def _face(x: float, y: float, side: float = 40.0, prob: float = 0.99) -> Face:
    return Face(box=np.array([x, y, x + side, y + side], np.float32), prob=prob,
                landmarks=np.zeros((5, 2), np.float32))


def test_box_iou():
    iou = box_iou(np.array([[0, 0, 10, 10]]), np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]]))
    np.testing.assert_allclose(iou, [[1.0, 1 / 3, 0.0]])


def test_tracker_keeps_ids_through_small_motion_and_splits_on_jumps():
    frames = [[_face(10, 10), _face(200, 10)], [_face(14, 12), _face(203, 9)], [_face(206, 11), _face(18, 13)],
              [_face(120, 120)]]
    ids = track_faces(frames)
    assert ids[0] == [0, 1]
    assert ids[1] == [0, 1]
    assert ids[2] == [1, 0]          # order of detections does not matter, overlap does
    assert ids[3] == [2]             # a face that jumped across the frame is someone new


def test_tracker_matches_highest_iou_first():
    tracker = IoUTracker(iou_threshold=0.1)
    tracker.update([_face(0, 0), _face(30, 0)])
    # the new face at x=25 overlaps track 1 best (IoU .78) and track 0 a little: it must take track 1,
    # leaving the face at x=2 to track 0 even though it is listed second
    assert tracker.update([_face(25, 0), _face(2, 0)]) == [1, 0]


def test_tracker_expires_tracks_after_max_gap_unseen_frames():
    within = IoUTracker(max_gap=2)
    assert within.update([_face(0, 0)]) == [0]
    within.update([])
    within.update([])
    assert within.update([_face(1, 0)]) == [0]      # unseen for 2 frames: still the same track
    gone = IoUTracker(max_gap=2)
    gone.update([_face(0, 0)])
    for _ in range(3):
        gone.update([])
    assert gone.update([_face(1, 0)]) == [1]        # unseen for 3 frames: expired


# ---------------------------------------------------------------- MTCNN


def test_blank_noise_and_tiny_frames_give_no_faces(detector):
    rng = np.random.default_rng(0)
    frames = [np.zeros((96, 96, 3), np.uint8), rng.integers(0, 256, (96, 128, 3), dtype=np.uint8),
              np.zeros((8, 8, 3), np.uint8), np.zeros((11, 200), np.uint8), np.zeros((0, 0, 3), np.uint8)]
    assert detector.detect(frames) == [[], [], [], [], []]
    assert detector.detect([]) == []


def test_detects_synthetic_faces(detector):
    face, drawn = draw_face(160)
    big = np.full((720, 1280, 3), (70, 90, 110), np.uint8)
    scale = 2  # the 1280x720 frame is detected at 640x360, so paste the face at twice the size
    big_face, big_drawn = draw_face(160 * scale)
    x0, y0 = 700, 200
    big[y0:y0 + 160 * scale, x0:x0 + 160 * scale] = big_face
    small_result, big_result = detector.detect([face, big])

    assert len(small_result) == 1 and small_result[0].prob >= 0.9
    found = small_result[0]
    assert found.box.dtype == np.float32 and found.landmarks.shape == (5, 2)
    x1, y1, x2, y2 = found.box
    assert x1 < drawn[:, 0].min() and x2 > drawn[:, 0].max() and y1 < drawn[:, 1].min() and y2 > drawn[:, 1].max()
    assert np.linalg.norm(found.landmarks - drawn, axis=1).max() < 8  # eyes, nose, mouth where drawn

    assert len(big_result) == 1 and big_result[0].prob >= 0.9
    mapped_back = (big_result[0].box - [x0, y0, x0, y0]) / scale
    assert np.abs(mapped_back - found.box).max() < 4  # same box, in the small face's pixels
    assert np.linalg.norm((big_result[0].landmarks - [x0, y0]) / scale - found.landmarks, axis=1).max() < 4


def test_batch_of_mixed_sizes_and_layouts(detector):
    face, _ = draw_face(128, seed=1)
    gray = cv2.cvtColor(face, cv2.COLOR_RGB2GRAY)
    rgba = np.dstack([face, np.full(face.shape[:2], 255, np.uint8)])
    wide = np.full((120, 300, 3), 90, np.uint8)
    wide[:, 20:148] = face[:120]
    two = np.full((128, 300, 3), (70, 90, 110), np.uint8)
    two[:, :128] = face
    two[:, 160:288] = draw_face(128, seed=2)[0]
    frames = [face, np.zeros((50, 70, 3), np.uint8), rgba, wide, face.astype(np.float32) / 255, two, gray]
    results = detector.detect(frames)  # batch_size=2: the three 128x128 colour frames span two chunks
    assert [len(r) for r in results] == [1, 0, 1, 1, 1, 2, 1]
    for r in results:
        assert all(f.prob >= 0.9 for f in r)
        assert [f.prob for f in r] == sorted((f.prob for f in r), reverse=True)
    np.testing.assert_allclose(results[2][0].box, results[0][0].box, atol=1e-3)  # alpha dropped, same face
    assert abs(results[3][0].box[0] - 20 - results[0][0].box[0]) < 3
    assert sorted(f.box[0] < 150 for f in results[5]) == [False, True]


def test_get_face_detector_reuses_one_instance_per_config(detector):
    assert get_face_detector(FaceDetectorConfig(device="cpu", batch_size=2)) is detector
    assert get_face_detector(FaceDetectorConfig(device="cpu", batch_size=2), min_prob=0.95) is not detector
    assert detector.config.device == "cpu" and detector.config.backend == "facenet"
    with pytest.raises(ValueError, match="factor"):
        FaceDetectorConfig(factor=1.5)
    with pytest.raises(ValueError, match="backend must be one of facenet, onnx"):
        FaceDetectorConfig(backend="dlib")


# ---------------------------------------------------------------- pipeline


def test_pipeline_tracks_aligns_and_reports_empty_frames(detector):
    face, _ = draw_face(120)
    frames = []
    for shift in (0, 4, 8, None, 12):
        frame = np.full((160, 220, 3), (70, 90, 110), np.uint8)
        if shift is not None:
            frame[20:140, 30 + shift:150 + shift] = face
        frames.append(frame)
    pipeline = FacePipeline(CropSpec(96, 0.25), FaceConfig(max_faces_per_frame=1), device="cpu", detector=detector)
    result = pipeline.run(frames, indices=[10, 12, 14, 16, 18], times=[0.4, 0.48, 0.56, 0.64, 0.72])

    assert result.no_face_frames == [16]
    assert [c.frame for c in result.crops] == [10, 12, 14, 18]
    assert [c.t for c in result.crops] == pytest.approx([0.4, 0.48, 0.56, 0.72])
    assert {c.track for c in result.crops} == {0}
    assert set(result.tracks) == {0}
    summary = result.tracks[0]
    assert summary["frames"] == 4 and summary["first"] == 10 and summary["last"] == 18
    assert summary["mean_prob"] == pytest.approx(np.mean([c.prob for c in result.crops]))
    crops = np.stack([c.crop for c in result.crops]).astype(np.float32)
    assert crops.shape == (4, 96, 96, 3)
    # alignment cancels the face's motion: the crops agree far better than the frames they came from
    assert np.abs(crops - crops[0]).mean(axis=(1, 2, 3)).max() < 10
    fixed_window = [cv2.resize(f[20:140, 30:150], (96, 96)).astype(np.float32) for f in (frames[0], frames[4])]
    assert np.abs(fixed_window[1] - fixed_window[0]).mean() > 2 * np.abs(crops[3] - crops[0]).mean()
    with pytest.raises(FaceInputError):
        pipeline.run(frames, indices=[0, 1])


def test_a_scene_cut_splits_a_track_that_box_overlap_would_join():
    """The same spot on screen after a cut to another scene is someone else: one track per scene, while one
    scene (even with small frame-to-frame changes) stays one track."""
    scene_a = [draw_face(background=(70, 90, 110), seed=i)[0] for i in range(4)]
    scene_b = [draw_face(background=(210, 70, 40), skin=(190, 140, 110), seed=10 + i)[0] for i in range(4)]
    pipeline = FacePipeline(CropSpec(64, 0.25), device="cpu")
    cut = pipeline.run(scene_a + scene_b)
    assert len(cut.crops) == 8 and len(cut.tracks) == 2
    assert {c.track for c in cut.crops[:4]} != {c.track for c in cut.crops[4:]}
    assert len(pipeline.run(scene_a + scene_a[::-1]).tracks) == 1
    assert is_scene_cut(scene_signature(scene_a[0]), scene_signature(scene_b[0]))
    assert not is_scene_cut(scene_signature(scene_a[0]), scene_signature(scene_a[1]))
