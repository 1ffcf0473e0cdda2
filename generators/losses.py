"""Losses every GAN family here shares: the hinge pair (Lim & Ye 2017; Miyato et al. 2018).

Why hinge: D's loss saturates on patches it already judges confidently (real above +1, fake below -1),
so it stops spending capacity there and stays a useful critic for a small generator; the generator simply
raises D's score of its output. Logits are cast to float32 first: under bf16 autocast a mean over many
patches loses the small differences that the gradient lives on.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def d_hinge_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """max(0, 1 - D(real)) + max(0, 1 + D(fake)), each averaged over patches."""
    return F.relu(1.0 - real_logits.float()).mean() + F.relu(1.0 + fake_logits.float()).mean()


def g_hinge_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """-D(fake) averaged: no margin (hinge GAN's usual generator loss)."""
    return -fake_logits.float().mean()
