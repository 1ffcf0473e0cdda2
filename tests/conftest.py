"""Shared fixtures: small data made here, by the real parts (renderer, H.264 encoder, MTCNN)."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory):
    """A 4-identity synthetic world (1 video each, 6 frames, 160 px), rendered once per test session."""
    from forensics.synthetic import WorldConfig, generate_world

    root = tmp_path_factory.mktemp("tiny_world")
    generate_world(root, WorldConfig(identities=4, videos_per_identity=1, frames=6, size=160, seed=3),
                   progress=False)
    return root
