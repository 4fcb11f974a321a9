"""The spec is a two-way contract: forged or unsupported specs in real artifacts are refused at load.

Each artifact is a real model (the bundled MicroExpNet as ONNX, and as an OpenVINO IR) whose
edgefer spec is rewritten in place: ONNX ``metadata_props`` key ``edgefer.spec``, OpenVINO
``rt_info`` edgefer/spec. A spec the runtime does not implement, that does not match the graph,
or that is malformed gives a ModelError (exit 2) naming the field, never an internal error.
"""

from __future__ import annotations

import json

import pytest

from edgefer.errors import ModelError
from edgefer.runtime import Recognizer, open_backend
from edgefer.spec import METADATA_KEY, ModelSpec
from edgefer.zoo import PRETRAINED

onnx = pytest.importorskip("onnx")

BUNDLED = PRETRAINED["microexpnet-ck"].onnx
GOOD = json.loads(ModelSpec(model="microexpnet-ck").to_json())


def spec_text(**changes: object) -> str:
    return json.dumps({**GOOD, **changes})


def onnx_with_spec(folder, text: str, name: str = "forged.onnx"):
    proto = onnx.load(str(BUNDLED))
    for prop in proto.metadata_props:
        if prop.key == METADATA_KEY:
            prop.value = text
    path = folder / name
    onnx.save_model(proto, str(path))
    return path


@pytest.fixture(scope="module")
def ir_with_spec(microexpnet_ir, tmp_path_factory):
    """A function: spec JSON text -> an OpenVINO IR of the bundled model carrying it."""
    ov = pytest.importorskip("openvino")
    from edgefer.runtime.openvino_backend import RT_INFO_PATH

    folder = tmp_path_factory.mktemp("ir")
    count = iter(range(1000))

    def make(text: str):
        model = ov.Core().read_model(str(microexpnet_ir))
        model.set_rt_info(text, RT_INFO_PATH)
        path = folder / f"forged{next(count)}.xml"
        ov.save_model(model, str(path), compress_to_fp16=False)
        return path

    return make


# --- what the Recognizer implements: pixel range, layout, preprocessing (one test per field) ---------

UNSUPPORTED = {
    "pixel range": ({"pixel_min": 0.0, "pixel_max": 1.0}, "'pixel_min'/'pixel_max'"),
    "layout": ({"layout": "NHWC"}, "'layout'"),
    "preprocessing": ({"preprocessing": "mediapipe-crop-112-rgb"}, "'preprocessing'"),
}


@pytest.mark.parametrize("field", sorted(UNSUPPORTED))
def test_recognizer_refuses_an_onnx_spec_it_does_not_implement(tmp_path, field):
    changes, named = UNSUPPORTED[field]
    path = onnx_with_spec(tmp_path, spec_text(**changes))
    with pytest.raises(ModelError, match=named):
        Recognizer(path)


@pytest.mark.parametrize("field", sorted(UNSUPPORTED))
def test_recognizer_refuses_an_openvino_spec_it_does_not_implement(ir_with_spec, field):
    changes, named = UNSUPPORTED[field]
    with pytest.raises(ModelError, match=named):
        Recognizer(ir_with_spec(spec_text(**changes)))


def test_the_untouched_artifacts_still_load(tmp_path, ir_with_spec, astronaut_path):
    for path in (onnx_with_spec(tmp_path, spec_text()), ir_with_spec(spec_text())):
        with Recognizer(path, detector="haar-exact") as recognizer:  # the authors' detector, as documented
            assert recognizer.predict(astronaut_path)[0].label == "happy"


def test_a_backend_alone_still_runs_what_only_the_recognizer_refuses(tmp_path):
    """Pixel range and preprocessing are the feeder's business: the bench and the parity gate feed raw pixels."""
    path = onnx_with_spec(tmp_path, spec_text(pixel_max=1.0, preprocessing="mediapipe-crop-112-rgb"))
    with open_backend(path) as backend:
        assert backend.spec.pixel_max == 1.0


# --- a spec validated against the graph and bounded (hostile input, issue 15) -------------------------

FORGED = {
    "labels as a string": (spec_text(labels="abcdefgh"), "'labels'"),
    "fewer labels than outputs": (spec_text(labels=GOOD["labels"][:7]), "'labels'"),
    "more labels than outputs": (spec_text(labels=[*GOOD["labels"], "bored"]), "'labels'"),
    "a label with a newline": (spec_text(labels=[*GOOD["labels"][:7], "happy\nsad"]), "'labels'"),
    "a label with an ANSI escape": (spec_text(labels=[*GOOD["labels"][:7], "\x1b[31mred"]), "'labels'"),
    "a label that is a number": (spec_text(labels=[*GOOD["labels"][:7], 5]), "'labels'"),
    "a huge input size": (spec_text(input_size=100000), "'input_size'"),
    "an input size the graph does not have": (spec_text(input_size=64), "'input_size'"),
    "an input size as text": (spec_text(input_size="84"), "'input_size'"),
    "channels the graph does not have": (spec_text(channels=3), "'channels'"),
    "an output name the graph does not have": (spec_text(output_name="probabilities"), "'output_name'"),
    "an input name the graph does not have": (spec_text(input_name="pixels"), "'input_name'"),
    "a pixel range of NaN": (spec_text().replace('"pixel_max": 255.0', '"pixel_max": NaN'), "NaN"),
    "extra that is not strings": (spec_text(extra={"a": [1, 2]}), "'extra.a'"),
    "a precision edgefer does not build": (spec_text(precision="fp8"), "'precision'"),
    "a precision with an ANSI escape": (spec_text(precision="fp32\x1b[31m"), "'precision'"),
    "a model name with a newline": (spec_text(model="p12-xxs\nrm -rf"), "'model'"),
    "a source with a control character": (spec_text(source="run\x07"), "'source'"),
    "deep nesting": (spec_text(extra="X").replace('"X"', "[" * 5000 + "]" * 5000), "nested"),
    "a huge spec": (spec_text(source="x" * 200_000), "limit"),
    "not an object": ("[1, 2, 3]", "not a JSON object"),
    "not JSON": ("{labels: neutral}", "not valid JSON"),
    "a key twice": (spec_text()[:-1] + ', "layout": "NHWC"}', "'layout' appears twice"),
}


@pytest.mark.parametrize("case", sorted(FORGED))
def test_a_forged_onnx_spec_is_a_model_error_naming_the_field(tmp_path, case):
    text, named = FORGED[case]
    path = onnx_with_spec(tmp_path, text)
    with pytest.raises(ModelError, match=named) as caught:
        open_backend(path)
    assert str(caught.value).startswith(str(path)) and "\n" not in str(caught.value)


@pytest.mark.parametrize("case", ["labels as a string", "fewer labels than outputs", "a huge input size",
                                  "channels the graph does not have", "deep nesting", "an input size as text"])
def test_a_forged_openvino_spec_is_a_model_error_naming_the_field(ir_with_spec, case):
    text, named = FORGED[case]
    with pytest.raises(ModelError, match=named):
        open_backend(ir_with_spec(text))


def test_a_spec_passed_in_is_checked_against_the_graph_too():
    with pytest.raises(ModelError, match="'labels'"):
        open_backend(BUNDLED, spec=ModelSpec(labels=("yes", "no")))


@pytest.mark.slow
def test_the_cli_says_which_field_in_one_line_and_exits_2(edgefer, tmp_path, astronaut_path):
    path = onnx_with_spec(tmp_path, spec_text(labels="abcdefgh"))
    result = edgefer("predict", astronaut_path, "--model", path)
    assert result.returncode == 2, result.stderr
    assert "'labels'" in result.stderr and len(result.stderr.strip().splitlines()) == 1
