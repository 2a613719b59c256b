"""A report about one run for people who do not work in machine learning: HTML, and PDF.

:func:`build_report` gathers everything (the data and its health, the model, the training
curves, the test results, example predictions, smaller versions of the model, what it takes to
reproduce the run and what training cost) into a :class:`Report`: sections of HTML, each opening
with one plain sentence about what it shows, and charts drawn with Pillow as PNG images.

:meth:`Report.html` writes one self-contained file (charts embedded as data URIs) to e-mail or
put on a share; the PDF goes through a writer registered with :func:`set_pdf_writer` (the app
registers one that lays the report out with Qt's printing; this package never imports Qt).
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import math
import platform
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ExportError, TrainDeskError
from ..labels import model_label
from ..system.fileio import atomic_write_text
from ..training.diagnose import overfitting
from . import yardstick
from .baseline import baseline_of, headline_notes, never_predicted

if TYPE_CHECKING:
    from ..runs.folder import Run

#: Assumed power draw while training (watts) when nothing better is known: a desktop CPU
#: package under load, and a workstation GPU plus its host.
POWER_WATTS = {"cpu": 65.0, "cuda": 350.0, "mps": 40.0}
PACKAGES = ("torch", "numpy", "pandas", "onnx", "onnxruntime", "safetensors", "Pillow")
METRIC_WORDS = {
    "accuracy": "Right answers (accuracy)",
    "balanced_accuracy": "Accuracy with every class counted equally (balanced accuracy)",
    "precision_macro": "When it names a class, how often it is right (precision, average)",
    "recall_macro": "Of each class, how much it finds (recall, average)",
    "f1_macro": "Balance of precision and recall (F1, average over classes)",
    "f1_weighted": "F1 weighted by class size",
    "top3_accuracy": "Right answer among its top three guesses",
    "log_loss": "Confidence penalty (log loss; lower is better)",
    "roc_auc": "Ranking quality (ROC AUC; 0.5 is chance, 1 is perfect)",
    "mae": "Typical error (mean absolute error)",
    "rmse": "Error with big misses weighted more (RMSE)",
    "r2": "Share of the variation explained (R²; 1 is perfect)",
    "mape": "Typical error in percent (MAPE)",
}
_PERCENT = {"accuracy", "balanced_accuracy", "precision_macro", "recall_macro", "f1_macro",
            "f1_weighted", "top3_accuracy"}
CSS = """
body{font-family:Helvetica,Arial,sans-serif;max-width:920px;margin:24px auto;color:#222;
line-height:1.45;padding:0 16px}
h1{font-size:26px;margin-bottom:4px}h2{font-size:20px;margin-top:28px;border-bottom:2px solid
#dde;padding-bottom:4px}p.lead{font-size:15px;color:#334}.muted{color:#667;font-size:13px}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccd;padding:4px 6px;
font-size:13px;text-align:left}th{background:#f0f2f8}td.num{text-align:right}
.finding{margin:4px 0}.warning{color:#8a4b00}.cm td{text-align:center;min-width:34px}
.repro td{font-size:12px}
"""

PdfWriter = Callable[["Report", Path], None]
_pdf_writer: PdfWriter | None = None


def set_pdf_writer(writer: PdfWriter | None) -> None:
    """Register how a report becomes a PDF: ``writer(report, path)`` (the GUI's uses Qt)."""
    global _pdf_writer
    _pdf_writer = writer


def pdf_writer() -> PdfWriter | None:
    return _pdf_writer


@dataclass
class Section:
    title: str
    lead: str  # one plain sentence: what this section shows
    body: str  # HTML


@dataclass
class Report:
    """A report's sections and charts; :meth:`html` renders it."""

    title: str
    subtitle: str
    sections: list[Section] = field(default_factory=list)
    images: dict[str, bytes] = field(default_factory=dict)  # name -> PNG
    #: The run's key numbers as text, as they appear in the report (tests look them up).
    numbers: dict[str, str] = field(default_factory=dict)

    def html(self, embed: bool = True) -> str:
        """The report as one HTML document; *embed* puts the charts in it as data URIs, else
        they are referenced by name (for a writer that supplies them, e.g. the PDF's)."""
        parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8"/>',
                 f"<title>{html.escape(self.title)}</title>", f"<style>{CSS}</style>",
                 "</head>", "<body>", f"<h1>{html.escape(self.title)}</h1>",
                 f'<p class="muted">{html.escape(self.subtitle)}</p>']
        for s in self.sections:
            parts += [f"<h2>{html.escape(s.title)}</h2>", f'<p class="lead">{html.escape(s.lead)}'
                      f"</p>", s.body]
        parts += ["</body>", "</html>"]
        text = "\n".join(parts)
        for name, png in self.images.items():
            src = ("data:image/png;base64," + base64.b64encode(png).decode("ascii")) if embed \
                else name
            text = text.replace(f'src="{name}"', f'src="{src}"')
        return text


# -- charts (Pillow) ----------------------------------------------------------------------------
def _font(size: int):
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def _png(image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


COLORS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40)]


def line_chart(series: dict[str, list[tuple[float, float]]], title: str, x_label: str,
               marker_x: float | None = None, size=(440, 260)) -> bytes:
    """A line chart of named ``(x, y)`` series as PNG bytes (big, readable strokes)."""
    from PIL import Image, ImageDraw

    w, h = size
    left, right, top, bottom = 56, 14, 30, 40
    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    d.text((left, 6), title, fill=(20, 20, 20), font=_font(15))
    points = [p for pts in series.values() for p in pts if math.isfinite(p[1])]
    if not points:
        d.text((left, h // 2), "no data", fill=(120, 120, 120), font=_font(13))
        return _png(img)
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y0, y1 = min(ys), max(ys)
    pad = (y1 - y0) * 0.08 or abs(y1) * 0.1 or 1.0
    y0, y1 = y0 - pad, y1 + pad

    def at(x, y):
        return (left + (x - x0) / (x1 - x0) * (w - left - right),
                top + (1 - (y - y0) / (y1 - y0)) * (h - top - bottom))

    small = _font(11)
    d.rectangle([left, top, w - right, h - bottom], outline=(180, 180, 190))
    for i in range(5):
        y = y0 + (y1 - y0) * i / 4
        _, py = at(x0, y)
        d.line([left, py, w - right, py], fill=(235, 235, 240))
        d.text((4, py - 6), f"{y:.3g}", fill=(80, 80, 80), font=small)
    whole = all(float(x).is_integer() for x in xs)
    ticks = (sorted({round(x0 + (x1 - x0) * i / 4) for i in range(5)}) if whole
             else [x0 + (x1 - x0) * i / 4 for i in range(5)])
    for x in ticks:
        px, _ = at(x, y0)
        d.text((px - 8, h - bottom + 4), f"{x:.3g}", fill=(80, 80, 80), font=small)
    d.text(((w - left) // 2, h - 18), x_label, fill=(60, 60, 60), font=small)
    if marker_x is not None:
        px, _ = at(marker_x, y0)
        d.line([px, top, px, h - bottom], fill=(120, 180, 120), width=2)
    legend_x = left + 8
    for k, (name, pts) in enumerate(series.items()):
        color = COLORS[k % len(COLORS)]
        line = [at(x, y) for x, y in pts if math.isfinite(y)]
        if len(line) > 1:
            d.line(line, fill=color, width=3)
        elif line:
            d.ellipse([line[0][0] - 3, line[0][1] - 3, line[0][0] + 3, line[0][1] + 3], fill=color)
        d.line([legend_x, top + 12, legend_x + 18, top + 12], fill=color, width=3)
        d.text((legend_x + 22, top + 5), name, fill=(40, 40, 40), font=small)
        legend_x += 30 + int(d.textlength(name, font=small))
    return _png(img)


def scatter_chart(actual: np.ndarray, predicted: np.ndarray, title: str,
                  size=(360, 360)) -> bytes:
    """Predicted against actual values with the ideal line, as PNG bytes."""
    from PIL import Image, ImageDraw

    w, h = size
    m = 44
    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    d.text((m, 8), title, fill=(20, 20, 20), font=_font(14))
    lo = float(min(actual.min(), predicted.min())) if len(actual) else 0.0
    hi = float(max(actual.max(), predicted.max())) if len(actual) else 1.0
    hi = hi if hi > lo else lo + 1

    def at(x, y):
        return (m + (x - lo) / (hi - lo) * (w - 2 * m), h - m - (y - lo) / (hi - lo) * (h - 2 * m))

    d.rectangle([m, m, w - m, h - m], outline=(180, 180, 190))
    d.line([at(lo, lo), at(hi, hi)], fill=(120, 180, 120), width=2)
    for a, p in zip(actual[:2000], predicted[:2000]):
        x, y = at(float(a), float(p))
        d.ellipse([x - 2, y - 2, x + 2, y + 2], fill=COLORS[0])
    small = _font(11)
    d.text((w // 2 - 20, h - 20), "actual", fill=(60, 60, 60), font=small)
    d.text((4, m - 16), "predicted", fill=(60, 60, 60), font=small)
    d.text((m, h - m + 4), f"{lo:.3g}", fill=(80, 80, 80), font=small)
    d.text((w - m - 20, h - m + 4), f"{hi:.3g}", fill=(80, 80, 80), font=small)
    return _png(img)


def model_diagram(summary, input_shape) -> bytes:
    """The layers as a column of boxes from input to output, as PNG bytes."""
    from PIL import Image, ImageDraw

    rows = [("Input", "x".join(str(s) for s in input_shape), 0)]
    rows += [(layer.title, "x".join(str(s) for s in layer.output_shape), layer.params)
             for layer in summary.layers]
    box_h, gap, w = 30, 12, 520
    h = 16 + len(rows) * (box_h + gap)
    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    font, small = _font(13), _font(11)
    for i, (title, shape, params) in enumerate(rows):
        y = 8 + i * (box_h + gap)
        fill = (232, 240, 254) if i else (240, 240, 240)
        d.rounded_rectangle([20, y, 330, y + box_h], radius=6, fill=fill, outline=(120, 140, 190))
        d.text((30, y + 8), title[:40], fill=(20, 20, 40), font=font)
        note = f"out {shape}" + (f" · {params:,} weights" if params else "")
        d.text((342, y + 9), note, fill=(80, 80, 90), font=small)
        if i:
            d.line([175, y - gap, 175, y], fill=(120, 140, 190), width=2)
            d.polygon([(170, y - 5), (180, y - 5), (175, y)], fill=(120, 140, 190))
    return _png(img)


def image_strip(images: np.ndarray, captions: list[str], good: list[bool],
                scale: int = 4) -> bytes:
    """Images (uint8 N x C x H x W) side by side with a caption under each, as PNG bytes."""
    from PIL import Image, ImageDraw

    n, c, hh, ww = images.shape
    factor = max(1, min(scale, 96 // max(hh, ww) or 1))
    cell_w, cell_h = max(ww * factor, 96), hh * factor + 34
    strip = Image.new("RGB", (cell_w * n, cell_h), "white")
    d = ImageDraw.Draw(strip)
    small = _font(11)
    for i in range(n):
        arr = images[i].transpose(1, 2, 0)
        tile = Image.fromarray(arr[:, :, 0] if c == 1 else arr[:, :, :3])
        tile = tile.convert("RGB").resize((ww * factor, hh * factor), Image.NEAREST)
        strip.paste(tile, (i * cell_w + (cell_w - ww * factor) // 2, 2))
        color = (27, 94, 32) if good[i] else (170, 30, 20)
        for k, line in enumerate(captions[i].split("\n")[:2]):
            d.text((i * cell_w + 4, hh * factor + 4 + 14 * k), line[:16], fill=color, font=small)
    return _png(strip)


# -- building -----------------------------------------------------------------------------------
def escape(value) -> str:
    return html.escape(str(value))


def _data_name(source: str) -> str:
    """A data file or folder by its name only: a shared report must not carry the builder's
    folders (user name, project paths). ``sample:NAME`` stays as it is."""
    return source if source.startswith("sample:") else Path(source).name or source


def table_html(header: list[str], rows: list[list], numeric: tuple[int, ...] = (),
           css_class: str = "") -> str:
    """An HTML table; the columns in *numeric* are right-aligned."""
    out = [f'<table class="{css_class}">' if css_class else "<table>",
           "<tr>" + "".join(f"<th>{_breakable(h)}</th>" for h in header) + "</tr>"]
    for row in rows:
        cells = "".join(f'<td class="num">{escape(v)}</td>' if j in numeric
                        else f"<td>{escape(v)}</td>" for j, v in enumerate(row))
        out.append(f"<tr>{cells}</tr>")
    out.append("</table>")
    return "\n".join(out)


def _breakable(name) -> str:
    """A column title, escaped, that may wrap after an underscore: ``mean_smoothness`` is one
    word to a line breaker, and a table of such titles would not fit the page otherwise."""
    return escape(name).replace("_", "_\u200b")


def charts_html(*names: str) -> str:
    """Charts in a paragraph of their own (at the CSS line height, Qt would stretch the line
    holding an image by it)."""
    return ('<p style="line-height:100%">' + " ".join(f'<img src="{n}" alt="{n[:-4]}"/>'
                                                       for n in names) + "</p>")


def metric_text(key: str, value: float) -> str:
    if value != value:  # NaN
        return "n/a"
    return f"{100 * value:.1f}%" if key in _PERCENT else f"{value:.4g}"


def versions(packages: tuple[str, ...] = PACKAGES) -> list[list[str]]:
    """Python's, TrainDesk's and *packages*' versions, and the operating system."""
    rows = [["Python", platform.python_version()]]
    from .. import __version__

    rows.append(["TrainDesk", __version__])
    for name in packages:
        try:
            rows.append([name, metadata.version(name)])
        except metadata.PackageNotFoundError:
            continue
    rows.append(["Operating system", f"{platform.system()} {platform.release()}"])
    return rows


def _device_kind(label: str) -> str:
    lower = label.lower()
    return "cuda" if ("cuda" in lower or "nvidia" in lower or "gpu" in lower) else (
        "mps" if "mps" in lower or "apple" in lower else "cpu")


def run_cost(seconds: float, device: str, price_per_hour: float,
             watts: float | None = None) -> dict[str, float]:
    """Wall time, assumed power, energy (kWh) and money at *price_per_hour* of the machine."""
    power = float(watts if watts is not None else POWER_WATTS[_device_kind(device)])
    hours = max(0.0, float(seconds)) / 3600
    return {"seconds": float(seconds), "watts": power, "kwh": power * hours / 1000,
            "money": price_per_hour * hours}


def build_report(run: Run, *, price_per_hour: float = 1.0, currency: str = "$",
                 watts: float | None = None, compression: list | None = None,
                 n_examples: int = 8) -> Report:
    """Gather the report of *run*.

    Parameters
    ----------
    price_per_hour : float
        What an hour of the training machine costs (cloud price, or your own estimate).
    watts : float, optional
        Power draw while training; default: a typical figure for the device.
    compression : list of CompressionReport, optional
        Measured smaller versions (int8, pruned, distilled) to show; default: those measured
        of this run's weights and kept with it (``RunFolder.smaller_tables``).

    When the run's data file is gone the report still comes out, from the numbers saved with the
    run, and says which parts it could not show.
    """
    from .evaluate import evaluate_run

    pre, info = run.preprocessor, run.info
    report = Report(title=f"Model report: {info.get('dataset') or run.path.name}",
                    subtitle=f"{_run_title(run)} · written "
                             f"{_dt.datetime.now():%Y-%m-%d %H:%M} by TrainDesk")
    try:
        evaluation = evaluate_run(run)
        evaluation_note = ""
    except TrainDeskError as exc:
        evaluation = None
        evaluation_note = str(exc)

    test = dict(run.metrics.get("test", {}))
    if evaluation is not None:
        test.update(evaluation.metrics)
    _add_summary(report, run, evaluation, test)
    _add_data(report, run)
    _add_model(report, run)
    _add_training(report, run)
    # Results
    report.sections.append(Section("Results on the test examples",
                                   "How well the model does on examples it never saw while "
                                   "training - the best guide to how it will do in use.",
                                   _results_html(evaluation, test, pre, report, evaluation_note)
                                   + _threshold_html(run, evaluation, report)))
    # Examples
    report.sections.append(Section("Example predictions", "A few test examples with what the "
                                   "model said and the right answer.",
                                   _examples_html(evaluation, pre, report, n_examples)))
    # Compression
    report.sections.append(Section("Smaller versions", "Versions of the model made smaller for "
                                   "phones, browsers or cheap servers, and what each one trades "
                                   "(size, speed, score).",
                                   _compression_html(_measured_smaller(run) if compression is None
                                                     else compression)))
    _add_reproducibility(report, run)
    _add_cost(report, run, price_per_hour, currency, watts)
    return report


def _add_summary(report: Report, run: Run, evaluation, test: dict) -> None:
    """The headline in one sentence and the key test numbers."""
    pre = run.preprocessor
    task = pre.task
    target = pre.target or "the target"
    n_test = evaluation.n if evaluation is not None else run.metrics.get("n_test", 0)
    if task == "classification":
        classes = ", ".join(pre.class_names[:6]) + (" …" if len(pre.class_names) > 6 else "")
        headline = (f"This model sorts examples into {len(pre.class_names)} classes of "
                    f"{target} ({classes}). On {n_test:,} examples it had never seen, it was "
                    f"right {metric_text('accuracy', test.get('accuracy', float('nan')))} of "
                    f"the time.")
    else:
        headline = (f"This model predicts the number {target}. On {n_test:,} examples it had "
                    f"never seen, its predictions were off by "
                    f"{metric_text('mae', test.get('mae', float('nan')))} on average, and it "
                    f"explains {metric_text('r2', test.get('r2', float('nan')))} of the "
                    f"variation (R²; 1 would be perfect).")
    report.sections.append(Section("Summary", headline, _baseline_html(report, evaluation)))
    for key in ("accuracy", "f1_macro", "mae", "rmse", "r2"):
        if key in test:
            report.numbers[key] = metric_text(key, test[key])


def _baseline_html(report: Report, evaluation) -> str:
    """The rare-class and baseline sentences under the headline (none without an evaluation:
    the run's data file is gone)."""
    if evaluation is None:
        return ""
    notes = headline_notes(evaluation)
    base = baseline_of(evaluation)
    if base is not None:
        report.numbers["baseline"] = metric_text(base.metric, base.value)
    warn = (base is not None and base.close) or bool(never_predicted(evaluation))
    style = ' class="warning"' if warn else ""
    html = "".join(f"<p{style}>{escape(note)}</p>" for note in notes)
    classic = yardstick.beside(evaluation)
    if classic is not None:
        report.numbers["yardstick"] = f"{classic.value:.3f}"
        behind = ' class="warning"' if classic.gap <= -yardstick.LEVEL else ""
        html += f"<p{behind}>{escape(classic.text())}</p>"
    return html


def _run_title(run: Run) -> str:
    """The run as the app names it ("Run 3 · small MLP"), with the model when the name does
    not already say it."""
    title = run.folder.title if run.folder is not None else run.path.name
    model = model_label(str(run.info.get("model", run.spec.name)))
    return title if model.lower() in title.lower() else f"{title} · {model}"


def _add_data(report: Report, run: Run) -> None:
    """The split, where the data came from and what its health check found."""
    pre, config = run.preprocessor, run.config
    rows = run.split_rows()
    counts = {k: len(v) for k, v in rows.items()}
    split = config.get("data", {}).get("split", {})
    body = [table_html(["Part", "Examples", "Used for"], [
        ["Training", f"{counts['train']:,}", "the model learns from these"],
        ["Validation", f"{counts['val']:,}", "checked after every epoch to pick the best one"],
        ["Test", f"{counts['test']:,}", "kept apart; the results below are on these"]],
        numeric=(1,))]
    kind_words = {"tabular": "a table", "image": "images", "text": "texts"}
    body.append(f"<p>Data: {escape(_data_name(config.get('data', {}).get('source', '')))} "
                f"({kind_words.get(pre.kind, pre.kind)}; the model reads "
                f"{len(pre.feature_names()) if pre.kind != 'image' else 'the pixels'}"
                f"{' inputs' if pre.kind != 'image' else ''}). Split: "
                f"{split.get('val_fraction', 0):.0%} validation, "
                f"{split.get('test_fraction', 0):.0%} test"
                f"{', keeping class proportions' if split.get('stratify') else ''}.</p>")
    body.append(_health_html(_health(run)))
    report.sections.append(Section("The data", "What the model learned from, and how it was "
                                   "divided so that it could be tested fairly.", "\n".join(body)))


def _add_model(report: Report, run: Run) -> None:
    """The network's diagram and size."""
    from ..models.spec import summarize

    summary = summarize(run.spec)
    report.images["model.png"] = model_diagram(summary, run.spec.input_shape)
    report.numbers["params"] = f"{summary.total_params:,}"
    report.sections.append(Section(
        "The model", "The network's layers from input (top) to output (bottom); each turns "
                     "its input into something more useful for the answer.",
        charts_html("model.png") + f"<p>{summary.total_params:,} "
        f"learned numbers (weights), about {summary.size_mb:.2f} MB.</p>" + _start_html(run)))


#: How each way of training a pretrained backbone is said in the report.
_MODE_WORDS = {"probe": "only a new last layer was trained on its features (a linear probe)",
               "finetune": "a new last layer was trained first, then the whole network, earlier "
                           "layers more gently (fine-tuning)",
               "lora": "small adapters were trained on its attention layers and merged into it "
                       "(LoRA)"}


def _start_html(run: Run) -> str:
    """Where the weights started: a pretrained backbone (with its source and licence)."""
    layer = next((x for x in run.spec.layers if x.get("type") == "pretrained"), None)
    if layer is None:
        return ""
    from ..models import backbones

    model = run.config.get("model", {})
    mode = _MODE_WORDS.get(model.get("train_mode", "finetune"), "")
    origin = ""
    if layer.get("backbone") in (backbones.EFFICIENTNET, backbones.MINILM):
        info = backbones.resolve(layer["backbone"])
        origin = f" Source: {escape(info.source)}; licence {escape(info.license)}."
    return (f"<p>It started from a pretrained model, {escape(layer.get('title', 'a backbone'))}: "
            f"{mode}.{origin}</p>")


def _add_training(report: Report, run: Run) -> None:
    """The loss and metric curves, with the kept epoch marked."""
    task, info = run.preprocessor.task, run.info
    history = run.history
    metric = "accuracy" if task == "classification" else "mae"
    best = run.metrics.get("best_epoch") or info.get("best_epoch")
    final = run.metrics.get("refit") if run.refitted else None
    if history:
        loss = {"training": [(h["epoch"], h["loss"]) for h in history if "loss" in h]}
        if any("val_loss" in h for h in history):
            loss["validation"] = [(h["epoch"], h["val_loss"]) for h in history if "val_loss" in h]
        report.images["loss.png"] = line_chart(loss, "Error while training (loss)", "epoch",
                                               best)
        score = {"training": [(h["epoch"], h[metric]) for h in history if metric in h]}
        if any(f"val_{metric}" in h for h in history):
            score["validation"] = [(h["epoch"], h[f"val_{metric}"]) for h in history
                                   if f"val_{metric}" in h]
        report.images["metric.png"] = line_chart(
            score, "Accuracy" if metric == "accuracy" else "Typical error (MAE)", "epoch", best)
        text = (charts_html("loss.png", "metric.png") + f"<p>{len(history)} epochs (passes "
                f"over the training data)" + (f"; the weights of epoch {best} were kept (best on "
                                     f"validation, green line)" if best and not final
                                     else "") + ".</p>")
        if final:
            text += (f"<p>Final fit: validation chose {int(final['epochs'])} epochs, and the "
                     f"same network was then trained again from its start for that many on "
                     f"all {int(final['rows']):,} training and validation rows together, so "
                     f"the final model learnt from every row but the test rows. The curves "
                     f"above are the first fit's.</p>")
        found = overfitting(history)  # the same reading the Train page shows under its curves
        if found is not None:
            report.numbers["overfitting"] = found["message"]
            text += f'<p class="finding warning">⚠ {escape(found["message"])}</p>'
    else:
        text = "<p>No epoch finished, so there are no curves.</p>"
    report.sections.append(Section("Training", "How the model's error fell as it practised on "
                                   "the training data; the validation line shows how it did on "
                                   "examples it was not trained on.", text))


def _add_reproducibility(report: Report, run: Run) -> None:
    """Seeds, data digest, settings and versions: what it takes to train it again."""
    info, config = run.info, run.config
    split = config.get("data", {}).get("split", {})
    fingerprint = config.get("data_fingerprint", {})
    training = config.get("training", {})
    batch = run.metrics.get("batch_size", training.get("batch_size", ""))
    repro = table_html(["What", "Value"], [
        ["Random seed", training.get("seed", "")],
        ["Split seed / fractions", f"{split.get('seed', '')} / {split.get('val_fraction', '')} "
                                   f"validation, {split.get('test_fraction', '')} test"],
        ["Data file", _data_name(fingerprint.get("source",
                                                 config.get("data", {}).get("source", "")))],
        ["Data file SHA-256", fingerprint.get("sha256", "unknown")],
        ["Optimizer, learning rate, batch size", f"{training.get('optimizer', '')}, "
                                                 f"{training.get('lr', '')}, "
                                                 f"{batch}"],
        ["Device", run.metrics.get("device") or info.get("device", "")],
        *versions()], css_class="repro")  # smaller: the 64-digit hash fits an A4 line
    report.numbers["sha256"] = str(fingerprint.get("sha256", ""))
    report.sections.append(Section("Reproducibility", "Everything needed to train the same model "
                                   "again: with these settings, data and versions TrainDesk "
                                   "gives the same result.", repro +
                                   "<p class='muted'>The run folder holds the full settings "
                                   "(config.json) and the exact split (split.npz).</p>"))


def _add_cost(report: Report, run: Run, price_per_hour: float, currency: str,
              watts: float | None) -> None:
    """Time, energy and money the training took."""
    info = run.info
    seconds = float(run.metrics.get("train_seconds", 0.0))
    device = str(run.metrics.get("device") or info.get("device", "CPU"))
    cost = run_cost(seconds, device, price_per_hour, watts)
    report.numbers["train_seconds"] = f"{seconds:.1f} s"
    report.numbers["money"] = f"{currency}{cost['money']:.4f}"
    report.sections.append(Section("What training cost", "The time, energy and money this "
                                   "model took to train, estimated from how long it ran.",
                                   table_html(["", "Estimate"], [
                                       ["Training time", f"{seconds:.1f} s"],
                                       ["Device", device],
                                       ["Energy (at an assumed "
                                        f"{cost['watts']:.0f} W)", f"{cost['kwh'] * 1000:.3f} Wh"],
                                       [f"Cost at {currency}{price_per_hour:.2f} per hour",
                                        f"{currency}{cost['money']:.4f}"]], numeric=(1,))))


def _health(run: Run) -> dict:
    """The health check kept with the run (``outcome`` ok, findings or failed); for a run
    from before it was kept, the check made now (``"now": True``), or ``outcome``
    ``unavailable`` when the data file is gone."""
    from ..data.dataset import load_dataset
    from ..data.health import health_record
    from ..runs.folder import project_from_config

    kept = run.folder.measurements().get("health")
    if isinstance(kept, dict) and kept.get("outcome") in ("ok", "findings", "failed"):
        return kept
    try:
        project = project_from_config(run.config, run.path.name)
        dataset = load_dataset(project.data.source, project.data.read_options or None)
    except (TrainDeskError, OSError):
        return {"outcome": "unavailable"}
    return {**health_record(dataset, project.data), "now": True}


def _health_html(record: dict) -> str:
    """What the health check found, in words - a check that failed never reads as "nothing
    found"."""
    from ..data.health import findings_of

    when = "checked now" if record.get("now") else "checked when this run was trained"
    if record["outcome"] == "unavailable":
        return ('<p class="muted">The data file is not available any more, so its health '
                'was not checked again.</p>')
    if record["outcome"] == "failed":
        return (f'<p class="warning">The data health check could not run ({when}): '
                f'{escape(record.get("error") or "no reason was given")} The data was not checked '
                f'for missing values, duplicates, class balance or leaks.</p>')
    findings = findings_of(record)
    if findings:
        return (f"<p>Things noticed in the data ({when}):</p><ul>" + "".join(
            f'<li class="finding {f.severity}">{escape(f.message)}</li>' for f in findings)
            + "</ul>")
    return (f"<p>The data checks (missing values, duplicates, class balance, leaks, constant "
            f"columns) found nothing to worry about ({when}).</p>")


def _measured_smaller(run: Run) -> list:
    """The tables of smaller versions measured of the run's weights: pruned and distilled
    first, then int8."""
    tables = run.folder.smaller_tables()
    found = [_kept_table(tables[k]) for k in ("derived", "int8") if k in tables]
    return [t for t in found if t is not None]


def _kept_table(doc: dict):
    """A kept table (``CompressionReport.to_dict``, which this layer may not import) with the
    attributes :func:`_compression_html` reads; None when it is damaged."""
    from types import SimpleNamespace

    try:
        variants = [SimpleNamespace(
            name=str(v["name"]), size_bytes=int(v["size_bytes"]),
            zipped_bytes=int(v.get("zipped_bytes") or 0), latency_ms=float(v["latency_ms"]),
            metric_name=str(v["metric_name"]),
            metric=float("nan") if v["metric"] is None else float(v["metric"]))
            for v in doc["variants"]]
    except (KeyError, TypeError, ValueError):
        return None
    return SimpleNamespace(variants=variants) if variants else None


def _results_html(evaluation, test: dict, pre, report: Report, note: str) -> str:
    parts = []
    metrics = evaluation.metrics if evaluation is not None else test
    parts.append(table_html(["Measure", "Value"], [[METRIC_WORDS.get(k, k), metric_text(k, v)]
                                               for k, v in metrics.items()
                                               if k in METRIC_WORDS], numeric=(1,)))
    if evaluation is None:
        parts.append(f'<p class="muted">Only the saved numbers are shown: {escape(note)}</p>')
        return "\n".join(parts)
    if evaluation.task == "classification":
        r = evaluation.report
        parts.append("<p>Per class (support = how many test examples of that class):</p>")
        parts.append(table_html(["Class", "Precision", "Recall", "F1", "Support"], [
            [name, f"{r.precision[i]:.3f}", f"{r.recall[i]:.3f}", f"{r.f1[i]:.3f}",
             int(r.support[i])] for i, name in enumerate(evaluation.class_names)],
            numeric=(1, 2, 3, 4)))
        cm = evaluation.confusion
        names = evaluation.class_names
        if len(names) <= 20:
            row_sum = np.maximum(cm.sum(axis=1, keepdims=True), 1)
            cells = ['<table class="cm"><tr><th>true ↓ / predicted →</th>' +
                     "".join(f"<th>{escape(n)}</th>" for n in names) + "</tr>"]
            for i, name in enumerate(names):
                row = []
                for j in range(len(names)):
                    share = cm[i, j] / row_sum[i, 0]
                    tone = (int(255 - 150 * share), int(255 - 90 * share), 255) if i == j else \
                        (255, int(255 - 160 * share), int(255 - 160 * share))
                    row.append(f'<td style="background:rgb{tone}">{int(cm[i, j])}</td>')
                cells.append(f"<tr><th>{escape(name)}</th>{''.join(row)}</tr>")
            cells.append("</table>")
            parts.append("<p>Confusion matrix: each row is the true class, each column what the "
                         "model said; the diagonal is right.</p>" + "\n".join(cells))
    else:
        report.images["scatter.png"] = scatter_chart(evaluation.y_true, evaluation.y_pred,
                                                     "Predicted vs actual")
        parts.append(charts_html("scatter.png") + "<p>Each dot is a test example; on the "
                     "green line the prediction is exact.</p>")
    return "\n".join(parts)


def _threshold_html(run: Run, evaluation, report: Report) -> str:
    """Two classes: from which probability the model says the second class (the results and
    examples above were decided there; the saved numbers of a run without its data were not)."""
    from ..runs.folder import DEFAULT_THRESHOLD

    threshold = run.threshold
    if threshold is None:
        return ""
    names = run.preprocessor.class_names
    report.numbers["threshold"] = f"{threshold:.2f}"
    chosen = ("the decision threshold chosen for this run" if threshold != DEFAULT_THRESHOLD
              else "the usual decision threshold")
    text = (f"<p>The model says <b>{escape(names[1])}</b> when its probability is at least "
            f"<b>{threshold:.2f}</b>, else <b>{escape(names[0])}</b> ({chosen}; the exports and "
            f"the package decide the same way).")
    if evaluation is None and threshold != DEFAULT_THRESHOLD:
        text += (f" The numbers above were saved when the model was trained, at "
                 f"{DEFAULT_THRESHOLD:.2f}.")
    return text + "</p>"


def _examples_html(evaluation, pre, report: Report, n: int) -> str:
    if evaluation is None or evaluation.examples is None or not evaluation.n:
        return '<p class="muted">The test examples are not available.</p>'
    rng = np.random.default_rng(0)
    picks = np.sort(rng.choice(evaluation.n, size=min(n, evaluation.n), replace=False))
    classify = evaluation.task == "classification"

    def said(i):
        if classify:
            k = int(evaluation.y_pred[i])
            return (evaluation.class_names[k], f"{evaluation.proba[i, k]:.0%}",
                    evaluation.class_names[int(evaluation.y_true[i])])
        return (f"{evaluation.y_pred[i]:.4g}", "", f"{evaluation.y_true[i]:.4g}")

    images = evaluation.examples
    if pre.kind == "image" and not isinstance(images, np.ndarray):  # pixel columns
        try:
            images = pre.transform_features(images.iloc[picks])
        except TrainDeskError:
            images = None
        if images is not None:
            flat = images.reshape(len(images), -1).astype(np.float64)
            lo, hi = flat.min(axis=1), flat.max(axis=1)
            scaled = (flat - lo[:, None]) / np.maximum(hi - lo, 1e-12)[:, None]
            images = (255 * scaled).reshape(images.shape).astype(np.uint8)
            full = np.zeros((evaluation.n,) + images.shape[1:], np.uint8)
            full[picks] = images
            images = full
    if isinstance(images, np.ndarray) and images.ndim == 4:
        captions, good = [], []
        for i in picks:
            pred, conf, truth = said(i)
            captions.append(f"said {pred} {conf}\ntrue {truth}")
            good.append(pred == truth)
        report.images["examples.png"] = image_strip(images[picks], captions, good)
        return charts_html("examples.png") + '<p class="muted">Green: right; red: wrong.</p>'
    frame = evaluation.examples
    # Only what the model reads: an ignored column (an identifier) is no part of its answer.
    inputs = {enc.name for enc in pre.columns} | set(pre.text_columns)
    shown = _columns_that_fit([c for c in frame.columns if c in inputs][:6])
    rows = []
    for i in picks:
        pred, conf, truth = said(i)
        values = [_short(frame.iloc[int(i)][c], 240 if pre.kind == "text" else 60)
                  for c in shown]
        rows.append(values + [pred + (f" ({conf})" if conf else ""), truth])
    return table_html([*shown, "Model said", "Right answer"], rows)


def _columns_that_fit(columns: list, budget: int = 36) -> list:
    """The first *columns* whose titles fit a page beside the two answer columns: a column is
    as wide as its title's longest piece (and a number's digits), and an A4 page holds about
    *budget* characters of them. At least one is shown."""
    shown, used = [], 0
    for name in columns:
        width = max(6, *(len(p) for p in str(name).replace("_", " ").split() or [""]))
        if shown and used + width > budget:
            break
        shown.append(name)
        used += width
    return shown


def _short(value, limit: int) -> str:
    """*value* as text of at most *limit* characters, an ellipsis marking a cut."""
    text = str(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _compression_html(reports: list) -> str:
    if not reports:
        return ('<p class="muted">No smaller versions of this model were measured. In TrainDesk: '
                'Export step - "Also make int8 versions", or "Make it smaller" (pruning, '
                'distillation).</p>')
    parts = []
    for rep in reports:
        base = rep.variants[0]
        rows = []
        for v in rep.variants:
            zipped = f"{v.zipped_bytes / 1024:,.1f} KB" if v.zipped_bytes else ""
            rows.append([v.name, f"{v.size_bytes / 1024:,.1f} KB", zipped, f"{v.latency_ms:.3f} ms",
                         metric_text("accuracy" if v.metric_name == "accuracy" else "r2",
                                     v.metric)])
        parts.append(table_html(["Version", "File size", "In a .zip", "Time per example (CPU)",
                             "Test " + ("accuracy" if base.metric_name == "accuracy" else "R²")],
                            rows, numeric=(1, 2, 3, 4)))
    return "\n".join(parts)


def write_report(report: Report, out: str | Path, pdf: bool = True) -> list[Path]:
    """Write *report* as ``out`` (HTML, self-contained) and, with *pdf* and a registered PDF
    writer, as the same name with ``.pdf``. Returns the files written.

    Raises
    ------
    ExportError
        If a file cannot be written.
    """
    out = Path(out)
    if out.suffix.lower() not in (".html", ".htm"):
        out = out.with_suffix(".html")
    atomic_write_text(out, report.html(embed=True), error=ExportError)
    written = [out]
    if pdf and _pdf_writer is not None:
        target = out.with_suffix(".pdf")
        _pdf_writer(report, target)
        written.append(target)
    return written
