"""int8 quantisation of ONNX exports: smaller, measured, and within the stated tolerance."""

from __future__ import annotations

import numpy as np
import pytest

from ml.errors import ExportError
from ml.evaluation.evaluate import load_split
from ml.export import export_run
from ml.export.compress import TOLERANCE, compress_run
from ml.jobs.training import TrainingJob
from ml.runs.folder import load_run
from ml.runs.project import DataConfig, ModelConfig, Project, TrainingConfig


def _export(tmp_path, source, **model):
    project = Project(data=DataConfig(source=source), model=ModelConfig(**model),
                      training=TrainingConfig(epochs=8, lr=0.01))
    run = load_run(TrainingJob(project, run_dir=tmp_path / "run").run().run_dir)
    x, y = load_split(run, "test")
    path = export_run(run, "onnx", tmp_path / "model.onnx", x).path
    return run, path, x, y


def test_dynamic_int8_shrinks_a_wide_mlp_within_tolerance(tmp_path):
    run, path, x, y = _export(tmp_path, "sample:digits", preset="mlp", hidden=[256, 128])
    report = compress_run(run, path, x, y)
    original, dynamic = report.variants
    assert dynamic.name == "int8 (dynamic)" and dynamic.path.is_file()
    assert dynamic.size_bytes < 0.5 * original.size_bytes
    assert original.metric - dynamic.metric <= TOLERANCE
    assert dynamic.latency_ms > 0 and original.metric_name == "accuracy"
    assert "int8 (dynamic)" in report.table()


def test_conv_nets_also_get_static_int8_calibrated_on_training_inputs(tmp_path):
    run, path, x, y = _export(tmp_path, "sample:digits", preset="cnn")
    train_x = load_split(run, "train")[0]
    report = compress_run(run, path, x, y, calibration=train_x)
    names = [v.name for v in report.variants]
    assert names == ["original", "int8 (dynamic)", "int8 (static)"]
    static = report.variants[2]
    assert report.variants[0].metric - static.metric <= TOLERANCE


def test_regression_is_measured_by_r2(tmp_path):
    run, path, x, y = _export(tmp_path, "sample:diabetes", preset="mlp")
    report = compress_run(run, path, x, y)
    assert all(v.metric_name == "r2" for v in report.variants)
    assert abs(report.variants[0].metric - report.variants[1].metric) <= TOLERANCE


def test_a_variant_that_loses_too_much_is_refused_and_removed(tmp_path):
    run, path, x, y = _export(tmp_path, "sample:iris", preset="mlp")
    with pytest.raises(ExportError, match="costs too much"):
        compress_run(run, path, x, y, tolerance=-1.0)  # no variant can gain a whole point
    assert not (tmp_path / "model.int8-dynamic.onnx").exists()
    np.testing.assert_equal(path.is_file(), True)


def test_export_quantize_on_the_command_line(tmp_path):
    from tests.conftest import run_cli, run_main

    project = Project(data=DataConfig(source="sample:iris"), training=TrainingConfig(epochs=3))
    run = load_run(TrainingJob(project, run_dir=tmp_path / "run").run().run_dir)
    proc = run_main("export", str(run.path), "--format", "onnx", "--out",
                    str(tmp_path / "iris.onnx"), "--quantize", "int8")
    assert proc.returncode == 0, proc.stderr
    assert "int8 (dynamic)" in proc.stdout and (tmp_path / "iris.int8-dynamic.onnx").is_file()
    bad = run_cli("export", str(run.path), "--format", "pt2", "--out",
                   str(tmp_path / "iris.pt2"), "--quantize", "int8")
    assert bad.returncode == 2 and "--format onnx" in bad.stderr


def test_convolutional_backbones_count_as_conv_nets_for_static_int8():
    from ml.export.compress import convolutional

    def backbone(family, model_type=None, kind="image"):
        layer = {"type": "pretrained", "kind": kind, "family": family}
        if model_type:
            layer["config"] = {"model_type": model_type}
        return [layer, {"type": "linear", "out_features": 2}]

    assert convolutional([{"type": "conv2d", "out_channels": 8}, {"type": "flatten"}])
    assert convolutional(backbone("efficientnet"))  # EfficientNet-Lite0
    assert convolutional(backbone("hf", "resnet")) and convolutional(backbone("hf", "convnext"))
    assert not convolutional(backbone("hf", "vit"))  # a vision transformer: linear layers
    assert not convolutional(backbone("hf", "bert", kind="text"))
    assert not convolutional([{"type": "linear", "out_features": 3}])
