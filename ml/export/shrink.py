"""Make a trained model smaller: magnitude pruning with fine-tuning, and knowledge distillation.

Both make a *new run* beside the chosen one (its split, preprocessing and data are the same), so
the result is an ordinary run: it is listed, evaluated, compared and exported like any other, and
its ``run.json`` says what it was made from (``derived_from``).

* **Pruning** sets the weights of smallest magnitude to zero - a share of all linear and
  convolution weights taken together (global magnitude pruning) - and fine-tunes the rest for a
  few epochs at a tenth of the learning rate. The zeros stay zero: their gradients are masked.
  A pruned ONNX file is as large as the original (dense storage) but compresses to much less in
  a .zip, and fewer non-zero weights is what sparse runtimes exploit.
* **Distillation** trains a smaller student network (a narrower copy of the teacher or a smaller
  preset) on the teacher's softened outputs (Hinton et al., 2015): the loss mixes the KL
  divergence to the teacher's probabilities at a temperature *T* (scaled by T²) with the usual
  loss on the true labels. Regression students match the teacher's predictions and the targets.

:func:`measure_runs` exports each model to ONNX and measures them the same way as the int8
variants (:mod:`ml.export.compress`): file size, zipped size, latency per sample, test metric.
"""

from __future__ import annotations

import copy
import dataclasses
import re
import tempfile
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import RunError, TrainDeskError
from ..evaluation.evaluate import evaluate_arrays, load_split
from ..models.presets import PRESET_INFO, build_spec, preset_fits, suggested_lr
from ..models.spec import build_model, summarize
from ..models.tabular import members
from ..runs.folder import Run, RunFolder, iter_runs, load_run, now_iso, project_from_config
from ..runs.project import ModelConfig
from ..training.callbacks import Callback
from ..training.checkpoint import RunWriter
from ..training.trainer import Trainer, predict_raw

#: Prunable shares offered by the app (the CLI takes any between 0.05 and 0.99).
SPARSITIES = (0.3, 0.5, 0.7, 0.8, 0.9)
#: Distillation: softening temperature and the weight of the teacher's term.
TEMPERATURE, ALPHA = 4.0, 0.7
#: Presets whose widths can be halved for a "narrower copy" student.
_HALVABLE = ("mlp", "mlp_small", "mlp_large", "mlp_bn", "cnn", "vgg", "resnet", "text")
_FIXED_HIDDEN = {"mlp_small": [64, 32], "mlp_large": [512, 256, 128]}


class ShrinkError(TrainDeskError):
    """Pruning or distillation cannot be done as asked (the message says why and what to do)."""


@dataclass(frozen=True)
class Student:
    """A network distillation can train: a preset, or a narrower copy of the teacher."""

    key: str  # "half" or a preset name
    title: str
    params: int
    config: ModelConfig = field(repr=False, compare=False)


@dataclass
class ShrinkResult:
    """A pruned or distilled run, written and evaluated."""

    run_dir: Path
    method: str  # prune | distill
    label: str
    metrics: dict
    params: int
    nonzero: int
    teacher_dir: Path | None = None
    history: list[dict] = field(default_factory=list)

    def record(self):
        """The entry for the project's list of runs."""
        from ..runs.project import RunRecord

        return RunRecord(id=self.run_dir.name, path=str(self.run_dir), created=now_iso(),
                         status=self.metrics.get("status", "finished"),
                         task=self.metrics.get("task", ""),
                         model=self.metrics.get("model", ""), label=self.label,
                         metrics=dict(self.metrics.get("test", {})),
                         epochs=int(self.metrics.get("epochs_completed", 0)),
                         seconds=round(float(self.metrics.get("train_seconds", 0.0)), 2))


# -- choices ------------------------------------------------------------------------------------
def _teacher_project(run: Run):
    project = project_from_config(run.config, run.path.name)
    if not run.has_model:
        raise ShrinkError(f"Run {run.path.name} has no trained model to start from; train it "
                          f"first.")
    return project


def _param_count(spec) -> int:
    return int(summarize(spec).total_params)


def student_choices(run: Run) -> list[Student]:
    """Networks smaller than *run*'s that fit its data, largest first: a copy with half the
    widths (for presets with widths), then the smaller presets of the same kind."""
    pre = run.preprocessor
    teacher = _param_count(run.spec)
    base = _teacher_project(run).model
    found: dict[str, Student] = {}
    if not base.layers and run.spec.name in _HALVABLE:
        half = copy.deepcopy(base)
        half.preset = "mlp" if run.spec.name in ("mlp_small", "mlp_large") else run.spec.name
        hidden = _FIXED_HIDDEN.get(run.spec.name, base.hidden)
        half.hidden = [max(4, int(h) // 2) for h in hidden]
        half.conv_channels = [max(4, int(c) // 2) for c in base.conv_channels]
        try:
            params = _param_count(build_spec(half, pre.model_input(), pre.n_outputs, pre.task))
        except TrainDeskError:
            params = teacher
        if params < teacher:
            found["half"] = Student("half", f"{PRESET_INFO[run.spec.name].title} at half width",
                                    params, half)
    kind = pre.kind if pre.kind in ("tabular", "image", "text") else "tabular"
    for name, info in PRESET_INFO.items():
        if not preset_fits(name, kind) or name == run.spec.name and base.layers == []:
            continue
        config = copy.deepcopy(base)
        config.preset, config.layers, config.init_from = name, [], ""
        try:
            params = _param_count(build_spec(config, pre.model_input(), pre.n_outputs, pre.task))
        except TrainDeskError:
            continue
        if params < teacher:
            found[name] = Student(name, info.title, params, config)
    return sorted(found.values(), key=lambda s: -s.params)


# -- the jobs -----------------------------------------------------------------------------------
def magnitude_masks(net: nn.Module, sparsity: float) -> dict[str, torch.Tensor]:
    """Masks (1 keep, 0 drop) for the weights of every linear and convolution layer, dropping
    the *sparsity* share of them with the smallest magnitude across all layers together."""
    weights = {f"{name}.weight": m.weight for name, m in net.named_modules()
               if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d))}
    if not weights:
        raise ShrinkError("This model has no linear or convolution weights to prune.")
    flat = torch.cat([w.detach().abs().reshape(-1) for w in weights.values()])
    k = int(round(float(sparsity) * flat.numel()))
    if k <= 0:
        return {name: torch.ones_like(w) for name, w in weights.items()}
    threshold = torch.kthvalue(flat, k).values
    # Weights tied at the threshold go too: the share dropped is at least *sparsity*.
    return {name: (w.detach().abs() > threshold).to(w.dtype) for name, w in weights.items()}


def sparsity_of(net: nn.Module) -> tuple[int, int]:
    """``(non-zero, total)`` weights of the linear and convolution layers of *net*."""
    nonzero = total = 0
    for m in net.modules():
        if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            nonzero += int(torch.count_nonzero(m.weight))
            total += m.weight.numel()
    return nonzero, total


class _DistillTrainer(Trainer):
    """A :class:`Trainer` whose training targets are row numbers into the teacher's outputs and
    the labels, so the batches carry both; validation scores the true labels as usual."""

    def __init__(self, *args, teacher_out: np.ndarray, labels: np.ndarray,
                 temperature: float = TEMPERATURE, alpha: float = ALPHA, **kwargs):
        super().__init__(*args, **kwargs)
        self._teacher = torch.from_numpy(np.ascontiguousarray(teacher_out, np.float32))
        self._labels = torch.from_numpy(np.ascontiguousarray(labels))
        self.temperature, self.alpha = float(temperature), float(alpha)
        self._by_row = True

    def fit(self, x_train, y_train, x_val=None, y_val=None, *, resume=None):
        self._teacher = self._teacher.to(self.device)
        self._labels = self._labels.to(self.device)
        rows = np.arange(len(x_train), dtype=np.int64)
        return super().fit(x_train, rows, x_val, y_val, resume=resume)

    def _loss(self, out, y, weight=None, training=False):
        if not (training and self._by_row):
            return super()._loss(out, y, weight, training)
        out, y = members(out, y)  # an ensemble student: every member learns from the teacher
        teacher, labels = self._teacher[y], self._labels[y]
        hard = super()._loss(out, labels, weight, training)
        if self.task != "classification":
            soft = nn.functional.mse_loss(out.float().reshape(-1), teacher.reshape(-1))
            return self.alpha * soft + (1 - self.alpha) * hard
        t = self.temperature
        soft = nn.functional.kl_div(nn.functional.log_softmax(out.float() / t, dim=1),
                                    nn.functional.log_softmax(teacher / t, dim=1),
                                    reduction="batchmean", log_target=True) * (t * t)
        return self.alpha * soft + (1 - self.alpha) * hard

    def _batch_metric(self, out, y):
        return super()._batch_metric(out, self._labels[y] if self._by_row else y)

    def evaluate_arrays(self, x, y):
        self._by_row = False  # true targets, not row numbers
        try:
            return super().evaluate_arrays(x, y)
        finally:
            self._by_row = True


class _Stopper(Callback):
    def __init__(self, job: ShrinkJob):
        self.job = job

    def on_batch_end(self, step, logs):
        if self.job.stop_requested:
            self.trainer.should_stop = True


class ShrinkJob:
    """Prune or distil the model of the run in *run_dir* into a new run beside it.

    Parameters
    ----------
    method : {"prune", "distill"}
    sparsity : float
        Pruning: the share of linear/convolution weights set to zero (0.05 to 0.99).
    student : str
        Distillation: a key of :func:`student_choices` (``"half"`` or a preset); ``"auto"``
        takes the narrower copy where there is one, else the largest smaller preset.
    epochs : int, optional
        Fine-tuning epochs (pruning, default a quarter of the teacher's, 2 to 10) or the
        student's epochs (default the teacher's).
    callbacks : iterable of Callback
        Passed to the trainer (progress for the GUI or the console).
    """

    def __init__(self, run_dir: str | Path, method: str, *, sparsity: float = 0.5,
                 student: str = "auto", epochs: int | None = None,
                 temperature: float = TEMPERATURE, alpha: float = ALPHA,
                 callbacks: Iterable[Callback] = (),
                 on_message: Callable[[str], None] | None = None):
        if method not in ("prune", "distill"):
            raise ShrinkError(f"Unknown method {method!r}; use prune or distill.")
        if method == "prune" and not 0.05 <= float(sparsity) <= 0.99:
            raise ShrinkError(f"The share of weights to prune must be between 5% and 99% "
                              f"(got {float(sparsity):.0%}).")
        if epochs is not None and not 1 <= int(epochs) <= 10_000:
            raise ShrinkError(f"Epochs must be 1 or more (got {epochs}).")
        if not 1.0 <= float(temperature) <= 50.0 or not 0.0 <= float(alpha) <= 1.0:
            raise ShrinkError("The temperature must be 1 to 50 and the teacher's weight 0 to 1.")
        self.run_dir = Path(run_dir)
        self.method, self.sparsity, self.student = method, float(sparsity), student
        self.epochs = None if epochs is None else int(epochs)
        self.temperature, self.alpha = float(temperature), float(alpha)
        self.callbacks = list(callbacks)
        self.on_message = on_message or (lambda message: None)
        self._stop = threading.Event()
        self.trainer: Trainer | None = None

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def request_stop(self) -> None:
        """Stop after the current batch; the run keeps the best epoch so far. Any thread."""
        self._stop.set()
        if self.trainer is not None:
            self.trainer.should_stop = True

    def run(self) -> ShrinkResult:
        """Train and write the new run.

        Raises
        ------
        TrainDeskError
            When the teacher's data is gone, the method does not fit the model, or a file
            cannot be written.
        """
        say = self.on_message
        teacher = load_run(self.run_dir)
        project = _teacher_project(teacher)
        say(f"Loading the data of {teacher.path.name} ...")
        try:
            train = load_split(teacher, "train")
            val = load_split(teacher, "val")
            x_test, y_test, examples = load_split(teacher, "test", with_examples=True)
        except RunError as exc:
            raise ShrinkError(f"Pruning and distillation train on the run's data: {exc}") \
                from None
        teacher_net = teacher.load_model()
        training = copy.deepcopy(project.training)
        training.early_stopping = False
        training.warmup_epochs = 0
        if self.method == "prune":
            net, spec, label, derived = self._pruned(teacher, teacher_net, project, training)
        else:
            net, spec, label, derived = self._student(teacher, project, training)
        project.training = training
        project.model.init_from = ""
        folder = self._start_folder(teacher, project, spec, label, derived, x_test)
        pre = teacher.preprocessor
        try:
            fit = self._fit(folder, net, teacher_net, pre, training, train, val)
            folder.save_weights(net)
            evaluation = evaluate_arrays(net, pre, x_test, y_test, "test split",
                                         None if pre.kind == "image" else examples)
        except BaseException as exc:
            reason = str(exc) if isinstance(exc, TrainDeskError) else f"{type(exc).__name__}: {exc}"
            try:
                folder.update(status="failed", error=reason)
            except TrainDeskError:
                pass
            raise
        finally:
            self.trainer = None
        metrics, nonzero = self._write_results(folder, net, spec, pre.task, training, fit,
                                               evaluation)
        say(f"{label}: test " + ", ".join(f"{k} {v:.4f}" for k, v in metrics["test"].items()))
        return ShrinkResult(run_dir=folder.path, method=self.method, label=label,
                            metrics=metrics, params=metrics["params"], nonzero=nonzero,
                            teacher_dir=teacher.path, history=list(fit.history))

    def _pruned(self, teacher: Run, net: nn.Module, project, training) -> tuple:
        """The teacher's network with its smallest weights zeroed and held at zero, and a
        gentle fine-tuning schedule; ``(net, spec, label, derived_from)``."""
        masks = magnitude_masks(net, self.sparsity)
        with torch.no_grad():
            for name, p in net.named_parameters():
                if name in masks:
                    p.mul_(masks[name])
                    # The dropped weights get no gradient, so every optimizer keeps them 0
                    # (Adam's moments stay 0; decoupled decay of 0 is 0).
                    p.register_hook(lambda g, m=masks[name]: g * m.to(g.device))
        training.epochs = self.epochs or int(min(10, max(2, project.training.epochs // 4)))
        training.lr = float(project.training.lr) / 10
        training.schedule = "constant"
        label = f"pruned {self.sparsity:.0%} of {teacher.path.name}"
        derived = {"run": teacher.path.name, "method": "prune", "sparsity": self.sparsity}
        self.on_message(f"Set {self.sparsity:.0%} of the weights to zero; fine-tuning for "
                        f"{training.epochs} epochs at learning rate {training.lr:g}.")
        return net, teacher.spec, label, derived

    def _student(self, teacher: Run, project, training) -> tuple:
        """A fresh smaller network to distil into; ``(net, spec, label, derived_from)``."""
        pre = teacher.preprocessor
        choices = {s.key: s for s in student_choices(teacher)}
        if not choices:
            raise ShrinkError(f"There is no smaller network than {teacher.spec.name} for "
                              f"this data to distil into.")
        key = self.student
        if key == "auto":  # the same design narrower, else the largest smaller one
            key = "half" if "half" in choices else next(iter(choices))
        if key not in choices:
            raise ShrinkError(f"{key!r} is not a smaller network for this run; choose one "
                              f"of: {', '.join(choices)}.")
        student = choices[key]
        spec = build_spec(student.config, pre.model_input(), pre.n_outputs, pre.task)
        torch.manual_seed(training.seed)
        net = build_model(spec, pre.feature_mean, pre.feature_std)
        project.model = student.config
        training.epochs = self.epochs or int(project.training.epochs)
        # The teacher's rate suits a narrower copy; another preset gets its own default.
        if spec.name != teacher.spec.name:
            training.lr = suggested_lr(spec.name)
        label = f"{student.title} distilled from {teacher.path.name}"
        derived = {"run": teacher.path.name, "method": "distill", "student": key,
                   "temperature": self.temperature, "alpha": self.alpha}
        self.on_message(f"Teacher: {teacher.spec.name} ({_param_count(teacher.spec):,} "
                        f"parameters); student: {student.title} ({student.params:,}); "
                        f"{training.epochs} epochs.")
        return net, spec, label, derived

    def _start_folder(self, teacher: Run, project, spec, label: str, derived: dict,
                      x_test) -> RunFolder:
        """The new run's folder beside the teacher's, started like any run's."""
        pre = teacher.preprocessor
        # "<stamp>-iris-flowers-mlp-pruned", not the teacher's time stamp twice.
        stem = re.sub(r"^\d{8}-\d{6}-", "", teacher.path.name)[:30]
        folder = RunFolder.create(teacher.path.parent,
                                  f"{stem}-{'pruned' if self.method == 'prune' else 'distilled'}")
        config = copy.deepcopy(teacher.config)
        config["model"] = dataclasses.asdict(project.model)
        config["training"] = dataclasses.asdict(project.training)
        info = {"id": folder.path.name, "created": now_iso(), "status": "running",
                "task": pre.task, "model": spec.name, "dataset": teacher.info.get("dataset", ""),
                "label": label, "derived_from": derived}
        # The same rows as the teacher's, so the same hashes of its training rows (if any).
        folder.start(config=config, rows=teacher.split_rows(), preprocessor=pre, spec=spec,
                     info=info, x_test=x_test, row_hashes=teacher.folder.row_hashes())
        return folder

    def _fit(self, folder: RunFolder, net: nn.Module, teacher_net: nn.Module, pre, training,
             train: tuple, val: tuple):
        """Fine-tune (pruning) or distil (the teacher's soft outputs as targets)."""
        (x_train, y_train), (x_val, y_val) = train, val
        callbacks = [RunWriter(folder), _Stopper(self), *self.callbacks]
        kwargs = dict(callbacks=callbacks, target_scale=pre.target_std)
        if self.method == "distill":
            self.on_message("Computing the teacher's outputs on the training split ...")
            soft = predict_raw(teacher_net, x_train)
            trainer = _DistillTrainer(net, pre.task, training, teacher_out=soft,
                                      labels=y_train, temperature=self.temperature,
                                      alpha=self.alpha, **kwargs)
        else:
            trainer = Trainer(net, pre.task, training, **kwargs)
        self.trainer = trainer
        if self._stop.is_set():
            trainer.should_stop = True
        return trainer.fit(x_train, y_train, x_val, y_val)

    def _write_results(self, folder: RunFolder, net: nn.Module, spec, task: str, training,
                       fit, evaluation) -> tuple[dict, int]:
        """metrics.json and the final status; the metrics and the nonzero weights."""
        nonzero, total = sparsity_of(net)
        status = "stopped" if fit.stopped else "finished"
        keys = ("accuracy", "f1_macro") if task == "classification" else ("mae", "rmse", "r2")
        metrics = {"task": task, "test": {k: evaluation.metrics[k] for k in keys},
                   "n_test": evaluation.n, "train_seconds": fit.seconds,
                   "samples_per_second": fit.samples_per_second, "device": fit.device,
                   "epochs_completed": fit.epochs_completed, "best_epoch": fit.best_epoch,
                   "early_stopped": False, "status": status,
                   "batch_size": training.batch_size, "oom_retries": [],
                   "params": sum(p.numel() for p in net.parameters()),
                   "nonzero_weights": nonzero, "prunable_weights": total,
                   "model": spec.name}
        folder.write_metrics(metrics)
        folder.update(status=status, epochs_completed=fit.epochs_completed,
                      best_epoch=fit.best_epoch)
        return metrics, nonzero


# -- measuring ----------------------------------------------------------------------------------
def measure_runs(runs: list[Run], names: list[str] | None = None, folder: str | Path | None = None):
    """Export each run to ONNX (checked) and measure it on the first run's test split: file
    size, zipped size, latency per sample and test metric.

    Returns a :class:`~ml.export.compress.CompressionReport` (first row: the first run).

    Raises
    ------
    ShrinkError
        When the test split cannot be read or the runs are not of the same data.
    """
    from . import export_run
    from .compress import CompressionReport, compression_inputs, measurer

    first = runs[0]
    for other in runs[1:]:
        if not np.array_equal(other.split_rows()["test"], first.split_rows()["test"]):
            raise ShrinkError(f"{other.path.name} was not tested on the same rows as "
                              f"{first.path.name}; only runs on the same split can be compared.")
    x, y, _ = compression_inputs(first)
    measure = measurer(first.preprocessor, x, y)
    names = names or [r.path.name for r in runs]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(folder) if folder else Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        # Export (and check) everything first: timing a model right after an export would
        # measure the exporter's leftover work too.
        paths = [export_run(run, "onnx", out / f"{run.path.name}.onnx", x,
                            checked_on="test samples").path for run in runs]
        return CompressionReport([measure(name, path) for name, path in zip(names, paths)])


def compare_smaller(original: Run, smaller: list[Run] | None = None):
    """Measure *original* beside its smaller versions (default: every run derived from it), each
    named as :func:`variant_name` says; None when there are none. See :func:`measure_runs`."""
    smaller = derived_runs(original) if smaller is None else smaller
    if not smaller:
        return None
    report = measure_runs([original, *smaller], ["original", *map(variant_name, smaller)])
    _keep_measured(original, report)
    return report


def _keep_measured(original: Run, report):
    """Keep *report* with *original*'s run, merged into what was measured of it before (one
    row per version, the newest measurement of each), so its report shows them all."""
    from .compress import CompressionReport

    kept = CompressionReport.from_dict(original.folder.smaller_tables().get("derived") or {})
    fresh = {v.name for v in report.variants}
    rows = list(report.variants) + [v for v in (kept.variants if kept else [])
                                    if v.name not in fresh]
    try:
        original.folder.record_smaller("derived", CompressionReport(rows).to_dict())
    except RunError:
        pass  # a read-only run folder: the measurement is still shown where it was asked for


def derived_runs(run: Run) -> list[Run]:
    """The finished pruned or distilled runs made from *run* (beside it), oldest first."""
    found = []
    for folder in iter_runs(run.path.parent):
        derived = folder.info.get("derived_from")
        if (folder.path != run.path and isinstance(derived, dict)
                and derived.get("run") == run.path.name
                and folder.status in ("finished", "stopped") and folder.has_model):
            try:
                found.append(folder.load())
            except RunError:
                continue
    return found


def variant_name(run: Run) -> str:
    """A short name for a derived run in a comparison: "pruned 50%", "distilled (mlp_small)"."""
    derived = run.info.get("derived_from") or {}
    if derived.get("method") == "prune":
        return f"pruned {float(derived.get('sparsity', 0)):.0%}"
    if derived.get("method") == "distill":
        return f"distilled ({run.spec.name}{', half' if derived.get('student') == 'half' else ''})"
    return run.path.name
