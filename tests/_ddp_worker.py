"""DDP worker for tests/test_training.py, and the toy tasks both share.

Run as `python -m torch.distributed.run --standalone --nproc_per_node 2 tests/_ddp_worker.py OUTDIR [EPOCHS]`:
each rank trains a linear regression on its shard, then a toy GAN (both with grad_accum=2, so the
DDP no_sync path runs), and writes OUTDIR/rank<r>.json with its final parameters, their hash and the
rows it trained on.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import torch
from torch import nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from forensics.training import StepContext, TrainConfig, Trainer  # noqa: E402
from forensics.training import distributed as D  # noqa: E402


class ShardedLinearTask:
    """Linear regression with a mean loss; each global batch is split row-wise across ranks.

    With equal shards, DDP's gradient average equals the full-batch gradient, so any world size
    trains the same weights (up to float rounding).
    """

    def __init__(self, n: int = 64, global_batch: int = 16, features: int = 5, lr: float = 0.1, accum: int = 1):
        g = torch.Generator().manual_seed(1234)
        self.x = torch.randn(n, features, generator=g)
        self.y = self.x @ torch.randn(features, 1, generator=g) + 0.1 * torch.randn(n, 1, generator=g)
        self.global_batch, self.features, self.lr, self.accum = global_batch, features, lr, accum
        self.rows_seen: list[int] = []

    def build(self, device):
        return {"model": nn.Linear(self.features, 1)}

    def configure_optimizers(self, modules):
        return {"main": torch.optim.SGD(modules["model"].parameters(), lr=self.lr)}

    def train_batches(self, epoch, rank, world_size):
        perm = torch.randperm(len(self.x), generator=torch.Generator().manual_seed(100 + epoch))  # same on all ranks
        out = []
        for start in range(0, len(perm), self.global_batch):
            rows = perm[start:start + self.global_batch][rank::world_size]
            out.extend(rows.chunk(self.accum))  # one optimizer step per global batch
        return out

    def training_step(self, rows, ctx: StepContext):
        self.rows_seen.extend(rows.tolist())
        pred = ctx.modules["model"](self.x[rows].to(ctx.device))
        loss = F.mse_loss(pred, self.y[rows].to(ctx.device))
        ctx.backward(loss, "main")
        return {"loss": loss}

    def evaluate(self, epoch, ctx):
        with torch.no_grad():
            return {"val/loss": F.mse_loss(ctx.modules["model"](self.x), self.y).item()}


class ToyGANTask:
    """A 2-D GAN: G maps noise to points, D tells them from N(mean, 0.3). Two optimizers, alternating.

    The generator loss runs the discriminator unwrapped (ctx.raw_modules): the DDP-wrapped D would
    otherwise wait for D gradients that ctx.backward(g_loss, "G") never produces.
    """

    def __init__(self, batch: int = 32, steps: int = 8, mean=(2.0, -1.0), scheduler: bool = True):
        self.batch, self.steps, self.scheduler = batch, steps, scheduler
        self.mean = torch.tensor(mean)

    def build(self, device):
        return {"G": nn.Linear(4, 2), "D": nn.Sequential(nn.Linear(2, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1))}

    def configure_optimizers(self, modules):
        return {"G": torch.optim.Adam(modules["G"].parameters(), lr=0.05, betas=(0.5, 0.999)),
                "D": torch.optim.Adam(modules["D"].parameters(), lr=0.02, betas=(0.5, 0.999))}

    def configure_schedulers(self, optimizers):
        if not self.scheduler:
            return {}
        return {"G": torch.optim.lr_scheduler.StepLR(optimizers["G"], step_size=20, gamma=0.5)}

    def train_batches(self, epoch, rank, world_size):
        return range(self.steps)

    def training_step(self, _, ctx: StepContext):
        real = self.mean + 0.3 * torch.randn(self.batch, 2)
        fake = ctx.modules["G"](torch.randn(self.batch, 4))
        logits = ctx.modules["D"](torch.cat([real, fake.detach()]))
        labels = torch.cat([torch.ones(self.batch, 1), torch.zeros(self.batch, 1)])
        d_loss = F.binary_cross_entropy_with_logits(logits, labels)
        ctx.backward(d_loss, "D")
        g_loss = F.binary_cross_entropy_with_logits(ctx.raw_modules["D"](fake), torch.ones(self.batch, 1))
        ctx.backward(g_loss, "G")
        return {"loss_d": d_loss, "loss_g": g_loss}


def flat_params(module: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1).cpu() for p in module.parameters()])


def digest(t: torch.Tensor) -> str:
    return hashlib.sha256(t.numpy().tobytes()).hexdigest()


def main(outdir: str, epochs: int = 3) -> None:
    out = Path(outdir)
    created = D.init_from_env("cpu")  # the Trainer must then leave the group alone
    rank = D.rank()
    task = ShardedLinearTask(accum=2)
    trainer = Trainer(task, TrainConfig(epochs=epochs, grad_accum=2, device="cpu", monitor="val/loss",
                                        mode="min", patience=None, checkpoint_dir=out / "ckpt", progress=False))
    result = trainer.fit()
    params = flat_params(trainer.modules["model"])
    gan = Trainer(ToyGANTask(), TrainConfig(epochs=2, grad_accum=2, device="cpu", monitor=None, patience=None,
                                            checkpoint_dir=out / "gan", progress=False))
    gan.fit()
    gan_params = torch.cat([flat_params(gan.modules["G"]), flat_params(gan.modules["D"])])
    report = {"rank": rank, "world_size": D.world_size(), "still_initialized": D.is_distributed(),
              "params": params.tolist(), "sha": digest(params), "gan_sha": digest(gan_params),
              "rows": task.rows_seen, "epochs_run": result.epochs_run, "history": result.history}
    (out / f"rank{rank}.json").write_text(json.dumps(report))
    if created:
        D.destroy()


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 3)
