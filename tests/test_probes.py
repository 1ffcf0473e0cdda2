"""Probes trained on a tiny rendered world, and the generator metrics built on them: they must be able to
pass (real frames judged against themselves) and to fail (another identity, another pose)."""
from __future__ import annotations

import json
import time

import numpy as np
import pytest

from forensics.probes import (IdentityProbe, LandmarkProbe, ProbeTrainConfig, animation_quality, load_probes,
                              mtcnn_face_rate, swap_quality, train_probes)
from forensics.synthetic import WorldConfig, generate_world
from forensics.synthetic.faceset import load_faceset

# 3 epochs x 20 steps at 32 px; one extra rendered scene of 4 frames per identity exercises scenes.py
SETTINGS = dict(size=32, epochs=3, device="cpu",
                config=ProbeTrainConfig(steps_per_epoch=20, batch_size=32, extra_scenes=1, scene_frames=4))


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("probe_world")
    generate_world(root, WorldConfig(identities=4, videos_per_identity=1, frames=8, size=128, seed=5), progress=False)
    return root


@pytest.fixture(scope="module")
def trained(world, tmp_path_factory):
    out = tmp_path_factory.mktemp("probes")
    identity, landmarks, report = train_probes(world, out, **SETTINGS)
    return out, identity, landmarks, report


@pytest.fixture(scope="module")
def faces(world):
    return load_faceset(world, size=32)


def test_probes_beat_chance_on_held_out_frames(trained):
    _, _, _, report = trained
    assert report["n_heldout"] == 8 and report["n_train"] == 24  # last 2 of 8 frames per single-video identity
    assert report["n_extra_scene_crops"] == 16  # 4 identities x 1 new scene x 4 frames, training only
    assert report["identity"]["chance"] == 0.25
    assert report["identity"]["heldout_accuracy"] >= 0.75
    lm = report["landmarks"]
    assert lm["heldout_nme"] < lm["mean_shape_nme"]
    history = report["history"]
    assert len(history) == 3
    assert history[-1]["train/lm_nme"] < 0.8 * history[0]["train/lm_nme"]  # it learns, not just starts at the mean


def test_identity_probe_tells_identities_apart(trained, faces, world):
    _, identity, _, _ = trained
    predicted = identity.predict(faces.images)
    assert predicted.dtype == np.int64 and set(predicted) <= set(faces.identities())
    assert np.mean(predicted == faces.identity) >= 0.75
    embeddings = identity.embed(faces.images)
    assert np.allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-4)
    # the same frames aligned at another size and margin: the probe re-frames them to its own
    wider = load_faceset(world, size=48, margin=0.4)
    assert np.mean(identity.predict(wider.images, margin=0.4) == wider.identity) >= 0.75


def test_swap_quality_passes_on_true_identity_and_fails_on_another(trained, faces):
    _, identity, landmarks, _ = trained
    probes = (identity, landmarks)
    person = faces.identities()[0]
    own = faces.of_video(faces.of_identity(person).video_ids()[0])
    good = swap_quality(probes, own.images, source_identity=person, target_crops=own.images)
    assert good["n"] == 8 and good["id_retrieval"] >= 0.75 and good["landmark_error"] == pytest.approx(0, abs=1e-6)

    truth = swap_quality(probes, own.images, source_identity=person, target_landmarks=own.landmarks)
    assert truth["landmark_error"] < 0.2
    wrong = faces.identities()[1]
    assert swap_quality(probes, own.images, source_identity=wrong, target_crops=own.images)["id_retrieval"] <= 0.25
    # right identity, wrong pose/expression: each fake compared with the landmarks of a mirrored frame
    mirrored = own.landmarks.copy()
    mirrored[..., 0] = own.size - 1 - mirrored[..., 0]
    shifted = swap_quality(probes, own.images, person, target_landmarks=mirrored + np.float32([0, 4]))
    assert shifted["landmark_error"] > truth["landmark_error"] + 0.1


def test_animation_quality_zero_for_the_driver_itself(trained, faces):
    _, identity, landmarks, _ = trained
    probes = (identity, landmarks)
    a, b = faces.identities()[:2]
    driving = faces.of_identity(a).images
    same = animation_quality(probes, driving, driving, driving[0], reconstruction_targets=driving)
    assert same["akd"] == pytest.approx(0, abs=1e-6) and same["l1"] == pytest.approx(0, abs=1e-9)
    assert same["l1_copy_source_baseline"] > 0 and same["l1_reduction"] == pytest.approx(1.0)
    impostor = faces.of_identity(b).images[:len(driving)]
    other = animation_quality(probes, impostor, driving, driving[0], reconstruction_targets=driving)
    assert other["aed"] > same["aed"] + 0.05
    assert other["l1"] > 0
    assert animation_quality(probes, driving, driving, driving[0])["l1"] is None
    with pytest.raises(ValueError, match="source"):
        animation_quality(probes, driving, driving, driving[:2])


def test_probes_save_load_without_pickle_and_are_cached(trained, world, faces):
    out, identity, landmarks, report = trained
    assert sorted(p.name for p in (out / "identity").iterdir()) == ["config.json", "model.safetensors"]
    assert json.loads((out / "identity" / "config.json").read_text())["kind"] == "identity-probe"
    loaded_identity, loaded_landmarks = load_probes(out, device="cpu")
    assert np.array_equal(loaded_identity.predict(faces.images), identity.predict(faces.images))
    assert np.allclose(loaded_landmarks.predict(faces.images), landmarks.predict(faces.images), atol=1e-5)
    stamp = (out / "identity" / "model.safetensors").stat().st_mtime_ns
    started = time.perf_counter()
    _, _, again = train_probes(world, out, **SETTINGS)
    assert again["probe_key"] == report["probe_key"]
    assert (out / "identity" / "model.safetensors").stat().st_mtime_ns == stamp and time.perf_counter() - started < 5
    with pytest.raises(ValueError, match="landmark-probe.*expected 'identity-probe'"):
        IdentityProbe.load(out / "landmarks")
    with pytest.raises(ValueError, match="not a probe checkpoint"):
        LandmarkProbe.load(out)


def test_mtcnn_finds_rendered_faces_and_not_noise(faces):
    rng = np.random.default_rng(0)
    assert mtcnn_face_rate(faces.images[::4]) >= 0.75  # 32 px crops, upscaled to 128 px first
    assert mtcnn_face_rate(rng.integers(0, 256, (4, 64, 64, 3), dtype=np.uint8)) == 0.0
