"""Every run's history as a TensorBoard event file (ml.runs.tensorboard), read back with
TensorBoard's own reader: the same numbers, one point per epoch, also after a resume."""

from __future__ import annotations

import json

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from ml.runs import tensorboard
from ml.runs.folder import RunFolder
from tests.conftest import run_cli


def _read(run_dir):
    acc = EventAccumulator(str(run_dir / tensorboard.FOLDER))
    acc.Reload()
    return acc


def test_crc32c_matches_the_published_check_value():
    assert tensorboard.crc32c(b"123456789") == 0xE3069283


def test_a_run_can_be_opened_in_tensorboard_with_its_curves(tmp_path):
    run = tmp_path / "run"
    done = run_cli("train", "--data", "sample:iris", "--epochs", "4", "--early-stopping", "0",
                   "--refit", "off", "--no-yardstick", "--quiet", "--out", str(run))
    assert done.returncode == 0, done.stderr
    history = RunFolder.open(run).read_history()
    acc = _read(run)
    tags = acc.Tags()["scalars"]
    assert {"train/loss", "val/loss", "train/lr", "val/accuracy"} <= set(tags)
    points = acc.Scalars("val/loss")
    assert [p.step for p in points] == [1, 2, 3, 4]
    assert [p.value for p in points] == pytest.approx([h["val_loss"] for h in history],
                                                      rel=1e-6)


def test_a_history_written_again_is_not_repeated(tmp_path):
    folder = RunFolder.claim(tmp_path / "run")
    lines = [json.dumps({"epoch": i, "loss": 1.0 / i, "val_loss": 2.0 / i, "seconds": i})
             for i in range(1, 6)]
    folder.write_history(lines[:3])  # killed after epoch 3, then resumed to 5
    folder.write_history(lines)
    acc = _read(tmp_path / "run")
    assert [p.step for p in acc.Scalars("train/loss")] == [1, 2, 3, 4, 5]
    assert acc.Scalars("val/loss")[-1].value == pytest.approx(0.4)


def test_the_runs_settings_are_tensorboards_hyperparameters(tmp_path):
    from tensorboard.plugins.hparams import metadata

    run = tmp_path / "run"
    done = run_cli("train", "--data", "sample:iris", "--epochs", "2", "--lr", "0.003",
                   "--hidden", "16,8", "--early-stopping", "0", "--refit", "off",
                   "--no-yardstick", "--quiet", "--out", str(run))
    assert done.returncode == 0, done.stderr
    acc = _read(run)
    content = acc.SummaryMetadata(metadata.SESSION_START_INFO_TAG).plugin_data
    assert content.plugin_name == metadata.PLUGIN_NAME
    info = metadata.parse_session_start_info_plugin_data(content.content)
    hparams = {k: v.WhichOneof("kind") and getattr(v, v.WhichOneof("kind"))
               for k, v in info.hparams.items()}
    assert hparams["training.lr"] == pytest.approx(0.003)
    assert hparams["training.epochs"] == 2 and hparams["model.hidden"] == "16,8"
    assert hparams["data"] == "sample:iris" and hparams["training.amp"] is True
    assert info.start_time_secs > 1.7e9
    assert [p.step for p in acc.Scalars("val/loss")] == [1, 2]  # the curves are still there
