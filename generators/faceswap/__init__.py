"""Face swap, the "deepfakes" way: one encoder shared by identities A and B, one decoder (RGB + mask) each.

    from generators.faceswap import FaceswapConfig, train_faceswap, swap_video
    config = FaceswapConfig.from_preset("cpu-small", identity_a=0, identity_b=1)
    result, ckpt = train_faceswap(config, "runs/faceswap")          # the shared training loop
    recipe = swap_video(ckpt, "video_of_b.mp4", "fake.mp4", source="a")

Importing the package registers the family (family.FaceswapFamily) with generators.registry.
"""
from generators.registry import register_family

from .checkpoint import GeneratorCheckpointError, LoadedFaceswap, load_faceswap, save_generator
from .config import FAMILY, FaceswapConfig
from .convert import generate, swap_crops, swap_frames, swap_video
from .discriminator import PatchDiscriminator, d_hinge_loss, g_hinge_loss
from .family import FaceswapFamily, identity_pair
from .model import FaceswapAutoencoder, FaceswapModelConfig
from .task import FaceswapTask, load_pair, make_task, train_faceswap

FAMILY_SPEC = register_family(FaceswapFamily())

__all__ = ["FAMILY", "FAMILY_SPEC", "FaceswapAutoencoder", "FaceswapConfig", "FaceswapFamily", "FaceswapModelConfig",
           "FaceswapTask", "GeneratorCheckpointError", "LoadedFaceswap", "PatchDiscriminator", "d_hinge_loss",
           "g_hinge_loss", "generate", "identity_pair", "load_faceswap", "load_pair", "make_task", "save_generator",
           "swap_crops", "swap_frames", "swap_video", "train_faceswap"]
