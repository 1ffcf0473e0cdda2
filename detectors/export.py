"""A frame detector as an ONNX model, checked against torch and timed beside it with onnxruntime.

The graph takes the detector's own input, normalised float crops [N, 3, S, S] (S = the input size; N free), and
gives the raw logit per crop. What turns that into a verdict stays beside it as data, in `<out>.json`: the crop
alignment, the normalisation mean and std, the Platt calibration (probability = sigmoid(a * logit + b)) and the
threshold. So a serving stack without Python or torch can reproduce `forensics detect`'s frame scores, given the
same aligned crops.

The export is checked before it is reported: the same batch of crops goes through torch and onnxruntime (CPU),
and the largest difference of logits and of calibrated probabilities is recorded; above the tolerance the export
fails. Both runtimes are then timed on that batch (median of repeated runs, one thread count for both).
"""
from __future__ import annotations

import statistics
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from detectors.checkpoint import DetectorLoadError, load_detector
from detectors.footage import trained_on
from detectors.meta import WEIGHTS_FILE, checkpoint_dir
from detectors.registry import detector_kind
from detectors.runtime import onnx_file
from forensics.faces.backends import mtcnn_export_dir, mtcnn_export_ready
from forensics.faces.mtcnn_export import export_mtcnn_onnx
from forensics.io import atomic_path, atomic_write_json, sha256_file

OPSET = 18                # the dynamo exporter's
LEGACY_OPSET = 17         # TorchScript exporter's
TOLERANCE = 1e-3          # largest calibrated-probability difference accepted between torch and onnxruntime


class ExportError(RuntimeError):
    """The model cannot be exported or its export does not agree with torch; one line."""


@dataclass
class ExportReport:
    onnx: str
    model: str
    arch: str
    weights_sha256: str
    input: dict
    output: dict
    scoring: dict
    check: dict
    timing: dict

    def to_json(self) -> dict:
        return dict(self.__dict__)


def export_onnx(model_dir: str | Path, out: str | Path, batch: int = 32, repeats: int = 10,
                seed: int = 0) -> ExportReport:
    """Write `out` (.onnx) and `out`.json; raise ExportError when the model is not a frame detector or the
    export disagrees with torch."""
    try:
        loaded = load_detector(model_dir)
    except DetectorLoadError as exc:
        raise ExportError(str(exc)) from None
    arch = loaded.name
    if detector_kind(arch) != "frame":
        raise ExportError(f"{model_dir}: {arch} is a clip detector; only frame detectors export to ONNX for now")
    model = loaded.model.eval()
    size = model.config.input_size
    crops = _example_crops(batch, size, seed)
    inputs = model.preprocess(crops)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        expected = model(inputs).float().numpy()
        try:
            with atomic_path(out) as tmp:
                opset = _export(model, inputs, tmp)
        except Exception as exc:  # noqa: BLE001 - the exporter's failures are many; one line names the model
            raise ExportError(f"{model_dir}: ONNX export failed ({type(exc).__name__}: "
                              f"{' '.join(str(exc).split())[:300]})") from None

    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: inputs.numpy()}
    got = session.run(None, feed)[0].reshape(-1)
    logit_diff = float(np.max(np.abs(got - expected)))
    prob_diff = float(np.max(np.abs(loaded.probability(got) - loaded.probability(expected))))
    if not np.isfinite(prob_diff) or prob_diff > TOLERANCE:
        out.unlink(missing_ok=True)
        raise ExportError(f"{model_dir}: the ONNX model disagrees with torch (probabilities differ by up to "
                          f"{prob_diff:.2g} > {TOLERANCE}); nothing written")

    torch_ms = _median_ms(lambda: model(inputs), repeats, no_grad=True)
    onnx_ms = _median_ms(lambda: session.run(None, feed), repeats)
    calibration = loaded.meta.get("calibration") or {"a": 1.0, "b": 0.0}
    report = ExportReport(
        onnx=str(out), model=str(Path(model_dir)), arch=arch, weights_sha256=loaded.sha256,
        input={"name": "crops", "shape": ["N", 3, size, size], "dtype": "float32",
               "mean": list(model.config.mean), "std": list(model.config.std),
               "from": "aligned RGB face crops resized to the input size, /255, minus mean, over std",
               "crop": loaded.crop},
        output={"name": "logit", "shape": ["N"]},
        scoring={"calibration": {"a": float(calibration.get("a", 1.0)), "b": float(calibration.get("b", 0.0))},
                 "probability": "sigmoid(a * logit + b)", "threshold": loaded.threshold,
                 "trained_on": trained_on([loaded])},
        check={"crops": batch, "max_abs_logit_diff": logit_diff, "max_abs_probability_diff": prob_diff,
               "tolerance": TOLERANCE, "opset": opset},
        timing={"batch": batch, "repeats": repeats, "torch_threads": torch.get_num_threads(),
                "torch_cpu_ms": round(torch_ms, 2), "onnxruntime_cpu_ms": round(onnx_ms, 2),
                "onnxruntime_speedup": round(torch_ms / onnx_ms, 2) if onnx_ms > 0 else None,
                "onnxruntime": ort.__version__, "torch": torch.__version__},
    )
    atomic_write_json(out.with_suffix(out.suffix + ".json"), report.to_json())
    return report


def _export(model: torch.nn.Module, inputs: torch.Tensor, out: Path) -> int:
    """TorchScript's exporter first: about 1 s for a MobileNet here against 9 s for the dynamo exporter, which
    matters because every new champion is exported; the dynamo exporter where TorchScript's cannot trace."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (inputs,), str(out), dynamo=False, opset_version=LEGACY_OPSET,
                              input_names=["crops"], output_names=["logit"],
                              dynamic_axes={"crops": {0: "batch"}, "logit": {0: "batch"}})
        return LEGACY_OPSET
    except Exception:  # noqa: BLE001 - fall back to the other exporter; its error is the one reported
        pass
    program = torch.onnx.export(model, (inputs,), dynamo=True, opset_version=OPSET, input_names=["crops"],
                                output_names=["logit"], dynamic_shapes={"x": {0: torch.export.Dim("batch")}},
                                verbose=False)
    program.save(str(out))
    return OPSET


def cache_exports(model_dir: str | Path) -> list[str]:
    """Put what `forensics detect` needs to run `model_dir` on onnxruntime into the model cache: the detector's
    checked export (keyed by its weights' sha256) and MTCNN's; what was missing before, as short names.

    Clip detectors and bundles are left to torch (ExportError for a clip detector)."""
    made = []
    if not mtcnn_export_ready():
        export_mtcnn_onnx(mtcnn_export_dir())
        made.append("mtcnn")
    # The weights' hash names the export: a model promoted again finds it without being built (export_onnx
    # loads and checks the checkpoint when there is something to export).
    try:
        target = onnx_file(sha256_file(checkpoint_dir(model_dir) / WEIGHTS_FILE))
    except OSError as exc:
        raise ExportError(f"{model_dir}: unreadable weights ({exc})") from None
    if not target.is_file():
        made.append(export_onnx(model_dir, target, batch=8, repeats=1).arch)
    return made


def _example_crops(batch: int, size: int, seed: int) -> np.ndarray:
    """Face-crop-like uint8 images: smooth colour fields plus texture, so activations are not all saturated."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    base = np.stack([120 + 80 * xx, 100 + 60 * yy, 90 + 50 * (1 - xx)], -1)
    crops = base[None] + rng.normal(0, 25, (batch, size, size, 3))
    return np.clip(crops, 0, 255).astype(np.uint8)


def _median_ms(run, repeats: int, no_grad: bool = False) -> float:
    times = []
    for _ in range(repeats + 1):                    # the first run warms up and is dropped
        started = time.perf_counter()
        if no_grad:
            with torch.no_grad():
                run()
        else:
            run()
        times.append(1000 * (time.perf_counter() - started))
    return statistics.median(times[1:])
