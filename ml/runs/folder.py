"""Run folders: everything one training run produced, readable without the app.

::

    RUN_DIR/
      run.json              status (running | stopped | finished | failed), timestamps, device
      config.json           resolved data, model and training settings, data fingerprint
      split.npz             row indices of the train / val / test splits
      check_inputs.npy      a sample of encoded test inputs, to check exports later
      preprocessing.json    fitted encodings and statistics (see ml.data.preprocessing)
      model.json            the model spec (layers)
      checkpoint.pt         last completed epoch: weights and the whole training state
                            (optimizer, schedule, random states, history; weights_only)
      best.safetensors      weights of the epoch with the lowest validation loss so far
      history.jsonl         one JSON line per epoch
      model.safetensors     final weights
      metrics.json          test metrics, speed, device

Every file is written atomically, so a crash loses at most the epoch in progress.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..data.preprocessing import Preprocessor
from ..data.samples import SAMPLE_PREFIX, get_sample
from ..errors import DataError, ModelSpecError, RunError
from ..models.spec import ModelSpec, TrainDeskNet, build_model
from ..system.fileio import atomic_path, atomic_write_json
from ..system.resources import resource_path
from .weights import load_weights

RUN_FORMAT = "traindesk-run"
RUN_VERSION = 1


def now_iso() -> str:
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


def new_run_dir(base: Path, label: str) -> Path:
    """Create and return a fresh, uniquely named run folder under *base*."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    slug = re.sub(r"[^A-Za-z0-9]+", "-", label).strip("-").lower()[:40] or "run"
    for i in range(1000):
        path = base / (f"{stamp}-{slug}" + (f"-{i + 1}" if i else ""))
        try:
            path.mkdir(parents=True, exist_ok=False)
            return path
        except FileExistsError:
            continue
        except OSError as exc:
            raise RunError(f"Could not create the run folder {path}: "
                           f"{exc.strerror or exc}.") from None
    raise RunError(f"Could not find a free run folder name under {base}.")


def data_fingerprint(source: str) -> dict[str, Any]:
    """SHA-256 of the data file behind *source*, to notice if it changes after training.

    Raises
    ------
    DataError
        If the file cannot be read.
    """
    if source.startswith(SAMPLE_PREFIX):
        path = resource_path("samples", get_sample(source).file)
    else:
        path = Path(source)
    digest = hashlib.sha256()
    if path.is_dir():
        # A folder of images: names, sizes and times of its files (hashing every image of a
        # big folder would take longer than decoding it).
        try:
            for entry in sorted(p for p in path.rglob("*") if p.is_file()):
                st = entry.stat()
                digest.update(f"{entry.relative_to(path).as_posix()}|{st.st_size}|"
                              f"{st.st_mtime_ns}\n".encode())
        except OSError as exc:
            raise DataError(f"Could not read the data folder {path}: "
                            f"{exc.strerror or exc}.") from None
        return {"source": source, "sha256": digest.hexdigest(), "kind": "folder"}
    try:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as exc:
        raise DataError(f"Could not read the data file {path}: {exc.strerror or exc}.") from None
    return {"source": source, "sha256": digest.hexdigest()}


@dataclass
class Run:
    """A run folder, read back."""

    path: Path
    info: dict[str, Any]
    config: dict[str, Any]
    spec: ModelSpec
    preprocessor: Preprocessor
    history: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> str:
        return str(self.info.get("status", "unknown"))

    @property
    def task(self) -> str:
        return self.preprocessor.task

    @property
    def has_model(self) -> bool:
        return (self.path / "model.safetensors").is_file()

    def load_model(self) -> TrainDeskNet:
        """Build the network and load the final weights (safetensors: no code is executed)."""
        weights = self.path / "model.safetensors"
        if not weights.is_file():
            raise RunError(f"The run in {self.path} has no trained model (status: "
                           f"{self.status}).")
        net = build_model(self.spec)
        state = load_weights(weights)
        try:
            net.load_state_dict(state)
        except RuntimeError as exc:
            raise RunError(f"The model file of run {self.path.name} does not fit its model "
                           f"({exc}).") from None
        net.eval()
        return net

    def split_rows(self) -> dict[str, np.ndarray]:
        try:
            # Our own file handle: np.load leaks its own when the archive is damaged.
            with open(self.path / "split.npz", "rb") as fh, np.load(fh, allow_pickle=False) as npz:
                return {k: np.asarray(npz[k], dtype=np.int64) for k in ("train", "val", "test")}
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise RunError(f"The split of run {self.path.name} is missing or damaged "
                           f"({type(exc).__name__}).") from None

    def check_inputs(self) -> np.ndarray:
        """Encoded test inputs kept in the run folder, to check exports when the data is gone."""
        try:
            with open(self.path / "check_inputs.npy", "rb") as fh:
                return np.load(fh, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise RunError(f"The run {self.path.name} has no stored check inputs "
                           f"({type(exc).__name__}).") from None


#: Test inputs kept in the run folder to check exports: at most this many rows and bytes.
CHECK_ROWS, CHECK_BYTES = 1000, 20_000_000


def write_run_start(run_dir: Path, *, config: dict, rows: dict[str, np.ndarray],
                    preprocessor: Preprocessor, spec: ModelSpec, info: dict,
                    x_test: np.ndarray) -> None:
    """Write the files that describe a run before its first epoch."""
    atomic_write_json(run_dir / "config.json", config, error=RunError)
    with atomic_path(run_dir / "split.npz", error=RunError) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **{k: np.asarray(v, np.int64) for k, v in rows.items()})
    # A sample of encoded test inputs, so an export can be checked even after the data file has
    # moved or changed (derived from the user's own data; it stays in the run folder).
    per_row = max(1, x_test[:1].nbytes)
    n_check = int(min(len(x_test), CHECK_ROWS, max(1, CHECK_BYTES // per_row)))
    with atomic_path(run_dir / "check_inputs.npy", error=RunError) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, np.ascontiguousarray(x_test[:n_check]), allow_pickle=False)
    atomic_write_json(run_dir / "preprocessing.json", preprocessor.to_dict(), error=RunError)
    atomic_write_json(run_dir / "model.json", spec.to_dict(), error=RunError)
    write_run_info(run_dir, info)


def write_run_info(run_dir: Path, info: dict) -> None:
    doc = {"format": RUN_FORMAT, "version": RUN_VERSION, **info, "updated": now_iso()}
    atomic_write_json(run_dir / "run.json", doc, error=RunError)


def load_run(path: str | Path) -> Run:
    """Read a run folder.

    Raises
    ------
    RunError
        If the folder is missing, is not a run, or its description files are damaged.
    """
    path = Path(path)
    if not path.exists():
        raise RunError(f"Run folder not found: {path}.")
    if not path.is_dir():
        raise RunError(f"{path} is not a run folder.")
    info = _read_json(path / "run.json", path)
    if info.get("format") != RUN_FORMAT:
        raise RunError(f"{path} is not a TrainDesk run folder.")
    version = info.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise RunError(f"run.json in {path} is damaged (no valid version).")
    if version > RUN_VERSION:
        raise RunError(f"The run in {path} was made by a newer TrainDesk. Update TrainDesk.")
    config = _read_json(path / "config.json", path)
    try:
        spec = ModelSpec.from_dict(_read_json(path / "model.json", path))
        pre = Preprocessor.from_dict(_read_json(path / "preprocessing.json", path))
    except (ModelSpecError, DataError) as exc:
        raise RunError(f"The run in {path} is damaged: {exc}") from None
    history = read_history(path)
    metrics_file = path / "metrics.json"
    metrics = _read_json(metrics_file, path) if metrics_file.is_file() else {}
    return Run(path=path, info=info, config=config, spec=spec, preprocessor=pre,
               history=history, metrics=metrics)


def _read_json(file: Path, run_dir: Path) -> dict:
    if not file.is_file():
        raise RunError(f"{run_dir} is not a complete TrainDesk run folder ({file.name} is "
                       f"missing).")
    try:
        doc = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise RunError(f"{file.name} in {run_dir} is damaged.") from None
    if not isinstance(doc, dict):
        raise RunError(f"{file.name} in {run_dir} is damaged.")
    return doc


def config_dict(project_like) -> dict:
    """The resolved settings of a run, from a project."""
    return {"data": dataclasses.asdict(project_like.data),
            "model": dataclasses.asdict(project_like.model),
            "training": dataclasses.asdict(project_like.training)}


def project_from_config(config: dict, name: str = "run"):
    """A :class:`~ml.runs.project.Project` with a run's data, model and training settings (from its
    ``config.json``), to re-run, resume or clone it.

    Raises
    ------
    ProjectError
        If the settings are damaged.
    """
    from .project import PROJECT_FORMAT, PROJECT_VERSION, Project

    doc = {"format": PROJECT_FORMAT, "version": PROJECT_VERSION, "name": name,
           **{k: config.get(k) or {} for k in ("data", "model", "training")}}
    return Project.from_dict(doc)


#: Settings that describe the run rather than choose it: left out of a comparison.
_NOT_SETTINGS = ("data_fingerprint", "resolved")


def config_diff(a: dict, b: dict) -> list[tuple[str, Any, Any]]:
    """The settings two runs' ``config.json`` differ in: ``(dotted key, a's value, b's)``,
    sorted by key; a key one of them lacks shows ``None`` there."""
    def flat(doc: dict, prefix: str = "") -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in doc.items():
            if not prefix and key in _NOT_SETTINGS:
                continue
            name = f"{prefix}{key}"
            if isinstance(value, dict) and value:
                out.update(flat(value, name + "."))
            else:
                out[name] = value
        return out

    fa, fb = flat(a), flat(b)
    return [(k, fa.get(k), fb.get(k)) for k in sorted(set(fa) | set(fb))
            if fa.get(k) != fb.get(k)]


def delete_run(path: str | Path) -> None:
    """Delete a run folder: first moved aside in one atomic rename (into ``.trash`` beside it),
    so the run is either whole or gone, then removed.

    Raises
    ------
    RunError
        If the folder cannot be moved (in use, read-only); the run is then left as it was.
    """
    import os
    import shutil

    path = Path(path)
    if not path.exists():
        return
    trash = path.parent / ".trash"
    target = trash / f"{path.name}-{_dt.datetime.now().strftime('%Y%m%d%H%M%S%f')}"
    try:
        trash.mkdir(exist_ok=True)
        os.replace(path, target)
    except OSError as exc:
        raise RunError(f"Could not delete run {path.name}: {exc.strerror or exc}. Close any "
                       f"program using its files and try again.") from None
    shutil.rmtree(target, ignore_errors=True)  # what remains in .trash is harmless


def read_history(path: str | Path) -> list[dict]:
    """A run's ``history.jsonl`` (epochs so far); empty if there is none. A torn last line
    (a crash mid-write) is skipped."""
    file = Path(path) / "history.jsonl"
    try:
        text = file.read_bytes().decode("utf-8", errors="replace")
    except OSError:
        return []
    history = []
    for line in text.splitlines():
        if line.strip():
            try:
                history.append(json.loads(line))
            except json.JSONDecodeError:
                break
    return history
