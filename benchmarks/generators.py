"""Generator quality and training speed: the cpu-small face swap and face animation checkpoints, judged by the
probes (forensics.probes) against the synthetic world's ground truth, plus MTCNN, plus `forensics detect`.

    .venv/bin/python -m benchmarks.generators        # after train_probes, train generator faceswap/animation

Frames not seen in training wherever possible. The face swap trains on every frame of both identities, so
its headline figures use *held-out scenes*: new clips of the same two people rendered under scene seeds
that neither the generator nor the probes ever saw (light, background, head trajectory), written through
H.264 and aligned like the world's crops; the world's own (training) videos are reported beside them.
The animation model trains on the train split and picks nothing on the test split: all its figures use
the test-split identities. Results go to benchmarks/results/generators.json (rewritten after each part,
so an interruption keeps what was measured) and the sample grids to docs/. The training-throughput part is
measured by benchmarks/generator_throughput.py.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from benchmarks.generator_throughput import FAMILIES, measure_throughput
from benchmarks.machine import machine_info
from forensics.data.manifest import read_manifest
from forensics.faces import align_face
from forensics.figures import sample_grid
from forensics.io import atomic_path, atomic_write_json, read_jsonl
from forensics.media import iter_frames, write_video
from forensics.probes import animation_quality, landmark_nme, load_probes, mtcnn_face_rate, swap_quality
from forensics.probes.scenes import SCENE_OFFSET
from forensics.synthetic import VideoConfig, five_points, load_truth, render_video, world_identity
from forensics.synthetic.faceset import load_faceset
from forensics.synthetic.world import video_seed
from generators.animation import load_animation, reenact_crops
from generators.faceswap import load_faceswap, swap_crops, swap_video

COMMAND = ".venv/bin/python -m benchmarks.generators"
HELDOUT_SCENE = 1000   # scene index offset above the probes' extra scenes (forensics.probes.scenes)


def figure(value: float | None, op: str, target: float, n: int, **extra) -> dict:
    """A measured figure with its target and verdict, as every benchmark record states them."""
    passed = None if value is None else bool(value >= target if op == ">=" else value <= target)
    return {"value": None if value is None else round(float(value), 4), "target": f"{op} {target}",
            "pass": passed, "n": int(n), **rounded(extra)}


def nme(predicted: np.ndarray, truth: np.ndarray) -> float:
    return round(float(landmark_nme(predicted, truth).mean()), 4)


def rounded(d: dict) -> dict:
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in d.items()}


# ---------------------------------------------------------------------------------------------- data

def heldout_clips(world: Path, identity: int, scenes: int, frames: int, out_dir: Path) -> list[dict]:
    """New clips of a world identity under never-used scenes, written through H.264 like the world's:
    [{"video": path, "truth68": [68-point ground truth per frame]}]."""
    settings = json.loads((world / "world.json").read_text())
    seed = int(settings.get("seed", 0))
    config = VideoConfig(size=int(settings.get("size", 256)), frames=frames, fps=int(settings.get("fps", 25)))
    clips = []
    for k in range(scenes):
        rendered, truths = render_video(world_identity(seed, identity),
                                        video_seed(seed, identity, SCENE_OFFSET + HELDOUT_SCENE + k), config)
        path = write_video(out_dir / f"heldout_id{identity:04d}_s{k}.mp4", rendered, fps=config.fps,
                           crf=int(settings.get("crf", 23)))
        clips.append({"video": path, "truth68": [t.landmarks for t in truths]})
    return clips


def world_clips(world: Path, identity: int) -> list[dict]:
    """The world's own videos of an identity (the face swap's training footage), with their ground truth."""
    videos = sorted((world / "videos").glob(f"id{identity:04d}_*.mp4"))
    return [{"video": v, "truth68": [t.landmarks for t in load_truth(world / "truth" / f"{v.stem}.json")[1]]}
            for v in videos]


def aligned(video: Path, truth68: list, size: int, margin: float) -> tuple[np.ndarray, np.ndarray]:
    """(crops, 68-point landmarks in crop pixels) of a video's frames aligned on the *true* five points, as
    load_faceset cuts the world's crops: a swapped video and its original are cut identically."""
    crops, landmarks = [], []
    with iter_frames(video) as decoded:
        for frame, lm68 in zip(decoded, truth68):
            lm68 = np.asarray(lm68, np.float64)
            crop, matrix = align_face(frame.image, five_points(lm68), size=size, margin=margin)
            crops.append(crop)
            landmarks.append((lm68 @ matrix[:, :2].T + matrix[:, 2]).astype(np.float32))
    return np.stack(crops), np.stack(landmarks)


def video_frames(path: Path) -> list[np.ndarray]:
    with iter_frames(path) as frames:
        return [f.image for f in frames]


def save_png(image: np.ndarray, path: Path) -> Path:
    with atomic_path(path, suffix=".png") as tmp:
        Image.fromarray(image).save(tmp, format="PNG")
    return path


def training_record(checkpoint: Path) -> dict:
    """sha256 and training time of a generator checkpoint, from its config.json and the loop's last state."""
    config = json.loads((checkpoint / "config.json").read_text())
    state_path = checkpoint / "last" / "state.json"
    history = json.loads(state_path.read_text()).get("run", {}).get("history", []) if state_path.is_file() else []
    epoch_seconds = [round(float(r.get("time/epoch_s", 0.0)), 1) for r in history]
    return {"path": str(checkpoint), "weights_sha256": config.get("weights_sha256"),
            "epochs": len(history), "train_seconds": round(sum(epoch_seconds), 1) if history else None,
            "epoch_seconds": epoch_seconds,  # they swing with the shared machine's load, not only the model
            "last_epoch": rounded({k: v for k, v in (history[-1] if history else {}).items()
                                   if k.startswith(("train/", "val/"))})}


# ---------------------------------------------------------------------------------------------- face swap

def faceswap_quality(checkpoint: Path, world: Path, probes, work: Path, docs: Path, scenes: int, frames: int) -> dict:
    """Both directions on both frame sets. Headline: crops cut from the swapped *videos* (feathered blend,
    colour transfer, H.264), i.e. what a viewer or a detector gets; composited and raw decoder crops are
    diagnostics (no video round trip; raw = the decoder's whole square, background included)."""
    loaded = load_faceswap(checkpoint)
    size, margin = loaded.size, loaded.margin
    ids = {k: int(v) for k, v in loaded.meta["identities"].items()}
    identity_probe, landmark_probe = probes
    sets = {"heldout_scenes": {k: heldout_clips(world, who, scenes, frames, work) for k, who in ids.items()},
            "training_videos": {k: world_clips(world, who) for k, who in ids.items()}}
    out: dict = {"checkpoint": training_record(checkpoint), "identities": ids, "crop": size, "sets": {},
                 "frames": {name: {k: sum(len(c["truth68"]) for c in clips) for k, clips in data.items()}
                            for name, data in sets.items()}}
    mean_shape = None
    grid_rows = []
    # training first (it gives the mean shape); last, a diagnostic: the held-out swaps without mask erosion
    runs = [("training_videos", "training_videos", {}), ("heldout_scenes", "heldout_scenes", {}),
            ("heldout_scenes_erode0", "heldout_scenes", {"erode": 0.0})]
    for set_name, frames_from, conversion in runs:
        data, result = sets[frames_from], {"conversion": conversion or "swap_video defaults"}
        for source, target in (("a", "b"), ("b", "a")):
            real, truth, fake, fake_frames = [], [], [], []
            for index, clip in enumerate(data[target]):
                swapped = work / f"{set_name}_{source}_onto_{target}_{index}.mp4"
                swap_video(loaded, clip["video"], swapped, source=source, **conversion)
                crops, landmarks = aligned(clip["video"], clip["truth68"], size, margin)
                real.append(crops), truth.append(landmarks)
                fake.append(aligned(swapped, clip["truth68"], size, margin)[0])
                fake_frames += video_frames(swapped)
            real, truth, fake = np.concatenate(real), np.concatenate(truth), np.concatenate(fake)
            mean_shape = truth.mean(0) if mean_shape is None else mean_shape
            common = dict(source_identity=ids[source], target_landmarks=truth, target_identity=ids[target],
                          margin=margin)
            result[f"{source}_onto_{target}"] = {
                "video_crops": rounded(swap_quality(probes, fake, **common)),
                "composited_crops": rounded(swap_quality(
                    probes, swap_crops(loaded, real, source, composite=True, colour="reinhard"), **common)),
                "raw_decoder": rounded(swap_quality(probes, swap_crops(loaded, real, source), **common)),
                "real_targets": {  # what the probes say of the untouched target frames: the floor and the scale
                    "probe_says_source": float(np.mean(identity_probe.predict(real, margin) == ids[source])),
                    "landmark_error": nme(landmark_probe.predict(real, margin), truth),
                    "mean_shape_landmark_error": nme(np.broadcast_to(mean_shape, truth.shape), truth)},
                "mtcnn_face_rate_video_frames": mtcnn_face_rate(fake_frames),
                "mtcnn_face_rate_video_crops": mtcnn_face_rate(fake),
                "videos": [str(c["video"]) for c in data[target]], "frames": len(fake_frames)}
            if set_name == "heldout_scenes":
                picks = np.linspace(0, len(real) - 1, 8).round().astype(int)
                grid_rows += [(f"target {target.upper()} (id {ids[target]})", real[picks]),
                              (f"{source.upper()} onto it", fake[picks])]
        out["sets"][set_name] = result
    images = [im for _, row in grid_rows for im in row]
    captions = [caption for caption, row in grid_rows for _ in row]
    save_png(sample_grid(images, captions, ncols=8, cell=128), docs / "faceswap_grid.png")
    both = [out["sets"]["heldout_scenes"]["a_onto_b"], out["sets"]["heldout_scenes"]["b_onto_a"]]
    n = sum(r["video_crops"]["n"] for r in both)
    out["headline"] = {
        "set": "heldout_scenes, crops cut from the swapped videos at the true five points",
        "id_retrieval": figure(np.mean([r["video_crops"]["id_retrieval"] for r in both]), ">=", 0.8, n,
                               a_onto_b=both[0]["video_crops"]["id_retrieval"],
                               b_onto_a=both[1]["video_crops"]["id_retrieval"]),
        "landmark_error": figure(np.mean([r["video_crops"]["landmark_error"] for r in both]), "<=", 0.10, n,
                                 unit="fraction of inter-ocular distance, probe on fake vs ground truth of target",
                                 real_target_frames=np.mean([r["real_targets"]["landmark_error"] for r in both]),
                                 mean_shape_baseline=np.mean([r["real_targets"]["mean_shape_landmark_error"]
                                                              for r in both])),
        "mtcnn_face_rate": figure(np.mean([r["mtcnn_face_rate_video_frames"] for r in both]), ">=", 0.9,
                                  sum(r["frames"] for r in both), on="full frames of the swap_video outputs",
                                  video_crops_upscaled=np.mean([r["mtcnn_face_rate_video_crops"] for r in both]))}
    return out


# ---------------------------------------------------------------------------------------------- animation

def animation_quality_record(checkpoint: Path, world: Path, probes, docs: Path) -> dict:
    model = load_animation(checkpoint)
    margin = model.config.margin
    test = load_faceset(world, size=model.size, margin=margin).of_split("test")
    identity_probe, landmark_probe = probes
    clips = []
    for video in test.video_ids():
        clip = test.of_video(video)
        order = np.argsort(clip.frame, kind="stable")
        clips.append((int(clip.identity[0]), clip.images[order], clip.landmarks[order]))
    # self-reenactment: first frame of each held-out video driven (absolute keypoints) by the rest of it
    gen, drv, src, truth = [], [], [], []
    for _, images, landmarks in clips:
        result = reenact_crops(model, images[0], images[1:], relative=False)
        gen.append(result.generated), drv.append(images[1:]), truth.append(landmarks[1:])
        src.append(np.repeat(images[:1], len(images) - 1, 0))
    gen, drv, src, truth = (np.concatenate(x) for x in (gen, drv, src, truth))
    own = rounded(animation_quality(probes, gen, drv, src, reconstruction_targets=drv, margin=margin))
    akd_truth = landmark_nme(landmark_probe.predict(gen, margin), truth)
    akd_baselines = {"copy_source": nme(landmark_probe.predict(src, margin), truth),
                     "real_driving_frames": nme(landmark_probe.predict(drv, margin), truth),
                     "mean_shape": nme(np.broadcast_to(test.landmarks.mean(0), truth.shape), truth)}
    real_aed = float(np.linalg.norm(identity_probe.embed(drv, margin) - identity_probe.embed(src, margin), axis=1).mean())
    # cross-identity: each test identity's first frame driven (relative motion, as `fake animate`) by a
    # video of the next test identity
    first_video = {}
    for who, images, landmarks in clips:
        first_video.setdefault(who, (images, landmarks))
    people = sorted(first_video)
    cgen, cdrv, ctruth, csrc, source_ids, driver_ids = [], [], [], [], [], []
    for i, who in enumerate(people):
        driver = people[(i + 1) % len(people)]
        source_crop, (images, landmarks) = first_video[who][0][0], first_video[driver]
        cgen.append(reenact_crops(model, source_crop, images, relative=True).generated)
        cdrv.append(images), ctruth.append(landmarks), csrc.append(np.repeat(source_crop[None], len(images), 0))
        source_ids += [who] * len(images)
        driver_ids += [driver] * len(images)
    cgen, cdrv, ctruth, csrc = (np.concatenate(x) for x in (cgen, cdrv, ctruth, csrc))
    cross = rounded(animation_quality(probes, cgen, cdrv, csrc, margin=margin))
    predicted = identity_probe.predict(cgen, margin)
    real_cross_aed = float(np.linalg.norm(identity_probe.embed(cdrv, margin) - identity_probe.embed(csrc, margin),
                                          axis=1).mean())
    cross.update(source_identity_rate=float(np.mean(predicted == np.array(source_ids))),
                 driver_identity_rate=float(np.mean(predicted == np.array(driver_ids))),
                 akd_vs_driver_ground_truth=float(landmark_nme(landmark_probe.predict(cgen, margin), ctruth).mean()),
                 real_driver_aed_to_source=round(real_cross_aed, 4), mtcnn_face_rate=mtcnn_face_rate(cgen))
    # grid: the two pairs whose drivers move most (ground-truth landmark spread), four moments of each
    starts = np.cumsum([0] + [len(first_video[people[(i + 1) % len(people)]][0]) for i in range(len(people))])
    motion = [ctruth[a:b].std(0).mean() for a, b in zip(starts[:-1], starts[1:])]
    picks = np.concatenate([np.linspace(starts[i], starts[i + 1] - 1, 4).round().astype(int)
                            for i in sorted(np.argsort(motion)[-2:])])
    images = [*csrc[picks], *cdrv[picks], *cgen[picks]]
    captions = ([f"source id {source_ids[i]}" for i in picks]
                + [f"driving id {driver_ids[i]} t{i - starts[np.searchsorted(starts, i, 'right') - 1]}"
                   for i in picks] + ["generated"] * len(picks))
    save_png(sample_grid(images, captions, ncols=8, cell=128), docs / "animation_grid.png")
    return {
        "checkpoint": training_record(checkpoint), "test_identities": people, "videos": len(clips),
        "self_reenactment": {**own, "akd_vs_ground_truth": round(float(akd_truth.mean()), 4),
                             "akd_baselines": akd_baselines,
                             "real_frames_aed_to_source": round(real_aed, 4), "relative": False,
                             "mtcnn_face_rate": mtcnn_face_rate(gen)},
        "cross_identity": {**cross, "relative": True, "pairs": len(people)},
        "headline": {
            "l1_reduction_vs_copy_source": figure(own["l1_reduction"], ">=", 0.30, own["n"], l1=own["l1"],
                                                  copy_source_l1=own["l1_copy_source_baseline"]),
            "akd": figure(float(akd_truth.mean()), "<=", 0.10, len(gen), on="self-reenactment of test videos",
                          unit="fraction of inter-ocular distance, probe on generated vs driving ground truth",
                          vs_probe_on_driving=own["akd"], baselines=akd_baselines),
            "aed_cross_identity": {"value": cross["aed"], "n": cross["n"],
                                   "source_identity_rate": cross["source_identity_rate"],
                                   "scale": {"same_identity_real_frames": round(real_aed, 4),
                                             "driver_real_frames": round(real_cross_aed, 4)}},
            "mtcnn_face_rate": figure(cross["mtcnn_face_rate"], ">=", 0.9, cross["n"],
                                      on="cross-identity generated crops, upscaled to 128 px")}}


# ---------------------------------------------------------------------------------------------- scans

def scan_fakes(faceswap: Path, animation: Path, detector: Path, world: Path, work: Path) -> dict:
    """`forensics fake swap` and `fake animate` outputs scanned by `forensics detect`, as a user would: each
    command in a fresh process."""
    rows = read_manifest(world / "manifest.csv")
    target_b = next(r.path for r in rows if r.identity == "id0001")
    test_videos = [r.path for r in rows if r.split == "test"]
    source_png = work / "animate_source.png"
    save_png(video_frames(world / test_videos[0])[0], source_png)
    driving = next(p for p in test_videos if Path(p).name.split("_")[0] != Path(test_videos[0]).name.split("_")[0])
    swap_out, animate_out, jsonl = work / "fake_swap.mp4", work / "fake_animate.mp4", work / "scan.jsonl"
    jsonl.unlink(missing_ok=True)
    commands = [["fake", "swap", "--checkpoint", str(faceswap), "--target", str(world / target_b), "--out",
                 str(swap_out)],
                ["fake", "animate", "--checkpoint", str(animation), "--source", str(source_png), "--driving",
                 str(world / driving), "--out", str(animate_out)],
                ["detect", str(swap_out), str(animate_out), "--model", str(detector), "--jsonl", str(jsonl)]]
    codes = [subprocess.run([sys.executable, "-m", "forensics.cli.main", *command]).returncode for command in commands]
    records = list(read_jsonl(jsonl)) if jsonl.is_file() else []
    return {"commands": [" ".join([".venv/bin/forensics", *c]) for c in commands], "exit_codes": codes,
            "records": [{k: r.get(k) for k in ("path", "status", "error", "score", "label", "threshold",
                                                "frames_analyzed")} for r in records]}


# ---------------------------------------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for option, default in (("world", "data/synth"), ("probes", "runs/probes"), ("faceswap", "runs/faceswap"),
                            ("animation", "runs/animation"), ("detector", "runs/detector_sbi/model"),
                            ("results", "benchmarks/results/generators.json"), ("docs", "docs"),
                            ("work", "runs/bench_generators")):   # work: scratch folder for clips and fakes
        parser.add_argument(f"--{option}", default=default)
    parser.add_argument("--scenes", type=int, default=2, help="held-out scenes per face-swap identity")
    parser.add_argument("--frames", type=int, default=32, help="frames per held-out scene")
    parser.add_argument("--steps", type=int, default=20, help="timed training steps per family")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, nargs="+", default=[2, 1],
                        help="torch threads: the first for everything, each for the throughput runs")
    parser.add_argument("--only", nargs="*", default=None,
                        choices=["faceswap", "animation", "throughput", "scan"], help="run only these parts")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads[0])
    world, work, docs, results = Path(args.world), Path(args.work), Path(args.docs), Path(args.results)
    work.mkdir(parents=True, exist_ok=True)
    parts = set(args.only or ["faceswap", "animation", "throughput", "scan"])
    record = json.loads(results.read_text()) if args.only and results.is_file() else {}
    record.update({"benchmark": "generator quality (cpu-small) vs synthetic ground truth, training throughput, "
                                "fakes scanned by forensics detect",
                   "command": COMMAND,
                   "machine": machine_info(), "load_average_start": [round(x, 2) for x in os.getloadavg()],
                   "gpu": "not lent to this task: CPU figures only"})
    invocation = (COMMAND + " " + " ".join(argv if argv is not None else sys.argv[1:])).rstrip()
    probes = load_probes(args.probes, device="cpu")
    report = json.loads((Path(args.probes) / "report.json").read_text())
    record["probes"] = {"path": args.probes, "identity": report.get("identity"), "landmarks": report.get("landmarks"),
                        "note": "held-out figures of the probes themselves: a metric is only as good as its probe"}
    steps = [("faceswap", lambda: faceswap_quality(Path(args.faceswap), world, probes, work, docs, args.scenes,
                                                   args.frames)),
             ("animation", lambda: animation_quality_record(Path(args.animation), world, probes, docs)),
             ("throughput", lambda: measure_throughput(
                 args.threads, {f: training_record(Path(getattr(args, f)))["epoch_seconds"] for f in FAMILIES},
                 args.steps, args.warmup)),
             ("scan", lambda: scan_fakes(Path(args.faceswap), Path(args.animation), Path(args.detector), world, work))]
    for name, run in steps:
        if name not in parts:
            continue
        started = time.perf_counter()
        record[name] = run()
        record[name]["seconds"] = round(time.perf_counter() - started, 1)
        record[name]["command"] = invocation   # the run that measured this part (all parts: COMMAND)
        atomic_write_json(results, record)
        print(f"{name}: done in {record[name]['seconds']} s -> {results}", flush=True)
    verdicts = {f"{family}/{key}": value.get("pass") for family in ("faceswap", "animation")
                for key, value in record.get(family, {}).get("headline", {}).items() if "pass" in value}
    record["all_targets_met"] = all(verdicts.values()) if verdicts else None
    record["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    atomic_write_json(results, record)
    print(json.dumps(verdicts, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
