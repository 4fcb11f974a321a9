"""The device-side checks tools/check_aarch64.sh runs inside the arm64 root, once per install.

    python aarch64_checks.py plain    --reference authors_reference.npz --image astronaut.png --out DIR
    python aarch64_checks.py openvino --reference authors_reference.npz --image astronaut.png --out DIR

``plain`` (edgefer with no extras): the machine is aarch64 and emulated, torch is absent, the bundled models
give the authors' TensorFlow logits on ONNX Runtime to 1e-4, ``edgefer predict`` finds the astronaut's face
as the host did (``--expect``: same label, box within 2 px, probabilities within 0.01) with a clean stderr,
and ``edgefer convert`` is refused cleanly (exit 5, naming edgefer[train]).
``openvino`` (edgefer[openvino]): the same logits on OpenVINO's ARM CPU plugin, then ``edgefer bench``
on ONNX Runtime and OpenVINO at batch 1 with its machine marked emulated, and ``edgefer report`` keeping
it apart. One line per check ("ok" or "FAIL"); exit 1 when any failed.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np

KEYS = {"microexpnet-ck": "logits_ck", "microexpnet-oulu": "logits_oulu"}
TOLERANCE = 1e-4
FAILED: list[str] = []


def check(name: str, passed: bool, detail: str) -> None:
    print(f"{'ok  ' if passed else 'FAIL'} {name}: {detail}", flush=True)
    if not passed:
        FAILED.append(name)


def edgefer(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    command = [str(Path(sys.executable).with_name("edgefer")), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def parity(runtime: str, reference: dict) -> None:
    """Each bundled model on ``runtime`` against the authors' TensorFlow logits."""
    from edgefer.runtime import open_backend
    from edgefer.zoo import PRETRAINED

    pixels = np.ascontiguousarray(reference["inputs"][:, None], dtype=np.float32)
    for name, key in KEYS.items():
        backend = open_backend(PRETRAINED[name].onnx, runtime, threads=1)
        diff = float(np.abs(backend.run(pixels) - reference[key]).max())
        check(f"{runtime} {name} vs authors' TF logits", diff <= TOLERANCE,
              f"max |diff| {diff:.1e} over {len(pixels)} crops (<= {TOLERANCE:g}), runs as {backend.precision}")


def plain(args: argparse.Namespace, reference: dict) -> None:
    from edgefer.sysinfo import emulation

    check("machine", platform.machine() == "aarch64", f"platform.machine() = {platform.machine()}")
    check("emulation detected", bool(emulation()), emulation() or "not detected")
    try:
        import torch  # noqa: F401

        check("device install has no torch", False, "torch imports")
    except ImportError:
        check("device install has no torch", True, "torch is not installed")
    parity("onnxruntime", reference)

    result = edgefer("predict", "--json", str(args.image))
    faces = json.loads(result.stdout)[0]["faces"] if result.returncode == 0 else []
    detail = "; ".join(f"{f['label']} {f['scores'][f['label']]:.3f} box {f['box']}" for f in faces)
    same, against = len(faces) == 1, "one face"
    if args.expect and args.expect.is_file():  # the host's (x86-64) own predict on the same image
        want = json.loads(args.expect.read_text())[0]["faces"]
        same = len(faces) == len(want) == 1 and faces[0]["label"] == want[0]["label"] and all(
            abs(a - b) <= 2 for a, b in zip(faces[0]["box"], want[0]["box"], strict=True)) and all(
            abs(faces[0]["scores"][k] - v) <= 0.01 for k, v in want[0]["scores"].items())
        against = (f"x86-64 gave {want[0]['label']} {want[0]['scores'][want[0]['label']]:.3f} box {want[0]['box']}"
                   if want else "x86-64 found no face")
    check("edgefer predict astronaut", result.returncode == 0 and same,
          f"exit {result.returncode}, {detail or result.stderr.strip()[-300:]} ({against})")
    check("predict stderr is clean", result.stderr.strip() == "",
          f"{len(result.stderr.splitlines())} stderr lines" + (f": {result.stderr.splitlines()[0][:200]}"
                                                              if result.stderr.strip() else ""))

    result = edgefer("convert", "microexpnet-ck", "--out", str(args.out / "converted"))
    lines = result.stderr.strip().splitlines()
    check("edgefer convert refused cleanly", result.returncode == 5 and len(lines) == 1
          and "edgefer[train]" in lines[0] and "Traceback" not in result.stderr,
          f"exit {result.returncode}: {lines[-1] if lines else 'no message'}")


def openvino(args: argparse.Namespace, reference: dict) -> None:
    parity("openvino", reference)
    out = args.out / "bench.json"
    result = edgefer("bench", "--models", "microexpnet-ck", "--backends", "onnxruntime,openvino", "--batch", "1",
                     "--duration", "0.5", "--json", str(out), "--machine", "aarch64-qemu", timeout=1800)
    records = json.loads(out.read_text())["records"] if out.is_file() else []
    machine = json.loads(out.read_text())["machine"] if out.is_file() else {}
    timings = ", ".join(f"{r['backend']} {r['latency_ms']['median']:.3f} ms" for r in records
                        if r.get("status") == "ok")
    check("edgefer bench onnxruntime,openvino batch 1",
          result.returncode == 0 and len(records) == 2 and all(r["status"] == "ok" for r in records),
          f"exit {result.returncode}, {timings or result.stderr.strip()[-300:]} (emulated: not a device's speed)")
    check("bench machine marked emulated", machine.get("emulated") is True and "EMULATED" in result.stdout,
          f"emulated={machine.get('emulated')}, {machine.get('emulation', '')}")
    report = edgefer("report", str(out), "--out", str(args.out / "report"), "--no-plot")  # no matplotlib
    text = (args.out / "report" / "report.md").read_text() if report.returncode == 0 else ""
    check("edgefer report marks it emulated", "EMULATED" in text and "(emulated)" in text,
          f"exit {report.returncode}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=("plain", "openvino"))
    parser.add_argument("--reference", type=Path, required=True)
    parser.add_argument("--image", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--expect", type=Path, help="edgefer predict --json of the image on the host (x86-64)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with np.load(args.reference) as data:
        reference = {key: data[key] for key in data.files}
    try:
        (plain if args.stage == "plain" else openvino)(args, reference)
    except Exception as err:  # noqa: BLE001 - a crash is one more failed check, with its reason
        check(f"{args.stage} checks ran to the end", False, f"{type(err).__name__}: {err}")
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
