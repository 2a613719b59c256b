import math

import numpy as np
import pytest
import torch

from ml.errors import TrainingError
from ml.models import build_model, build_spec
from ml.runs.project import ModelConfig, TrainingConfig
from ml.training import Callback, Trainer
from ml.training.trainer import TensorBatches


def blobs(n=200, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    centers = np.array([[0, 0], [3, 3], [-3, 3]], np.float32)
    x = centers[y] + rng.normal(0, 0.6, (n, 2)).astype(np.float32)
    return x.astype(np.float32), y.astype(np.int64)


def tiny_model(n_out=3, task="classification"):
    return build_model(build_spec(ModelConfig(preset="mlp", hidden=[16], dropout=0.0), [2],
                                  n_out, task))


class Recorder(Callback):
    def __init__(self, stop_at_step=None):
        self.events, self.batch_logs, self.epoch_logs = [], [], []
        self.stop_at_step = stop_at_step

    def on_fit_begin(self, logs):
        self.events.append("fit_begin")
        self.fit_logs = logs

    def on_epoch_begin(self, epoch, logs):
        self.events.append(f"epoch_begin_{epoch}")

    def on_batch_end(self, step, logs):
        self.batch_logs.append(dict(logs))
        if self.stop_at_step and step >= self.stop_at_step:
            self.trainer.should_stop = True

    def on_epoch_end(self, epoch, logs):
        self.events.append(f"epoch_end_{epoch}")
        self.epoch_logs.append(dict(logs))

    def on_fit_end(self, logs):
        self.events.append("fit_end")
        self.end_logs = dict(logs)


def test_loss_falls_and_callbacks_get_plain_floats():
    x, y = blobs()
    rec = Recorder()
    trainer = Trainer(tiny_model(), "classification",
                      TrainingConfig(epochs=15, batch_size=32, lr=0.01, restore_best=False),
                      callbacks=[rec], log_every_n_steps=2)
    result = trainer.fit(x[:150], y[:150], x[150:], y[150:])
    losses = [h["loss"] for h in result.history]
    assert losses[-1] < 0.5 * losses[0]
    assert result.history[-1]["val_accuracy"] > 0.9
    assert rec.events[0] == "fit_begin" and rec.events[-1] == "fit_end"
    assert rec.events[1:4] == ["epoch_begin_0", "epoch_end_0", "epoch_begin_1"]
    for logs in rec.epoch_logs + rec.batch_logs:
        for value in logs.values():
            assert type(value) in (int, float), logs
    # The running loss is read from the device every 2 steps and at each epoch's end only.
    steps_per_epoch = math.ceil(150 / 32)
    with_loss = [b["step"] for b in rec.batch_logs if "loss" in b]
    assert len(rec.batch_logs) == 15 * steps_per_epoch
    assert len(with_loss) < len(rec.batch_logs)
    assert all(s % 2 == 0 or s % steps_per_epoch == 0 for s in with_loss)


def test_stop_flag_is_honoured_within_one_batch():
    x, y = blobs(400)
    rec = Recorder(stop_at_step=3)
    trainer = Trainer(tiny_model(), "classification",
                      TrainingConfig(epochs=50, batch_size=16), callbacks=[rec])
    result = trainer.fit(x, y, x[:50], y[:50])
    assert len(rec.batch_logs) == 3
    assert result.stopped and result.epochs_completed == 0
    assert rec.end_logs["stopped"] is True


def test_same_seed_gives_the_same_weights():
    x, y = blobs()
    weights = []
    for _ in range(2):
        torch.manual_seed(0)
        model = tiny_model()
        torch.manual_seed(999)  # global RNG state before fit must not matter: fit seeds
        Trainer(model, "classification", TrainingConfig(epochs=3, seed=5)).fit(x, y)
        weights.append(torch.cat([p.flatten() for p in model.parameters()]))
    assert torch.equal(weights[0], weights[1])


def test_diverging_loss_stops_with_advice():
    x, y = blobs()
    x[0, 0] = np.nan
    trainer = Trainer(tiny_model(), "classification", TrainingConfig(epochs=2, batch_size=300))
    with pytest.raises(TrainingError, match="Lower the learning rate.*gradient clipping"):
        trainer.fit(x, y)


def test_a_diverging_validation_loss_is_caught_too():
    x, y = blobs()
    xv = x[:20].copy()
    xv[3, 1] = np.inf
    trainer = Trainer(tiny_model(), "classification", TrainingConfig(epochs=2))
    with pytest.raises(TrainingError, match="became"):
        trainer.fit(x, y, xv, y[:20])


def test_best_weights_are_restored():
    x, y = blobs()
    rec = Recorder()
    model = tiny_model()
    trainer = Trainer(model, "classification", TrainingConfig(epochs=8, restore_best=True),
                      callbacks=[rec])
    result = trainer.fit(x[:150], y[:150], x[150:], y[150:])
    best = min(rec.epoch_logs, key=lambda h: h["val_loss"])
    assert result.best_epoch == best["epoch"]
    assert trainer.evaluate_arrays(x[150:], y[150:])["loss"] == pytest.approx(best["val_loss"],
                                                                              rel=1e-5)


def test_regression_reports_mae_in_target_units():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 2)).astype(np.float32)
    y = (x[:, 0] * 2 + x[:, 1]).astype(np.float32)
    model = tiny_model(1, "regression")
    trainer = Trainer(model, "regression", TrainingConfig(epochs=3), target_scale=10.0)
    result = trainer.fit(x, y, x, y)
    h = result.history[-1]
    plain = trainer.evaluate_arrays(x, y)["mae"]
    assert h["val_mae"] == pytest.approx(plain)
    out = trainer.predict_raw(x).reshape(-1)
    assert plain == pytest.approx(float(np.mean(np.abs(out - y))) * 10.0, rel=1e-5)


def test_model_ends_on_the_cpu_and_empty_data_is_refused():
    x, y = blobs(50)
    model = tiny_model()
    trainer = Trainer(model, "classification", TrainingConfig(epochs=1))
    trainer.fit(x, y)
    assert next(model.parameters()).device.type == "cpu"
    with pytest.raises(TrainingError, match="empty"):
        trainer.fit(x[:0], y[:0])


def test_data_on_cpu_is_batched_by_index_without_copies():
    x, y = blobs(20)
    data = TensorBatches(x, y, torch.device("cpu"))
    assert data.on_device and data.x.data_ptr() == torch.from_numpy(x).data_ptr()
    xb, yb = data.batch(torch.tensor([3, 1]))
    assert torch.equal(xb, torch.from_numpy(x[[3, 1]]))


@pytest.mark.requires_cuda
def test_cuda_amp_and_pinned_host_batches():
    x, y = blobs(300)
    model = tiny_model()
    trainer = Trainer(model, "classification", TrainingConfig(epochs=3, device="cuda", amp=True))
    result = trainer.fit(x, y, x, y)
    assert result.history[-1]["val_accuracy"] > 0.8
    assert next(model.parameters()).device.type == "cpu"
    TensorBatches.DEVICE_SHARE, old = 0.0, TensorBatches.DEVICE_SHARE  # force host staging
    try:
        data = TensorBatches(x, y, torch.device("cuda"))
        assert not data.on_device and data.x.is_pinned()
        for _ in range(3):
            xb, yb = data.batch(torch.arange(32))
        torch.cuda.synchronize()
        assert xb.device.type == "cuda" and torch.equal(xb.cpu(), torch.from_numpy(x[:32]))
    finally:
        TensorBatches.DEVICE_SHARE = old
