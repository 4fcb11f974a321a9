"""Rebuild the bundled pretrained models (edgefer/models/) from the authors' TensorFlow checkpoints.

Step 1 (needs TensorFlow, in a venv of its own; TF is no dependency of edgefer):
    python tests/reference/make_authors_reference.py --dump-weights /tmp/authors_weights
Step 2 (needs edgefer[train]):
    python tools/build_bundled_models.py --weights /tmp/authors_weights

Writes microexpnet-{ck,oulu}.safetensors (PyTorch layout) and .onnx (with the edgefer spec in
its metadata), and checks each ONNX against the PyTorch model before it is kept.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from edgefer.convert.onnx_export import export_onnx_proto, save_onnx
from edgefer.fileio import file_sha256
from edgefer.spec import ModelSpec
from edgefer.train.models.configs import parse_member
from edgefer.train.models.family import StudentNet, state_dict_from_tf
from edgefer.train.models.weights import save_weights
from edgefer.zoo import MODELS_DIR

REPO = Path(__file__).resolve().parents[1]
CHECKPOINTS = REPO.parent / "shared" / "authors-microexpnet" / "Models"
SOURCES = {
    "microexpnet-ck": ("ck.npz", CHECKPOINTS / "CK" / "MicroExpNet_CK.data-00000-of-00001"),
    "microexpnet-oulu": ("oulu.npz", CHECKPOINTS / "OuluCASIA" / "MicroExpNet_OuluCASIA.data-00000-of-00001"),
}


def build(name: str, weights: Path, checkpoint: Path, out: Path) -> None:
    model = StudentNet(parse_member("p12-xxs"))
    with np.load(weights) as variables:
        model.load_state_dict(state_dict_from_tf(dict(variables)))
    model.eval()
    spec = ModelSpec(model=name, source=f"authors' TensorFlow checkpoint {checkpoint.name}",
                     source_sha256=file_sha256(checkpoint) if checkpoint.is_file() else "")
    save_weights(model, out / f"{name}.safetensors", "p12-xxs", spec)
    proto = export_onnx_proto(model, spec)
    check_onnx(proto, model)
    save_onnx(proto, out / f"{name}.onnx")
    print(f"wrote {name}: safetensors + onnx in {out}")


def check_onnx(proto, model: torch.nn.Module) -> None:
    import onnxruntime as ort

    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    pixels = np.random.default_rng(0).uniform(0, 255, (16, 1, 84, 84)).astype(np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(pixels)).numpy()
    got = session.run(None, {"image": pixels})[0]
    diff = float(np.abs(got - expected).max())
    if diff > 1e-4:
        raise SystemExit(f"ONNX logits differ from PyTorch by {diff:.2e} (> 1e-4); nothing written")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", type=Path, required=True, help="folder with ck.npz and oulu.npz")
    parser.add_argument("--out", type=Path, default=MODELS_DIR)
    args = parser.parse_args()
    for name, (file, checkpoint) in SOURCES.items():
        build(name, args.weights / file, checkpoint, args.out)


if __name__ == "__main__":
    main()
