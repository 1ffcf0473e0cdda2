"""`forensics train detector|generator`: arguments in, one call to forensics.pipelines.train, a summary out.

With no dataset given it renders the built-in synthetic world first, so the command works on a fresh
machine with no data and no internet. Heavy imports are deferred into the functions so `--help` is fast.
"""
from __future__ import annotations

import argparse
import sys
import time

from forensics.cli.flags import deprecated

EXAMPLES = """\
examples:
  forensics train detector                                   # synthetic world, cpu-small preset
  forensics train detector --root data/synth --identities 40 --epochs 6
  forensics train detector --dataset ffpp --root /data/FF++ --preset gpu --device cuda
  forensics train detector --config my_detector.yaml --out runs/det2 --no-register
  forensics train detector --arch temporal-small --out runs/temporal       # clip detector, held-out kind reported
  forensics bundle --frame runs/detector/model --temporal runs/temporal/model --out runs/bundle
  torchrun --standalone --nproc-per-node 4 -m forensics.cli.main train detector --preset gpu   # 4 GPUs, one job

The model (safetensors + config.json) goes to OUT/model and, unless --no-register, to the MLflow
registry as `forensics-detector` with alias `challenger` (and `champion` if there is none yet).
Interrupted? Run the same command again: training resumes from OUT/checkpoints/last.
"""


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train a detector or a generator",
                       description="Train models with the shared loop (device auto, bf16 on CUDA, "
                                   "checkpoint/resume, early stopping, MLflow logging).")
    what = p.add_subparsers(dest="what", metavar="WHAT")
    d = what.add_parser("detector", help="train a real/fake face detector on pseudo-fakes of real faces",
                        description="Train a frame detector on real faces and their self-blended pseudo-fakes "
                                    "(plus any fakes the dataset holds), or a clip detector (--arch "
                                    "temporal-small) on real clips and their temporal pseudo-fakes; calibrate it "
                                    "on validation data, test it on unseen identities and register it in MLflow.",
                        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    d.add_argument("--preset", default=None, help="cpu-small (default for frame detectors), gpu, temporal-small "
                   "(default for clip detectors such as --arch temporal-small), temporal-gpu, or a YAML file")
    d.add_argument("--config", default=None, help="YAML file of DetectorTrainConfig keys (overrides --preset)")
    d.add_argument("--dataset", default=None, help="adapter name (default: guessed; synthetic if ROOT is absent)")
    d.add_argument("--root", default="data/synth", help="dataset folder (default data/synth; rendered if absent)")
    d.add_argument("--cache", default=None, help="face-crop cache folder (default ROOT/face_cache; "
                   "ROOT/face_cache_clips for clip detectors)")
    d.add_argument("--out", default="runs/detector", help="output folder (default runs/detector)")
    d.add_argument("--arch", dest="detector", default=None, metavar="NAME",
                   help="architecture from the registry (see --list; default: the preset's)")
    deprecated(d, "--detector", "--arch", dest="detector")
    d.add_argument("--list", action="store_true", help="list detector architectures and exit")
    d.add_argument("--pretrained-file", default=None, help="local backbone weights (safetensors); never downloads")
    d.add_argument("--show-preset", action="store_true",
                   help="print the preset's settings (with --preset/--config and any flags applied) and exit")
    d.add_argument("--epochs", type=int, default=None, help="training epochs (default: the preset's; see --show-preset)")
    d.add_argument("--batch-size", type=int, default=None, help="crops per batch (default: the preset's)")
    d.add_argument("--lr", type=float, default=None, help="learning rate (default: the preset's)")
    d.add_argument("--seed", type=int, default=None, help="random seed (default: the preset's)")
    d.add_argument("--identities", type=int, default=40, help="identities when rendering the world (default 40)")
    d.add_argument("--device", default="auto", help="auto | cpu | cuda (default auto)")
    d.add_argument("--fresh", action="store_true", help="start over instead of resuming OUT/checkpoints")
    deprecated(d, "--no-resume", "--fresh", dest="fresh", kind="store_true")
    d.add_argument("--no-register", action="store_true", help="do not register the model in MLflow")
    d.add_argument("--alias", default=None, help="registry alias for the new model (default: challenger)")
    d.add_argument("--run-name", default=None, help="MLflow run name")
    d.add_argument("--quiet", action="store_true", help="no progress bars")
    d.set_defaults(func=run_detector)
    g = what.add_parser("generator", help="train a face-swap or face-animation GAN on the synthetic world",
                        description="Train a generator family with the shared loop (device auto, bf16 on CUDA, "
                                    "checkpoint/resume), logging losses and a grid of sample fakes every epoch "
                                    "to MLflow's `generators` experiment, and a short sample video at the end.",
                        epilog=GENERATOR_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    g.add_argument("family", help="a generator family: faceswap or animation")
    g.add_argument("--preset", default="cpu-small", help="cpu-small (64x64, minutes on 2 CPU cores) or gpu "
                                                           "(256x256), or a YAML file")
    g.add_argument("--world", default=None, help="synthetic world folder (default from the preset: data/synth)")
    g.add_argument("--out", default=None, help="model folder (default runs/<family>)")
    g.add_argument("--epochs", type=int, default=None)
    g.add_argument("--identity-a", type=int, default=None, help="faceswap: identity drawn by decoder a")
    g.add_argument("--identity-b", type=int, default=None, help="faceswap: identity drawn by decoder b")
    g.add_argument("--device", default=None, help="auto | cpu | cuda")
    g.add_argument("--seed", type=int, default=None)
    g.add_argument("--run-name", default=None)
    g.set_defaults(func=run_generator)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


GENERATOR_EXAMPLES = """\
examples:
  forensics train generator faceswap                        # identities 0 and 1 of data/synth, cpu-small
  forensics train generator faceswap --identity-a 3 --identity-b 7 --out runs/swap37
  forensics train generator animation --preset gpu --device cuda
  torchrun --standalone --nproc-per-node 4 -m forensics.cli.main train generator faceswap --preset gpu
The batch size is the global batch: N torchrun processes each train on their share and give the model one
process would. Interrupted? Run the same command again: training resumes from OUT/last.
"""


def run_generator(args) -> int:
    from forensics.pipelines.train import run_generator_training
    from generators.registry import create_generator

    overrides = {"world": args.world, "epochs": args.epochs, "device": args.device, "seed": args.seed,
                 "identity_a": args.identity_a, "identity_b": args.identity_b}
    try:
        spec, _ = create_generator(args.family, args.preset)
        unknown = [k for k, v in overrides.items() if v is not None and k not in spec.config.__dataclass_fields__]
        if unknown:
            flags = ", ".join("--" + k.replace("_", "-") for k in unknown)
            return _usage(f"{flags}: not an option of the {args.family} family", "generator")
        trained = run_generator_training(args.family, args.preset, args.out or f"runs/{args.family}",
                                         run_name=args.run_name, **overrides)
    except (ValueError, TypeError, OSError) as exc:
        return _usage(" ".join(str(exc).split()), "generator")
    if trained is None:        # a torchrun rank other than 0: rank 0 reports
        return 0
    print(f"trained {args.family} in {trained.seconds / 60:.1f} min ({trained.epochs_run} epochs) -> "
          f"{trained.model_dir}")
    print(f"MLflow: experiment 'generators', run {trained.run_id}  (open with: forensics ui)")
    return 0


def run_detector(args) -> int:
    from detectors.promote import CHALLENGER
    from detectors.registry import DEFAULT_DETECTOR, detector_kind, list_detectors
    from detectors.task import DetectorTrainConfig
    from forensics.data.registry import DatasetError
    from forensics.device import resolve_device
    from forensics.pipelines.train import prepare_cache, run_detector_training
    from forensics.training import distributed as D

    if args.list:
        for name in list_detectors():
            print(name + ("  (default)" if name == DEFAULT_DETECTOR else "")
                  + ("  (clip detector: train with --arch NAME, use inside a bundle)" if detector_kind(name) == "clip"
                     else ""))
        return 0
    for name in ("epochs", "batch_size", "identities"):
        value = getattr(args, name)
        if value is not None and value < 1:
            return _usage(f"--{name.replace('_', '-')} must be at least 1")
    if args.detector is not None and args.detector not in list_detectors():
        return _usage(f"unknown architecture {args.detector!r} (known: {', '.join(list_detectors())})")
    preset = args.config or args.preset or (
        "temporal-small" if args.detector and detector_kind(args.detector) == "clip" else "cpu-small")
    try:
        config = DetectorTrainConfig.from_preset(preset, detector=args.detector,
                                                 epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                                                 seed=args.seed, device=args.device,
                                                 pretrained_file=args.pretrained_file)
    except (ValueError, TypeError, OSError) as exc:
        return _usage(str(exc))
    if args.show_preset:
        import yaml

        print(f"# {preset}" + (" with the flags given" if any(getattr(args, k) is not None for k in (
            "detector", "epochs", "batch_size", "lr", "seed", "pretrained_file")) else ""))
        print(yaml.safe_dump(config.to_dict(), sort_keys=False).rstrip())
        return 0
    if config.detector not in list_detectors():
        return _usage(f"unknown detector {config.detector!r} (known: {', '.join(list_detectors())})")

    started = time.perf_counter()
    try:
        device_type = resolve_device(config.device).type
    except ValueError as exc:
        return _usage(str(exc))
    with D.job(device_type):       # under torchrun: rank 0 fills the cache and reports, every rank trains
        try:
            prepared = D.main_first(prepare_cache, args.root, config, dataset=args.dataset, cache_dir=args.cache,
                                    identities=args.identities, progress=not args.quiet and D.is_main())
        except DatasetError as exc:
            return _usage(" ".join(str(exc).split()))
        for path, reason in prepared.report.errors if D.is_main() else ():
            print(f"skipped: {reason if reason.startswith(path) else f'{path}: {reason}'}", file=sys.stderr)
        try:
            trained = run_detector_training(config, prepared.cache, args.out, run_name=args.run_name,
                                            resume=not args.fresh,
                                            register_as=None if args.no_register else args.alias or CHALLENGER,
                                            progress=not args.quiet, params={"dataset_root": str(args.root)})
        except ValueError as exc:      # a calibration refused, an empty split: one line, not a traceback
            print(f"forensics train detector: {' '.join(str(exc).split())}", file=sys.stderr)
            return 1
    if trained is None:        # a torchrun rank other than 0: rank 0 reports
        return 0
    print_summary(trained.result, trained.run_id, time.perf_counter() - started)
    return 1 if prepared.report.errors else 0


def print_summary(result, run_id: str | None, elapsed: float) -> None:
    unit = "clip" if getattr(result, "kind", "frame") == "clip" else "frame"

    def line(split: str, summary: dict | None) -> str:
        if not summary:
            return f"  {split:<10} (no split)"
        f, v = summary["frame"], summary["video"]
        ci = v.get("auc_ci")
        ci_text = f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""
        return (f"  {split:<10} {unit} AUC {f['auc']:.3f}  EER {f['eer']:.3f}  |  video AUC {v['auc']:.3f}{ci_text}"
                f"  EER {v['eer']:.3f}  acc@thr {v['acc']:.3f}  ({v['n_real']} real / {v['n_fake']} fake videos)")

    print(f"trained in {elapsed / 60:.1f} min: best epoch {result.best_epoch} of {result.epochs_run}"
          f"{' (stopped early)' if result.stopped_early else ''}; threshold {result.threshold:.3f}")
    print(line("validation", result.validation))
    print(line("test", result.test))
    for kind, row in (getattr(result, "test_by_kind", None) or {}).items():
        held = "  (held out: never trained on)" if kind in result.held_out_kinds else ""
        ci = row.get("auc_ci") or [float("nan")] * 2
        print(f"  test, {kind:<15} video AUC {row['auc']:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]{held}")
    print(f"model: {result.model_dir}")
    if result.registered_version:
        print(f"registered: forensics-detector version {result.registered_version}")
    if run_id is not None:
        print(f"MLflow: experiment 'detectors', run {run_id}  (open with: forensics ui)")


def _usage(message: str, what: str = "detector") -> int:
    print(f"forensics train {what}: {message}", file=sys.stderr)
    return 2
