"""The TabM-style table model (ml.models.tabular): number embeddings whose bins follow the
training data, an ensemble whose members learn from their own losses, and a run with it that
evaluates, exports and resumes like any other."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
import torch

from ml.errors import NothingToDo, TrainDeskError
from ml.evaluation.evaluate import evaluate_run
from ml.export import export_run, inputs_for_check
from ml.jobs.training import TrainingJob
from ml.models.presets import build_spec
from ml.models.spec import build_model
from ml.models.tabular import EnsembleMLP, NumericEmbedding, fit_to_inputs, members
from ml.runs.folder import load_run
from ml.runs.project import DataConfig, ModelConfig, Project, TrainingConfig


def test_bins_follow_the_data_and_a_flag_gets_a_sharp_step():
    rng = np.random.default_rng(0)
    x = np.stack([rng.lognormal(size=2000), (rng.random(2000) < 0.3).astype(float)], axis=1)
    emb = NumericEmbedding(2, features=2, bins=8, dim=4)
    emb.fit_edges(torch.tensor(x, dtype=torch.float32))
    edges = emb.edges.numpy()
    assert bool(emb.fitted) and np.all(np.diff(edges, axis=1) > 0)
    # Quantile edges: each bin of the skewed column holds about an eighth of the rows.
    counts = np.histogram(x[:, 0], bins=edges[0])[0]
    assert counts.min() > 2000 / 8 * 0.8
    e = emb.encode(torch.tensor(x, dtype=torch.float32)).numpy()
    assert e.shape == (2000, 2, 8) and e[..., 1:-1].min() >= 0 and e[..., 1:-1].max() <= 1
    # The flag's 0 and 1 are told apart by the encoding.
    assert not np.allclose(e[x[:, 1] == 0, 1].mean(0), e[x[:, 1] == 1, 1].mean(0))


def test_members_are_trained_apart_and_averaged_in_eval():
    torch.manual_seed(0)
    net = EnsembleMLP(5, k=4, blocks=2, width=8, dropout=0.0, out_features=3, merge="probs")
    x = torch.randn(6, 5)
    out = net.train()(x)
    assert out.shape == (6, 4, 3)
    assert not torch.allclose(out[:, 0], out[:, 1])  # random signs make the members differ
    flat, y = members(out, torch.arange(6))
    assert flat.shape == (24, 3) and y.tolist()[:8] == [0, 0, 0, 0, 1, 1, 1, 1]
    merged = net.eval()(x)
    expected = torch.softmax(out, dim=-1).mean(dim=1)
    torch.testing.assert_close(torch.exp(merged), expected, atol=1e-6, rtol=1e-5)


def _table(path, n=300):
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"a": rng.normal(size=n), "b": rng.lognormal(size=n),
                       "colour": rng.choice(["red", "green", "blue"], n)})
    df["label"] = np.where(df["a"] + (df["colour"] == "red") > 0.5, "yes", "no")
    df.to_csv(path, index=False)
    return str(path)


@pytest.fixture(scope="module")
def tabm_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("tabm")
    project = Project(data=DataConfig(source=_table(root / "t.csv"), target="label"),
                      model=ModelConfig(preset="tabm", hidden=[32, 32], ensemble=8),
                      training=TrainingConfig(epochs=6, lr=0.003, batch_size=32,
                                              optimizer="adamw"))
    result = TrainingJob(project, runs_dir=root / "runs").run()
    return project, result


def test_a_tabm_run_learns_evaluates_and_keeps_its_bins(tabm_run):
    project, result = tabm_run
    run = load_run(result.run_dir)
    types = [layer["type"] for layer in run.spec.layers]
    assert types == ["numeric_embed", "ensemble_mlp"]  # three colours are one-hot
    emb = next(m for m in run.load_model().modules() if isinstance(m, NumericEmbedding))
    assert bool(emb.fitted)  # the edges set from the training rows were saved with the weights
    even = torch.linspace(-2, 2, emb.bins + 1).repeat(emb.features, 1)
    assert not torch.allclose(emb.edges, even)
    evaluation = evaluate_run(run)
    assert evaluation.metrics["accuracy"] == pytest.approx(result.metrics["test"]["accuracy"])
    assert evaluation.metrics["accuracy"] > 0.7


def test_a_tabm_run_exports_to_onnx_with_the_same_answers(tabm_run, tmp_path):
    run = load_run(tabm_run[1].run_dir)
    x, _ = inputs_for_check(run)
    report = export_run(run, "onnx", tmp_path / "model.onnx", x)
    assert report.identical == report.n == len(x)
    session = ort.InferenceSession(str(report.path), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    assert np.array_equal(got.argmax(axis=1), evaluate_run(run).y_pred[:len(x)])


def test_resuming_a_finished_tabm_run_does_nothing(tabm_run):
    with pytest.raises(NothingToDo):
        TrainingJob.resume(tabm_run[1].run_dir).run()


def test_a_loaded_network_keeps_its_edges():
    spec = build_spec(ModelConfig(preset="tabm", hidden=[8], ensemble=2), [3], 1, "regression")
    net = build_model(spec)
    x = np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32) * 5
    assert fit_to_inputs(net, x) and not fit_to_inputs(net, x)  # fitted once only


def test_the_ensemble_size_is_checked():
    with pytest.raises(TrainDeskError, match="1 to 256 members"):
        ModelConfig(preset="tabm", ensemble=0).validate()
