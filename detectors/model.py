"""FrameDetector: a timm backbone (optionally fused with the frequency branch) giving one fake logit per crop."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import timm
import torch
from safetensors import safe_open
from timm.models import get_pretrained_cfg
from torch import nn

from detectors.config import DetectorConfig
from detectors.frequency import FrequencyBranch
from detectors.inputs import normalise_crops
from forensics.weights import one_line


class FrameDetector(nn.Module):
    """Face crop -> fake logit. Logits rather than probabilities: calibration is fitted after training
    (LoadedDetector.probability) and clip aggregation works in logit space."""

    def __init__(self, config: DetectorConfig):
        super().__init__()
        self.config = config
        self.backbone = create_backbone(config)
        features = backbone_width(self.backbone)
        self.frequency = FrequencyBranch(config.mean, config.std) if config.frequency else None
        if self.frequency is not None:
            features += self.frequency.out_features
        # Dropout after fusion (not timm's, which would only see the RGB features).
        self.dropout = nn.Dropout(config.drop_rate)
        self.head = nn.Linear(features, 1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled (and fused) features before the head: [B, F]."""
        feats = self.backbone(x)
        if self.frequency is not None:
            feats = torch.cat([feats, self.frequency(x).to(feats.dtype)], dim=1)
        return feats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(x))).squeeze(1)

    def preprocess(self, crops: np.ndarray | Sequence[np.ndarray]) -> torch.Tensor:
        return preprocess_crops(crops, self.config.input_size, self.config.mean, self.config.std)

    def preprocess_tensor(self, images: torch.Tensor) -> torch.Tensor:
        """Float RGB [B, 3, H, W] in [0, 1] -> the model's input, differentiably (see preprocess_tensor)."""
        return preprocess_tensor(images, self.config.input_size, self.config.mean, self.config.std)

    def extra_repr(self) -> str:
        return f"name={self.config.name!r}, input_size={self.config.input_size}, frequency={self.config.frequency}"


def build_detector(name: str, backbone: str, input_size: int, frequency: bool = False,
                   overrides: dict[str, Any] | None = None) -> FrameDetector:
    """Registry helper: a family's defaults, then the caller's overrides, then the model."""
    overrides = dict(overrides or {})
    if overrides.get("name", name) != name:
        raise ValueError(f"detector {name}: 'name' cannot be overridden (got {overrides['name']!r})")
    overrides.pop("name", None)
    chosen_backbone = overrides.get("backbone", backbone)
    mean, std = backbone_normalisation(chosen_backbone)
    config = DetectorConfig(name=name, backbone=backbone, input_size=input_size, mean=mean, std=std,
                            frequency=frequency).replace(**overrides)
    return FrameDetector(config)


def backbone_normalisation(backbone: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The input statistics the backbone's published weights expect (no weights are fetched)."""
    if not timm.is_model(backbone):
        raise ValueError(f"unknown timm backbone {backbone!r}")
    cfg = get_pretrained_cfg(backbone)
    if cfg is None:
        return (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    return tuple(cfg.mean), tuple(cfg.std)


def create_backbone(config: DetectorConfig) -> nn.Module:
    """timm backbone without classifier; never downloads. A local weight file goes through timm's own
    loader (its key filters apply), then is checked to really cover the backbone, because timm loads
    non-strictly once the classifier is dropped and would otherwise keep a random init silently."""
    if not timm.is_model(config.backbone):
        raise ValueError(f"detector {config.name}: unknown timm backbone {config.backbone!r}")
    if config.pretrained_file is None:
        return timm.create_model(config.backbone, pretrained=False, num_classes=0)
    path = weight_file(Path(config.pretrained_file), config.backbone)
    # Built without weights, then filled from the local file ourselves: no loader that knows a URL is involved.
    model = timm.create_model(config.backbone, pretrained=False, num_classes=0)
    _check_weights_cover(model, path, config.backbone)
    try:
        state = timm.models.load_state_dict(str(path))  # safetensors, or torch.load(weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any loader failure becomes one line naming the file
        raise ValueError(f"{path}: cannot load weights into {config.backbone}: {one_line(exc)}") from None
    wanted = model.state_dict().keys()
    model.load_state_dict({k: v for k, v in state.items() if k in wanted}, strict=True)
    return model


WEIGHT_NAMES = ("model.safetensors", "pytorch_model.bin")


def weight_file(path: Path, backbone: str) -> Path:
    """The weight file `--pretrained-file` names: the file itself; a folder holding model.safetensors (a timm
    hub download); a Hugging Face cache folder of one model (models--timm--NAME: its refs/main snapshot, or
    its only one); or the hub cache itself (~/.cache/huggingface/hub), where the one models--timm--BACKBONE.*
    folder is taken. Copied from a connected machine, these are what users have; nothing is downloaded."""
    if path.is_file():
        return path
    if not path.is_dir():
        raise ValueError(f"{path}: pretrained weight file not found")
    for name in WEIGHT_NAMES:
        if (path / name).is_file():
            return path / name
    if (path / "snapshots").is_dir():
        ref = path / "refs" / "main"
        snapshots = [path / "snapshots" / ref.read_text().strip()] if ref.is_file() else \
            sorted(p for p in (path / "snapshots").iterdir() if p.is_dir())
        found = [p / n for p in snapshots for n in WEIGHT_NAMES if (p / n).is_file()]
        if len(found) == 1:
            return found[0]
        raise ValueError(f"{path}: {'no' if not found else len(found)} snapshots with {WEIGHT_NAMES[0]}; name the "
                         f"file itself")
    repos = sorted(path.glob(f"models--timm--{backbone}.*")) + sorted(path.glob(f"models--timm--{backbone}"))
    if len(repos) == 1:
        return weight_file(repos[0], backbone)
    raise ValueError(f"{path}: no {WEIGHT_NAMES[0]} here" + (f", and {len(repos)} timm/{backbone} models in this "
                     f"cache: name one" if repos else f", and no timm/{backbone} model in it (a hub cache folder)"))


def backbone_width(backbone: nn.Module) -> int:
    """Width of what the headless backbone returns (MobileNetV3's conv head makes it differ from num_features)."""
    return int(getattr(backbone, "head_hidden_size", None) or backbone.num_features)


def _check_weights_cover(model: nn.Module, path: Path, backbone: str) -> None:
    shapes = _file_tensor_shapes(path)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = [k for k in expected if k not in shapes]
    wrong = [k for k in expected if k in shapes and shapes[k] != expected[k]]
    if missing or wrong:
        problem = (f"{len(missing)} of {len(expected)} tensors missing (e.g. {missing[0]})" if missing
                   else f"shape mismatch for {wrong[0]}: file {shapes[wrong[0]]} vs model {expected[wrong[0]]}")
        raise ValueError(f"{path}: weights do not fit backbone {backbone}: {problem}")


def _file_tensor_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    if path.suffix == ".safetensors":
        with safe_open(str(path), framework="pt") as fh:  # header only, no tensor data read
            return {k: tuple(fh.get_slice(k).get_shape()) for k in fh.keys()}
    state = timm.models.load_state_dict(str(path))  # torch.load(weights_only=True) for non-safetensors
    return {k: tuple(v.shape) for k, v in state.items() if torch.is_tensor(v)}


def preprocess_crops(crops: np.ndarray | Sequence[np.ndarray], size: int,
                     mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 RGB crops of any size -> normalised float [B, 3, size, size] on the CPU (detectors.inputs)."""
    return torch.from_numpy(normalise_crops(crops, size, mean, std))


def preprocess_tensor(images: torch.Tensor, size: int, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Differentiable twin of preprocess_crops for float RGB in [0, 1] [B, 3, H, W] on any device.

    For callers that need gradients through the detector's input (a generator trained to evade it):
    bilinear when enlarging (as cv2.INTER_LINEAR there), antialiased bilinear when shrinking (close to
    INTER_AREA), then the backbone's normalisation.
    """
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"preprocess_tensor: expected [B, 3, H, W], got {tuple(images.shape)}")
    if tuple(images.shape[-2:]) != (size, size):
        shrinking = images.shape[-1] > size or images.shape[-2] > size
        images = torch.nn.functional.interpolate(images, size=(size, size), mode="bilinear", align_corners=False,
                                                 antialias=shrinking)
    mean_t = torch.tensor(mean, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    return (images - mean_t) / std_t
