"""The same game under several seeds, so a figure comes with its spread: is a gain signal or noise?

Each seed is a full run in OUT/seed_<s> (resumable like any run; nothing is registered). The aggregate
reports, per round and panel column, the candidate's and the champion's video AUC as mean, standard deviation
and range over seeds, the promotions, and D0 against the final champion on every column.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from forensics.harness.rounds import run_coevolution
from forensics.io import atomic_write_json, atomic_write_text


def run_seeds(config, out_dir: str | Path, seeds: list[int], progress: bool = True) -> dict | None:
    """Run the game once per seed and write OUT/seeds.json and OUT/seeds.md; returns the aggregate (under
    torchrun, on rank 0; the other ranks train the detector's moves and return None)."""
    out_dir = Path(out_dir)
    if len(set(seeds)) != len(seeds) or not seeds:
        raise ValueError(f"coevolve: --seeds must list distinct seeds, got {seeds}")
    summaries = {}
    for seed in seeds:
        records = run_coevolution(dataclasses.replace(config, seed=int(seed)), out_dir / f"seed_{seed}",
                                  register=False, progress=progress, run_name=f"coevolve-seed-{seed}")
        if records is None:          # a torchrun rank other than 0
            continue
        summaries[seed] = json.loads((out_dir / f"seed_{seed}" / "summary.json").read_text())
    if not summaries:
        return None
    aggregate = aggregate_seeds(summaries)
    atomic_write_json(out_dir / "seeds.json", aggregate)
    atomic_write_text(out_dir / "seeds.md", seeds_table(aggregate) + "\n")
    return aggregate


def aggregate_seeds(summaries: dict[int, dict]) -> dict:
    """Mean, standard deviation and range over seeds of every round's panel AUCs, and D0 vs the final champion
    on every column of the final panel (both read from the last round's matrix, which scores every version on
    columns added after D0's own rounds)."""
    rounds: dict[int, dict] = {}
    final: dict[str, dict[str, list[float]]] = {}
    for seed, summary in summaries.items():
        for record in summary["rounds"]:
            entry = rounds.setdefault(record["round"], {"champion": {}, "candidate": {}, "promoted": []})
            entry["promoted"].append(bool(record["promoted"]))
            for role, row in (("champion", record["champion_row"]), ("candidate", record["candidate_row"] or {})):
                for column, value in row.items():
                    entry[role].setdefault(column, []).append(value["auc"])
        matrix = summary["panel_matrix"]           # after the last round: every version on every column
        for column in summary["panel_columns"]:
            entry = final.setdefault(column, {"D0": [], "champion": []})
            entry["D0"].append(matrix["D0"][column]["auc"])
            entry["champion"].append(matrix[summary["champion"]["name"]][column]["auc"])
    spread = lambda xs: {"mean": float(np.mean(xs)), "sd": float(np.std(xs, ddof=1)) if len(xs) > 1 else 0.0,  # noqa: E731
                         "min": float(np.min(xs)), "max": float(np.max(xs)), "n": len(xs)}
    return {"seeds": sorted(summaries),
            "rounds": {r: {"promoted": sum(e["promoted"]), "runs": len(e["promoted"]),
                           **{role: {c: spread(v) for c, v in e[role].items()} for role in ("champion", "candidate")}}
                       for r, e in sorted(rounds.items())},
            "final": {c: {who: spread(v) for who, v in d.items() if v} for c, d in final.items()}}


def seeds_table(aggregate: dict) -> str:
    """The aggregate as markdown: per round the candidate's AUC per column (mean ± sd over seeds), then D0
    against the final champion."""
    lines = [f"Seeds: {', '.join(map(str, aggregate['seeds']))}", ""]
    for index, entry in aggregate["rounds"].items():
        columns = list(entry["candidate"]) or list(entry["champion"])
        lines += [f"Round {index} (promoted in {entry['promoted']} of {entry['runs']} runs)", "",
                  "| detector | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
        for role in ("champion", "candidate"):
            if entry[role]:
                lines.append(f"| {role} | " + " | ".join(_pm(entry[role].get(c)) for c in columns) + " |")
        lines.append("")
    columns = list(aggregate["final"])
    lines += ["D0 against the final champion (video AUC on the panel, mean ± sd over seeds, [min, max])", "",
              "| | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for who in ("D0", "champion"):
        lines.append(f"| {who} | " + " | ".join(_pm(aggregate["final"][c].get(who), span=True) for c in columns) + " |")
    return "\n".join(lines)


def _pm(stats: dict | None, span: bool = False) -> str:
    if not stats:
        return "n/a"
    text = f"{stats['mean']:.3f} ± {stats['sd']:.3f}"
    return text + (f" [{stats['min']:.3f}, {stats['max']:.3f}]" if span else "")
