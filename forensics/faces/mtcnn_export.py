"""Export facenet-pytorch's MTCNN networks (P-, R-, O-Net) to ONNX, for the torch-free face detector.

`forensics detect` must start fast, and importing torch alone takes ~2 s; `forensics.faces.mtcnn_onnx` runs the
same three networks through onnxruntime and ports the rest of MTCNN to numpy. This module (which does import
torch and facenet_pytorch) writes the ONNX files it reads, from the weights facenet-pytorch bundles (nothing is
downloaded), plus `mtcnn.json` recording their sha256s so a reader can tell a complete, matching set from a
half-written or stale one.
"""
from __future__ import annotations

from pathlib import Path

import torch
from facenet_pytorch.models.mtcnn import ONet, PNet, RNet

from forensics.faces.backends import MANIFEST, MTCNN_FORMAT, facenet_version
from forensics.io import atomic_path, atomic_write_json, sha256_file

OPSET = 17


def export_mtcnn_onnx(directory: Path) -> list[Path]:
    """Write pnet.onnx, rnet.onnx, onet.onnx and mtcnn.json into `directory`; return the three model paths.

    Every network gets a dynamic batch axis (P-Net also dynamic height and width: it runs on each pyramid
    level). Outputs keep facenet's order: P-Net (reg, prob), R-Net (reg, prob), O-Net (reg, landmarks, prob).
    Each file is written under a temp name and renamed into place; the manifest is written last, so a
    directory whose manifest matches its files is complete.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    specs = {
        "pnet": (PNet(), (1, 3, 24, 24), ["reg", "prob"], {0: "batch", 2: "height", 3: "width"}),
        "rnet": (RNet(), (1, 3, 24, 24), ["reg", "prob"], {0: "batch"}),
        "onet": (ONet(), (1, 3, 48, 48), ["reg", "landmarks", "prob"], {0: "batch"}),
    }
    paths, hashes = [], {}
    for name, (net, shape, outputs, input_axes) in specs.items():
        net.eval()
        target = directory / f"{name}.onnx"
        with atomic_path(target) as tmp, torch.no_grad():
            torch.onnx.export(
                net, (torch.zeros(shape),), str(tmp), input_names=["input"], output_names=outputs,
                dynamic_axes={"input": input_axes, **{o: {0: "batch"} for o in outputs}},
                opset_version=OPSET, do_constant_folding=True, dynamo=False,
            )
        paths.append(target)
        hashes[target.name] = sha256_file(target)
    atomic_write_json(directory / MANIFEST, {"format": MTCNN_FORMAT, "facenet_pytorch": facenet_version(),
                                             "files": hashes})
    return paths
