"""The animation family's one config: architecture (saved with the weights) and training recipe, with YAML
presets in generators/animation/presets/ (first-order-model's `model_params` / `train_params` in one dataclass)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from forensics.presets import read_preset
from forensics.training import TrainConfig

PRESET_DIR = Path(__file__).parent / "presets"
FAMILY = "animation"


@dataclass
class AnimationConfig:
    """Architecture (saved with the weights) and training recipe; YAML presets in generators/animation/presets/."""
    # -- data
    world: str = "data/synth"               # synthetic world to train on (when no FaceSet is given)
    size: int = 64                          # aligned crop side the model works at
    margin: float = 0.25                    # alignment margin (forensics.faces.align_face)
    # -- keypoint detector
    num_kp: int = 10
    estimate_jacobian: bool = True
    kp_block_expansion: int = 32
    kp_num_blocks: int = 3
    kp_max_features: int = 256
    kp_scale_factor: float = 0.5
    kp_temperature: float = 0.1
    # -- dense motion
    dm_block_expansion: int = 32
    dm_num_blocks: int = 3
    dm_max_features: int = 256
    dm_scale_factor: float = 0.5
    kp_variance: float = 0.01
    estimate_occlusion_map: bool = True
    head_kernel: int = 7                    # FOMM's 7x7 convs: keypoint/mask/occlusion heads, generator ends
    # -- generator
    gen_block_expansion: int = 32
    gen_max_features: int = 256
    gen_down_blocks: int = 2
    gen_bottleneck_blocks: int = 3
    warped_skips: bool = True               # warp every encoder resolution, not only the bottleneck (TPSMM)
    pixel_skip: bool = True                 # blend the warped source image in through a predicted mask
    # -- discriminator
    disc_scales: list = field(default_factory=lambda: [1.0])
    disc_block_expansion: int = 32
    disc_num_blocks: int = 3
    disc_max_features: int = 256
    # -- training
    epochs: int = 10
    batch_size: int = 16
    pairs_per_video: int = 16               # (source, driving) pairs drawn per training video per epoch
    lr_generator: float = 2e-4
    lr_discriminator: float = 2e-4
    betas: list = field(default_factory=lambda: [0.5, 0.999])
    flip: bool = True                       # mirror both frames of a pair together
    loss_scales: list = field(default_factory=lambda: [1.0, 0.5, 0.25, 0.125])
    pixel_weight: float = 10.0
    feature_weight: float = 10.0
    feature_widths: list = field(default_factory=lambda: [16, 32, 64])
    equivariance_value: float = 10.0
    equivariance_jacobian: float = 10.0
    sigma_affine: float = 0.05
    sigma_tps: float = 0.005
    points_tps: int = 5
    adversarial_weight: float = 0.1
    feature_matching_weight: float = 1.0
    adversarial_start_epoch: int = 1
    train_split: str = "train"
    eval_split: str = "val"                 # falls back to the training videos when the split is empty
    eval_videos: int = 12
    eval_frames: int = 8                    # driving frames per evaluation video (source: its first frame)
    grid_columns: int = 8
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        multiple = 2 ** self.gen_down_blocks
        if self.size % multiple or int(self.size * self.kp_scale_factor) % (2 ** self.kp_num_blocks) \
                or int(self.size * self.dm_scale_factor) % (2 ** self.dm_num_blocks):
            raise ValueError(f"AnimationConfig: size {self.size} must be divisible by 2**gen_down_blocks and, "
                             f"after each scale factor, by 2**num_blocks of the keypoint and motion hourglasses")
        if self.num_kp < 1 or self.batch_size < 1 or self.pairs_per_video < 1:
            raise ValueError("AnimationConfig: num_kp, batch_size and pairs_per_video must be >= 1")

    @classmethod
    def from_preset(cls, name_or_path: str, **overrides) -> "AnimationConfig":
        return cls(**read_preset(cls, PRESET_DIR, name_or_path, "animation", overrides))

    @classmethod
    def from_dict(cls, data: dict, where: str = "config", **overrides) -> "AnimationConfig":
        """A config as to_dict() wrote it (e.g. a checkpoint's); an unknown key is a one-line error naming `where`."""
        try:
            return cls(**{**data, **{k: v for k, v in overrides.items() if v is not None}})
        except TypeError as exc:  # "__init__() got an unexpected keyword argument 'x'"
            raise ValueError(f"{where}: {exc}") from None

    def to_dict(self) -> dict:
        return asdict(self)

    def train_config(self, checkpoint_dir=None, **overrides):
        """The loop settings this family expects: no early stopping (GAN losses are no stopping signal)."""
        base = dict(epochs=self.epochs, device=self.device, seed=self.seed, patience=None, monitor=None,
                    checkpoint_dir=checkpoint_dir)
        return TrainConfig(**{**base, **overrides})
