"""`edgefer study`: tiny real grids (2 folds, a few epochs, synthetic faces) — resumed, aggregated, reported
in the paper's shape, estimated by --dry-run, and carried by a local Ray instance."""

from __future__ import annotations

import json
import re
import shutil
import statistics

import pytest

pytest.importorskip("torch")

from synthetic_faces import shared_cache, shared_root, write_folder  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from edgefer.cli.study import study_app  # noqa: E402
from edgefer.errors import InputError  # noqa: E402
from edgefer.train.studies.grid import DISTILLED_VARIANTS, StudySettings, cells, tasks  # noqa: E402

REGEX = r"^(s\d+)_"


@pytest.fixture(scope="module")
def faces():
    """32 face crops: 4 subjects x 8 classes, so a fold trains on 16 images (128 crops)."""
    root = shared_root() / "study-faces"
    if not root.exists():
        write_folder(root, subjects=4, per_class=1)
    return root


def study_args(command, faces, out, *extra) -> list[str]:
    args = [command, "--data", faces, "--dataset", "folder", "--subject-regex", REGEX, "--folds", "2",
            "--epochs", "2", "--sizes", "xxs", "--lr", "1e-3", "--dropout", "0", "--no-detect",
            "--cache", shared_cache(), "--jobs", "2", "--out", out, *extra]
    return list(map(str, args))


def invoke(args):
    return CliRunner().invoke(study_app, args, catch_exceptions=False)


@pytest.fixture(scope="module")
def pooling_study(tmp_path_factory, faces):
    out = tmp_path_factory.mktemp("pooling") / "study"
    result = invoke(study_args("pooling", faces, out, "--variants", "v,p12"))
    assert result.exit_code == 0, result.output
    assert "4 runs: 0 finished before, 4 trained now, 0 failed" in result.output
    return out


def run_metrics(out, cell) -> list[dict]:
    return [json.loads((out / "runs" / cell / f"fold-{k}" / "metrics.json").read_text()) for k in range(2)]


@pytest.mark.slow
def test_results_are_the_mean_and_std_over_folds(pooling_study):
    results = json.loads((pooling_study / "results.json").read_text())
    assert [c["cell"] for c in results["cells"]] == ["v-xxs", "p12-xxs"]
    for cell in results["cells"]:
        accuracies = [m["test_accuracy"] for m in run_metrics(pooling_study, cell["cell"])]
        assert cell["accuracy_per_fold"] == accuracies
        assert cell["mean"] == pytest.approx(statistics.fmean(accuracies))
        assert cell["std"] == pytest.approx(statistics.stdev(accuracies))
        assert cell["folds_finished"] == 2 and all(m["epochs"] == 2 for m in run_metrics(pooling_study, cell["cell"]))
    assert results["failed"] == []


@pytest.mark.slow
def test_pooling_table_has_the_slides_rows_with_the_papers_figures(pooling_study):
    lines = (pooling_study / "pooling.md").read_text().splitlines()
    assert lines[4] == ("| Model | CK+ (paper) | Oulu-CASIA (paper) | ours | Model | CK+ (paper) | "
                        "Oulu-CASIA (paper) | ours |")
    rows = lines[6:]
    assert [r.split(" | ")[0] for r in rows] == ["| v_M", "| p1_M", "| p2_M", "| p12_M", "| v_S", "| p1_S",
                                                 "| p2_S", "| p12_S"]
    assert rows[1].startswith("| p1_M | 81.57% | 62.46% | - | p1_XS | 77.14% | 53.41% | - |")  # subject split
    v_xxs = json.loads((pooling_study / "results.json").read_text())["cells"][0]
    assert rows[4].endswith(f"| v_XXS | 71.36% | 44.33% | {100 * v_xxs['mean']:.2f} ± {100 * v_xxs['std']:.2f}% "
                            "(2/2) |")
    csv_rows = (pooling_study / "pooling.csv").read_text().splitlines()
    assert csv_rows[0] == "model,variant,size,paper_ck,paper_oulu,mean,std,folds_trained,folds_collapsed,recipe"
    assert len(csv_rows) == 17
    assert csv_rows[-1].startswith("p12-xxs,p12,xxs,78.44,55.03,")


@pytest.mark.slow
def test_rerun_trains_only_unfinished_runs_and_reports_a_crash(pooling_study, tmp_path, faces):
    study = tmp_path / "study"
    shutil.copytree(pooling_study, study)
    finished = {p: p.stat().st_mtime_ns for p in study.glob("runs/*/fold-0/metrics.json")}
    (study / "runs/v-xxs/fold-1/metrics.json").unlink()  # killed before it finished: goes on from its checkpoint
    (study / "runs/p12-xxs/fold-1/metrics.json").unlink()
    (study / "runs/p12-xxs/fold-1/checkpoint.pt").write_bytes(b"broken")  # this one crashes
    result = CliRunner().invoke(study_app, study_args("pooling", faces, study, "--variants", "v,p12"))
    assert result.exit_code == 1, result.output
    assert "4 runs: 2 finished before, 2 trained now, 1 failed" in result.output
    assert "1 of 4 runs failed" in result.output and "runs/p12-xxs/fold-1" in result.output
    assert (study / "runs/v-xxs/fold-1/metrics.json").exists()
    assert {p: p.stat().st_mtime_ns for p in finished} == finished
    results = json.loads((study / "results.json").read_text())
    assert [c["folds_finished"] for c in results["cells"]] == [2, 1]


@pytest.mark.slow
def test_a_study_folder_refuses_other_settings(pooling_study, faces):
    with pytest.raises(InputError, match=r"other settings: epochs 3 \(was 2\)"):
        invoke(study_args("pooling", faces, pooling_study, "--variants", "v,p12", "--epochs", "3"))


@pytest.mark.slow
def test_temperature_and_supervision_distil_from_the_folds_teachers(tmp_path, faces):
    temperature = tmp_path / "temperature"
    result = invoke(study_args("temperature", faces, temperature, "--temperatures", "2,8", "--teacher-epochs", "1",
                               "--teacher-input-size", "75"))
    assert result.exit_code == 0, result.output
    assert "6 runs: 0 finished before, 6 trained now" in result.output
    config = json.loads((temperature / "runs/p12-xxs-T8/fold-1/config.json").read_text())
    assert config["teacher_logits"] == str(temperature / "teacher/fold-1/teacher_logits.safetensors")
    assert (config["temperature"], config["lam"]) == (8.0, 0.5)
    rows = (temperature / "temperature.csv").read_text().splitlines()
    assert rows[0] == "model,size,temperature,lam,mean,std,folds_trained,folds_collapsed,recipe" and len(rows) == 3
    assert_png(temperature / "temperature.png")

    supervision = tmp_path / "supervision"
    result = invoke(study_args("supervision", faces, supervision, "--epochs", "3",
                               "--teacher-logits-dir", temperature / "teacher"))
    assert result.exit_code == 0, result.output
    assert not (supervision / "teacher").exists()
    curves = json.loads((supervision / "results.json").read_text())["curves"]
    assert set(curves) == {"p12-xxs-ce", "p12-xxs-kd"}
    for cell, points in curves.items():
        per_fold = [[json.loads(line)["test_accuracy"] for line in
                     (supervision / "runs" / cell / f"fold-{k}" / "metrics.jsonl").read_text().splitlines()]
                    for k in range(2)]
        assert [p["epoch"] for p in points] == [1, 2, 3]
        assert [p["mean"] for p in points] == pytest.approx([statistics.fmean(e) for e in zip(*per_fold, strict=True)])
    assert len((supervision / "supervision.csv").read_text().splitlines()) == 1 + 2 * 3
    assert_png(supervision / "supervision.png")


def assert_png(path):
    import matplotlib.image

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    height, width, _ = matplotlib.image.imread(path).shape
    assert height >= 300 and width >= 600


@pytest.mark.slow
def test_dry_run_prints_the_grid_and_an_estimate_and_writes_nothing(tmp_path, faces):
    out = tmp_path / "study"
    result = invoke(study_args("pooling", faces, out, "--variants", "p12", "--dry-run"))
    assert result.exit_code == 0, result.output
    assert "pooling study: 1 cells x 2 folds = 2 runs, 2 epochs each" in result.output
    assert "measured p12-xxs:" in result.output and "s per epoch" in result.output
    assert "CPU-hours for 2 runs" in result.output and "wall with --jobs 2 x 1 thread(s)" in result.output
    assert "measuring p12-xxs: 2 epochs of fold 0" in result.output  # says what it does while it does it
    assert not out.exists()


@pytest.mark.slow
def test_dry_run_estimates_students_and_teachers_apart(tmp_path, faces):
    out = tmp_path / "study"
    result = invoke(study_args("temperature", faces, out, "--sizes", "xxs", "--temperatures", "8",
                               "--teacher-input-size", "75", "--dry-run"))
    assert result.exit_code == 0, result.output
    assert "measuring the teacher (Inception v3 at 75 px)" in result.output
    assert re.search(r"students: [\d.,]+ CPU-hours for 2 runs x 2 epochs", result.output)
    assert re.search(r"teachers: [\d.,]+ CPU-hours for 2 runs x 2 epochs at 75 px", result.output)
    assert "hint: the teachers train for --epochs (2) unless --teacher-epochs" in result.output
    assert not out.exists()


def test_the_papers_full_grids():
    def count(study, **changes):
        runs = tasks(StudySettings(study, "data", "ck", **changes))
        return len(runs), sum(t.cell is None for t in runs)

    assert len(cells(StudySettings("pooling", "data", "ck"))) == 16 and count("pooling") == (160, 0)
    assert count("temperature", variants=DISTILLED_VARIANTS) == (4 * 7 * 10 + 10, 10)
    assert count("supervision", variants=DISTILLED_VARIANTS) == (4 * 2 * 10 + 10, 10)
    assert count("supervision", variants=DISTILLED_VARIANTS, teacher_logits_dir="teachers") == (80, 0)


@pytest.mark.slow
def test_a_tiny_grid_on_a_local_ray_instance(tmp_path, faces):
    pytest.importorskip("ray", reason="ray is an optional extra: pip install 'edgefer[ray]'")
    out = tmp_path / "study"
    result = invoke(study_args("pooling", faces, out, "--variants", "p12", "--ray", "local"))
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    assert results["cells"][0]["folds_finished"] == 2 and (out / "pooling.md").exists()


@pytest.mark.slow
@pytest.mark.parametrize(("change", "message"), [
    (["--data", "no/such/folder"], "--data .*no/such/folder: no such folder"),
    (["--sizes", "xxxl"], "--sizes xxxl: expected some of m,s,xs,xxs"),
    (["--split", "person"], "--split 'person': expected random or subject"),
])
def test_bad_input_is_one_line_and_exit_2(edgefer, tmp_path, faces, change, message):
    args = study_args("pooling", faces, tmp_path / "study", *change)
    process = edgefer("study", *args)
    assert process.returncode == 2, process.stderr
    assert process.stderr.count("\n") == 1 and process.stderr.startswith("edgefer: error: ")
    assert re.search(message, process.stderr)
    assert not (tmp_path / "study").exists()
