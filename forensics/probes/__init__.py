"""Probes trained on the synthetic world's real crops, and the generator quality metrics built on them.

No pretrained face networks exist here, so the project trains its own judges:

    identity, landmarks, report = train_probes("data/synth", "runs/probes")   # ~7 min on 2 CPU cores, then cached
    swap_quality((identity, landmarks), fakes, source_identity=3, target_crops=targets)
    animation_quality((identity, landmarks), generated, driving, source, reconstruction_targets=driving)
    mtcnn_face_rate(fake_frames)

`report` holds the probes' own held-out accuracy/error: a metric is only as meaningful as its probe.
Probes are trained on the world's crops plus extra rendered scenes of the same identities (scenes.py).
"""
from .identity import IdentityConfig, IdentityProbe
from .landmarks import LandmarkConfig, LandmarkProbe
from .quality import animation_quality, colour_transfer, landmark_nme, mtcnn_face_rate, swap_quality
from .train import ProbeTrainConfig, load_probes, train_probes

__all__ = ["IdentityConfig", "IdentityProbe", "LandmarkConfig", "LandmarkProbe", "ProbeTrainConfig",
           "animation_quality", "colour_transfer", "landmark_nme", "load_probes", "mtcnn_face_rate",
           "swap_quality", "train_probes"]
