"""The "deepfakes" autoencoder: one encoder shared by two identities, one decoder per identity.

Why it swaps: both decoders read the same code, and the code is squeezed through a dense bottleneck that
has room for what the two identities share (pose, expression, lighting) but gains nothing from storing
who the face is, because each decoder only ever has to draw its own person. Encoding a frame of B and
decoding it with A's decoder therefore draws A with B's pose and expression. Each decoder also predicts a
soft face mask, used to composite the generated face back into the frame.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch
from torch import nn

DECODER_NAMES = ("a", "b")
MIN_DECODER_CHANNELS = 16


@dataclass
class FaceswapModelConfig:
    """Architecture (everything needed to rebuild the network from a checkpoint's config.json).

    size: crop side in pixels (a power of two >= 16); the encoder halves it down to a 4x4 grid.
    encoder_channels: width of the first conv; doubles per downsampling, capped at bottleneck_channels.
    latent_dim: width of the dense bottleneck (small enough to carry pose/expression, not identity).
    decoder_channels: width at 8x8 where the decoders start; halves per upsampling (>= 16).
    decoder_residual: add a residual block after every upsampling (sharper, ~2x decoder cost).
    margin: the alignment margin the crops were made with (needed to re-align frames at conversion).
    """
    size: int = 64
    margin: float = 0.25
    encoder_channels: int = 32
    bottleneck_channels: int = 256
    latent_dim: int = 256
    decoder_channels: int = 128
    decoder_residual: bool = False

    def __post_init__(self) -> None:
        if self.size < 16 or self.size & (self.size - 1):
            raise ValueError(f"faceswap model: size must be a power of two >= 16, got {self.size}")
        for name in ("encoder_channels", "bottleneck_channels", "latent_dim", "decoder_channels"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"faceswap model: {name} must be >= 1, got {getattr(self, name)}")

    @classmethod
    def from_dict(cls, data: dict) -> "FaceswapModelConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def to_dict(self) -> dict:
        return asdict(self)


def _conv(c_in: int, c_out: int, kernel: int = 3, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2)


class Upscale(nn.Module):
    """Conv to 4x the channels, then pixel shuffle: doubles the resolution without the checkerboard
    artifacts of transposed convolutions (and is what the original deepfakes decoder used)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = _conv(c_in, 4 * c_out)
        self.act = nn.LeakyReLU(0.1, inplace=True)
        self.shuffle = nn.PixelShuffle(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.act(self.conv(x)))


class ResidualBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = _conv(channels, channels)
        self.conv2 = _conv(channels, channels)
        self.act = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.conv2(self.act(self.conv1(x))))


class Encoder(nn.Module):
    """Strided convs down to 4x4, a dense bottleneck, then one upscale to the 8x8 code both decoders read."""

    def __init__(self, config: FaceswapModelConfig):
        super().__init__()
        downs = int(math.log2(config.size)) - 2
        layers: list[nn.Module] = []
        c_in, c = 3, config.encoder_channels
        for _ in range(downs):
            c_out = min(c, config.bottleneck_channels)
            layers += [_conv(c_in, c_out, kernel=5, stride=2), nn.LeakyReLU(0.1, inplace=True)]
            c_in, c = c_out, c * 2
        self.convs = nn.Sequential(*layers)
        self.flat_channels = c_in
        self.to_latent = nn.Linear(4 * 4 * c_in, config.latent_dim)
        self.from_latent = nn.Linear(config.latent_dim, 4 * 4 * config.bottleneck_channels)
        self.bottleneck_channels = config.bottleneck_channels
        self.up = Upscale(config.bottleneck_channels, config.decoder_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: RGB in [0, 1], [B, 3, S, S] -> code [B, decoder_channels, 8, 8]."""
        h = self.convs(x * 2.0 - 1.0)
        z = self.to_latent(h.flatten(1))
        h = self.from_latent(z).view(-1, self.bottleneck_channels, 4, 4)
        return self.up(h)


class Decoder(nn.Module):
    """One identity's renderer: pixel-shuffle upsampling from the 8x8 code, an RGB head and a mask head."""

    def __init__(self, config: FaceswapModelConfig):
        super().__init__()
        ups = int(math.log2(config.size)) - 3
        layers: list[nn.Module] = []
        c_in = config.decoder_channels
        for k in range(ups):
            c_out = max(config.decoder_channels // 2 ** (k + 1), MIN_DECODER_CHANNELS)
            layers.append(Upscale(c_in, c_out))
            if config.decoder_residual:
                layers.append(ResidualBlock(c_out))
            c_in = c_out
        self.body = nn.Sequential(*layers)
        self.rgb = _conv(c_in, 3, kernel=5)
        self.mask = _conv(c_in, 1, kernel=5)

    def forward(self, code: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (rgb [B, 3, S, S] in [0, 1], mask [B, 1, S, S] in [0, 1])."""
        h = self.body(code)
        return torch.sigmoid(self.rgb(h)), torch.sigmoid(self.mask(h))


class FaceswapAutoencoder(nn.Module):
    """Shared encoder + decoders "a" and "b". forward() serves training (one call = one DDP forward, so
    every parameter gets its gradient in the same pass); swap()/reconstruct() serve conversion."""

    def __init__(self, config: FaceswapModelConfig):
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.decoders = nn.ModuleDict({name: Decoder(config) for name in DECODER_NAMES})

    def forward(self, x_a: torch.Tensor, x_b: torch.Tensor) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Reconstruct each identity with its own decoder: {"a": (rgb, mask), "b": (rgb, mask)}."""
        code = self.encoder(torch.cat([x_a, x_b]))
        code_a, code_b = code[: len(x_a)], code[len(x_a):]
        return {"a": self.decoders["a"](code_a), "b": self.decoders["b"](code_b)}

    def decode(self, x: torch.Tensor, decoder: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode any face and draw it as identity `decoder`: a swap when x shows the other identity."""
        if decoder not in self.decoders:
            raise ValueError(f"faceswap: unknown decoder {decoder!r} (this model has {', '.join(self.decoders)})")
        return self.decoders[decoder](self.encoder(x))
