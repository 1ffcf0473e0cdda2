"""A detector's model card: what it is, what it was trained on, and what it scored, from its own checkpoint.

Everything comes from config.json (detectors.save_detector's meta) and, for a registered version, the registry's
facts, so the card cannot drift from the model. It is honest in the two ways users need: the training footage
comes first (a model that never saw a real face says so), and figures are the ones measured, with their
intervals where the checkpoint has them; a figure the checkpoint does not hold is "not recorded", never guessed.
"""
from __future__ import annotations

import json
from pathlib import Path

from forensics.model_lookup import BUNDLE_FILE
from forensics.provenance import SYNTHETIC_ONLY

NOT_RECORDED = "not recorded"
FIGURES = (("val", "video_auc", "validation video AUC"), ("test", "video_auc", "test video AUC (unseen identities)"),
           ("test", "frame_auc", "test frame AUC"), ("test", "video_eer", "test video EER"))


def model_card(model_dir: str | Path, registered: dict | None = None) -> dict:
    """The card of the detector (or bundle) in `model_dir`; `registered` is its registry entry (version, aliases,
    tags)."""
    model_dir = Path(model_dir)
    if (model_dir / BUNDLE_FILE).is_file():
        return bundle_card(model_dir, registered)
    return card_of(json.loads((model_dir / "config.json").read_text(encoding="utf-8")), model_dir, registered)


def bundle_card(model_dir: Path, registered: dict | None = None) -> dict:
    """A bundle's card: its frame member's card (footage, training) with the bundle's own name, fused threshold,
    calibration and validation AUC; each member's figures stay on its own line (they are not the bundle's)."""
    config = json.loads((model_dir / BUNDLE_FILE).read_text(encoding="utf-8"))
    members = {role: model_card(model_dir / str(folder)) for role, folder in (config.get("members") or {}).items()}
    base = dict(members.get("frame") or next(iter(members.values())))
    fusion = config.get("fusion") or {}
    footage = {card["trained_on"] for card in members.values()}
    auc = (fusion.get("validation_auc_by_rule") or {}).get(fusion.get("rule"))
    videos = (fusion.get("validation") or {}).get("videos") or {}
    training = {"finished": f"members fused ({fusion.get('rule')}) on {sum(videos.values())} validation videos"
                if videos else NOT_RECORDED, "run_id": None, "lr": None, "epochs_run": None,
                "train_videos": base["training"].get("train_videos"), "data_hash": base["training"].get("data_hash")}
    return {**base, "name": config.get("name") or "+".join(card["name"] for card in members.values()),
            "training": training, "gate": None, "git_commit": None,
            "path": str(model_dir.resolve()), "registered": registered, "weights_sha256": None,
            "trained_on": footage.pop() if len(footage) == 1 else "; ".join(
                f"{role}: {card['trained_on']}" for role, card in members.items()),
            "threshold": fusion.get("threshold"), "calibration": {k: fusion.get(k) for k in ("a", "b")},
            "figures": {"fused validation video AUC": auc}, "test_by_kind": {},     # the members' own are theirs
            "fusion": fusion.get("rule"), "members": {role: card_summary(card) for role, card in members.items()}}


def card_of(meta: dict, model_dir: str | Path, registered: dict | None = None) -> dict:
    """The card from a checkpoint's meta (config.json as loaded), e.g. a LoadedDetector's `meta`."""
    model_dir = Path(model_dir)
    trained = meta.get("trained") or {}
    config = trained.get("config") or {}
    footage = meta.get("footage") or {}
    metrics = meta.get("metrics") or {}
    figures = {label: metrics.get(f"{split}/{key}") for split, key, label in FIGURES}
    run = (registered or {}).get("run") or {}
    if "panel/union" in run:
        figures["co-evolution panel video AUC, all fakes"] = run["panel/union"]
    coevolve = meta.get("coevolve") or {}
    return {
        "name": (meta.get("detector") or {}).get("name"),
        "path": str(model_dir.resolve()),
        "weights_sha256": meta.get("weights_sha256"),
        "registered": registered,
        "trained_on": footage.get("trained_on") or NOT_RECORDED,
        "footage": {k: footage[k] for k in ("real_videos", "synthetic_videos") if k in footage},
        "training": {"finished": trained.get("finished") or NOT_RECORDED, "run_id": trained.get("run_id"),
                     "lr": config.get("lr"), "epochs_run": trained.get("epochs_run"),
                     "train_videos": trained.get("train_videos"), "data_hash": meta.get("data_hash"),
                     **({"coevolve_round": coevolve.get("round")} if coevolve else {})},
        "gate": run.get("promotion"),
        "git_commit": run.get("mlflow.source.git.commit"),
        "threshold": meta.get("threshold"),
        "calibration": meta.get("calibration"),
        "crop": meta.get("crop"),
        "figures": figures,
        "test_by_kind": {kind: {"auc": row.get("auc"), "auc_ci": row.get("auc_ci"), "n_fake": row.get("n_fake"),
                                "n_real": row.get("n_real")}
                         for kind, row in (meta.get("test_by_kind") or {}).items()},
    }


def card_summary(card: dict) -> str:
    """One line for records and logs: name, version, training footage, and its best-held-out video AUC (test,
    else the game's panel, else validation)."""
    version = (card.get("registered") or {}).get("version")
    figures = card["figures"]
    label, auc = next(((k, figures.get(k)) for k in ("test video AUC (unseen identities)",
                                                     "co-evolution panel video AUC, all fakes",
                                                     "validation video AUC",   # a game's candidate has only this
                                                     "fused validation video AUC")            # a bundle
                       if isinstance(figures.get(k), (int, float))), ("test video AUC", None))
    label = label.replace(" (unseen identities)", "").replace(", all fakes", "")
    footage = "training footage not recorded" if card["trained_on"] == NOT_RECORDED else \
        f"trained on {card['trained_on']}"
    return f"{card['name']}{f' v{version}' if version else ''}: {footage}; {label} {_number(auc)}"


def card_markdown(card: dict) -> str:
    """The card for people (Markdown, readable as plain text)."""
    registered = card.get("registered") or {}
    lines = [f"# Model card: {card['name']}" + (f" version {registered['version']}" if registered else ""), ""]
    if card["trained_on"] == SYNTHETIC_ONLY:
        lines += ["**Trained on synthetic faces only.** This model never saw a real face: its scores on real "
                  "footage are not validated probabilities.", ""]
    elif card["trained_on"] == NOT_RECORDED:
        lines += ["**Training footage not recorded** in this checkpoint (made before it was kept): treat its scores "
                  "on real footage as not validated.", ""]
    training = card["training"]
    rows = [("Trained on", card["trained_on"]),
            ("Training videos", _footage(card)),
            ("Registered", f"version {registered['version']}, aliases {', '.join(registered['aliases']) or 'none'}"
             if registered else "no (a folder)"),
            ("Trained", ", ".join(part for part in (
                training["finished"], f"{training['epochs_run']} epochs" if training["epochs_run"] else "",
                f"lr {training['lr']}" if training["lr"] else "") if part)),
            ("Co-evolution round", training.get("coevolve_round")),
            ("MLflow run", training["run_id"] or registered.get("run_id")),
            ("Git commit", card.get("git_commit")),
            ("Gate decision", card.get("gate")),
            ("Threshold", _number(card["threshold"])),
            ("Crop", _crop(card["crop"])),
            ("Weights sha256", card["weights_sha256"]),
            ("Fusion", f"{card['fusion']} of the members' calibrated logits" if card.get("fusion") else None)]
    rows += [(f"Member: {role}", summary) for role, summary in (card.get("members") or {}).items()]
    rows += [(label, _number(value)) for label, value in card["figures"].items()]
    lines += ["| | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows if v is not None]
    if card["test_by_kind"]:
        lines += ["", "Test video AUC per kind of fake [95% CI]:", ""]
        for kind, row in card["test_by_kind"].items():
            ci = row.get("auc_ci") or []
            interval = f" [{ci[0]:.3f}, {ci[1]:.3f}]" if len(ci) == 2 and None not in ci else ""
            lines.append(f"- {kind}: {_number(row['auc'])}{interval} ({row['n_fake']} fake / {row['n_real']} real "
                         f"videos)")
    tags = {k: v for k, v in (registered.get("tags") or {}).items() if not k.startswith("metric.")}
    if tags:
        lines += ["", "Registry tags: " + "; ".join(f"{k} = {v}" for k, v in sorted(tags.items()))]
    return "\n".join(lines) + "\n"


def _footage(card: dict) -> str:
    footage = card["footage"]
    if not footage:
        return NOT_RECORDED
    return f"{footage.get('real_videos')} real-side videos, {footage.get('synthetic_videos')} of them synthetic"


def _crop(crop: dict | None) -> str:
    return NOT_RECORDED if not crop else f"{crop.get('size')} px, margin {crop.get('margin')}"


def _number(value) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else \
        (NOT_RECORDED if value is None else str(value))
