"""One face-crop path: the crops a detector is trained and calibrated on (the face-crop cache) are the crops
`forensics detect` scores, pixel for pixel, and so are the scores.

The same decoded frames of a rendered H.264 video go through the cache's face pipeline and through detect's;
then the cache is built from the file and `forensics detect`'s pipeline analyses the same file, and every
frame score in its record is the detector's calibrated probability of the matching cached crop.
"""
from __future__ import annotations

import numpy as np
import pytest

from detectors import create_detector, load_detector, predict_logits, save_detector
from forensics.data.cache import CacheConfig, FaceCache
from forensics.data.manifest import read_manifest
from forensics.media import sample_frames
from forensics.pipelines import DetectConfig, DetectPipeline
from forensics.synthetic import WorldConfig, generate_world

FRAMES = 6
CROP = 96


@pytest.fixture(scope="module")
def video_and_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("parity")
    generate_world(root / "world", WorldConfig(identities=1, videos_per_identity=1, frames=12, size=160, seed=11),
                   progress=False)
    (row,) = read_manifest(root / "world" / "manifest.csv")
    model = create_detector("mobilenetv3-small", input_size=64)
    save_detector(root / "model", model, {"threshold": 0.5, "calibration": {"a": 1.7, "b": -0.2},
                                          "crop": {"size": CROP, "margin": 0.25}})
    return root, row, load_detector(root / "model")


def test_same_frames_give_identical_crops_through_the_cache_and_detect(video_and_model):
    root, row, loaded = video_and_model
    sample = sample_frames(row.path, n=FRAMES)
    cache = FaceCache(root / "cache_a", CacheConfig(frames=FRAMES, crop_size=CROP, margin=0.25, device="cpu"))
    from_cache = cache.face_pipeline().run([f.image for f in sample.frames], [f.index for f in sample.frames],
                                           [f.t for f in sample.frames])
    detect = DetectPipeline(loaded, DetectConfig(frames=FRAMES, device="cpu", thumbnails=0))
    from_detect = [face for _, faces in detect.faces.stream(sample.frames, detect_every=detect.config.keyframe_stride,
                                                            chunk=detect.config.chunk) for face in faces]

    assert len(from_cache.crops) == len(from_detect) == FRAMES            # one face on every frame
    for a, b in zip(from_cache.crops, from_detect):
        assert (a.frame, a.track) == (b.frame, b.track)
        assert a.crop.shape == (CROP, CROP, 3) and np.array_equal(a.crop, b.crop)
        np.testing.assert_array_equal(a.landmarks, b.landmarks)


@pytest.mark.parametrize("clip_len", [1, 3])       # frames spread evenly, and windows of consecutive frames
def test_detect_scores_are_the_scores_of_the_cached_crops(video_and_model, clip_len):
    root, row, loaded = video_and_model
    cache = FaceCache(root / f"cache_b{clip_len}", CacheConfig(frames=FRAMES, crop_size=CROP, margin=0.25, device="cpu",
                                                               clip_len=clip_len))
    report = cache.build([row], progress=False)
    assert report.failed == 0
    (entry,) = cache.entries()
    crops = np.asarray(cache.load_crops(entry))
    cached_probs = loaded.probability(predict_logits(loaded.model, crops, loaded.device))

    config = DetectConfig(frames=FRAMES, clip_len=clip_len, device="cpu", thumbnails=0)
    record = DetectPipeline(loaded, config).analyse(row.path)
    scores = record.record.to_json()["frame_scores"]
    assert [s["frame"] for s in scores] == [face["frame"] for face in entry.faces]
    if clip_len > 1:
        assert [s["frame"] for s in scores] == [0, 1, 2, 9, 10, 11]
    np.testing.assert_allclose([s["score"] for s in scores], cached_probs, atol=2e-6)   # records keep 6 decimals
