"""`forensics export --model M --onnx FILE`: a frame detector as ONNX, checked against torch and timed beside it;
`--cache` puts the export where `forensics detect` runs it on onnxruntime (detectors.export; imports deferred
so `--help` stays fast)."""
from __future__ import annotations

import argparse
import json
import sys

EXAMPLES = """\
examples:
  forensics export --onnx detector.onnx                        # the registered champion
  forensics export --model runs/detector/model --onnx out/detector.onnx --json
  forensics export --model runs/detector/model --cache          # detect --model runs/detector/model: onnxruntime

Writes FILE and FILE.json. The graph takes normalised crops [N, 3, S, S] and gives a logit per crop; FILE.json
holds what turns it into forensics detect's frame score: the crop alignment, mean/std, the calibration
(sigmoid(a * logit + b)), the threshold and what the model was trained on, with the check against torch (largest
difference of logits and probabilities) and both runtimes' CPU time on one batch.

--cache writes the model's export and MTCNN's into the model cache (FORENSICS_MODEL_CACHE, default
~/.cache/forensics/models), keyed by the weights' sha256; `forensics detect` then runs this model on onnxruntime
on a CPU, without importing torch. A new champion gets this automatically.
"""


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="export a frame detector to ONNX (checked against torch, timed)",
                       description="Export a trained frame detector to ONNX for serving without torch. The export "
                                   "is run through onnxruntime and compared with torch before it is kept.",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, metavar="MODEL",
                   help="detector folder, or a registry alias (champion, challenger); default: the champion")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--onnx", metavar="FILE", help="the .onnx file to write (FILE.json beside it)")
    target.add_argument("--cache", action="store_true",
                        help="write the exports `forensics detect` uses into the model cache instead")
    p.add_argument("--batch", type=int, default=32, metavar="N", help="crops in the check and timing batch (32)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    from forensics.cli.detect import model_or_say

    if args.batch < 1:
        print("forensics export: --batch must be at least 1", file=sys.stderr)
        return 2
    model = model_or_say("export", args.model)
    if model is None:
        return 2
    from detectors.export import ExportError, cache_exports, export_onnx    # torch.onnx and onnxruntime

    if args.cache:
        try:
            made = cache_exports(model)
        except (ExportError, ValueError) as exc:
            print(f"forensics export: {exc}", file=sys.stderr)
            return 1
        print(f"{model}: ONNX exports cached ({', '.join(made) if made else 'already there'}); forensics detect "
              "runs it on onnxruntime on a CPU")
        return 0
    try:
        report = export_onnx(model, args.onnx, batch=args.batch)
    except ExportError as exc:
        print(f"forensics export: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        check, timing = report.check, report.timing
        print(f"{report.onnx}: {report.arch}, crops [N, 3, {report.input['shape'][2]}, {report.input['shape'][3]}] -> "
              f"logit; agrees with torch to {check['max_abs_probability_diff']:.1e} in probability "
              f"({check['max_abs_logit_diff']:.1e} in logit) on {check['crops']} crops; CPU, batch {timing['batch']}: "
              f"onnxruntime {timing['onnxruntime_cpu_ms']} ms, torch {timing['torch_cpu_ms']} ms; "
              f"scoring in {report.onnx}.json")
    return 0
