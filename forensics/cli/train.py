"""`forensics train detector`: data -> face-crop cache -> training -> calibrated, registered model.

With no dataset given it renders the built-in synthetic world first, so the command works on a fresh
machine with no data and no internet.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

EXAMPLES = """\
examples:
  forensics train detector                                   # synthetic world, cpu-small preset
  forensics train detector --root data/synth --identities 40 --epochs 6
  forensics train detector --dataset ffpp --root /data/FF++ --preset gpu --device cuda
  forensics train detector --config my_detector.yaml --out runs/det2 --no-register

The model (safetensors + config.json) goes to OUT/model and, unless --no-register, to the MLflow
registry as `forensics-detector` with alias `challenger` (and `champion` if there is none yet).
Interrupted? Run the same command again: training resumes from OUT/checkpoints/last.
"""


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train a detector or a generator",
                       description="Train models with the shared loop (device auto, bf16 on CUDA, "
                                   "checkpoint/resume, early stopping, MLflow logging).")
    what = p.add_subparsers(dest="what", metavar="WHAT")
    d = what.add_parser("detector", help="train a real/fake face detector on self-blended pseudo-fakes",
                        description="Train a frame detector on real faces and their self-blended pseudo-fakes "
                                    "(plus any fakes the dataset holds), calibrate it on validation data, "
                                    "test it on unseen identities and register it in MLflow.",
                        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    d.add_argument("--preset", default="cpu-small", help="cpu-small (default) or gpu, or a YAML file")
    d.add_argument("--config", default=None, help="YAML file of DetectorTrainConfig keys (overrides --preset)")
    d.add_argument("--dataset", default=None, help="adapter name (default: guessed; synthetic if ROOT is absent)")
    d.add_argument("--root", default="data/synth", help="dataset folder (default data/synth; rendered if absent)")
    d.add_argument("--cache", default=None, help="face-crop cache folder (default ROOT/face_cache)")
    d.add_argument("--out", default="runs/detector", help="output folder (default runs/detector)")
    d.add_argument("--detector", default=None, help="architecture from the registry (see --list)")
    d.add_argument("--list", action="store_true", help="list detector architectures and exit")
    d.add_argument("--pretrained-file", default=None, help="local backbone weights (safetensors); never downloads")
    d.add_argument("--epochs", type=int, default=None)
    d.add_argument("--batch-size", type=int, default=None)
    d.add_argument("--lr", type=float, default=None)
    d.add_argument("--seed", type=int, default=None)
    d.add_argument("--identities", type=int, default=40, help="identities when rendering the world (default 40)")
    d.add_argument("--device", default="auto", help="auto | cpu | cuda (default auto)")
    d.add_argument("--no-resume", action="store_true", help="start over instead of resuming OUT/checkpoints")
    d.add_argument("--no-register", action="store_true", help="do not register the model in MLflow")
    d.add_argument("--alias", default="challenger", help="registry alias for the new model (default challenger)")
    d.add_argument("--run-name", default=None, help="MLflow run name")
    d.add_argument("--quiet", action="store_true", help="no progress bars")
    d.set_defaults(func=run_detector)
    g = what.add_parser("generator", help="train a face-swap or face-animation GAN on the synthetic world",
                        description="Train a generator family with the shared loop (device auto, bf16 on CUDA, "
                                    "checkpoint/resume), logging losses and a grid of sample fakes every epoch "
                                    "to MLflow's `generators` experiment, and a short sample video at the end.",
                        epilog=GENERATOR_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    g.add_argument("family", help="faceswap or animation")
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
Interrupted? Run the same command again: training resumes from OUT/last.
"""


def run_generator(args) -> int:
    from generators.registry import create_generator

    overrides = {"world": args.world, "epochs": args.epochs, "device": args.device, "seed": args.seed}
    if args.family == "faceswap":
        overrides.update(identity_a=args.identity_a, identity_b=args.identity_b)
    elif args.identity_a is not None or args.identity_b is not None:
        return _usage("--identity-a/--identity-b are faceswap options")
    try:
        spec, config = create_generator(args.family, args.preset, **overrides)
    except (ValueError, TypeError, OSError) as exc:
        return _usage(" ".join(str(exc).split()))
    world = Path(getattr(config, "world", "data/synth"))
    if not (world / "manifest.csv").is_file():
        from forensics.synthetic import WorldConfig, generate_world

        print(f"rendering the synthetic world -> {world}", file=sys.stderr)
        generate_world(world, WorldConfig(identities=40, videos_per_identity=2, frames=32))
    from forensics.tracking import start_run

    out = Path(args.out or f"runs/{args.family}")
    started = time.perf_counter()
    with start_run("generators", run_name=args.run_name or f"{args.family}-{time.strftime('%m%d-%H%M')}",
                   params=config.to_dict(), tags={"family": args.family}) as run:
        fit, model_dir = spec.train(config, out, run=run)
    print(f"trained {args.family} in {(time.perf_counter() - started) / 60:.1f} min "
          f"({fit.epochs_run} epochs) -> {model_dir}")
    print(f"MLflow: experiment 'generators', run {run.run_id}  (open with: forensics ui)")
    return 0


def run_detector(args) -> int:
    from forensics.training.detector_task import DetectorTrainConfig

    if args.list:
        from detectors import DEFAULT_DETECTOR, list_detectors

        for name in list_detectors():
            print(name + ("  (default)" if name == DEFAULT_DETECTOR else ""))
        return 0
    for name in ("epochs", "batch_size", "identities"):
        value = getattr(args, name)
        if value is not None and value < 1:
            return _usage(f"--{name.replace('_', '-')} must be at least 1")
    try:
        config = DetectorTrainConfig.from_preset(args.config or args.preset, detector=args.detector,
                                                 epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                                                 seed=args.seed, device=args.device,
                                                 pretrained_file=args.pretrained_file)
    except (ValueError, TypeError, OSError) as exc:
        return _usage(str(exc))
    if config.detector:
        from detectors import list_detectors

        if config.detector not in list_detectors():
            return _usage(f"unknown detector {config.detector!r} (known: {', '.join(list_detectors())})")

    started = time.perf_counter()
    cache, status = prepare_cache(args, config)
    if cache is None:
        return status

    from forensics.pipelines.train_detector import train_detector
    from forensics.tracking import start_run

    out = Path(args.out)
    params = {**{k: v for k, v in config.to_dict().items() if k != "extra"}, "dataset_root": str(args.root),
              "cache": str(cache.root)}
    with start_run("detectors", run_name=args.run_name or f"{config.detector}-{time.strftime('%m%d-%H%M')}",
                   params=params, tags={"kind": "detector-training"}) as run:
        result = train_detector(config, cache, out, run=run, resume=not args.no_resume,
                                register=not args.no_register, alias=args.alias, progress=not args.quiet)
        if result.registered_version and args.alias != "champion":
            promote_if_first(result.registered_version)
    print_summary(result, run, time.perf_counter() - started)
    return 0 if status == 0 else 1


def prepare_cache(args, config):
    """Render the synthetic world if needed, then fill the face-crop cache; returns (cache, status)."""
    from forensics.data.cache import CacheConfig, FaceCache
    from forensics.data.registry import DatasetError, create_dataset, detect_layout

    root = Path(args.root)
    name = args.dataset
    if not root.exists():
        if name not in (None, "synthetic"):
            return None, _usage(f"{root}: no such folder")
        from forensics.synthetic import WorldConfig, generate_world

        print(f"rendering the synthetic world ({args.identities} identities x 2 videos) -> {root}", file=sys.stderr)
        generate_world(root, WorldConfig(identities=args.identities, videos_per_identity=2, frames=32,
                                         seed=config.seed), progress=not args.quiet)
        name = "synthetic"
    name = name or detect_layout(root)
    if name is None:
        return None, _usage(f"{root}: cannot tell the dataset layout; pass --dataset")
    try:
        rows = create_dataset(name, root).rows()
    except (DatasetError, KeyError, ValueError) as exc:
        return None, _usage(" ".join(str(exc).split()))
    cache = FaceCache(Path(args.cache) if args.cache else root / "face_cache",
                      CacheConfig(frames=config.frames_per_video, crop_size=config.crop_size, margin=config.margin,
                                  device=args.device))
    report = cache.build(rows, progress=not args.quiet)
    for path, reason in report.errors:
        print(f"skipped: {reason if reason.startswith(path) else f'{path}: {reason}'}", file=sys.stderr)
    return cache, (1 if report.errors else 0)


def print_summary(result, run, elapsed: float) -> None:
    def line(split: str, summary: dict | None) -> str:
        if not summary:
            return f"  {split:<10} (no split)"
        f, v = summary["frame"], summary["video"]
        ci = v.get("auc_ci")
        ci_text = f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""
        return (f"  {split:<10} frame AUC {f['auc']:.3f}  EER {f['eer']:.3f}  |  video AUC {v['auc']:.3f}{ci_text}"
                f"  EER {v['eer']:.3f}  acc@thr {v['acc']:.3f}  ({v['n_real']} real / {v['n_fake']} fake videos)")

    print(f"trained in {elapsed / 60:.1f} min: best epoch {result.best_epoch} of {result.epochs_run}"
          f"{' (stopped early)' if result.stopped_early else ''}; threshold {result.threshold:.3f}")
    print(line("validation", result.validation))
    print(line("test", result.test))
    print(f"model: {result.model_dir}")
    if result.registered_version:
        print(f"registered: forensics-detector version {result.registered_version}")
    if run is not None:
        print(f"MLflow: experiment 'detectors', run {run.run_id}  (open with: forensics ui)")


def promote_if_first(version: str) -> None:
    """`forensics detect` uses the `champion`; the first model ever trained becomes it so detect works."""
    from forensics.tracking import resolve_model, set_model_alias

    if resolve_model("forensics-detector", "champion") is None:
        set_model_alias("forensics-detector", version, "champion")
        print(f"no champion yet: forensics-detector version {version} is now `champion`", file=sys.stderr)


def _usage(message: str) -> int:
    print(f"forensics train detector: {message}", file=sys.stderr)
    return 2
