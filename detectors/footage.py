"""What a detector was trained on, kept in its checkpoint: whether it ever saw a real face.

The project's default data is the built-in synthetic face world. A detector trained only on it has never seen a
real face, and its scores on real footage are not validated; every record `forensics detect` writes, and its
report, must say so. Light on purpose: the detect path reads this without the training stack.
"""
from __future__ import annotations

from pathlib import Path

from forensics.provenance import REAL_FACES, SYNTHETIC_ONLY

SYNTHETIC_WORLD_FILES = ("world.json", "identities.json")     # what forensics.synthetic writes at a world's root


def training_footage(cache) -> dict:
    """What the real side of training was: videos from the built-in synthetic world (a world root holds
    world.json and identities.json) or real footage. Kept in the checkpoint, so every score `forensics detect`
    gives says what the model was trained on, and a model that never saw a real face says so."""
    sources = [Path(e.source) for e in cache.entries(split="train") if e.label != "fake"]
    synthetic = sum(_in_synthetic_world(source) for source in sources)
    return {"real_videos": len(sources), "synthetic_videos": synthetic,
            "trained_on": SYNTHETIC_ONLY if sources and synthetic == len(sources) else REAL_FACES if sources else None}


def _in_synthetic_world(video: Path) -> bool:
    return any(all((folder / name).is_file() for name in SYNTHETIC_WORLD_FILES) for folder in video.parents[:3])


def trained_on(members) -> str | None:
    """For loaded detectors (a bundle's members): SYNTHETIC_ONLY when any never saw a real face (its scores on real
    footage are not validated), REAL_FACES when all did, else None (a checkpoint from before this was recorded)."""
    seen = [(member.meta.get("footage") or {}).get("trained_on") for member in members]
    if SYNTHETIC_ONLY in seen:
        return SYNTHETIC_ONLY
    return REAL_FACES if seen and all(s == REAL_FACES for s in seen) else None
