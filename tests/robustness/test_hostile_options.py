"""Hostile numbers, API misuse, model outputs and names (issue 15, items 3, 4, 6, 7, 11 and 12).

Out-of-range options are one line and exit 2 on every command; the Python API raises InputError;
classify's memory does not grow with each new batch size; a model that outputs NaN is exit 4; text
from files reaches the terminal with its control characters escaped.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from edgefer import Recognizer
from edgefer.errors import InputError, QualityError
from edgefer.fileio import csv_cell
from edgefer.limits import MAX_BATCH, check_options, check_threads, max_threads
from edgefer.runtime.loader import open_backend
from edgefer.runtime.recognizer import CLASSIFY_CHUNK, Face
from edgefer.textsafe import json_text, markdown_cell, plot_label, printable
from edgefer.zoo import resolve_artifact


def one_line_exit(out: subprocess.CompletedProcess, code: int, *words: str) -> None:
    assert out.returncode == code, (out.returncode, out.stderr)
    assert out.stderr.count("\n") == 1 and out.stderr.startswith("edgefer: error: "), out.stderr
    assert "Traceback" not in out.stderr and "╭" not in out.stderr
    for word in words:
        assert word in out.stderr, out.stderr


# --- 3: numbers bounded ------------------------------------------------------------------------------

@pytest.mark.parametrize("threads", [0, -1, max_threads() + 1, 100_000, 2.5, "4", True])
def test_threads_out_of_range_are_input_errors_in_the_api(threads):
    with pytest.raises(InputError, match="threads"):
        Recognizer("microexpnet-ck", threads=threads)
    with pytest.raises(InputError, match="threads"):
        open_backend(resolve_artifact("microexpnet-ck"), threads=threads)


def test_threads_up_to_four_per_core_are_taken():
    assert check_threads(max_threads()) == max_threads()
    assert check_threads(None) is None


@pytest.mark.parametrize("values,match", [
    ({"batch_size": MAX_BATCH + 1}, "--batch-size 4097 out of range: expected 1..4096"),
    ({"lr": float("nan")}, "--lr nan: expected a finite number"),
    ({"lr": 0.0}, "--lr 0.0: expected a finite number above 0"),
    ({"dropout": 1.0}, "--dropout"), ({"temperature": float("inf")}, "--temperature"),
    ({"temperatures": (4.0, -1.0)}, "--temperatures -1.0"), ({"input_size": 100_000}, "--input-size"),
    ({"seed": -1}, "--seed"), ({"folds": 4, "fold": 4}, "--fold 4 out of range"),
    ({"duration": float("nan")}, "--duration"), ({"timeout": 1e300}, "--timeout"),
])
def test_training_and_bench_options_are_bounded(values, match):
    with pytest.raises(InputError, match=match):
        check_options(values)


@pytest.mark.slow
@pytest.mark.parametrize("args,words", [
    (["predict", "--threads", "100000", "x.png"], ["threads 100000 out of range", "cores here"]),
    (["predict", "--threads", "0", "x.png"], ["--threads"]),
    (["predict", "--threads", "-1", "x.png"], ["--threads"]),
    (["predict", "--bogus", "x.png"], ["No such option: --bogus", "edgefer predict --help"]),
    (["convert", "p12-xxs", "--max-batch", "100000"], ["max_batch 100000 out of range"]),
    (["convert", "p12-xxs", "--batch", "lots"], ["--batch 'lots'"]),
    (["bench", "--threads", "0"], ["--threads"]),
    (["bench", "--batch", "100000"], ["--batch 100000 out of range"]),
    (["bench", "--duration", "nan"], ["duration"]),
    (["bench", "--timeout", "inf"], ["--timeout"]),
    (["report"], ["Missing argument"]),
    (["models", "extra"], ["unexpected extra argument"]),
    (["info", "--json", "x"], ["unexpected extra argument"]),
    (["train", "student", "--bogus"], ["No such option: --bogus"]),
    (["train", "teacher", "--data", ".", "--dataset", "folder", "--epochs", "1", "--out", "o", "--input-size",
      "100000"], ["--input-size 100000 out of range"]),
    (["train", "student", "--data", ".", "--dataset", "folder", "--epochs", "1", "--out", "o", "--lr", "nan"],
     ["--lr nan"]),
    (["study", "pooling", "--data", ".", "--dataset", "folder", "--out", "o", "--batch-size", "0"],
     ["--batch-size"]),
    (["study", "temperature", "--data", ".", "--dataset", "folder", "--out", "o", "--temperatures", "2,nan"],
     ["--temperatures nan"]),
])
def test_usage_errors_are_one_line_and_exit_2_on_every_command(edgefer, tmp_path, args, words):
    out = edgefer(*args, cwd=tmp_path, timeout=300)
    one_line_exit(out, 2, *words)


@pytest.mark.slow
def test_a_bare_group_prints_its_help_and_exits_2(edgefer):
    out = edgefer("train")
    assert out.returncode == 2 and "student" in out.stdout and out.stderr == ""


# --- 4: classify's memory ----------------------------------------------------------------------------

def test_large_batches_run_in_chunks_with_the_same_result(recognizer):
    crops = np.random.default_rng(0).random((CLASSIFY_CHUNK * 2 + 3, 84, 84), dtype=np.float32) * 255
    whole = recognizer.classify(crops)
    parts = np.concatenate([recognizer.classify(crops[i:i + 100]) for i in range(0, len(crops), 100)])
    np.testing.assert_allclose(whole, parts, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_classify_memory_does_not_grow_with_each_batch_size():
    """Eight batches of 3000+ crops, each a new size: the resident set must stay put (an lru_cache of
    ones-arrays, one per size, grew it by 85 MB a size; the runtime's arena by more)."""
    code = textwrap.dedent("""
        import numpy as np
        from edgefer import Recognizer
        def rss():
            return int(open("/proc/self/statm").read().split()[1]) * 4096 // 2**20
        recognizer = Recognizer("microexpnet-ck", threads=1)
        crops = np.random.default_rng(0).random((3008, 84, 84), dtype=np.float32) * 255
        recognizer.classify(crops[:3000])
        before = rss()
        for n in range(3001, 3008):
            recognizer.classify(crops[:n])
        print(rss() - before)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) < 64, f"resident memory grew by {out.stdout.strip()} MiB over 7 new batch sizes"


# --- 6: NaN out of a model ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def nan_model(tmp_path_factory):
    """The bundled model with its logits multiplied by NaN (a broken export, or a forged file)."""
    onnx = pytest.importorskip("onnx")
    from onnx import helper

    model = onnx.load(resolve_artifact("microexpnet-ck"))
    graph = model.graph
    output = graph.output[0].name
    for node in graph.node:
        node.output[:] = [f"{name}_raw" if name == output else name for name in node.output]
    graph.initializer.append(helper.make_tensor("nan_scale", onnx.TensorProto.FLOAT, [], [float("nan")]))
    graph.node.append(helper.make_node("Mul", [f"{output}_raw", "nan_scale"], [output]))
    path = tmp_path_factory.mktemp("nan") / "nan.onnx"
    onnx.save(model, path)
    return path


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_nan_output_is_a_quality_error_naming_the_model(nan_model, astronaut_path, backend):
    if backend == "openvino":
        pytest.importorskip("openvino")
    recognizer = Recognizer(nan_model, backend=backend)
    for crops in (np.zeros((84, 84), np.float32), np.zeros((84, 84), np.uint8), np.zeros((3, 84, 84))):
        with pytest.raises(QualityError, match="nan.onnx: the model output NaN or infinite scores"):
            recognizer.classify(crops)  # the one-crop hot path, one crop converted, a batch
    with pytest.raises(QualityError):
        recognizer.predict(astronaut_path)


@pytest.mark.slow
@pytest.mark.parametrize("extra", [[], ["--json"]])
def test_nan_output_on_the_cli_is_exit_4_and_never_bare_nan(nan_model, astronaut_path, extra, edgefer):
    out = edgefer("predict", "--model", nan_model, astronaut_path, *extra)
    one_line_exit(out, 4, "nan.onnx")
    assert "NaN" not in out.stdout


def test_json_text_never_writes_bare_nan():
    text = json_text({"scores": [float("nan"), float("inf"), -float("inf"), 0.5], "n": 1})
    assert json.loads(text) == {"scores": [None, None, None, 0.5], "n": 1}


# --- 7, 9: text from files escaped -------------------------------------------------------------------

HOSTILE = "happy\nfake.png  face 0  [whole image]  angry 1.000\x1b[2J\x1b]0;title\x07\u202eevil\x00"


def test_printable_leaves_no_control_character():
    text = printable(HOSTILE)
    assert "\n" not in text and "\x1b" not in text and "\x07" not in text and "\u202e" not in text
    assert "\\n" in text and "\\x1b" in text and "\\u202e" in text
    assert printable("neutral") == "neutral"


def test_predict_prints_labels_and_file_names_on_one_line(capsys):
    from edgefer.cli.predict import _print_faces

    _print_faces(HOSTILE + ".png", [Face(None, HOSTILE, {HOSTILE: 0.9, "sad": 0.1})], "detect")
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "\x1b" not in out and "\u202e" not in out


@pytest.mark.slow
def test_file_names_reach_errors_escaped(tmp_path, edgefer):
    path = tmp_path / "a\x1b[31mred\nfile.png"
    path.write_bytes(b"not an image")
    out = edgefer("predict", path)
    one_line_exit(out, 2, "\\x1b[31mred")


@pytest.mark.parametrize("text", ["=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)", "\tcmd", "\r=1"])
def test_csv_formula_prefixes_are_neutralised(text):
    cell = csv_cell(text)
    assert cell.startswith("'") and "\t" not in cell and "\r" not in cell


def test_csv_numbers_and_markdown_and_plot_labels():
    assert csv_cell(-1.5) == "-1.5" and csv_cell(3) == 3 and csv_cell(None) == ""
    assert csv_cell("p12-xxs") == "p12-xxs"
    cell = markdown_cell("x|y<img src=x onerror=alert(1)>[l](javascript:x)*b*\n# h")
    assert "|" not in cell.replace("\\|", "") and "<" not in cell and "\n" not in cell
    assert "\\[l\\]" in cell and "\\*b\\*" in cell
    assert plot_label("$\\sqrt{x}$\n") == "\\$\\sqrt{x}\\$\\n"


# --- 11: API misuse is InputError --------------------------------------------------------------------

@pytest.mark.parametrize("boxes", [5, "0,0,10,10", b"xy", 3.5, object()])
def test_boxes_that_are_not_a_list_are_input_errors(recognizer, astronaut_bgr, boxes):
    with pytest.raises(InputError, match="boxes must be a list"):
        recognizer.predict(astronaut_bgr, boxes=boxes)


@pytest.mark.parametrize("images", [5, None, "face.png", np.zeros((8, 8), np.uint8)])
def test_predict_many_of_one_image_or_a_number_is_an_input_error(recognizer, images):
    with pytest.raises(InputError, match="images must be a list"):
        recognizer.predict_many(images)


def test_boxes_as_an_array_still_work(recognizer, astronaut_bgr):
    faces = recognizer.predict(astronaut_bgr, boxes=np.array([[180, 60, 160, 160]]))
    assert len(faces) == 1


def test_env_cannot_smuggle_a_bad_cap(monkeypatch, astronaut_path):
    monkeypatch.setenv("EDGEFER_MAX_IMAGE_PIXELS", "-5")
    with pytest.raises(InputError, match="EDGEFER_MAX_IMAGE_PIXELS must be a positive"):
        Recognizer("microexpnet-ck").predict(astronaut_path)
    assert os.environ["EDGEFER_MAX_IMAGE_PIXELS"] == "-5"
