"""What both probes share: the image convention, a small CNN trunk, and the checkpoint format.

Coordinates. Landmarks cross between crops of different sizes and margins, so networks work in
*continuous unit* coordinates: u = (pixel + 0.5) / size, the image spanning [0, 1] (pixel centres at
integers, as cv2.warpAffine and the FaceSet landmarks have them). This is also grid_sample's
align_corners=False convention (normalised n = 2u - 1), so resizing and re-framing never shift a point.

Margins. An aligned crop at margin m shows (1 + m) times the 5-point template's extent about the crop
centre (forensics.faces.template_in_crop). A crop at margin m_in becomes one at margin m_probe by scaling
about the centre by k = (1 + m_in) / (1 + m_probe); no landmarks are needed to do it.
"""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from forensics.device import resolve_device
from forensics.io import atomic_path

CHECKPOINT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


def as_uint8_batch(crops, what: str = "crops") -> np.ndarray:
    """[N,S,S,3] uint8 from a batch or a list of same-size crops (a single [S,S,3] crop becomes N=1)."""
    if isinstance(crops, (list, tuple)):
        if not crops:
            raise ValueError(f"{what}: empty list of crops")
        crops = np.stack([np.asarray(c) for c in crops])
    array = np.asarray(crops)
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4 or array.shape[-1] != 3 or array.shape[1] != array.shape[2] or array.shape[0] == 0:
        raise ValueError(f"{what}: expected square RGB crops [N,S,S,3], got shape {array.shape}")
    if array.dtype != np.uint8:
        raise ValueError(f"{what}: expected uint8 pixels, got {array.dtype}")
    return array


def margin_scale(margin_in: float, margin_out: float) -> float:
    """k such that unit coordinates map u_out = (u_in - 0.5) * k + 0.5 from a margin_in to a margin_out crop."""
    return (1.0 + float(margin_in)) / (1.0 + float(margin_out))


def prepare(crops: np.ndarray, size: int, margin_in: float, margin_out: float, device: torch.device) -> torch.Tensor:
    """uint8 crops [N,S,S,3] at margin_in -> float [N,3,size,size] in [0,1] at margin_out."""
    x = torch.from_numpy(np.ascontiguousarray(crops)).to(device).permute(0, 3, 1, 2).float().div_(255.0)
    k = margin_scale(margin_in, margin_out)
    if abs(k - 1.0) > 1e-6:
        theta = torch.tensor([[1.0 / k, 0.0, 0.0], [0.0, 1.0 / k, 0.0]], device=device).expand(len(x), 2, 3)
        grid = F.affine_grid(theta, [len(x), 3, size, size], align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    if x.shape[-1] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                          antialias=x.shape[-1] > size)
    return x


def normalise_pixels(x: torch.Tensor) -> torch.Tensor:
    """[0,1] -> roughly zero-mean unit-range; a fixed map, so no dataset statistics need saving."""
    return (x - 0.5) / 0.25


def conv_trunk(in_channels: int, widths: Sequence[int]) -> nn.Sequential:
    """A plain conv/BN/ReLU trunk: per width, a stride-2 conv then a stride-1 conv (the last stage only
    downsamples). Small on purpose: probes train in minutes on two CPU cores."""
    layers: list[nn.Module] = []
    channels = in_channels
    for index, width in enumerate(widths):
        layers += [nn.Conv2d(channels, width, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(width),
                   nn.ReLU(inplace=True)]
        if index < len(widths) - 1:
            layers += [nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
                       nn.ReLU(inplace=True)]
        channels = width
    return nn.Sequential(*layers)


# ---------------------------------------------------------------------------------------- checkpoints

def save_probe(directory: str | Path, module: nn.Module, config: dict) -> Path:
    """safetensors weights + config.json, written so a reader never sees a half-written pair."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    with atomic_path(directory / WEIGHTS_FILE) as tmp:
        save_file(state, str(tmp))
    with atomic_path(directory / CONFIG_FILE) as tmp:
        Path(tmp).write_text(json.dumps({**config, "version": CHECKPOINT_VERSION}, indent=2, sort_keys=True))
    return directory


def read_probe(directory: str | Path, kind: str) -> tuple[dict[str, torch.Tensor], dict]:
    """(state_dict, config) of a saved probe; one-line ValueError naming the path when it is not one."""
    directory = Path(directory)
    config_path, weights_path = directory / CONFIG_FILE, directory / WEIGHTS_FILE
    if not config_path.is_file() or not weights_path.is_file():
        raise ValueError(f"{directory}: not a probe checkpoint (needs {CONFIG_FILE} and {WEIGHTS_FILE})")
    try:
        config = json.loads(config_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{config_path}: unreadable probe config ({exc})") from None
    if config.get("kind") != kind:
        raise ValueError(f"{directory}: a {config.get('kind')!r} checkpoint, expected {kind!r}")
    if config.get("version") != CHECKPOINT_VERSION:
        raise ValueError(f"{directory}: probe checkpoint version {config.get('version')}, "
                         f"this code reads {CHECKPOINT_VERSION}")
    try:
        state = load_file(str(weights_path))
    except Exception as exc:  # safetensors raises its own error types for truncated/corrupt files
        raise ValueError(f"{weights_path}: unreadable weights ({exc})") from None
    return state, config


def load_state(module: nn.Module, state: dict[str, torch.Tensor], where: str | Path) -> None:
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise ValueError(f"{where}: weights do not fit the probe its config describes "
                         f"({first[1].strip() if len(first) > 1 else first[0]})") from None


class TrainedProbe:
    """What both probes share: a network in eval mode on a device, its config, and a safetensors+JSON
    checkpoint. Subclasses name KIND (checkpoint kind), CONFIG and NET (the dataclass and module) and WHAT."""
    KIND = CONFIG = NET = WHAT = None

    def __init__(self, net: nn.Module, device: str | torch.device = "auto", info: dict | None = None):
        self.net = net
        self.config = net.config
        self.device = resolve_device(device)
        self.net.to(self.device).eval()
        self.info = dict(info or {})

    def outputs(self, crops: np.ndarray, margin: float, batch_size: int) -> list[np.ndarray]:
        """The network's outputs over uint8 crops aligned at `margin`, batch by batch, concatenated (float32;
        one array per output of the network), leaving its train/eval mode as it was."""
        parts = []
        was_training = self.net.training
        self.net.eval()
        try:
            with torch.inference_mode():
                for start in range(0, len(crops), batch_size):
                    x = prepare(crops[start:start + batch_size], self.config.size, margin, self.config.margin,
                                self.device)
                    out = self.net(x)
                    parts.append([o.cpu().numpy() for o in (out if isinstance(out, tuple) else (out,))])
        finally:
            self.net.train(was_training)
        return [np.concatenate(column).astype(np.float32) for column in zip(*parts)]

    def save(self, directory: str | Path, **extra) -> Path:
        return save_probe(directory, self.net, {"kind": self.KIND, **asdict(self.config), **self.info, **extra})

    @classmethod
    def load(cls, directory: str | Path, device: str | torch.device = "auto"):
        net, info = load_probe_net(directory, cls.KIND, cls.CONFIG, cls.NET, cls.WHAT)
        return cls(net, device, info)


def load_probe_net(directory: str | Path, kind: str, config_cls, net_cls, what: str):
    """(net, extra info) of a saved probe: config fields rebuild the network, the rest is returned as info."""
    state, saved = read_probe(directory, kind)
    fields = set(config_cls.__dataclass_fields__)
    try:
        config = config_cls(**{k: v for k, v in saved.items() if k in fields})
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{directory}: bad {what} probe config ({exc})") from None
    net = net_cls(config)
    load_state(net, state, directory)
    return net, {k: v for k, v in saved.items() if k not in fields and k not in ("kind", "version")}
