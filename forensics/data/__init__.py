"""Datasets as manifests: one row per clip or image, whatever layout the data came in."""
from forensics.data.manifest import ManifestRow, read_manifest, write_manifest
from forensics.data.registry import (DatasetError, DatasetWarning, create_dataset, detect_layout, list_datasets,
                                     register_dataset, summarize)

__all__ = ["ManifestRow", "read_manifest", "write_manifest", "DatasetError", "DatasetWarning", "create_dataset",
           "detect_layout", "list_datasets", "register_dataset", "summarize"]
