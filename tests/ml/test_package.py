"""The standalone package predicts like the app, with nothing of TrainDesk installed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile

import pandas as pd
import pytest

from ml.errors import ExportError
from ml.evaluation.evaluate import load_split
from ml.export.package import export_package
from ml.jobs.training import TrainingJob
from ml.runs.folder import load_run
from ml.runs.project import DataConfig, Project, TrainingConfig
from tests.ml.test_import_pipeline import make_image_folder, make_text_csv


def _train(tmp_path, source, target=None, epochs=3):
    project = Project(data=DataConfig(source=str(source), target=target),
                      training=TrainingConfig(epochs=epochs))
    return load_run(TrainingJob(project, run_dir=tmp_path / "run").run().run_dir)


def _package(run, tmp_path):
    x = load_split(run, "test")[0]
    return export_package(run, tmp_path / "pkg", x)


def test_a_table_package_has_everything_and_checks_itself(tmp_path, mixed_csv):
    run = _train(tmp_path, mixed_csv, "label")
    report = _package(run, tmp_path)
    names = sorted(p.name for p in report.folder.iterdir())
    assert names == ["README.txt", "model.onnx", "predict.py", "preprocessing.json",
                     "requirements.txt"]
    requirements = (report.folder / "requirements.txt").read_text()
    assert "onnxruntime==" in requirements and "numpy==" in requirements
    assert "Pillow" not in requirements
    assert report.checked_rows > 0 and report.max_abs_diff < 1e-4
    assert report.model.identical == report.model.n
    with zipfile.ZipFile(report.zip) as zf:
        assert {"./model.onnx", "./predict.py"} <= set(zf.namelist()) or {
            "model.onnx", "predict.py"} <= set(zf.namelist())
    doc = json.loads((report.folder / "preprocessing.json").read_text())
    assert doc["preprocessing"]["columns"] and doc["output"]["class_names"] == ["high", "low"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".pkg")]  # no leftovers
    umask = os.umask(0o022)
    os.umask(umask)
    assert report.folder.stat().st_mode & 0o777 == 0o777 & ~umask  # shareable, not owner-only
    again = _package(run, tmp_path)  # replaces the old package in one move
    assert again.folder.is_dir() and again.zip.is_file()


@pytest.mark.parametrize("kind", ["image", "text", "digits"])
def test_image_text_and_pixel_packages_reproduce_the_app(tmp_path, kind):
    if kind == "image":
        run = _train(tmp_path, make_image_folder(tmp_path / "shapes", n=12))
    elif kind == "text":
        run = _train(tmp_path, make_text_csv(tmp_path / "reviews.csv"), "sentiment")
    else:
        run = _train(tmp_path, "sample:digits")
    report = _package(run, tmp_path)
    assert report.checked_rows > 0 and report.max_abs_diff < 1e-4
    image = "Pillow==" in (report.folder / "requirements.txt").read_text()
    assert image == (kind != "text")


def test_a_package_that_disagrees_with_the_app_is_not_kept(tmp_path, monkeypatch):
    from ml.export import package

    run = _train(tmp_path, "sample:iris", epochs=1)
    real = package._compare_predictions

    def broken(run, expected, produced):
        produced = produced.copy()
        produced["prediction"] = "setosa"
        produced[[c for c in produced.columns if c.startswith("probability_")]] = 0.5
        return real(run, expected, produced)

    monkeypatch.setattr(package, "_compare_predictions", broken)
    with pytest.raises(ExportError, match="does not reproduce"):
        _package(run, tmp_path)
    assert not (tmp_path / "pkg").exists() and not (tmp_path / "pkg.zip").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".pkg")]


@pytest.mark.slow
def test_the_package_runs_in_a_fresh_virtual_environment(tmp_path, mixed_csv):
    """Only requirements.txt installed: no TrainDesk, no torch, no pandas."""
    run = _train(tmp_path, mixed_csv, "label")
    report = _package(run, tmp_path)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / ("Scripts" if os.name == "nt" else "bin") / "python"
    install = subprocess.run([str(python), "-m", "pip", "install", "-q",
                              "--disable-pip-version-check", "-r",
                              str(report.folder / "requirements.txt")],
                             capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr[-2000:]
    rows = pd.read_csv(mixed_csv).drop(columns=["label"]).head(50)
    rows.loc[3, "colour"] = "purple"  # a category never seen in training
    raw = tmp_path / "new.csv"
    rows.to_csv(raw, index=False)
    out = tmp_path / "out.csv"
    proc = subprocess.run([str(python), str(report.folder / "predict.py"), str(raw), "--out",
                           str(out)], capture_output=True, text=True, timeout=120,
                          cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    produced = pd.read_csv(out)
    from ml.evaluation.tryit import Predictor

    expected = Predictor(run).predict_frame(pd.read_csv(raw))
    assert (produced["prediction"].astype(str) == expected["prediction"].astype(str)).all()
    for name in ("high", "low"):
        diff = (produced[f"probability_{name}"] - expected[f"probability_{name}"]).abs().max()
        assert diff < 1e-5
    listed = subprocess.run([str(python), "-m", "pip", "list", "--format=freeze"],
                            capture_output=True, text=True, timeout=60).stdout.lower()
    assert "torch" not in listed and "pandas" not in listed


def test_export_package_on_the_command_line(tmp_path):
    from tests.conftest import run_cli, run_main

    run = _train(tmp_path, "sample:iris", epochs=2)
    proc = run_main("export", str(run.path), "--format", "package", "--out",
                    str(tmp_path / "iris_pkg"))
    assert proc.returncode == 0, proc.stderr
    assert "predict.py on" in proc.stdout and (tmp_path / "iris_pkg.zip").is_file()
    blocked = tmp_path / "afile"
    blocked.write_text("x")
    bad = run_cli("export", str(run.path), "--format", "package", "--out", str(blocked))
    assert bad.returncode == 2 and "is a file" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


def _train_on_copy_then_shrink(tmp_path):
    """A run trained on a CSV that then lost most of its rows (its test rows no longer exist)."""
    from tests.conftest import ROOT

    data = tmp_path / "flowers.csv"
    frame = pd.read_csv(ROOT / "resources" / "samples" / "iris.csv")
    frame.to_csv(data, index=False)
    run = _train(tmp_path, data, "species", epochs=1)
    frame.head(20).to_csv(data, index=False)
    return run


def test_a_package_whose_test_rows_are_gone_says_so_instead_of_matching_on_0_rows(tmp_path):
    from ml.export import inputs_for_check

    run = _train_on_copy_then_shrink(tmp_path)
    x, checked_on = inputs_for_check(run)  # the inputs kept with the run
    report = export_package(run, tmp_path / "pkg", x, checked_on=checked_on)
    assert report.checked_rows == 0 and "changed after this run was trained" in report.unchecked
    assert "NOT checked on raw rows" in report.summary and "0 raw rows" not in report.summary
    assert "Evaluate on another" not in report.summary  # advice for evaluating, not exports
    assert report.folder.is_dir()  # the model itself was checked on the kept inputs


def test_split_rows_beyond_a_shorter_file_are_a_plain_error_not_an_index_error(tmp_path):
    from ml.errors import RunError
    from ml.export import inputs_for_check

    run = _train_on_copy_then_shrink(tmp_path)
    run.config.pop("data_fingerprint", None)  # as runs without a fingerprint: only rows tell
    with pytest.raises(RunError, match="has 20 rows, but this run's test split uses row"):
        load_split(run, "test")
    x, checked_on = inputs_for_check(run)
    assert "kept with the run" in checked_on
    report = export_package(run, tmp_path / "pkg", x, checked_on=checked_on)
    assert "has 20 rows" in report.unchecked and "NOT checked" in report.summary


def test_the_cli_exits_non_zero_when_the_package_could_not_be_checked(tmp_path):
    from tests.conftest import run_cli  # the status main.py exits with; a package export runs
    # as a user runs it in test_export_package_on_the_command_line

    run = _train_on_copy_then_shrink(tmp_path)
    proc = run_cli("export", str(run.path), "--format", "package", "--out",
                   str(tmp_path / "pkg"))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "not checked on raw rows" in lines[0], proc.stderr
    assert "changed after this run was trained" in lines[0] and "Traceback" not in proc.stderr
