"""Exporting a trained run: ONNX, ``torch.export`` (.pt2), safetensors + JSON spec.

Each export is written to a temporary file, checked by loading it in its own runtime and running
the test split through it, and only then moved over the target path - so a failed or mismatching
export never replaces a good file. Every export carries the preprocessing (column encodings,
scaling statistics, class names) inside the file where the format allows it, and always in a
``<name>.preprocessing.json`` file beside it, so raw input can be fed.

The exported graph takes the encoded features *before* standardisation (the standardisation is
inside the graph) and returns class probabilities, or predictions in the target's own units.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import ExportError, RunError, TrainDeskError
from ..models.spec import InferenceModel, ModelSpec, TrainDeskNet, build_model
from ..runs.folder import DEFAULT_THRESHOLD, Run, now_iso
from ..system.fileio import atomic_path, atomic_write_json
from ..system.jobcontrol import ShouldStop, check_stop

FORMATS = {
    "onnx": ("ONNX", ".onnx"),
    "pt2": ("PyTorch torch.export program", ".pt2"),
    "safetensors": ("safetensors weights + JSON model spec", ".safetensors"),
}
#: Opset 18 runs on onnxruntime >= 1.14 and most other runtimes.
ONNX_OPSET = 18
EXPORT_FORMAT = "traindesk-export"


@dataclass(frozen=True)
class ExportReport:
    """What was written and how well it reproduces the model."""

    format: str
    path: Path
    sidecar: Path
    n: int
    identical: int
    max_abs_diff: float
    checked_on: str = "test samples"
    #: Two classes: the decision threshold the export carries (``output.decision``), and its
    #: rule in words.
    threshold: float | None = None
    rule: str = ""

    @property
    def decides(self) -> str:
        """" It says <class> when ..." for a two-class export, else ""."""
        if self.threshold is None:
            return ""
        return f" It says {self.rule} (the decision threshold, kept in its metadata)."

    @property
    def summary(self) -> str:
        return (f"{FORMATS[self.format][0]} written to {self.path.name}; checked on {self.n} "
                f"{self.checked_on}: identical predictions {self.identical} of {self.n}, max "
                f"|difference| {self.max_abs_diff:.2g}.{self.decides}")


def inputs_for_check(run: Run) -> tuple[np.ndarray, str]:
    """Inputs to check an export with: the whole test split, or - when the data file has moved
    or changed since training - the sample of test inputs kept in the run folder."""
    from ..evaluation.evaluate import load_split

    try:
        return load_split(run, "test")[0], "test samples"
    except RunError:
        return run.check_inputs(), "test samples kept with the run (the data file has changed)"


_INPUT_NOTES = {
    "tabular": "encoded features before standardisation (see preprocessing)",
    "image": "pixels as float in [0, 1], layout N x C x H x W (see preprocessing.image)",
    "text": "token ids from preprocessing.tokenizer, padded with 0 (see preprocessing)",
}


def decision_rule(class_names: list[str], threshold: float) -> dict:
    """How a two-class export's probabilities become an answer (``output.decision``)."""
    return {"threshold": float(threshold), "positive_class": class_names[1],
            "rule": f"{class_names[1]} when its probability is at least {threshold:.2f}, "
                    f"else {class_names[0]}"}


def export_description(run: Run, fmt: str, model_file: str,
                       threshold: float | None = None) -> dict:
    """The JSON that travels with an export: what goes in, what comes out, how to encode it,
    and - two classes - the decision threshold (*threshold*, else the run's saved one)."""
    pre = run.preprocessor
    output = ({"kind": "probabilities", "shape": [None, pre.n_outputs],
               "class_names": list(pre.class_names)}
              if pre.task == "classification" else
              {"kind": "prediction", "shape": [None, 1], "units": f"same as {pre.target!r}"})
    threshold = run.threshold if threshold is None else threshold
    if threshold is not None:
        output["decision"] = decision_rule(list(pre.class_names), threshold)
    return {
        "format": EXPORT_FORMAT,
        "version": 1,
        "created": now_iso(),
        "model_file": model_file,
        "model_format": fmt,
        "task": pre.task,
        "input": {"name": "input", "shape": [None, *pre.input_shape], "dtype": pre.input_dtype,
                  "note": _INPUT_NOTES.get(pre.kind, _INPUT_NOTES["tabular"])},
        "output": output,
        "preprocessing": pre.to_dict(),
        "model_spec": run.spec.to_dict(),
        "run": run.path.name,
    }


def inference_model(run: Run, net: TrainDeskNet | None = None) -> InferenceModel:
    pre = run.preprocessor
    model = InferenceModel(net or run.load_model(), pre.task, pre.target_mean, pre.target_std)
    return model.eval()


def export_run(run: Run, fmt: str, out: str | Path, x_check: np.ndarray,
               net: TrainDeskNet | None = None, checked_on: str = "test samples", *,
               should_stop: ShouldStop | None = None) -> ExportReport:
    """Write *run*'s model as *fmt* to *out* and verify it on *x_check*.

    Parameters
    ----------
    fmt : {"onnx", "pt2", "safetensors"}
    out : path
        The model file; the suffix is added if missing.
    x_check : ndarray
        Encoded inputs (the test split) to compare the export against the model.

    Raises
    ------
    ExportError
        If writing fails or the export does not reproduce the model's predictions.
    Cancelled
        When *should_stop* returns True before the file is written or checked (then no file
        is kept: the export is written to a temporary file first).
    """
    out = export_path(fmt, out)
    return _export(inference_model(run, net), run.preprocessor.task,
                   export_description(run, fmt, out.name), fmt, out, x_check, checked_on,
                   should_stop)


def export_ensemble(ensemble, fmt: str, out: str | Path, x_check: np.ndarray,
                    checked_on: str = "test samples", *,
                    should_stop: ShouldStop | None = None) -> ExportReport:
    """Write an :class:`ml.evaluation.ensemble.Ensemble` as one model (the averaging inside it)
    and verify it on *x_check*, like :func:`export_run`."""
    out = export_path(fmt, out)
    first = ensemble.runs[0]
    # The average is a new model: it decides at the default threshold, as it is evaluated.
    description = export_description(first, fmt, out.name,
                                     DEFAULT_THRESHOLD if first.threshold is not None else None)
    del description["model_spec"]
    description["run"] = ensemble.name
    description["ensemble"] = {
        "combine": ("mean of the members' probabilities" if ensemble.task == "classification"
                    else "mean of the members' predictions"),
        "members": [{"run": run.path.name, "model_spec": run.spec.to_dict(),
                     "target_scaling": {"mean": run.preprocessor.target_mean,
                                        "std": run.preprocessor.target_std}}
                    for run in ensemble.runs]}
    return _export(ensemble.inference_model(), ensemble.task, description, fmt, out, x_check,
                   checked_on, should_stop)


def export_path(fmt: str, out: str | Path) -> Path:
    """*out* with the format's suffix; :class:`ExportError` for an unknown format or a folder."""
    if fmt not in FORMATS:
        raise ExportError(f"Unknown export format {fmt!r}; use one of {', '.join(FORMATS)}.")
    out = Path(out)
    if out.suffix.lower() != FORMATS[fmt][1]:
        out = out.with_name(out.name + FORMATS[fmt][1])
    if out.is_dir():
        raise ExportError(f"{out} is a folder; give a file name for the export.")
    return out


def _export(model: torch.nn.Module, task: str, description: dict, fmt: str, out: Path,
            x_check: np.ndarray, checked_on: str, should_stop: ShouldStop | None = None
            ) -> ExportReport:
    if len(x_check) == 0:
        raise ExportError("There are no test samples to check the export with.")
    if x_check.dtype == np.uint8:  # image bytes: the exported model takes [0, 1] floats
        x_check = x_check.astype(np.float32) / np.float32(255.0)
    with torch.no_grad():
        reference = model(torch.from_numpy(x_check)).numpy()
    sidecar = out.with_name(out.stem + ".preprocessing.json")
    with atomic_path(out, error=ExportError) as tmp:
        check_stop(should_stop, _STOPPED)
        produced = _write_and_run(fmt, model, x_check, tmp, description, should_stop)
        report = _compare(fmt, out, sidecar, task, reference, produced)
    atomic_write_json(sidecar, description, error=ExportError)
    decision = description["output"].get("decision") or {}
    return dataclasses.replace(report, checked_on=checked_on,
                               threshold=decision.get("threshold"), rule=decision.get("rule", ""))


_STOPPED = "The export was stopped; no file was written."


def _write_and_run(fmt: str, model: torch.nn.Module, x: np.ndarray, tmp: Path, description: dict,
                   should_stop: ShouldStop | None) -> np.ndarray:
    """Write the export to *tmp* and return *x* run through the written file, in its runtime.

    On a worker thread (the app's), ONNX is converted and run in a child process
    (:mod:`ml.export.onnx_child`): importing ``onnx`` holds the GIL for over half a second,
    which froze the window.
    """
    if fmt == "onnx":
        from . import onnx_child

        if onnx_child.wanted():
            return onnx_child.export_onnx_in_child(model, x, tmp, description, should_stop)
    writer, loader = _WRITERS[fmt]
    try:
        writer(model, x, tmp, description)
    except TrainDeskError:
        raise
    except Exception as exc:  # noqa: BLE001 - exporter internals raise many kinds
        raise ExportError(f"The {FORMATS[fmt][0]} export failed: {exc}") from exc
    check_stop(should_stop, _STOPPED)  # the temporary file is removed, nothing is kept
    try:
        return loader(tmp, x)
    except Exception as exc:  # noqa: BLE001
        raise ExportError(f"The written {FORMATS[fmt][0]} file could not be run: "
                          f"{exc}") from exc


def _compare(fmt: str, out: Path, sidecar: Path, task: str, reference: np.ndarray,
             produced: np.ndarray) -> ExportReport:
    produced = np.asarray(produced, np.float32).reshape(reference.shape)
    diff = float(np.max(np.abs(produced - reference))) if reference.size else 0.0
    if task == "classification":
        identical = int(np.sum(produced.argmax(1) == reference.argmax(1)))
        ok = identical == len(reference) and diff <= 1e-4
    else:
        close = np.abs(produced - reference) <= 1e-4 * (1.0 + np.abs(reference))
        identical = int(np.sum(close.all(axis=1)))
        ok = identical == len(reference)
    report = ExportReport(fmt, out, sidecar, len(reference), identical, diff)
    if not ok:
        raise ExportError(f"The {FORMATS[fmt][0]} export does not reproduce the model: identical "
                          f"predictions {identical} of {len(reference)}, max |difference| "
                          f"{diff:.3g}. The file was not saved.")
    return report


# -- ONNX ---------------------------------------------------------------------------------------
def _write_onnx(model: InferenceModel, x: np.ndarray, path: Path, description: dict) -> None:
    import onnx

    example = torch.from_numpy(x[: max(2, min(len(x), 8))])
    if len(example) < 2:  # a batch of 1 would be specialised to a fixed size
        example = torch.cat([example, example])
    batch = torch.export.Dim("batch", min=1)
    with _quiet_exporter_logs(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (example,), str(path), dynamo=True, external_data=False,
                          input_names=["input"], output_names=["output"],
                          dynamic_shapes=({0: batch},), opset_version=ONNX_OPSET,
                          verbose=False)
    proto = onnx.load(str(path))
    _drop_onnx_stack_traces(proto.graph)
    for function in proto.functions:
        _drop_onnx_stack_traces(function)
    entry = proto.metadata_props.add()
    entry.key, entry.value = "traindesk", json.dumps(description)
    decision = description["output"].get("decision")
    if decision:  # also on its own, for runtimes that show metadata but parse no JSON
        entry = proto.metadata_props.add()
        entry.key, entry.value = "decision_threshold", repr(decision["threshold"])
    proto.producer_name = "TrainDesk"
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))


#: Loggers whose warnings during the ONNX conversion are not actionable for the user: the
#: exporter's notes about optional torchvision ops, and onnxscript's constant folder, which
#: warns "Evaluation failed: cannot reshape ..." for each node it cannot compute ahead of time
#: (MiniLM's graph has two) - such a node simply stays in the graph, and every export is checked
#: against the model's own predictions anyway. Errors still get through.
QUIET_LOGGERS = ("torch.onnx._internal.exporter._registration",
                 "onnxscript.optimizer._constant_folding")


@contextlib.contextmanager
def _quiet_exporter_logs() -> Iterator[None]:
    """Raise :data:`QUIET_LOGGERS` to ERROR while the block runs, then restore their levels."""
    loggers = [logging.getLogger(name) for name in QUIET_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _drop_onnx_stack_traces(graph) -> None:
    """Remove the exporter's per-node Python stack traces from *graph* and its subgraphs: they
    name this machine's source and site-packages paths, which an export must not carry."""
    for node in graph.node:
        kept = [p for p in node.metadata_props if p.key != "pkg.torch.onnx.stack_trace"]
        if len(kept) != len(node.metadata_props):
            del node.metadata_props[:]
            node.metadata_props.extend(kept)
        for attribute in node.attribute:
            if attribute.HasField("g"):
                _drop_onnx_stack_traces(attribute.g)
            for subgraph in attribute.graphs:
                _drop_onnx_stack_traces(subgraph)


def _run_onnx(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


# -- torch.export -------------------------------------------------------------------------------
def _write_pt2(model: InferenceModel, x: np.ndarray, path: Path, description: dict) -> None:
    example = torch.from_numpy(x[: max(2, min(len(x), 8))])
    if len(example) < 2:
        example = torch.cat([example, example])
    batch = torch.export.Dim("batch", min=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.export.export(model, (example,), dynamic_shapes=({0: batch},))
        # The nodes' stack traces name this machine's source paths; the file must not carry them.
        for module in program.graph_module.modules():
            if isinstance(module, torch.fx.GraphModule):
                for node in module.graph.nodes:
                    node.meta.pop("stack_trace", None)
        torch.export.save(program, str(path),
                          extra_files={"traindesk.json": json.dumps(description)})


def _run_pt2(path: Path, x: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.export.load(str(path))
        with torch.no_grad():
            return program.module()(torch.from_numpy(x)).numpy()


# -- safetensors --------------------------------------------------------------------------------
def _write_safetensors(model: torch.nn.Module, x: np.ndarray, path: Path,
                       description: dict) -> None:
    from safetensors.torch import save_file

    if "ensemble" in description:  # member i's weights are "member<i>.<name>"
        state = {f"member{i}.{k}": v.detach().cpu().contiguous()
                 for i, member in enumerate(model.members)
                 for k, v in member.net.state_dict().items()}
    else:
        state = {k: v.detach().cpu().contiguous() for k, v in model.net.state_dict().items()}
    save_file(state, str(path), metadata={"format": EXPORT_FORMAT,
                                          "traindesk": json.dumps(description)})


def _run_safetensors(path: Path, x: np.ndarray) -> np.ndarray:
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), framework="pt") as fh:
        description = json.loads(fh.metadata()["traindesk"])
    weights = load_file(str(path))
    if "ensemble" in description:
        outputs = []
        for i, member in enumerate(description["ensemble"]["members"]):
            net = build_model(ModelSpec.from_dict(member["model_spec"]))
            prefix = f"member{i}."
            net.load_state_dict({k[len(prefix):]: v for k, v in weights.items()
                                 if k.startswith(prefix)})
            scaling = member["target_scaling"]
            model = InferenceModel(net, description["task"], scaling["mean"],
                                   scaling["std"]).eval()
            with torch.no_grad():
                outputs.append(model(torch.from_numpy(x)).numpy())
        return np.mean(outputs, axis=0)
    net = build_model(ModelSpec.from_dict(description["model_spec"]))
    net.load_state_dict(weights)
    scaling = description["preprocessing"]["target_scaling"]
    model = InferenceModel(net, description["task"], scaling["mean"], scaling["std"]).eval()
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


_WRITERS: dict[str, tuple[Callable, Callable]] = {
    "onnx": (_write_onnx, _run_onnx),
    "pt2": (_write_pt2, _run_pt2),
    "safetensors": (_write_safetensors, _run_safetensors),
}
