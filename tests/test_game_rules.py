"""The co-evolution game's rules, each on its own: the promotion gate, the hinge, the panel's immutability, and
fresh evaluation fakes drawn from the right roles. The whole game runs in test_harness.py."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from forensics.harness.fakes import WorldRoles, sample_targets
from forensics.harness.gate import auc, decide
from forensics.harness.panel import SBI, UNION, Panel, PanelError
from forensics.harness.seeds import aggregate_seeds, seeds_table
from generators.evasion import evasion_terms, hinge

RNG = np.random.default_rng(0)
REALS = RNG.normal(0.0, 1.0, 40)


def column(gap: float, n: int = 40, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(real scores, fake scores) of one panel column whose fakes sit `gap` above the shared reals."""
    return REALS, np.random.default_rng(seed).normal(gap, 1.0, n)


def detector(gaps: dict[str, float]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    cols = {name: column(gap, seed=k + 1) for k, (name, gap) in enumerate(gaps.items())}
    cols[UNION] = (REALS, np.concatenate([fakes for _, fakes in cols.values()]))
    return cols


GATE = dict(n=300, confidence=0.9, tolerance=0.01, seed=0)


# ---------------------------------------------------------------- the promotion gate

def test_gate_promotes_only_a_candidate_better_on_the_union_and_no_worse_anywhere():
    champion = detector({SBI: 2.0, "faceswap@G1": 0.5})
    better = detector({SBI: 2.0, "faceswap@G1": 2.5})
    decision = decide(better, champion, None, **GATE)
    assert decision.promote and decision.reason.startswith("champion:")
    assert {c.column for c in decision.columns} == {SBI, "faceswap@G1", UNION}


def test_gate_refuses_a_worse_candidate_even_when_it_gains_on_the_union():
    champion = detector({SBI: 3.0, "faceswap@G1": 0.3})
    trades = detector({SBI: 1.0, "faceswap@G1": 3.0})      # the union improves, the self-blends get worse
    assert auc(*trades[UNION]) > auc(*champion[UNION])
    decision = decide(trades, champion, None, **GATE)
    assert not decision.promote and decision.reason == f"challenger: worse than the champion on {SBI}"


def test_gate_keeps_the_champion_when_the_candidate_is_the_same_detector():
    champion = detector({SBI: 2.0, "faceswap@G1": 1.0})
    decision = decide(champion, champion, None, **GATE)
    assert not decision.promote and "not better on the union" in decision.reason


def test_gate_refuses_refused_calibration_and_below_chance_columns_with_one_line():
    champion = detector({SBI: 2.0, "faceswap@G1": 1.0})
    refused = decide(None, champion, "Platt slope -0.3 <= 0", **GATE)
    assert not refused.promote and refused.reason == "refused: Platt slope -0.3 <= 0"
    inverted = detector({SBI: 2.0, "faceswap@G1": -1.5})
    below = decide(inverted, champion, None, **GATE)
    assert not below.promote and below.reason == "refused: panel AUC below chance on faceswap@G1"
    assert all("\n" not in d.reason for d in (refused, below))


def test_gate_refuses_drift_below_d0_on_the_native_columns():
    d0 = detector({SBI: 3.0, "animation": 2.0})
    champion = detector({SBI: 2.2, "animation": 1.0, "faceswap@G1": 0.2})   # an earlier, looser promotion
    candidate = detector({SBI: 2.2, "animation": 1.0, "faceswap@G1": 2.5})
    native = (SBI, "animation")
    decision = decide(candidate, champion, None, **GATE, d0={c: d0[c] for c in native}, native=native)
    assert not decision.promote and decision.reason.startswith("challenger: worse than D0 on")
    assert decide(candidate, champion, None, **GATE).promote     # the same candidate, without the D0 check


def test_gate_allows_no_drop_at_all_below_d0_on_the_native_columns():
    """Against the champion a drop within the tolerance is noise; against D0 on the native columns it is not
    allowed, or promotions could each lose a little there."""
    native = (SBI, "animation")
    d0 = detector({SBI: 2.0, "animation": 2.0, "faceswap@G1": 0.5})
    reals, fakes = d0["animation"]
    lowest = int(np.argmin(fakes))
    nudged_fakes = fakes.copy()
    nudged_fakes[lowest] = reals[reals < fakes[lowest]].max() - 1e-6        # now below one more real video
    candidate = {SBI: d0[SBI], "animation": (reals, nudged_fakes), "faceswap@G1": column(3.0, seed=7)}
    candidate[UNION] = (REALS, np.concatenate([f for _, f in candidate.values()]))
    drop = auc(*d0["animation"]) - auc(*candidate["animation"])
    assert 0 < drop <= GATE["tolerance"]
    assert decide(candidate, d0, None, **GATE).promote                       # within tolerance of the champion
    decision = decide(candidate, d0, None, **GATE, d0={c: d0[c] for c in native}, native=native)
    assert not decision.promote and decision.reason == "challenger: worse than D0 on animation"


# ---------------------------------------------------------------- the hinge

class LinearDetector(torch.nn.Module):
    """logit = 20 * (mean pixel - 0.5): brighter fakes look more fake."""

    def preprocess_tensor(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 20.0 * (x.mean(dim=(1, 2, 3)) - 0.5)


def test_hinge_stops_pushing_once_a_fake_is_called_real():
    fakes = torch.stack([torch.full((3, 8, 8), v) for v in (0.2, 0.45, 0.55, 0.9)]).requires_grad_(True)
    threshold = 0.0                                          # logits: -6, -1, +1, +8
    loss, mean_logit, called_real = evasion_terms(LinearDetector(), fakes, 1.0, threshold)
    loss.backward()
    per_fake = fakes.grad.abs().sum(dim=(1, 2, 3))
    assert per_fake[0] == 0 and per_fake[1] == 0            # called real already: no gradient at all
    assert per_fake[2] > 0 and per_fake[3] > 0              # called fake: pushed down, toward the threshold only
    assert float(called_real) == 0.5 and abs(float(loss.detach()) - (1.0 + 8.0) / 4) < 1e-4
    assert float(mean_logit) == pytest.approx(0.5, abs=1e-4)
    assert torch.equal(hinge(torch.tensor([-3.0, 0.0, 2.0]), 0.0), torch.tensor([0.0, 0.0, 2.0]))


def test_hinge_at_a_higher_threshold_leaves_more_fakes_alone():
    fakes = torch.rand(16, 3, 8, 8)
    logits = LinearDetector()(fakes)
    for threshold in (float(logits.min()) - 1, float(logits.median()), float(logits.max()) + 1):
        loss, _, called_real = evasion_terms(LinearDetector(), fakes, 2.0, threshold)
        expected = 2.0 * torch.clamp(logits - threshold, min=0).mean()
        assert float(loss) == pytest.approx(float(expected), abs=1e-5)
        assert float(called_real) == pytest.approx(float((logits < threshold).float().mean()))


# ---------------------------------------------------------------- the panel

def write(path, content: bytes):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def test_panel_columns_are_written_once_and_changed_files_are_refused(tmp_path):
    reals = [str(write(tmp_path / f"real_{i}.mp4", f"real {i}".encode())) for i in range(3)]
    panel = Panel.create(tmp_path / "panel.json", reals)
    first = [(str(write(tmp_path / f"fake_{i}.mp4", f"fake {i}".encode())), reals[i], 20 + i) for i in range(3)]
    panel.add_column("faceswap@G0", first)
    frozen = Panel.load(tmp_path / "panel.json").digests
    assert Panel.load(tmp_path / "panel.json").digest() == panel.digest()
    assert panel.columns == [SBI, "faceswap@G0", UNION] and len(panel.fakes(UNION)) == 3

    with pytest.raises(PanelError, match="exists already"):
        panel.add_column("faceswap@G0", first)
    second = [(str(write(tmp_path / f"g1_{i}.mp4", f"g1 {i}".encode())), reals[i], 25) for i in range(3)]
    panel.add_column("faceswap@G1", second)
    with pytest.raises(PanelError, match="needs at least 2 fake videos with a face, got 1"):
        panel.add_column("animation", second[:1], no_face=[p for p, _, _ in second[1:]])
    reloaded = Panel.load(tmp_path / "panel.json")
    reloaded.verify()
    assert reloaded.no_face == {}
    assert {k: reloaded.digests[k] for k in frozen} == frozen          # adding a column leaves the others
    assert reloaded.fake_columns == ["faceswap@G0", "faceswap@G1"]

    write(tmp_path / "fake_1.mp4", b"re-encoded")                        # a panel video changed on disk
    with pytest.raises(PanelError, match="changed since it was added"):
        Panel.load(tmp_path / "panel.json").verify()
    write(tmp_path / "fake_1.mp4", b"fake 1")
    Panel.load(tmp_path / "panel.json").verify()

    doc = json.loads((tmp_path / "panel.json").read_text())            # someone edits the record itself
    doc["videos"] = [v for v in doc["videos"] if not v["path"].endswith("g1_2.mp4")]
    (tmp_path / "panel.json").write_text(json.dumps(doc))
    with pytest.raises(PanelError, match="'faceswap@G1' changed since it was frozen"):
        Panel.load(tmp_path / "panel.json").verify()
    (tmp_path / "real_0.mp4").unlink()
    with pytest.raises(PanelError, match="missing"):
        Panel.load(tmp_path / "panel.json").verify()


def test_panel_needs_two_reals(tmp_path):
    with pytest.raises(PanelError, match="at least 2 real test videos"):
        Panel.create(tmp_path / "panel.json", [str(write(tmp_path / "one.mp4", b"x"))])


# ---------------------------------------------------------------- roles and fresh fakes

def manifest(tmp_path, splits: dict[str, int]):
    lines = ["path,label,method,identity,split,source"]
    for split, count in splits.items():
        lines += [f"{split}_{i}.mp4,real,,id{1000 * len(split) + i // 2:04d},{split},synthetic" for i in range(count)]
    (tmp_path / "manifest.csv").write_text("\n".join(lines) + "\n")
    return tmp_path


def test_roles_come_from_the_splits_and_a_small_world_fails_in_one_line(tmp_path):
    world = manifest(tmp_path, {"train": 8, "val": 4, "test": 6})
    roles = WorldRoles.of(world, fit_fakes=8, val_fakes=4)
    assert {r.split for r in roles.rows("fit")} == {"train"} and {r.split for r in roles.rows("panel")} == {"test"}
    assert len(roles.rows("val")) == 4
    with pytest.raises(ValueError) as error:
        WorldRoles.of(world, fit_fakes=9, val_fakes=4)
    assert "needs 9 real train videos, the world has 8" in str(error.value) and "\n" not in str(error.value)


def test_each_round_draws_fresh_targets_and_never_caps(tmp_path):
    rows = WorldRoles.of(manifest(tmp_path, {"train": 12, "val": 2, "test": 4}), 6, 2).rows("fit")
    draws = [sample_targets(rows, 6, np.random.default_rng([0, index, 0xF1])) for index in range(4)]
    assert all(len(d) == 6 and len({r.path for r in d}) == 6 for d in draws)
    assert len({tuple(r.path for r in d) for d in draws}) > 1          # rounds see different targets
    with pytest.raises(ValueError, match="13 fake videos asked for, only 12"):
        sample_targets(rows, 13, np.random.default_rng(0))


# ---------------------------------------------------------------- seeds

def seed_summary(d0: dict[str, float], champion: str, rows: dict[str, dict[str, float]]) -> dict:
    """A summary.json of a 2-round run: D0's first-round row lacks the columns of later versions; the final
    matrix scores every version on every column."""
    cell = lambda a: {"auc": a, "ci": [a - 0.1, min(1.0, a + 0.1)], "n_real": 12, "n_fake": 12}  # noqa: E731
    columns = list(d0)
    matrix = {"D0": {c: cell(v) for c, v in d0.items()}, **{n: {c: cell(v) for c, v in r.items()}
                                                            for n, r in rows.items()}}
    first = {c: cell(d0[c]) for c in columns if not c.endswith("@G2")}
    records = [{"round": 1, "promoted": champion == "D1", "adversary": "D0", "champion_row": first,
                "candidate_row": {c: matrix["D1"][c] for c in first}},
               {"round": 2, "promoted": champion == "D2", "adversary": "D1" if champion == "D1" else "D0",
                "champion_row": matrix["D1" if champion == "D1" else "D0"], "candidate_row": matrix["D2"]}]
    return {"rounds": records, "panel_columns": columns, "panel_matrix": matrix, "champion": {"name": champion}}


def test_seeds_compare_d0_and_the_final_champion_on_every_final_column():
    cols = ("sbi", "animation", "faceswap@G0", "faceswap@G1", "faceswap@G2", "union")
    d0 = dict(zip(cols, (0.90, 0.80, 0.95, 0.70, 0.60, 0.75)))
    up = lambda gain: {c: min(1.0, v + gain) for c, v in d0.items()}   # noqa: E731
    summaries = {0: seed_summary(d0, "D2", {"D1": up(0.01), "D2": up(0.05)}),
                 1: seed_summary(d0, "D0", {"D1": up(-0.02), "D2": up(-0.01)}),
                 2: seed_summary(d0, "D1", {"D1": up(0.10), "D2": up(0.0)})}
    aggregate = aggregate_seeds(summaries)
    assert set(aggregate["final"]) == set(cols)                        # G2 came after D0's first round
    held_out = aggregate["final"]["animation"]
    assert held_out["D0"]["mean"] == pytest.approx(0.80) and held_out["D0"]["sd"] == pytest.approx(0.0)
    assert held_out["champion"]["mean"] == pytest.approx(np.mean([0.85, 0.80, 0.90]))
    assert (held_out["champion"]["min"], held_out["champion"]["max"]) == pytest.approx((0.80, 0.90))
    assert aggregate["rounds"][2]["promoted"] == 1 and aggregate["rounds"][1]["runs"] == 3
    table = seeds_table(aggregate)
    assert "faceswap@G2" in table and "0.850 ± 0.050 [0.800, 0.900]" in table
