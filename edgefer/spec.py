"""What a model artifact promises: labels, input geometry, pixel scale and preprocessing.

Every artifact edgefer writes carries this spec inside itself (ONNX ``metadata_props``, OpenVINO
``rt_info``, a JSON sidecar for TensorRT engines) and the runtime reads it from there. A spec read
from a file is untrusted: :meth:`ModelSpec.from_json` bounds its size and nesting and checks every
field's type and range (a ModelError naming the field); the backends then check it against the
graph itself (edgefer.runtime.base.check_graph) and the Recognizer refuses what it does not implement.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field, fields

from edgefer._version import __version__
from edgefer.errors import ModelError

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

#: Numeric precisions an artifact can be built in (``ModelSpec.precision``). bf16 is a compute precision:
#: a bf16 artifact holds float32 weights and asks its runtime to compute in bf16 (OpenVINO only).
PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "bf16", "int8")

#: The precisions `edgefer convert` builds each format in (bf16: OpenVINO only; ONNX Runtime has no bf16
#: CPU kernels).
FORMAT_PRECISIONS: dict[str, tuple[str, ...]] = {
    "onnx": ("fp32", "fp16", "int8"), "openvino": ("fp32", "fp16", "bf16", "int8"),
    "tensorrt": ("fp32", "fp16", "int8")}


def label_index(name: str) -> int | None:
    """A class folder name -> label index (case-insensitive, synonyms accepted); None if it names no label.
    The one rule for every labelled folder edgefer reads."""
    key = name.lower()
    key = LABEL_SYNONYMS.get(key, key)
    return LABELS.index(key) if key in LABELS else None


def authors_preprocessing(size: int = 84, channels: int = 1) -> str:
    """The name of the authors' crop (edgefer.preprocess.authors_crops) at ``size``, gray or gray repeated to 3."""
    return f"haar-crop-256-center224-{size}-gray{'3' if channels == 3 else ''}"


#: The authors' inference preprocessing (docs/authors-facts.md), as a name the runtime dispatches on.
AUTHORS_PREPROCESSING = authors_preprocessing()

METADATA_KEY = "edgefer.spec"

#: The torch seed of a family member's random initialisation (`edgefer convert p12-s`), and the spec source
#: its artifacts name (the bench rebuilds such a file's PyTorch reference from it).
RANDOM_SEED = 0
RANDOM_SOURCE = f"random initialisation (torch seed {RANDOM_SEED})"

#: Bounds on an untrusted spec: its JSON text, nesting, labels, sizes and strings.
MAX_SPEC_BYTES = 64 * 1024
MAX_SPEC_DEPTH = 8
MAX_LABELS = 1000
MAX_LABEL_CHARS = 64
MAX_INPUT_SIZE = 1024
MAX_TEXT_CHARS = 1024
MAX_EXTRA = 64
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKETS = re.compile(r"[\[\]{}]")


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
        """Parse and validate a spec written by :meth:`to_json`; unknown keys are ignored (newer writers).

        ModelError naming the field for anything else: text over MAX_SPEC_BYTES or nested deeper than
        MAX_SPEC_DEPTH, invalid JSON, NaN/Infinity, duplicate keys, wrong types or values out of range.
        """
        if not isinstance(text, str):
            raise ModelError(f"model spec must be JSON text, got {type(text).__name__}")
        if len(text) > MAX_SPEC_BYTES:
            raise ModelError(f"model spec is {len(text)} characters, over the {MAX_SPEC_BYTES} limit")
        depth = _json_depth(text)
        if depth > MAX_SPEC_DEPTH:
            raise ModelError(f"model spec JSON is nested {depth} deep, over the {MAX_SPEC_DEPTH} limit")
        try:
            data = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
        except ModelError:
            raise
        except (ValueError, RecursionError) as err:
            raise ModelError(f"model spec is not valid JSON ({str(err)[:200]})") from None
        if not isinstance(data, dict):
            raise ModelError("model spec is not a JSON object")
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if "labels" in known:
            if not isinstance(known["labels"], list):
                raise ModelError(f"model spec field 'labels' must be a list of strings, "
                                 f"got {type(known['labels']).__name__}")
            known["labels"] = tuple(known["labels"])
        spec = cls(**known)
        spec.validate()
        return spec

    def validate(self) -> None:
        """Raise ModelError naming the first field that cannot describe a usable classifier."""
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name not in ("labels", "extra", "input_size", "channels", "pixel_min", "pixel_max"):
                _check_text(item.name, value, allow_empty=item.name not in ("input_name", "output_name",
                                                                            "preprocessing", "layout"))
        _check_labels(self.labels)
        if self.precision not in PRECISIONS:
            raise ModelError(f"model spec field 'precision' must be one of {', '.join(PRECISIONS)}, "
                             f"got {_short(self.precision)}")
        if not _is_int(self.input_size) or not 8 <= self.input_size <= MAX_INPUT_SIZE:
            raise ModelError(f"model spec field 'input_size' must be a whole number 8..{MAX_INPUT_SIZE}, "
                             f"got {self.input_size!r}")
        if not _is_int(self.channels) or self.channels not in (1, 3):
            raise ModelError(f"model spec field 'channels' must be 1 or 3, got {self.channels!r}")
        for name in ("pixel_min", "pixel_max"):
            value = getattr(self, name)
            if not (_is_int(value) or isinstance(value, float)) or not math.isfinite(value):
                raise ModelError(f"model spec field '{name}' must be a finite number, got {value!r}")
        if not self.pixel_max > self.pixel_min:
            raise ModelError(f"model spec fields 'pixel_min'/'pixel_max': range [{self.pixel_min}, "
                             f"{self.pixel_max}] is empty")
        if not isinstance(self.extra, dict) or len(self.extra) > MAX_EXTRA:
            raise ModelError(f"model spec field 'extra' must map at most {MAX_EXTRA} strings to strings")
        for key, value in self.extra.items():
            _check_text("extra", key)
            _check_text(f"extra.{key}", value)


def _check_labels(labels: object) -> None:
    if not isinstance(labels, tuple) or not 2 <= len(labels) <= MAX_LABELS:
        raise ModelError(f"model spec field 'labels' must be a list of 2..{MAX_LABELS} labels, "
                         f"got {_short(labels)}")
    for label in labels:
        if (not isinstance(label, str) or not 1 <= len(label) <= MAX_LABEL_CHARS or not label.isprintable()
                or label != label.strip()):
            raise ModelError(f"model spec field 'labels': {_short(label)} is not a label (1..{MAX_LABEL_CHARS} "
                             "printable characters, no surrounding spaces)")
    if len(set(labels)) != len(labels):
        raise ModelError(f"model spec field 'labels' repeats a label: {_short(list(labels))}")


def _check_text(name: str, value: object, allow_empty: bool = True) -> None:
    """A string of printable characters (no control characters: specs reach terminals, JSON and tables)."""
    if (not isinstance(value, str) or len(value) > MAX_TEXT_CHARS or (not allow_empty and not value)
            or not value.isprintable()):
        raise ModelError(f"model spec field '{name}' must be {'a' if allow_empty else 'a non-empty'} string of "
                         f"at most {MAX_TEXT_CHARS} printable characters, got {_short(value)}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _short(value: object, limit: int = 80) -> str:
    text = ascii(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({type(value).__name__})"


def _json_depth(text: str) -> int:
    """How deep arrays and objects nest in ``text`` (strings skipped), without parsing it."""
    depth = deepest = 0
    for char in _BRACKETS.findall(_JSON_STRING.sub("", text)):
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict:
    data = dict(pairs)
    if len(data) != len(pairs):
        seen: set[str] = set()
        duplicate = next(key for key, _ in pairs if key in seen or seen.add(key))
        raise ModelError(f"model spec field {duplicate!r} appears twice")
    return data


def _no_constant(name: str) -> None:
    raise ModelError(f"model spec holds {name}, not a finite number")
