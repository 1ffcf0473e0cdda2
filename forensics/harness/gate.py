"""Evidence before promotion: panel AUCs with bootstrap intervals, and the gate a candidate must pass.

Every AUC here is video level on the panel: one score per video, fakes of a column against the real test
videos. Intervals resample videos with replacement, reals and fakes separately (so every resample has both
classes), `n` times. The gate compares a candidate with the champion on the *same* resamples (a paired
bootstrap), column by column:

- a column is *worse* when the candidate's AUC is below the champion's by more than `tolerance`, or when
  the whole interval of the difference lies below zero (worse beyond doubt);
- the candidate is *better on the union* of all fake columns when the whole interval of the difference
  lies above zero.

A candidate is promoted only if no column is worse and it is better on the union; and, so that promotions
cannot drift down step by step, its AUC must not be below D0's at all on the native columns (self-blends
and the held-out family: what the game does not train on; no tolerance there, since small drops would add up
over promotions and these columns are what the product promises beyond the game). Before that, a candidate
whose calibration was refused (Platt slope <= 0) or that scores any panel column below chance (AUC < 0.5) is
refused outright.
Everything else becomes a challenger, with the reason.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from forensics.harness.panel import UNION
from forensics.metrics.bootstrap import percentile_interval
from forensics.metrics.ranking import NAN


def auc(reals: np.ndarray, fakes: np.ndarray) -> float:
    """P(fake score > real score) + half the ties: the ROC AUC of video scores (nan without both classes)."""
    reals, fakes = np.asarray(reals, float), np.asarray(fakes, float)
    if reals.size == 0 or fakes.size == 0:
        return NAN
    greater = (fakes[:, None] > reals[None, :]).sum()
    ties = (fakes[:, None] == reals[None, :]).sum()
    return float((greater + 0.5 * ties) / (reals.size * fakes.size))


def resamples(n_reals: int, n_fakes: int, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Index arrays [n, n_reals] and [n, n_fakes]: reals and fakes resampled with replacement, separately."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, n_reals, (n, n_reals)), rng.integers(0, n_fakes, (n, n_fakes))


def bootstrap_aucs(reals: np.ndarray, fakes: np.ndarray, real_idx: np.ndarray, fake_idx: np.ndarray) -> np.ndarray:
    return np.array([auc(reals[r], fakes[f]) for r, f in zip(real_idx, fake_idx)])


def cell(reals: np.ndarray, fakes: np.ndarray, n: int, confidence: float, seed: int) -> dict:
    """{"auc", "ci": [low, high], "n_real", "n_fake"} of one detector on one column."""
    real_idx, fake_idx = resamples(len(reals), len(fakes), n, seed)
    aucs = bootstrap_aucs(reals, fakes, real_idx, fake_idx)
    return {"auc": auc(reals, fakes), "ci": list(percentile_interval(aucs, 1 - confidence)),
            "n_real": int(len(reals)), "n_fake": int(len(fakes))}


@dataclass
class ColumnComparison:
    column: str
    candidate: float
    champion: float
    delta: float
    ci: tuple[float, float]
    worse: bool


@dataclass
class Decision:
    promote: bool
    reason: str
    columns: list[ColumnComparison] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"promote": self.promote, "reason": self.reason, "columns": [asdict(c) for c in self.columns]}


def compare(candidate: dict[str, tuple[np.ndarray, np.ndarray]], champion: dict[str, tuple[np.ndarray, np.ndarray]],
            n: int, confidence: float, tolerance: float, seed: int) -> list[ColumnComparison]:
    """Paired bootstrap per column: {column: (real scores, fake scores)} of both detectors on the same videos."""
    out = []
    for k, (column, (c_reals, c_fakes)) in enumerate(candidate.items()):
        i_reals, i_fakes = champion[column]
        real_idx, fake_idx = resamples(len(c_reals), len(c_fakes), n, seed + 7919 * k)
        deltas = bootstrap_aucs(c_reals, c_fakes, real_idx, fake_idx) - bootstrap_aucs(i_reals, i_fakes, real_idx,
                                                                                        fake_idx)
        a, b = auc(c_reals, c_fakes), auc(i_reals, i_fakes)
        low, high = percentile_interval(deltas, 1 - confidence)
        out.append(ColumnComparison(column, a, b, a - b, (low, high), bool(a - b < -tolerance or high < 0)))
    return out


def decide(candidate: dict | None, champion: dict, refused: str | None, n: int, confidence: float,
           tolerance: float, seed: int, d0: dict | None = None, native: tuple[str, ...] = ()) -> Decision:
    """The promotion decision for one candidate (see the module docstring); candidate None = no model.

    candidate / champion / d0: {column: (real video scores, fake video scores)}; native: the columns where the
    candidate must also be no worse than D0.
    """
    if refused or candidate is None:
        return Decision(False, f"refused: {refused or 'no candidate model'}")
    below = [c for c, (reals, fakes) in candidate.items() if auc(reals, fakes) < 0.5]
    columns = compare(candidate, champion, n, confidence, tolerance, seed)
    if below:
        return Decision(False, f"refused: panel AUC below chance on {', '.join(below)}", columns)
    worse = [c.column for c in columns if c.worse and c.column != UNION]
    union = next(c for c in columns if c.column == UNION)
    if worse:
        return Decision(False, f"challenger: worse than the champion on {', '.join(worse)}", columns)
    if d0 is not None and native:
        regressed = [c.column for c in compare({c: candidate[c] for c in native}, d0, n, confidence, 0.0,
                                               seed + 1) if c.worse]
        if regressed:
            return Decision(False, f"challenger: worse than D0 on {', '.join(regressed)}", columns)
    if not union.ci[0] > 0:
        return Decision(False, f"challenger: not better on the union of panel fakes (AUC {union.candidate:.3f} vs "
                               f"{union.champion:.3f}, {int(confidence * 100)}% interval of the gain "
                               f"[{union.ci[0]:+.3f}, {union.ci[1]:+.3f}])", columns)
    return Decision(True, f"champion: no worse on any panel column, better on the union (AUC {union.candidate:.3f} vs "
                          f"{union.champion:.3f}, gain [{union.ci[0]:+.3f}, {union.ci[1]:+.3f}])", columns)
