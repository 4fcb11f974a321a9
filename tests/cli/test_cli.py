"""The edgefer CLI as a user runs it: real processes, real files, exit codes and one-line errors."""

import json

import numpy as np
import pytest

from edgefer import LABELS


@pytest.mark.slow
def test_predict_json(edgefer, astronaut_path, reference):
    out = edgefer("predict", "--json", "--detector", "haar-exact", astronaut_path)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result[0]["image"] == str(astronaut_path) and result[0]["detector"] == "haar-exact"
    (face,) = result[0]["faces"]
    assert face["box"] == [int(v) for v in reference["astronaut_box"]]
    assert set(face["scores"]) == set(LABELS) and face["label"] in LABELS


@pytest.mark.slow
def test_min_face_sets_the_fast_haars_smallest_face(edgefer, astronaut_path, reference):
    """--min-face 0 makes haar search every size: the authors' box; too large a minimum finds no face."""
    every = json.loads(edgefer("predict", "--json", "--detector", "haar", "--min-face", "0", astronaut_path).stdout)
    assert every[0]["detector"] == "haar"
    assert [f["box"] for f in every[0]["faces"]] == [[int(v) for v in reference["astronaut_box"]]]
    none = json.loads(edgefer("predict", "--json", "--detector", "haar", "--min-face", "0.5", astronaut_path).stdout)
    assert none[0]["faces"] == []
    for args in (["--min-face", "0.1"], ["--detector", "blazeface", "--min-face", "0.1"],
                 ["--detector", "haar", "--min-face", "1.5"]):
        refused = edgefer("predict", astronaut_path, *args)
        assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1, args
        assert "min-face" in refused.stderr or "min_face" in refused.stderr


@pytest.mark.slow
def test_predict_table_and_no_detect(edgefer, tmp_path, astronaut_path, reference):
    import cv2

    crop = tmp_path / "crop.png"
    cv2.imwrite(str(crop), reference["inputs"][reference["astronaut_index"]].astype(np.uint8))
    out = edgefer("predict", "--model", "microexpnet-oulu", astronaut_path, crop, "--no-detect")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[0].startswith("# model microexpnet-oulu on onnxruntime")
    assert len(lines) == 3 and all("whole image" in line for line in lines[1:])
    assert any(label in lines[1] for label in LABELS)


@pytest.mark.slow
def test_predict_crop_matches_classify(edgefer, tmp_path, reference):
    """--crop feeds a ready 84x84 crop as it is: the scores are Recognizer.classify's on those pixels."""
    import cv2

    from edgefer import Recognizer

    pixels = reference["inputs"][reference["astronaut_index"]].astype(np.uint8)
    crop = tmp_path / "face_crop_84x84.png"
    cv2.imwrite(str(crop), pixels)
    out = edgefer("predict", "--json", "--crop", crop)
    assert out.returncode == 0, out.stderr
    (result,) = json.loads(out.stdout)
    assert result["detector"].startswith("none (ready crops")
    expected = Recognizer("microexpnet-ck").classify(pixels)[0]
    got = np.array([result["faces"][0]["scores"][label] for label in LABELS])
    np.testing.assert_allclose(got, expected, atol=1e-6)
    other = json.loads(edgefer("predict", "--json", "--no-detect", crop).stdout)[0]["faces"][0]["scores"]
    assert not np.allclose([other[label] for label in LABELS], expected, atol=1e-3)


@pytest.mark.slow
def test_predict_goes_on_after_a_bad_file(edgefer, tmp_path, astronaut_path):
    """One bad file costs one stderr line and an "error" entry; the others are still answered; exit 2."""
    missing = tmp_path / "missing.png"
    out = edgefer("predict", "--json", astronaut_path, missing, astronaut_path)
    assert out.returncode == 2
    results = json.loads(out.stdout)
    assert [r["image"] for r in results] == [str(astronaut_path), str(missing), str(astronaut_path)]
    assert len(results[0]["faces"]) == 1 and results[2]["faces"] == results[0]["faces"]
    assert "missing.png" in results[1]["error"] and "faces" not in results[1]
    assert results[0]["model"] == "microexpnet-ck" and results[0]["detector"] == "haar-exact"
    assert out.stderr.strip().splitlines() == [f"edgefer: error: {results[1]['error']}"]
    table = edgefer("predict", missing, astronaut_path)
    assert table.returncode == 2 and "face 0" in table.stdout and len(table.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_predict_reports_no_face(edgefer, tmp_path):
    import cv2

    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((120, 160, 3), 200, np.uint8))
    out = edgefer("predict", "--json", blank)
    assert out.returncode == 0 and json.loads(out.stdout)[0]["faces"] == []


@pytest.mark.slow
def test_info_lists_backends(edgefer):
    out = edgefer("info", "--json")
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    backends = {b["name"]: b for b in info["backends"]}
    assert backends["onnxruntime"]["available"]
    assert "CPUExecutionProvider" in backends["onnxruntime"]["devices"]
    assert info["cores"] >= 1 and info["cpu"]
    from edgefer.sysinfo import cpu_flags  # the features named are the CPU's own flags, in the listed order

    assert info["cpu_features"] == [f for f in ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16",
                                                "amx_tile", "amx_bf16", "amx_int8", "asimd", "asimddp", "bf16", "sve")
                                    if f in cpu_flags()]


def bad_files(tmp_path, astronaut_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    text = tmp_path / "readme.jpg"
    text.write_text("hello")
    cut = tmp_path / "cut.png"
    cut.write_bytes(astronaut_path.read_bytes()[:1500])
    broken_model = tmp_path / "broken.onnx"
    broken_model.write_bytes(b"\x00" * 64)
    return {
        "missing image": (["predict", tmp_path / "nope.png"], "nope.png"),
        "empty image": (["predict", empty], "empty.png"),
        "text as image": (["predict", text], "readme.jpg"),
        "truncated image": (["predict", cut], "cut.png"),
        "unknown model": (["predict", "--model", "microexpnet-zz", astronaut_path], "microexpnet-zz"),
        "broken model": (["predict", "--model", broken_model, astronaut_path], "broken.onnx"),
        "unknown backend": (["predict", "--backend", "tflite", astronaut_path], "tflite"),
    }


@pytest.mark.slow
@pytest.mark.parametrize("case", ["missing image", "empty image", "text as image", "truncated image",
                                  "unknown model", "broken model", "unknown backend"])
def test_bad_input_is_one_line_and_exit_2(edgefer, tmp_path, astronaut_path, case):
    args, named = bad_files(tmp_path, astronaut_path)[case]
    out = edgefer(*args)
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and named in lines[0], out.stderr


@pytest.mark.slow
def test_usage_errors_exit_2(edgefer):
    out = edgefer("predict")
    assert out.returncode == 2 and "Traceback" not in out.stderr


@pytest.mark.slow
def test_predict_precision_reports_what_ran_or_exits_5(edgefer, astronaut_path):
    """--precision asks the backend for a compute precision; one it cannot run is exit 5 in one line."""
    from edgefer.sysinfo import cpu_has_bf16

    refused = edgefer("predict", "--precision", "bf16", astronaut_path)  # ONNX Runtime: no bf16
    assert refused.returncode == 5 and len(refused.stderr.strip().splitlines()) == 1
    assert "cannot be asked for bf16" in refused.stderr
    pytest.importorskip("openvino")
    result = edgefer("predict", "--backend", "openvino", "--precision", "bf16", "--json", astronaut_path)
    if not cpu_has_bf16():
        assert result.returncode == 5 and "no bf16 instructions" in result.stderr
        return
    assert result.returncode == 0, result.stderr
    [answer] = json.loads(result.stdout)
    assert answer["precision"] == "bf16" and answer["backend"] == "openvino" and answer["faces"]
