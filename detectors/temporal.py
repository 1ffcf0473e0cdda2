"""Clip detectors: T aligned crops of one face track -> one fake logit, plus a logit per frame.

Why a clip model: a frame detector trained on self-blended images catches blending seams, but face
re-enactment, lip-sync and soft local edits leave frames that each look clean; what gives them away is
time: a mouth that moves out of step with the face, texture that flickers, a region that jitters against
the head (FTCN, AltFreezing, LipForensics).

The design follows FTCN (Zheng et al., ICCV 2021): a shallow timm stem sees each frame (a small receptive
field: local texture, not whole-face appearance), then every temporal layer has spatial kernel 1, so
what the network adds beyond the stem can only come from how each location changes over time. By default
the stem does not even see the frames, only their temporal residual (each frame minus the clip's mean
frame): appearance that every frame shares cannot reach the model, so it has to learn time. Spatial
pooling then gives one feature per frame, a temporal convolution a logit per frame (the attribution the
report draws), and the clip logit is their log-mean-exp: a soft maximum, so a manipulation in part of the
clip is not averaged away, yet no single frame decides alone.

The model keeps the FrameDetector's contract where it can (config with name/input_size/mean/std,
`preprocess`, logits out, safetensors checkpoints through detectors.checkpoint), so training, calibration,
prediction and promotion are the same code; `kind == "clip"` tells the callers that a sample is a clip.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import timm
import torch
from torch import nn

from detectors.config import MIN_INPUT_SIZE, ConfigFields
from detectors.model import backbone_normalisation, preprocess_crops, preprocess_tensor
from detectors.registry import register_detector

CLIP = "clip"
MIN_CLIP_LEN = 3        # the temporal kernel spans 3 frames; fewer cannot show inconsistency


@dataclass
class ClipDetectorConfig(ConfigFields):
    """Architecture and input contract of a ClipDetector (rebuilt exactly from a checkpoint's config.json).

    stage: which timm `features_only` stage of `backbone` feeds the temporal layers (early = small receptive
    field, FTCN's point). clip_len: frames per clip the model was trained on (it accepts any T >= 3).
    """

    name: str
    backbone: str
    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    clip_len: int = 8
    stage: int = 2
    width: int = 64
    temporal_layers: int = 3
    drop_rate: float = 0.0
    residual: bool = True
    residual_gain: float = 4.0
    pretrained_file: str | None = None

    def __post_init__(self) -> None:
        self.residual, self.residual_gain = bool(self.residual), float(self.residual_gain)
        self.mean = tuple(float(v) for v in self.mean)  # type: ignore[assignment]
        self.std = tuple(float(v) for v in self.std)    # type: ignore[assignment]
        if len(self.mean) != 3 or len(self.std) != 3 or any(s <= 0 for s in self.std):
            raise ValueError(f"detector {self.name}: mean and std must be three numbers, std positive")
        for key, low in (("input_size", MIN_INPUT_SIZE), ("clip_len", MIN_CLIP_LEN), ("width", 4),
                         ("temporal_layers", 1), ("stage", 0)):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"detector {self.name}: {key} must be an integer >= {low}, got {value!r}")
        if not 0.0 <= float(self.drop_rate) < 1.0:
            raise ValueError(f"detector {self.name}: drop_rate must be in [0, 1), got {self.drop_rate}")
        self.drop_rate = float(self.drop_rate)


class TemporalBlock(nn.Module):
    """Residual temporal convolution with spatial kernel 1 over [B, C, T, H, W] (FTCN)."""

    def __init__(self, width: int):
        super().__init__()
        # Zero padding in time lets the edge frames see how far they stray from the clip's mean frame (the
        # temporal energy: re-synthesised faces have less of it); replicate padding was tried and transferred
        # worse to the product-path animation fakes (clip video AUC 0.56 and 0.27 vs 0.90 and 0.60, two seeds,
        # 300 steps). The cost: the per-frame attribution runs high at the first and last frame of a clip.
        self.conv = nn.Conv3d(width, width, kernel_size=(3, 1, 1), padding=(1, 0, 0), bias=False)
        self.norm = nn.BatchNorm3d(width)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.act(self.norm(self.conv(x)))


class ClipDetector(nn.Module):
    """Clip of face crops [B, T, 3, S, S] -> clip fake logit [B]; `frame_logits` gives [B, T]."""

    kind = CLIP

    def __init__(self, config: ClipDetectorConfig):
        super().__init__()
        self.config = config
        if not timm.is_model(config.backbone):
            raise ValueError(f"detector {config.name}: unknown timm backbone {config.backbone!r}")
        self.stem = _truncated_stem(config.backbone, config.stage)
        if config.pretrained_file:
            _load_stem(self.stem, config.pretrained_file)
        channels = self.stem.feature_info.channels()[-1]
        self.reduce = nn.Sequential(nn.Conv3d(channels, config.width, 1, bias=False), nn.BatchNorm3d(config.width),
                                    nn.GELU())
        self.temporal = nn.Sequential(*[TemporalBlock(config.width) for _ in range(config.temporal_layers)])
        self.dropout = nn.Dropout(config.drop_rate)
        self.frame_head = nn.Conv1d(config.width, 1, kernel_size=3, padding=1)

    def frame_logits(self, clips: torch.Tensor) -> torch.Tensor:
        """Per-frame logits [B, T]: how much each moment of the clip says "fake"."""
        if clips.ndim != 5 or clips.shape[2] != 3:
            raise ValueError(f"ClipDetector: expected clips [B, T, 3, H, W], got {tuple(clips.shape)}")
        batch, length = clips.shape[:2]
        if length < MIN_CLIP_LEN:
            raise ValueError(f"ClipDetector: clips need at least {MIN_CLIP_LEN} frames, got {length}")
        if self.config.residual:
            clips = temporal_residual(clips, self.config.residual_gain)
        features = self.stem(clips.flatten(0, 1))[-1]                        # [B*T, C, h, w]
        features = features.unflatten(0, (batch, length)).transpose(1, 2)    # [B, C, T, h, w]
        features = self.temporal(self.reduce(features))
        per_frame = self.dropout(features.mean(dim=(3, 4)))                  # [B, W, T]
        return self.frame_head(per_frame).squeeze(1)

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        return pool_frame_logits(self.frame_logits(clips))

    def preprocess(self, clips: np.ndarray | Sequence[np.ndarray]) -> torch.Tensor:
        """uint8 clips [B, T, H, W, 3] (or one [T, H, W, 3]) -> normalised float [B, T, 3, S, S]."""
        clips = np.asarray(clips) if not isinstance(clips, np.ndarray) else clips
        if clips.ndim == 4:
            clips = clips[None]
        if clips.ndim != 5:
            raise ValueError(f"ClipDetector: expected uint8 clips [B, T, H, W, 3], got shape {clips.shape}")
        batch, length = clips.shape[:2]
        frames = preprocess_crops(clips.reshape(-1, *clips.shape[2:]), self.config.input_size,
                                  self.config.mean, self.config.std)
        return frames.view(batch, length, *frames.shape[1:])

    def preprocess_tensor(self, clips: torch.Tensor) -> torch.Tensor:
        """Float RGB [B, T, 3, H, W] in [0, 1] -> the model's input, differentiably."""
        batch, length = clips.shape[:2]
        frames = preprocess_tensor(clips.flatten(0, 1), self.config.input_size, self.config.mean, self.config.std)
        return frames.unflatten(0, (batch, length))

    def extra_repr(self) -> str:
        return f"name={self.config.name!r}, input_size={self.config.input_size}, clip_len={self.config.clip_len}"


def temporal_residual(clips: torch.Tensor, gain: float) -> torch.Tensor:
    """Each frame minus the clip's mean frame, amplified: what changes over the clip, and nothing that does
    not. A static artifact (a blend seam present in every frame, a face's identity) is gone before the first
    layer, so the model cannot learn one; flicker, jitter and stutter stand out as shaped regions against
    the camera grain, which is spatially white."""
    return (clips - clips.mean(dim=1, keepdim=True)) * gain


def pool_frame_logits(frame_logits: torch.Tensor) -> torch.Tensor:
    """Log-mean-exp over time: between the mean (a brief edit averaged away) and the max (one frame rules)."""
    return torch.logsumexp(frame_logits, dim=1) - math.log(frame_logits.shape[1])


def is_clip_model(model: nn.Module) -> bool:
    return getattr(model, "kind", None) == CLIP


def build_clip_detector(name: str, backbone: str, input_size: int, overrides: dict[str, Any] | None = None,
                        **defaults: Any) -> ClipDetector:
    """Registry helper: a family's defaults, then the caller's overrides, then the model."""
    overrides = dict(overrides or {})
    if overrides.pop("name", name) != name:
        raise ValueError(f"detector {name}: 'name' cannot be overridden")
    mean, std = backbone_normalisation(overrides.get("backbone", backbone))
    config = ClipDetectorConfig(name=name, backbone=backbone, input_size=input_size, mean=mean, std=std,
                                **defaults).replace(**overrides)
    return ClipDetector(config)


def _truncated_stem(backbone: str, stage: int) -> nn.Module:
    """timm's `features_only` model up to `stage`. timm's MobileNet/EfficientNet feature models keep and run
    every block even when only an early stage is asked for; the blocks after it are dropped here, which is
    most of the cost and the parameters."""
    stem = timm.create_model(backbone, pretrained=False, features_only=True, out_indices=(stage,))
    module = stem.feature_info.info[stage]["module"] if stage < len(stem.feature_info.info) else ""
    if module.startswith("blocks.") and hasattr(stem, "blocks"):
        stem.blocks = stem.blocks[:int(module.split(".")[1]) + 1]
    return stem


def _load_stem(stem: nn.Module, path: str) -> None:
    """Local backbone weights for the stem (never downloaded); keys the truncated stem lacks are ignored."""
    state = timm.models.load_state_dict(str(path))
    own = stem.state_dict()
    matched = {k: v for k, v in state.items() if k in own and tuple(v.shape) == tuple(own[k].shape)}
    if len(matched) < len(own):
        raise ValueError(f"{path}: weights cover {len(matched)} of {len(own)} stem tensors")
    stem.load_state_dict(matched, strict=True)


def _clip_family(fn):
    fn.kind = CLIP              # read by detectors.registry.detector_kind before anything is built
    return register_detector(fn)


@_clip_family
def temporal_small(**overrides) -> ClipDetector:
    """CPU default clip detector: MobileNetV3-Small's first stages (stride 8) at 112 px, 3 temporal layers
    of width 64 over 8-frame clips (about 0.1 M parameters beyond the stem)."""
    return build_clip_detector("temporal-small", "mobilenetv3_small_100", 112, overrides=overrides,
                               clip_len=8, stage=2, width=64, temporal_layers=3)


@_clip_family
def temporal_large(**overrides) -> ClipDetector:
    """GPU clip detector: EfficientNet-B0 to stride 16 at 224 px, 4 temporal layers of width 256, 16 frames."""
    return build_clip_detector("temporal-large", "efficientnet_b0", 224, overrides=overrides,
                               clip_len=16, stage=3, width=256, temporal_layers=4)
