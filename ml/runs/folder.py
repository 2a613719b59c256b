"""Run folders: everything one training run produced, readable without the app.

::

    RUN_DIR/
      run.json              status (running | stopped | finished | failed), timestamps, device,
                            settings changed after the start (``changes``), the run's name
                            (``name``, e.g. "Run 3 · Small MLP"; renaming rewrites only it)
      config.json           resolved data, model and training settings, data fingerprint;
                            written once, when the run starts
      split.npz             row indices of the train / val / test splits
      row_hashes.npz        a hash of each training and validation row's values (feature and
                            target columns, ``columns``), to count a file's rows that were
                            trained on (see ml.data.rowhash); runs before it have none
      check_inputs.npy      a sample of encoded test inputs, to check exports later
      preprocessing.json    fitted encodings and statistics (see ml.data.preprocessing)
      model.json            the model spec (layers)
      checkpoint.pt         last completed epoch: weights and the whole training state
                            (optimizer, schedule, random states, history; weights_only)
      best.safetensors      weights of the epoch with the lowest validation loss so far
      refit.pt              the final fit's last epoch, while it runs (see ml.jobs.refit)
      history.jsonl         one JSON line per epoch
      tensorboard/          the history as a TensorBoard event file, rewritten with it
                            (``tensorboard --logdir`` on the runs folder; ml.runs.tensorboard)
      model.safetensors     final weights
      metrics.json          test metrics, speed, device
      measured.json         what was measured of the run besides training (optional): the data
                            health check at its start, and the smaller versions (int8, pruned,
                            distilled) measured later, each tied to the weights it measured

:class:`RunFolder` alone reads and writes these files; everything else (training, resume,
evaluation, export, prediction, the GUI's lists) goes through it. Every file is written
atomically, so a crash loses at most the epoch in progress.

Versions of the format (``version`` in run.json and config.json)
----------------------------------------------------------------
1
    TrainDesk 0.1: config.json has no version and was rewritten when a run was resumed or its
    batch size halved; weights and checkpoints carry a checksum only from late 0.1 on.
2
    config.json is versioned and written once; later changes of settings are listed in
    run.json's ``changes``; every weights file and checkpoint carries a checksum, and one
    without is refused. A version-1 folder is migrated in memory when it is opened and
    written as version 2 the next time the run is saved (see :mod:`ml.runs.migrations`).

Language-model runs
-------------------
A run that fine-tuned a causal language model (:mod:`ml.jobs.causal`) is the same kind of folder
with ``"kind": "causal-lm"`` in config.json (the base model's folder and fingerprint, the data
file, the settings), ``split.npz`` (example indices), ``run.json``, ``history.jsonl`` (loss,
validation perplexity, tokens/s and the sample answer of each epoch), ``checkpoint.pt`` (the
trainable weights, AdamW and random states of the last epoch), ``lm_model.safetensors`` (the
best epoch's adapters, or all weights for full fine-tuning) and ``metrics.json`` (perplexity
before and after, the base and fine-tuned answers to the same prompts). It has no model.json
or preprocessing: it answers through ``main.py generate`` and exports as a model folder or an
adapter, and :meth:`RunFolder.load` refuses it with a sentence saying so.

The decision threshold
----------------------
A two-class model says its second class from a probability of :attr:`Run.threshold` on. The
threshold is chosen after training (the Evaluate page), so it is a later change like any other:
``run.json``'s ``changes`` gets ``{"setting": "decision.threshold", ...}`` and
:meth:`RunFolder.settings` shows it as ``config["decision"]["threshold"]``. A run without one
(every run from before it existed) decides at :data:`DEFAULT_THRESHOLD`; an older TrainDesk
opening a run with one skips the ``decision`` change (it has no such section) and still opens it.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as _dt
import hashlib
import json
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import __version__
from ..data.preprocessing import Preprocessor
from ..data.samples import SAMPLE_PREFIX, get_sample
from ..errors import DataError, ModelSpecError, RunError
from ..labels import run_name_from_id
from ..models.spec import ModelSpec, TrainDeskNet, build_model
from ..system.fileio import atomic_path, atomic_write_json, atomic_write_text
from ..system.resources import resource_path
from . import migrations, tensorboard
from .migrations import CONFIG_FORMAT, RUN_FORMAT, RUN_VERSION
from .weights import load_checkpoint, load_weights, save_checkpoint, save_weights

#: Test inputs kept in the run folder to check exports: at most this many rows and bytes.
CHECK_ROWS, CHECK_BYTES = 1000, 20_000_000
#: The files that hold tensors, each checked against its checksum when read.
WEIGHT_FILES = ("model.safetensors", "best.safetensors", "checkpoint.pt",
                "lm_model.safetensors")
#: The final fit's checkpoint (:mod:`ml.jobs.refit`): there only while it runs.
REFIT_CHECKPOINT = "refit.pt"
#: A LoRA run's adapters, kept beside the merged weights (optional files).
LORA_WEIGHTS, LORA_SETTINGS = "lora_adapter.safetensors", "lora_adapter.json"
#: A language-model run (``kind`` in config.json, see the module docstring) and its fine-tuned
#: weights: the LoRA adapters, or every weight after full fine-tuning.
LM_KIND, LM_WEIGHTS = "causal-lm", "lm_model.safetensors"
#: ``measured.json``'s format name (the file is optional: a run from before it has none).
MEASURED_FORMAT = "traindesk-run-measured"
#: The longest human name a run may have (it heads table columns).
MAX_NAME = 80
#: Where a two-class model says its second class when nothing else was chosen.
DEFAULT_THRESHOLD = 0.5
#: The later change that holds a chosen threshold (see the module docstring).
THRESHOLD_SETTING = "decision.threshold"
#: Sections of :meth:`RunFolder.settings` that only later changes make (none in config.json).
_LATER_SECTIONS = ("decision",)


def check_threshold(value: Any, what: str = "The decision threshold") -> float:
    """*value* as a threshold strictly between 0 and 1.

    Raises
    ------
    DataError
        If it is not a number between 0 and 1.
    """
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not 0.0 < number < 1.0:  # NaN fails too
        raise DataError(f"{what} must be a number between 0 and 1 (for example 0.7), not "
                        f"{str(value)[:20]!r}.")
    return round(number, 4)


def now_iso() -> str:
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


def new_run_dir(base: Path, label: str) -> Path:
    """Create and return a fresh, uniquely named folder under *base* (a run's, or the folder
    of a cross-validation or search that holds several)."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    slug = re.sub(r"[^A-Za-z0-9]+", "-", label).strip("-").lower()[:40] or "run"
    for i in range(1000):
        path = Path(base) / (f"{stamp}-{slug}" + (f"-{i + 1}" if i else ""))
        try:
            path.mkdir(parents=True, exist_ok=False)
            return path
        except FileExistsError:
            continue
        except OSError as exc:
            raise RunError(f"Could not create the run folder {path}: "
                           f"{exc.strerror or exc}.") from None
    raise RunError(f"Could not find a free run folder name under {base}.")


class RunFolder:
    """One run's folder: the only code that reads or writes its files.

    Open an existing run with :meth:`open` (the format is checked and an older version migrated
    in memory), or make a new one with :meth:`create` / :meth:`claim` and describe it once with
    :meth:`start`.
    """

    def __init__(self, path: Path, info: dict[str, Any] | None = None,
                 config: dict[str, Any] | None = None, *, pending: dict | None = None):
        self.path = Path(path)
        self._info: dict[str, Any] = info or {}
        self._config: dict[str, Any] = config or {}
        #: What a migration changed that is not on disk yet (written by the next save).
        self._pending = pending

    # -- making and opening ---------------------------------------------------------------------
    @classmethod
    def create(cls, base: Path, label: str) -> RunFolder:
        """A fresh, uniquely named, empty run folder under *base*."""
        return cls(new_run_dir(base, label))

    @classmethod
    def claim(cls, path: Path) -> RunFolder:
        """Exactly *path* (created if needed), which must not hold a run yet."""
        path = Path(path)
        if (path / "run.json").exists():
            raise RunError(f"{path} already holds a run. Choose an empty folder.")
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunError(f"Could not create {path}: {exc.strerror or exc}.") from None
        return cls(path)

    @classmethod
    def open(cls, path: str | Path) -> RunFolder:
        """An existing run, its ``run.json`` and ``config.json`` read, checked and migrated.

        Raises
        ------
        RunError
            If the folder is missing, is not a run, was written by a newer TrainDesk, or its
            description files are damaged.
        """
        path = Path(path)
        if not path.exists():
            raise RunError(f"Run folder not found: {path}.")
        if not path.is_dir() or not cls.is_run(path):
            raise RunError(f"{path} is not a run folder (it has no run.json).")
        info = _read_json(path / "run.json", path)
        if info.get("format") != RUN_FORMAT:
            raise RunError(f"{path} is not a TrainDesk run folder.")
        config = _read_json(path / "config.json", path)
        info, config, pending = migrations.migrate_run(info, config, path)
        return cls(path, info, config, pending=pending)

    @staticmethod
    def is_run(path: str | Path) -> bool:
        """Whether *path* looks like a run folder (cheap: no file is parsed)."""
        return (Path(path) / "run.json").is_file()

    # -- what it holds --------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.path.name

    @property
    def title(self) -> str:
        """The run's human name: ``name`` in run.json, or for a run written before runs had
        names (or one without), a readable one made from its folder's time stamp."""
        name = self._info.get("name")
        if isinstance(name, str) and name.strip():
            return name.strip()
        return run_name_from_id(self.name, str(self._info.get("model", "")),
                                str(self._info.get("created", "")))

    def rename(self, name: str) -> str:
        """Give the run the human *name* (kept in run.json; the folder keeps its own name, so
        nothing that points at it breaks). Returns the name as stored.

        Raises
        ------
        RunError
            If *name* is empty or too long, or run.json cannot be written.
        """
        name = " ".join(str(name).split())
        if not name:
            raise RunError("A run's name cannot be empty; type a few words, e.g. "
                           "\"Small MLP, more epochs\".")
        if len(name) > MAX_NAME:
            raise RunError(f"A run's name can be at most {MAX_NAME} characters long; this one "
                           f"has {len(name)}.")
        self.update(name=name)
        return name

    @property
    def info(self) -> dict[str, Any]:
        """``run.json`` (a copy): status, timestamps, device, changes."""
        return copy.deepcopy(self._info)

    @property
    def status(self) -> str:
        return str(self._info.get("status", "unknown"))

    @property
    def started_config(self) -> dict[str, Any]:
        """``config.json`` as written when the run started."""
        return copy.deepcopy(self._config)

    def settings(self) -> dict[str, Any]:
        """The run's settings now: ``config.json`` with the later ``changes`` applied."""
        config = copy.deepcopy(self._config)
        for change in self._info.get("changes") or []:
            section, _, key = str(change.get("setting", "")).partition(".")
            if section in _LATER_SECTIONS and section not in config:
                config[section] = {}
            if isinstance(config.get(section), dict) and key:
                config[section][key] = change.get("to")
        return config

    @property
    def is_language_model(self) -> bool:
        """Whether the run fine-tuned a causal language model (see the module docstring)."""
        return self._config.get("kind") == LM_KIND

    @property
    def has_model(self) -> bool:
        name = LM_WEIGHTS if self.is_language_model else "model.safetensors"
        return (self.path / name).is_file()

    @property
    def has_checkpoint(self) -> bool:
        return (self.path / "checkpoint.pt").is_file()

    @property
    def migrated_from(self) -> int | None:
        """The format version this folder was read from, if it was older (not yet saved)."""
        return None if self._pending is None else int(self._pending["from"])

    # -- writing --------------------------------------------------------------------------------
    def start(self, *, config: dict, rows: dict[str, np.ndarray], preprocessor: Preprocessor,
              spec: ModelSpec, info: dict, x_test: np.ndarray,
              row_hashes: dict[str, np.ndarray] | None = None) -> None:
        """Write the files that describe a new run, before its first epoch: ``config.json``
        (once, never rewritten), the split, check inputs, preprocessing, model and run.json."""
        self._config = {**config, "format": CONFIG_FORMAT, "version": RUN_VERSION,
                        "written_by": __version__}
        atomic_write_json(self.path / "config.json", self._config, error=RunError)
        with atomic_path(self.path / "split.npz", error=RunError) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **{k: np.asarray(v, np.int64) for k, v in rows.items()})
        if row_hashes is not None:
            self._write_row_hashes(row_hashes)
        # A sample of encoded test inputs, so an export can be checked even after the data file
        # has moved or changed (derived from the user's own data; it stays in the run folder).
        per_row = max(1, x_test[:1].nbytes)
        n_check = int(min(len(x_test), CHECK_ROWS, max(1, CHECK_BYTES // per_row)))
        with atomic_path(self.path / "check_inputs.npy", error=RunError) as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, np.ascontiguousarray(x_test[:n_check]), allow_pickle=False)
        atomic_write_json(self.path / "preprocessing.json", preprocessor.to_dict(),
                          error=RunError)
        atomic_write_json(self.path / "model.json", spec.to_dict(), error=RunError)
        self._info = {"changes": []}
        self.update(**info)

    def start_language_model(self, *, config: dict, split: dict[str, np.ndarray],
                             info: dict) -> None:
        """Describe a new language-model run: ``config.json`` (once), the split of the
        examples and run.json."""
        self._config = {**config, "kind": LM_KIND, "format": CONFIG_FORMAT,
                        "version": RUN_VERSION, "written_by": __version__}
        atomic_write_json(self.path / "config.json", self._config, error=RunError)
        with atomic_path(self.path / "split.npz", error=RunError) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **{k: np.asarray(v, np.int64) for k, v in split.items()})
        self._info = {"changes": []}
        self.update(**info)

    def update(self, **info: Any) -> None:
        """Merge *info* into ``run.json`` and write it (first finishing a pending migration)."""
        self._latest_info()
        self._save_migration()
        self._info = {**self._info, **info, "format": RUN_FORMAT, "version": RUN_VERSION,
                      "written_by": __version__, "updated": now_iso()}
        atomic_write_json(self.path / "run.json", self._info, error=RunError)

    def change(self, setting: str, to: Any, why: str) -> None:
        """Record that *setting* (``"training.epochs"``) is *to* from now on, and why."""
        self._latest_info()
        before = self.settings()
        section, _, key = setting.partition(".")
        old = (before.get(section) or {}).get(key)
        if old == to:
            return
        changes = list(self._info.get("changes") or [])
        changes.append({"setting": setting, "from": old, "to": to, "why": why, "at": now_iso()})
        self.update(changes=changes)

    def set_threshold(self, threshold: float, why: str = "chosen on the Evaluate page"
                      ) -> float:
        """Save the decision threshold of a two-class run (a later change; see the module)
        and return it as saved (rounded to 4 decimals).

        Raises
        ------
        DataError
            If *threshold* is not strictly between 0 and 1.
        RunError
            If the run is not a two-class classification, or run.json cannot be written.
        """
        value = check_threshold(threshold)
        self._latest_info()
        pre = self.preprocessor()
        if pre.task != "classification" or len(pre.class_names) != 2:
            raise RunError(f"The run {self.name} does not sort into two classes, so it has no "
                           f"decision threshold.")
        changes = list(self._info.get("changes") or [])
        if changes and changes[-1].get("setting") == THRESHOLD_SETTING:
            # Moving the slider again: one change from the value before, not one per move.
            last = changes.pop()
            if last.get("from") == value:
                self.update(changes=changes)
                return value
            changes.append({**last, "to": value, "why": why, "at": now_iso()})
            self.update(changes=changes)
            return value
        self.change(THRESHOLD_SETTING, value, why)
        return value

    def write_metrics(self, metrics: dict) -> None:
        atomic_write_json(self.path / "metrics.json", metrics, error=RunError)

    def write_history(self, lines: list[str]) -> None:
        """``history.jsonl``: one JSON line per completed epoch; then the TensorBoard event
        file made from it (:mod:`ml.runs.tensorboard`)."""
        atomic_write_text(self.path / "history.jsonl", "\n".join(lines) + "\n", error=RunError)
        try:
            started = _dt.datetime.fromisoformat(str(self._info.get("created"))).timestamp()
        except ValueError:
            started = _dt.datetime.now().timestamp()
        tensorboard.write_events(self.path, [json.loads(line) for line in lines], started,
                                 tensorboard.hparams_of(self.settings()))

    def save_checkpoint(self, state: dict, name: str = "checkpoint.pt") -> None:
        save_checkpoint(self.path / name, state)

    def drop_checkpoint(self, name: str) -> None:
        """Remove checkpoint *name* once what it was for is done (a finished final fit)."""
        try:
            (self.path / name).unlink(missing_ok=True)
        except OSError:
            pass  # a stale file only costs room: the run itself is written

    def save_weights(self, net: torch.nn.Module | dict, name: str = "model.safetensors") -> None:
        save_weights(self.path, net, name)

    def save_adapter(self, tensors: dict, settings: dict) -> None:
        """Keep a LoRA run's adapters (and its head) beside its merged weights:
        ``lora_adapter.safetensors`` and ``lora_adapter.json`` (rank, alpha, adapted layers)."""
        save_weights(self.path, tensors, LORA_WEIGHTS)
        atomic_write_json(self.path / LORA_SETTINGS, {"format": "traindesk-lora", "version": 1,
                                                      "layers": settings}, error=RunError)

    def _latest_info(self) -> None:
        """Base the next change on ``run.json`` as it is on disk: another handle may have
        written since this one read it (the app saving a threshold or a name while a resumed
        training of the same run records its epochs), and writing this handle's copy would
        drop that. A file being migrated is kept as migrated in memory."""
        if self._pending is not None:
            return
        try:
            doc = json.loads((self.path / "run.json").read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            return  # not written yet (a new run), or damaged: this handle's copy stands
        if (isinstance(doc, dict) and doc.get("format") == RUN_FORMAT
                and doc.get("version") == RUN_VERSION):
            self._info = doc

    def _save_migration(self) -> None:
        """Write what a migration changed: checksums for tensors files written without one,
        then ``config.json`` in the current version. Nothing happens for a current folder."""
        if self._pending is None:
            return
        added = []
        for name in WEIGHT_FILES:
            file = self.path / name
            if file.is_file() and migrations.add_checksum(file):
                added.append(name)
        atomic_write_json(self.path / "config.json", self._config, error=RunError)
        done = {k: v for k, v in self._pending.items() if k != "trust_unchecked"}
        self._info["migrated"] = {**done, "on": now_iso(), "checksums_added": added}
        self._pending = None

    # -- reading --------------------------------------------------------------------------------
    @property
    def _trust_unchecked(self) -> bool:
        # Only a folder from before checksums (version 1) may hold tensors without one.
        return bool(self._pending and self._pending.get("trust_unchecked"))

    def load_checkpoint(self, name: str = "checkpoint.pt") -> dict | None:
        """The last epoch's checkpoint (or checkpoint *name*), checked; ``None`` if there is
        none yet."""
        path = self.path / name
        if not path.is_file():
            return None
        return load_checkpoint(path, require_digest=not self._trust_unchecked)

    def load_weights(self, name: str = "model.safetensors") -> dict[str, torch.Tensor]:
        return load_weights(self.path / name, require_digest=not self._trust_unchecked)

    def read_history(self) -> list[dict]:
        return read_history(self.path)

    def read_metrics(self) -> dict:
        file = self.path / "metrics.json"
        return _read_json(file, self.path) if file.is_file() else {}

    def spec(self) -> ModelSpec:
        try:
            return ModelSpec.from_dict(_read_json(self.path / "model.json", self.path))
        except ModelSpecError as exc:
            raise RunError(f"The run in {self.path} is damaged: {exc}") from None

    def preprocessor(self) -> Preprocessor:
        try:
            return Preprocessor.from_dict(_read_json(self.path / "preprocessing.json", self.path))
        except DataError as exc:
            raise RunError(f"The run in {self.path} is damaged: {exc}") from None

    def split_rows(self) -> dict[str, np.ndarray]:
        try:
            # Our own file handle: np.load leaks its own when the archive is damaged.
            with open(self.path / "split.npz", "rb") as fh, np.load(fh, allow_pickle=False) as npz:
                return {k: np.asarray(npz[k], dtype=np.int64) for k in ("train", "val", "test")}
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise RunError(f"The split of run {self.path.name} is missing or damaged "
                           f"({type(exc).__name__}).") from None

    # -- what was measured besides training (measured.json) -----------------------------------
    def measurements(self) -> dict[str, Any]:
        """``measured.json``: ``health`` (the data check at the run's start) and ``smaller``
        (measured tables of its smaller versions, by kind). Empty for a run from before the
        file existed; a damaged file counts as nothing measured (it is advisory, and measuring
        again rewrites it)."""
        try:
            doc = json.loads((self.path / "measured.json").read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            return {}
        if not isinstance(doc, dict) or doc.get("format") != MEASURED_FORMAT:
            return {}
        return {k: v for k, v in doc.items() if k not in ("format", "written_by", "updated")}

    def record_measurement(self, key: str, value: Any) -> None:
        """Keep *value* (JSON) under *key* in ``measured.json``, the other keys as they were."""
        doc = {**self.measurements(), key: value, "format": MEASURED_FORMAT,
               "written_by": __version__, "updated": now_iso()}
        atomic_write_json(self.path / "measured.json", doc, error=RunError)

    def model_digest(self) -> str:
        """What identifies the final weights: their checksum (size and time for a file written
        before checksums); empty without a model."""
        file = self.path / "model.safetensors"
        try:
            from safetensors import safe_open

            with safe_open(str(file), framework="pt") as fh:
                digest = (fh.metadata() or {}).get("digest")
            st = file.stat()
        except Exception:  # noqa: BLE001 - no readable model: nothing to tie a measurement to
            return ""
        return str(digest or f"{st.st_size}-{st.st_mtime_ns}")

    def record_smaller(self, kind: str, table: dict) -> None:
        """Keep a measured table of smaller versions (*kind*: ``int8`` or ``derived``), tied
        to the weights it measured."""
        smaller = dict(self.measurements().get("smaller") or {})
        smaller[kind] = {**table, "model": self.model_digest(), "measured": now_iso()}
        self.record_measurement("smaller", smaller)

    def smaller_tables(self) -> dict[str, dict]:
        """The measured tables of smaller versions that are still true of the run's weights, by
        kind (a resumed run's new weights make the earlier ones stale)."""
        digest = self.model_digest()
        smaller = self.measurements().get("smaller") or {}
        return {k: v for k, v in smaller.items() if isinstance(v, dict) and digest
                and v.get("model") == digest}

    def _write_row_hashes(self, hashes: dict[str, np.ndarray]) -> None:
        """``row_hashes.npz``: ``train`` and ``val`` (uint64, sorted) and ``columns`` (the
        hashed columns, as text). An optional file: an older TrainDesk ignores it."""
        arrays = {k: np.sort(np.asarray(hashes[k], np.uint64)) for k in ("train", "val")}
        arrays["columns"] = np.asarray([str(c) for c in hashes["columns"]], dtype=np.str_)
        with atomic_path(self.path / "row_hashes.npz", error=RunError) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)

    def row_hashes(self) -> dict[str, Any] | None:
        """The hashes of the training and validation rows and the columns they cover, or None
        for a run without them (older than the file, an image run, or a damaged file)."""
        try:
            with open(self.path / "row_hashes.npz", "rb") as fh, \
                    np.load(fh, allow_pickle=False) as npz:
                return {"train": np.asarray(npz["train"], np.uint64),
                        "val": np.asarray(npz["val"], np.uint64),
                        "columns": [str(c) for c in npz["columns"]]}
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
            return None

    def check_inputs(self) -> np.ndarray:
        """Encoded test inputs kept in the run folder, to check exports when the data is gone."""
        try:
            with open(self.path / "check_inputs.npy", "rb") as fh:
                return np.load(fh, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise RunError(f"The run {self.path.name} has no stored check inputs "
                           f"({type(exc).__name__}).") from None

    def load(self) -> Run:
        """Everything needed to evaluate, export or predict with the run.

        Raises
        ------
        RunError
            For a language-model run (it has no table model: see the module docstring), or a
            damaged one.
        """
        if self.is_language_model:
            raise RunError(f"{self.title} fine-tuned a language model: ask it with `main.py "
                           f"generate {self.path}` or export it with --format hf or adapter.")
        return Run(path=self.path, info=self.info, config=self.settings(), spec=self.spec(),
                   preprocessor=self.preprocessor(), history=self.read_history(),
                   metrics=self.read_metrics(), folder=self)


@dataclass
class Run:
    """A run folder, read back (see :meth:`RunFolder.load`)."""

    path: Path
    info: dict[str, Any]
    config: dict[str, Any]
    spec: ModelSpec
    preprocessor: Preprocessor
    history: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    folder: RunFolder | None = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        if self.folder is None:
            self.folder = RunFolder(self.path, self.info, self.config)

    @property
    def status(self) -> str:
        return str(self.info.get("status", "unknown"))

    @property
    def task(self) -> str:
        return self.preprocessor.task

    @property
    def refitted(self) -> bool:
        """Whether the final weights were trained on the validation rows too (a finished final
        fit, :mod:`ml.jobs.refit`)."""
        refit = self.info.get("refit")
        return isinstance(refit, dict) and refit.get("status") == "done"

    @property
    def has_model(self) -> bool:
        return self.folder.has_model

    @property
    def threshold(self) -> float | None:
        """Two classes: the probability of the second class from which the model says it
        (the saved choice, else :data:`DEFAULT_THRESHOLD`); ``None`` for any other model."""
        pre = self.preprocessor
        if pre.task != "classification" or len(pre.class_names) != 2:
            return None
        saved = (self.config.get("decision") or {}).get("threshold")
        try:
            return check_threshold(saved) if saved is not None else DEFAULT_THRESHOLD
        except DataError:  # a hand-edited run.json: decide as if nothing had been chosen
            return DEFAULT_THRESHOLD

    def load_model(self) -> TrainDeskNet:
        """Build the network and load the final weights (safetensors: no code is executed)."""
        if not self.has_model:
            raise RunError(f"The run in {self.path} has no trained model (status: "
                           f"{self.status}).")
        net = build_model(self.spec)
        state = self.folder.load_weights()
        try:
            net.load_state_dict(state)
        except RuntimeError as exc:
            raise RunError(f"The model file of run {self.path.name} does not fit its model "
                           f"({exc}).") from None
        net.eval()
        return net

    def split_rows(self) -> dict[str, np.ndarray]:
        return self.folder.split_rows()

    def check_inputs(self) -> np.ndarray:
        return self.folder.check_inputs()


def load_run(path: str | Path) -> Run:
    """Read a run folder (see :meth:`RunFolder.open` and :meth:`RunFolder.load`).

    Raises
    ------
    RunError
        If the folder is missing, is not a run, is from a newer TrainDesk, or is damaged.
    """
    return RunFolder.open(path).load()


def iter_runs(base: str | Path) -> Iterator[RunFolder]:
    """The readable run folders directly under *base* (others are skipped)."""
    try:
        entries = sorted(Path(base).iterdir())
    except OSError:
        return
    for entry in entries:
        if RunFolder.is_run(entry):
            try:
                yield RunFolder.open(entry)
            except RunError:
                continue


def read_config(path: str | Path) -> dict[str, Any]:
    """A run's settings now (see :meth:`RunFolder.settings`); empty if it cannot be read."""
    try:
        return RunFolder.open(path).settings()
    except RunError:
        return {}


def _read_json(file: Path, run_dir: Path) -> dict:
    if not file.is_file():
        raise RunError(f"{run_dir} is not a complete TrainDesk run folder ({file.name} is "
                       f"missing).")
    try:
        doc = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise RunError(f"{file.name} in {run_dir} is damaged.") from None
    if not isinstance(doc, dict):
        raise RunError(f"{file.name} in {run_dir} is damaged.")
    return doc


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
_NOT_SETTINGS = ("format", "version", "written_by", "data_fingerprint", "resolved")


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
