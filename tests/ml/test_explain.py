"""Permutation importance finds the column a model really uses."""

import numpy as np
import pandas as pd
import pytest
import torch

from ml.errors import DataError
from ml.evaluation.explain import permutation_importance
from ml.jobs.training import TrainingJob
from ml.runs.folder import load_run
from ml.runs.project import DataConfig, ModelConfig, Project, TrainingConfig


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_the_column_that_decides_the_target_comes_first(tmp_path, task):
    rng = np.random.default_rng(0)
    n = 600
    frame = pd.DataFrame({"noise_a": rng.normal(size=n), "signal": rng.normal(size=n),
                          "noise_b": rng.normal(size=n),
                          "colour": rng.choice(["red", "green", "blue"], n)})
    frame["target"] = (np.where(frame["signal"] > 0, "yes", "no") if task == "classification"
                       else 3 * frame["signal"] + rng.normal(scale=0.1, size=n))
    csv = tmp_path / "data.csv"
    frame.to_csv(csv, index=False)
    project = Project(data=DataConfig(source=str(csv), target="target"),
                      model=ModelConfig(preset="mlp", hidden=[32]),
                      training=TrainingConfig(epochs=30, lr=0.01))
    result = TrainingJob(project, run_dir=tmp_path / "run").run()
    run = load_run(result.run_dir)
    test = result.evaluation.examples
    importance = permutation_importance(run.load_model(), run.preprocessor, test, repeats=3)
    assert importance.features[0] == "signal"
    assert importance.mean[0] > 0.2 and all(abs(m) < 0.1 for m in importance.mean[1:])
    assert set(importance.features) == {"noise_a", "signal", "noise_b", "colour"}
    assert importance.score == ("accuracy" if task == "classification" else "r2")


def test_importance_needs_table_rows_with_the_target(tmp_path):
    project = Project(data=DataConfig(source="sample:iris"), training=TrainingConfig(epochs=1))
    result = TrainingJob(project, run_dir=tmp_path / "run").run()
    run = load_run(result.run_dir)
    rows = result.evaluation.examples.drop(columns=["species"])
    with pytest.raises(DataError, match="no target column"):
        permutation_importance(run.load_model(), run.preprocessor, rows)


class _Net(torch.nn.Module):
    """A stand-in network with the ``body`` TrainDeskNet has."""

    def __init__(self, *layers):
        super().__init__()
        self.body = torch.nn.Sequential(*layers)

    def forward(self, x):
        return self.body(x)


def test_gradient_x_input_points_at_the_pixel_the_answer_reads():
    from ml.evaluation.explain import saliency

    linear = torch.nn.Linear(36, 2)
    with torch.no_grad():
        linear.weight.zero_()
        linear.bias.zero_()
        linear.weight[1, 2 * 6 + 3] = 5.0  # class 1 reads pixel (2, 3) only
    net = _Net(torch.nn.Flatten(), linear)
    x = np.random.default_rng(0).uniform(0.2, 1.0, (1, 1, 6, 6)).astype(np.float32)
    result = saliency(net, x, target=1)
    assert result.method == "gradient x input" and result.target == 1
    assert result.heatmap.shape == (6, 6) and result.heatmap.dtype == np.float32
    assert result.heatmap[2, 3] == 1.0 and np.count_nonzero(result.heatmap) == 1


def test_grad_cam_highlights_where_the_evidence_is():
    from ml.evaluation.explain import saliency

    conv = torch.nn.Conv2d(1, 2, 3, padding=1)
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.zero_()
        conv.weight[0, 0, 1, 1] = 1.0  # channel 0 passes the image through
    net = _Net(conv, torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
               torch.nn.Linear(2, 2))
    with torch.no_grad():
        net.body[-1].weight.copy_(torch.tensor([[0.0, 0.0], [3.0, 0.0]]))
        net.body[-1].bias.zero_()  # else a random bias, set by earlier tests' draws, may win
    x = np.zeros((1, 1, 16, 16), np.float32)
    x[0, 0, 1:5, 10:14] = 1.0  # a bright patch, top right
    result = saliency(net, x)
    assert result.method == "Grad-CAM" and result.target == 1
    heat = result.heatmap
    assert heat.shape == (16, 16) and heat.min() >= 0 and heat.max() == pytest.approx(1.0)
    peak = np.unravel_index(heat.argmax(), heat.shape)
    assert 1 <= peak[0] <= 4 and 10 <= peak[1] <= 13
    assert heat[8:, :8].max() == 0  # nothing where the image is dark


def test_saliency_of_a_trained_conv_net_is_normalised(tmp_path):
    from ml.evaluation.explain import saliency

    project = Project(data=DataConfig(source="sample:digits"),
                      training=TrainingConfig(epochs=2, lr=0.01))
    result = TrainingJob(project, run_dir=tmp_path / "run").run()
    run = load_run(result.run_dir)
    net = run.load_model()
    assert net.is_convolutional
    x = np.asarray(result.evaluation.examples[:1], dtype=np.float32)
    explained = saliency(net, x)
    assert explained.method == "Grad-CAM" and explained.heatmap.shape == (8, 8)
    assert 0.0 <= explained.heatmap.min() and explained.heatmap.max() == pytest.approx(1.0)
    assert explained.target == int(result.evaluation.y_pred[0])
    with pytest.raises(DataError, match="one image"):
        saliency(net, np.concatenate([x, x]))


def test_the_words_that_carry_the_sentiment_matter_most(tmp_path):
    from ml.evaluation.explain import token_importance
    from tests.ml.test_import_pipeline import make_text_csv

    csv = make_text_csv(tmp_path / "reviews.csv")
    project = Project(data=DataConfig(source=str(csv), target="sentiment"),
                      training=TrainingConfig(epochs=15, lr=0.01))
    run = load_run(TrainingJob(project, run_dir=tmp_path / "run").run().run_dir)
    net, pre = run.load_model(), run.preprocessor
    text = "a wonderful film with great acting"
    result = token_importance(net, pre, text)
    assert result.tokens == ["a", "wonderful", "film", "with", "great", "acting"]
    assert pre.class_names[result.target] == "positive"
    top = result.tokens[int(np.argmax(result.scores))]
    assert top in ("wonderful", "great")
    assert result.scores[result.tokens.index("a")] < result.scores[result.tokens.index(top)]
