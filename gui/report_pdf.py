"""The report as a PDF, laid out by Qt's rich-text engine.

See :func:`ml.evaluation.report.set_pdf_writer`.

Kept outside :mod:`ml` (which never imports Qt); :func:`install` registers it. From the
command line there is no application object yet: one is made on the offscreen platform, so a
PDF is written on a machine without a display too.
"""

from __future__ import annotations

import os
from pathlib import Path

_app = None  # the offscreen application made for a headless PDF, kept for the process


def _ensure_app():
    global _app
    from PySide6.QtGui import QGuiApplication

    if QGuiApplication.instance() is None:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        _app = QGuiApplication(["traindesk-report"])
    return QGuiApplication.instance()


def write_pdf(report, path: Path) -> None:
    """Write *report* (an :class:`ml.evaluation.report.Report`) to *path* as an A4 PDF, atomically.

    Raises
    ------
    ExportError
        If the PDF cannot be written.
    """
    from PySide6.QtCore import QMarginsF
    from PySide6.QtGui import QPageLayout, QPageSize, QPdfWriter

    from ml.errors import ExportError
    from ml.system.fileio import atomic_path

    _ensure_app()
    with atomic_path(Path(path), error=ExportError) as tmp:
        writer = QPdfWriter(str(tmp))
        writer.setTitle(report.title)
        writer.setCreator("TrainDesk")
        writer.setResolution(96)  # the charts' pixels map to points as on screen
        writer.setPageLayout(QPageLayout(QPageSize(QPageSize.PageSizeId.A4),
                                         QPageLayout.Orientation.Portrait,
                                         QMarginsF(15, 15, 15, 15),
                                         QPageLayout.Unit.Millimeter))
        laid_out(report, writer).print_(writer)
        del writer  # ends the PDF (the file is complete only when the writer is gone)
        if not Path(tmp).is_file() or Path(tmp).stat().st_size == 0:
            raise ExportError(f"The PDF could not be written to {path}.")


def laid_out(report, device):
    """*report* as a QTextDocument laid out in pages of *device* (the PDF writer): words are
    not split across lines, and no heading ends a page away from what it introduces."""
    breaks: list[int] = []
    while True:
        doc = _document(report, device, breaks)
        index = _heading_to_move(doc, after=breaks[-1] if breaks else -1)
        if index is None or len(breaks) > 50:
            return doc
        breaks.append(index)


def _document(report, device, breaks: list[int]):
    """The report laid out for *device*, the headings numbered in *breaks* (0 = the first
    ``h2``) starting a page."""
    from PySide6.QtCore import QSizeF, QUrl
    from PySide6.QtGui import QImage, QTextDocument, QTextOption

    text = report.html(embed=False)
    parts = text.split("<h2>")
    for i in breaks:  # Qt's rich text honours page-break-before, not keep-with-next
        parts[i + 1] = "\0" + parts[i + 1]
    text = parts[0] + "".join(
        ('<h2 style="page-break-before:always">' + p[1:]) if p.startswith("\0") else "<h2>" + p
        for p in parts[1:])
    for wrap in (QTextOption.WrapMode.WordWrap,
                 QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere):
        doc = QTextDocument()
        # Lay the text out for the page itself: without a page size, print_() adds its own
        # 2 cm margins inside the writer's and scales fonts from the screen's resolution.
        doc.documentLayout().setPaintDevice(device)
        doc.setPageSize(QSizeF(device.width(), device.height()))
        doc.setDocumentMargin(0)
        # Qt's default breaks a word anywhere once it is wider than its line, which cut the
        # words of narrow table cells in two; at word boundaries only, a column is as wide
        # as its longest word. Only a table that then would not fit the page (its words cut
        # off at the edge) falls back to the default.
        option = QTextOption()
        option.setWrapMode(wrap)
        doc.setDefaultTextOption(option)
        for name, png in report.images.items():
            doc.addResource(QTextDocument.ResourceType.ImageResource, QUrl(name),
                            QImage.fromData(png, "PNG"))
        doc.setHtml(text)
        if doc.size().width() <= doc.pageSize().width() + 0.5:
            break
    return doc


def _heading_to_move(doc, after: int) -> int | None:
    """The first ``h2`` after number *after* whose page has no room for what follows it (the
    lead sentence and the first line of its body), or None."""
    height = doc.pageSize().height()
    layout = doc.documentLayout()
    block, index = doc.begin(), -1
    while block.isValid():
        if block.blockFormat().headingLevel() == 2:
            index += 1
            last = _first_line_after(block, doc) if index > after else None
            page = int(layout.blockBoundingRect(block).top() // height)
            if last is not None and page != int(last // height):
                return index
        block = block.next()
    return None


def _first_line_after(heading, doc) -> float | None:
    """The bottom of the first line of content after *heading* and its lead paragraph (in
    document coordinates; blocks in table cells included), or None at the end."""
    layout = doc.documentLayout()
    block, seen, last = heading.next(), 0, None
    while block.isValid() and not block.blockFormat().headingLevel():
        if block.text().strip():  # text, or an image (an object character)
            rect = layout.blockBoundingRect(block)
            lines = block.layout()
            last = rect.top() + (lines.lineAt(0).rect().bottom() if lines.lineCount()
                                 else rect.height())
            seen += 1
            if seen == 2:  # the lead sentence, then the body's first line
                break
        block = block.next()
    return last


def install() -> None:
    """Make :func:`ml.evaluation.report.write_report` write PDFs too."""
    from ml.evaluation.report import set_pdf_writer

    set_pdf_writer(write_pdf)
