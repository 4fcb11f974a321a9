"""Hostile inputs the robustness tests share: encoded images, PNG chunks, code-running pickles, an ONNX with
external weights."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np

from edgefer.zoo import pretrained


def encode(image: np.ndarray, ext: str, *params: int) -> bytes:
    """``image`` encoded by OpenCV as ``ext`` (".png", ".jpg", ...)."""
    ok, data = cv2.imencode(ext, image, list(params))
    assert ok
    return data.tobytes()


def png_chunk(kind: bytes, body: bytes) -> bytes:
    """One PNG chunk: length, type, body and CRC."""
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


class RunsCode:
    """Unpickling this runs ``touch SENTINEL``: what a malicious checkpoint does."""

    def __init__(self, sentinel: Path):
        self.sentinel = sentinel

    def __reduce__(self):
        return os.system, (f"touch {self.sentinel}",)


def save_external_model(folder: Path) -> Path:
    """The bundled CK+ model saved in ``folder`` with its weights in ``weights.bin`` beside it (as large
    exports have; shape tensors stay inline for ONNX Runtime)."""
    import onnx

    folder.mkdir(parents=True, exist_ok=True)
    proto = onnx.load(str(pretrained("microexpnet-ck").onnx))
    onnx.save_model(proto, str(folder / "model.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="weights.bin", size_threshold=256)
    return folder / "model.onnx"
