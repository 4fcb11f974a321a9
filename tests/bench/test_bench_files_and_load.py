"""`edgefer bench --models FILE` times the files given, and `--mode throughput` keeps several requests in flight;
the report merges runs of one machine and the two names of one network."""

import json

import pytest

pytest.importorskip("openvino")
pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from edgefer.bench.records import read_result  # noqa: E402
from edgefer.bench.report import Report, read_results, render_markdown, write_report  # noqa: E402
from edgefer.spec import METADATA_KEY, ModelSpec  # noqa: E402


@pytest.fixture(scope="module")
def unknown_source_onnx(p12s_onnx, tmp_path_factory):
    """p12-s whose spec names a source edgefer does not have: its parity must be n/a, not invented."""
    proto = onnx.load(str(p12s_onnx))
    entry = next(p for p in proto.metadata_props if p.key == METADATA_KEY)
    spec = ModelSpec.from_json(entry.value)
    entry.value = ModelSpec(**{**spec.__dict__, "source": "someone's own training run"}).to_json()
    path = tmp_path_factory.mktemp("unknown") / "mine.fp32.onnx"
    onnx.save(proto, str(path))
    return path


def bench_files(edgefer, files, out, *extra):
    return edgefer("bench", "--models", ",".join(map(str, files)), "--backends", "onnxruntime,openvino",
                   "--batch", "1", "--min-duration", "0.05", "--min-iters", "100", "--json", out,
                   "--machine", "box", *extra, timeout=900)


@pytest.fixture(scope="module")
def files_run(edgefer, microexpnet_ir, p12s_onnx, unknown_source_onnx, tmp_path_factory):
    out = tmp_path_factory.mktemp("files") / "files.json"
    result = bench_files(edgefer, [microexpnet_ir, p12s_onnx, unknown_source_onnx], out)
    assert result.returncode == 0, result.stderr[-2000:]
    return out, result.stdout


@pytest.mark.slow
def test_bench_times_the_given_files_on_the_backends_that_read_them(files_run, microexpnet_ir):
    out, stdout = files_run
    records = {(r.model, r.backend): r for r in read_result(out).records}
    assert set(records) == {("microexpnet-ck.fp32.xml", "openvino"), ("p12-s.fp32.onnx", "onnxruntime"),
                            ("p12-s.fp32.onnx", "openvino"), ("mine.fp32.onnx", "onnxruntime"),
                            ("mine.fp32.onnx", "openvino")}
    for (name, _), r in records.items():
        assert r.status == "ok" and r.timing.p99 is not None and r.size_mb > 0.2
        assert r.extra["file"].endswith(name)
    ir = records["microexpnet-ck.fp32.xml", "openvino"]
    assert ir.params == 65_000 and ir.parity.passed and ir.parity.max_abs_diff <= 1e-4  # source: the bundled model
    assert records["p12-s.fp32.onnx", "openvino"].parity.passed  # source: p12-s's seeded initialisation
    mine = records["mine.fp32.onnx", "onnxruntime"]
    assert mine.parity is None and mine.extra["parity"].startswith("n/a: no source checkpoint")
    assert "## Given model files" in stdout and "| n/a | n/a |" in stdout


@pytest.mark.slow
def test_throughput_mode_keeps_requests_in_flight(edgefer, p12s_onnx, tmp_path):
    out = tmp_path / "load.json"
    result = bench_files(edgefer, [p12s_onnx], out, "--mode", "throughput", "--in-flight", "3")
    assert result.returncode == 0, result.stderr[-2000:]
    for r in read_result(out).records:
        assert r.extra["mode"] == "throughput" and r.extra["in_flight"] == "3", r
        assert r.status == "ok" and r.timing.p90 <= r.timing.p99 and r.throughput_ips > 0
        assert r.timing.iterations >= 100
    assert "onnxruntime b1 throughput img/s" in result.stdout and "| 3 |" in result.stdout


@pytest.mark.slow
def test_report_merges_one_machine_and_one_network(files_run, tmp_path):
    """Two runs of one machine are one set of columns; microexpnet-ck and p12-xxs are one row."""
    out, _ = files_run
    data = json.loads(out.read_text())
    for r in data["records"]:
        r["model"] = "p12-xxs" if r["model"] == "microexpnet-ck.fp32.xml" else r["model"]
    again = tmp_path / "again.json"
    again.write_text(json.dumps(data))
    other = json.loads(out.read_text())
    other["machine"]["cpu"] = "Another CPU"
    for r in other["records"]:
        r["model"] = "microexpnet-ck" if r["model"] == "microexpnet-ck.fp32.xml" else r["model"]
    other_path = tmp_path / "other.json"
    other_path.write_text(json.dumps(other))
    report = Report.of(read_results([out, again, other_path]))
    assert [row[0].text for row in report.machines.rows] == ["box (" + data["machine"]["cpu"] + ")",
                                                             "box (Another CPU)"]
    assert report.machines.rows[0][-3].text == "2"  # two runs merged
    latency = render_markdown(report.latency)
    assert "| p12-xxs (microexpnet-ck) |" in latency  # the same network under two names: one row
    assert "median" in render_markdown(report.distribution) and "p99 ms" in report.distribution.headers
    written = write_report(report, tmp_path / "report")
    assert {p.name for p in written} >= {"latency.png", "report.md", "sizes.csv", "latency.csv", "records.csv"}


@pytest.fixture(scope="module")
def name_only_weights(tmp_path_factory):
    """The bundled MicroExpNet weights with only the network's name in the header, no spec."""
    from safetensors.numpy import load_file, save_file

    from edgefer.artifact import SAFETENSORS_MODEL_KEY
    from edgefer.zoo import PRETRAINED

    path = tmp_path_factory.mktemp("weights") / "bare.safetensors"
    save_file(load_file(str(PRETRAINED["microexpnet-ck"].safetensors)), str(path),
              metadata={SAFETENSORS_MODEL_KEY: "p12-xxs"})
    return path


def test_a_weights_file_says_its_spec(name_only_weights):
    from edgefer.artifact import artifact_format, read_spec
    from edgefer.zoo import PRETRAINED

    bundled = PRETRAINED["microexpnet-ck"].safetensors
    assert artifact_format(bundled) == "safetensors"
    assert read_spec(bundled).model == "microexpnet-ck" and read_spec(bundled).source.startswith("authors'")
    bare = read_spec(name_only_weights)
    assert bare == ModelSpec(model="p12-xxs", edgefer_version=bare.edgefer_version)


@pytest.mark.slow
def test_bench_times_a_weights_file_on_the_torch_backend(edgefer, name_only_weights, tmp_path):
    from edgefer.zoo import PRETRAINED

    out = tmp_path / "weights.json"
    files = [PRETRAINED["microexpnet-ck"].safetensors, name_only_weights]
    result = edgefer("bench", "--models", ",".join(map(str, files)), "--backends", "torch,onnxruntime",
                     "--batch", "1", "--min-duration", "0.05", "--min-iters", "100", "--json", out, timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]
    records = {(r.model, r.backend): r for r in read_result(out).records}
    assert set(records) == {("microexpnet-ck.safetensors", "torch"), ("bare.safetensors", "torch")}
    bundled = records["microexpnet-ck.safetensors", "torch"]
    assert bundled.status == "ok" and bundled.params == 65_000 and bundled.parity.max_abs_diff == 0.0
    bare = records["bare.safetensors", "torch"]  # its spec names no source: timed, parity n/a
    assert bare.status == "ok" and bare.parity is None and bare.extra["parity"].startswith("n/a")
