"""The learning-rate range test: its curve, its proposal, and that it changes nothing."""

import random

import numpy as np
import pytest
import torch
from torch import nn

from ml.data.dataset import load_dataset
from ml.errors import Cancelled, TrainingError
from ml.jobs.training import TrainingJob, apply_suggestions
from ml.runs.project import DataConfig, Project, TrainingConfig
from ml.training.lrfinder import find_lr, suggest


@pytest.fixture(scope="module")
def iris_curve():
    dataset = load_dataset("sample:iris")
    project = Project(name="iris", data=DataConfig(source="sample:iris"))
    apply_suggestions(project, dataset)
    return TrainingJob(project, dataset=dataset).find_lr()


def blobs(n=120, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = np.array([[0, 0], [3, 3], [-3, 3]], np.float32)[y] + rng.normal(0, 0.6, (n, 2))
    return x.astype(np.float32), y.astype(np.int64)


def net_with_buffers():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(2, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.2),
                         nn.Linear(16, 3))


def test_iris_curve_falls_then_blows_up(iris_curve):
    lrs, losses = iris_curve.lrs, iris_curve.losses
    assert all(type(v) is float for v in lrs + losses)
    assert len(lrs) == len(losses) >= 50
    assert all(b > a for a, b in zip(lrs, lrs[1:]))  # exponentially growing rates
    low = int(np.argmin(losses))
    assert losses[low] < 0.9 * losses[0]  # it falls ...
    assert max(losses[low:]) > 1.5 * losses[low]  # ... then blows up
    assert iris_curve.lowest == pytest.approx(lrs[low])


def test_suggestion_lies_where_the_loss_falls(iris_curve):
    lrs, losses = np.array(iris_curve.lrs), np.array(iris_curve.losses)
    falling = lrs[losses < 0.98 * losses[0]]  # where the loss has started to fall
    assert falling.min() / 3 <= iris_curve.suggested <= iris_curve.lowest / 10 * 1.05
    assert "steepest slope" in iris_curve.reason
    assert f"{iris_curve.steepest:.2g}" in iris_curve.reason


def test_network_and_random_state_are_restored_exactly():
    net = net_with_buffers()
    net.eval()
    net[3].train()  # a mix of modes, to see each one kept
    before = {k: v.clone() for k, v in net.state_dict().items()}
    modes = [m.training for m in net.modules()]
    random.seed(5)
    np.random.seed(5)
    torch.manual_seed(5)
    rng = (random.getstate(), np.random.get_state()[1].copy(), torch.get_rng_state())
    x, y = blobs()
    result = find_lr(net, "classification", TrainingConfig(batch_size=16, lr=0.003), x, y,
                     device="cpu", steps=40)
    assert len(result.lrs) >= 10
    after = net.state_dict()
    assert set(after) == set(before)
    for key, value in before.items():
        assert torch.equal(after[key], value), key
    assert [m.training for m in net.modules()] == modes
    assert random.getstate() == rng[0]
    assert np.array_equal(np.random.get_state()[1], rng[1])
    assert torch.equal(torch.get_rng_state(), rng[2])


def test_short_data_is_cycled_and_regression_works():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 2)).astype(np.float32)
    y = (x[:, 0] * 2 - x[:, 1]).astype(np.float32)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 1))
    result = find_lr(net, "regression", TrainingConfig(batch_size=8), x, y, device="cpu")
    assert len(result.lrs) > 40 // 8  # more steps than one pass over the data
    assert 0 < result.suggested < result.lowest


def test_cancel_stops_and_still_restores():
    net = net_with_buffers()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    calls = []

    def should_stop():
        calls.append(1)
        return len(calls) >= 5

    seen = []
    x, y = blobs()
    with pytest.raises(Cancelled, match="learning-rate test was stopped"):
        find_lr(net, "classification", TrainingConfig(batch_size=16), x, y, device="cpu",
                should_stop=should_stop, progress=lambda f, m: seen.append(f))
    assert len(calls) == 5 and len(seen) == 5 and seen[-1] == pytest.approx(0.05)
    for key, value in before.items():
        assert torch.equal(net.state_dict()[key], value), key


def test_nan_loss_from_the_start_is_refused_in_plain_words():
    x, y = blobs()
    x[:] = np.nan
    with pytest.raises(TrainingError) as info:
        find_lr(net_with_buffers(), "classification", TrainingConfig(lr=0.002), x, y,
                device="cpu")
    message = str(info.value)
    assert message.startswith("The learning-rate test could not find a rate: ")
    assert "not a number from the first batch" in message
    assert message.endswith("Keep the current rate (0.002).")


def test_unreadable_curves_are_refused():
    with pytest.raises(TrainingError, match=r"blew up after only 4 steps.*rate \(0\.01\)"):
        suggest([1e-5, 1e-4, 1e-3, 1e-2], [1.0, 0.9, 5.0, 9.0], 0.01)
    flat = np.logspace(-7, 1, 30).tolist()
    with pytest.raises(TrainingError, match="did not fall at any rate"):
        suggest(flat, np.linspace(1.0, 3.0, 30).tolist(), 0.01)
    with pytest.raises(TrainingError, match="at least 10 steps"):
        find_lr(net_with_buffers(), "classification", TrainingConfig(), *blobs(), device="cpu",
                steps=3)


def test_suggestion_is_the_steepest_point_bounded_by_a_tenth_of_the_lowest():
    lrs = np.logspace(-6, 0, 61)
    # The loss falls fastest at 1e-4 and is lowest at 1e-1: the steepest point stands.
    losses = 2.0 - np.tanh((np.log10(lrs) + 4) * 2) + np.maximum(0, np.log10(lrs) + 1) * 5
    result = suggest(lrs, losses, 0.001)
    assert result.suggested == pytest.approx(1e-4, rel=0.1)
    assert "well below where it is lowest" in result.reason
    # Falling fastest right beside the lowest point: a tenth of the lowest instead.
    losses = 2.0 - np.tanh((np.log10(lrs) + 1.2) * 4) + np.maximum(0, np.log10(lrs) + 1) * 5
    result = suggest(lrs, losses, 0.001)
    assert result.suggested == pytest.approx(result.lowest / 10, rel=0.05)
    assert "10x below" in result.reason


def test_job_finder_makes_no_run_folder(tmp_path):
    dataset = load_dataset("sample:iris")
    project = Project(name="iris", data=DataConfig(source="sample:iris"))
    apply_suggestions(project, dataset)
    job = TrainingJob(project, dataset=dataset, runs_dir=tmp_path / "runs")
    job.find_lr(steps=20)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    assert job.project.training.lr == project.training.lr


def test_discriminative_rates_keep_their_ratio(monkeypatch):
    class Grouped(nn.Sequential):
        def optimizer_groups(self):  # as a pretrained backbone's network offers them
            return [{"params": list(self[0].parameters()), "lr_scale": 0.1},
                    {"params": list(self[2].parameters()), "lr_scale": 1.0}]

    torch.manual_seed(0)
    net = Grouped(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 3))
    seen = []
    step = torch.optim.Adam.step

    def spy(self, *args, **kwargs):
        seen.append([g["lr"] for g in self.param_groups])
        return step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", spy)
    x, y = blobs()
    result = find_lr(net, "classification", TrainingConfig(batch_size=16), x, y, device="cpu",
                     steps=20)
    assert len(seen) == len(result.lrs)
    for (low, high), lr in zip(seen, result.lrs):
        assert high == pytest.approx(lr) and low == pytest.approx(lr / 10)
