"""Shared fixtures: real photos, the authors' reference logits, the exported MicroExpNet, the `edgefer`
command as a process, and the gpu marker."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

FIXTURES = Path(__file__).parent / "fixtures"
REFERENCE = Path(__file__).parent / "reference" / "authors_reference.npz"


def pytest_collection_modifyitems(config, items):
    """Skip `gpu` tests with the reason when no CUDA GPU is visible."""
    from edgefer.sysinfo import cuda_gpus

    if cuda_gpus():
        return
    skip = pytest.mark.skip(reason="needs an NVIDIA GPU with CUDA; none is visible on this machine")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def astronaut_path() -> Path:
    """A public-domain NASA portrait with one clear frontal face (from scikit-image's data)."""
    return FIXTURES / "astronaut.png"


@pytest.fixture(scope="session")
def astronaut_bgr(astronaut_path) -> np.ndarray:
    from edgefer.preprocess import read_image

    return read_image(astronaut_path)


@pytest.fixture(scope="session")
def reference() -> dict[str, np.ndarray]:
    """Inputs and logits computed by the authors' own TensorFlow graph (tests/reference/)."""
    with np.load(REFERENCE) as data:
        return {key: data[key] for key in data.files}


@pytest.fixture(scope="session")
def recognizer():
    from edgefer import Recognizer

    return Recognizer("microexpnet-ck", threads=1, detector="haar-exact")


def run_edgefer(*args, env: dict | None = None, timeout: float | None = 600,
                cwd: str | os.PathLike | None = None) -> subprocess.CompletedProcess:
    """`python -m edgefer ARGS` as a user runs it: a real process, its exit code, stdout and stderr.
    ``env`` adds to (or overrides) this process' environment; ``cwd`` is the folder it runs in (default: this
    process' working folder)."""
    return subprocess.run([sys.executable, "-m", "edgefer", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL, timeout=timeout, cwd=cwd)


@pytest.fixture(scope="session")
def edgefer() -> Callable[..., subprocess.CompletedProcess]:
    """The edgefer command line in a subprocess (see ``run_edgefer``)."""
    return run_edgefer


@pytest.fixture(scope="session")
def microexpnet_onnx() -> Path:
    """MicroExpNet with the authors' CK+ weights as ONNX: the file edgefer ships (an fp32 export, dynamic batch)."""
    from edgefer.zoo import PRETRAINED

    return PRETRAINED["microexpnet-ck"].onnx


@pytest.fixture(scope="session")
def microexpnet_ir(microexpnet_onnx, tmp_path_factory) -> Path:
    """The same model as an fp32 OpenVINO IR, exported once per session."""
    pytest.importorskip("openvino", reason="OpenVINO is not installed")
    from edgefer.convert.openvino_export import export_openvino
    from edgefer.runtime import open_backend

    with open_backend(microexpnet_onnx, threads=1) as backend:
        spec = backend.spec
    return export_openvino(microexpnet_onnx, tmp_path_factory.mktemp("microexpnet-ir") / "microexpnet-ck.fp32.xml",
                           spec, "fp32")


@pytest.fixture(scope="session")
def p12s_model():
    """StudentExpNet S (p12-s) with seed-0 random weights, and its spec: a second, larger family member."""
    pytest.importorskip("torch")
    from edgefer.convert.sources import load_source

    source = load_source("p12-s")  # what `edgefer convert p12-s` exports: seeded random weights
    return source.model, source.spec


@pytest.fixture(scope="session")
def p12s_onnx(p12s_model, tmp_path_factory) -> Path:
    """p12-s exported to ONNX once per session (dynamic batch)."""
    from edgefer.convert.onnx_export import export_onnx_proto, save_onnx

    model, spec = p12s_model
    return save_onnx(export_onnx_proto(model, spec), tmp_path_factory.mktemp("p12s-onnx") / "p12-s.fp32.onnx")
