"""Help texts without Python type tags, info's aligned table, plain CSV cells, usage errors before any spinner."""

import re

import pytest
from typer.testing import CliRunner

from edgefer.cli import app
from edgefer.fileio import csv_cell

COMMANDS = [["predict"], ["convert"], ["bench"], ["report"], ["models"], ["info"], ["train", "student"],
            ["train", "teacher"], ["study", "pooling"]]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_help_has_no_type_tags(command):
    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    assert not re.search(r"<(str|bool|int|float|path)[a-z ]*>", result.output), result.output


def test_bench_models_default_is_readable_at_120_columns():
    result = CliRunner().invoke(app, ["bench", "--help"], env={"COLUMNS": "120"})
    text = " ".join(result.output.split())
    assert "Default: the paper's five (inception-v3, p12-m, p12-s, p12-xs, microexpnet)" in text.replace("│ ", "")


def test_info_keeps_its_table_aligned():
    result = CliRunner().invoke(app, ["info"])
    rows = [line for line in result.output.splitlines() if line.startswith("  ")]
    starts = {len(re.match(r"  \S+\s+\S+\s+", row).group(0)) for row in rows}
    assert len(rows) >= 2 and len(starts) == 1, result.output


def test_csv_cells_are_short_and_empty_when_unknown():
    assert csv_cell(0.09400000423192978) == "0.094" and csv_cell(21150.123456) == "21150.1"
    assert csv_cell(None) == "" and csv_cell("-") == "" and csv_cell(7) == 7 and csv_cell("ok") == "ok"


def test_an_unknown_backend_is_refused_before_any_progress_bar():
    result = CliRunner().invoke(app, ["bench", "--backends", "tflite"])
    assert result.exit_code != 0 and "detecting backends" not in result.output
    assert "unknown backend tflite" in str(result.exception)


def test_progress_bars_show_time_elapsed_and_left(capsys, monkeypatch):
    """Every long command's bars (training epochs among them) show the count, time elapsed and time left."""
    from edgefer.cli.common import ProgressBars

    monkeypatch.setenv("COLUMNS", "160")
    with ProgressBars() as bars:
        bar = bars.bar("training p12-xxs fold 0", total=4)
        bar.advance()
    shown = capsys.readouterr().err
    assert "training p12-xxs fold 0" in shown and "1/4" in shown
    assert re.search(r"\d:\d\d:\d\d elapsed, left (\d:\d\d:\d\d|-:--:--)", shown), shown
