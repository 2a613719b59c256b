"""Cross-validation folds and the Optuna hyperparameter search."""

import json

import numpy as np
import pytest

from ml.data.dataset import load_dataset, prepare
from ml.data.split import fold_parts, split_indices
from ml.errors import DataError, TrainDeskError
from ml.jobs.crossval import CrossValidation
from ml.jobs.search import Search, SearchSpace, apply_params
from ml.runs.folder import load_run
from ml.runs.project import DataConfig, ModelConfig, Project, TrainingConfig
from ml.training.callbacks import Callback


def test_folds_rotate_validation_through_the_non_test_rows_keeping_class_shares():
    labels = np.repeat([0, 1, 2], [40, 30, 20])
    parts = split_indices(90, 0.15, 0.15, seed=4, labels=labels)
    seen = []
    for fold in range(5):
        out = fold_parts(parts, 5, fold, seed=4, labels=labels)
        assert np.array_equal(out["test"], parts["test"])  # held out of every fold
        assert not set(out["train"]) & set(out["val"])
        assert sorted([*out["train"], *out["val"]]) == sorted([*parts["train"], *parts["val"]])
        counts = np.bincount(labels[out["val"]], minlength=3)
        pool = np.bincount(labels[np.concatenate([parts["train"], parts["val"]])], minlength=3)
        assert np.all(np.abs(counts - pool / 5) <= 1)  # stratified
        seen.extend(out["val"])
    assert sorted(seen) == sorted([*parts["train"], *parts["val"]])  # each row validates once
    again = fold_parts(parts, 5, 2, seed=4, labels=labels)
    assert np.array_equal(again["val"], fold_parts(parts, 5, 2, seed=4, labels=labels)["val"])
    assert fold_parts(parts, 0, 0, seed=4) is parts
    with pytest.raises(DataError, match="too few rows"):
        fold_parts({"train": np.arange(2), "val": np.arange(2, 3), "test": np.arange(3, 4)},
                   5, 0, seed=0)


def test_a_fold_setting_out_of_range_is_refused():
    project = Project(data=DataConfig(source="sample:iris"))
    project.data.split.folds, project.data.split.fold = 3, 3
    with pytest.raises(TrainDeskError, match="fold 4 of 3"):
        project.validate()


def test_prepare_gives_each_fold_its_own_validation_rows():
    dataset = load_dataset("sample:wine")
    vals = []
    for fold in range(3):
        config = DataConfig(source="sample:wine")
        config.split.folds, config.split.fold = 3, fold
        vals.append(set(prepare(dataset, config).rows["val"].tolist()))
    assert not (vals[0] & vals[1]) and not (vals[1] & vals[2])


class Count(Callback):
    def __init__(self):
        self.fits = 0

    def on_fit_begin(self, logs):
        self.fits += 1


def test_cross_validation_runs_k_folds_and_reports_mean_and_std(tmp_path):
    project = Project(data=DataConfig(source="sample:wine"),
                      model=ModelConfig(preset="mlp", hidden=[16]),
                      training=TrainingConfig(epochs=4, batch_size=32))
    count, folds = Count(), []
    result = CrossValidation(project, 3, runs_dir=tmp_path, callbacks=[count],
                             on_fold=lambda i, k: folds.append((i, k))).run()
    assert count.fits == 3 and folds == [(0, 3), (1, 3), (2, 3)]
    summary = json.loads((result.folder / "crossval.json").read_text())
    assert summary["k"] == 3 and summary["completed"] == 3 and not summary["stopped"]
    vals = [f["val"] for f in summary["folds"]]
    assert summary["val"]["mean"] == pytest.approx(np.mean(vals))
    assert summary["val"]["std"] == pytest.approx(np.std(vals, ddof=1))
    for i, run in enumerate(result.runs):  # ordinary, loadable runs that know their fold
        loaded = load_run(run.run_dir)
        assert loaded.config["data"]["split"]["fold"] == i
        assert run.record().group == result.folder.name
        assert run.record().label == f"fold {i + 1} of 3"
    assert "over 3 of 3 folds" in result.describe()


def test_stopping_cross_validation_starts_no_more_folds(tmp_path):
    project = Project(data=DataConfig(source="sample:iris"), training=TrainingConfig(epochs=2))
    cv = CrossValidation(project, 4, runs_dir=tmp_path)
    cv.on_fold_end = lambda run: cv.request_stop()
    result = cv.run()
    assert len(result.runs) == 1 and result.stopped
    assert json.loads((result.folder / "crossval.json").read_text())["stopped"] is True


def test_search_trials_are_runs_and_the_best_can_be_applied(tmp_path):
    project = Project(data=DataConfig(source="sample:iris"),
                      model=ModelConfig(preset="mlp", hidden=[16]),
                      training=TrainingConfig(epochs=3, seed=1))
    space = SearchSpace(params=["lr", "batch_size", "width", "depth", "dropout", "optimizer"])
    ended = []
    result = Search(project, space, trials=4, sampler="random", pruning=False,
                    runs_dir=tmp_path, on_trial_end=lambda t, r: ended.append(t.number)).run()
    assert ended == [1, 2, 3, 4]
    assert all(t.state == "complete" for t in result.trials)
    assert len({t.params["lr"] for t in result.trials}) == 4  # really sampled
    best = result.best
    assert best.value == max(t.value for t in result.trials)
    doc = json.loads((result.folder / "search.json").read_text())
    assert doc["best"]["number"] == best.number and len(doc["trials"]) == 4
    run = load_run(result.folder / best.run)
    assert run.config["training"]["lr"] == pytest.approx(best.params["lr"])
    apply_params(project, best.params)
    assert project.training.lr == pytest.approx(best.params["lr"])
    assert len(project.model.hidden) == best.params["depth"]
    assert project.model.hidden[0] == best.params["width"]
    project.validate()


def test_pruning_stops_hopeless_trials_early(tmp_path):
    project = Project(data=DataConfig(source="sample:wine"),
                      model=ModelConfig(preset="mlp", hidden=[16]),
                      training=TrainingConfig(epochs=8, seed=0))
    # A range from useful to hopeless learning rates: the slow ones fall below the median.
    space = SearchSpace(params=["lr"], ranges={"lr": (1e-6, 3e-2)})
    result = Search(project, space, trials=10, sampler="random", runs_dir=tmp_path).run()
    pruned = [t for t in result.trials if t.state == "pruned"]
    assert pruned and all(t.epochs < 8 for t in pruned)
    assert result.best.state == "complete"


def test_a_diverging_trial_fails_and_the_search_goes_on(tmp_path):
    project = Project(data=DataConfig(source="sample:diabetes"),
                      model=ModelConfig(preset="mlp", hidden=[64]),
                      training=TrainingConfig(epochs=3, optimizer="sgd", momentum=0.9))
    space = SearchSpace(params=["lr"], ranges={"lr": (5.0, 9.0)})  # diverges
    result = Search(project, space, trials=2, runs_dir=tmp_path, pruning=False).run()
    assert [t.state for t in result.trials] == ["failed", "failed"]
    assert "diverged" in result.trials[0].error
    assert result.best is None


@pytest.mark.parametrize("space, message", [
    (SearchSpace(params=[]), "at least one"),
    (SearchSpace(params=["colour"]), "Unknown search setting"),
    (SearchSpace(params=["lr"], ranges={"lr": (0.0, 0.1)}), "above 0"),
    (SearchSpace(params=["dropout"], ranges={"dropout": (0.5, 0.1)}), "lower to a higher"),
    (SearchSpace(params=["optimizer"], ranges={"optimizer": []}), "at least one"),
])
def test_bad_search_settings_are_refused(space, message):
    with pytest.raises(TrainDeskError, match=message):
        Search(Project(data=DataConfig(source="sample:iris")), space, trials=2)


def test_a_search_needs_a_budget():
    with pytest.raises(TrainDeskError, match="budget"):
        Search(Project(data=DataConfig(source="sample:iris")), SearchSpace(), trials=None)
