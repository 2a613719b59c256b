"""The report's PDF pages: no heading is left at the foot of a page without what it
introduces, and no word in a table cell is cut in two."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QMarginsF
from PySide6.QtGui import QPageLayout, QPageSize, QPdfWriter, QTextTable

from gui.report_pdf import laid_out, write_pdf
from ml.evaluation.report import Report, Section, build_report
from ml.jobs.training import TrainingJob
from ml.runs.folder import load_run
from ml.runs.project import DataConfig, ModelConfig, Project, TrainingConfig


@pytest.fixture()
def writer(qapp, tmp_path):
    device = QPdfWriter(str(tmp_path / "layout.pdf"))
    device.setResolution(96)
    device.setPageLayout(QPageLayout(QPageSize(QPageSize.PageSizeId.A4),
                                     QPageLayout.Orientation.Portrait, QMarginsF(15, 15, 15, 15),
                                     QPageLayout.Unit.Millimeter))
    yield device
    del device


def _cut_words(doc) -> list[str]:
    """Lines inside table cells that end in the middle of a word."""
    cut, layout = [], doc.documentLayout()
    block = doc.begin()
    while block.isValid():
        layout.blockBoundingRect(block)  # laid out now, if it was not yet
        if isinstance(doc.frameAt(block.position()), QTextTable):
            text, lines = block.text(), block.layout()
            for i in range(lines.lineCount() - 1):
                end = lines.lineAt(i).textStart() + lines.lineAt(i).textLength()
                if text[end - 1] not in " \u200b-/" and text[end] != " ":
                    cut.append(f"{text[:end]}|{text[end:]}")
        block = block.next()
    return cut


def _stranded_headings(doc) -> list[str]:
    """Headings on another page than the first line of the content after their lead."""
    height, layout = doc.pageSize().height(), doc.documentLayout()
    stranded, block = [], doc.begin()
    while block.isValid():
        if block.blockFormat().headingLevel() == 2:
            page = int(layout.blockBoundingRect(block).top() // height)
            after, seen = block.next(), 0
            while after.isValid() and not after.blockFormat().headingLevel():
                if after.text().strip():
                    seen += 1
                    if seen == 2:
                        rect = layout.blockBoundingRect(after)
                        first = rect.top() + after.layout().lineAt(0).rect().bottom()
                        if int(first // height) != page:
                            stranded.append(block.text())
                        break
                after = after.next()
        block = block.next()
    return stranded


def test_table_cells_wrap_between_words(writer, tmp_path):
    # Thirty columns with long names (mean_smoothness ...): the examples table used to cut
    # them as "mean_smoo|thness" to squeeze eight columns on the page.
    project = Project(data=DataConfig(source="sample:breast_cancer"),
                      model=ModelConfig(preset="mlp", hidden=[8]),
                      training=TrainingConfig(epochs=1, batch_size=32))
    run = load_run(TrainingJob(project, run_dir=tmp_path / "run").run().run_dir)
    report = build_report(run)
    doc = laid_out(report, writer)
    assert _cut_words(doc) == []
    assert doc.size().width() <= doc.pageSize().width() + 0.5  # and nothing is cut off
    assert _stranded_headings(doc) == []
    tables = [f for f in doc.rootFrame().childFrames() if isinstance(f, QTextTable)]
    assert len(tables) >= 5
    write_pdf(report, tmp_path / "report.pdf")
    assert (tmp_path / "report.pdf").read_bytes().startswith(b"%PDF")


def test_no_heading_is_left_at_the_foot_of_a_page(writer):
    # Sections of every length from 1 to 14 lines: some heading falls at each place of a
    # page, the foot included.
    filler = "A line of words about the model that is long enough to fill a line. " * 9
    report = Report("Layout", "every place on a page", [
        Section(f"Section {n}", "One plain sentence that says what the section shows.",
                "".join(f"<p>{filler[:80 + n]}</p>" for _ in range(n)))
        for n in range(1, 15)] * 2)
    doc = laid_out(report, writer)
    assert doc.pageCount() >= 4
    assert _stranded_headings(doc) == []
