"""Aligned faces with exact truth: crops land the true five points on the template, and are cached."""
from __future__ import annotations

import numpy as np
import pytest

from forensics.faces.align import template_in_crop
from forensics.synthetic import five_points
from forensics.synthetic.faceset import load_faceset


def test_faceset_aligns_truth_onto_template_and_caches(tiny_world):
    faces = load_faceset(tiny_world, size=64, margin=0.25)
    assert faces.images.shape == (4 * 6, 64, 64, 3) and faces.images.dtype == np.uint8
    assert faces.landmarks.shape == (24, 68, 2)
    assert faces.identities() == [0, 1, 2, 3]
    # The alignment is fitted on the true points, so they sit on the template up to the similarity fit.
    template = template_in_crop(64, 0.25)
    errors = [np.abs(five_points(lm) - template).max() for lm in faces.landmarks]
    assert max(errors) < 4.0
    assert 8.0 < float(np.median(faces.inter_ocular())) < 24.0
    video = faces.of_video(faces.video_ids()[0])
    assert list(video.frame) == sorted(video.frame) and len(set(video.identity)) == 1
    assert list(tiny_world.glob("faceset-64-*.npz"))
    again = load_faceset(tiny_world, size=64, margin=0.25, identities=[1])
    assert set(again.identity) == {1} and np.array_equal(again.images, faces.of_identity(1).images)


def test_faceset_rejects_a_folder_that_is_not_a_world(tmp_path):
    with pytest.raises(ValueError, match="not a synthetic world"):
        load_faceset(tmp_path)
