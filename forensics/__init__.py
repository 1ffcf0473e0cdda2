"""forensics: deepfake detection and media forensics, with generators and detectors that co-evolve."""

__version__ = "0.1.0"
