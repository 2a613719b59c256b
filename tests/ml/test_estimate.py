"""The estimate before training against real short runs: a table, an image folder, a text set.

What is compared: the estimate's ``seconds_total`` with the real run's ``fit.seconds`` - the
training loop from its first epoch to its last checkpoint (steps, loading and augmentation,
validation, checkpoint writes, the loader's start-up), which is what the estimate claims to
predict. Preparing the data and the final test evaluation are outside both (the estimate
reports them apart). The dataset is loaded once and given to both.

Robust on a loaded 2-core machine: torch runs one thread in these tests (two threads fighting
other processes for two cores made single steps vary tenfold), estimate and run are measured back
to back, and each is the fastest of its rounds - the least disturbed reading of both - with up
to three rounds until they agree.
"""

from __future__ import annotations

import pytest
import torch

from ml.data.dataset import load_dataset
from ml.errors import Cancelled
from ml.jobs.estimate import estimate_project
from ml.jobs.training import TrainingJob
from ml.runs.project import DataConfig, ModelConfig, Project, TrainingConfig
from tests.ml.test_import_pipeline import make_image_folder, make_text_csv

TOLERANCE = 0.30
ROUNDS = 3


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _compare(project: Project, tmp_path) -> tuple[float, float, object]:
    """(estimated, real) training seconds, each the fastest of its rounds, and an estimate."""
    dataset = load_dataset(project.data.source)
    estimates, reals = [], []
    for i in range(ROUNDS):
        estimate = estimate_project(project, dataset, runs_dir=tmp_path)
        estimates.append(estimate.seconds_total)
        run = TrainingJob(project, dataset=dataset, run_dir=tmp_path / f"run{i}").run()
        assert run.status == "finished" and run.fit.epochs_completed == project.training.epochs
        reals.append(run.fit.seconds)
        est, real = min(estimates), min(reals)
        if abs(est - real) / real <= TOLERANCE:
            break
    print(f"\n{project.data.source}: estimated {est:.2f} s, real {real:.2f} s, ratio "
          f"{est / real:.2f} ({len(reals)} round(s)); parts "
          f"{ {k: round(v, 2) for k, v in estimate.parts().items()} }")
    return est, real, estimate


def _check(project: Project, tmp_path):
    est, real, estimate = _compare(project, tmp_path)
    assert abs(est - real) / real <= TOLERANCE, (est, real)
    assert estimate.seconds_total == pytest.approx(sum(estimate.parts().values()))
    assert estimate.peak_memory_bytes and estimate.epochs == project.training.epochs
    return estimate


@pytest.mark.refit
def test_estimate_of_a_table_matches_a_real_run(tmp_path):
    project = Project(data=DataConfig(source="sample:iris"),
                      model=ModelConfig(preset="mlp", hidden=[16]),
                      training=TrainingConfig(epochs=150, batch_size=8, seed=0, device="cpu"))
    estimate = _check(project, tmp_path)
    assert estimate.checkpoints > 0 and estimate.validation > 0
    # The final fit (training + validation rows) is bounded apart from the total it matched.
    rows = (estimate.n_train + estimate.n_val) / estimate.n_train
    assert estimate.final_fit == pytest.approx(
        (estimate.train_steps + estimate.loading + estimate.checkpoints) * rows)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".estimate")]


def test_estimate_of_an_augmented_image_folder_matches_a_real_run(tmp_path):
    folder = make_image_folder(tmp_path / "shapes", classes=("a", "b", "c"), n=30, size=32)
    project = Project(data=DataConfig(source=str(folder), image_size=16, image_loading="memory",
                                      augment={"hflip": True, "rotation": 10}),
                      model=ModelConfig(preset="cnn", conv_channels=[8], hidden=[16]),
                      training=TrainingConfig(epochs=40, batch_size=8, seed=0, device="cpu"))
    estimate = _check(project, tmp_path / "runs")
    assert estimate.loading > 0  # the augmentation on the training thread is counted


@pytest.mark.slow
def test_estimate_of_a_streamed_image_folder_counts_the_decoding_processes(tmp_path):
    # Streamed: spawned DataLoader processes decode and augment; starting them (importing
    # torch) is most of a short run on a busy machine, and the estimate has to see it.
    folder = make_image_folder(tmp_path / "shapes", classes=("a", "b", "c"), n=30, size=32)
    project = Project(data=DataConfig(source=str(folder), image_size=16, image_loading="stream",
                                      augment={"hflip": True}),
                      model=ModelConfig(preset="cnn", conv_channels=[8], hidden=[16]),
                      training=TrainingConfig(epochs=10, batch_size=8, seed=0, device="cpu"))
    estimate = _check(project, tmp_path / "runs")
    assert estimate.loader_workers >= 1 and estimate.loading_alongside > 0
    assert estimate.start_up > estimate.seconds_per_epoch  # the processes starting


def test_estimate_of_a_text_set_matches_a_real_run(tmp_path):
    source = make_text_csv(tmp_path / "reviews.csv", n=300)
    project = Project(data=DataConfig(source=str(source), target="sentiment"),
                      model=ModelConfig(preset="text"),
                      training=TrainingConfig(epochs=60, batch_size=16, seed=0, device="cpu"))
    _check(project, tmp_path / "runs")


def test_the_estimate_stops_when_asked_mid_way(tmp_path):
    project = Project(data=DataConfig(source="sample:iris"),
                      training=TrainingConfig(epochs=5, batch_size=8, device="cpu"))
    calls = []

    def should_stop() -> bool:  # True once training has begun: polled between batches too
        calls.append(1)
        return len(calls) > 5

    with pytest.raises(Cancelled):
        estimate_project(project, should_stop=should_stop, runs_dir=tmp_path)
    assert len(calls) == 6
    assert list(tmp_path.iterdir()) == []  # nothing left behind
