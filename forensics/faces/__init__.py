"""Faces: MTCNN detection (batched, on keyframes), 5-point similarity alignment, the one aligned crop, IoU tracks."""
from forensics.faces.align import CANONICAL_LANDMARKS_5, align_face, crop_box, similarity_transform, template_in_crop
from forensics.faces.crops import CropSpec, aligned_crop, face_from_points
from forensics.faces.detector import (
    Face,
    FaceDetector,
    FaceDetectorConfig,
    detection_size,
    faces_from_mtcnn,
    get_face_detector,
    scale_face,
)
from forensics.faces.image import FaceInputError, to_rgb_uint8
from forensics.faces.keyframes import FaceFrame, KeyframeFaces, auto_detect_every, interpolate_faces, match_faces
from forensics.faces.pipeline import FaceConfig, FaceCrop, FacePipeline, FaceResult, summarise_tracks
from forensics.faces.tracking import IoUTracker, box_iou, track_faces

__all__ = [
    "CANONICAL_LANDMARKS_5",
    "CropSpec",
    "Face",
    "FaceConfig",
    "FaceCrop",
    "FaceDetector",
    "FaceDetectorConfig",
    "FaceFrame",
    "FaceInputError",
    "FacePipeline",
    "FaceResult",
    "IoUTracker",
    "KeyframeFaces",
    "align_face",
    "aligned_crop",
    "auto_detect_every",
    "box_iou",
    "crop_box",
    "detection_size",
    "face_from_points",
    "faces_from_mtcnn",
    "get_face_detector",
    "interpolate_faces",
    "match_faces",
    "scale_face",
    "similarity_transform",
    "summarise_tracks",
    "template_in_crop",
    "to_rgb_uint8",
    "track_faces",
]
