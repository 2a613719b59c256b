"""The stakeholder report: every section, the run's own numbers, charts that decode, the cost
arithmetic, a report without the data file, and ``main.py export --format report``."""

from __future__ import annotations

import base64
import hashlib
import io
import re
from html.parser import HTMLParser

import numpy as np
import pytest
from PIL import Image

from ml.errors import ExportError
from ml.evaluation.report import (
    POWER_WATTS,
    build_report,
    metric_text,
    pdf_writer,
    run_cost,
    set_pdf_writer,
    write_report,
)
from ml.export.shrink import ShrinkJob, measure_runs, variant_name
from ml.jobs.training import TrainingJob
from ml.runs.folder import load_run
from ml.runs.project import DataConfig, ModelConfig, Project, TrainingConfig
from tests.conftest import run_cli, run_main
from tests.ml.test_import_pipeline import make_image_folder, make_text_csv

SECTIONS = ["Summary", "The data", "The model", "Training", "Results on the test examples",
            "Example predictions", "Smaller versions", "Reproducibility", "What training cost"]


def _train(tmp_path, source, target="", epochs=3, **model):
    project = Project(data=DataConfig(source=source, target=target),
                      model=ModelConfig(**(model or {"preset": "mlp", "hidden": [32]})),
                      training=TrainingConfig(epochs=epochs, lr=0.01, batch_size=16))
    return TrainingJob(project, runs_dir=tmp_path / "runs").run().run_dir


@pytest.fixture(scope="module")
def iris_run(tmp_path_factory):
    return _train(tmp_path_factory.mktemp("iris"), "sample:iris", epochs=6)


class _Structure(HTMLParser):
    """Checks tags balance; collects headings, paragraphs after them and image sources."""

    VOID = {"meta", "img", "br", "hr", "link", "col", "input"}

    def __init__(self):
        super().__init__()
        self.stack: list[str] = []
        self.bad: list[str] = []
        self.h2: list[str] = []
        self.images: list[str] = []
        self._in_h2 = False

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs)["src"])
        if tag == "h2":
            self._in_h2 = True
            self.h2.append("")
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if tag == "h2":
            self._in_h2 = False
        if tag in self.VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.bad.append(tag)
        else:
            self.stack.pop()

    def handle_data(self, data):
        if self._in_h2:
            self.h2[-1] += data


def parse_html(html: str) -> _Structure:
    """Parse *html*, asserting that every tag is closed in order (shared with the GUI test)."""
    parsed = _Structure()
    parsed.feed(html)
    parsed.close()
    assert parsed.bad == [] and parsed.stack == [], (parsed.bad, parsed.stack)
    return parsed


def _decode(src: str) -> Image.Image:
    assert src.startswith("data:image/png;base64,")
    image = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
    image.load()
    return image


def test_a_classification_report_has_every_section_and_the_runs_numbers(iris_run):
    run = load_run(iris_run)
    report = build_report(run, price_per_hour=2.0, currency="€")
    html = report.html()
    parsed = parse_html(html)
    assert parsed.h2 == SECTIONS
    # Every section opens with a plain sentence.
    assert all(s.lead.endswith(".") and len(s.lead.split()) >= 8 for s in report.sections)
    accuracy = run.metrics["test"]["accuracy"]
    assert f"right {metric_text('accuracy', accuracy)} of the time" in html
    assert report.numbers["accuracy"] == metric_text("accuracy", accuracy)
    # ... beside what always answering the test split's most common class would score.
    assert "always answering" in html and report.numbers["baseline"] in html
    assert f"{run.metrics['test']['f1_macro'] * 100:.1f}%" in html
    # Confusion matrix cells sum to the test split.
    cells = re.findall(r'<td style="background:rgb[^"]*">(\d+)</td>', html)
    assert sum(map(int, cells)) == len(run.split_rows()["test"])
    # Charts and the diagram are real PNGs inside the page.
    assert len(parsed.images) >= 3
    for src in parsed.images:
        assert _decode(src).size[0] > 50
    # Reproducibility: the seed, the split and the data's hash; the versions that ran it.
    assert report.numbers["sha256"] == run.config["data_fingerprint"]["sha256"]
    assert re.fullmatch(r"[0-9a-f]{64}", report.numbers["sha256"])
    assert report.numbers["sha256"] in html and "torch" in html and "onnxruntime" in html
    # Cost at the user's price.
    seconds = float(run.metrics["train_seconds"])
    assert report.numbers["money"] == f"€{2.0 * seconds / 3600:.4f}"
    assert "No smaller versions" in html


def test_run_cost_arithmetic():
    cost = run_cost(1800, "CUDA: NVIDIA H200", price_per_hour=4.0)
    assert cost == {"seconds": 1800.0, "watts": POWER_WATTS["cuda"],
                    "kwh": pytest.approx(POWER_WATTS["cuda"] * 0.5 / 1000), "money": 2.0}
    cost = run_cost(7200, "CPU: x86_64 (2 threads)", price_per_hour=0.5, watts=100)
    assert cost["kwh"] == pytest.approx(0.2) and cost["money"] == pytest.approx(1.0)
    assert run_cost(-5, "cpu", 1.0)["money"] == 0.0


def test_smaller_versions_are_tabled_and_the_html_is_written_atomically(iris_run, tmp_path):
    run = load_run(iris_run)
    pruned = load_run(ShrinkJob(iris_run, "prune", sparsity=0.5, epochs=1).run().run_dir)
    table = measure_runs([run, pruned], ["original", variant_name(pruned)])
    report = build_report(run, compression=[table])
    html = report.html()
    parse_html(html)
    assert "pruned 50%" in html and "No smaller versions" not in html
    out = tmp_path / "reports" / "iris"  # no suffix: .html is added
    previous = pdf_writer()
    set_pdf_writer(None)
    try:
        written = write_report(report, out)
    finally:
        set_pdf_writer(previous)
    assert written == [out.with_suffix(".html")]
    assert written[0].read_text(encoding="utf-8") == html
    assert [p.name for p in written[0].parent.iterdir()] == ["iris.html"]  # no temp files left
    # A folder that cannot be made: the app's own error, nothing half-written.
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    with pytest.raises(ExportError):
        write_report(report, blocker / "report.html")


def test_regression_report_shows_a_scatter_and_error_numbers(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    import pandas as pd

    path = tmp_path / "houses.csv"
    pd.DataFrame({"rownames": [f"r{i}" for i in range(200)], "a": x[:, 0], "b": x[:, 1],
                  "c": x[:, 2],
                  "price": 3 * x[:, 0] - x[:, 1] + rng.normal(0, 0.1, 200)}).to_csv(path,
                                                                                    index=False)
    run = load_run(_train(tmp_path, str(path), target="price", epochs=8))
    report = build_report(run)
    html = report.html()
    assert parse_html(html).h2 == SECTIONS
    assert "predicts the number price" in html
    assert report.numbers["mae"] == metric_text("mae", run.metrics["test"]["mae"])
    assert "always predicting the training average" in html
    # The examples show what the model read: not R's row names, which it ignored.
    examples = html[html.index("Model said") - 400:html.index("Model said")]
    assert ">a<" in examples and "rownames" not in examples
    assert any("scatter" in name for name in report.images)
    assert "Cost" in html


def test_image_and_text_reports_show_examples(tmp_path):
    images = make_image_folder(tmp_path / "shapes", n=10)
    run = load_run(_train(tmp_path, str(images), epochs=2, preset="cnn"))
    report = build_report(run, n_examples=4)
    parsed = parse_html(report.html())
    assert "examples.png" in report.images
    strip = _decode(parsed.images[-1])
    assert strip.size[0] > strip.size[1]  # a strip of example pictures
    text = make_text_csv(tmp_path / "reviews.csv")
    run = load_run(_train(tmp_path, str(text), target="sentiment", epochs=2,
                          preset="text"))
    html = build_report(run, n_examples=3).html()
    parse_html(html)
    assert "(viewer" in html  # the example texts themselves


def test_a_report_still_comes_out_when_the_data_file_is_gone(tmp_path):
    import pandas as pd

    path = tmp_path / "flowers.csv"
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(rng.normal(size=(90, 2)), columns=["x", "y"])
    frame["kind"] = np.where(frame["x"] > 0, "big", "small")
    frame.to_csv(path, index=False)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    run = load_run(_train(tmp_path, str(path), target="kind", epochs=3))
    path.unlink()
    report = build_report(run)
    html = report.html()
    assert parse_html(html).h2 == SECTIONS
    assert "not available any more" in html
    assert report.numbers["sha256"] == digest
    assert report.numbers["accuracy"] == metric_text("accuracy", run.metrics["test"]["accuracy"])


def test_export_report_on_the_command_line(iris_run, tmp_path):
    out = tmp_path / "iris-report.html"
    proc = run_main("export", str(iris_run), "--format", "report", "--out", str(out),
                    "--price-per-hour", "3", "--currency", "£")
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {out}" in proc.stdout and f"wrote {out.with_suffix('.pdf')}" in proc.stdout
    parse_html(out.read_text(encoding="utf-8"))
    assert "£3.00 per hour" in out.read_text(encoding="utf-8")
    pdf = out.with_suffix(".pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and len(re.findall(rb"/Type\s*/Page\b", pdf)) >= 3
    bad = run_cli("export", str(iris_run), "--format", "report", "--out", str(out),
                   "--price-per-hour", "-1")
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0
    assert "--price-per-hour" in bad.stderr
    gone = run_cli("export", str(tmp_path / "nope"), "--format", "report", "--out", str(out))
    assert gone.returncode != 0 and gone.stderr.strip().count("\n") == 0
