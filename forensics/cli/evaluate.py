"""`forensics evaluate`: a detector's frame- and video-level numbers on a labelled dataset (the work is
forensics.pipelines.evaluate; imports are deferred into `run` so `--help` stays fast)."""
from __future__ import annotations

import argparse
import json
import sys

EXAMPLES = """\
examples:
  forensics evaluate --root data/synth                          # the registered champion on the synthetic test split
  forensics evaluate --model runs/detector/model --dataset ffpp --root /data/FF++ --frames 32
  forensics evaluate --model champion --dataset celebdf --root /data/Celeb-DF-v2 --out runs/eval/cdf
  forensics evaluate --root clips/ --split all --json           # a folder with real/ and fake/, every file

Reported: frame AUC; video AUC as DeepfakeBench computes it (mean of frame probabilities per video) and as
`forensics detect` scores a video (the model's aggregate, calibrated); EER, AP and TPR at FPR 1% / 0.1%, each
with a 95% bootstrap interval over videos; the same per manipulation method. OUT gets results.json,
results.md, roc.png and pr.png; the MLflow experiment `evaluate` gets one run. Faces are cached once per
dataset (ROOT/face_cache_eval, or OUT/face_cache when ROOT is read-only): a second evaluation is quick.

exit status: 0 done, 1 the dataset cannot be evaluated (one line says why), 2 usage error.
"""


def add_parser(sub) -> None:
    p = sub.add_parser("evaluate", help="score a labelled dataset: frame and video AUC, EER, AP, TPR@FPR, per method",
                       description="Score every video of a labelled dataset (any layout the adapters read) with "
                                   "a frame detector and report frame- and video-level metrics with bootstrap "
                                   "intervals, overall and per manipulation method.",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="a detector folder, or a registry alias: champion (default), "
                   "challenger, models:/forensics-detector@ALIAS")
    p.add_argument("--root", required=True, help="dataset folder")
    p.add_argument("--dataset", default=None,
                   help="adapter name (synthetic, folder, ffpp, celebdf, dfdc); guessed from the layout if omitted")
    p.add_argument("--split", default="test", help="train | val | test | all (default test)")
    p.add_argument("--frames", type=int, default=32, help="frames sampled evenly per video (default 32, as "
                   "DeepfakeBench)")
    p.add_argument("--cache", default=None, help="face-crop cache folder (default ROOT/face_cache_eval)")
    p.add_argument("--out", default="runs/evaluate", help="results folder (default runs/evaluate)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda (default auto)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--json", action="store_true", help="print the results JSON on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    from detectors.checkpoint import DetectorLoadError
    from forensics.cli.detect import model_or_say
    from forensics.data.registry import DatasetError
    from forensics.pipelines.evaluate import EvaluateError, evaluate_detector

    if args.frames < 1:
        print("forensics evaluate: --frames must be at least 1", file=sys.stderr)
        return 2
    model = model_or_say("evaluate", args.model)
    if model is None:
        return 2
    say = (lambda line: print(line, file=sys.stderr)) if args.json else print
    try:
        done = evaluate_detector(model, args.root, args.out, dataset=args.dataset, split=args.split,
                                 frames=args.frames, cache_dir=args.cache, device=args.device, seed=args.seed,
                                 progress=not args.quiet, say=say)
    except (EvaluateError, DatasetError, DetectorLoadError) as exc:
        print(f"forensics evaluate: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(done.doc, indent=2))
    return 0
