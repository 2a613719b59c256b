"""Model compression for ONNX exports: int8 quantisation, measured before and after.

* **Dynamic int8** (weights stored as int8, activations quantised on the fly): for any model;
  the weights of linear layers take a quarter of the space.
* **Static int8** (conv nets): activations are quantised too, with ranges calibrated on training
  inputs (QDQ format), which is what makes convolutions faster on CPUs.

Every variant is measured on the test split with onnxruntime: file size, latency per sample (one
sample at a time, the median over repeats, on this machine's CPU) and the test metric. A
quantised model whose metric falls further than :data:`TOLERANCE` below the original is an error,
and its file is not kept.
"""

from __future__ import annotations

import dataclasses
import math
import os
import statistics
import tempfile
import time
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ExportError, RunError
from ..system.fileio import atomic_path

#: The largest drop of the test metric a quantised model may show: accuracy in points of a
#: fraction (0.02 = two percentage points) for classes, R² for numbers.
TOLERANCE = 0.02
#: Calibration inputs for static quantisation (taken from the training split).
CALIBRATION_ROWS = 256


@dataclass(frozen=True)
class Variant:
    """One model file, measured."""

    name: str  # "original", "int8 (dynamic)", "int8 (static)"
    path: Path
    size_bytes: int
    latency_ms: float
    metric_name: str  # accuracy | r2
    metric: float
    #: The file's size in a .zip (zeros of a pruned model cost almost nothing there).
    zipped_bytes: int = 0


@dataclass(frozen=True)
class CompressionReport:
    """The original export and its compressed variants, measured the same way."""

    variants: list[Variant]

    def to_dict(self) -> dict:
        """The measurements as JSON (kept with the run: see ``RunFolder.record_smaller``)."""
        return {"variants": [{**dataclasses.asdict(v), "path": str(v.path),
                              "metric": v.metric if math.isfinite(v.metric) else None}
                             for v in self.variants]}

    @classmethod
    def from_dict(cls, doc: dict) -> CompressionReport | None:
        """A report read back from :meth:`to_dict`; ``None`` when *doc* is damaged."""
        try:
            variants = [Variant(name=str(v["name"]), path=Path(str(v.get("path", ""))),
                                size_bytes=int(v["size_bytes"]),
                                latency_ms=float(v["latency_ms"]),
                                metric_name=str(v["metric_name"]),
                                metric=float("nan") if v["metric"] is None else float(v["metric"]),
                                zipped_bytes=int(v.get("zipped_bytes", 0)))
                        for v in doc["variants"]]
        except (KeyError, TypeError, ValueError):
            return None
        return cls(variants) if variants else None

    def table(self) -> str:
        """The comparison as plain text (the CLI prints it; the report and GUI show it)."""
        width = max(16, *(len(v.name) for v in self.variants))
        lines = [f"{'model':<{width}} {'size':>10} {'zipped':>10} {'ms/sample':>10} "
                 f"{'metric':>18}"]
        for v in self.variants:
            lines.append(f"{v.name:<{width}} {v.size_bytes / 1024:>8.1f}KB "
                         f"{v.zipped_bytes / 1024:>8.1f}KB {v.latency_ms:>10.3f} "
                         f"{v.metric_name + ' ' + format(v.metric, '.4f'):>18}")
        return "\n".join(lines)


def _session(path: Path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    # Idle intra-op threads otherwise spin for a while after each run, and on a small machine a
    # session that was just used slows the next one measured: its latency would read 4x worse.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def measure(name: str, path: Path, x: np.ndarray, y: np.ndarray, task: str,
            repeats: int = 3, timed: int = 200) -> Variant:
    """Size, latency per sample and test metric of the ONNX model at *path* on *x*, *y*
    (classification: class indices; regression: values in the target's units)."""
    session = _session(path)
    name_in = session.get_inputs()[0].name
    out = np.concatenate([session.run(None, {name_in: x[i:i + 1024]})[0]
                          for i in range(0, len(x), 1024)])
    if task == "classification":
        metric_name, metric = "accuracy", float(np.mean(out.argmax(axis=1) == y))
    else:
        pred = out.reshape(-1).astype(np.float64)
        total = float(np.sum((y - y.mean()) ** 2))
        metric_name = "r2"
        metric = 1.0 - float(np.sum((y - pred) ** 2)) / total if total > 0 else 0.0
    sample = x[:min(timed, len(x))]
    for row in sample[:10]:  # warm up
        session.run(None, {name_in: row[None]})
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for row in sample:
            session.run(None, {name_in: row[None]})
        times.append((time.perf_counter() - start) / max(len(sample), 1))
    zipped = len(zlib.compress(Path(path).read_bytes(), 6))
    return Variant(name, Path(path), os.path.getsize(path), 1000 * statistics.median(times),
                   metric_name, metric, zipped)


def measurer(pre, x: np.ndarray, y: np.ndarray) -> Callable[[str, Path], Variant]:
    """The one way exports are measured (compressed variants, pruned and distilled runs).

    Parameters
    ----------
    pre : Preprocessor
        The run's preprocessing (its task, and the target's scale for regression).
    x, y : ndarray
        Test inputs as :func:`compression_inputs` gives them (``uint8`` images are scaled to
        the 0..1 the exported model takes) and encoded targets (regression targets are turned
        back into their units, so R² is that of the real values).

    Returns
    -------
    callable
        ``measure(name, path)``: the :class:`Variant` of the ONNX file at *path* (see
        :func:`measure`).
    """
    xf = _as_model_input(x)
    truth = y if pre.task == "classification" else pre.inverse_target(y).astype(np.float64)
    return lambda name, path: measure(name, Path(path), xf, truth, pre.task)


def _as_model_input(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32) / np.float32(255.0) if x.dtype == np.uint8 else x


class _Calibration:
    """onnxruntime's CalibrationDataReader over a few training inputs."""

    def __init__(self, name: str, x: np.ndarray):
        self._rows = iter([{name: x[i:i + 16]} for i in range(0, len(x), 16)])

    def get_next(self):
        return next(self._rows, None)


def quantize(onnx_path: str | Path, out: str | Path, mode: str = "dynamic",
             calibration: np.ndarray | None = None) -> Path:
    """Write an int8 version of *onnx_path* to *out* (atomically).

    Parameters
    ----------
    mode : {"dynamic", "static"}
        Static needs *calibration* inputs (encoded, as the model takes them).

    Raises
    ------
    ExportError
        If onnxruntime cannot quantise the model.
    """
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    out = Path(out)
    if mode not in ("dynamic", "static"):
        raise ExportError(f"Unknown quantisation {mode!r}; use dynamic or static.")
    if mode == "static" and (calibration is None or not len(calibration)):
        raise ExportError("Static quantisation needs calibration inputs.")
    with tempfile.TemporaryDirectory() as tmp, atomic_path(out, error=ExportError) as target:
        prepared = Path(tmp) / "prepared.onnx"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                quant_pre_process(str(onnx_path), str(prepared), skip_symbolic_shape=True)
                if mode == "dynamic":
                    quantize_dynamic(str(prepared), str(target), weight_type=QuantType.QInt8)
                else:
                    name = _session(prepared).get_inputs()[0].name
                    quantize_static(str(prepared), str(target),
                                    _Calibration(name, calibration[:CALIBRATION_ROWS]),
                                    quant_format=QuantFormat.QDQ,
                                    activation_type=QuantType.QInt8,
                                    weight_type=QuantType.QInt8, per_channel=True)
        except ExportError:
            raise
        except Exception as exc:  # noqa: BLE001 - the quantiser raises many kinds
            raise ExportError(f"The model could not be quantised: {exc}") from exc
    return out


#: ``transformers`` image backbones made of convolutions (the others are vision transformers).
CONV_BACKBONES = frozenset({"resnet", "convnext", "convnextv2", "regnet", "efficientnet"})


def convolutional(layers: list[dict]) -> bool:
    """Whether a model spec's *layers* hold convolutions: conv2d layers, or a convolutional
    pretrained image backbone (EfficientNet-Lite0, a ResNet or ConvNeXt folder). These get
    static int8 too: dynamic int8 turns each convolution into ConvInteger with its input
    quantised on the fly, which ran EfficientNet-Lite0 9x slower (docs/benchmarks.md)."""
    for layer in layers:
        if layer.get("type") == "conv2d":
            return True
        if layer.get("type") == "pretrained" and layer.get("kind") == "image" and (
                layer.get("family") == "efficientnet"
                or (layer.get("config") or {}).get("model_type") in CONV_BACKBONES):
            return True
    return False


def compression_inputs(run) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Test inputs and targets to measure on, and training inputs to calibrate with.

    Raises
    ------
    ExportError
        If the run's data is gone (the variants cannot be measured without its test split).
    """
    from ..errors import RunError
    from ..evaluation.evaluate import load_split

    try:
        x, y = load_split(run, "test")
        calibration = load_split(run, "train")[0][:CALIBRATION_ROWS]
    except RunError as exc:
        raise ExportError(f"Compression measures the model on its test split: {exc}") from None
    return x, y, calibration


def compress_run(run, onnx_path: str | Path, x: np.ndarray, y: np.ndarray,
                 calibration: np.ndarray | None = None, modes: tuple[str, ...] | None = None,
                 tolerance: float = TOLERANCE) -> CompressionReport:
    """Quantise an ONNX export of *run* next to it (``<name>.int8-dynamic.onnx`` ...), and
    measure every variant on the test inputs *x* and encoded targets *y*.

    Conv nets get static quantisation as well when *calibration* inputs are given.

    Raises
    ------
    ExportError
        If a variant loses more than *tolerance* of the test metric (its file is removed).
    """
    onnx_path = Path(onnx_path)
    measure_one = measurer(run.preprocessor, x, y)
    if calibration is not None:
        calibration = _as_model_input(calibration)
    if modes is None:
        modes = (("dynamic", "static") if convolutional(run.spec.layers)
                 and calibration is not None else ("dynamic",))
    variants = [measure_one("original", onnx_path)]
    for mode in modes:
        path = onnx_path.with_name(f"{onnx_path.stem}.int8-{mode}.onnx")
        quantize(onnx_path, path, mode, calibration)
        variant = measure_one(f"int8 ({mode})", path)
        drop = variants[0].metric - variant.metric
        if drop > tolerance:
            path.unlink(missing_ok=True)
            raise ExportError(f"int8 ({mode}) quantisation costs too much: the test "
                              f"{variant.metric_name} falls from {variants[0].metric:.4f} to "
                              f"{variant.metric:.4f} (more than {tolerance}). The quantised file "
                              f"was not kept; use the original export.")
        variants.append(variant)
    report = CompressionReport(variants)
    try:  # kept with the run, so its report and every screen show what was measured
        run.folder.record_smaller("int8", report.to_dict())
    except RunError:
        pass  # a read-only run folder: the files and this table are still the user's
    return report
