"""Try it and batch prediction: one input at a time gives what ``main.py predict`` gives."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from ml.errors import DataError
from ml.evaluation.evaluate import predict_frame
from ml.evaluation.tryit import CanvasStyle, Predictor, frame_drawing, predict_path
from ml.jobs.training import TrainingJob
from ml.runs.folder import load_run
from ml.runs.project import DataConfig, Project, TrainingConfig


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("digits") / "run"
    project = Project(data=DataConfig(source="sample:digits"),
                      training=TrainingConfig(epochs=3, lr=0.01))
    return load_run(TrainingJob(project, run_dir=out).run().run_dir)


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory):
    """An image model trained on a folder of 12x12 RGB files."""
    root = tmp_path_factory.mktemp("shapes")
    rng = np.random.default_rng(0)
    for label, colour in (("red", (220, 30, 30)), ("blue", (30, 30, 220))):
        (root / "data" / label).mkdir(parents=True)
        for i in range(12):
            pixels = np.clip(np.array(colour) + rng.normal(0, 20, (12, 12, 3)), 0, 255)
            Image.fromarray(pixels.astype(np.uint8)).save(root / "data" / label / f"{i}.png")
    project = Project(data=DataConfig(source=str(root / "data")),
                      training=TrainingConfig(epochs=2, batch_size=8))
    run = load_run(TrainingJob(project, run_dir=root / "run").run().run_dir)
    return run, root / "data"


def test_a_table_row_predicts_like_the_csv_path(tmp_path):
    project = Project(data=DataConfig(source="sample:iris"), training=TrainingConfig(epochs=2))
    run = load_run(TrainingJob(project, run_dir=tmp_path / "run").run().run_dir)
    predictor = Predictor(run)
    fields = predictor.form_fields()
    assert [f.name for f in fields] == [e.name for e in run.preprocessor.columns]
    assert all(f.type == "numeric" for f in fields)
    row = {"sepal_length": 6.1, "sepal_width": 2.8, "petal_length": 4.7, "petal_width": 1.2}
    one = predictor.predict_row(row)
    batch = predict_frame(run.load_model(), run.preprocessor, pd.DataFrame([row]))
    assert one.label == batch["prediction"][0]
    for name, p in one.probabilities:
        assert p == pytest.approx(float(batch[f"probability_{name}"][0]), abs=1e-6)
    assert sum(p for _, p in one.probabilities) == pytest.approx(1.0, abs=1e-5)
    assert one.ranked(1)[0][0] == one.label


def test_an_image_in_memory_equals_the_same_image_as_a_file(folder_run, tmp_path):
    run, data = folder_run
    predictor = Predictor(run)
    file = next((data / "red").glob("*.png"))
    with Image.open(file) as img:
        in_memory = predictor.image_input(img)
    assert in_memory.shape == (1, 3, 12, 12) and in_memory.dtype == np.float32
    np.testing.assert_array_equal(in_memory, predictor.image_input(file))
    assert predictor.predict_image(file).label in ("red", "blue")


def test_batch_prediction_of_a_folder_lists_files_and_probabilities(folder_run, tmp_path):
    run, data = folder_run
    (data / "red" / "broken.png").write_bytes(b"not an image")
    try:
        out = predict_path(Predictor(run), data)
    finally:
        (data / "red" / "broken.png").unlink()
    assert list(out.columns[:2]) == ["file", "prediction"]
    assert {"probability_red", "probability_blue", "error"} <= set(out.columns)
    good = out[out["error"].isna()]
    assert len(good) == 24 and good["file"].str.startswith(("red/", "blue/")).all()
    assert (good["prediction"] == good["file"].str.split("/").str[0]).mean() > 0.8
    assert out.loc[out["file"] == "red/broken.png", "prediction"].isna().all()


def test_a_drawing_on_the_canvas_is_framed_like_the_digits(digits_run):
    predictor = Predictor(digits_run)
    assert predictor.kind == "image" and predictor.image_size == (8, 8)
    style = predictor.canvas_style()
    assert style.light_ink  # scikit-learn's digits: bright ink on a dark background
    gray = np.zeros((200, 200), np.uint8)
    gray[20:60, 150:190] = 255  # a blob in a corner ...
    framed = np.asarray(frame_drawing(gray, CanvasStyle(True, 0.5, (8, 8))))
    rows, cols = np.nonzero(framed)
    assert abs(rows.mean() - 100) < 3 and abs(cols.mean() - 100) < 3  # ... ends up centred
    assert rows.max() - rows.min() + 1 == pytest.approx(100, abs=2)  # at half the size
    x = predictor.image_input(frame_drawing(gray, style))
    assert x.shape == (1, 1, 8, 8) and x.min() >= 0 and x.max() <= 16  # the digits' 0..16


def test_pixel_column_images_predict_like_main_py_predict(digits_run, tmp_path):
    from tests.conftest import run_cli

    predictor = Predictor(digits_run)
    rng = np.random.default_rng(3)
    image = Image.fromarray(rng.integers(0, 256, (40, 40), dtype=np.uint8))
    path = tmp_path / "digit.png"
    image.save(path)
    one = predictor.predict_image(image)
    proc = run_cli("predict", str(digits_run.path), str(path), "--out", str(tmp_path / "p.csv"))
    assert proc.returncode == 0, proc.stderr
    cli = pd.read_csv(tmp_path / "p.csv")
    assert cli["file"][0].endswith("digit.png") and str(cli["prediction"][0]) == one.label
    for name, p in one.probabilities:
        assert p == pytest.approx(float(cli[f"probability_{name}"][0]), abs=1e-6)


def test_images_given_to_a_table_model_are_refused(tmp_path):
    project = Project(data=DataConfig(source="sample:iris"), training=TrainingConfig(epochs=1))
    run = load_run(TrainingJob(project, run_dir=tmp_path / "run").run().run_dir)
    path = tmp_path / "x.png"
    Image.new("RGB", (4, 4)).save(path)
    with pytest.raises(DataError, match="not images"):
        predict_path(Predictor(run), path)
    with pytest.raises(DataError, match="does not exist"):
        predict_path(Predictor(run), tmp_path / "nothing.csv")


def test_a_regression_row_gets_its_value_in_the_target_units(tmp_path):
    project = Project(data=DataConfig(source="sample:diabetes"),
                      training=TrainingConfig(epochs=2))
    run = load_run(TrainingJob(project, run_dir=tmp_path / "run").run().run_dir)
    predictor = Predictor(run)
    from ml.data.samples import load_sample_frame

    fields = predictor.form_fields(load_sample_frame("diabetes"))
    assert all(f.low is not None and f.low <= f.default <= f.high for f in fields)
    row = {f.name: f.default for f in fields}
    one = predictor.predict_row(row)
    batch = predict_frame(run.load_model(), run.preprocessor, pd.DataFrame([row]))
    assert one.task == "regression" and one.probabilities == []
    assert one.value == pytest.approx(float(batch["prediction"][0]), rel=1e-6)
    assert one.label == f"{one.value:.4g}"


def test_predict_on_the_command_line_explains_bad_input_in_one_line(digits_run, tmp_path):
    from tests.conftest import run_cli

    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images here")
    for target, words in ((empty, "holds no image files"), (tmp_path / "gone.csv", "not exist")):
        proc = run_cli("predict", str(digits_run.path), str(target))
        assert proc.returncode == 2 and words in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_a_close_answer_is_worded_as_not_sure():
    from ml.evaluation.tryit import Prediction, answer_text, is_unsure

    assert answer_text("flower", [("flower", 0.506), ("china", 0.494)]) == (
        "Not sure: flower 51%, china 49%")
    assert answer_text("flower", [("flower", 0.97), ("china", 0.03)]) == "flower  ·  97.0%"
    # Below one half it is more likely wrong than right, however far ahead of the rest.
    assert is_unsure("a", [("a", 0.45), ("b", 0.2), ("c", 0.2), ("d", 0.15)])
    assert not is_unsure("a", [("a", 0.75), ("b", 0.25)])  # wins by 50 points
    assert is_unsure("a", [("a", 0.58), ("b", 0.42)])  # wins by 16 points: a near coin toss
    # With a decision threshold the answer can be the less likely class: it comes first.
    assert answer_text("yes", [("no", 0.6), ("yes", 0.4)]) == "Not sure: yes 40%, no 60%"
    one = Prediction("classification", "flower", 0.51, [("flower", 0.51), ("china", 0.49)])
    assert one.unsure and one.text().startswith("Not sure: flower 51%")
    assert Prediction("regression", "3.2", 3.2).text() == "Predicted: 3.2"
    assert not Prediction("regression", "3.2", 3.2).unsure


def test_small_gray_images_are_drawn_and_the_rest_are_photos(digits_run, folder_run):
    assert Predictor(digits_run).input_style == "drawing"  # 8x8 gray digits
    assert Predictor(folder_run[0]).input_style == "photo"  # colour files


def test_whole_number_columns_get_whole_number_fields(tmp_path):
    from ml.data.samples import load_sample_frame

    project = Project(data=DataConfig(source="sample:diabetes"),
                      training=TrainingConfig(epochs=1))
    run = load_run(TrainingJob(project, run_dir=tmp_path / "run").run().run_dir)
    fields = {f.name: f for f in Predictor(run).form_fields(load_sample_frame("diabetes"))}
    assert fields["sex"].integer and fields["age"].integer
    assert float(fields["age"].default).is_integer()
    assert not fields["bmi"].integer and not fields["s5_ltg"].integer
    assert not any(f.integer for f in Predictor(run).form_fields())  # no data seen: no claim


def test_predict_says_one_answer_in_words_on_the_command_line(folder_run, tmp_path):
    from tests.conftest import run_cli

    run, data = folder_run
    file = next((data / "red").glob("*.png"))
    proc = run_cli("predict", str(run.path), str(file))
    assert proc.returncode == 0, proc.stderr
    said = Predictor(run).predict_image(file).text()
    assert proc.stderr.strip().splitlines()[-1] == said
    assert said.startswith(("Not sure: ", "red", "blue"))
