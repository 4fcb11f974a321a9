"""Reports are documents others open (issue 15, items 8, 9 and 11): `edgefer report` reads result files
as untrusted input, and what it writes carries no injection from the names inside them.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from edgefer.bench.harness import Timing
from edgefer.bench.machine import Machine
from edgefer.bench.records import BenchResult, Record, read_result
from edgefer.bench.report import Report, write_report
from edgefer.bench.result_check import MAX_RESULT_BYTES
from edgefer.errors import InputError
from edgefer.fileio import check_output_folder

EVIL = '=HYPERLINK("http://evil")|<script>alert(1)</script>\n\x1b[31m[x](javascript:y)'


def result(machine: str = "box", model: str = "p12-xxs") -> BenchResult:
    timing = Timing(median=0.5, p90=0.6, p99=0.7, mean=0.52, std=0.05, min=0.4, max=0.9, iterations=200,
                    seconds=1.0, warmup_iterations=10, warmup_seconds=0.1, valid=True)
    record = Record(model=model, backend="onnxruntime", precision="fp32", batch=1, threads=1, status="ok",
                    params=83_000, device="cpu", runtime_precision="fp32", format="onnx", size_mb=0.3,
                    timing=timing)
    return BenchResult(Machine(machine, "cpu", 2, "linux", "3.11"), [record], {"batch": [1]}, 12.0)


@pytest.fixture
def good(tmp_path) -> dict:
    path = tmp_path / "good.json"
    result().write(path)
    return json.loads(path.read_text())


def write(tmp_path: Path, data: object, name: str = "bad.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_a_good_result_reads_back(tmp_path, good):
    back = read_result(write(tmp_path, good))
    assert back.records[0].timing.median == 0.5 and back.machine.name == "box"


@pytest.mark.parametrize("change,field", [
    (lambda d: d.update(machine=["box"]), "field machine: expected an object, got list"),
    (lambda d: d["machine"].update(name=5), "field machine.name: expected text, got int"),
    (lambda d: d["machine"].update(cores="two"), "field machine.cores: expected a whole number, got str"),
    (lambda d: d["machine"].pop("cpu"), "field machine.cpu is missing"),
    (lambda d: d["machine"].update(load_average=[1, "x"]), r"field machine.load_average\[1\]"),
    (lambda d: d["machine"].update(libraries={"torch": 3}), "field machine.libraries.torch"),
    (lambda d: d.update(records={"a": 1}), "field records: expected a list, got dict"),
    (lambda d: d["records"].append(7), r"field records\[1\]: expected an object, got int"),
    (lambda d: d["records"][0].update(batch="1"), r"field records\[0\].batch: expected a whole number, got str"),
    (lambda d: d["records"][0].update(batch=True), r"records\[0\].batch: expected a whole number, got bool"),
    (lambda d: d["records"][0].update(batch=10**16), r"records\[0\].batch: 1e\+16 is out of range"),
    (lambda d: d["records"][0].update(status="pwned"), r"records\[0\].status: 'pwned', expected one of"),
    (lambda d: d["records"][0].pop("model"), r"records\[0\].model is missing"),
    (lambda d: d["records"][0].update(parity={"max_abs_diff": "x"}), r"records\[0\].parity.max_abs_diff"),
    (lambda d: d["records"][0].update(extra={"k": [1]}), r"records\[0\].extra.k: expected text"),
    (lambda d: d["records"][0]["latency_ms"].update(median=None), r"records\[0\].latency_ms.median"),
    (lambda d: d["records"][0]["run"].update(valid="yes"), r"records\[0\].run.valid: expected true or false"),
    (lambda d: d["records"][0].update(reason="x" * 20_000), r"records\[0\].reason: 20,000 characters"),
    (lambda d: d.update(wall_seconds="long"), "field wall_seconds: expected a number"),
])
def test_wrong_fields_are_named(tmp_path, good, change, field):
    change(good)
    with pytest.raises(InputError, match=field) as err:
        read_result(write(tmp_path, good))
    assert str(err.value).startswith(str(tmp_path / "bad.json"))


@pytest.mark.parametrize("text,match", [
    ('{"schema": 1, "wall_seconds": NaN}', "NaN is not a JSON number"),
    ('{"schema": 1, "wall_seconds": Infinity}', "Infinity is not a JSON number"),
    ('{"schema": 1, "wall_seconds": 1e999}', "out of range"),
    ('{"schema": 1, "wall_seconds": ' + "9" * 5000 + "}", "5000-digit number"),
    ('{"schema": 1, "options": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested too deeply"),
    ("[1, 2]", "not an edgefer bench result"),
    ("\xff\xfe", "not a readable bench result"),
])
def test_hostile_json_is_refused(tmp_path, text, match):
    with pytest.raises(InputError, match=match):
        read_result(write(tmp_path, text))


def test_deep_options_are_refused(tmp_path, good):
    deep: object = 1
    for _ in range(100):
        deep = {"a": deep}
    good["options"] = deep
    with pytest.raises(InputError, match="field options.a.a.a.*nested deeper than 32 levels"):
        read_result(write(tmp_path, good))


def test_huge_result_file_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "huge.json"
    with path.open("wb") as handle:
        handle.write(b'{"schema": 1, ')
        handle.truncate(MAX_RESULT_BYTES + 1)
    with pytest.raises(InputError, match="exceeds the limit of 67,108,864 bytes"):
        read_result(path)


@pytest.mark.slow
def test_report_cli_names_file_and_field(tmp_path, good, edgefer):
    good["records"][0]["batch"] = "one"
    out = edgefer("report", write(tmp_path, good), "--out", tmp_path / "r", "--no-plot")
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert "bad.json: field records[0].batch: expected a whole number, got str" in out.stderr


# --- 9: what the report writes -------------------------------------------------------------------------

def test_names_reach_markdown_and_csv_neutralised(tmp_path):
    report = Report.of([result(machine=EVIL, model=EVIL), result(machine="-2+3")])
    out = tmp_path / "report"
    write_report(report, out, plot=False)
    markdown = (out / "report.md").read_text()
    assert "<script>" not in markdown and "\x1b" not in markdown and "\\[x\\](javascript" in markdown
    rows = _table(markdown)
    assert len(rows) >= 3 and all(len(row) == len(rows[0]) for row in rows)  # a | or newline would add cells
    found = []
    for name in ("records.csv", "latency.csv"):
        with (out / name).open(newline="") as handle:
            cells = [cell for row in csv.reader(handle) for cell in row]
        texts = [c for c in cells if c and not _number(c)]
        assert not [c for c in texts if c.startswith(("=", "+", "-", "@", "\t", "\r"))], texts
        assert not [c for c in cells if "\n" in c or "\x1b" in c]
        found += texts
    assert "'=HYPERLINK(\"http://evil\")|<script>alert(1)</script>\\n\\x1b[31m[x](javascript:y)" in found
    assert "'-2+3" in found


def _table(markdown: str) -> list[list[str]]:
    """The cells of the first table, split on unescaped |."""
    rows = []
    for line in markdown.splitlines():
        if line.startswith("| ---"):
            continue
        if line.startswith("| "):
            rows.append(line.replace("\\|", "").split("|"))
        elif rows:
            break
    return rows


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# --- 11: an output folder inside a file ----------------------------------------------------------------

def test_an_output_folder_inside_a_file_is_refused(tmp_path):
    file = tmp_path / "file"
    file.write_text("x")
    with pytest.raises(InputError, match="exists and is not a folder"):
        check_output_folder(file)
    with pytest.raises(InputError, match=r"file/sub/deeper: cannot be a folder: .*file is a file"):
        check_output_folder(file / "sub" / "deeper")
    assert check_output_folder(tmp_path / "new" / "sub") == tmp_path / "new" / "sub"
    with pytest.raises(InputError, match="cannot be a folder"):
        write_report(Report.of([result()]), file / "sub", plot=False)


@pytest.mark.slow
@pytest.mark.parametrize("command", [
    ["report", "{good}", "--no-plot", "--out", "{file}/sub"],
    ["convert", "p12-xxs", "--out", "{file}/sub"],
    ["train", "student", "--data", "{tmp}", "--dataset", "folder", "--split", "random", "--epochs", "1",
     "--out", "{file}/sub"],
    ["study", "pooling", "--data", "{tmp}", "--dataset", "folder", "--split", "random", "--out", "{file}/sub"],
])
def test_out_inside_a_file_is_exit_2_on_every_command(tmp_path, edgefer, command):
    file = tmp_path / "file"
    file.write_text("x")
    good = tmp_path / "good.json"
    result().write(good)
    args = [a.format(file=file, good=good, tmp=tmp_path) for a in command]
    out = edgefer(*args)
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    assert "cannot be a folder" in out.stderr and "is a file" in out.stderr
