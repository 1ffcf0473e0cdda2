"""The face-swap family's one config: architecture, losses, augmentation and run settings, with YAML presets
in generators/faceswap/presets/ (cpu-small: 64 px in minutes on 2 cores; gpu: 256 px)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path

from forensics.presets import read_preset
from forensics.training import TrainConfig
from generators.faceswap.augment import WarpConfig
from generators.faceswap.model import FaceswapModelConfig

PRESET_DIR = Path(__file__).parent / "presets"
FAMILY = "faceswap"


@dataclass
class FaceswapConfig:
    """Everything that decides a face-swap training run; YAML presets in generators/faceswap/presets/.

    identity_a / identity_b: synthetic identity ids of `world`; decoder "a" learns to draw identity_a.
    batch_size is per identity (a step sees 2 x batch_size crops). adv_start_epoch counts from 0.
    Mask targets: the 68-point hull (`mask_hull` "face" | "extended" | "inner"), eroded by `mask_erode`
    and blurred by `mask_blur`, both as fractions of the crop size.
    """
    world: str = "data/synth"
    identity_a: int = 0
    identity_b: int = 1
    size: int = 64
    margin: float = 0.25
    every: int = 1
    # architecture
    encoder_channels: int = 32
    bottleneck_channels: int = 256
    latent_dim: int = 256
    decoder_channels: int = 128
    decoder_residual: bool = False
    disc_channels: int = 32
    disc_layers: int | None = None          # None: enough strides for an ~8x8 patch grid
    # optimisation
    epochs: int = 8
    steps_per_epoch: int = 200
    batch_size: int = 8
    grad_accum: int = 1
    lr: float = 5e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    # losses
    l1_weight: float = 1.0
    pyramid_levels: int = 3
    pyramid_weight: float = 1.0
    ssim_weight: float = 1.0
    face_weight: float = 2.0                # extra per-pixel weight inside the hull mask
    mask_weight: float = 1.0
    adv_weight: float = 0.1
    adv_start_epoch: int = 1
    # mask targets
    mask_hull: str = "face"
    mask_erode: float = 0.02
    mask_blur: float = 0.02
    # augmentation (see augment.WarpConfig)
    aug_rotation: float = 0.0               # shared by input and target: aligned crops barely vary in
    aug_scale: float = 0.0                  # roll/scale/shift, and learning such poses costs capacity
    aug_shift: float = 0.0                  # (measured: +25-40% reconstruction L1 at equal steps)
    flip: bool = True
    warp_rotation: float = 3.0
    warp_scale: float = 0.03
    warp_shift: float = 0.03
    warp_elastic: float = 0.05
    warp_grid: int = 5
    # run
    eval_frames: int = 16                   # per identity, evenly spaced, scored without warps
    preview: int = 6                        # frames per row of the sample grid
    channels_last: bool = False             # CUDA only
    seed: int = 0
    device: str = "auto"
    log_every: int = 10

    def __post_init__(self) -> None:
        if self.identity_a == self.identity_b:
            raise ValueError(f"faceswap: identity_a and identity_b must differ, both are {self.identity_a}")
        if self.steps_per_epoch < 1 or self.batch_size < 1 or self.epochs < 0:
            raise ValueError("faceswap: steps_per_epoch and batch_size must be >= 1, epochs >= 0")
        if self.mask_hull not in ("face", "extended", "inner"):
            raise ValueError(f"faceswap: mask_hull must be face, extended or inner, got {self.mask_hull!r}")
        self.model_config()  # validates size and widths

    @classmethod
    def from_preset(cls, name_or_path: str, **overrides) -> "FaceswapConfig":
        return cls(**read_preset(cls, PRESET_DIR, name_or_path, "faceswap", overrides))

    def to_dict(self) -> dict:
        return asdict(self)

    def model_config(self) -> FaceswapModelConfig:
        return FaceswapModelConfig(size=self.size, margin=self.margin, encoder_channels=self.encoder_channels,
                                   bottleneck_channels=self.bottleneck_channels, latent_dim=self.latent_dim,
                                   decoder_channels=self.decoder_channels, decoder_residual=self.decoder_residual)

    def warp_config(self) -> WarpConfig:
        names = {f.name for f in fields(WarpConfig)}
        return WarpConfig(**{k: v for k, v in asdict(self).items() if k in names})

    def train_config(self, checkpoint_dir: str | Path | None = None, **overrides):
        """The loop's TrainConfig: no early stopping (GAN losses do not measure quality), every epoch kept."""
        values = dict(epochs=self.epochs, grad_accum=self.grad_accum, device=self.device, amp=True, seed=self.seed,
                      patience=None, monitor=None, checkpoint_dir=checkpoint_dir, log_every=self.log_every)
        values.update(overrides)
        return TrainConfig(**values)
