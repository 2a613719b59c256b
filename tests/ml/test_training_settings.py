"""Optimizers, learning-rate schedules, losses, clipping and the run estimate."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from ml.errors import TrainingError
from ml.runs.project import TrainingConfig
from ml.training.estimate import estimate_fit
from ml.training.schedules import Scheduler, schedule_curve
from ml.training.trainer import Trainer


def _data(n=200, seed=0, task="classification"):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    if task == "classification":
        y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    else:
        y = (x[:, 0] * 2 - x[:, 2]).astype(np.float32)
    return x, y


def _net(n_out=2):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, n_out))


def _fit(task="classification", **settings):
    cfg = TrainingConfig(epochs=6, batch_size=32, restore_best=False, device="cpu", amp=False,
                         **settings)
    x, y = _data(task=task)
    trainer = Trainer(_net(2 if task == "classification" else 1), task, cfg)
    trainer.fit(x, y, x[:50], y[:50])
    return trainer


@pytest.mark.parametrize("optimizer, extra", [("adam", {}), ("adamw", {}),
                                              ("sgd", {"lr": 0.05}),
                                              ("sgd", {"lr": 0.05, "nesterov": True}),
                                              ("rmsprop", {"lr": 0.003})])
def test_every_optimizer_learns(optimizer, extra):
    trainer = _fit(optimizer=optimizer, **{"lr": 0.01, **extra})
    losses = [h["loss"] for h in trainer.history]
    assert losses[-1] < losses[0]
    assert type(trainer.optimizer).__name__.lower() == optimizer


def test_nesterov_needs_momentum():
    with pytest.raises(TrainingError, match="momentum above 0"):
        _fit(optimizer="sgd", nesterov=True, momentum=0.0)


def test_schedule_curves_have_their_shapes():
    base = dict(lr=0.1, epochs=20)
    warm = schedule_curve(TrainingConfig(warmup_epochs=4, **base), 20, 10)
    assert warm[0] < warm[10] < warm[30] < warm[39] <= 0.1 and warm[40] == pytest.approx(0.1)
    assert np.allclose(np.diff(warm[1:40]), warm[2] - warm[1])  # linear
    step = schedule_curve(TrainingConfig(schedule="step", step_size=5, step_gamma=0.5, **base),
                          20)
    assert list(step[[0, 4, 5, 10, 19]]) == pytest.approx([0.1, 0.1, 0.05, 0.025, 0.0125])
    cosine = schedule_curve(TrainingConfig(schedule="cosine", **base), 20, 10)
    assert cosine[0] == pytest.approx(0.1) and cosine[-1] < 0.001
    assert np.all(np.diff(cosine) <= 1e-12)
    cycle = schedule_curve(TrainingConfig(schedule="onecycle", **base), 20, 10)
    peak = int(np.argmax(cycle))
    assert 0 < peak < len(cycle) - 1 and cycle[0] < 0.01 and cycle[-1] < 0.001
    assert cycle.max() == pytest.approx(0.1, rel=1e-3)
    flat = schedule_curve(TrainingConfig(schedule="plateau", **base), 20)
    assert np.all(flat == 0.1)


def test_plateau_lowers_the_rate_after_patience_epochs_and_resumes_from_state():
    cfg = TrainingConfig(schedule="plateau", plateau_patience=2, plateau_factor=0.5, lr=1.0)
    param = nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=1.0)
    sched = Scheduler(opt, cfg, 20, 1)
    lrs = []
    for epoch, val in enumerate([1.0, 0.9, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95]):
        sched.before_step(epoch, 0)
        lrs.append(opt.param_groups[0]["lr"])
        sched.end_epoch(val)
    assert lrs == [1.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25]
    again = Scheduler(opt, cfg, 20, 1)
    again.load_state_dict(sched.state_dict())
    again.before_step(9, 0)
    assert opt.param_groups[0]["lr"] == 0.25


@pytest.mark.parametrize("schedule", ["constant", "step", "cosine", "onecycle"])
def test_the_trainer_follows_the_curve(schedule):
    trainer = _fit(schedule=schedule, step_size=2, warmup_epochs=1, lr=0.01)
    steps = math.ceil(200 / 32)
    curve = schedule_curve(trainer.config, 6, steps)
    last_of_epoch = curve[steps - 1::steps]
    assert [h["lr"] for h in trainer.history] == pytest.approx(list(last_of_epoch))


def test_losses_label_smoothing_and_a_loss_of_the_wrong_task():
    for loss in ("cross_entropy", "bce"):
        trainer = _fit(loss=loss, label_smoothing=0.1)
        assert trainer.history[-1]["loss"] < trainer.history[0]["loss"]
        assert all(math.isfinite(h["val_loss"]) for h in trainer.history)
    trainer = _fit(task="regression", loss="huber")
    assert trainer.history[-1]["loss"] < trainer.history[0]["loss"]
    with pytest.raises(TrainingError, match="Choose cross_entropy or bce"):
        _fit(loss="mse")
    with pytest.raises(TrainingError, match="Choose mse or huber"):
        _fit(task="regression", loss="bce")


def test_label_smoothing_changes_the_training_loss_only():
    x, y = _data()
    plain = Trainer(_net(), "classification", TrainingConfig(device="cpu"))
    smooth = Trainer(_net(), "classification", TrainingConfig(device="cpu",
                                                              label_smoothing=0.2))
    out = torch.tensor([[4.0, -4.0], [-3.0, 3.0]])
    target = torch.tensor([0, 1])
    assert smooth._loss(out, target, training=True) > plain._loss(out, target, training=True)
    assert smooth._loss(out, target) == plain._loss(out, target)


def test_gradient_clipping_bounds_each_update():
    x, y = _data()
    y = y.astype(np.float32) * 1000  # huge errors, huge gradients
    cfg = TrainingConfig(epochs=1, batch_size=200, lr=1.0, optimizer="sgd", momentum=0.0,
                         grad_clip=0.5, device="cpu", restore_best=False)
    net = nn.Sequential(nn.Linear(4, 1))
    before = [p.detach().clone() for p in net.parameters()]
    Trainer(net, "regression", cfg).fit(x, y)
    step = torch.cat([(p.detach() - b).reshape(-1) for p, b in zip(net.parameters(), before)])
    assert float(step.norm()) == pytest.approx(0.5, rel=1e-4)  # lr 1 x clipped norm 0.5


def test_estimate_times_real_steps_and_leaves_the_model_alone(tmp_path):
    x, y = _data(64)
    net = _net()
    before = [p.detach().clone() for p in net.parameters()]
    cfg = TrainingConfig(batch_size=16, epochs=10, device="cpu")
    result = estimate_fit(net, "classification", cfg, x, y, x[:8], y[:8], checkpoint_dir=tmp_path)
    assert result.seconds_per_batch > 0 and result.steps_per_epoch == 4
    assert result.seconds_total == pytest.approx(sum(result.parts().values()))
    assert result.sampled_epochs >= 3 and result.peak_memory_bytes > 0 and result.device
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))
    assert list(tmp_path.iterdir()) == []  # the sample's checkpoints are cleaned up
    tokens = np.random.default_rng(0).integers(0, 50, size=(8, 12))
    bag = nn.Sequential(nn.Embedding(50, 4), nn.Flatten(), nn.Linear(48, 2))
    assert estimate_fit(bag, "classification", cfg, tokens, y[:8]).seconds_total > 0


def test_early_stopping_ends_a_run_that_stopped_improving_and_keeps_the_best():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(60, 4)).astype(np.float32)
    y = rng.integers(0, 2, 60)  # labels unrelated to x: validation loss soon rises
    x_val = rng.normal(size=(40, 4)).astype(np.float32)
    y_val = rng.integers(0, 2, 40)
    cfg = TrainingConfig(epochs=200, batch_size=16, lr=0.05, device="cpu",
                         early_stopping=True, patience=3, min_delta=0.0)
    trainer = Trainer(_net(), "classification", cfg)
    result = trainer.fit(x, y, x_val, y_val)
    losses = [h["val_loss"] for h in result.history]
    best = int(np.argmin(losses))
    assert result.early_stopped and not result.stopped
    assert result.epochs_completed == best + 1 + 3  # three epochs without improvement
    assert result.best_epoch == best + 1
    again = Trainer(_net(), "classification", TrainingConfig(
        epochs=5, batch_size=16, device="cpu", early_stopping=True, patience=50))
    assert not again.fit(x, y, x_val, y_val).early_stopped  # patience longer than the run
    with pytest.raises(Exception, match="patience of at least 1"):
        TrainingConfig(early_stopping=True, patience=0).validate()


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_the_best_epoch_and_early_stopping_can_follow_the_validation_metric(task):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(80, 4)).astype(np.float32)
    x_val = rng.normal(size=(40, 4)).astype(np.float32)
    if task == "classification":
        y, y_val = rng.integers(0, 2, 80), rng.integers(0, 2, 40)
        key, pick = "val_accuracy", max
    else:
        y, y_val = rng.normal(size=80).astype(np.float32), rng.normal(size=40).astype(np.float32)
        key, pick = "val_mae", min
    cfg = TrainingConfig(epochs=60, batch_size=16, lr=0.05, device="cpu", early_stopping=True,
                         patience=4, monitor="val_metric")
    net = _net() if task == "classification" else nn.Sequential(nn.Linear(4, 16), nn.ReLU(),
                                                                  nn.Linear(16, 1))
    result = Trainer(net, task, cfg).fit(x, y, x_val, y_val)
    values = [h[key] for h in result.history]
    best = values.index(pick(values)) + 1  # the first epoch with the best value
    assert result.best_epoch == best
    assert result.early_stopped and result.epochs_completed == best + 4
    with pytest.raises(Exception, match="Unknown monitor"):
        TrainingConfig(monitor="val_f1").validate()
