"""`forensics demo`: the project's main job end to end (what `make demo` runs); the recipe itself lives in
forensics.pipelines.demo, this module only parses arguments and prints where everything went (heavy imports
are deferred into the functions so `--help` is fast)."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

EPILOG = """\
examples:
  forensics demo                      # cpu-small: about 25 minutes on 2 CPU cores
  forensics demo --preset mini --out /tmp/demo-mini   # the test's miniature, about a minute
  forensics demo --rounds 5 --device cuda
Interrupted? Run the same command again: finished stages and rounds are reused.
"""


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="run the end-to-end demo (what `make demo` runs)",
                       description="Render a synthetic face world, train a detector on self-blended pseudo-fakes, "
                                   "train the face-swap and face-animation generators, co-evolve them against the "
                                   "detector for a few rounds on the product path (a candidate becomes `champion` only "
                                   "if it beats the incumbent on the held-out panel), bundle a clip detector with the "
                                   "champion (promoted only if it beats it on the panel through forensics detect), and "
                                   "scan a panel real and a panel fake of the latest face swap with the champion.",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    p.add_argument("--out", default="demo", help="output folder (default: demo)")
    p.add_argument("--preset", default="cpu-small", help="cpu-small (default), mini, or a YAML file")
    p.add_argument("--rounds", type=int, default=None, help="co-evolution rounds (default from the preset: 3)")
    p.add_argument("--identities", type=int, default=None, help="synthetic identities (preset: 24)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--device", default=None, help="auto | cpu | cuda (default auto)")
    p.set_defaults(func=run)


def run(args) -> int:
    from forensics.pipelines.demo import DemoConfig, run_demo

    if args.rounds is not None and args.rounds < 1:
        print("forensics demo: --rounds must be at least 1", file=sys.stderr)
        return 2
    try:
        config = DemoConfig.from_preset(args.preset, rounds=args.rounds, identities=args.identities,
                                        seed=args.seed, device=args.device)
    except (ValueError, TypeError) as exc:
        print(f"forensics demo: {exc}", file=sys.stderr)
        return 2
    steps = iter(range(1, 100))
    started = time.perf_counter()
    result = run_demo(config, args.out, say=lambda text: print(f"[{next(steps)}] {text}", flush=True))
    print_rounds(result.rounds, result.summary, Path(args.out) / "coevolve")
    out = Path(args.out)
    print(f"\ndone in {(time.perf_counter() - started) / 60:.1f} min "
          f"({', '.join(f'{k} {v / 60:.1f}' for k, v in result.timings.items())} min)")
    for name, record in result.scans.items():
        score = "-" if record.get("score") is None else f"{record['score']:.3f}"
        print(f"  {name} video: {record['path']}  status {record['status']}  score {score}  "
              f"verdict {record.get('label')}")
    print(f"  world + ground truth:  {result.world}")
    print(f"  generators:            {', '.join(str(p) for p in result.generators.values())}")
    print(f"  co-evolution:          {out / 'coevolve'} (rounds.jsonl, summary.json)")
    if result.bundle:
        gate = result.bundle["gate"]
        union = {name: gate["auc"][name]["union"]["auc"] for name in ("candidate", "champion")}
        print(f"  frame + clip bundle:   {result.bundle['bundle']}  (version {result.bundle['version']}; panel video AUC "
              f"through forensics detect, all fakes: bundle {union['candidate']:.3f} vs champion "
              f"{union['champion']:.3f}; {gate['decision']['reason']})")
    champion_name = "the bundle" if result.bundle and result.bundle["promoted"] else result.summary["champion"]["name"]
    print(f"  champion detector:     {champion_name} {result.champion}  (registered as the champion `forensics "
          f"detect` uses)")
    print(f"  detections + reports:  {out / 'detections.jsonl'}, {out / 'report'}/index.html")
    print("  follow every run in MLflow:  .venv/bin/forensics ui   (then open the address it prints)")
    failed = any(r.get("status") == "error" for r in result.scans.values())
    return 1 if failed else 0


def print_rounds(rounds: list[dict], summary: dict, run_dir: Path) -> None:
    """Each round's moves, the champion's and the candidate's panel AUCs and the promotion decision, then the
    panel matrix after the last round."""
    import json

    from forensics.harness.report import matrix_table, rounds_table

    print()
    print(rounds_table(rounds))
    last = json.loads((run_dir / "state.json").read_text())["rounds"][str(rounds[-1]["round"])]["steps"]["panel"]
    print("\npanel after the last round (video AUC [95% CI]; rows: detector versions, columns: fakes vs real test "
          "videos):")
    print(matrix_table(last["matrix"], summary["panel_columns"]))
