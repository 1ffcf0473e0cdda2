"""Figures for runs and reports: ROC / PR curves, confusion matrix, sample grids, AUC per round, score timelines.

Figures are built as ``matplotlib.figure.Figure`` objects on an explicit Agg canvas, never through pyplot:
no display is needed, the process-wide backend is left alone, and pyplot's global figure registry cannot
grow during a long training run. Callers may still ``plt.close(fig)``; dropping the reference is enough.
``sample_grid`` returns a numpy image (cv2 only), because sample grids are logged as images, not plots.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import cv2
import numpy as np
from matplotlib import rcParams
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from forensics.metrics.ranking import RocPoints, check_inputs

Curves = Mapping[str, tuple[Sequence, Sequence]]   # name -> (labels 0/1, scores)


def figure_pixels(fig: Figure) -> np.ndarray:
    """The figure rendered as uint8 RGB (HxWx3), for image logs that take pixels (MLflow step images)."""
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    canvas.draw()
    return np.ascontiguousarray(np.asarray(canvas.buffer_rgba())[..., :3])


def _figure(width: float, height: float) -> tuple[Figure, Axes]:
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _curve_points(name: str, labels, scores) -> RocPoints | None:
    return RocPoints.of(*check_inputs(labels, scores, f"curve {name!r}"))


def roc_figure(curves: Curves, title: str = "", log_fpr: bool = False) -> Figure:
    """ROC curves with AUC in the legend and the chance diagonal.

    ``log_fpr`` spreads out the low-FPR region where deployed detectors operate; FPR = 0 cannot be drawn on a
    log axis, so it is drawn at half the finest FPR any curve can resolve (0.5 / its number of reals).
    """
    fig, ax = _figure(5.0, 5.0)
    points = {name: _curve_points(name, *pair) for name, pair in curves.items()}
    finest = min((0.5 / p.n_real for p in points.values() if p is not None), default=1e-3)
    for name, p in points.items():
        if p is None:
            ax.plot([], [], label=f"{name} (one class: no curve)")
            continue
        fpr = np.maximum(p.fpr, finest) if log_fpr else p.fpr
        ax.plot(fpr, p.tpr, linewidth=1.6, label=f"{name} (AUC = {p.auc():.3f})")
    chance = np.logspace(np.log10(finest), 0.0, 64) if log_fpr else np.array([0.0, 1.0])
    ax.plot(chance, chance, linestyle=":", color="grey", linewidth=1, label="chance")
    if log_fpr:
        ax.set_xscale("log")
        ax.set_xlim(finest, 1.0)
    else:
        ax.set_xlim(0.0, 1.0)
        ax.set_aspect("equal")
    ax.set_ylim(0.0, 1.01)
    ax.set_xlabel("false positive rate (reals called fake)")
    ax.set_ylabel("true positive rate (fakes caught)")
    ax.set_title(title or "ROC")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    return fig


def pr_figure(curves: Curves, title: str = "") -> Figure:
    """Precision-recall curves (fake = positive) with AP in the legend; dotted line = that set's fake share,
    the precision of guessing."""
    fig, ax = _figure(5.0, 5.0)
    for name, pair in curves.items():
        p = _curve_points(name, *pair)
        if p is None:
            ax.plot([], [], label=f"{name} (one class: no curve)")
            continue
        tp, fp = p.tpr * p.n_fake, p.fpr * p.n_real
        precision = tp[1:] / np.maximum(tp[1:] + fp[1:], 1e-12)
        recall = p.tpr[1:]
        # AP is a step sum: precision P_i holds over the recall interval (r_{i-1}, r_i]
        line, = ax.step(np.r_[0.0, recall], np.r_[precision[0], precision], where="pre", linewidth=1.6,
                        label=f"{name} (AP = {p.average_precision():.3f})")
        ax.axhline(p.n_fake / (p.n_fake + p.n_real), linestyle=":", linewidth=1, color=line.get_color())
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, 1.01)
    ax.set_xlabel("recall (fakes caught)")
    ax.set_ylabel("precision (called fake that are fake)")
    ax.set_title(title or "precision-recall")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize="small")
    return fig


def confusion_figure(labels, preds, names: Sequence[str] = ("real", "fake"), title: str = "") -> Figure:
    """Confusion matrix: counts and row-normalised % (of each true class) in every cell."""
    k = len(names)
    y = np.asarray(labels).reshape(-1).astype(np.int64)
    p = np.asarray(preds).reshape(-1).astype(np.int64)
    if y.shape != p.shape:
        raise ValueError(f"confusion_figure: {y.size} labels but {p.size} predictions")
    for what, values in (("labels", y), ("predictions", p)):
        if values.size and (values.min() < 0 or values.max() >= k):
            raise ValueError(f"confusion_figure: {what} must be class indices 0..{k - 1} for names {list(names)}")
    counts = np.zeros((k, k), np.int64)
    np.add.at(counts, (y, p), 1)
    rows = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, rows, out=np.zeros((k, k)), where=rows > 0)
    fig, ax = _figure(1.2 * k + 2.0, 1.2 * k + 1.4)
    ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    for i in range(k):
        for j in range(k):
            ax.text(j, i, f"{counts[i, j]}\n{100 * share[i, j]:.1f}%", ha="center", va="center",
                    color="white" if share[i, j] > 0.5 else "black", fontsize="medium")
    ax.set_xticks(range(k), labels=list(names))
    ax.set_yticks(range(k), labels=list(names))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or f"confusion (n = {y.size})")
    return fig


def auc_rounds_figure(rounds: Sequence[int], before: Mapping[str, Sequence[float]],
                      after: Mapping[str, Sequence[float]], title: str = "") -> Figure:
    """Co-evolution: detector AUC on each generator's fakes per round, before (dashed) and after (solid) the
    detector trained on them. A falling dashed line means the generator is learning to evade."""
    fig, ax = _figure(9.0, 4.0)
    colours = rcParams["axes.prop_cycle"].by_key()["color"]
    names = list(dict.fromkeys([*before, *after]))
    for n, name in enumerate(names):
        colour = colours[n % len(colours)]
        for series, style, marker, when in ((before, "--", "o", "before"), (after, "-", "s", "after")):
            if name not in series:
                continue
            values = list(series[name])
            if len(values) != len(rounds):
                raise ValueError(f"auc_rounds_figure: {when}[{name!r}] has {len(values)} values "
                                 f"for {len(rounds)} rounds")
            ax.plot(list(rounds), values, linestyle=style, marker=marker, color=colour,
                    label=f"{name} ({when} detector update)")
    ax.axhline(0.5, linestyle=":", color="grey", linewidth=1, label="chance")
    ax.set_xticks(list(rounds))
    ax.set_ylim(0.0, 1.02)
    ax.set_xlabel("round")
    ax.set_ylabel("detector ROC AUC")
    ax.set_title(title or "detector AUC per round")
    ax.grid(alpha=0.3)
    # Beside the axes, not on them: inside, it covered the round-1 points it labels.
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, fontsize="small")
    return fig


def score_timeline_figure(tracks: Mapping[object, tuple[Sequence[float], Sequence[float]]], threshold: float,
                          title: str = "", temporal: Mapping[object, tuple[Sequence[float], Sequence[float]]]
                          | None = None) -> Figure:
    """Fake probability over time for each face track, with the decision threshold as a line. `temporal`:
    the clip detector's per-frame attribution of the same tracks, drawn dashed in the track's colour."""
    fig, ax = _figure(8.0, 3.0)
    for track_id, (times, scores) in tracks.items():
        t = np.asarray(times, dtype=np.float64).reshape(-1)
        s = np.asarray(scores, dtype=np.float64).reshape(-1)
        if t.shape != s.shape:
            raise ValueError(f"score_timeline_figure: track {track_id} has {t.size} times but {s.size} scores")
        order = np.argsort(t, kind="stable")
        label = f"track {track_id}" + (" (frame)" if temporal else "")
        (line,) = ax.plot(t[order], s[order], marker=".", markersize=4, linewidth=1.2, label=label)
        if temporal and track_id in temporal:
            tt, ts = (np.asarray(v, dtype=np.float64).reshape(-1) for v in temporal[track_id])
            ax.plot(tt, ts, linestyle="--", marker="x", markersize=3, linewidth=1.2, color=line.get_color(),
                    label=f"track {track_id} (clip)")
    ax.axhline(threshold, linestyle="--", color="red", linewidth=1, label=f"threshold {threshold:.2f}")
    if not tracks:
        ax.text(0.5, 0.5, "no faces found", ha="center", va="center", transform=ax.transAxes, color="grey")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("fake probability")
    ax.set_title(title or "score over time")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", ncols=1 + len(tracks) // 12)
    return fig


def sample_grid(images: Sequence[np.ndarray], captions: Sequence[str] | None = None, ncols: int = 8,
                cell: int = 96) -> np.ndarray:
    """Images letterboxed into ``cell`` x ``cell`` tiles, ``min(ncols, len(images))`` per row, uint8 RGB.

    With captions each tile gets a dark strip below it with its caption (shortened to fit). Shape:
    (rows * (cell + strip), columns * cell, 3) with strip = ``caption_strip_height(cell)`` or 0.
    """
    if len(images) == 0:
        raise ValueError("sample_grid: no images")
    if captions is not None and len(captions) != len(images):
        raise ValueError(f"sample_grid: {len(captions)} captions for {len(images)} images")
    if ncols < 1 or cell < 8:
        raise ValueError(f"sample_grid: need ncols >= 1 and cell >= 8, got ncols={ncols}, cell={cell}")
    columns = min(ncols, len(images))
    rows = -(-len(images) // columns)
    strip = caption_strip_height(cell) if captions is not None else 0
    grid = np.full((rows * (cell + strip), columns * cell, 3), 24, np.uint8)
    for i, image in enumerate(images):
        top, left = (i // columns) * (cell + strip), (i % columns) * cell
        grid[top:top + cell, left:left + cell] = _letterbox(_as_rgb(image, i), cell)
        if captions is not None:
            grid[top + cell:top + cell + strip, left:left + cell] = _caption_strip(str(captions[i]), cell, strip)
    return grid


def caption_strip_height(cell: int) -> int:
    return max(12, cell // 6)


def _as_rgb(image: np.ndarray, i: int) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"sample_grid: image {i} must be uint8, got {image.dtype}")
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        return np.repeat(image.reshape(image.shape[0], image.shape[1], 1), 3, axis=2)
    if image.ndim == 3 and image.shape[2] in (3, 4):
        return image[:, :, :3]
    raise ValueError(f"sample_grid: image {i} must be HxW, HxWx3 or HxWx4, got shape {image.shape}")


def _letterbox(image: np.ndarray, cell: int) -> np.ndarray:
    """Fit inside cell x cell keeping the aspect ratio (faces must not be squashed), centred on dark grey."""
    h, w = image.shape[:2]
    scale = cell / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    resized = cv2.resize(np.ascontiguousarray(image), (nw, nh),
                         interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    tile = np.full((cell, cell, 3), 24, np.uint8)
    y0, x0 = (cell - nh) // 2, (cell - nw) // 2
    tile[y0:y0 + nh, x0:x0 + nw] = resized
    return tile


def _caption_strip(text: str, width: int, height: int) -> np.ndarray:
    """A dark width x height strip with ``text`` in it, cut and ended with '..' until it fits."""
    font, scale = cv2.FONT_HERSHEY_SIMPLEX, height / 36.0
    text = text.encode("ascii", "replace").decode("ascii")   # Hershey fonts have no glyphs beyond ASCII

    def fits(candidate: str) -> bool:
        return cv2.getTextSize(candidate, font, scale, 1)[0][0] <= width - 4

    fitted = text
    while text and not fits(fitted):
        text = text[:-1]
        fitted = text + ".."
    strip = np.zeros((height, width, 3), np.uint8)
    if fitted and fits(fitted):
        text_h = cv2.getTextSize(fitted, font, scale, 1)[0][1]
        cv2.putText(strip, fitted, (2, (height + text_h) // 2), font, scale, (235, 235, 235), 1, cv2.LINE_AA)
    return strip
