"""The standalone package: a folder (and a .zip) that predicts without TrainDesk.

``model.onnx``, ``preprocessing.json``, ``predict.py`` (numpy + onnxruntime, Pillow for images)
and ``requirements.txt``; a pretrained text model also gets its ``tokenizer.json`` (run by the
``tokenizers`` library: no torch, no transformers). Before the package is kept, its
``predict.py`` is run on raw test rows and must give the app's own predictions; like every
export, a package that does not is an error and nothing is written.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ExportError
from ..runs.folder import Run
from ..system.fileio import folder_beside
from ..system.resources import resource_path
from .exporters import ExportReport, export_run

#: Raw rows the package's predict.py is checked on (it encodes in Python: keep it quick).
CHECK_ROWS = 300
#: A pretrained text model's tokenizer, beside model.onnx (preprocessing.json names it).
TOKENIZER_FILE = "tokenizer.json"


@dataclass(frozen=True)
class PackageReport:
    """The package folder, its zip, the model's own check, and predict.py's check."""

    folder: Path
    zip: Path
    model: ExportReport
    checked_rows: int
    max_abs_diff: float
    #: Why predict.py could not be run on raw rows (the run's test rows no longer exist); "" when
    #: it was.
    unchecked: str = ""

    @property
    def summary(self) -> str:
        head = (f"Package written to {self.folder.name} (and {self.zip.name}); the model: "
                f"identical predictions {self.model.identical} of {self.model.n}")
        if self.unchecked:
            return (f"{head} {self.model.checked_on}; predict.py was NOT checked on raw rows: "
                    f"{self.unchecked} Export again once the data file it was trained on is "
                    f"back to check it.")
        return (f"{head}; predict.py on {self.checked_rows} raw rows matches the app (max "
                f"|difference| {self.max_abs_diff:.2g}).{self.model.decides}")


def _requirements(image: bool, word_pieces: bool = False) -> str:
    """Pinned to this install's versions; Pillow only for images, ``tokenizers`` only for a
    pretrained text model (its word pieces)."""
    lines = ["# pip install -r requirements.txt"]
    extra = (("Pillow",) if image else ()) + (("tokenizers",) if word_pieces else ())
    for dist in ("numpy", "onnxruntime") + extra:
        try:
            lines.append(f"{dist}=={metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            lines.append(dist)
    return "\n".join(lines) + "\n"


def _readme(run: Run, description: dict) -> str:
    pre = description["preprocessing"]
    what = {"image": "an image file or a folder of images",
            "text": f"a CSV file with the column(s) {', '.join(pre.get('text_columns', []))}, "
                    f"or a .txt file with one text per line",
            }.get(pre["kind"], "a CSV file with the columns "
                  + ", ".join(c["name"] for c in pre["columns"]))
    out = ("a `prediction` column and one `probability_<class>` column per class"
           if description["task"] == "classification" else "a `prediction` column")
    decision = description["output"].get("decision")
    if decision:
        out += (f". The prediction is {decision['rule']} (the decision threshold chosen for "
                f"this run; `--threshold P` decides at P instead)")
    return (f"TrainDesk model package - run {run.path.name}\n\n"
            f"    pip install -r requirements.txt\n"
            f"    python predict.py INPUT --out predictions.csv\n\n"
            f"INPUT: {what}.\nThe output lists the input's rows with {out}.\n"
            f"preprocessing.json says how raw values are encoded; model.onnx takes the encoded "
            f"input (see the 'input' entry) and returns the output described there.\n"
            + (f"{TOKENIZER_FILE} is the model's own word-piece tokenizer (read by the "
               f"tokenizers package).\n" if pre.get("tokenizer", {}).get("type") == "pretrained"
               else ""))


def _raw_check_input(run: Run, folder: Path) -> tuple[Path, pd.DataFrame] | str:
    """Raw test rows as a CSV file in *folder*, with the app's predictions for them; or, when the
    run's test rows no longer exist (data file gone, changed or shorter), the reason (the model
    itself is still checked on the kept inputs)."""
    from ..data.dataset import load_dataset
    from ..errors import RunError
    from ..evaluation.evaluate import SPLIT_ADVICE, load_split

    try:
        load_split(run, "test")  # checks the data file is still the one trained on
    except RunError as exc:
        return str(exc).replace(SPLIT_ADVICE, "")
    dataset = load_dataset(run.config.get("data", {}).get("source", ""),
                           run.config.get("data", {}).get("read_options") or None)
    rows = run.split_rows()["test"][:CHECK_ROWS]
    part = dataset.frame.iloc[rows].reset_index(drop=True)
    path = folder / "check_rows.csv"
    part.to_csv(path, index=False)
    return path, part


def export_package(run: Run, out: str | Path, x_check: np.ndarray,
                   checked_on: str = "test samples") -> PackageReport:
    """Write the standalone package folder *out* and ``out.zip``, checked (see the module).

    Raises
    ------
    ExportError
        If writing fails, or the package's predictions differ from the app's.
    """
    from ..evaluation.tryit import Predictor

    out = Path(out)
    if out.suffix.lower() == ".zip":
        out = out.with_suffix("")
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out} is a file; give a folder name for the package.")
    parent = out.parent
    try:
        work = folder_beside(out)  # a package is meant to be shared like any folder
    except OSError as exc:
        raise ExportError(f"Cannot write in {parent}: {exc.strerror or exc}.") from None
    try:
        model = export_run(run, "onnx", work / "model.onnx", x_check, checked_on=checked_on)
        description = json.loads((work / "model.preprocessing.json").read_text("utf-8"))
        (work / "model.preprocessing.json").unlink()
        predictor = Predictor(run)
        if predictor.kind == "image" and not run.preprocessor.image:
            description["preprocessing"]["pixel_range"] = list(predictor._pixel_range)
        word_pieces = _write_tokenizer(description["preprocessing"], work)
        (work / "preprocessing.json").write_text(json.dumps(description, indent=1), "utf-8")
        shutil.copyfile(resource_path("export", "predict.py"), work / "predict.py")
        (work / "requirements.txt").write_text(
            _requirements(predictor.kind == "image", word_pieces), "utf-8")
        (work / "README.txt").write_text(_readme(run, description), "utf-8")
        checked, diff, unchecked = _check_package(work, run, predictor)
        zip_tmp = parent / f".{out.name}.{uuid.uuid4().hex}"
        archive = Path(shutil.make_archive(str(zip_tmp), "zip", root_dir=work, base_dir="."))
        _replace_folder(work, out)
        zip_path = out.with_name(out.name + ".zip")
        os.replace(archive, zip_path)
    except OSError as exc:
        shutil.rmtree(work, ignore_errors=True)
        raise ExportError(f"The package could not be written: {exc.strerror or exc}.") from None
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return PackageReport(out, zip_path, model, checked, diff, unchecked)


def _write_tokenizer(pre: dict, folder: Path) -> bool:
    """A pretrained text model's ``tokenizer.json``, taken out of *pre* (which then names the
    file) into *folder*, where predict.py runs it with ``tokenizers``; False for other models."""
    doc = pre.get("tokenizer")
    if not isinstance(doc, dict) or doc.get("type") != "pretrained":
        return False
    (folder / TOKENIZER_FILE).write_text(doc["json"], "utf-8")
    pre["tokenizer"] = {**{k: v for k, v in doc.items() if k != "json"},
                        "file": TOKENIZER_FILE}
    return True


def _replace_folder(new: Path, target: Path) -> None:
    """Put folder *new* at *target*; an old folder there is moved aside first, then removed."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(target, old)
    os.replace(new, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _check_package(folder: Path, run: Run, predictor) -> tuple[int, float, str]:
    """Run the package's predict.py on raw test rows; compare with the app's predictions.
    Returns the rows checked, the largest difference, and why nothing was checked (or "")."""
    with tempfile.TemporaryDirectory() as tmp:
        raw = _raw_check_input(run, Path(tmp))
        if isinstance(raw, str):
            return 0, 0.0, raw
        path, part = raw
        expected = predictor.predict_frame(part)
        spec = importlib.util.spec_from_file_location("traindesk_package_predict",
                                                      folder / "predict.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.HERE = folder
        produced_path = Path(tmp) / "produced.csv"
        try:
            with contextlib.redirect_stderr(io.StringIO()):  # its "Wrote N predictions" line
                module.main([str(path), "--out", str(produced_path)])
        except SystemExit as exc:
            if exc.code not in (0, None):
                raise ExportError("The package's predict.py refused the test rows; the package "
                                  "was not saved.") from None
        produced = pd.read_csv(produced_path, keep_default_na=False, dtype={"prediction": str}
                               if run.task == "classification" else None)
    return len(part), _compare_predictions(run, expected, produced), ""


def _compare_predictions(run: Run, expected: pd.DataFrame, produced: pd.DataFrame) -> float:
    if len(expected) != len(produced):
        raise ExportError(f"The package's predict.py gave {len(produced)} predictions for "
                          f"{len(expected)} rows; the package was not saved.")
    if run.task == "classification":
        names = run.preprocessor.class_names
        cols = [f"probability_{n}" for n in names]
        diff = float(np.max(np.abs(produced[cols].to_numpy(np.float64)
                                   - expected[cols].to_numpy(np.float64))))
        same = int((produced["prediction"].astype(str).to_numpy()
                    == expected["prediction"].astype(str).to_numpy()).sum())
        ok = same == len(expected) and diff <= 1e-4
    else:
        a = produced["prediction"].to_numpy(np.float64)
        b = expected["prediction"].to_numpy(np.float64)
        diff = float(np.max(np.abs(a - b))) if len(a) else 0.0
        same = int(np.sum(np.abs(a - b) <= 1e-4 * (1 + np.abs(b))))
        ok = same == len(expected)
    if not ok:
        raise ExportError(f"The package's predict.py does not reproduce the app: identical "
                          f"predictions {same} of {len(expected)}, max |difference| {diff:.3g}. "
                          f"The package was not saved.")
    return diff
