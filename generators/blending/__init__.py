"""Self-blended pseudo-fakes (SBI): numpy + cv2 only, so data loaders can make them without torch."""
from generators.blending.config import SBIConfig
from generators.blending.masks import landmark_mask, template_landmarks
from generators.blending.sbi import blend, self_blend

__all__ = ["SBIConfig", "blend", "landmark_mask", "self_blend", "template_landmarks"]
