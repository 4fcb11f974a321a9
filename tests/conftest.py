"""Shared fixtures: real photos, the authors' reference logits, and the gpu marker."""

from __future__ import annotations

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

    return Recognizer("microexpnet-ck", threads=1)
