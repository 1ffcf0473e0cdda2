"""Shared fixtures: small data made here, by the real parts (renderer, H.264 encoder, MTCNN)."""
from __future__ import annotations

import os
import tempfile

import pytest

from forensics.synthetic import WorldConfig, generate_world

# Before any fixture of any scope runs: a champion set by a module fixture notes its registry here, not in ~/.config.
os.environ["FORENSICS_CONFIG_DIR"] = tempfile.mkdtemp(prefix="forensics-test-config-")
# Downloads and ONNX exports of this session's models go to a cache of its own, never the user's ~/.cache (tests
# that need an empty cache set their own).
os.environ["FORENSICS_MODEL_CACHE"] = tempfile.mkdtemp(prefix="forensics-test-models-")


@pytest.fixture(autouse=True)
def own_config_dir(tmp_path_factory, monkeypatch):
    """Each test its own FORENSICS_CONFIG_DIR: setting a champion notes its registry there (so `detect` finds it
    from any folder), and one test's note must not reach another test, or the user's ~/.config."""
    monkeypatch.setenv("FORENSICS_CONFIG_DIR", str(tmp_path_factory.mktemp("config")))


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory):
    """A 4-identity synthetic world (1 video each, 6 frames, 160 px), rendered once per test session."""

    root = tmp_path_factory.mktemp("tiny_world")
    generate_world(root, WorldConfig(identities=4, videos_per_identity=1, frames=6, size=160, seed=3),
                   progress=False)
    return root
