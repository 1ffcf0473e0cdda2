"""Built-in dataset adapters; importing this package registers them with forensics.data.registry."""
from forensics.data.adapters._common import (
    IMAGE_EXTENSIONS, MEDIA_EXTENSIONS, VIDEO_EXTENSIONS, DatasetAdapter, hash_split, is_media_name,
)
from forensics.data.adapters.celebdf import CelebDF
from forensics.data.adapters.dfdc import DFDC
from forensics.data.adapters.dfdcp import DFDCPreview
from forensics.data.adapters.ffpp import FaceForensicsPP
from forensics.data.adapters.folder import MediaFolder
from forensics.data.adapters.synthetic import SyntheticWorld

__all__ = [
    "CelebDF", "DFDC", "DFDCPreview", "DatasetAdapter", "FaceForensicsPP", "IMAGE_EXTENSIONS", "MEDIA_EXTENSIONS", "MediaFolder",
    "SyntheticWorld", "VIDEO_EXTENSIONS", "hash_split", "is_media_name",
]
