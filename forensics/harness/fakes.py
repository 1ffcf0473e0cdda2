"""The game's people and pseudo-fakes: which identities fakes are made from, and self-blends of their crops.

Which crops a fake is made from and how it is drawn is each generator family's business (generators/
<family>/family.py, behind the registry); the harness keeps a round's selections apart from their drawing,
so step (e) redraws exactly the same fakes with the evaded generator and "retrained" and "after" metrics
differ only by the generator. Indices are global rows of the world's FaceSet at the generators' crop size,
so a selection saved in one process means the same crops in the next.
"""
from __future__ import annotations

import numpy as np

from forensics.synthetic.faceset import FaceSet
from generators.blending import self_blend


def held_out_identities(faces: FaceSet, identities=None) -> list[int]:
    """The identities fakes are made from: those given, or the world's test split; each must have >= 2 videos."""
    if identities is None:
        ids = sorted(int(i) for i in np.unique(faces.identity[faces.split == "test"]))
        if len(ids) < 2:
            raise ValueError("coevolve: the world's test split has fewer than 2 identities; pass identities")
    else:
        ids = sorted({int(i) for i in identities})
        missing = [i for i in ids if not np.any(faces.identity == i)]
        if missing:
            raise ValueError(f"coevolve: identities {missing} are not in the world "
                             f"(it has {len(np.unique(faces.identity))} identities)")
    for i in ids:
        check_two_videos(faces, i)
    return ids


def check_two_videos(faces: FaceSet, identity: int) -> None:
    videos = np.unique(faces.video[faces.identity == identity])
    if len(videos) < 2:
        raise ValueError(f"coevolve: identity {identity} has {len(videos)} video(s); the harness needs >= 2 per "
                         f"identity (video 0 to fit on, the others to evaluate on)")


def sbi_fakes(faces: FaceSet, rows: np.ndarray, seed: int) -> np.ndarray:
    """A self-blended pseudo-fake of each row, seeded per row (the same fakes whenever asked again)."""
    out = np.empty((len(rows),) + faces.images.shape[1:], np.uint8)
    for k, row in enumerate(rows):
        rng = np.random.default_rng([int(seed), int(row), 0x5B1])
        out[k] = self_blend(faces.images[row], faces.landmarks[row], rng)[0]
    return out
