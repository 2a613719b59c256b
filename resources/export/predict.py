#!/usr/bin/env python3
"""Predict with a model exported by TrainDesk - no TrainDesk needed.

    python predict.py INPUT [--out predictions.csv] [--threshold P]

INPUT is what the model was trained on, raw:

* a table model: a CSV file with the feature columns (other columns are copied through);
* an image model: an image file, or a folder of images (searched recursively);
* a text model: a CSV file with the text column(s), or a plain .txt file (one text per line).

The output is a CSV: the input's rows (for images, a ``file`` column) with a ``prediction``
column and, for classification, one ``probability_<class>`` column per class. A two-class model
says its second class from the probability in ``output.decision.threshold`` of preprocessing.json
on (the threshold chosen in TrainDesk; ``--threshold P`` overrides it). It needs only
``onnxruntime``, ``numpy``, for images ``Pillow``, and for a pretrained text model
``tokenizers`` (see requirements.txt). The encoding
below mirrors TrainDesk's own, step by step, using ``preprocessing.json`` beside this file.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import math
import re
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
#: Cells pandas (and so TrainDesk) reads as missing.
MISSING = {"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
           "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"}
TRUE, FALSE = {"true", "yes", "y", "t", "1"}, {"false", "no", "n", "f", "0"}
TOKEN_RE = re.compile(r"\w+(?:'\w+)?|[^\w\s]")
UNK_ID = 1
DATE_FORMATS = {"ISO8601": None, "%d/%m/%Y": "%d/%m/%Y", "%m/%d/%Y": "%m/%d/%Y",
                "%d.%m.%Y": "%d.%m.%Y", "%Y/%m/%d": "%Y/%m/%d", "%d-%m-%Y": "%d-%m-%Y",
                "%m-%d-%Y": "%m-%d-%Y", "%Y%m%d": "%Y%m%d"}


def fail(message: str) -> None:
    sys.stderr.write(f"error: {message}\n")
    sys.exit(2)


# -- tables -------------------------------------------------------------------------------------
def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="", encoding="utf-8-sig") as fh:
        sample = fh.read(65536)
        fh.seek(0)
        try:
            dialect = csv.Sniffer().sniff(sample, delimiters=",;\t|")
        except csv.Error:
            dialect = csv.excel
        reader = csv.DictReader(fh, dialect=dialect)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def number(cell) -> float:
    """A cell as a finite float, else NaN (TrainDesk's ``to_numeric``)."""
    if cell is None:
        return math.nan
    text = str(cell).strip()
    if text in MISSING:
        return math.nan
    try:
        value = float(text)
    except ValueError:
        return math.nan
    return value if math.isfinite(value) else math.nan


def boolean(cell) -> float:
    text = "" if cell is None else str(cell).strip().lower()
    if text in TRUE:
        return 1.0
    if text in FALSE:
        return 0.0
    value = number(cell)
    return value if value in (0.0, 1.0) else math.nan


def label(cell) -> str | None:
    """A category as TrainDesk writes it: whole-number floats without ``.0``; None if missing."""
    if cell is None:
        return None
    text = str(cell)
    if text.strip() in MISSING:
        return None
    try:
        value = float(text)
        if math.isfinite(value) and value.is_integer() and re.fullmatch(r"\s*[-+]?[\d.eE+-]+\s*",
                                                                          text):
            return str(int(value))
    except ValueError:
        pass
    return text.strip() or None


def parse_date(cell, fmt: str) -> dt.datetime | None:
    text = "" if cell is None else str(cell).strip()
    if text in MISSING:
        return None
    candidates = [DATE_FORMATS.get(fmt, fmt)] if fmt in DATE_FORMATS or "%" in fmt else [None]
    if fmt.startswith("mixed"):
        first = ("%d/%m/%Y", "%d.%m.%Y") if fmt == "mixed-dayfirst" else ("%m/%d/%Y",)
        candidates = [None, *first, *[f for f in DATE_FORMATS.values() if f]]
    for pattern in candidates:
        try:
            if pattern is None:
                value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
            else:
                value = dt.datetime.strptime(text, pattern)
        except ValueError:
            continue
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value
    return None


def encode_column(cells: list, enc: dict) -> np.ndarray:
    if enc["type"] in ("numeric", "boolean", "date"):
        values, missing = filled(cells, enc)
        if enc.get("indicator"):  # version 3: a "was missing" feature after the value
            values = [row + [float(gone)] for row, gone in zip(values, missing)]
        return np.array(values, np.float32).reshape(len(cells), -1)
    return encode_category(cells, enc)


def filled(cells: list, enc: dict) -> tuple[list[list[float]], list[bool]]:
    """Number, yes/no or date cells as rows of floats with missing ones filled, and which were
    missing."""
    fill = float(enc["fill"])
    if enc["type"] != "date":
        read = number if enc["type"] == "numeric" else boolean
        values = [read(cell) for cell in cells]
        return [[fill if math.isnan(v) else v] for v in values], [math.isnan(v) for v in values]
    epoch = dt.datetime(1970, 1, 1)
    out, missing = [], []
    for cell in cells:
        when = parse_date(cell, enc.get("date_format") or "ISO8601")
        missing.append(when is None)
        if when is None:
            fallback = epoch + dt.timedelta(days=fill)
            out.append([fill, fallback.month, fallback.weekday()])
        else:
            out.append([(when - epoch).total_seconds() / 86400.0, when.month, when.weekday()])
    return out, missing


def encode_category(cells: list, enc: dict) -> np.ndarray:
    categories = enc["categories"]
    labels = [label(c) for c in cells]
    if enc.get("fill_label") is not None:
        labels = [enc["fill_label"] if lab is None else lab for lab in labels]
    if enc.get("encoding") == "embedding":
        index = {cat: i + 1 for i, cat in enumerate(categories)}
        return np.array([[index.get(lab, 0)] for lab in labels], np.float32)
    onehot = np.zeros((len(cells), len(categories)), np.float32)
    index = {cat: j for j, cat in enumerate(categories)}
    for i, lab in enumerate(labels):
        if lab in index:
            onehot[i, index[lab]] = 1.0
    return onehot


def encode_table(rows: list[dict], pre: dict) -> np.ndarray:
    missing = [e["name"] for e in pre["columns"] if rows and e["name"] not in rows[0]]
    if missing:
        fail(f"the input has no column(s) {', '.join(missing)}; the model needs "
             f"{', '.join(e['name'] for e in pre['columns'])}.")
    blocks = [encode_column([r.get(e["name"]) for r in rows], e) for e in pre["columns"]]
    x = np.concatenate(blocks, axis=1) if blocks else np.zeros((len(rows), 0), np.float32)
    return np.ascontiguousarray(x.reshape((len(rows), *pre["input_shape"])), np.float32)


# -- texts --------------------------------------------------------------------------------------
def encode_texts(texts: list[str], pre: dict) -> np.ndarray:
    tok = pre["tokenizer"]
    if tok.get("type") == "pretrained":
        return encode_word_pieces(texts, tok)
    lookup = {word: i for i, word in enumerate(tok["vocab"])}
    length = int(tok["max_length"])
    lowercase = bool(tok.get("lowercase", True))
    out = np.zeros((len(texts), length), np.int64)
    for i, text in enumerate(texts):
        words = TOKEN_RE.findall(text.lower() if lowercase else text)[:length]
        out[i, :len(words)] = [lookup.get(w, UNK_ID) for w in words]
    return out


def encode_word_pieces(texts: list[str], tok: dict) -> np.ndarray:
    """A pretrained text model's ids: its own tokenizer (tokenizer.json beside this file, run by
    the ``tokenizers`` library), ``[CLS] pieces [SEP]`` cut and padded to ``max_length``."""
    try:
        from tokenizers import Tokenizer
    except ImportError:
        fail("this text model needs the tokenizers package: pip install -r requirements.txt")
    if "json" in tok:  # an export's own preprocessing.json keeps the tokenizer inside
        tokenizer = Tokenizer.from_str(tok["json"])
    else:
        tokenizer = Tokenizer.from_file(str(HERE / tok.get("file", "tokenizer.json")))
    length = int(tok["max_length"])
    tokenizer.enable_truncation(length)
    tokenizer.enable_padding(length=length, pad_id=int(tok.get("pad_id", 0)))
    out = np.zeros((len(texts), length), np.int64)
    for start in range(0, len(texts), 1024):
        batch = tokenizer.encode_batch(texts[start:start + 1024])
        out[start:start + len(batch)] = [e.ids for e in batch]
    return out


def joined_text(row: dict, columns: list[str]) -> str:
    parts = []
    for name in columns:
        cell = row.get(name)
        if cell is not None and str(cell).strip() not in MISSING:
            parts.append(str(cell))
    return " ".join(parts)


# -- images -------------------------------------------------------------------------------------
def decode_image(path: Path, pre: dict) -> np.ndarray:
    from PIL import Image, ImageOps

    shape = pre["input_shape"]
    height, width = int(shape[-2]), int(shape[-1])
    mode = pre.get("image", {}).get("mode") or ("L" if int(shape[0]) == 1 else "RGB")
    img = Image.open(path)
    if img.format == "JPEG":
        w, h = (width, height) if _orientation(img) < 5 else (height, width)
        img.draft("L" if mode == "L" else None, (w, h))
    img.load()
    if _orientation(img) != 1:
        img = ImageOps.exif_transpose(img)
    img = _flatten(img)
    if img.size != (width, height):
        img = img.resize((width, height), Image.Resampling.BILINEAR, reducing_gap=3.0)
    if img.mode in ("LA", "RGBA"):
        colour = img.convert("L" if img.mode == "LA" else "RGB")
        background = Image.new(colour.mode, img.size, 255 if colour.mode == "L" else (255,) * 3)
        background.paste(colour, mask=img.getchannel("A"))
        img = background
    if img.mode != mode:
        img = img.convert(mode)
    pixels = np.array(img)
    pixels = pixels[:, :, None] if pixels.ndim == 2 else pixels
    chw = pixels.transpose(2, 0, 1).astype(np.float32) / np.float32(255.0)
    if not pre.get("image"):  # pixel columns (e.g. scikit-learn's digits): their own range
        low, high = pre.get("pixel_range", [0.0, 255.0])
        chw = (low + chw * np.float32(high - low)).astype(np.float32)
    return chw


def _orientation(img) -> int:
    try:
        value = int(img.getexif().get(0x0112, 1))
    except Exception:  # noqa: BLE001 - damaged EXIF: as stored
        return 1
    return value if 1 <= value <= 8 else 1


def _flatten(img):
    from PIL import Image

    mode = img.mode
    if mode in ("L", "LA", "RGB", "RGBA"):
        return img
    if mode.startswith("I") or mode == "F":
        values = np.asarray(img)
        if values.dtype.kind == "u" and values.dtype.itemsize == 2:
            data = (values.astype(np.uint32) * 255 + 32767) // 65535
            return Image.fromarray(data.astype(np.uint8))
        data = values.astype(np.float64)
        finite = np.isfinite(data)
        if not finite.any():
            return Image.fromarray(np.zeros(values.shape, np.uint8))
        lo, hi = float(data[finite].min()), float(data[finite].max())
        if values.dtype.kind == "f" and lo >= 0.0 and hi <= 1.0:
            scale, offset = 255.0, 0.0
        elif lo >= 0.0 and hi <= 255.0:
            scale, offset = 1.0, 0.0
        elif lo >= 0.0 and hi <= 65535.0:
            scale, offset = 255.0 / 65535.0, 0.0
        else:
            scale, offset = (255.0 / (hi - lo) if hi > lo else 0.0), lo
        data = (np.where(finite, data, offset) - offset) * scale
        return Image.fromarray(np.clip(np.rint(data), 0, 255).astype(np.uint8))
    if mode == "1":
        return img.convert("L")
    if mode in ("P", "PA"):
        return img.convert("RGBA" if mode == "PA" or "transparency" in img.info else "RGB")
    if mode == "La":
        return img.convert("LA")
    if mode in ("RGBa", "RGBX"):
        return img.convert("RGBA" if mode == "RGBa" else "RGB")
    return img.convert("RGB")


def image_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in
                   IMAGE_SUFFIXES and not any(part.startswith(".")
                                              for part in p.relative_to(path).parts))
    if not files:
        fail(f"{path.name} holds no image files.")
    return files


# -- the model ----------------------------------------------------------------------------------
def run_model(x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(HERE / "model.onnx"), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    outs = [session.run(None, {name: x[i:i + 1024]})[0] for i in range(0, len(x), 1024)]
    return np.concatenate(outs) if outs else np.zeros((0, 1), np.float32)


def decided(out: np.ndarray, description: dict, threshold: float | None = None) -> np.ndarray:
    """Class indices: two classes at the decision threshold (TrainDesk's rule: the second class
    from a probability of *threshold* on), more classes the most probable."""
    if out.shape[1] == 2:
        if threshold is None:
            threshold = (description["output"].get("decision") or {}).get("threshold", 0.5)
        return (out[:, 1] >= threshold).astype(np.int64)
    return out.argmax(axis=1)


def threshold_arg(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 < value < 1.0:
        fail(f"--threshold must be a number between 0 and 1 (for example 0.7), not {text!r}.")
    return value


def prediction_columns(out: np.ndarray, description: dict, threshold: float | None = None
                       ) -> dict[str, list]:
    if description["task"] == "classification":
        names = description["output"]["class_names"]
        columns = {"prediction": [names[i] for i in decided(out, description, threshold)]}
        for j, name in enumerate(names):
            columns[f"probability_{name}"] = [float(v) for v in out[:, j]]
        return columns
    return {"prediction": [float(v) for v in out.reshape(-1)]}


def write_csv(header: list[str], rows: list[list], out: str | None) -> None:
    fh = open(out, "w", newline="", encoding="utf-8") if out else sys.stdout
    try:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    finally:
        if out:
            fh.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Predict with a model exported by TrainDesk.")
    parser.add_argument("input", help="a CSV file, an image or folder of images, or a .txt file")
    parser.add_argument("--out", help="the CSV file to write (default: standard output)")
    parser.add_argument("--threshold", help="two classes: say the second class from this "
                        "probability on (default: the threshold saved with the model)")
    args = parser.parse_args(argv)
    threshold = threshold_arg(args.threshold)
    description = json.loads((HERE / "preprocessing.json").read_text(encoding="utf-8"))
    pre = description["preprocessing"]
    path = Path(args.input)
    if not path.exists():
        fail(f"{path} does not exist.")
    kind = pre["kind"]
    is_image = path.is_dir() or path.suffix.lower() in IMAGE_SUFFIXES
    if is_image:
        if kind != "image":
            fail(f"this model reads {kind} data, not images: give a CSV file.")
        files = image_files(path)
        x = np.stack([decode_image(f, pre) for f in files]).astype(np.float32)
        header, rows = ["file"], [[str(f.relative_to(path)) if path.is_dir() else str(f)]
                                  for f in files]
    elif kind == "text" and path.suffix.lower() == ".txt":
        texts = path.read_text(encoding="utf-8").splitlines()
        x = encode_texts(texts, pre)
        header, rows = ["text"], [[t] for t in texts]
    else:
        header, table = read_csv(path)
        if kind == "text":
            missing = [c for c in pre["text_columns"] if c not in header]
            if missing:
                fail(f"the input has no column(s) {', '.join(missing)}.")
            x = encode_texts([joined_text(r, pre["text_columns"]) for r in table], pre)
        elif pre.get("image"):  # a CSV naming image files
            column = pre["image"].get("path_column", "path")
            if column not in header:
                fail(f"the input has no column {column!r} of image files.")
            x = np.stack([decode_image(path.parent / r[column], pre) for r in table])
        else:  # table columns (pixel columns too)
            x = encode_table(table, pre)
        rows = [[r.get(h, "") for h in header] for r in table]
    columns = prediction_columns(run_model(x), description, threshold)
    header = header + list(columns)
    rows = [row + [columns[c][i] for c in columns] for i, row in enumerate(rows)]
    write_csv(header, rows, args.out)
    if args.out:
        sys.stderr.write(f"Wrote {len(rows)} predictions to {args.out}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
