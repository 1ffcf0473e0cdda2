"""The cross-dataset protocol (DeepfakeBench, SBI) as a suite: train on FaceForensics++ (c23), test on its test
split and, never trained on, on Celeb-DF v2, DFD, DFDC and DFDCP, 32 frames per video.

The datasets are the user's (`--data-root DIR` holding FaceForensics++/, Celeb-DF-v2/, DFDC/, DFDCP/; DFD is the
DeepFakeDetection part of the FF++ tree, scored against its own actors). Nothing is downloaded; a dataset that is
not there is a row that says so. Training is `forensics train detector` (a preset, self-blends plus FF++'s fakes)
without registering the model; every test row is `forensics evaluate` on that dataset's test split: frame AUC,
video AUC as DeepfakeBench computes it (mean of frame probabilities) and as `forensics detect` scores a video,
with 95% bootstrap intervals. The published figures sit beside ours as data, each with its source, so a table
never mixes ours with theirs unlabelled.
"""
from __future__ import annotations

from pathlib import Path

from benchmarks.suites import SuiteError, SuiteKind, register_kind
from benchmarks.tables import markdown_table
from detectors.task import DetectorTrainConfig
from detectors.train import train_detector
from forensics.data.cache import CacheConfig
from forensics.data.prepare import cache_dataset
from forensics.data.registry import DatasetError
from forensics.pipelines.evaluate import EvaluateError, evaluate_detector
from forensics.tracking import start_run

FFPP_METHODS = ["Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures"]
DEEPFAKEBENCH = "DeepfakeBench (Yan et al., NeurIPS 2023 Datasets and Benchmarks), frame AUC, trained on FF++ c23"
SBI = "SBI (Shiohara and Yamasaki, CVPR 2022), EfficientNet-B4 trained on FF++ c23 real videos, video AUC"

DEFAULTS = {
    "data_root": None,                     # the folder holding the datasets (--data-root)
    "train": {"name": "FF++ c23", "folder": "FaceForensics++", "dataset": "ffpp",
              "options": {"compression": "c23", "methods": FFPP_METHODS, "reals": "youtube"}},
    "tests": [
        {"name": "FF++ c23", "folder": "FaceForensics++", "dataset": "ffpp", "split": "test",
         "options": {"compression": "c23", "methods": FFPP_METHODS, "reals": "youtube"}},
        {"name": "CDF", "folder": "Celeb-DF-v2", "dataset": "celebdf", "split": "test", "options": {}},
        # DFD has no official split and is never trained on: all of it is test data
        {"name": "DFD", "folder": "FaceForensics++", "dataset": "ffpp", "split": "all",
         "options": {"compression": "c23", "methods": ["DeepFakeDetection"], "reals": "actors"}},
        {"name": "DFDC", "folder": "DFDC", "dataset": "dfdc", "split": "test", "options": {}},
        {"name": "DFDCP", "folder": "DFDCP", "dataset": "dfdcp", "split": "test", "options": {}},
    ],
    "preset": "gpu",                       # DetectorTrainConfig preset (EfficientNet-B4, SBI recipe)
    "epochs": None,                        # the preset's unless set
    "detector_config": {},                 # any other DetectorTrainConfig key (batch_size, pretrained_file, ...)
    "frames": 32,                          # frames per video, training and test (DeepfakeBench's 32)
    "seed": 0,
    "published": [                         # figures from the papers, kept as data with their source
        {"test": "FF++ c23", "model": "Xception", "level": "frame", "auc": 0.9637, "source": DEEPFAKEBENCH},
        {"test": "FF++ c23", "model": "EfficientNet-B4", "level": "frame", "auc": 0.9567, "source": DEEPFAKEBENCH},
        {"test": "FF++ c23", "model": "UCF", "level": "frame", "auc": 0.9705, "source": DEEPFAKEBENCH},
        {"test": "CDF", "model": "SBI", "level": "video", "auc": 0.9287, "source": SBI},
        {"test": "DFD", "model": "SBI", "level": "video", "auc": 0.9816, "source": SBI},
        {"test": "DFDC", "model": "SBI", "level": "video", "auc": 0.7196, "source": SBI},
        {"test": "DFDCP", "model": "SBI", "level": "video", "auc": 0.8551, "source": SBI},
    ],
}


def run(ctx) -> dict:
    p = ctx.params
    root = Path(p["data_root"])
    try:
        config = DetectorTrainConfig.from_preset(p["preset"], seed=p["seed"], device=ctx.device,
                                                 frames_per_video=int(p["frames"]),
                                                 **({"epochs": int(p["epochs"])} if p["epochs"] else {}),
                                                 **(p["detector_config"] or {}))
    except (TypeError, ValueError, OSError) as exc:
        raise SuiteError(f"detector settings: {' '.join(str(exc).split())}") from None
    cells = ctx.cells({"data_root": str(root.resolve()), "train": p["train"], "config": config.to_dict()})
    trained = cells.done("train") or _train(ctx, root, p["train"], config, cells)
    rows = []
    for test in p["tests"]:
        folder = root / test["folder"]
        if not folder.is_dir():
            rows.append({"name": test["name"], "status": "absent", "folder": str(folder)})
            continue
        row = cells.done(f"test {test['name']}")
        if row is None:
            row = _test(ctx, trained, folder, test, int(p["frames"]), p["seed"])
            if row["status"] == "ok":
                cells.record(f"test {test['name']}", row)
        rows.append(row)
    return {"train": trained, "rows": rows, "published": p["published"]}


def _train(ctx, root: Path, train: dict, config: DetectorTrainConfig, cells) -> dict:
    folder = root / train["folder"]
    if not folder.is_dir():
        raise SuiteError(f"{folder}: the training set ({train['name']}) is not there; the protocol trains on it")
    with ctx.stage("preprocess train"):
        try:
            cached = cache_dataset(folder, CacheConfig(frames=config.frames_per_video, crop_size=config.crop_size,
                                                       margin=config.margin, device=ctx.device),
                                   dataset=train["dataset"], cache_dir=ctx.work_dir / "cache-train",
                                   progress=ctx.progress, options=train["options"])
        except DatasetError as exc:
            raise SuiteError(" ".join(str(exc).split())) from None
    ctx.say(f"{ctx.suite.name}: training on {train['name']} ({folder})")
    out = ctx.work_dir / "detector"
    params = {**{k: v for k, v in config.to_dict().items() if k != "extra"}, "trained_on": train["name"]}
    with ctx.stage("train"), start_run("benchmarks", run_name=f"{ctx.suite.name}/train", params=params,
                                       tags={"kind": "benchmark-row", "suite": ctx.suite.name}, parent=ctx.run) as run:
        # AUCs rank and need no calibration: a refused Platt fit keeps the model, and the table says so
        result = train_detector(config, cached.cache, out, run=run, resume=True, register_as=None,
                                progress=ctx.progress, keep_refused=True)
    trained = {"model_dir": str(result.model_dir), "name": train["name"], "epochs_run": result.epochs_run,
               "validation_video_auc": (result.validation or {}).get("video", {}).get("auc"),
               "calibration_refused": result.calibration_refused,
               "train_videos": len({e.source for e in cached.cache.entries(split="train")})}
    cells.record("train", trained)
    return trained


def _test(ctx, trained: dict, folder: Path, test: dict, frames: int, seed: int) -> dict:
    ctx.say(f"{ctx.suite.name}: testing on {test['name']} ({folder})")
    safe = "".join(c if c.isalnum() else "_" for c in test["name"])
    try:
        with ctx.stage(f"test {test['name']}"):
            done = evaluate_detector(trained["model_dir"], folder, ctx.work_dir / "tests" / safe,
                                     dataset=test["dataset"], split=test.get("split", "test"), frames=frames,
                                     cache_dir=ctx.work_dir / f"cache-{safe}", device=ctx.device, seed=seed,
                                     progress=ctx.progress, say=ctx.say, options=test["options"], log_run=False)
    except (EvaluateError, DatasetError) as exc:
        ctx.fail(f"test {test['name']}", str(exc))
        return {"name": test["name"], "status": "failed", "reason": " ".join(str(exc).split())}
    levels = done.doc["levels"]
    return {"name": test["name"], "status": "ok", "folder": str(folder), "dataset": test["dataset"],
            **{f"{level}_{key}": levels[level].get(key) for level in ("frame", "video_mean", "video")
               for key in ("auc", "auc_ci", "n_fake", "n_real")},
            "results": str(done.out / "results.json")}


def _auc(row: dict, level: str) -> str:
    value, ci = row.get(f"{level}_auc"), row.get(f"{level}_auc_ci")
    if value is None:
        return "n/a"
    return f"{value:.4f} [{ci[0]:.3f}, {ci[1]:.3f}]" if ci and None not in ci else f"{value:.4f}"


def markdown(document: dict) -> str:
    results = document["results"]
    trained = results["train"]
    published: dict[str, list[str]] = {}
    for entry in results["published"]:
        published.setdefault(entry["test"], []).append(f"{entry['model']} {entry['level']} {entry['auc']:.4f}")
    rows = []
    for row in results["rows"]:
        if row["status"] != "ok":
            rows.append([row["name"], row["status"] if row["status"] == "absent" else f"failed: {row['reason']}",
                         "", "", "", "; ".join(published.get(row["name"], []))])
            continue
        rows.append([row["name"], f"{row['video_n_fake']} / {row['video_n_real']}", _auc(row, "frame"),
                     _auc(row, "video_mean"), _auc(row, "video"), "; ".join(published.get(row["name"], []))])
    sources = sorted({entry["source"] for entry in results["published"]})
    validation = trained["validation_video_auc"]
    return "\n".join([
        f"Trained on {trained['name']} ({trained['train_videos']} train videos, {trained['epochs_run']} epoch(s); "
        f"validation video AUC {'n/a' if validation is None else f'{validation:.4f}'}). Ours: AUC [95% bootstrap "
        "CI over videos] on each test split; published: the papers' figures, not rerun here."
        + (f" Calibration: {trained['calibration_refused']}. The AUCs stand; the threshold does not."
           if trained.get("calibration_refused") else ""),
        "", markdown_table(["test set", "fake / real videos", "ours: frame AUC", "ours: video AUC (mean of frame "
                            "probabilities, as DeepfakeBench)", "ours: video AUC (forensics detect)", "published"],
                           rows), "", "Published figures:", *(f"- {s}" for s in sources)])


def metrics(results: dict) -> dict:
    out = {}
    for row in results["rows"]:
        key = "".join(c if c.isalnum() else "_" for c in row["name"])
        for level in ("frame", "video_mean", "video"):
            if isinstance(row.get(f"{level}_auc"), (int, float)):
                out[f"{key}/{level}_auc"] = float(row[f"{level}_auc"])
    return out


KIND = register_kind(SuiteKind("protocol", DEFAULTS, run, markdown, metrics, inputs=("data_root",)))
