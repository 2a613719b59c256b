"""Following a run folder that another process writes - a cluster job on a shared folder, a
``main.py train`` in a terminal - so its curves can be shown live.

The writer replaces ``run.json``, ``history.jsonl`` and ``metrics.json`` atomically (see
:mod:`ml.system.fileio`), so a reader never sees half a file; :class:`RunWatcher` looks at
their sizes and times and reads them again only when one changed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import RunError
from .folder import RunFolder
from .project import RunRecord

#: The files whose change means the run moved on.
WATCHED = ("run.json", "history.jsonl", "metrics.json")


@dataclass
class RunSnapshot:
    """A run as it was at one look."""

    path: Path
    title: str
    status: str
    #: Epochs asked for (0 when the settings do not say).
    epochs: int
    history: list[dict] = field(default_factory=list)
    metrics: dict = field(default_factory=dict)
    processes: int = 1
    device: str = ""
    #: When one of :data:`WATCHED` last changed (seconds since the epoch).
    written: float = 0.0
    language_model: bool = False
    #: ``classification``, ``regression`` or ``causal-lm``.
    task: str = ""
    model: str = ""
    created: str = ""

    def record(self) -> RunRecord:
        """The run's entry for a project's list (a job run elsewhere, brought home)."""
        test = self.metrics.get("test") or {}
        metrics = {k: float(v) for k, v in test.items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)}
        return RunRecord(id=self.path.name, path=str(self.path), created=self.created,
                         status=self.status, task=self.task, model=self.model,
                         metrics=metrics, epochs=len(self.history),
                         seconds=float(self.metrics.get("seconds") or 0.0), name=self.title)

    def curves(self) -> dict[str, dict[str, list[tuple[float, float]]]]:
        """The curves to draw: ``{"loss": {"training": [(epoch, value)], "validation":
        ...}, <the metric's name>: {...}}``, only what the history holds."""
        if self.language_model:
            pairs = {"loss": (("training", "loss"),),
                     "validation perplexity": (("validation", "val_perplexity"),)}
        else:
            metric = "accuracy" if any("accuracy" in h for h in self.history) else "mae"
            pairs = {"loss": (("training", "loss"), ("validation", "val_loss")),
                     metric: (("training", metric), ("validation", f"val_{metric}"))}
        out: dict[str, dict[str, list[tuple[float, float]]]] = {}
        for chart, series in pairs.items():
            lines = {name: [(float(h["epoch"]), float(h[key])) for h in self.history
                            if _plottable(h.get(key))] for name, key in series}
            lines = {name: points for name, points in lines.items() if points}
            if lines:
                out[chart] = lines
        return out

    def sentence(self, now: float | None = None) -> str:
        """One line for the user: where the run stands and how fresh that is."""
        done = len(self.history)
        of = f" of {self.epochs}" if self.epochs else ""
        where = f" in {self.processes} processes" if self.processes > 1 else ""
        ago = max(0.0, (now if now is not None else time.time()) - self.written)
        fresh = (f"{ago:.0f} s" if ago < 120 else f"{ago / 60:.0f} min") + " ago"
        line = f"{self.status.capitalize()}: epoch {done}{of}{where}; last written {fresh}."
        if self.status == "running" and ago > STALE_S:
            line += (" Nothing new for a while: the job may be queued again, stopped or lost "
                     "(its scheduler knows).")
        return line


#: Seconds without a change after which a "running" run is said to have gone quiet.
STALE_S = 600.0


def _plottable(value) -> bool:
    return isinstance(value, (int, float)) and value == value and abs(value) < 1e12


def _stamp(path: Path) -> tuple[int, int]:
    try:
        st = path.stat()
    except OSError:
        return (-1, -1)
    return (st.st_size, st.st_mtime_ns)


class RunWatcher:
    """Looks at the run folder *path* on each :meth:`poll`.

    Raises
    ------
    RunError
        From :meth:`poll`, when *path* is not (or no longer) a readable run folder.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._seen: tuple | None = None
        if not RunFolder.is_run(self.path):
            raise RunError(f"{self.path} is not a run folder (it has no run.json). Choose the "
                           f"folder a training run writes (the one given as --out).")

    def poll(self) -> RunSnapshot | None:
        """The run as it is now, or ``None`` when nothing changed since the last look."""
        stamps = tuple(_stamp(self.path / name) for name in WATCHED)
        if stamps == self._seen:
            return None
        folder = RunFolder.open(self.path)
        settings, info = folder.settings(), folder.info
        lm = folder.is_language_model
        section = settings.get("language_model" if lm else "training") or {}
        snapshot = RunSnapshot(
            path=self.path, title=folder.title, status=folder.status,
            epochs=int(section.get("epochs") or 0), history=folder.read_history(),
            metrics=folder.read_metrics(), processes=int(info.get("processes") or 1),
            device=str(info.get("device") or ""), language_model=lm,
            task="causal-lm" if lm else str((settings.get("resolved") or {}).get("task", "")),
            model=str(info.get("model") or ""), created=str(info.get("created") or ""),
            written=max((s[1] for s in stamps if s[1] >= 0), default=0) / 1e9)
        self._seen = stamps
        return snapshot
