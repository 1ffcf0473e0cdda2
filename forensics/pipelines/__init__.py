"""Pipelines: the product's end-to-end jobs, composed from the core (forensics.media, faces, data, ...) and
the model kinds (detectors, generators) through their registries. Nothing here is imported by the core."""
from forensics.pipelines.detect import STAGES, Analysis, DetectConfig, DetectPipeline, FrameReader
from forensics.pipelines.inputs import InputError, collect_inputs, done_paths, is_media_file, path_key
from forensics.pipelines.record import (
    MIN_TRACK_DETECTIONS,
    DetectRecord,
    Findings,
    FrameScore,
    ModelInfo,
    Observation,
    ThumbnailPool,
    TrackRecord,
    media_score,
    track_verdicts,
)
from forensics.pipelines.scan import ScanError, ScanResult, print_summary, scan, summary_line

__all__ = [
    "STAGES", "Analysis", "DetectConfig", "DetectPipeline", "FrameReader",
    "InputError", "collect_inputs", "done_paths", "is_media_file", "path_key",
    "MIN_TRACK_DETECTIONS", "DetectRecord", "Findings", "FrameScore", "ModelInfo", "Observation", "ThumbnailPool",
    "TrackRecord", "media_score", "track_verdicts",
    "ScanError", "ScanResult", "print_summary", "scan", "summary_line",
]
