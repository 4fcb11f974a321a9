"""The bench in every precision: bf16 and int8 cells where the hardware has them, and the recommendation of
the fastest valid backend x precision (with its parity) for latency and for throughput."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("openvino")

from bench_cli import cli  # noqa: E402

from edgefer.bench.recommend import best_precision_table, recommend, usable  # noqa: E402
from edgefer.bench.records import read_result  # noqa: E402
from edgefer.sysinfo import cpu_has_bf16  # noqa: E402

pytestmark = pytest.mark.slow  # worker processes and three conversions


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[Path, str]:
    folder = tmp_path_factory.mktemp("precisions")
    out = folder / "run.json"
    result = cli("bench", "--models", "microexpnet", "--backends", "torch,onnxruntime,openvino", "--batch", "1,8",
                 "--precisions", "fp32,bf16,int8", "--duration", "0.05", "--min-iters", "100", "--json", out,
                 "--work", folder / "work")
    assert out.is_file(), result.output
    return out, result.output


def test_every_precision_cell_says_what_ran(run):
    records = read_result(run[0]).records
    cells = {(r.backend, r.precision, r.batch): r for r in records}
    assert len(cells) == 3 * 3 * 2
    assert cells["onnxruntime", "bf16", 1].status == "unsupported"
    for batch in (1, 8):
        openvino, torch = cells["openvino", "bf16", batch], cells["torch", "bf16", batch]
        if cpu_has_bf16():
            assert openvino.status in ("ok", "invalid") and openvino.runtime_precision == "bf16"
            assert openvino.parity.passed and openvino.parity.max_abs_diff <= 0.1
            assert torch.runtime_precision == "bf16"
        else:
            assert openvino.status == "unsupported" and "no bf16 instructions" in openvino.reason
            assert torch.runtime_precision == "bf16-emulated" and not usable(torch)
        for backend in ("onnxruntime", "openvino"):
            int8 = cells[backend, "int8", batch]
            assert int8.runtime_precision.startswith("int8") and int8.parity.top1_agreement >= 0.98


def test_recommendation_is_the_fastest_usable_record(run):
    records = read_result(run[0]).records
    picks = {p.goal: p.record for p in recommend(records)}
    candidates = [r for r in records if usable(r)]
    assert picks["latency"].batch == 1
    assert picks["latency"].per_image_ms == min(r.per_image_ms for r in candidates if r.batch == 1)
    assert picks["throughput"].throughput_ips == max(r.throughput_ips for r in candidates)
    output = run[1]
    assert "## Recommendation on this machine" in output
    assert f"fastest for latency: {picks['latency'].backend} {picks['latency'].precision}" in output
    assert "parity vs PyTorch max |dp|" in output


def test_best_precision_table_puts_each_backend_beside_fp32(run, tmp_path):
    result = read_result(run[0])
    table = best_precision_table([result])
    rows = {row[2].text: row for row in table.rows}
    assert set(rows) == {"torch", "onnxruntime", "openvino"}
    for row in rows.values():
        fp32_ms, best_ms, speedup = row[3].number, row[4].number, row[5].number
        assert best_ms <= fp32_ms and speedup == pytest.approx(fp32_ms / best_ms)
    out = tmp_path / "report"
    assert cli("report", run[0], "--out", out, "--no-plot").exit_code == 0
    assert "Each backend at its best precision beside fp32" in (out / "report.md").read_text()
    assert (out / "best_precision.csv").is_file()
    assert json.loads(run[0].read_text())["schema"] == 1  # still one schema-1 file


# ---------------------------------------------------------------- the authors' graph as a column

AUTHORS = Path(__file__).parent.parent / "fixtures" / "authors_timing.json"  # tools/time_authors_graph.py --json


def test_report_takes_the_authors_graph_timed_in_one_run(run, tmp_path):
    from edgefer.bench.authors import read_authors_timing

    timing = read_authors_timing(AUTHORS)
    out = tmp_path / "report"
    result = cli("report", run[0], "--out", out, "--no-plot", "--authors", AUTHORS)
    assert result.exit_code == 0, result.output
    markdown = (out / "report.md").read_text()
    assert "authors' TF ms (measured)" in markdown and "fallback" not in markdown
    assert f"{timing.at(1).tf_ms:.3f}" in markdown  # the measured figure, not the constant
    assert f"({timing.at(1).speedup:.1f}×)" in markdown and f"({timing.at(256).speedup:.1f}×)" in markdown
    edgefer = timing.at(256)  # Recognizer.classify timed in the same blocks (--edgefer-backend)
    assert edgefer.edgefer.startswith("edgefer openvino") and f"({edgefer.tf_ms / edgefer.edgefer_ms:.1f}×)" in markdown
    plain = cli("report", run[0], "--out", tmp_path / "plain", "--no-plot")
    assert "authors' TF ms (fallback constant)" in plain.output and "0.392" in plain.output


def test_a_broken_authors_file_is_refused_in_one_line(edgefer, run, tmp_path):
    bad = tmp_path / "authors.json"
    bad.write_text('{"schema": "something else"}')
    result = edgefer("report", run[0], "--out", tmp_path / "r", "--no-plot", "--authors", bad)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "not a timing file of tools/time_authors_graph.py" in result.stderr
