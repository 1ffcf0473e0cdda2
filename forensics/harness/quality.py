"""How far a generator version is from the one the game started with (G0), measured on its own output.

An evading generator can win by ceasing to be a good generator: by blurring the face, drifting off the
source identity, or freezing the expression. So every version is measured against G0, never against the
previous round (drift would otherwise compound), on fakes it draws from one fixed selection of crops:

- id_retrieval: the share of fakes the identity probe (forensics.probes) assigns to the identity the fake
  should show (a swap's source, an animation's still);
- landmark_error: the landmark probe's 68 points on each fake against the ground-truth landmarks of the
  frame whose pose and expression the fake should have (NME, a fraction of the inter-ocular distance);
- reconstruction: the family's own quality metric (family.quality, lower is better).

A version is over budget when retrieval drops by more than budget["id_retrieval"] (absolute) or landmark
error or reconstruction grows by more than their budget (relative); such a move is refused.
"""
from __future__ import annotations

import numpy as np
import torch

from forensics.probes import landmark_nme
from forensics.synthetic.faceset import FaceSet
from generators.family import FakeBatch, GeneratorFamily

QUALITY_FAKES = 48
QUALITY_SEED = 0x9A11


def quality_selection(family: GeneratorFamily, name: str, loaded, faces: FaceSet, identities: list[int],
                      clip_frames: int) -> FakeBatch:
    """The fixed crops every version of a generator is measured on (its identities' eval portion)."""
    return family.select_fakes(f"{name}:quality", loaded, faces, identities, "eval", QUALITY_FAKES, clip_frames,
                               np.random.default_rng(QUALITY_SEED))


def output_quality(family: GeneratorFamily, loaded, faces: FaceSet, selection: FakeBatch, probes) -> dict[str, float]:
    """id_retrieval and landmark_error of `loaded`'s fakes of `selection` (see the module docstring)."""
    identity, landmarks = probes
    fakes = family.draw_fakes(loaded, faces, selection).images
    predicted = identity.predict(fakes, faces.margin)
    errors = landmark_nme(landmarks.predict(fakes, faces.margin), faces.landmarks[selection.target])
    return {"id_retrieval": float(np.mean(predicted == selection.source_id)),
            "landmark_error": float(np.mean(errors)), "n": int(len(fakes))}


def reconstruction(family: GeneratorFamily, loaded, faces: FaceSet, config, seed: int, device: torch.device) -> dict:
    """The family's own quality metric of `loaded` (its reconstruction task built from these weights)."""
    base = family.evasion_base(loaded, faces, config.generator_steps, config.generator_batch, config.generator_lr,
                               seed, str(device), config.world)
    base.build(device)
    return family.quality(base, device)


def over_budget(quality: dict, g0: dict, budget: dict) -> str | None:
    """Why a version is too far from G0, or None (see the module docstring)."""
    problems = []
    drop = g0["id_retrieval"] - quality["id_retrieval"]
    if drop > budget["id_retrieval"]:
        problems.append(f"source-identity retrieval {quality['id_retrieval']:.3f} vs G0 {g0['id_retrieval']:.3f}")
    for key in ("landmark_error", "reconstruction"):
        if quality[key] > g0[key] * (1.0 + budget[key]) + 1e-12:
            problems.append(f"{key.replace('_', ' ')} {quality[key]:.4f} vs G0 {g0[key]:.4f} "
                            f"(+{budget[key]:.0%} allowed)")
    return "; ".join(problems) or None
