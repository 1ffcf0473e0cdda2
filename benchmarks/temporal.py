"""Frame vs clip vs fused detector, measured through the product path.

What it shows (issue 15): video AUC with bootstrap CIs of the frame detector (self-blended images), the clip
detector (temporal pseudo-fakes, one kind held out) and their fused bundle, each reading the same crops
`forensics detect` cuts from encoded video:

- product-path fakes (`forensics fake`: whole H.264 videos) of both generator families, on test identities,
  as made and after the degradations of --conditions (benchmarks.perturb: e.g. a second H.264 encode at
  CRF 40, where frame detectors lose animation);
- pseudo-fakes of test identities' clips: self-blended videos, and the held-out temporal kind, which the
  clip detector never trained on (crop space: the same crops, pseudo-faked as in training);
- the clip detector's sensitivity to time: real test clips with their frames shuffled.

Both detectors train here on the same world's train split (so neither has seen a test identity), the
fusion is fitted on its validation split, and every figure names what it was measured on. Stages reuse
what is already in --work (world, fakes, caches, models), so a rerun only redoes what changed.

    python -m benchmarks.temporal [--work runs/bench_temporal] [--generators demo/generators]

Leave-one-out over the pseudo-fake kinds: one run per kind with `--held-out KIND` (the clip detector is
trained on the other three, in WORK/temporal_KIND; the frame detector and caches are shared), then
`--table RESULTS.json...` puts the runs side by side.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from benchmarks.fakes import FakePlan, build_fake_dataset
from benchmarks.machine import machine_info
from benchmarks.perturb import perturb_video
from detectors.bundle import FRAME, TEMPORAL, load_bundle
from detectors.checkpoint import load_detector
from detectors.fusion import VideoCase, make_bundle, member_video_logits, validation_cases
from detectors.task import DetectorTrainConfig
from detectors.train import train_detector
from forensics.data.cache import FaceCache
from forensics.io import atomic_write_json, atomic_write_text
from forensics.metrics import summarize_scores
from forensics.pipelines import DetectConfig, DetectPipeline
from forensics.pipelines.train import prepare_cache, render_world_if_missing
from generators.blending.temporal import TEMPORAL_KINDS

COMMAND = "python -m benchmarks.temporal"
COLUMNS = (FRAME, TEMPORAL, "fused")


def stage(name: str) -> float:
    print(f"== {name}", flush=True)
    return time.perf_counter()


def train_if_missing(preset: str, cache: FaceCache, out: Path, **overrides) -> Path:
    if not (out / "model" / "config.json").is_file():
        train_detector(DetectorTrainConfig.from_preset(preset, **overrides), cache, out, register_as=None,
                       progress=False)
    return out / "model"


def product_scores(bundle_dir: Path, rows, frames: int, condition: str = "clean", work: Path | None = None
                   ) -> list[dict]:
    """`forensics detect` (sampled clips, the bundle) on every test video, degraded by `condition` first: the
    fused and each member's score."""
    pipeline = DetectPipeline.from_path(bundle_dir, DetectConfig(frames=frames, device="cpu", thumbnails=0))
    out = []
    for row in rows:
        path = row.path
        if condition != "clean":
            path = work / "perturbed" / condition / f"{row.method}_{Path(row.path).name}"
            if not path.is_file():
                path.parent.mkdir(parents=True, exist_ok=True)
                perturb_video(row.path, path, condition)
        record = pipeline.analyse(path).record.to_json()
        members = {m["role"]: m["score"] for m in record.get("detectors", [])}
        out.append({"video": row.path, "method": row.method, "label": int(row.label == "fake"),
                    "status": record["status"], "fused": record["score"], **members})
    return out


def auc_table(rows: list[dict], methods: list[str]) -> dict:
    """Per fake method: video AUC (95% bootstrap CI) of reals against that method, for each column."""
    table = {}
    reals = [r for r in rows if r["label"] == 0 and r["status"] == "ok"]
    for method in methods:
        fakes = [r for r in rows if r["method"] == method and r["status"] == "ok"]
        cell = {"videos": {"real": len(reals), "fake": len(fakes)}}
        for column in COLUMNS:
            usable = [r for r in reals + fakes if r.get(column) is not None]
            labels = np.array([r["label"] for r in usable])
            scores = np.array([r[column] for r in usable], np.float64)
            summary = summarize_scores(labels, scores, ci=True, n_boot=2000)
            cell[column] = {"auc": _round(summary["auc"]), "ci": [_round(v) for v in summary["auc_ci"]]}
        table[method] = cell
    return table


def crop_space_rows(bundle_dir: Path, cases: list[VideoCase]) -> list[dict]:
    """Member and fused video scores of pseudo-fake cases (the same crops, pseudo-faked as in training)."""
    bundle = load_bundle(bundle_dir)
    logits = {role: member_video_logits(m, cases, m.device) for role, m in bundle.members.items()}
    rows = []
    for i, case in enumerate(cases):
        member = {role: float(bundle.member_probability(role, [logits[role][i]])[0]) for role in logits}
        fused = float(bundle.probability([bundle.fuse({r: float(logits[r][i]) for r in logits})])[0])
        rows.append({"video": case.name, "method": case.kind, "label": case.label, "status": "ok", "fused": fused,
                     **member})
    return rows


def shuffled_cases(cases: list[VideoCase], seed: int) -> list[VideoCase]:
    """Real test videos with the frames of every clip put in a random order: only time changes."""
    rng = np.random.default_rng(seed)
    out = []
    for case in cases:
        if case.kind != "real":
            continue
        out.append(case)
        out.append(VideoCase(case.name + "#shuffled", 1, "shuffled",
                             [clip[rng.permutation(len(clip))] for clip in case.clips]))
    return out


def markdown(results: dict) -> str:
    lines = [f"# Frame vs clip vs fused detector ({results['machine']['when'][:10]}, commit "
             f"{results['machine'].get('commit')})", "", f"Command: `{COMMAND} {results['args']}`", "",
             "Video AUC with 95% bootstrap CIs. Frame: `mobilenetv3-small` trained on self-blended images; "
             f"clip: `temporal-small` trained on temporal pseudo-fakes ({', '.join(results['kinds']['trained'])}; "
             f"held out: {', '.join(results['kinds']['held_out'])}); fused: the bundle ({results['fusion']['rule']} of "
             "calibrated logits, the rule chosen and its Platt scale and threshold fitted on validation videos: "
             f"validation AUC by rule {json.dumps(results['fusion']['validation_auc_by_rule'])}). All trained on the "
             "synthetic world's train split only: no real faces.", ""]
    sections = [("Product path (`forensics fake` videos, `forensics detect` crops)", "product")]
    sections += [(f"Product path after {key[len('product_'):]} (benchmarks.perturb)", key) for key in results
                 if key.startswith("product_")]
    sections += [("Pseudo-fakes of test clips (crop space)", "pseudo")]
    for title, key in sections:
        lines += [f"## {title}", "", "| fakes | videos (real/fake) | frame | clip | fused |", "|---|---|---|---|---|"]
        for method, cell in results[key].items():
            cols = [f"{cell[c]['auc']:.3f} [{cell[c]['ci'][0]:.2f}, {cell[c]['ci'][1]:.2f}]"
                    if cell[c]["auc"] is not None else "n/a" for c in COLUMNS]
            lines.append(f"| {method} | {cell['videos']['real']}/{cell['videos']['fake']} | " + " | ".join(cols) + " |")
        lines.append("")
    lines += [f"Stage times (s): {json.dumps(results['seconds'])}", ""]
    return "\n".join(lines)


def run(args) -> dict:
    work = Path(args.work)
    seconds: dict[str, float] = {}
    t = stage("world")
    world = Path(args.world) if args.world else work / "world"
    render_world_if_missing(world, args.identities, progress=False)
    seconds["world"] = round(time.perf_counter() - t, 1)

    t = stage("product-path fakes")
    generators = {family: str(Path(args.generators) / family) for family in ("faceswap", "animation")}
    fakes = build_fake_dataset(FakePlan(world=str(world), out=str(work / "fakes"), generators=generators,
                                        reals={"test": args.test_reals}, device="cpu"), progress=False)
    seconds["fakes"] = round(time.perf_counter() - t, 1)

    t = stage("face-crop caches")
    clip_cfg = DetectorTrainConfig.from_preset("temporal-small")
    frame_cfg = DetectorTrainConfig.from_preset("cpu-small")
    clip_cache = prepare_cache(world, clip_cfg, dataset="synthetic", cache_dir=work / "cache_clips", progress=False).cache
    frame_cache = prepare_cache(world, frame_cfg, dataset="synthetic", cache_dir=work / "cache_frames",
                                progress=False).cache
    seconds["caches"] = round(time.perf_counter() - t, 1)

    t = stage("train the frame and the clip detector")
    frame_dir = Path(args.frame) if args.frame else train_if_missing("cpu-small", frame_cache, work / "frame")
    if args.temporal:
        temporal_dir = Path(args.temporal)
    elif args.held_out:
        temporal_dir = train_if_missing("temporal-small", clip_cache, work / f"temporal_{args.held_out}",
                                        held_out_kinds=[args.held_out],
                                        temporal_kinds=[k for k in TEMPORAL_KINDS if k != args.held_out])
    else:
        temporal_dir = train_if_missing("temporal-small", clip_cache, work / "temporal")
    seconds["train"] = round(time.perf_counter() - t, 1)

    t = stage("bundle: fusion fitted on validation videos")
    bundle_dir = work / (f"bundle_{args.held_out}" if args.held_out and not args.temporal else "bundle")
    fitted = make_bundle(frame_dir, temporal_dir, clip_cache, bundle_dir)
    seconds["bundle"] = round(time.perf_counter() - t, 1)
    trained = load_detector(temporal_dir).meta.get("trained") or {}

    t = stage("product path: forensics detect on every test video")
    test_rows = [r for r in fakes.rows if r.split == "test"]
    product = product_scores(bundle_dir, test_rows, args.frames)
    degraded = {condition: product_scores(bundle_dir, test_rows, args.frames, condition, work)
                for condition in args.conditions}
    seconds["product"] = round(time.perf_counter() - t, 1)

    t = stage("pseudo-fakes of test clips")
    held_out = list(trained.get("held_out_kinds") or [])
    length = int(load_detector(temporal_dir).model.config.clip_len)
    cases = validation_cases(clip_cache, length, held_out or list(trained.get("kinds") or []), seed=7, split="test")
    cases += [c for c in shuffled_cases([c for c in cases if c.kind == "real"], seed=7) if c.kind == "shuffled"]
    pseudo = crop_space_rows(bundle_dir, cases)
    seconds["pseudo"] = round(time.perf_counter() - t, 1)

    results = {
        "command": COMMAND, "args": " ".join(f"--{k.replace('_', '-')} "
                                             f"{' '.join(map(str, v)) if isinstance(v, list) else v}"
                                             for k, v in vars(args).items() if v is not None),
        "machine": machine_info(), "world": str(world), "generators": generators,
        "kinds": {"trained": trained.get("kinds"), "held_out": held_out},
        "fusion": fitted["fusion"], "validation_auc": fitted["auc"],
        "product": auc_table(product, sorted({r["method"] for r in product if r["label"] == 1})),
        **{f"product_{c}": auc_table(rows, sorted({r["method"] for r in rows if r["label"] == 1}))
           for c, rows in degraded.items()},
        "pseudo": auc_table(pseudo, sorted({r["method"] for r in pseudo if r["label"] == 1})),
        "videos": product, "videos_degraded": degraded, "seconds": seconds,
        "trained_on": "synthetic world only (no real faces): " + str(world),
    }
    out = Path(args.out)
    atomic_write_json(out.with_suffix(".json"), results)
    atomic_write_text(out.with_suffix(".md"), markdown(results))
    print(markdown(results))
    return results


def held_out_table(paths: list[str], out: Path) -> str:
    """One row per leave-one-out run: the held-out kind against the frame detector, and the product path."""
    lines = ["# Clip detector, leave one pseudo-fake kind out", "",
             f"From `{COMMAND} --table {' '.join(paths)}`. Video AUC [95% CI]; the held-out kind was never trained "
             "on; product-path columns are the fused bundle's members on the same test videos.", "",
             "| held out | trained on | held-out kind: frame | clip | fused | shuffled frames: clip | "
             "animation: frame | clip | fused | faceswap: clip | fused | fusion rule |", "|" + "---|" * 12]
    cell = lambda c: f"{c['auc']:.3f} [{c['ci'][0]:.2f}, {c['ci'][1]:.2f}]" if c["auc"] is not None else "n/a"  # noqa: E731
    for path in paths:
        r = json.loads(Path(path).read_text())
        (held,) = r["kinds"]["held_out"]
        pseudo, product = r["pseudo"], r["product"]
        lines.append(" | ".join([f"| {held}", ", ".join(r["kinds"]["trained"]),
                                 *(cell(pseudo[held][c]) for c in COLUMNS), cell(pseudo["shuffled"][TEMPORAL]),
                                 *(cell(product["animation"][c]) for c in COLUMNS),
                                 cell(product["faceswap"][TEMPORAL]), cell(product["faceswap"]["fused"]),
                                 r["fusion"]["rule"]]) + " |")
    text = "\n".join(lines) + "\n"
    atomic_write_text(out.with_suffix(".md"), text)
    return text


def _round(value) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), 4)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", default="runs/bench_temporal", help="work folder, reused across runs")
    p.add_argument("--world", default=None, help="synthetic world (default: WORK/world, rendered if absent)")
    p.add_argument("--identities", type=int, default=60, help="identities when rendering the world (default 60)")
    p.add_argument("--generators", default="demo/generators", help="folder with faceswap/ and animation/ "
                   "checkpoints (default: what `make demo` trained)")
    p.add_argument("--frame", default=None, help="a trained frame detector (default: train one in WORK/frame)")
    p.add_argument("--temporal", default=None, help="a trained clip detector (default: train one in WORK/temporal)")
    p.add_argument("--test-reals", type=int, default=18, help="real test videos (default 18)")
    p.add_argument("--frames", type=int, default=32, help="frames `forensics detect` samples (default 32)")
    p.add_argument("--conditions", nargs="*", default=["h264_crf40"],
                   help="degradations of the test videos also scored (benchmarks.perturb names; default h264_crf40)")
    p.add_argument("--held-out", default=None, choices=TEMPORAL_KINDS,
                   help="train the clip detector with this pseudo-fake kind left out (default: the preset's)")
    p.add_argument("--table", nargs="+", default=None, metavar="RESULTS_JSON",
                   help="only write the leave-one-out table of these runs' results to --out (.md)")
    p.add_argument("--out", default="benchmarks/results/temporal", help="results path without suffix "
                   "(.json and .md are written)")
    args = p.parse_args(argv)
    if args.table:
        print(held_out_table(args.table, Path(args.out)))
        return
    run(args)


if __name__ == "__main__":
    main()
