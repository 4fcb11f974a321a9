"""What a model artifact promises: labels, input geometry, pixel scale and preprocessing.

Every artifact edgefer writes carries this spec inside itself (ONNX ``metadata_props``, OpenVINO
``rt_info``, a JSON sidecar for TensorRT engines) and the runtime reads it from there.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from edgefer._version import __version__

#: Class order of the authors' models (index -> label), docs/authors-facts.md.
LABELS: tuple[str, ...] = (
    "neutral", "anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise",
)

#: Other names of the labels accepted for class folders (datasets, calibration and accuracy folders alike).
LABEL_SYNONYMS: dict[str, str] = {
    "angry": "anger", "contemptuous": "contempt", "disgusted": "disgust", "fearful": "fear", "afraid": "fear",
    "happiness": "happy", "joy": "happy", "sad": "sadness", "surprised": "surprise", "neutrality": "neutral",
}

#: Artifact formats `edgefer convert` writes, in the order it builds them.
FORMATS: tuple[str, ...] = ("onnx", "openvino", "tensorrt")

#: Numeric precisions an artifact can be built in (``ModelSpec.precision``).
PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "int8")


def label_index(name: str) -> int | None:
    """A class folder name -> label index (case-insensitive, synonyms accepted); None if it names no label.
    The one rule for every labelled folder edgefer reads."""
    key = name.lower()
    key = LABEL_SYNONYMS.get(key, key)
    return LABELS.index(key) if key in LABELS else None


#: The authors' inference preprocessing (docs/authors-facts.md), as a name the runtime dispatches on.
AUTHORS_PREPROCESSING = "haar-crop-256-center224-84-gray"

METADATA_KEY = "edgefer.spec"


@dataclass(frozen=True)
class ModelSpec:
    """The contract between an artifact and the runtime that feeds it."""

    labels: tuple[str, ...] = LABELS
    input_size: int = 84
    channels: int = 1
    pixel_min: float = 0.0
    pixel_max: float = 255.0
    preprocessing: str = AUTHORS_PREPROCESSING
    input_name: str = "image"
    output_name: str = "logits"
    layout: str = "NCHW"
    model: str = "microexpnet"
    source: str = ""
    source_sha256: str = ""
    precision: str = "fp32"
    edgefer_version: str = __version__
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """Shape of one input (C, H, W)."""
        return (self.channels, self.input_size, self.input_size)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelSpec:
        """Parse a spec written by :meth:`to_json`; unknown keys are ignored (newer writers)."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("model spec is not a JSON object")
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if "labels" in known:
            known["labels"] = tuple(known["labels"])
        spec = cls(**known)
        spec.validate()
        return spec

    def validate(self) -> None:
        """Raise ValueError if the fields cannot describe a usable classifier."""
        if len(self.labels) < 2 or len(set(self.labels)) != len(self.labels):
            raise ValueError(f"model spec needs at least 2 distinct labels, got {list(self.labels)}")
        if self.input_size < 8 or self.channels not in (1, 3):
            raise ValueError(f"model spec input {self.channels}x{self.input_size}x{self.input_size} unsupported")
        if not self.pixel_max > self.pixel_min:
            raise ValueError(f"model spec pixel range [{self.pixel_min}, {self.pixel_max}] is empty")
