"""forensics.metrics against hand-computed small cases and statistical properties on generated scores."""
from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from forensics.metrics import (accuracy_at, apply_platt, average_precision, bootstrap_ci, calibrate_threshold,
                               eer, expected_calibration_error, fit_platt, metric_values, roc_auc,
                               summarize_scores, threshold_at_fpr, tpr_at_fpr, video_scores)

SEPARATED = ([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9])


def test_perfect_separation():
    assert roc_auc(*SEPARATED) == 1.0
    assert eer(*SEPARATED) == (0.0, 0.8)           # 0.8 = the lowest threshold that still makes no error
    assert average_precision(*SEPARATED) == 1.0
    assert accuracy_at(*SEPARATED, threshold=0.5) == 1.0


def test_reversed_scores():
    labels, scores = SEPARATED
    assert roc_auc(labels, scores[::-1]) == 0.0
    assert eer(labels, scores[::-1])[0] == 1.0
    assert accuracy_at(labels, scores[::-1], threshold=0.5) == 0.0


def test_known_eer():
    # threshold 0.6 calls fakes 0.9, 0.7, 0.6 (miss 0.3: FNR 1/4) and real 0.8 (FPR 1/4)
    labels = [0, 0, 0, 0, 1, 1, 1, 1]
    scores = [0.1, 0.2, 0.4, 0.8, 0.3, 0.6, 0.7, 0.9]
    assert eer(labels, scores) == pytest.approx((0.25, 0.6))
    # AUC: fake-real pairs ranked right = 3 + 4 + 3 + 2 = 12 of 16
    assert roc_auc(labels, scores) == pytest.approx(12 / 16)


def test_eer_interpolates_between_operating_points():
    # points: thr 0.9 -> FPR 1/2, FNR 1; thr 0.5 -> FPR 1/2, FNR 0; FPR = FNR half-way: 0.5 at thr 0.7
    assert eer([0, 0, 1], [0.9, 0.1, 0.5]) == pytest.approx((0.5, 0.7))


def test_average_precision_example():
    # ranked fake, real, fake, real: precision 1 at recall 1/2, precision 2/3 at recall 1
    assert average_precision([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.6]) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)


def test_agrees_with_sklearn_including_ties():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 300)
    scores = np.round(rng.normal(size=300) + labels, 1)    # rounding makes many ties
    assert roc_auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert average_precision(labels, scores) == pytest.approx(average_precision_score(labels, scores), abs=1e-12)


def test_tpr_at_fpr_constructed():
    reals = np.arange(100) / 100.0                      # 0.00 .. 0.99
    fakes = np.array([0.995, 0.985, 0.975, 0.5, 0.3])
    labels = np.r_[np.zeros(100), np.ones(5)]
    scores = np.r_[reals, fakes]
    # FPR <= 1 %: one real (0.99) may be called fake, so the threshold can go down to 0.985: 2 of 5 fakes
    assert tpr_at_fpr(labels, scores, 0.01) == pytest.approx(0.4)
    assert threshold_at_fpr(labels, scores, 0.01) == pytest.approx(0.985)
    # FPR <= 0.1 % with 100 reals means FPR = 0: only the fake above every real
    assert tpr_at_fpr(labels, scores, 0.001) == pytest.approx(0.2)
    assert tpr_at_fpr(labels, scores, 1.0) == 1.0
    summary = summarize_scores(labels, scores)
    assert summary["tpr@fpr=1%"] == pytest.approx(0.4) and summary["tpr@fpr=0.1%"] == pytest.approx(0.2)
    assert "tpr@fpr=0.1%" in summary["note"] and "tpr@fpr=1%:" not in summary["note"]


def test_tied_reals_at_the_cutoff_count_whole():
    # two reals tie with the top fake: no threshold reaches that fake without FPR 2/4 > 1/4
    labels = [0, 0, 0, 0, 1, 1]
    scores = [0.9, 0.9, 0.1, 0.2, 0.9, 0.5]
    assert tpr_at_fpr(labels, scores, 0.25) == 0.0
    assert tpr_at_fpr(labels, scores, 0.5) == 1.0


def test_single_class_gives_nan_and_a_note():
    labels, scores = [1, 1, 1], [0.2, 0.7, 0.9]
    assert math.isnan(roc_auc(labels, scores)) and math.isnan(average_precision(labels, scores))
    assert all(math.isnan(v) for v in eer(labels, scores))
    assert math.isnan(tpr_at_fpr(labels, scores, 0.01))
    summary = summarize_scores(labels, scores, ci=True, n_boot=20)
    assert math.isnan(summary["auc"]) and summary["acc"] == pytest.approx(2 / 3)
    assert "only fake samples" in summary["note"]
    assert all(math.isnan(v) for v in summary["auc_ci"])
    assert "auc" not in metric_values(summary) and metric_values(summary)["acc"] == pytest.approx(2 / 3)
    empty = summarize_scores([], [])
    assert empty["n"] == 0 and "no samples" in empty["note"]


def test_bad_input_is_one_clear_error():
    with pytest.raises(ValueError, match="labels must be 0"):
        roc_auc([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="2 labels but 3 scores"):
        eer([0, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="NaN or infinite"):
        summarize_scores([0, 1], [0.1, float("nan")])


def test_summary_keys_and_ci():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 400)
    scores = rng.normal(size=400) + 1.5 * labels
    summary = summarize_scores(labels, scores, threshold=0.75, ci=True, n_boot=200)
    for key in ("auc", "eer", "eer_threshold", "ap", "acc", "tpr@fpr=1%", "tpr@fpr=0.1%"):
        assert isinstance(summary[key], float)
    assert (summary["n"], summary["n_fake"] + summary["n_real"]) == (400, 400)
    for key in ("auc", "eer", "ap", "acc", "tpr@fpr=1%"):
        lo, hi = summary[f"{key}_ci"]
        assert lo <= summary[key] <= hi and lo < hi
    assert summary["acc"] == accuracy_at(labels, scores, 0.75)
    assert metric_values(summary, "val/")["val/auc_ci_lo"] == summary["auc_ci"][0]


def _correlated_frames(videos: int, frames: int, seed: int):
    """Frames within a video share a large random offset: they are nearly one observation, not `frames`."""
    rng = np.random.default_rng(seed)
    video_labels = np.arange(videos) % 2
    offsets = rng.normal(scale=1.5, size=videos)
    labels = np.repeat(video_labels, frames)
    scores = np.repeat(video_labels + offsets, frames) + rng.normal(scale=0.2, size=videos * frames)
    groups = np.repeat([f"v{i}" for i in range(videos)], frames)
    return labels, scores, groups


def test_bootstrap_contains_estimate_and_narrows_with_more_data():
    rng = np.random.default_rng(2)

    def data(n):
        labels = np.arange(n) % 2
        return labels, rng.normal(size=n) + labels

    small, large = data(60), data(3000)
    lo_s, hi_s = bootstrap_ci(roc_auc, *small, n_boot=300)
    lo_l, hi_l = bootstrap_ci(roc_auc, *large, n_boot=300)
    assert lo_s <= roc_auc(*small) <= hi_s and lo_l <= roc_auc(*large) <= hi_l
    assert (hi_l - lo_l) < 0.4 * (hi_s - lo_s)
    assert bootstrap_ci(roc_auc, *small, n_boot=300, seed=5) == bootstrap_ci(roc_auc, *small, n_boot=300, seed=5)


def test_grouped_bootstrap_is_wider_on_correlated_frames():
    labels, scores, groups = _correlated_frames(videos=24, frames=40, seed=3)
    lo_f, hi_f = bootstrap_ci(roc_auc, labels, scores, n_boot=300)
    lo_g, hi_g = bootstrap_ci(roc_auc, labels, scores, n_boot=300, groups=groups)
    assert lo_g <= roc_auc(labels, scores) <= hi_g
    assert (hi_g - lo_g) > 3 * (hi_f - lo_f)


def test_platt_calibration_reduces_ece():
    rng = np.random.default_rng(4)
    true_logits = rng.normal(scale=1.5, size=4000)
    labels = (rng.random(4000) < 1 / (1 + np.exp(-true_logits))).astype(int)
    raw = 4.0 * true_logits + 2.0                      # over-confident and biased towards fake
    fit, held_out = slice(0, 2000), slice(2000, None)
    params = fit_platt(labels[fit], raw[fit])
    assert params["a"] == pytest.approx(0.25, abs=0.05) and params["b"] == pytest.approx(-0.5, abs=0.15)
    before = expected_calibration_error(labels[held_out], apply_platt({"a": 1, "b": 0}, raw[held_out]))
    after = expected_calibration_error(labels[held_out], apply_platt(params, raw[held_out]))
    assert before > 0.1 and after < 0.04
    # a monotone map leaves the ranking alone
    assert roc_auc(labels, apply_platt(params, raw)) == pytest.approx(roc_auc(labels, raw))


def test_platt_survives_separable_data_and_refuses_one_class():
    params = fit_platt([0, 0, 0, 1, 1, 1], [-3.0, -2.0, -1.0, 1.0, 2.0, 3.0])
    assert 0 < params["a"] < 50 and all(math.isfinite(v) for v in params.values())
    assert np.all(np.isfinite(apply_platt(params, np.array([-1e6, 0.0, 1e6]))))
    with pytest.raises(ValueError, match="needs both real and fake"):
        fit_platt([1, 1], [0.3, 0.4])


def test_expected_calibration_error_by_hand():
    # bin [0.2, 0.3): mean prob 0.2, 1 of 2 fake -> |0.5 - 0.2| * 2/4; bin [0.9, 1]: 1.0 vs 1.0 -> 0
    assert expected_calibration_error([0, 1, 1, 1], [0.2, 0.2, 1.0, 1.0]) == pytest.approx(0.15)
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        expected_calibration_error([0, 1], [0.2, 1.5])


def test_calibrate_threshold():
    labels = [0, 0, 0, 0, 1, 1, 1, 1]
    scores = [0.1, 0.2, 0.4, 0.8, 0.3, 0.6, 0.7, 0.9]
    assert calibrate_threshold(labels, scores, "eer") == pytest.approx(0.6)
    # no real may be called fake at FPR 0: the threshold sits at the top fake, 0.9
    assert calibrate_threshold(labels, scores, "fpr", target_fpr=0.0) == pytest.approx(0.9)
    assert calibrate_threshold(labels, scores, "fpr", target_fpr=0.25) == pytest.approx(0.6)
    # the top score is a real: only "nothing is fake" has FPR 0; the threshold is finite, just above it
    top_real = calibrate_threshold([1, 0], [0.2, 0.7], "fpr", target_fpr=0.0)
    assert 0.7 < top_real < 0.7 + 1e-9
    with pytest.raises(ValueError, match="method must be"):
        calibrate_threshold(labels, scores, "best")
    with pytest.raises(ValueError, match="needs both"):
        calibrate_threshold([0, 0], [0.1, 0.2])


def test_video_scores_aggregates_and_checks_labels():
    groups = ["b", "a", "b", "a", "c"]
    ids, labels, scores = video_scores(groups, [0.2, 0.9, 0.4, 0.7, 0.5], [0, 1, 0, 1, 0])
    assert ids == ["b", "a", "c"]
    assert labels.tolist() == [0, 1, 0]
    assert scores == pytest.approx([0.3, 0.8, 0.5])
    _, _, maxima = video_scores(groups, [0.2, 0.9, 0.4, 0.7, 0.5], [0, 1, 0, 1, 0], aggregate=max)
    assert maxima == pytest.approx([0.4, 0.9, 0.5])
    with pytest.raises(ValueError, match="video 'a' has frames labelled both"):
        video_scores(groups, [0.2, 0.9, 0.4, 0.7, 0.5], [0, 1, 0, 0, 0])
