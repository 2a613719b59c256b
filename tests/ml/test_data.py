import numpy as np
import pandas as pd
import pytest

from ml.data import list_samples, load_dataset, prepare, resolve
from ml.data.preprocessing import Preprocessor
from ml.data.split import split_indices, split_sizes
from ml.data.tabular import describe_column, detect_task, read_table
from ml.errors import DataError, TrainDeskError
from ml.runs.project import DataConfig, SplitConfig


# -- reading ------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, sep", [
    ("a,b,c\n1,2,x\n3,4,y\n", ","),
    ("a;b;c\n1;2;x\n3;4;y\n", ";"),
    ("a\tb\tc\n1\t2\tx\n3\t4\ty\n", "\t"),
    ("a|b|c\n1|2|x\n3|4|y\n", "|"),
])
def test_delimiters_are_sniffed(tmp_path, text, sep):
    path = tmp_path / "t.csv"
    path.write_text(text)
    df = read_table(path)
    assert list(df.columns) == ["a", "b", "c"]
    assert df["b"].tolist() == [2, 4]


def test_latin1_and_bom_files_are_read(tmp_path):
    latin = tmp_path / "latin.csv"
    latin.write_bytes("name,city\nJosé,Köln\nRenée,Zürich\n".encode("cp1252"))
    assert read_table(latin)["city"].tolist() == ["Köln", "Zürich"]
    bom = tmp_path / "bom.csv"
    bom.write_bytes("\ufeffname,n\nx,1\ny,2\n".encode("utf-8"))
    assert list(read_table(bom).columns) == ["name", "n"]


@pytest.mark.parametrize("name, content, message", [
    ("missing.csv", None, "not found"),
    ("empty.csv", b"", "empty"),
    ("spaces.csv", b"   \n\n", "empty"),
    ("binary.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00", "binary"),
    ("one.csv", b"only\n1\n2\n", "only one column"),
    ("header.csv", b"a,b,c\n", "no data rows"),
    ("ragged.csv", b"a,b\n1,2\n3,4,5,6\n", "not a consistent table"),
    ("sheet.xlsx", b"PK\x03\x04", "Excel workbook"),
    ("notes.docx", b"PK\x03\x04", "not a table file"),
])
def test_bad_files_raise_data_errors(tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        read_table(path)


def test_folder_is_refused(tmp_path):
    with pytest.raises(DataError, match="folder"):
        read_table(tmp_path)


# -- describing ---------------------------------------------------------------------------------
def test_column_types_are_inferred():
    n = 200
    assert describe_column(pd.Series(np.arange(n) * 1.5, name="x")).type == "numeric"
    assert describe_column(pd.Series(["yes", "no"] * 100, name="b")).type == "boolean"
    assert describe_column(pd.Series(["a", "b", "c", "d"] * 50, name="c")).type == "categorical"
    texts = pd.Series([f"free text number {i}" for i in range(n)], name="t")
    assert describe_column(texts).type == "text"
    mostly = pd.Series([str(i) for i in range(n - 2)] + ["n/a", "?"], name="m")
    info = describe_column(mostly)
    assert info.type == "numeric" and info.n_invalid == 2


def test_task_detection():
    assert detect_task(pd.Series(["cat", "dog"] * 10)) == "classification"
    assert detect_task(pd.Series([0, 1, 2] * 30)) == "classification"
    assert detect_task(pd.Series(np.linspace(0, 1, 100))) == "regression"
    assert detect_task(pd.Series(np.arange(500))) == "regression"


# -- resolving the user's choices ---------------------------------------------------------------
def test_samples_resolve_to_their_tasks():
    tasks = {s.name: s.task for s in list_samples()}
    assert set(tasks) >= {"digits", "iris", "wine", "breast_cancer", "diabetes"}
    for name, task in tasks.items():
        summary = resolve(load_dataset(f"sample:{name}"), DataConfig(source=f"sample:{name}"))
        assert summary.task == task
    digits = resolve(load_dataset("sample:digits"), DataConfig(source="sample:digits"))
    assert digits.image_shape == (1, 8, 8)
    assert len(digits.class_counts) == 10


def test_unknown_target_is_reported(mixed_csv):
    with pytest.raises(DataError, match="no column 'price'"):
        resolve(load_dataset(str(mixed_csv)), DataConfig(target="price"))


def test_single_class_target_is_reported(tmp_path):
    path = tmp_path / "one.csv"
    pd.DataFrame({"x": range(20), "y": ["a"] * 20}).to_csv(path, index=False)
    with pytest.raises(DataError, match="only one class"):
        resolve(load_dataset(str(path)), DataConfig(target="y"))


def test_text_target_cannot_be_regressed(mixed_csv):
    with pytest.raises(DataError, match="holds text"):
        resolve(load_dataset(str(mixed_csv)), DataConfig(target="label", task="regression"))


def test_text_where_numbers_are_expected(mixed_csv):
    dataset = load_dataset(str(mixed_csv))
    with pytest.raises(DataError, match="'colour' is set to numeric"):
        resolve(dataset, DataConfig(target="label", column_types={"colour": "numeric"}))


def test_identifier_like_target_is_refused(tmp_path):
    path = tmp_path / "ids.csv"
    pd.DataFrame({"x": range(100), "code": [f"C{i}" for i in range(100)]}).to_csv(path,
                                                                                 index=False)
    with pytest.raises(DataError, match="identifier"):
        resolve(load_dataset(str(path)), DataConfig(target="code", task="classification"))


def test_bad_split_settings_are_reported():
    with pytest.raises(TrainDeskError, match="at least 20%"):
        resolve(load_dataset("sample:iris"),
                DataConfig(split=SplitConfig(val_fraction=0.45, test_fraction=0.45)))


def test_missing_target_rows_are_dropped_with_a_warning(mixed_csv, tmp_path):
    df = pd.read_csv(mixed_csv)
    df.loc[[0, 1, 2], "label"] = np.nan
    path = tmp_path / "gaps.csv"
    df.to_csv(path, index=False)
    summary = resolve(load_dataset(str(path)), DataConfig(target="label"))
    assert summary.n_rows == len(df) - 3 and summary.n_dropped == 3
    assert any("no target value" in w for w in summary.warnings)


# -- splitting ----------------------------------------------------------------------------------
def test_split_is_stratified_disjoint_and_reproducible():
    labels = np.array([0] * 80 + [1] * 20)
    a = split_indices(100, 0.2, 0.2, seed=3, labels=labels)
    b = split_indices(100, 0.2, 0.2, seed=3, labels=labels)
    c = split_indices(100, 0.2, 0.2, seed=4, labels=labels)
    for k in a:
        assert np.array_equal(a[k], b[k])
    assert not np.array_equal(a["test"], c["test"])
    together = np.concatenate(list(a.values()))
    assert sorted(together.tolist()) == list(range(100))
    for part in ("val", "test"):
        assert np.sum(labels[a[part]] == 1) == 4  # 20% of each class


def test_split_sizes_match_the_split():
    labels = np.array([0] * 37 + [1] * 11 + [2] * 2)
    parts = split_indices(50, 0.15, 0.2, seed=0, labels=labels)
    sizes = split_sizes([37, 11, 2], 0.15, 0.2, stratified=True)
    assert sizes == {k: len(v) for k, v in parts.items()}
    assert split_sizes([50], 0.15, 0.2, False) == {
        k: len(v) for k, v in split_indices(50, 0.15, 0.2, seed=0).items()}


def test_too_few_rows_for_a_split():
    with pytest.raises(DataError, match="too few rows"):
        split_indices(2, 0.15, 0.15, seed=0)


# -- preprocessing ------------------------------------------------------------------------------
def test_preprocessing_is_fitted_on_training_rows_only(mixed_csv):
    dataset = load_dataset(str(mixed_csv))
    config = DataConfig(target="label", column_roles={"id": "ignore"})
    prepared = prepare(dataset, config)
    pre = prepared.preprocessor
    train = dataset.frame.iloc[prepared.rows["train"]]
    size = next(c for c in pre.columns if c.name == "size")
    assert size.fill == pytest.approx(train["size"].median())
    x_train = prepared.x["train"]
    assert np.allclose(pre.feature_mean, x_train.mean(axis=0), atol=1e-5)
    # size has missing training cells, so it gains a "was missing" feature; member has none.
    assert pre.feature_names() == ["size", "size (missing)", "colour=blue", "colour=green",
                                   "colour=red", "member"]
    assert size.indicator and not next(c for c in pre.columns if c.name == "member").indicator
    assert np.array_equal(x_train[:, 1], train["size"].isna().to_numpy(np.float32))
    assert pre.class_names == ["high", "low"]
    assert not np.isnan(x_train).any()


def test_unseen_categories_encode_as_zeros_and_json_round_trips(mixed_csv):
    prepared = prepare(load_dataset(str(mixed_csv)),
                       DataConfig(target="label", column_roles={"id": "ignore"}))
    pre = Preprocessor.from_dict(prepared.preprocessor.to_dict())
    new = pd.DataFrame({"size": [10.0, None], "colour": ["purple", "red"],
                        "member": ["yes", "maybe"]})
    x = pre.transform_features(new)
    assert x[0, 2:5].tolist() == [0, 0, 0]
    assert x[1, 2:5].tolist() == [0, 0, 1]
    assert x[1, 0] == pytest.approx(pre.columns[0].fill)
    assert x[:, 1].tolist() == [0.0, 1.0]  # size was missing in the second row
    with pytest.raises(DataError, match="no column 'member'"):
        pre.transform_features(new.drop(columns="member"))


def test_regression_target_is_standardised_and_reported_in_units(regression_csv):
    prepared = prepare(load_dataset(str(regression_csv)), DataConfig(target="price"))
    pre = prepared.preprocessor
    y = prepared.y["train"]
    assert abs(float(y.mean())) < 1e-4 and abs(float(y.std()) - 1) < 1e-3
    raw = load_dataset(str(regression_csv)).frame["price"].to_numpy()[prepared.rows["train"]]
    assert np.allclose(pre.inverse_target(y), raw, atol=1e-3)


def test_image_samples_keep_their_shape_and_channel_statistics():
    prepared = prepare(load_dataset("sample:digits"), DataConfig(source="sample:digits"))
    assert prepared.x["train"].shape[1:] == (1, 8, 8)
    assert len(prepared.preprocessor.feature_mean) == 1  # per channel


def test_headers_that_clash_after_trimming_are_made_unique(tmp_path):
    path = tmp_path / "dup.csv"
    path.write_text("a,a ,y\n1,2,x\n3,4,y\n")
    assert list(read_table(path).columns) == ["a", "a.1", "y"]


def test_infinite_values_count_as_not_numbers(tmp_path):
    path = tmp_path / "inf.csv"
    rows = [f"{i},{'inf' if i == 5 else '1e400' if i == 9 else i * 0.5},{i % 2}"
            for i in range(60)]
    path.write_text("id,x,y\n" + "\n".join(rows) + "\n")
    dataset = load_dataset(str(path))
    summary = resolve(dataset, DataConfig(target="y"))
    assert any("not numbers" in w for w in summary.warnings)
    prepared = prepare(dataset, DataConfig(target="y"))
    assert np.isfinite(prepared.x["train"]).all()


def test_a_numeric_target_with_stray_text_keeps_numeric_classes(tmp_path):
    path = tmp_path / "t.csv"
    pd.DataFrame({"x": range(100), "y": ["0", "1", "1.0", "0.0"] * 24 + ["?"] * 4}).to_csv(
        path, index=False)
    dataset = load_dataset(str(path))
    summary = resolve(dataset, DataConfig(target="y"))
    assert summary.class_counts == {"0": 48, "1": 48}
    pre = prepare(dataset, DataConfig(target="y")).preprocessor
    assert pre.class_names == ["0", "1"]
    again = Preprocessor.from_dict(pre.to_dict())
    assert again.transform_target(pd.DataFrame({"y": [1.0, 0, "1"]})).tolist() == [1, 0, 1]


def test_one_column_is_enough_for_data_to_predict_on(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("x\n1\n2\n")
    assert read_table(path, min_columns=1)["x"].tolist() == [1, 2]
    with pytest.raises(DataError, match="only one column"):
        read_table(path)
