"""Faces: MTCNN detection (batched), 5-point similarity alignment, crops and IoU tracks."""
from forensics.faces.align import CANONICAL_LANDMARKS_5, align_face, crop_box, similarity_transform, template_in_crop
from forensics.faces.detector import (
    DetectorConfig,
    Face,
    FaceDetector,
    detection_size,
    faces_from_mtcnn,
    get_detector,
    scale_face,
)
from forensics.faces.image import FaceInputError, to_rgb_uint8
from forensics.faces.pipeline import FaceCrop, FacePipeline, FaceResult, PipelineConfig, summarise_tracks
from forensics.faces.tracking import IoUTracker, box_iou, track_faces

__all__ = [
    "CANONICAL_LANDMARKS_5",
    "DetectorConfig",
    "Face",
    "FaceCrop",
    "FaceDetector",
    "FaceInputError",
    "FacePipeline",
    "FaceResult",
    "IoUTracker",
    "PipelineConfig",
    "align_face",
    "box_iou",
    "crop_box",
    "detection_size",
    "faces_from_mtcnn",
    "get_detector",
    "scale_face",
    "similarity_transform",
    "summarise_tracks",
    "template_in_crop",
    "to_rgb_uint8",
    "track_faces",
]
