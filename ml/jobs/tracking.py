"""A run logged to an MLflow tracking store, so a team compares runs across machines in MLflow's
own UI: its settings as parameters, every epoch's numbers and the test metrics as metrics, the
model files as artifacts, and later an exported model (``export ... --mlflow``) in the same
MLflow run.

The store is by default a local SQLite file in the TrainDesk home (``mlflow/mlflow.db``, the
artifacts beside it): nothing goes over the network unless the user gives a remote URI
(``http(s)://...``, ``databricks``...). MLflow's usage telemetry is switched off before it is
imported. ``run.json``'s ``mlflow`` (``{"uri", "run_id", "experiment"}``) remembers where the
run went, so logging it again (or its export) adds to that MLflow run rather than making
another.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from ..errors import TrainDeskError
from ..runs import tensorboard
from ..runs.folder import RunFolder
from ..system.resources import traindesk_home

EXPERIMENT = "TrainDesk"
#: The run folder's files logged as the run's artifacts (under ``run/``), when present.
RUN_FILES = ("model.safetensors", "model.json", "preprocessing.json", "config.json",
             "run.json", "metrics.json", "history.jsonl", "lm_model.safetensors",
             "adapter_model.safetensors", "adapter_config.json")
#: History keys that are not numbers to log per epoch.
NOT_METRICS = tensorboard.NOT_CURVES


@dataclass
class Logged:
    uri: str
    run_id: str
    experiment: str

    def sentence(self) -> str:
        return f"Logged to MLflow: experiment {self.experiment}, run {self.run_id} ({self.uri})."


def default_uri() -> str:
    """The local store: ``sqlite:///<TrainDesk home>/mlflow/mlflow.db``."""
    return f"sqlite:///{(traindesk_home() / 'mlflow' / 'mlflow.db').as_posix()}"


def is_local(uri: str) -> bool:
    """Whether *uri* stays on this machine (a SQLite file or a folder)."""
    if uri.startswith(("sqlite:", "file:", "/")):
        return True
    return "://" not in uri and not uri.startswith(("databricks", "uc:"))


def _mlflow():
    """MLflow, imported with its telemetry off (it would otherwise report usage)."""
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    os.environ["DO_NOT_TRACK"] = "true"
    try:
        import mlflow
    except ImportError:
        raise TrainDeskError("MLflow is not part of this TrainDesk (the app bundle leaves it "
                             "out): run TrainDesk from source (pip install -r requirements.txt) "
                             "to log to MLflow, or leave --mlflow out.") from None
    return mlflow


def _experiment(client, uri: str) -> str:
    """The TrainDesk experiment's id; a local store keeps its artifacts beside its file."""
    found = client.get_experiment_by_name(EXPERIMENT)
    if found is not None:
        return found.experiment_id
    location = None
    if uri.startswith("sqlite:///"):
        location = (Path(uri.removeprefix("sqlite:///")).parent / "artifacts").as_uri()
    return client.create_experiment(EXPERIMENT, artifact_location=location)


def _metrics(folder: RunFolder, after: int) -> list[tuple[str, float, int, int]]:
    """``(name, value, timestamp in ms, step)``: the numbers of every epoch after *after*,
    then the test metrics (step 0)."""
    try:
        started = _dt.datetime.fromisoformat(str(folder.info.get("created"))).timestamp()
    except ValueError:
        started = time.time()
    out = []
    for line in folder.read_history():
        step = int(line.get("epoch") or 0)
        at = int(1000 * (started + float(line.get("seconds") or 0.0)))
        for key, value in line.items():
            if step > after and key not in NOT_METRICS and _number(value):
                out.append((key, float(value), at, step))
    new_epochs = any(int(line.get("epoch") or 0) > after for line in folder.read_history())
    for key, value in (folder.read_metrics().get("test") or {}).items():
        if (new_epochs or not after) and _number(value):
            out.append((f"test_{key}", float(value), int(1000 * time.time()), 0))
    return out


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(
        float(value))


def log_run(run_dir: str | Path, uri: str | None = None, *,
            extra: list[Path] = ()) -> Logged:
    """Log the run in *run_dir* to the MLflow store *uri* (default: :func:`default_uri`);
    *extra* files (an exported model) go in as artifacts under ``export/``.

    Raises
    ------
    TrainDeskError
        MLflow is missing, or the store cannot be reached or written.
    """
    folder = RunFolder.open(run_dir)
    uri = uri or (folder.info.get("mlflow") or {}).get("uri") or default_uri()
    if uri.startswith("sqlite:///"):
        place = Path(uri.removeprefix("sqlite:///")).parent
        try:
            place.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TrainDeskError(f"Could not make the MLflow store's folder {place} "
                                 f"({exc.strerror or exc}); choose another store.") from None
    mlflow = _mlflow()
    try:
        with warnings.catch_warnings():  # MLflow's own deprecation notices are not the user's
            warnings.simplefilter("ignore")
            return _log(mlflow, folder, uri, list(extra))
    except TrainDeskError:
        raise
    except Exception as exc:  # noqa: BLE001 - MLflow's errors are many: one clear line
        raise TrainDeskError(f"Could not log {folder.title} to MLflow at {uri} "
                             f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]}).") from None


def _log(mlflow, folder: RunFolder, uri: str, extra: list[Path]) -> Logged:
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    known = folder.info.get("mlflow") or {}
    if known.get("uri") == uri and known.get("run_id"):
        run_id = known["run_id"]  # logged before: add to that MLflow run
    else:
        run = client.create_run(_experiment(client, uri), run_name=folder.title, tags={
            "traindesk.run_folder": str(folder.path), "traindesk.status": folder.status})
        run_id = run.info.run_id
        params = [Param(k, str(v)[:500]) for k, v in
                  tensorboard.hparams_of(folder.settings()).items()]
        for start in range(0, len(params), 100):  # MLflow takes at most 100 per batch
            client.log_batch(run_id, params=params[start:start + 100])
    after = int(known.get("epochs") or 0) if known.get("run_id") == run_id else 0
    metrics = [Metric(k, v, at, step) for k, v, at, step in _metrics(folder, after)]
    folder.update(mlflow={"uri": uri, "run_id": run_id, "experiment": EXPERIMENT,
                          "epochs": after})  # the run first: a failure below logs into it again
    client.log_batch(run_id, tags=[RunTag("traindesk.status", folder.status)])
    for start in range(0, len(metrics), 1000):
        client.log_batch(run_id, metrics=metrics[start:start + 1000])
    for name in RUN_FILES:
        if (folder.path / name).is_file():
            client.log_artifact(run_id, str(folder.path / name), "run")
    for path in extra:
        if Path(path).is_dir():
            client.log_artifacts(run_id, str(path), f"export/{Path(path).name}")
        else:
            client.log_artifact(run_id, str(path), "export")
    status = {"finished": "FINISHED", "failed": "FAILED"}.get(folder.status, "KILLED")
    client.set_terminated(run_id, status=status)
    folder.update(mlflow={"uri": uri, "run_id": run_id, "experiment": EXPERIMENT,
                          "epochs": len(folder.read_history())})  # all of them went in
    return Logged(uri, run_id, EXPERIMENT)
