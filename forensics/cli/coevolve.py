"""`forensics coevolve`: rounds of fresh fakes, detector fine-tuning and generators evading the detector.

Thin over forensics.harness.run_coevolution: options become a CoevolveConfig, errors a one-line message
(exit 2 for what the user must fix: a missing checkpoint, a resolution mismatch, an unknown family, an
output folder made with another config), and the rounds a table at the end. Heavy imports are deferred
into the functions so `--help` is fast.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from forensics.cli.flags import deprecated

EXAMPLES = """\
examples:
  forensics coevolve --model runs/detector/model                     # cpu-small: runs/faceswap + runs/animation
  forensics coevolve --rounds 1 --model runs/detector_sbi/model --no-register --out /tmp/coevolve_try
  forensics coevolve --generator faceswap=runs/swap37 --generator animation=runs/animation --rounds 5
  forensics coevolve --generator faceswap=runs/swap37 --generator myfamily=runs/mine
  forensics coevolve --preset gpu --device cuda --generator faceswap=runs/faceswap-gpu --generator animation=runs/animation-gpu
  forensics coevolve --preset my_experiment.yaml --json > rounds.json
  torchrun --standalone --nproc-per-node 4 -m forensics.cli.main coevolve --preset gpu   # moves on 4 GPUs
Interrupted? Run the same command again: it resumes at the step it was in (rounds extend with --rounds).
The final detector is registered as forensics-detector@champion, which `forensics detect` uses by default.
"""


def add_parser(sub) -> None:
    p = sub.add_parser("coevolve", help="co-evolve generators and the detector over rounds (tracked in MLflow)",
                       description="Each round: every game generator learns to get past the champion detector "
                                   "(a hinge at its threshold, within a quality budget against the starting "
                                   "generator); the new version's fakes are made like `forensics fake` makes them "
                                   "and read back through the crop path of `forensics detect`; the detector trains "
                                   "from the champion on every version so far; every detector is scored on a fixed "
                                   "panel of test videos, and the candidate becomes champion only if it is no "
                                   "worse on every panel column and better on their union. Logged to MLflow "
                                   "(experiment coevolve, one nested run per round).",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="cpu-small", help="cpu-small (default), gpu, mini, or a YAML file")
    p.add_argument("--world", default=None, help="synthetic world folder (default from the preset: data/synth)")
    p.add_argument("--model", dest="detector", default=None, metavar="MODEL",
                   help="the starting detector: a folder (a frame detector, or a clip detector such as temporal-small: "
                        "the game then plays on clips), or 'champion' (the registered one)")
    deprecated(p, "--detector", "--model", dest="detector")
    p.add_argument("--generator", action="append", default=None, metavar="FAMILY=CKPT",
                   help="a checkpoint of any registered generator family (repeatable; replaces the preset's list), "
                        "e.g. --generator faceswap=runs/faceswap --generator animation=runs/animation")
    deprecated(p, "--faceswap", "--generator faceswap=DIR", dest="faceswap", kind="append")
    deprecated(p, "--animation", "--generator animation=DIR", dest="animation", kind="append")
    p.add_argument("--rounds", type=int, default=None, help="number of rounds (a rerun with more extends a run)")
    p.add_argument("--held-out-family", default=None, metavar="FAMILY",
                   help="a generator family kept out of the game and only scored on the panel (default from the "
                        "preset: animation; 'none' keeps every family in)")
    p.add_argument("--seeds", default=None, metavar="S,S,...",
                   help="run the game once per seed (OUT/seed_<s>) and report mean ± spread; nothing is registered")
    p.add_argument("--out", default="runs/coevolve", help="output folder (default runs/coevolve)")
    p.add_argument("--device", default=None, help="auto | cpu | cuda (default from the preset)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--run-name", default=None, help="MLflow name of the parent run")
    p.add_argument("--no-register", action="store_true", help="do not register the final detector as champion")
    p.add_argument("--json", action="store_true", help="print the round records as JSON on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress bars or step lines")
    p.set_defaults(func=run)


def build_config(args):
    from forensics.harness import CoevolveConfig

    given = [f"faceswap={p}" for p in getattr(args, "faceswap", None) or []]
    given += [f"animation={p}" for p in getattr(args, "animation", None) or []]
    given += list(args.generator or [])
    generators = None
    if given:
        pairs = []
        for item in given:
            family, sep, path = item.partition("=")
            if not sep or not family or not path:
                raise ValueError(f"--generator {item!r}: expected FAMILY=CHECKPOINT_FOLDER")
            pairs.append((family, path))
        counts = {f: sum(1 for g, _ in pairs if g == f) for f, _ in pairs}
        seen: dict[str, int] = {}
        generators = []
        for family, path in pairs:
            seen[family] = seen.get(family, 0) + 1
            name = family if counts[family] == 1 else f"{family}_{seen[family]}"
            generators.append({"family": family, "checkpoint": path, "name": name})
    if args.rounds is not None and args.rounds < 1:
        raise ValueError("--rounds must be at least 1")
    config = CoevolveConfig.from_preset(args.preset, world=args.world, detector=args.detector, generators=generators,
                                        rounds=args.rounds, device=args.device, seed=args.seed)
    if args.held_out_family is not None:
        held = None if args.held_out_family.lower() == "none" else args.held_out_family
        config = CoevolveConfig(**{**config.to_dict(), "held_out_family": held})
    return config


def parse_seeds(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"--seeds {text!r}: expected whole numbers separated by commas, e.g. 0,1,2") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds {text!r}: give distinct seeds, e.g. 0,1,2")
    return seeds


def run(args) -> int:
    from detectors.promote import CHALLENGER, CHAMPION, MODEL_NAME
    from forensics.harness import run_coevolution, run_seeds
    from forensics.harness.report import matrix_table, rounds_table
    from forensics.harness.seeds import seeds_table

    try:
        config = build_config(args)
        seeds = parse_seeds(args.seeds)
        for g in config.generators:
            if not Path(g["checkpoint"]).exists():
                raise ValueError(f"{g['checkpoint']}: no such {g['family']} checkpoint folder")
        if config.detector not in (CHAMPION, CHALLENGER) and not Path(config.detector).exists():
            raise ValueError(f"{config.detector}: no such detector folder")
    except (ValueError, TypeError, OSError) as exc:
        return _usage(" ".join(str(exc).split()))
    started = time.perf_counter()
    try:
        if seeds is not None:
            aggregate = run_seeds(config, args.out, seeds, progress=not args.quiet)
            if aggregate is None:      # a torchrun rank other than 0: rank 0 reports
                return 0
            print(json.dumps(aggregate, indent=2) if args.json else seeds_table(aggregate))
            print(f"\n{len(seeds)} run(s) in {(time.perf_counter() - started) / 60:.1f} min -> {args.out}/seed_*, "
                  f"{args.out}/seeds.md", file=sys.stderr if args.json else sys.stdout)
            return 0
        records = run_coevolution(config, args.out, register=not args.no_register, progress=not args.quiet,
                                  run_name=args.run_name)
    except ValueError as exc:      # checkpoints, resolutions, families, a foreign OUT, a small world: the user's
        return _usage(" ".join(str(exc).split()))
    if records is None:                # a torchrun rank other than 0: rank 0 reports
        return 0
    if args.json:
        print(json.dumps(records, indent=2, default=str))
        return 0
    summary = json.loads((Path(args.out) / "summary.json").read_text())
    last = summary["rounds"][-1]
    table = json.loads((Path(args.out) / "state.json").read_text())["rounds"][str(last["round"])]["steps"]["panel"]
    print(rounds_table(records))
    print("\npanel after the last round (video AUC [95% CI]; rows: detector versions, columns: fakes vs real test "
          "videos):")
    print(matrix_table(table["matrix"], summary["panel_columns"]))
    champion = summary.get("champion") or {}
    print(f"\n{len(records)} round(s) in {(time.perf_counter() - started) / 60:.1f} min -> {args.out}")
    print(f"champion: {champion.get('name')} {champion.get('path')}"
          + (f" (registered {MODEL_NAME} version {champion['version']}, alias {CHAMPION})"
             if champion.get("version") else ""))
    print(f"MLflow: experiment 'coevolve', parent run {summary.get('parent_run_id')}  (open with: forensics ui)")
    return 0


def _usage(message: str) -> int:
    # The harness's own errors already say "coevolve: ..." (they are raised for library callers too).
    print(f"forensics coevolve: {message.removeprefix('coevolve: ')}", file=sys.stderr)
    return 2
