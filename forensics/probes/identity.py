"""Identity probe: who is this face? A small CNN trained on the synthetic world's real crops.

No pretrained face-recognition network exists here, so swaps are judged by a classifier trained on the
identities themselves. Like ArcFace, it judges the *inner face* only: a face swap keeps the target's
hair, ears and background, so a probe that looked at those would credit the target for every swap.
The network therefore re-crops its input to the box around the face ellipse and blanks everything outside
the ellipse (to mid-grey) before any convolution. The ellipse is fitted, at training time, to the mean
68-landmark layout of the training crops: eyebrows to chin vertically, jaw side to jaw side horizontally,
each semi-axis widened by `ellipse_pad`. It is stored in the config, so a loaded probe sees exactly what
the trained one saw.

Embeddings are L2-normalised and classified by cosine similarity to one learned direction per identity
(NormFace-style), so the distances `embed` gives are the ones the classifier was trained to separate.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


from .common import TrainedProbe, as_uint8_batch, conv_trunk, normalise_pixels

KIND = "identity-probe"


@dataclass
class IdentityConfig:
    """size/margin: the aligned crops the probe reads (others are resized/re-framed to these).
    ellipse: (cx, cy, ax, ay) of the face ellipse in unit coordinates of such a crop; inner_size: pixels of
    the square around it that the CNN sees; identities: synthetic identity id of each class."""
    size: int = 64
    margin: float = 0.25
    ellipse: tuple[float, float, float, float] = (0.5, 0.62, 0.36, 0.38)
    inner_size: int = 48
    widths: tuple[int, ...] = (32, 64, 128, 256)
    embedding_dim: int = 128
    logit_scale: float = 16.0
    identities: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.ellipse = tuple(float(v) for v in self.ellipse)
        self.widths = tuple(int(w) for w in self.widths)
        self.identities = [int(i) for i in self.identities]
        if len(self.ellipse) != 4 or min(self.ellipse[2:]) <= 0:
            raise ValueError(f"IdentityConfig.ellipse must be (cx, cy, ax>0, ay>0), got {self.ellipse}")
        if len(self.identities) < 2:
            raise ValueError(f"IdentityConfig: an identity probe needs >= 2 identities, got {self.identities}")


def fit_face_ellipse(landmarks_unit: np.ndarray, pad: float = 0.1) -> tuple[float, float, float, float]:
    """(cx, cy, ax, ay) around the mean layout of jaw (0-16) and eyebrows (17-26), semi-axes widened by pad."""
    mean = np.asarray(landmarks_unit, np.float64).reshape(-1, 68, 2).mean(0)
    outline = mean[:27]
    (x0, y0), (x1, y1) = outline.min(0), outline.max(0)
    return ((x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2 * (1 + pad), (y1 - y0) / 2 * (1 + pad))


class IdentityNet(nn.Module):
    """full aligned crop in [0,1] -> (L2-normalised embedding, cosine logits per identity)."""

    def __init__(self, config: IdentityConfig):
        super().__init__()
        self.config = config
        cx, cy, ax, ay = config.ellipse
        half = max(ax, ay)
        # affine_grid maps output to input normalised coords: the square box [c - half, c + half].
        theta = torch.tensor([[half * 2, 0.0, cx * 2 - 1], [0.0, half * 2, cy * 2 - 1]], dtype=torch.float32)
        self.register_buffer("theta", theta[None], persistent=False)
        r = config.inner_size
        centres = (torch.arange(r, dtype=torch.float32) + 0.5) / r * 2 * half - half  # box offsets, unit coords
        dy, dx = torch.meshgrid(centres, centres, indexing="ij")
        radius = torch.sqrt((dx / ax) ** 2 + (dy / ay) ** 2)
        soft = torch.sigmoid((1.0 - radius) * r / 2.0)  # ~2 px feathered edge: no hard rim for the CNN to key on
        self.register_buffer("mask", soft[None, None], persistent=False)
        self.trunk = conv_trunk(3, config.widths)
        cells = -(-r // 2 ** len(config.widths))
        self.embedding = nn.Sequential(nn.Flatten(), nn.Dropout(0.2),
                                       nn.Linear(config.widths[-1] * cells * cells, config.embedding_dim))
        self.classes = nn.Parameter(torch.randn(len(config.identities), config.embedding_dim) * 0.1)

    def inner_face(self, x: torch.Tensor) -> torch.Tensor:
        """The masked square around the face ellipse, normalised (grey outside the ellipse = 0)."""
        r = self.config.inner_size
        grid = F.affine_grid(self.theta.expand(len(x), 2, 3).to(x.dtype), [len(x), 3, r, r], align_corners=False)
        inner = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
        return normalise_pixels(inner) * self.mask.to(x.dtype)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embedding = F.normalize(self.embedding(self.trunk(self.inner_face(x))).float(), dim=1)
        logits = self.config.logit_scale * embedding @ F.normalize(self.classes.float(), dim=1).T
        return embedding, logits


class IdentityProbe(TrainedProbe):
    """Judges which synthetic identity an aligned crop shows; see the module docstring for what it looks at."""

    KIND, CONFIG, NET, WHAT = KIND, IdentityConfig, IdentityNet, "identity"

    @property
    def identities(self) -> list[int]:
        return list(self.config.identities)

    def _forward(self, crops, margin: float | None, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        crops = as_uint8_batch(crops)
        margin = self.config.margin if margin is None else margin
        embeddings, logits = self.outputs(crops, margin, batch_size)
        return embeddings, logits

    def predict(self, crops, margin: float | None = None, batch_size: int = 256) -> np.ndarray:
        """Identity id (int64 [N]) of each uint8 crop [N,S,S,3] aligned at `margin` (default: the probe's)."""
        _, logits = self._forward(crops, margin, batch_size)
        return np.asarray(self.config.identities, np.int64)[logits.argmax(1)]

    def probabilities(self, crops, margin: float | None = None, batch_size: int = 256) -> np.ndarray:
        """float32 [N, identities] softmax over the probe's identities (columns in `identities` order)."""
        _, logits = self._forward(crops, margin, batch_size)
        z = logits - logits.max(1, keepdims=True)
        p = np.exp(z)
        return (p / p.sum(1, keepdims=True)).astype(np.float32)

    def embed(self, crops, margin: float | None = None, batch_size: int = 256) -> np.ndarray:
        """L2-normalised embeddings float32 [N, D]: Euclidean distance 0 (same) .. 2 (opposite)."""
        return self._forward(crops, margin, batch_size)[0]
