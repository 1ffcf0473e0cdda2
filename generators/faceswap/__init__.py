"""Face swap, the "deepfakes" way: one encoder shared by identities A and B, one decoder (RGB + mask) each.

    from generators.faceswap import FaceswapConfig, train_faceswap, swap_video
    config = FaceswapConfig.from_preset("cpu-small", identity_a=0, identity_b=1)
    result, ckpt = train_faceswap(config, "runs/faceswap")          # the shared training loop
    recipe = swap_video(ckpt, "video_of_b.mp4", "fake.mp4", source="a")

`GENERATOR` is this family's entry for generators.registry (name, config class, task factory, loader).
"""
from generators.faceswap.checkpoint import (GeneratorCheckpointError, LoadedFaceswap, load_faceswap,
                                            load_generator, save_generator)
from generators.faceswap.convert import generate, swap_crops, swap_frames, swap_video
from generators.faceswap.discriminator import PatchDiscriminator, d_hinge_loss, g_hinge_loss
from generators.faceswap.model import FaceswapAutoencoder, FaceswapModelConfig
from generators.faceswap.task import FaceswapConfig, FaceswapTask, load_pair, make_task, train_faceswap

GENERATOR = dict(name="faceswap", config=FaceswapConfig, make_task=make_task, load=load_faceswap, train=train_faceswap)

__all__ = ["GENERATOR", "FaceswapAutoencoder", "FaceswapConfig", "FaceswapModelConfig", "FaceswapTask",
           "GeneratorCheckpointError", "LoadedFaceswap", "PatchDiscriminator", "d_hinge_loss", "g_hinge_loss",
           "generate", "load_faceswap", "load_generator", "load_pair", "make_task", "save_generator", "swap_crops",
           "swap_frames", "swap_video", "train_faceswap"]
