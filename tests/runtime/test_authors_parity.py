"""The bundled models reproduce the logits of the authors' own TensorFlow graph to 1e-4.

The reference (tests/reference/authors_reference.npz) was computed once with TensorFlow by
tests/reference/make_authors_reference.py from the authors' TensorFlow checkpoints
(the Models/ folder of https://github.com/cuguilke/microexpnet).
"""

import numpy as np
import pytest

from edgefer.runtime import open_backend
from edgefer.zoo import PRETRAINED

KEYS = {"microexpnet-ck": "logits_ck", "microexpnet-oulu": "logits_oulu"}


@pytest.mark.parametrize("name", sorted(PRETRAINED))
def test_bundled_onnx_matches_tensorflow(name, reference):
    backend = open_backend(PRETRAINED[name].onnx, threads=1)
    logits = backend.run(np.ascontiguousarray(reference["inputs"][:, None], dtype=np.float32))
    np.testing.assert_allclose(logits, reference[KEYS[name]], rtol=0, atol=1e-4)
    assert backend.spec.model == name and len(backend.spec.source_sha256) == 64


@pytest.mark.parametrize("name", sorted(PRETRAINED))
def test_bundled_safetensors_matches_tensorflow(name, reference):
    torch = pytest.importorskip("torch")
    from edgefer.train.models.weights import load_pretrained

    model, spec = load_pretrained(name)
    with torch.no_grad():
        logits = model(torch.from_numpy(reference["inputs"][:, None].astype(np.float32))).numpy()
    np.testing.assert_allclose(logits, reference[KEYS[name]], rtol=0, atol=1e-4)
    assert spec.model == name


def test_reference_covers_a_real_face_and_varied_logits(reference):
    """Guard the reference itself: a real face crop is among the inputs and logits are not flat."""
    assert reference["inputs"].shape[1:] == (84, 84)
    assert 0 <= int(reference["astronaut_index"]) < len(reference["inputs"])
    for key in KEYS.values():
        assert np.ptp(reference[key], axis=1).min() > 0.1
        assert len(set(reference[key].argmax(axis=1))) > 1
