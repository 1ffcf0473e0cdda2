"""What a co-evolution run reports: the panel matrix (detector version x panel column, with bootstrap CIs),
each round's record (rounds.jsonl), summary.json, the MLflow metrics and figures, and the tables that
`forensics coevolve` and `forensics demo` print.

The matrix is read in three slices: white-box cells (the champion a generator version evaded, and the
candidate trained against it, on that version's column), memory (detectors on older versions' columns) and
native / product path (self-blends, the held-out family, all fakes together).

MLflow, per round (nested run) and on the parent at step=round: panel/<column> (the candidate's video AUC),
panel_champion/<column> (the champion it challenged), recovery/<g>, quality/<g>/<metric>, move/<g>/accepted,
evasion_weight/<g>, surrogate_gap/<g>/<what>, promotion/promoted (a column faceswap@G1 is written faceswap_at_G1:
MLflow names take no @); figures panel/matrix_round_XX.png and the matrix as JSON. The story of the game is
repeated under adversarial_game/ (champion and candidate on the union of panel fakes, promoted, and what each
generator's move took and the candidate won back): MLflow's chart view orders its sections by name, and this one
comes first, before the detector's and generators' training curves. On the parent, step images (a slider over
rounds, from round 0: D0 on the panel as set up, and G0's fakes): "panel matrix", "panel roc" (the champion and
the candidate on all panel fakes), and "new fakes/<g>", the real face of each of a few panel videos above the fake that
generator's new version made from it, crops as the detector sees them.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from detectors.checkpoint import LoadedDetector, load_detector
from detectors.meta import CLIP_KIND
from forensics.figures import figure_pixels, roc_figure, sample_grid
from forensics.harness.gate import cell
from forensics.harness.panel import UNION, Panel, PanelScorer
from forensics.io import append_jsonl, read_jsonl
from forensics.synthetic.faceset import FaceSet
from generators.evasion import ProductSurrogate
from generators.family import FakeBatch, GeneratorFamily

CI_LEVEL = 0.95


# ---------------------------------------------------------------------- the panel matrix

def matrix(scorer: PanelScorer, scores: dict[str, dict], columns: list[str], config) -> dict:
    """{detector: {column: {"auc", "ci", "n_real", "n_fake"}}} with 95% bootstrap intervals over videos."""
    return {name: {c: cell(*scorer.column(s, c), n=config.bootstrap, confidence=CI_LEVEL, seed=config.seed + k)
                   for k, c in enumerate(columns)} for name, s in scores.items()}


def surrogate_gap(family: GeneratorFamily, at: dict, faces: FaceSet, selection: FakeBatch,
                  surrogate: ProductSurrogate, champion: LoadedDetector, scorer: PanelScorer, panel: Panel,
                  column: str) -> dict:
    """How far the evasion's differentiable surrogate (crop-level fakes in sharp surroundings) is from the product
    path (the version's panel videos through the crop cache), judged by the champion: mean logit and share
    called real. `selection` names rows of `faces`, the faces the surrogate was built on."""
    loaded = family.load(at["checkpoint"])
    if champion.kind == CLIP_KIND:          # clips: each selected fake as a run, each panel video's clips
        length = int(champion.meta["detector"]["clip_len"])
        runs = selection.as_runs(faces, length)
        crops = surrogate.draw(family.draw_fakes(loaded, faces, runs))
        surrogate = champion.clip_logits(crops.reshape(-1, length, *crops.shape[1:]))[0]
        product = np.concatenate([champion.clip_logits(scorer.clips(v.path, length))[0] for v in panel.fakes(column)])
    else:
        crops = surrogate.draw(family.draw_fakes(loaded, faces, selection))
        surrogate = champion.logits(crops)
        product = np.concatenate([champion.logits(scorer.crops(v.path)) for v in panel.fakes(column)])
    threshold = champion.threshold_logit
    out = {"surrogate_mean_logit": float(surrogate.mean()), "product_mean_logit": float(product.mean()),
           "surrogate_called_real": float(np.mean(surrogate < threshold)),
           "product_called_real": float(np.mean(product < threshold))}
    out["mean_logit_gap"] = out["surrogate_mean_logit"] - out["product_mean_logit"]
    out["called_real_gap"] = out["surrogate_called_real"] - out["product_called_real"]
    return out


def heatmap_figure(table: dict, columns: list[str], title: str) -> Figure:
    """Detector versions (rows) x panel columns, AUC in each cell with its interval; 0.5 is the neutral colour."""
    rows = list(table)
    values = np.array([[table[r][c]["auc"] for c in columns] for r in rows], dtype=float)
    fig = Figure(figsize=(2.0 + 1.35 * len(columns), 1.3 + 0.6 * len(rows)), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    image = ax.imshow(values, cmap="RdYlGn", vmin=0.0, vmax=1.0, aspect="auto")
    for i, r in enumerate(rows):
        for j, c in enumerate(columns):
            low, high = table[r][c]["ci"]
            text = "n/a" if math.isnan(values[i, j]) else f"{values[i, j]:.2f}\n[{low:.2f}, {high:.2f}]"
            ax.text(j, i, text, ha="center", va="center", fontsize=8)
    ax.set_xticks(range(len(columns)), columns, rotation=25, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel("panel column (fakes vs the real test videos)")
    ax.set_ylabel("detector version")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, shrink=0.8, label="video AUC")
    return fig


# ---------------------------------------------------------------------- one round

HEADLINE = "adversarial_game"


def headline(adversary: str, candidate: str | None, table: dict, recovery: dict, promoted: bool) -> dict:
    """The round in a few numbers, under one section that sorts first in the MLflow UI (see the docstring)."""
    out = {f"{HEADLINE}/champion_union_auc": table[adversary][UNION]["auc"], f"{HEADLINE}/promoted": float(promoted)}
    if candidate:
        out[f"{HEADLINE}/candidate_union_auc"] = table[candidate][UNION]["auc"]
    for name, rec in recovery.items():
        out[f"{HEADLINE}/{name}_evasion_took"] = rec["evasion_took"]
        if rec["recovered"] is not None:
            out[f"{HEADLINE}/{name}_recovered"] = rec["recovered"]
    return out


def round_record(index: int, steps: dict, game: list[str], columns: list[str]) -> dict:
    """What rounds.jsonl keeps per round: the moves, the candidate, the panel row of both detectors, the
    recovery on the white-box cells, the surrogate gap and the promotion decision."""
    moves, panel = steps["generators"]["moves"], steps["panel"]
    table = panel["matrix"]
    adversary = steps["generators"]["adversary"]["name"]
    candidate = f"D{index}" if steps["detector"]["candidate"] else None
    recovery = {}
    for name in game:
        move = moves[name]
        before, after = f"{name}@G{move['from_version']}", f"{name}@G{move['to_version']}"
        taken = table[adversary][before]["auc"] - table[adversary][after]["auc"]
        regained = table[candidate][after]["auc"] - table[adversary][after]["auc"] if candidate else None
        recovery[name] = {"champion_before_move": table[adversary][before]["auc"],
                          "champion_after_move": table[adversary][after]["auc"], "evasion_took": taken,
                          "candidate_after_move": table[candidate][after]["auc"] if candidate else None,
                          "recovered": regained,
                          "recovered_share": regained / taken if regained is not None and taken > 0.005 else None}
    promotion = steps["promotion"]
    metrics = {f"panel_champion/{c}": table[adversary][c]["auc"] for c in columns}
    if candidate:
        metrics.update({f"panel/{c}": table[candidate][c]["auc"] for c in columns})
    for name in game:
        move = moves[name]
        metrics.update({f"move/{name}/accepted": float(move["status"] == "accepted"),
                        f"evasion_weight/{name}": move["evasion_weight"]})
        for key, value in (move["quality"] or {}).items():
            metrics[f"quality/{name}/{key}"] = value
        for key, value in recovery[name].items():
            if isinstance(value, float):
                metrics[f"recovery/{name}/{key}"] = value
        for key, value in panel["surrogate_gap"][name].items():
            metrics[f"surrogate_gap/{name}/{key}"] = value
    metrics["promotion/promoted"] = float(promotion["promoted"])
    metrics.update(headline(adversary, candidate, table, recovery, promotion["promoted"]))
    return {"round": index, "adversary": adversary, "candidate": candidate, "moves": {
                name: {k: moves[name][k] for k in ("status", "reason", "evasion_weight", "quality", "from_version",
                                                   "to_version", "checkpoint")} for name in game},
            "refused_calibration": steps["detector"]["refused"], "detector_epochs": steps["detector"]["epochs_run"],
            "pool": steps["detector"]["pool"], "champion_row": table[adversary],
            "candidate_row": table[candidate] if candidate else None, "recovery": recovery,
            "surrogate_gap": panel["surrogate_gap"], "promoted": promotion["promoted"],
            "decision": promotion["decision"]["reason"], "promotion": promotion,
            "seconds": {step: steps[step].get("seconds") for step in steps}, "metrics": metrics}


def log_round(run, parent, index: int, record: dict, panel_step: dict, scorer: PanelScorer | None = None) -> None:
    metrics = finite(record["metrics"])
    run.log_metrics(metrics, step=index)
    parent.log_metrics(metrics, step=index)
    table = panel_step["matrix"]
    columns = list(next(iter(table.values())))
    figure = heatmap_figure(table, columns, f"panel after round {index}: video AUC [95% CI]")
    for target in (run, parent):
        target.log_figure(figure, f"panel/matrix_round_{index:02d}.png")
        target.log_dict({"matrix": table, "slices": slices(table, record)}, f"panel/matrix_round_{index:02d}.json")
    parent.log_image_step(figure_pixels(figure), "panel matrix", index)     # the UI's slider walks the rounds
    if scorer is not None:
        named = {f"{role} {name}": load_detector(panel_step["detectors"][name])
                 for role, name in (("champion", record["adversary"]), ("candidate", record["candidate"]))
                 if name in panel_step["detectors"]}
        parent.log_image_step(union_roc(scorer, named, f"round {index}"), "panel roc", index)
    for name, move in (record["moves"] if scorer is not None else {}).items():
        grid = new_fakes_grid(scorer, f"{name}@G{move['to_version']}")
        if grid is not None:
            parent.log_image_step(grid, f"new fakes/{name}", index)
    run.log_dict(record, "round.json")


def log_start(parent, scorer: PanelScorer, d0: LoadedDetector, columns: list[str], config, game: list[str]) -> None:
    """Round 0 on the parent run: D0 on the panel as set up, and G0's fakes. The UI's image slider opens at
    step 0, so it opens on the starting position, and the champion's curve starts from D0."""
    table = matrix(scorer, {"D0": scorer.scores(d0)}, columns, config)
    parent.log_image_step(figure_pixels(heatmap_figure(table, columns, "panel at the start (round 0): video AUC "
                                                                       "[95% CI]")), "panel matrix", 0)
    parent.log_image_step(union_roc(scorer, {"D0": d0}, "the start (round 0)"), "panel roc", 0)
    for name in game:
        grid = new_fakes_grid(scorer, f"{name}@G0")
        if grid is not None:
            parent.log_image_step(grid, f"new fakes/{name}", 0)
    parent.log_metrics(finite({f"{HEADLINE}/champion_union_auc": table["D0"][UNION]["auc"]}), step=0)


def union_roc(scorer: PanelScorer, detectors: dict[str, LoadedDetector], when: str) -> np.ndarray:
    """ROC curves of the named detectors on the union of panel fakes against the real panel videos, as pixels."""
    curves = {}
    for label, detector in detectors.items():
        reals, fakes = scorer.column(scorer.scores(detector), UNION)
        curves[label] = (np.r_[np.zeros(len(reals)), np.ones(len(fakes))], np.r_[reals, fakes])
    return figure_pixels(roc_figure(curves, f"{when}: all panel fakes vs the real test videos"))


def new_fakes_grid(scorer: PanelScorer, column: str, n: int = 4) -> np.ndarray | None:
    """Up to n panel videos of `column`: the real target's middle face crop above the fake's, as the detector
    sees them (None when the column has no fake with a known target)."""
    pairs = [(v.target, v.path) for v in scorer.panel.fakes(column) if v.target][:n]
    if not pairs:
        return None
    middle = [[crops[len(crops) // 2] for crops in (scorer.crops(real), scorer.crops(fake))] for real, fake in pairs]
    images = [pair[0] for pair in middle] + [pair[1] for pair in middle]
    captions = [f"real {i + 1}" for i in range(len(pairs))] + [f"{column} {i + 1}" for i in range(len(pairs))]
    return sample_grid(images, captions, ncols=len(pairs), cell=112)


def slices(table: dict, record: dict) -> dict:
    """The matrix's three slices for one round (see the module docstring)."""
    whitebox, memory = {}, {}
    for name, rec in record["recovery"].items():
        move = record["moves"][name]
        column = f"{name}@G{move['to_version']}"
        whitebox[name] = {"column": column, "champion": rec["champion_after_move"],
                          "candidate": rec["candidate_after_move"]}
        older = [c for c in table[record["adversary"]] if c.startswith(f"{name}@G") and c != column]
        memory[name] = {c: {d: row[c]["auc"] for d, row in table.items()} for c in older}
    native = {c: {d: row[c]["auc"] for d, row in table.items()} for c in next(iter(table.values()))
              if "@G" not in c}
    return {"white_box": whitebox, "memory": memory, "native_and_product": native}


# ---------------------------------------------------------------------- files and tables

def summary_document(config, records: list[dict], doc: dict, parent, panel: Panel) -> dict:
    """summary.json: the config, every round's record, the champion, the panel with its matrix after the last
    round (every detector version on every column) and where the runs are."""
    last = str(records[-1]["round"]) if records else None
    matrix = doc["rounds"][last]["steps"]["panel"]["matrix"] if last else None
    return {"config": config.to_dict(), "config_hash": config.config_hash(), "rounds": records,
            "champion": doc.get("champion"), "setup": doc.get("setup"), "panel_hash": panel.digest(),
            "panel_columns": panel.columns, "panel_matrix": matrix, "panel_no_face": panel.no_face,
            "parent_run_id": parent.run_id, "tracking_uri": parent.tracking_uri}


def finite(metrics: dict) -> dict[str, float]:
    """The finite numbers of a metrics dict, as floats (what MLflow accepts)."""
    return {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and np.isfinite(v)}


def append_once(path: Path, record: dict) -> None:
    """Append a round's record unless a record of that round is there already (a resumed close)."""
    if not any(r.get("round") == record["round"] for r in read_jsonl(path)):
        append_jsonl(path, record)


def step_brief(step: str, record: dict) -> str:
    """One line for a finished step."""
    if step == "generators":
        return ", ".join(f"{n} {m['status']} (weight {m['evasion_weight']:g})" for n, m in record["moves"].items())
    if step == "fakes":
        return ", ".join(f"{n} v{m['version']}: {m['fit']} fit, {m['val']} val" + (f", {m['panel']} panel"
                                                                                    if "panel" in m else "")
                         for n, m in record["made"].items())
    if step == "detector":
        if record["refused"]:
            return f"candidate refused ({record['refused']})"
        return f"candidate {record['candidate']} (best epoch {record['best_epoch']} of {record['epochs_run']})"
    if step == "panel":
        return f"{len(record['detectors'])} detector(s) scored"
    return record["decision"]["reason"]


def matrix_table(table: dict, columns: list[str]) -> str:
    """The matrix as text: one row per detector, AUC [95% CI] per column, columns as wide as their widest cell."""
    def text(value: dict) -> str:
        auc, (low, high) = value["auc"], value["ci"]
        return "n/a" if auc != auc else f"{auc:.2f} [{low:.2f},{high:.2f}]"

    cells = {name: [text(row[c]) for c in columns] for name, row in table.items()}
    widths = [max([len(c)] + [len(r[k]) for r in cells.values()]) for k, c in enumerate(columns)]
    lines = [f"{'detector':<9}" + "".join(f"  {c:>{w}}" for c, w in zip(columns, widths))]
    for name, row in cells.items():
        lines.append(f"{name:<9}" + "".join(f"  {t:>{w}}" for t, w in zip(row, widths)))
    return "\n".join(lines)


def rounds_table(records: list[dict]) -> str:
    """Per round: each generator's move, the candidate's and the champion's video AUC on every panel column,
    and the promotion decision."""
    lines = []
    for record in records:
        moves = "; ".join(f"{n} {m['status']} -> G{m['to_version']} (weight {m['evasion_weight']:g})"
                          for n, m in record["moves"].items())
        lines.append(f"round {record['round']}: champion {record['adversary']}; moves: {moves}")
        columns = list(record["champion_row"])
        width = max(10, *(len(c) for c in columns))
        lines.append(f"  {'':<12}" + "".join(f"{c:>{width + 1}}" for c in columns))
        rows = [(record["adversary"] + " (champ.)", record["champion_row"])]
        if record["candidate_row"]:
            rows.append((record["candidate"] + " (cand.)", record["candidate_row"]))
        for label, row in rows:
            lines.append(f"  {label:<12}" + "".join(f"{_num(row[c]['auc']):>{width + 1}}" for c in columns))
        for name, rec in record["recovery"].items():
            share = rec["recovered_share"]
            lines.append(f"  {name}: evasion took {_num(rec['evasion_took'])} AUC, the candidate regained "
                         f"{_num(rec['recovered'])}" + (f" ({100 * share:.0f}%)" if share is not None else ""))
        lines.append(f"  decision: {record['decision']}")
    return "\n".join(lines)


def _num(value) -> str:
    return "n/a" if value is None or value != value else f"{value:.3f}"
