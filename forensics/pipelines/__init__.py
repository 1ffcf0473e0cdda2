"""End-to-end pipelines built from the parts in forensics.media, forensics.faces and detectors."""
from forensics.pipelines.detect import STAGES, Analysis, DetectConfig, DetectPipeline, FrameReader, score_crops
from forensics.pipelines.frames import FaceFrame, KeyframeFaces, auto_detect_every, interpolate_faces, match_faces
from forensics.pipelines.inputs import InputError, collect_inputs, done_paths, is_media_file, path_key
from forensics.pipelines.record import MIN_TRACK_DETECTIONS, Observation, ThumbnailPool, media_score, track_verdicts

__all__ = [
    "STAGES", "Analysis", "DetectConfig", "DetectPipeline", "FrameReader", "score_crops",
    "FaceFrame", "KeyframeFaces", "auto_detect_every", "interpolate_faces", "match_faces",
    "InputError", "collect_inputs", "done_paths", "is_media_file", "path_key",
    "MIN_TRACK_DETECTIONS", "Observation", "ThumbnailPool", "media_score", "track_verdicts",
]
