"""Generator quality from the probes: identity transfer, pose/expression preservation, motion, detectability.

Every landmark distance is a fraction of the inter-ocular distance (eye centre to eye centre) of the
*reference* landmarks (the target frame for swaps, the driving frame for animation), averaged over the
68 points and then over frames: the unit the issue's thresholds are stated in. Images are uint8 RGB
crops aligned like the probes' training crops (pass `margin` when they were aligned with another margin).
"""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from forensics.faces import FaceDetectorConfig, get_face_detector
from forensics.synthetic.faceset import FaceSet, inter_ocular

from .common import as_uint8_batch
from .identity import IdentityProbe
from .landmarks import LandmarkProbe

MTCNN_MIN_SIDE = 128


def landmark_nme(predicted: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Per face: mean 68-point distance / inter-ocular distance of the reference."""
    predicted, reference = np.asarray(predicted, np.float64), np.asarray(reference, np.float64)
    if predicted.shape != reference.shape or predicted.shape[-2:] != (68, 2):
        raise ValueError(f"landmarks: expected matching [N,68,2] arrays, got {predicted.shape} and {reference.shape}")
    iod = np.maximum(inter_ocular(reference), 1e-6)
    return np.linalg.norm(predicted - reference, axis=-1).mean(-1) / iod


def _probes(probes) -> tuple[IdentityProbe, LandmarkProbe]:
    """Accept (identity, landmarks), or anything with .identity and .landmarks."""
    if isinstance(probes, (tuple, list)) and len(probes) >= 2:
        return probes[0], probes[1]
    return probes.identity, probes.landmarks


def swap_quality(probes, fakes, source_identity: int, target_crops=None, target_landmarks=None,
                 target_identity: int | None = None, margin: float | None = None) -> dict:
    """Face-swap quality over swapped crops `fakes` [N,S,S,3] of `source_identity` onto target frames.

    id_retrieval: fraction of fakes the identity probe assigns to the source identity.
    landmark_error: mean NME between the probe's landmarks on each fake and the target frame's landmarks,
    which are `target_landmarks` ([N,68,2] in the fakes' pixels, e.g. ground truth) when given, else the
    probe's reading of `target_crops` (the real target frames the fakes replace, same framing).
    target_rate (with target_identity): fraction still assigned to the target, for diagnosis.
    """
    identity, landmarks = _probes(probes)
    fakes = as_uint8_batch(fakes, "swap_quality fakes")
    if target_landmarks is not None:
        reference = np.asarray(target_landmarks, np.float32)
    elif target_crops is not None:
        targets = as_uint8_batch(target_crops, "swap_quality target_crops")
        if targets.shape != fakes.shape:
            raise ValueError(f"swap_quality: target_crops {targets.shape} do not match fakes {fakes.shape}")
        reference = landmarks.predict(targets, margin)
    else:
        raise ValueError("swap_quality: give target_crops or target_landmarks (the frames the fakes replace)")
    if len(reference) != len(fakes):
        raise ValueError(f"swap_quality: {len(reference)} target landmark sets for {len(fakes)} fakes")
    if int(source_identity) not in identity.identities:
        raise ValueError(f"swap_quality: source identity {source_identity} is not one the probe was trained on")
    predicted = identity.predict(fakes, margin)
    errors = landmark_nme(landmarks.predict(fakes, margin), reference)
    result = {"id_retrieval": float(np.mean(predicted == int(source_identity))),
              "landmark_error": float(errors.mean()), "landmark_error_median": float(np.median(errors)),
              "n": int(len(fakes))}
    if target_identity is not None:
        result["target_rate"] = float(np.mean(predicted == int(target_identity)))
    return result


def animation_quality(probes, generated, driving, source, reconstruction_targets=None,
                      margin: float | None = None) -> dict:
    """Reenactment quality of `generated` [N,S,S,3] made from `source` ([S,S,3], or [N,S,S,3] one per frame)
    moving like `driving` [N,S,S,3].

    akd: mean NME between the probe's landmarks on generated and on driving frames.
    aed: mean Euclidean distance (0..2) between each generated frame's identity embedding and the source's.
    l1 / l1_copy_source_baseline (with reconstruction_targets, i.e. self-reenactment where the driving
    frames are the truth): mean absolute pixel error in [0, 1] of the generated frames, and of simply
    copying the source; l1_reduction = 1 - l1 / baseline.
    """
    identity, landmarks = _probes(probes)
    generated = as_uint8_batch(generated, "animation_quality generated")
    driving = as_uint8_batch(driving, "animation_quality driving")
    source = as_uint8_batch(source, "animation_quality source")
    if driving.shape != generated.shape:
        raise ValueError(f"animation_quality: driving {driving.shape} does not match generated {generated.shape}")
    if source.shape[1:] != generated.shape[1:] or len(source) not in (1, len(generated)):
        raise ValueError(f"animation_quality: source {source.shape} must be one crop or one per generated frame "
                         f"{generated.shape}")
    akd = landmark_nme(landmarks.predict(generated, margin), landmarks.predict(driving, margin))
    source_embedding = identity.embed(source, margin)
    if len(source_embedding) == 1:
        source_embedding = np.repeat(source_embedding, len(generated), 0)
    aed = np.linalg.norm(identity.embed(generated, margin) - source_embedding, axis=1)
    result = {"akd": float(akd.mean()), "aed": float(aed.mean()), "n": int(len(generated)),
              "l1": None, "l1_copy_source_baseline": None, "l1_reduction": None}
    if reconstruction_targets is not None:
        targets = as_uint8_batch(reconstruction_targets, "animation_quality reconstruction_targets")
        if targets.shape != generated.shape:
            raise ValueError(f"animation_quality: reconstruction_targets {targets.shape} do not match "
                             f"generated {generated.shape}")
        l1 = mean_abs(generated, targets)
        baseline = mean_abs(np.broadcast_to(source, targets.shape), targets)
        result.update(l1=l1, l1_copy_source_baseline=baseline,
                      l1_reduction=1.0 - l1 / baseline if baseline > 0 else None)
    return result


def mean_abs(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float32) - b.astype(np.float32)).mean() / 255.0)


def mtcnn_face_rate(images: Sequence[np.ndarray] | np.ndarray, min_prob: float = 0.9,
                    min_side: int = MTCNN_MIN_SIDE, detector=None) -> float:
    """Fraction of images in which MTCNN finds a face with probability >= min_prob.

    Images whose short side is below `min_side` (generator crops are 64 px) are first upscaled (bicubic)
    so it is: MTCNN's smallest pyramid window is 12 px and its P-Net was trained on faces of at least
    ~20 px, so a 64 px crop would be judged on too few pixels rather than on its realism. Full frames
    are passed as they are.
    """
    images = [np.asarray(image) for image in images]
    if not images:
        raise ValueError("mtcnn_face_rate: no images")
    detector = detector or get_face_detector(FaceDetectorConfig(min_prob=min_prob))
    frames = [_upscale(image, min_side) for image in images]
    found = detector.detect(frames)
    return float(np.mean([any(face.prob >= min_prob for face in faces) for faces in found]))


def _upscale(image: np.ndarray, min_side: int) -> np.ndarray:
    short = min(image.shape[:2])
    if short >= min_side:
        return image
    scale = min_side / short
    size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
    return cv2.resize(image, size, interpolation=cv2.INTER_CUBIC)


# ------------------------------------------------------------------------------------ probe self-checks

def colour_transfer(image: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Reinhard colour transfer (LAB mean/std) of `image` towards `reference`: what swap pipelines do
    to a generated face before blending."""
    src = cv2.cvtColor(image, cv2.COLOR_RGB2LAB).astype(np.float32)
    ref = cv2.cvtColor(reference, cv2.COLOR_RGB2LAB).astype(np.float32)
    mean_s, std_s = src.mean((0, 1)), src.std((0, 1)) + 1e-3
    mean_r, std_r = ref.mean((0, 1)), ref.std((0, 1)) + 1e-3
    out = (src - mean_s) / std_s * std_r + mean_r
    return cv2.cvtColor(np.clip(out, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)


def heldout_report(identity: IdentityProbe, landmarks: LandmarkProbe, train: FaceSet, held: FaceSet,
                   seed: int = 0) -> dict:
    """The probes' own figures on held-out real crops: what the generator metrics are only as good as."""
    if len(held) == 0:
        return {"identity": {}, "landmarks": {}}
    rng = np.random.default_rng(seed)
    predicted = identity.predict(held.images)
    others = [int(rng.choice(np.flatnonzero(train.identity != who))) for who in held.identity]
    recoloured = np.stack([colour_transfer(img, train.images[j]) for img, j in zip(held.images, others)])
    centroids = _centroids(identity.embed(train.images), train.identity, identity.identities)
    held_embeddings = identity.embed(held.images)
    own = np.searchsorted(identity.identities, held.identity)
    distances = np.linalg.norm(held_embeddings[:, None] - centroids[None], axis=2)
    other_mask = np.ones_like(distances, bool)
    other_mask[np.arange(len(own)), own] = False
    errors = landmark_nme(landmarks.predict(held.images), held.landmarks)
    mean_shape = np.broadcast_to(train.landmarks.mean(0), held.landmarks.shape)
    return {
        "identity": {
            "heldout_accuracy": float(np.mean(predicted == held.identity)),
            "chance": 1.0 / len(identity.identities),
            "heldout_accuracy_colour_transferred": float(np.mean(identity.predict(recoloured) == held.identity)),
            "distance_to_own_centroid": float(distances[np.arange(len(own)), own].mean()),
            "distance_to_other_centroids": float(distances[other_mask].mean()),
        },
        "landmarks": {
            "heldout_nme": float(errors.mean()),
            "heldout_nme_median": float(np.median(errors)),
            "heldout_nme_p95": float(np.quantile(errors, 0.95)),
            "mean_shape_nme": float(landmark_nme(mean_shape, held.landmarks).mean()),
        },
    }


def _centroids(embeddings: np.ndarray, labels: np.ndarray, identities: list[int]) -> np.ndarray:
    rows = []
    for who in identities:
        mine = embeddings[labels == who]
        centre = mine.mean(0) if len(mine) else np.zeros(embeddings.shape[1], np.float32)
        rows.append(centre / max(np.linalg.norm(centre), 1e-6))
    return np.stack(rows)
