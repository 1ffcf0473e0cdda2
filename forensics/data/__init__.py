"""Datasets as manifests: one row per clip or image, whatever layout the data came in."""
from forensics.data.manifest import ManifestRow, read_manifest, write_manifest

__all__ = ["ManifestRow", "read_manifest", "write_manifest"]
