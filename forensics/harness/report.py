"""What a co-evolution run reports: the per-round record (rounds.jsonl), summary.json, and the rounds table
that `forensics coevolve` and `forensics demo` print."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from forensics.harness.evaluate import SBI
from forensics.harness.state import STEPS
from forensics.io import append_jsonl, read_jsonl


def round_record(index: int, steps: dict, kinds: dict[str, str]) -> dict:
    """What rounds.jsonl keeps per round: per generator AUC/evasion before, retrained, after; the guard."""
    families = {}
    for name, family in kinds.items():
        rec = {"family": family}
        for step in ("before", "retrained", "after"):
            summary = steps[step]["summary"][name]
            for key in ("auc", "eer", "ap", "evasion_rate", "mean_fake_prob"):
                rec[f"{key.replace('_rate', '')}_{step}"] = summary.get(key)
        gen = steps["generators"]["families"][name]
        rec.update({k: gen[k] for k in ("quality_guard", "evasion_weight", "quality_metric", "quality_before",
                                        "quality_after", "checkpoint")})
        families[name] = rec
    sbi = {f"{k}_{step}": steps[step]["summary"][SBI].get(k) for step in ("before", "retrained")
           for k in ("auc", "evasion_rate")}
    metrics = {}
    for step in STEPS:
        metrics.update(steps[step].get("metrics", {}))
        metrics[f"time/{step}_s"] = steps[step].get("seconds", 0.0)
    return {"round": index, "families": families, "sbi": sbi, "detector": steps["detector"]["path"],
            "threshold": steps["detector"]["threshold"],
            "seconds": {step: steps[step].get("seconds") for step in STEPS}, "metrics": metrics}


def summary_document(config, records: list[dict], champion: dict, parent, held_out: list[int], crop: dict) -> dict:
    """summary.json: the config, every round's record, the champion and where the runs are."""
    return {"config": config.to_dict(), "config_hash": config.config_hash(), "rounds": records,
            "champion": champion, "parent_run_id": parent.run_id, "tracking_uri": parent.tracking_uri,
            "held_out": held_out, "crop": crop}


def finite(metrics: dict) -> dict[str, float]:
    """The finite numbers of a metrics dict, as floats (what MLflow accepts)."""
    return {k: float(v) for k, v in metrics.items() if v is not None and np.isfinite(v)}


def append_once(path: Path, record: dict) -> None:
    """Append a round's record unless a record of that round is there already (a resumed close)."""
    if not any(r.get("round") == record["round"] for r in read_jsonl(path)):
        append_jsonl(path, record)


def step_brief(record: dict) -> str:
    """One line for a finished step: AUCs, the saved path, or its first metrics."""
    summary = record.get("summary")
    if summary:
        return ", ".join(f"{n} AUC {v['auc']:.3f}" for n, v in summary.items() if v.get("auc") is not None)
    if "path" in record:
        return f"-> {record['path']}"
    return ", ".join(f"{k}={v:g}" for k, v in list(record.get("metrics", {}).items())[:4])


def rounds_table(records: list[dict]) -> str:
    """Per round and generator: AUC and evasion rate before / after retraining / after the generator's evasion
    fine-tune, and what the quality guard decided."""
    header = (f"{'round':>5}  {'generator':<12} {'AUC: before':>11} {'retrained':>9} {'evaded':>7}   "
              f"{'evasion: before':>15} {'retrained':>9} {'evaded':>7}   {'quality guard':<13} {'weight':>6}")
    lines = [header, "-" * len(header)]
    for record in records:
        for name, f in record["families"].items():
            lines.append(f"{record['round']:>5}  {name:<12} {_num(f['auc_before']):>11} {_num(f['auc_retrained']):>9} "
                         f"{_num(f['auc_after']):>7}   {_pct(f['evasion_before']):>15} "
                         f"{_pct(f['evasion_retrained']):>9} {_pct(f['evasion_after']):>7}   "
                         f"{f['quality_guard']:<13} {f['evasion_weight']:>6.3g}")
        sbi = record.get("sbi") or {}
        lines.append(f"{record['round']:>5}  {'sbi':<12} {_num(sbi.get('auc_before')):>11} "
                     f"{_num(sbi.get('auc_retrained')):>9} {'':>7}   {_pct(sbi.get('evasion_rate_before')):>15} "
                     f"{_pct(sbi.get('evasion_rate_retrained')):>9}")
    return "\n".join(lines)


def _num(value) -> str:
    return "n/a" if value is None or value != value else f"{value:.3f}"


def _pct(value) -> str:
    return "n/a" if value is None or value != value else f"{100 * value:.1f}%"
