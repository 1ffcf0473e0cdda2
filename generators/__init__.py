"""Fake generators: face swap, face animation and self-blended pseudo-fakes (blending/, numpy + cv2 only)."""
