"""`forensics bundle`: put a frame and a clip detector together, with their fusion fitted on validation videos.

`forensics detect --model BUNDLE` then runs both on every input and reports each detector's score beside
the fused verdict. The work is detectors.fusion.make_bundle; this module parses, prints and exits.
"""
from __future__ import annotations

import argparse
import json
import sys

EXAMPLES = """\
examples:
  forensics train detector --out runs/detector                                  # frame detector (SBI)
  forensics train detector --arch temporal-small --out runs/temporal            # clip detector
  forensics bundle --frame runs/detector/model --temporal runs/temporal/model --out runs/bundle
                                            # registered as forensics-detector@challenger (--no-register: not)
  forensics detect clip.mp4 --model runs/bundle --report report/

The fusion is fitted on the validation split of --root (default data/synth): its real videos, and from each
a self-blended and a temporal pseudo-fake video (of the kinds the clip detector trained on).
"""


def add_parser(sub) -> None:
    p = sub.add_parser("bundle", help="combine a frame and a clip detector into one model for detect",
                       description="Fit how a frame and a clip detector are fused (the max or the mean of their "
                                   "calibrated logits, whichever ranks the validation videos better, then a Platt "
                                   "scale and threshold) on validation videos, and save both with the fusion as one "
                                   "model folder.",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frame", required=True, metavar="DIR", help="a frame detector checkpoint folder")
    p.add_argument("--temporal", required=True, metavar="DIR", help="a clip detector checkpoint folder")
    p.add_argument("--out", required=True, metavar="DIR", help="the bundle folder to write")
    p.add_argument("--root", default="data/synth", help="dataset whose validation split fits the fusion")
    p.add_argument("--dataset", default=None, help="adapter name (default: guessed)")
    p.add_argument("--cache", default=None, help="face-crop cache of clips (default ROOT/face_cache_clips)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda (default auto)")
    p.add_argument("--no-register", action="store_true",
                   help="do not register the bundle in MLflow (default: a new version of forensics-detector, "
                        "alias challenger)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    from detectors.checkpoint import DetectorLoadError, load_detector
    from detectors.promote import CHALLENGER
    from detectors.task import DetectorTrainConfig
    from forensics.data.registry import DatasetError
    from forensics.device import resolve_device
    from forensics.pipelines.train import prepare_cache, run_bundle_fitting

    try:
        temporal = load_detector(args.temporal)
        trained = (temporal.meta.get("trained") or {}).get("config") or {}
        config = DetectorTrainConfig(**{k: v for k, v in trained.items() if k in DetectorTrainConfig.__dataclass_fields__})
        config.device = args.device
        prepared = prepare_cache(args.root, config, dataset=args.dataset, cache_dir=args.cache,
                                 progress=not args.quiet)
        result = run_bundle_fitting(args.frame, args.temporal, prepared.cache, args.out, seed=args.seed,
                                    device=str(resolve_device(args.device)),
                                    register_as=None if args.no_register else CHALLENGER)
    except (DetectorLoadError, DatasetError, ValueError) as exc:
        print(f"forensics bundle: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    auc = result["auc"]
    videos = result["validation"]["videos"]
    print(f"bundle -> {result['bundle']} (fusion fitted on {videos['real']} real, {videos['sbi']} self-blended and "
          f"{videos['temporal']} temporal pseudo-fake validation videos)")
    for role in ("frame", "temporal", "fused"):
        kinds = ", ".join(f"{k} {v:.3f}" for k, v in auc[role].items() if k != "all")
        print(f"  {role:8s} validation video AUC {auc[role]['all']:.3f}  ({kinds})")
    rules = ", ".join(f"{r} {v:.3f}" for r, v in result["fusion"]["validation_auc_by_rule"].items())
    print(f"  fusion rule {result['fusion']['rule']} (validation AUC by rule: {rules}); threshold "
          f"{result['fusion']['threshold']:.3f}")
    if result["registered_version"]:
        print(f"  registered: forensics-detector version {result['registered_version']} (challenger; "
              f"`forensics detect VIDEO --model challenger`)")
    print(f"  use it with: forensics detect VIDEO --model {result['bundle']}")
    return 0
