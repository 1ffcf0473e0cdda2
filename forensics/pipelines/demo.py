"""The demo recipe: the project's main job end to end, at a size a 2-core CPU finishes in minutes.

render a synthetic world -> cache its faces -> train the default detector (D0) on self-blended pseudo-fakes ->
train the face-swap (on two training identities) and face-animation generators -> play the co-evolution game
for a few rounds (the animation model held out: only scored) -> the champion is whoever the evidence supports
(D0 if no candidate beat it on the panel) -> train a clip detector on real videos' temporal pseudo-fakes and
bundle it with the champion (registered as a challenger); the bundle becomes the champion only if it beats it
on the game's panel through the product path (forensics.pipelines.panel_gate) -> scan a panel real video and a
panel fake of the latest face-swap version, neither of which anything trained on.

Every stage is resumable: re-running with the same OUT reuses the rendered world, the face cache and the
finished checkpoints, so an interrupted demo picks up where it stopped.
"""
from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from detectors import promote
from detectors.task import DetectorTrainConfig
from forensics.io import atomic_write_json
from forensics.data.manifest import read_manifest
from forensics.harness import CoevolveConfig, run_coevolution
from forensics.harness.panel import Panel
from forensics.pipelines.detect import DetectConfig
from forensics.pipelines.panel_gate import gate_on_panel
from forensics.pipelines.scan import print_summary, scan
from forensics.pipelines.train import (prepare_cache, run_bundle_fitting, run_detector_training,
                                       run_generator_training)
from forensics.tracking import set_model_version_tags
from forensics.presets import read_preset
from forensics.report import ReportWriter
from forensics.synthetic import WorldConfig, generate_world

PRESET_DIR = Path(__file__).parent / "presets" / "demo"


@dataclass
class DemoConfig:
    """Sizes of every stage; `cpu-small` is what `make demo` runs, `mini` is the test's miniature."""
    identities: int = 24
    videos_per_identity: int = 2
    frames: int = 32
    size: int = 192
    val_fraction: float = 0.15          # identities where the detector's moves early-stop and calibrate
    test_fraction: float = 0.25         # identities of the evaluation panel (nothing trains on them)
    seed: int = 0
    detector_preset: str = "cpu-small"
    detector_epochs: int = 6
    detector_frames: int = 8            # frames per video cached for the detector
    detector_overrides: dict = field(default_factory=dict)   # any other DetectorTrainConfig key
    generator_preset: str = "cpu-small"
    generator_overrides: dict = field(default_factory=dict)   # per family: {faceswap: {epochs: 1}, ...}
    coevolve_preset: str = "cpu-small"
    coevolve_overrides: dict = field(default_factory=dict)
    rounds: int = 3
    temporal_preset: str | None = "temporal-small"     # the clip detector bundled with the champion (None: none)
    temporal_overrides: dict = field(default_factory=dict)
    device: str = "auto"

    @classmethod
    def from_preset(cls, name_or_path: str, **overrides) -> "DemoConfig":
        return cls(**read_preset(cls, PRESET_DIR, name_or_path, "demo", overrides))

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class DemoResult:
    world: Path
    detector: Path
    generators: dict[str, Path]
    rounds: list[dict]
    champion: Path | None
    scans: dict[str, dict]              # "real" / "fake" -> forensics detect record
    fake_video: Path | None
    timings: dict[str, float]
    summary: dict = field(default_factory=dict)      # the game's summary.json
    bundle: dict | None = None                        # the bundle, its version and its gate (bundle.json)


def render_world(config: DemoConfig, out: Path, say: Callable[[str], None]) -> Path:
    world = out / "synth"
    say(f"rendering {config.identities} identities x {config.videos_per_identity} videos x {config.frames} "
        f"frames at {config.size}px -> {world}")
    generate_world(world, WorldConfig(identities=config.identities, videos_per_identity=config.videos_per_identity,
                                      frames=config.frames, size=config.size, seed=config.seed,
                                      val_fraction=config.val_fraction, test_fraction=config.test_fraction))
    return world


def training_identities(world: Path) -> list[int]:
    """The world's train-split identities: the face swap's pair comes from them (the game trains only there)."""
    ids = sorted({int(str(r.identity).removeprefix("id")) for r in read_manifest(world / "manifest.csv")
                  if r.split == "train" and r.identity})
    if len(ids) < 2:
        raise ValueError(f"{world}: the demo needs at least 2 train-split identities, found {len(ids)} "
                         f"(render more identities)")
    return ids


def train_default_detector(config: DemoConfig, world: Path, out: Path, say: Callable[[str], None]):
    """Cache faces and train the detector on real faces + self-blended pseudo-fakes (no generator fakes)."""
    detector = dataclasses.replace(DetectorTrainConfig.from_preset(
        config.detector_preset, frames_per_video=config.detector_frames, epochs=config.detector_epochs,
        seed=config.seed, device=config.device), **config.detector_overrides)
    say(f"preprocessing faces (MTCNN, alignment, tracks) -> {out / 'face_cache'}")
    prepared = prepare_cache(world, detector, dataset="synthetic", cache_dir=out / "face_cache", progress=True,
                             say=say)
    report, cache, rows = prepared.report, prepared.cache, prepared.rows
    say(f"{len(rows)} videos: detected {report.processed}, cached already {report.skipped}, no face "
        f"{report.no_face}, errors {report.failed}; {sum(len(e.faces) for e in cache.entries())} aligned crops")
    say(f"training the default detector on real faces + self-blended pseudo-fakes -> {out / 'detector'}")
    trained = run_detector_training(detector, cache, out / "detector", run_name="demo-detector", progress=True,
                                    tags={"kind": "demo"})
    return trained.result, rows


def train_generators(config: DemoConfig, world: Path, out: Path, pair: tuple[int, int],
                     say: Callable[[str], None]) -> dict[str, Path]:
    """Face swap on two training identities (the game's generator), animation on the training split."""
    made = {}
    for family, extra in (("faceswap", {"identity_a": pair[0], "identity_b": pair[1]}), ("animation", {})):
        overrides = {"world": str(world), "seed": config.seed, "device": config.device, **extra,
                     **config.generator_overrides.get(family, {})}
        target = out / "generators" / family
        say(f"training the {family} generator ({config.generator_preset}) -> {target}")
        made[family] = run_generator_training(family, config.generator_preset, target, run_name=f"demo-{family}",
                                              tags={"kind": "demo"}, say=say, **overrides).model_dir
    return made


def run_demo(config: DemoConfig, out: str | Path, say: Callable[[str], None] = print) -> DemoResult:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 1)
        clock = now

    world = render_world(config, out, say)
    train_ids = training_identities(world)
    lap("render")
    detector, _ = train_default_detector(config, world, out, say)
    lap("detector")
    generators = train_generators(config, world, out, (train_ids[0], train_ids[1]), say)
    lap("generators")

    say(f"co-evolving detector and generators for {config.rounds} rounds -> {out / 'coevolve'}")
    harness = CoevolveConfig.from_preset(
        config.coevolve_preset, world=str(world), detector=str(detector.model_dir), rounds=config.rounds,
        generators=[{"family": f, "checkpoint": str(p)} for f, p in generators.items()], seed=config.seed,
        device=config.device, **config.coevolve_overrides)
    rounds = run_coevolution(harness, out / "coevolve", register=True, progress=True)
    lap("coevolve")

    summary = json.loads((out / "coevolve" / "summary.json").read_text())
    champion = Path(summary["champion"]["path"])
    bundle = None
    if config.temporal_preset:
        bundle = ship_bundle(config, world, out, champion, harness, say)
        champion = Path(bundle["bundle"]) if bundle["promoted"] else champion
        lap("bundle")
    real_video, fake_video = panel_pair(out / "coevolve", summary)
    say(f"scanning a panel real video and a panel fake of the latest face-swap version with the champion "
        f"({champion.name if bundle and bundle['promoted'] else summary['champion']['name']}): forensics detect "
        f"{real_video} {fake_video}")
    scans = scan_videos([real_video, fake_video], out)
    lap("detect")
    return DemoResult(world=world, detector=detector.model_dir, generators=generators, rounds=rounds,
                      champion=champion, scans=dict(zip(("real", "fake"), scans)),
                      fake_video=fake_video, timings=timings, summary=summary, bundle=bundle)


def ship_bundle(config: DemoConfig, world: Path, out: Path, champion: Path, harness: CoevolveConfig,
                say: Callable[[str], None]) -> dict:
    """Train the clip detector, bundle it with the game's champion (registered: challenger) and let the panel
    decide through the product path; promote on evidence only. The outcome is kept in OUT/bundle.json."""
    done = out / "bundle.json"
    if done.is_file():
        say(f"bundle: finished earlier ({done})")
        return json.loads(done.read_text())
    temporal = dataclasses.replace(DetectorTrainConfig.from_preset(config.temporal_preset, seed=config.seed,
                                                                   device=config.device), **config.temporal_overrides)
    say(f"caching clips of consecutive faces -> {out / 'face_cache_clips'}")
    prepared = prepare_cache(world, temporal, dataset="synthetic", cache_dir=out / "face_cache_clips", progress=True,
                             say=say)
    say(f"training the clip detector ({temporal.detector}) on temporal pseudo-fakes of real videos -> "
        f"{out / 'temporal'}")
    trained = run_detector_training(temporal, prepared.cache, out / "temporal", run_name="demo-temporal",
                                    register_as=None, progress=True, tags={"kind": "demo"})
    say(f"bundling it with the champion ({champion}) -> {out / 'bundle'}; the fusion is fitted on validation videos")
    fitted = run_bundle_fitting(champion, trained.result.model_dir, prepared.cache, out / "bundle", seed=config.seed,
                                device=config.device, run_name="demo-bundle")
    say("bundle vs champion on the game's panel through the product path (forensics detect on every panel video)")
    gate = gate_on_panel(out / "bundle", champion, out / "coevolve" / "panel.json", harness.bootstrap,
                         harness.confidence, harness.tolerance, seed=config.seed, say=say)
    decision = gate["decision"]
    version = fitted["registered_version"]
    if version is not None:
        set_model_version_tags(promote.MODEL_NAME, version, {"promotion": decision["reason"][:500]})
        if decision["promote"]:
            promote.promote(version, promote.CHAMPION)
    say(f"bundle: {decision['reason']}")
    outcome = {"bundle": str(out / "bundle"), "temporal": str(trained.result.model_dir), "version": version,
               "promoted": bool(decision["promote"] and version is not None), "fusion": fitted["fusion"],
               "validation_auc": fitted["auc"], "gate": gate}
    atomic_write_json(done, outcome)
    return outcome


def panel_pair(run_dir: Path, summary: dict) -> tuple[Path, Path]:
    """A real test video and the fake of the latest game-generator version made from that very video: the
    panel holds both, and nothing in the game trained on either."""
    panel = Panel.load(run_dir / "panel.json")
    latest = [c for c in panel.fake_columns if "@G" in c][-1]
    fake = panel.fakes(latest)[0]
    return Path(fake.target), Path(fake.path)


def scan_videos(videos: list[Path], out: Path) -> list[dict]:
    """Scan with the registered champion, as `forensics detect` without --model would (records in
    OUT/detections.jsonl, reports under OUT/report), so the demo shows what a user gets."""
    champion = promote.resolve(promote.CHAMPION)
    if champion is None:
        raise ValueError(promote.NO_CHAMPION)
    jsonl = out / "detections.jsonl"
    if jsonl.exists():
        jsonl.unlink()
    return scan(videos, champion, DetectConfig(), jsonl=jsonl, reports=ReportWriter(out / "report"),
                on_record=print_summary).records
