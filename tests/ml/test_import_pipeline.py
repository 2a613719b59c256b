"""From imported data to a trained run: images, text, standard files, column choices, health."""

from __future__ import annotations

import gzip
import json
import struct

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from ml.data.dataset import load_dataset, prepare, resolve
from ml.data.health import check_health
from ml.errors import DataError
from ml.jobs.training import TrainingJob, apply_suggestions, balanced_class_weights
from ml.models.presets import build_spec
from ml.models.spec import build_model
from ml.runs.project import PROJECT_VERSION, DataConfig, Project, TrainingConfig

# -- builders -------------------------------------------------------------------------------------


def make_image_folder(root, classes=("circle", "square"), n=12, size=24, split=None, seed=0):
    """Class folders of simple, learnable pictures (bright left half vs bright top half)."""
    rng = np.random.default_rng(seed)
    base = root / split if split else root
    for c, name in enumerate(classes):
        folder = base / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            img = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
            if c == 0:
                img[:, : size // 2] += 150
            else:
                img[: size // 2, :] += 150
            Image.fromarray(img).save(folder / f"{name}_{i}.png")
    return root


def write_idx(path, array):
    dtype_code = 0x08
    header = struct.pack(">BBBB", 0, 0, dtype_code, array.ndim)
    header += b"".join(struct.pack(">I", d) for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if str(path).endswith(".gz"):
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)


def make_idx_folder(root, n_train=60, n_test=20):
    rng = np.random.default_rng(1)
    root.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = np.arange(n) % 3
        images = rng.integers(0, 30, (n, 28, 28)).astype(np.uint8)
        for i, lab in enumerate(labels):
            images[i, lab * 9:(lab + 1) * 9, :] = 220
        write_idx(root / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return root


REVIEWS_GOOD = ["a wonderful film with great acting and a lovely story",
                "great fun from start to end, truly wonderful and moving",
                "i loved every minute, brilliant cast and lovely music"]
REVIEWS_BAD = ["a boring mess with terrible acting and a dull plot",
               "awful from start to end, truly boring and far too long",
               "i hated every minute, terrible script and dull music"]


def make_text_csv(path, n=120):
    rows = []
    for i in range(n):
        good = i % 2 == 0
        pool = REVIEWS_GOOD if good else REVIEWS_BAD
        rows.append({"id": f"r{i:04d}", "review": pool[i % 3] + f" (viewer {i})",
                     "stars": 5 if good else 1, "sentiment": "positive" if good else "negative"})
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def quick(project: Project, epochs=8, lr=3e-3):
    project.training = TrainingConfig(epochs=epochs, batch_size=16, lr=lr, seed=0)
    return project


# -- images ---------------------------------------------------------------------------------------


def test_image_folder_trains_and_exports_with_image_preprocessing(tmp_path):
    folder = make_image_folder(tmp_path / "shapes")
    dataset = load_dataset(str(folder))
    assert dataset.kind == "image" and dataset.n_rows == 24
    project = Project(data=DataConfig(source=str(folder), image_size=16, image_mode="RGB"))
    summary = resolve(dataset, project.data)
    assert summary.kind == "image" and summary.image_shape == (3, 16, 16)
    prepared = prepare(dataset, project.data)
    assert prepared.x["train"].dtype == np.uint8 and prepared.x["train"].shape[1:] == (3, 16, 16)
    apply_suggestions(project, dataset, summary)
    result = TrainingJob(quick(project, epochs=6), dataset=dataset, runs_dir=tmp_path).run()
    assert result.metrics["test"]["accuracy"] >= 0.75
    doc = json.loads((result.run_dir / "preprocessing.json").read_text())
    assert doc["image"]["height"] == 16 and doc["image"]["mode"] == "RGB"
    # New files are decoded the same way the training images were.
    from ml.evaluation.evaluate import predict_frame
    from ml.runs.folder import load_run

    run = load_run(result.run_dir)
    files = pd.DataFrame({"path": [str(p) for p in sorted((folder / "circle").glob("*.png"))]})
    out = predict_frame(run.load_model(), run.preprocessor, files)
    assert (out["prediction"] == "circle").mean() >= 0.75


def test_given_train_test_folders_are_respected(tmp_path):
    root = tmp_path / "split"
    make_image_folder(root, n=10, split="train")
    make_image_folder(root, n=4, split="test", seed=1)
    dataset = load_dataset(str(root))
    assert dataset.given_splits
    prepared = prepare(dataset, DataConfig(source=str(root), image_size=8))
    test_paths = set(dataset.frame["path"].iloc[prepared.rows["test"]])
    assert len(test_paths) == 8 and all("/test/" in p.replace("\\", "/") for p in test_paths)
    # Validation is carved from the training folder only.
    val_paths = dataset.frame["path"].iloc[prepared.rows["val"]]
    assert len(val_paths) and all("/train/" in p.replace("\\", "/") for p in val_paths)


def test_augmentation_is_applied_to_training_batches_only(tmp_path, monkeypatch):
    folder = make_image_folder(tmp_path / "aug", n=8)
    dataset = load_dataset(str(folder))
    project = quick(Project(data=DataConfig(source=str(folder), image_size=8,
                                            augment={"hflip": True})), epochs=1)
    from ml.data import augment as augment_module

    calls = []
    original = augment_module.Augmenter.__call__

    def spy(self, x, seed=None):
        calls.append(tuple(x.shape))
        return original(self, x, seed=seed)

    monkeypatch.setattr(augment_module.Augmenter, "__call__", spy)
    TrainingJob(project, dataset=dataset, runs_dir=tmp_path).run()
    n_train = len(prepare(dataset, project.data).y["train"])
    assert sum(shape[0] for shape in calls) == n_train  # one pass over training data only


def test_idx_files_train_from_the_command_line(tmp_path):
    from tests.conftest import run_cli  # in this process: the command itself runs in e2e/

    folder = make_idx_folder(tmp_path / "mnist")
    proc = run_cli("train", "--data", str(folder), "--epochs", "3", "--out",
                   str(tmp_path / "run"), "--quiet")
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["n_test"] == 20  # the t10k files are the test split
    assert metrics["test"]["accuracy"] >= 0.6


def test_image_folder_and_zip_train_from_the_command_line(tmp_path):
    import shutil

    from tests.conftest import run_cli, run_main

    folder = make_image_folder(tmp_path / "pics", n=10)
    archive = shutil.make_archive(str(tmp_path / "pics"), "zip", tmp_path, "pics")
    for source, run in ((folder, run_main), (archive, run_cli)):  # the zip in this process
        out = tmp_path / f"run_{len(list(tmp_path.iterdir()))}"
        proc = run("train", "--data", str(source), "--epochs", "2", "--image-size", "12",
                   "--augment", "hflip,rotation=10", "--out", str(out))
        assert proc.returncode == 0, proc.stderr
        assert "Augmenting training images" in proc.stderr
        assert json.loads((out / "preprocessing.json").read_text())["input_shape"] == [3, 12, 12]


def test_pickled_cifar_is_refused_with_advice(tmp_path):
    from tests.conftest import run_cli

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    (folder / "data_batch_1").write_bytes(b"\x80\x04\x95" + b"\x00" * 64)
    proc = run_cli("train", "--data", str(folder))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "binary version" in proc.stderr


# -- text -----------------------------------------------------------------------------------------


def test_text_csv_trains_a_text_model(tmp_path):
    path = make_text_csv(tmp_path / "reviews.csv")
    dataset = load_dataset(str(path))
    assert dataset.columns["review"].type == "text"
    assert dataset.columns["id"].id_like
    config = DataConfig(source=str(path), target="sentiment", text={"max_vocab": 500})
    summary = resolve(dataset, config)
    assert summary.kind == "text" and summary.text_columns == ["review"]
    assert summary.roles["id"] == "ignore" and summary.roles["stars"] == "ignore"
    prepared = prepare(dataset, config)
    assert prepared.x["train"].dtype == np.int64
    project = Project(data=config)
    apply_suggestions(project, dataset, summary)
    assert project.model.preset == "text"
    assert project.training.lr == 0.01  # the bag's own rate, not the project's default
    project.training.lr = 0.005
    apply_suggestions(project, dataset, summary)
    assert project.training.lr == 0.005  # a rate the user chose stays
    result = TrainingJob(quick(project, epochs=10, lr=1e-2), dataset=dataset,
                         runs_dir=tmp_path).run()
    assert result.metrics["test"]["accuracy"] >= 0.9
    tok = json.loads((result.run_dir / "preprocessing.json").read_text())["tokenizer"]
    assert tok["vocab"][:2] == ["<pad>", "<unk>"]


def test_text_model_exports_to_onnx_with_token_input(tmp_path):
    import onnxruntime as ort

    from ml.export.exporters import export_run, inputs_for_check
    from ml.runs.folder import load_run

    path = make_text_csv(tmp_path / "reviews.csv", n=60)
    project = quick(Project(data=DataConfig(source=str(path), target="sentiment")), epochs=2)
    result = TrainingJob(project, runs_dir=tmp_path).run()
    run = load_run(result.run_dir)
    x, where = inputs_for_check(run)
    report = export_run(run, "onnx", tmp_path / "text.onnx", x, checked_on=where)
    assert report.identical == report.n
    session = ort.InferenceSession(str(tmp_path / "text.onnx"))
    assert session.get_inputs()[0].type == "tensor(int64)"


def test_text_csv_trains_from_the_command_line(tmp_path):
    from tests.conftest import run_cli  # in this process: the command itself runs in e2e/

    path = make_text_csv(tmp_path / "reviews.csv", n=60)
    proc = run_cli("train", "--data", str(path), "--target", "sentiment", "--epochs", "2",
                   "--max-vocab", "300", "--out", str(tmp_path / "run"), "--quiet")
    assert proc.returncode == 0, proc.stderr
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["data"]["text"]["max_vocab"] == 300


# -- tables: missing values, encodings, dates ------------------------------------------------------


def make_table(n=200, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    city = rng.choice([f"city{i}" for i in range(60)], size=n)
    frame = pd.DataFrame({
        "x": x, "colour": rng.choice(["red", "green"], size=n),
        "city": city, "when": pd.date_range("2024-01-01", periods=n, freq="D").astype(str),
        "y": np.where(x > 0, "hi", "lo")})
    frame.loc[::10, "x"] = np.nan
    frame.loc[::7, "colour"] = np.nan
    return frame


def test_missing_strategies_and_encodings(tmp_path):
    path = tmp_path / "t.csv"
    make_table().to_csv(path, index=False)
    dataset = load_dataset(str(path))
    assert dataset.columns["when"].type == "date"
    base = DataConfig(source=str(path), target="y")
    pre = prepare(dataset, base).preprocessor
    enc = {e.name: e for e in pre.columns}
    assert enc["city"].encoding == "embedding"  # 60 values > one-hot limit
    assert enc["colour"].encoding == "onehot"
    assert enc["when"].width == 3
    embedded = pre.embedded_positions()
    prepared = prepare(dataset, base)
    n_train_cities = dataset.frame["city"].iloc[prepared.rows["train"]].nunique()
    assert len(embedded) == 1 and embedded[0][1] == n_train_cities + 1  # + "unknown"
    pos = embedded[0][0]
    assert pre.feature_mean[pos] == 0.0 and pre.feature_std[pos] == 1.0

    dropped = prepare(dataset, DataConfig(source=str(path), target="y", missing={"x": "drop"}))
    assert sum(len(v) for v in dropped.rows.values()) == 180
    const = prepare(dataset, DataConfig(source=str(path), target="y",
                                        missing={"x": "constant", "colour": "most_frequent"},
                                        fill_values={"x": "-5"}))
    enc = {e.name: e for e in const.preprocessor.columns}
    assert enc["x"].fill == -5.0 and enc["colour"].fill_label in ("red", "green")
    mean = prepare(dataset, DataConfig(source=str(path), target="y", missing={"x": "mean"}))
    train = dataset.frame.iloc[mean.rows["train"]]["x"]
    assert {e.name: e for e in mean.preprocessor.columns}["x"].fill == pytest.approx(
        train.mean())
    with pytest.raises(DataError, match="not a number"):
        prepare(dataset, DataConfig(source=str(path), target="y", missing={"x": "constant"},
                                    fill_values={"x": "abc"}))


def test_embedding_model_trains_and_round_trips_through_onnx(tmp_path):
    from ml.export.exporters import export_run, inputs_for_check
    from ml.runs.folder import load_run

    path = tmp_path / "t.csv"
    make_table().to_csv(path, index=False)
    project = quick(Project(data=DataConfig(source=str(path), target="y")), epochs=3)
    result = TrainingJob(project, runs_dir=tmp_path).run()
    spec = json.loads((result.run_dir / "model.json").read_text())
    assert spec["layers"][0]["type"] == "embed_columns"
    run = load_run(result.run_dir)
    x, where = inputs_for_check(run)
    report = export_run(run, "onnx", tmp_path / "m.onnx", x, checked_on=where)
    assert report.identical == report.n


def test_embed_columns_treats_unknown_codes_as_unknown():
    from ml.models.layers import EmbedColumns

    layer = EmbedColumns(3, [[1, 4, 2]])
    x = torch.tensor([[0.5, 2.0, 1.0], [0.5, 99.0, 1.0], [0.5, 0.0, 1.0]])
    out = layer(x)
    assert out.shape == (3, 4)
    torch.testing.assert_close(out[1, 2:], out[2, 2:])  # out of range == code 0


def test_all_missing_column_is_ignored_with_a_sentence(tmp_path):
    path = tmp_path / "t.csv"
    frame = make_table().drop(columns=["city", "when"])
    frame["empty"] = np.nan
    frame.to_csv(path, index=False)
    dataset = load_dataset(str(path))
    summary = resolve(dataset, DataConfig(source=str(path), target="y"))
    assert summary.roles["empty"] == "ignore"
    assert any("empty in every row" in w for w in summary.warnings)
    with pytest.raises(DataError, match="empty in every row"):
        resolve(dataset, DataConfig(source=str(path), target="y",
                                    column_roles={"empty": "feature"}))


def test_single_class_target_is_refused(tmp_path):
    path = tmp_path / "t.csv"
    pd.DataFrame({"a": range(20), "b": np.linspace(0, 1, 20), "y": ["same"] * 20}).to_csv(
        path, index=False)
    with pytest.raises(DataError, match="only one class"):
        resolve(load_dataset(str(path)), DataConfig(source=str(path), target="y"))


# -- health and class weights ---------------------------------------------------------------------


def test_health_finds_imbalance_duplicates_leakage_constants_and_ids(tmp_path):
    rng = np.random.default_rng(0)
    n = 300
    frame = pd.DataFrame({"row_id": np.arange(n), "a": rng.normal(size=n).round(1),
                          "b": rng.normal(size=n), "const": 1.0,
                          "y": np.where(np.arange(n) < 270, "common", "rare")})
    frame = pd.concat([frame, frame.iloc[:40].assign(row_id=np.arange(n, n + 40))])
    path = tmp_path / "h.csv"
    frame.to_csv(path, index=False)
    dataset = load_dataset(str(path))
    findings = {f.key: f for f in check_health(dataset, DataConfig(source=str(path),
                                                                   target="y"))}
    assert findings["imbalance"].action == "class_weights"
    assert findings["constant"].columns == ("const",)
    assert "row_id" in findings["id_like"].message
    assert findings["leakage"].count > 0
    assert all(f.message.endswith(".") for f in findings.values())


def test_balanced_class_weights_match_scikit_learn():
    from sklearn.utils.class_weight import compute_class_weight

    y = np.array([0] * 90 + [1] * 10 + [2] * 30)
    expected = compute_class_weight("balanced", classes=np.arange(3), y=y)
    np.testing.assert_allclose(balanced_class_weights(y, 3), expected)
    assert balanced_class_weights(np.array([0, 0, 1]), 3)[2] == 1.0


def test_class_weights_change_the_training_loss(tmp_path, mixed_csv):
    from ml.training.trainer import Trainer

    x = np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32)
    y = np.array([0] * 35 + [1] * 5)
    losses = {}
    for weights in (None, balanced_class_weights(y, 2)):
        torch.manual_seed(0)
        spec = build_spec(Project().model, (3,), 2, "classification")
        trainer = Trainer(build_model(spec), "classification",
                          TrainingConfig(epochs=1, batch_size=40, seed=0),
                          class_weights=weights)
        losses[weights is None] = trainer.fit(x, y).history[0]["loss"]
    assert losses[True] != pytest.approx(losses[False])


# -- project format ------------------------------------------------------------------------------


def test_version_1_project_is_migrated_keeping_one_hot_categories(tmp_path):
    doc = Project(data=DataConfig(source="sample:iris")).to_dict()
    doc["version"] = 1
    for key in ("missing", "fill_values", "encodings", "read_options", "image_size",
                "image_mode", "augment", "text"):
        doc["data"].pop(key)
    doc["data"]["column_types"] = {"species": "categorical", "petal_length": "numeric"}
    doc["training"].pop("class_weights")
    path = tmp_path / "old.tdproj"
    path.write_text(json.dumps(doc))
    project = Project.load(path)
    assert project.data.legacy_v1 and project.training.class_weights == "none"
    project.save(path)
    assert json.loads(path.read_text())["version"] == PROJECT_VERSION
    assert Project.load(path).data.legacy_v1  # the old defaults stay with the project


def test_version_1_defaults_keep_the_old_model(tmp_path):
    """A v1 project ignored free text and one-hot encoded every category; it still does."""
    rng = np.random.default_rng(0)
    n = 200
    path = tmp_path / "t.csv"
    pd.DataFrame({"age": rng.integers(18, 80, n),
                  "shop": rng.choice([f"s{i}" for i in range(40)], n),
                  "comment": [f"customer said {w} things about visit {i}"
                              for i, w in zip(range(n), rng.choice(["nice", "bad"], n))],
                  "churn": rng.choice(["yes", "no"], n)}).to_csv(path, index=False)
    dataset = load_dataset(str(path))
    legacy = DataConfig(source=str(path), target="churn", legacy_v1=True)
    summary = resolve(dataset, legacy)
    assert summary.kind == "tabular" and summary.roles["comment"] == "ignore"
    pre = prepare(dataset, legacy).preprocessor
    assert {e.name: e.encoding for e in pre.columns}["shop"] == "onehot"
    modern = resolve(dataset, DataConfig(source=str(path), target="churn"))
    assert modern.kind == "text"


def test_dates_in_any_common_format_and_time_zone_are_encoded(tmp_path):
    n = 120
    days = pd.date_range("2021-03-01", periods=n, freq="D")
    berlin = pd.date_range("2021-03-20", periods=n, freq="D", tz="Europe/Berlin")
    frame = pd.DataFrame({"us": days.strftime("%m/%d/%Y"), "eu": days.strftime("%d.%m.%Y"),
                          "tz": [d.isoformat() for d in berlin], "y": ["a", "b"] * (n // 2)})
    frame.loc[5, "tz"] = "unknown"
    path = tmp_path / "d.csv"
    frame.to_csv(path, index=False)
    dataset = load_dataset(str(path))
    config = DataConfig(source=str(path), target="y",
                        column_types={"us": "date", "eu": "date", "tz": "date"},
                        missing={"eu": "constant"}, fill_values={"eu": "2021-01-31"})
    prepared = prepare(dataset, config)
    x = prepared.x["train"]
    assert np.isfinite(x).all() and (x.std(axis=0)[[0, 3, 6]] > 10).all()  # days vary
    compact = DataConfig(source=str(path), target="y", column_types={"eu": "date"},
                         missing={"eu": "constant"}, fill_values={"eu": "20200101"})
    enc = {e.name: e for e in prepare(dataset, compact).preprocessor.columns}
    assert enc["eu"].fill == (pd.Timestamp("2020-01-01") - pd.Timestamp("1970-01-01")).days
    with pytest.raises(DataError, match="not a date"):
        prepare(dataset, DataConfig(source=str(path), target="y", column_types={"eu": "date"},
                                    missing={"eu": "constant"}, fill_values={"eu": "soon"}))


def test_blank_split_cells_count_as_training_rows(tmp_path):
    folder = make_image_folder(tmp_path / "imgs", n=12)
    files = sorted(folder.rglob("*.png"))
    split = ["test" if i % 4 == 0 else "" if i % 4 == 1 else "train" for i in range(len(files))]
    pd.DataFrame({"file": [str(f) for f in files], "label": [f.parent.name for f in files],
                  "split": split}).to_csv(tmp_path / "list.csv", index=False)
    dataset = load_dataset(str(tmp_path / "list.csv"))
    prepared = prepare(dataset, DataConfig(source=str(tmp_path / "list.csv"), image_size=8))
    assert sum(len(v) for v in prepared.rows.values()) == len(files)
    assert len(prepared.rows["test"]) == split.count("test")
