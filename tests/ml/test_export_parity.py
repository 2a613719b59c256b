"""Round-trip parity of every export format on an image and a text model (the tabular ones are
in test_runs_and_export.py): each file, loaded back in its own runtime, predicts what the run
does on the whole test split."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from ml.evaluation.evaluate import evaluate_run
from ml.export import export_run, inputs_for_check
from ml.export.exporters import inference_model
from ml.jobs.training import TrainingJob
from ml.models.spec import ModelSpec, build_model
from ml.runs.folder import load_run
from ml.runs.project import DataConfig, ModelConfig, Project, TrainingConfig
from tests.ml.test_import_pipeline import make_image_folder, make_text_csv


def _train(root, source, target="", preset="auto"):
    project = Project(data=DataConfig(source=source, target=target),
                      model=ModelConfig(preset=preset),
                      training=TrainingConfig(epochs=2, lr=0.003, batch_size=16))
    return load_run(TrainingJob(project, runs_dir=root / "runs").run().run_dir)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("parity")
    return {"image": _train(root, str(make_image_folder(root / "shapes", n=20)), preset="cnn"),
            "text": _train(root, str(make_text_csv(root / "reviews.csv")), target="sentiment",
                           preset="text")}


def _reload(fmt: str, path, x: np.ndarray) -> np.ndarray:
    """Load the written file the way a user outside TrainDesk would and predict *x*."""
    if fmt == "onnx":
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return np.concatenate([session.run(None, {name: x[i:i + 7]})[0]  # odd batches
                               for i in range(0, len(x), 7)])
    if fmt == "pt2":
        program = torch.export.load(str(path))
        with torch.no_grad():
            return program.module()(torch.from_numpy(x)).numpy()
    with safe_open(str(path), framework="pt") as fh:
        description = json.loads(fh.metadata()["traindesk"])
    net = build_model(ModelSpec.from_dict(description["model_spec"]))
    net.load_state_dict(load_file(str(path)))
    with torch.no_grad():
        logits = net.eval()(torch.from_numpy(x))
    return torch.softmax(logits, dim=1).numpy()


@pytest.mark.parametrize("kind", ["image", "text"])
@pytest.mark.parametrize("fmt", ["onnx", "pt2", "safetensors"])
def test_every_format_reproduces_the_run(runs, kind, fmt, tmp_path):
    run = runs[kind]
    x, checked_on = inputs_for_check(run)
    assert checked_on == "test samples" and len(x) >= 6
    report = export_run(run, fmt, tmp_path / f"model.{fmt}", x)
    assert report.identical == report.n == len(x) and report.max_abs_diff < 1e-4
    # Image bytes go in as [0, 1] floats, as preprocessing.json tells users of the file.
    inputs = x.astype(np.float32) / np.float32(255) if x.dtype == np.uint8 else x
    with torch.no_grad():
        expected = inference_model(run)(torch.from_numpy(inputs)).numpy()
    got = _reload(fmt, report.path, inputs)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-4)
    # Same classes as the app's own evaluation of the run.
    assert np.array_equal(got.argmax(axis=1), evaluate_run(run).y_pred)
    sidecar = json.loads(report.sidecar.read_text())
    assert sidecar["preprocessing"]["class_names"] == run.preprocessor.class_names
