"""forensics.figures: real figures on small generated scores, rendered to PNG bytes."""
from __future__ import annotations

import io

import numpy as np
import pytest
from matplotlib.figure import Figure

from forensics.figures import (auc_rounds_figure, caption_strip_height, confusion_figure, pr_figure,
                                        roc_figure, sample_grid, score_timeline_figure)


def _scores(n: int, shift: float, seed: int):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    return labels, rng.normal(size=n) + shift * labels


def _legend(fig: Figure) -> list[str]:
    return [t.get_text() for t in fig.axes[0].get_legend().get_texts()]


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def test_roc_figure_legend_axes_and_render():
    perfect = ([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9])
    curves = {"perfect": perfect, "noisy": _scores(200, 1.0, 0), "fakes only": ([1, 1], [0.3, 0.6])}
    fig = roc_figure(curves, title="val")
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    legend = _legend(fig)
    assert legend[0] == "perfect (AUC = 1.000)"
    assert legend[1].startswith("noisy (AUC = 0.")
    assert legend[2] == "fakes only (one class: no curve)" and legend[3] == "chance"
    ax = fig.axes[0]
    assert ax.get_title() == "val" and "false positive rate" in ax.get_xlabel()
    assert ax.get_xscale() == "linear"
    assert _png(fig).startswith(b"\x89PNG")


def test_roc_figure_log_fpr():
    fig = roc_figure({"noisy": _scores(200, 1.0, 1)}, log_fpr=True)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    assert ax.get_xlim()[0] == pytest.approx(0.5 / 100)      # half of 1/n_real: where FPR = 0 is drawn
    assert len(_png(fig)) > 1000


def test_pr_figure_shows_ap():
    fig = pr_figure({"example": ([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.6])}, title="pr")
    assert _legend(fig) == ["example (AP = 0.833)"]
    assert fig.axes[0].get_xlabel().startswith("recall")
    _png(fig)


def test_confusion_figure_counts_and_row_percentages():
    labels = [0, 0, 0, 0, 1, 1]
    preds = [0, 0, 0, 1, 1, 1]
    fig = confusion_figure(labels, preds)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts == ["3\n75.0%", "1\n25.0%", "0\n0.0%", "2\n100.0%"]
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["real", "fake"]
    with pytest.raises(ValueError, match="class indices 0..1"):
        confusion_figure([0, 2], [0, 1])


def test_auc_rounds_figure():
    fig = auc_rounds_figure([1, 2, 3], before={"swap": [0.9, 0.7, 0.6]}, after={"swap": [0.95, 0.9, 0.85]})
    legend = _legend(fig)
    assert legend == ["swap (before detector update)", "swap (after detector update)", "chance"]
    lines = fig.axes[0].get_lines()
    assert lines[0].get_ydata().tolist() == [0.9, 0.7, 0.6] and lines[0].get_color() == lines[1].get_color()
    with pytest.raises(ValueError, match=r"after\['swap'\] has 2 values for 3 rounds"):
        auc_rounds_figure([1, 2, 3], before={}, after={"swap": [0.5, 0.6]})


def test_score_timeline_figure():
    tracks = {0: ([0.0, 0.5, 1.0], [0.1, 0.2, 0.3]), 1: ([1.0, 0.0], [0.9, 0.8])}
    fig = score_timeline_figure(tracks, threshold=0.42, title="clip.mp4")
    assert _legend(fig) == ["track 0", "track 1", "threshold 0.42"]
    assert fig.axes[0].get_lines()[1].get_xdata().tolist() == [0.0, 1.0]   # drawn in time order
    empty = score_timeline_figure({}, threshold=0.5)
    assert "no faces found" in [t.get_text() for t in empty.axes[0].texts]
    _png(fig)


def test_sample_grid_shape_letterbox_and_captions():
    images = [np.full((64, 64, 3), 200, np.uint8), np.full((40, 80, 3), 100, np.uint8),
              np.full((50, 50), 255, np.uint8)]
    grid = sample_grid(images, ncols=2, cell=32)
    assert grid.shape == (2 * 32, 2 * 32, 3) and grid.dtype == np.uint8
    assert np.all(grid[:32, :32] == 200)
    wide = grid[:32, 32:64]                                  # 80x40 letterboxed: 16 rows of image, centred
    assert np.all(wide[8:24] == 100) and np.all(wide[:8] == 24)
    assert np.all(grid[32:, :32] == 255) and np.all(grid[32:, 32:] == 24)   # empty last tile stays background

    captioned = sample_grid(images, captions=["fake 0.99", "real 0.97 and a caption far too long", "x"], cell=96)
    strip = caption_strip_height(96)
    assert captioned.shape == (96 + strip, 3 * 96, 3)
    assert captioned[96:, :96].max() > 150                   # text was drawn in the strip
    assert captioned[96:, 190:192].max() < 60               # the long caption was cut before the tile's edge


def test_sample_grid_rejects_bad_input():
    with pytest.raises(ValueError, match="no images"):
        sample_grid([])
    with pytest.raises(ValueError, match="2 captions for 1 images"):
        sample_grid([np.zeros((8, 8, 3), np.uint8)], captions=["a", "b"])
    with pytest.raises(ValueError, match="must be uint8"):
        sample_grid([np.zeros((8, 8, 3), np.float32)])
