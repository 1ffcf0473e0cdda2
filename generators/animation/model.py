"""The animation family's modules assembled from its config (first-order-model: keypoint detector, dense
motion inside the occlusion-aware generator, multi-scale discriminator), named as in checkpoints."""
from __future__ import annotations

import torch

from .config import AnimationConfig
from .discriminator import MultiScaleDiscriminator
from .generator import OcclusionAwareGenerator
from .keypoints import KeypointDetector


def build_modules(config: AnimationConfig) -> dict[str, torch.nn.Module]:
    """The three trained modules, named as in checkpoints: kp_detector, generator, discriminator."""
    c = config
    kp_detector = KeypointDetector(num_kp=c.num_kp, block_expansion=c.kp_block_expansion, num_blocks=c.kp_num_blocks,
                                   max_features=c.kp_max_features, temperature=c.kp_temperature,
                                   estimate_jacobian=c.estimate_jacobian, scale_factor=c.kp_scale_factor,
                                   head_kernel=c.head_kernel)
    dense = dict(block_expansion=c.dm_block_expansion, num_blocks=c.dm_num_blocks, max_features=c.dm_max_features,
                 scale_factor=c.dm_scale_factor, kp_variance=c.kp_variance, head_kernel=c.head_kernel)
    generator = OcclusionAwareGenerator(num_kp=c.num_kp, block_expansion=c.gen_block_expansion,
                                        max_features=c.gen_max_features, num_down_blocks=c.gen_down_blocks,
                                        num_bottleneck_blocks=c.gen_bottleneck_blocks,
                                        estimate_occlusion_map=c.estimate_occlusion_map, dense_motion_params=dense,
                                        warped_skips=c.warped_skips, pixel_skip=c.pixel_skip,
                                        edge_kernel=c.head_kernel)
    discriminator = MultiScaleDiscriminator(scales=tuple(c.disc_scales), block_expansion=c.disc_block_expansion,
                                            num_blocks=c.disc_num_blocks, max_features=c.disc_max_features)
    return {"kp_detector": kp_detector, "generator": generator, "discriminator": discriminator}
