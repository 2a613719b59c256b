"""Image sets decoded while training (DataLoader worker processes) instead of held in memory."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from ml.data.dataset import load_dataset, prepare
from ml.data.streaming import ImageFiles, should_stream
from ml.jobs.training import TrainingJob
from ml.runs.project import DataConfig, ModelConfig, Project, TrainingConfig
from ml.training import loading
from tests.ml.test_import_pipeline import make_image_folder


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    root = tmp_path_factory.mktemp("shapes")
    make_image_folder(root, n=20, size=20)
    return root


def _project(folder, loading_choice):
    return Project(data=DataConfig(source=str(folder), image_size=16,
                                   image_loading=loading_choice),
                   model=ModelConfig(preset="cnn", conv_channels=[8], hidden=[16]),
                   training=TrainingConfig(epochs=3, batch_size=8, seed=4))


def test_auto_streams_only_what_would_not_fit():
    assert not should_stream(60_000, (1, 28, 28))  # MNIST: 47 MB
    assert should_stream(10_000_000, (3, 256, 256))  # 2 TB
    assert should_stream(10, (1, 8, 8), "stream") and not should_stream(10**9, (3, 9, 9),
                                                                        "memory")


def test_streamed_images_decode_like_the_held_ones(shapes):
    dataset = load_dataset(str(shapes))
    held = prepare(dataset, _project(shapes, "memory").data)
    streamed = prepare(load_dataset(str(shapes)), _project(shapes, "stream").data)
    x = streamed.x["train"]
    assert isinstance(x, ImageFiles) and x.shape == held.x["train"].shape
    assert np.array_equal(x[:], held.x["train"])
    assert np.array_equal(x[np.array([3, 1])], held.x["train"][[3, 1]])
    assert np.array_equal(x[5], held.x["train"][5])
    assert streamed.preprocessor.to_dict() == held.preprocessor.to_dict()


def test_a_streamed_run_trains_the_same_model_through_the_loader(shapes, tmp_path,
                                                                        monkeypatch):
    made = []
    real = loading.LoaderBatches.__init__

    def spy(self, *args, **kwargs):
        real(self, *args, **kwargs)
        made.append(self.loader.num_workers)

    monkeypatch.setattr(loading.LoaderBatches, "__init__", spy)
    held = TrainingJob(_project(shapes, "memory"), run_dir=tmp_path / "held").run()
    assert made == []
    streamed = TrainingJob(_project(shapes, "stream"), run_dir=tmp_path / "streamed").run()
    assert made  # the loader decoded the batches
    assert streamed.status == "finished"
    a = load_file(str(tmp_path / "held" / "model.safetensors"))
    b = load_file(str(tmp_path / "streamed" / "model.safetensors"))
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    assert streamed.metrics["test"] == pytest.approx(held.metrics["test"])
    history = [json.loads(x) for x in (tmp_path / "streamed" / "history.jsonl").read_text()
               .splitlines()]
    assert [h["epoch"] for h in history] == [1, 2, 3]


def test_a_file_that_breaks_after_import_becomes_a_blank_image(shapes, tmp_path):
    files = ImageFiles([str(p) for p in sorted(shapes.rglob("*.png"))[:3]], (8, 8), "L")
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    files = ImageFiles([*files.paths, str(broken)], (8, 8), "L")
    out = files[:]
    assert out.shape == (4, 1, 8, 8) and out[3].max() == 0 and out[:3].max() > 0


def test_streaming_from_the_command_line(shapes, tmp_path):
    from tests.conftest import run_main

    proc = run_main("train", "--data", str(shapes), "--image-size", "16", "--image-loading",
                    "stream", "--epochs", "1", "--out", str(tmp_path / "run"))
    assert proc.returncode == 0, proc.stderr
    assert "decoded while training" in proc.stderr and "status: finished" in proc.stdout
    assert json.loads((tmp_path / "run" / "config.json").read_text())["data"][
        "image_loading"] == "stream"


def test_streamed_and_held_augmented_runs_match_and_workers_augment_on_a_cpu(shapes, tmp_path):
    runs = {}
    for choice in ("memory", "stream"):
        project = _project(shapes, choice)
        project.data.augment = {"hflip": True, "rotation": 10.0, "brightness": 0.2}
        runs[choice] = TrainingJob(project, run_dir=tmp_path / choice).run()
    a = load_file(str(tmp_path / "memory" / "model.safetensors"))
    b = load_file(str(tmp_path / "stream" / "model.safetensors"))
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)


def test_an_augmented_run_resumes_to_the_same_weights(shapes, tmp_path):
    from ml.training.callbacks import Callback

    project = _project(shapes, "memory")
    project.data.augment = {"hflip": True, "crop_scale": 0.8, "contrast": 0.3}
    project.training.epochs = 4
    TrainingJob(project, run_dir=tmp_path / "whole").run()

    class StopAfterTwo(Callback):
        def on_epoch_end(self, epoch, logs):
            if logs["epoch"] == 2:
                self.trainer.should_stop = True

    TrainingJob(project, run_dir=tmp_path / "cut", callbacks=[StopAfterTwo()]).run()
    TrainingJob.resume(tmp_path / "cut").run()
    a = load_file(str(tmp_path / "whole" / "model.safetensors"))
    b = load_file(str(tmp_path / "cut" / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.requires_cuda
def test_streamed_batches_arrive_on_the_gpu_from_pinned_memory(shapes):
    from ml.training.loading import LoaderBatches

    files = prepare(load_dataset(str(shapes)), _project(shapes, "stream").data).x["train"]
    batches = LoaderBatches(files, np.zeros(len(files), np.int64), torch.device("cuda"),
                            workers=1)
    try:
        assert batches.loader.pin_memory
        xb, yb = next(batches.batches([torch.arange(4)]))
        assert xb.is_cuda and yb.is_cuda and xb.shape[0] == 4
    finally:
        batches.close()
