"""The shared training loop on tiny models: accumulation, resume, early stopping, determinism, GANs, DDP."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _ddp_worker import ShardedLinearTask, ToyGANTask, flat_params  # noqa: E402
from forensics.training import (CheckpointError, FitResult, StepContext, TrainConfig, Trainer,  # noqa: E402
                                load_module_weights, read_checkpoint)
from forensics.training import checkpoint as ckpt  # noqa: E402


class RegressionTask:
    """An MLP (or a linear model) regressing a fixed random target; shuffles with the global torch RNG,
    so resuming is only exact if RNG state is checkpointed too."""

    def __init__(self, n=48, batch=8, hidden=16, dropout=0.2, lr=0.01, optimizer="adam", shuffle=True,
                 linear=False, interrupt_at=None, scores=None, monitor_key="val/auc"):
        g = torch.Generator().manual_seed(7)
        self.x = torch.randn(n, 6, generator=g)
        self.y = torch.sin(self.x[:, :1] * 2) + 0.5 * self.x[:, 1:2]
        self.vx, self.vy = self.x[:16] + 0.05, self.y[:16]
        self.batch, self.hidden, self.dropout, self.lr = batch, hidden, dropout, lr
        self.optimizer, self.shuffle, self.linear = optimizer, shuffle, linear
        self.interrupt_at, self.scores, self.monitor_key = interrupt_at, scores, monitor_key
        self.steps_run = 0
        self.snapshots: dict[int, dict] = {}

    def build(self, device):
        if self.linear:
            return {"model": nn.Linear(6, 1)}
        return {"model": nn.Sequential(nn.Linear(6, self.hidden), nn.ReLU(), nn.Dropout(self.dropout),
                                       nn.Linear(self.hidden, 1))}

    def configure_optimizers(self, modules):
        params = modules["model"].parameters()
        opt = torch.optim.Adam(params, lr=self.lr) if self.optimizer == "adam" else torch.optim.SGD(params, lr=self.lr)
        return {"main": opt}

    def train_batches(self, epoch, rank, world_size):
        order = torch.randperm(len(self.x)) if self.shuffle else torch.arange(len(self.x))
        return [order[i:i + self.batch] for i in range(0, len(order), self.batch)]

    def training_step(self, rows, ctx: StepContext):
        if self.interrupt_at == (ctx.epoch, ctx.micro_step):
            raise KeyboardInterrupt
        self.steps_run += 1
        loss = F.mse_loss(ctx.modules["model"](self.x[rows]), self.y[rows])
        ctx.backward(loss, "main")
        return {"loss": loss}

    def evaluate(self, epoch, ctx):
        self.snapshots[epoch] = {k: v.clone() for k, v in ctx.raw_modules["model"].state_dict().items()}
        if self.scores is not None:
            return {self.monitor_key: self.scores[epoch]}
        return {"val/loss": F.mse_loss(ctx.modules["model"](self.vx), self.vy).item()}


def cfg(tmp_path=None, **kw) -> TrainConfig:
    base = dict(epochs=3, device="cpu", monitor="val/loss", mode="min", patience=None, progress=False,
                checkpoint_dir=tmp_path)
    base.update(kw)
    return TrainConfig(**base)


def weights(trainer: Trainer, name="model") -> dict:
    return {k: v.clone() for k, v in trainer.modules[name].state_dict().items()}


def assert_same_state(a: dict, b: dict, exact=True):
    assert a.keys() == b.keys()
    for k in a:
        if exact:
            assert torch.equal(a[k], b[k]), k
        else:
            torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6)


def assert_same_optimizer(a: torch.optim.Optimizer, b: torch.optim.Optimizer):
    sa, sb = a.state_dict()["state"], b.state_dict()["state"]
    assert sa.keys() == sb.keys() and sa
    for idx in sa:
        for key in sa[idx]:
            assert torch.equal(torch.as_tensor(sa[idx][key]), torch.as_tensor(sb[idx][key])), (idx, key)


class Recorder:
    """A stand-in for a tracking Run that keeps what was logged."""

    def __init__(self):
        self.calls: list[tuple[dict, int]] = []

    def log_metrics(self, metrics, step=None):
        self.calls.append((dict(metrics), step))


def test_loss_decreases_and_result_fields(tmp_path):
    run = Recorder()
    task = RegressionTask(dropout=0.0)
    result = Trainer(task, cfg(tmp_path, epochs=4, log_every=2), run=run).fit()
    assert isinstance(result, FitResult)
    losses = [r["train/loss"] for r in result.history]
    assert losses[-1] < 0.7 * losses[0]
    assert [r["epoch"] for r in result.history] == [0, 1, 2, 3] and result.epochs_run == 4
    assert not result.stopped_early and result.checkpoint_dir == tmp_path
    best = min(result.history, key=lambda r: r["val/loss"])
    assert result.best_epoch == best["epoch"] and result.best_metrics == best
    assert {"train/loss", "val/loss", "lr/main", "time/epoch_s"} <= set(result.history[0])
    step_logs = [(m, s) for m, s in run.calls if "train_step/loss" in m]
    epoch_logs = [(m, s) for m, s in run.calls if "val/loss" in m]
    assert [s for _, s in step_logs] == list(range(2, 4 * 6 + 1, 2))  # 6 steps per epoch, log_every=2
    assert [s for _, s in epoch_logs] == [0, 1, 2, 3]


def test_early_stopping_keeps_best(tmp_path):
    scores = [0.5, 0.8, 0.7, 0.75, 0.79, 0.95, 0.99]
    task = RegressionTask(scores=scores)
    result = Trainer(task, cfg(tmp_path, epochs=7, monitor="val/auc", mode="max", patience=3)).fit()
    assert result.stopped_early and result.epochs_run == 5 and result.best_epoch == 1
    assert result.best_metrics["val/auc"] == 0.8
    _, best_meta = read_checkpoint(tmp_path / "best")
    _, last_meta = read_checkpoint(tmp_path / "last")
    assert best_meta["run"]["next_epoch"] == 2 and last_meta["run"]["next_epoch"] == 5
    assert_same_state(load_module_weights(tmp_path / "best", "model"), task.snapshots[1])
    assert not torch.equal(load_module_weights(tmp_path / "last")["0.weight"], task.snapshots[1]["0.weight"])


def test_early_stopping_min_mode_and_min_delta():
    task = RegressionTask(scores=[1.0, 0.95, 0.9, 0.5], monitor_key="val/loss")
    result = Trainer(task, cfg(epochs=4, patience=2, min_delta=0.2)).fit()
    assert result.stopped_early and result.epochs_run == 3 and result.best_epoch == 0


@pytest.mark.parametrize("n,batch,accum", [(32, 4, 2), (40, 4, 4)])  # 40/4: last window holds 2 of 4
def test_grad_accumulation_matches_big_batch(n, batch, accum):
    def train(b, a):
        task = RegressionTask(n=n, batch=b, linear=True, shuffle=False, optimizer="sgd", lr=0.05)
        trainer = Trainer(task, cfg(epochs=2, grad_accum=a))
        trainer.fit()
        return weights(trainer)

    small = train(batch, accum)
    assert_same_state(small, train(batch * accum, 1), exact=False)
    assert not torch.allclose(small["weight"], train(batch, 1)["weight"], atol=1e-4)  # accumulation mattered


def test_resume_matches_straight_run(tmp_path):
    straight = Trainer(RegressionTask(), cfg(tmp_path / "a", epochs=3))
    straight.fit()
    Trainer(RegressionTask(), cfg(tmp_path / "b", epochs=2)).fit()
    resumed_task = RegressionTask()
    resumed = Trainer(resumed_task, cfg(tmp_path / "b", epochs=3))
    result = resumed.fit()
    assert resumed_task.steps_run == 6 and result.epochs_run == 3  # only epoch 2 ran here
    assert_same_state(weights(straight), weights(resumed))
    assert_same_optimizer(straight.optimizers["main"], resumed.optimizers["main"])

    again_task = RegressionTask()
    again = Trainer(again_task, cfg(tmp_path / "b", epochs=3)).fit()  # finished: a no-op
    assert again_task.steps_run == 0 and again == result


def test_interrupted_epoch_restarts_from_last_checkpoint(tmp_path):
    straight = Trainer(RegressionTask(), cfg(tmp_path / "a", epochs=3))
    straight.fit()
    with pytest.raises(KeyboardInterrupt):
        Trainer(RegressionTask(interrupt_at=(1, 3)), cfg(tmp_path / "b", epochs=3)).fit()
    _, meta = read_checkpoint(tmp_path / "b" / "last")
    assert meta["run"]["next_epoch"] == 1
    resumed = Trainer(RegressionTask(), cfg(tmp_path / "b", epochs=3))
    resumed.fit()
    assert_same_state(weights(straight), weights(resumed))
    assert_same_optimizer(straight.optimizers["main"], resumed.optimizers["main"])


def test_same_seed_is_bitwise_identical_other_seed_differs():
    def train(seed):
        trainer = Trainer(RegressionTask(), cfg(epochs=2, seed=seed))
        trainer.fit()
        return weights(trainer)

    a, b, c = train(3), train(3), train(4)
    assert_same_state(a, b)
    assert not torch.equal(a["0.weight"], c["0.weight"])


def test_gan_two_optimizers_train_and_resume(tmp_path):
    gan_cfg = dict(monitor="train/loss_g", mode="min", patience=None)
    torch.manual_seed(0)  # what the Trainer does before build(): g0 is the untrained generator
    g0 = ToyGANTask().build("cpu")["G"]
    z = torch.randn(256, 4, generator=torch.Generator().manual_seed(1))
    target = torch.tensor([2.0, -1.0])
    straight = Trainer(ToyGANTask(steps=10), cfg(tmp_path / "a", epochs=4, **gan_cfg))
    result = straight.fit()
    with torch.no_grad():
        before = (g0(z).mean(0) - target).norm()
        after = (straight.modules["G"](z).mean(0) - target).norm()
    assert after < 0.25 * before, (before, after)
    assert {"train/loss_d", "train/loss_g", "lr/G", "lr/D"} <= set(result.history[0])
    assert result.history[-1]["lr/G"] < result.history[0]["lr/G"]  # StepLR stepped with G's optimizer

    Trainer(ToyGANTask(steps=10), cfg(tmp_path / "b", epochs=2, **gan_cfg)).fit()
    resumed = Trainer(ToyGANTask(steps=10), cfg(tmp_path / "b", epochs=4, **gan_cfg))
    resumed.fit()
    for name in ("G", "D"):
        assert_same_state(weights(straight, name), weights(resumed, name))
        assert_same_optimizer(straight.optimizers[name], resumed.optimizers[name])
    assert resumed.schedulers["G"].state_dict() == straight.schedulers["G"].state_dict()
    tensors, _ = read_checkpoint(tmp_path / "b" / "last")
    assert any(k.startswith("optim/G/0/exp_avg") for k in tensors)
    assert any(k.startswith("optim/D/0/exp_avg_sq") for k in tensors)


def test_backward_reaches_only_the_named_optimizer():
    class Probe(ToyGANTask):
        def training_step(self, batch, ctx):
            fake = ctx.modules["G"](torch.randn(8, 4))
            ctx.backward(F.softplus(-ctx.raw_modules["D"](fake)).mean(), "G")
            self.grads = {n: [p.grad is not None for p in m.parameters()] for n, m in ctx.raw_modules.items()}
            return {}

    task = Probe(steps=1, scheduler=False)
    Trainer(task, cfg(epochs=1, monitor=None)).fit()
    assert all(task.grads["G"]) and not any(task.grads["D"])


def test_checkpoint_holds_no_pickle(tmp_path):
    Trainer(RegressionTask(), cfg(tmp_path, epochs=2)).fit()
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert files and {p.suffix for p in files} == {".safetensors", ".json"}
    for path in files:
        head = path.read_bytes()[:2]
        assert head != b"\x80\x04" and head != b"PK"  # neither a raw pickle nor a torch zip archive
    tensors, meta = read_checkpoint(tmp_path / "last")
    assert meta["format"] == ckpt.FORMAT and "rng/0/torch" in tensors
    alone = load_module_weights(tmp_path / "last" / "state.safetensors")
    assert set(alone) == {"0.weight", "0.bias", "3.weight", "3.bias"}
    with pytest.raises(CheckpointError, match="no module named 'generator'"):
        load_module_weights(tmp_path / "last", "generator")


def test_save_is_atomic(tmp_path, monkeypatch):
    trainer = Trainer(RegressionTask(), cfg(tmp_path, epochs=1))
    trainer.fit()
    before = (tmp_path / "last" / "state.safetensors").read_bytes()

    def torn_write(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(ckpt, "save_file", torn_write)
    with pytest.raises(KeyboardInterrupt):
        ckpt.save_checkpoint(tmp_path / "last", modules=trainer.modules, optimizers=trainer.optimizers,
                             schedulers={}, rng_states=[], meta={})
    assert (tmp_path / "last" / "state.safetensors").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best", "last"]  # no temp dir left behind
    # A crash between the two renames leaves only the renamed-aside copy: it is still found.
    os.replace(tmp_path / "last", tmp_path / ".last.old")
    assert ckpt.find_checkpoint(tmp_path / "last") == tmp_path / ".last.old"
    read_checkpoint(tmp_path / "last")


def test_bad_usage_fails_clearly(tmp_path):
    class WrongName(RegressionTask):
        def training_step(self, rows, ctx):
            ctx.backward(ctx.modules["model"](self.x[rows]).mean(), "generator")

    with pytest.raises(KeyError, match="'generator'.*returned \\['main'\\]"):
        Trainer(WrongName(), cfg(epochs=1)).fit()
    with pytest.raises(ValueError, match="monitor 'val/auc' is not among"):
        Trainer(RegressionTask(), cfg(epochs=1, monitor="val/auc")).fit()
    with pytest.raises(ValueError, match="needs ToyGANTask.evaluate"):
        Trainer(ToyGANTask(), cfg(epochs=1, monitor="val/auc")).fit()
    with pytest.raises(TypeError, match="lacks build"):
        Trainer(object(), cfg(epochs=1)).fit()
    with pytest.raises(ValueError, match="grad_accum"):
        TrainConfig(grad_accum=0)
    Trainer(RegressionTask(), cfg(tmp_path, epochs=1)).fit()
    with pytest.raises(CheckpointError, match="does not match"):
        Trainer(RegressionTask(hidden=8), cfg(tmp_path, epochs=2)).fit()


def _torchrun(outdir: Path, epochs: int) -> list[dict]:
    worker = Path(__file__).with_name("_ddp_worker.py")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(worker), str(outdir), str(epochs)], env=env, capture_output=True, text=True,
                          timeout=180)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return [json.loads((outdir / f"rank{r}.json").read_text()) for r in (0, 1)]


def _single_process_linear(epochs: int) -> torch.Tensor:
    trainer = Trainer(ShardedLinearTask(), TrainConfig(epochs=epochs, device="cpu", monitor="val/loss", mode="min",
                                                       patience=None, progress=False))
    trainer.fit()
    return flat_params(trainer.modules["model"])


def test_ddp_two_ranks_match_single_process_and_resume(tmp_path):
    assert torch.distributed.is_available(), "this torch build has no torch.distributed: DDP cannot run"
    ranks = _torchrun(tmp_path, 3)
    assert all(r["world_size"] == 2 and r["still_initialized"] for r in ranks)  # Trainer left the group alone
    assert ranks[0]["sha"] == ranks[1]["sha"] and ranks[0]["gan_sha"] == ranks[1]["gan_sha"]
    per_epoch = 64 // 2  # rows each rank sees per epoch
    for epoch in range(3):
        rows0 = set(ranks[0]["rows"][epoch * per_epoch:(epoch + 1) * per_epoch])
        rows1 = set(ranks[1]["rows"][epoch * per_epoch:(epoch + 1) * per_epoch])
        assert len(rows0) == len(rows1) == per_epoch and not rows0 & rows1  # disjoint shards
    torch.testing.assert_close(torch.tensor(ranks[0]["params"]), _single_process_linear(3), rtol=1e-5, atol=1e-6)
    _, meta = read_checkpoint(tmp_path / "ckpt" / "last")
    assert meta["world_size"] == 2 and len(meta["rng"]) == 2 and meta["run"]["next_epoch"] == 3

    # Resume on both ranks: one more epoch of the linear task; the finished GAN reloads as a no-op.
    resumed = _torchrun(tmp_path, 4)
    assert [len(r["rows"]) for r in resumed] == [per_epoch, per_epoch] and resumed[0]["epochs_run"] == 4
    assert resumed[0]["sha"] == resumed[1]["sha"] and resumed[1]["gan_sha"] == ranks[1]["gan_sha"]
    torch.testing.assert_close(torch.tensor(resumed[0]["params"]), _single_process_linear(4), rtol=1e-5, atol=1e-6)
