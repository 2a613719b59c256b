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
    from PySide6.QtCore import QMarginsF, QSizeF, QUrl
    from PySide6.QtGui import QImage, QPageLayout, QPageSize, QPdfWriter, QTextDocument

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
        doc = QTextDocument()
        # Lay the text out for the page itself: without a page size, print_() adds its own
        # 2 cm margins inside the writer's and scales fonts from the screen's resolution.
        doc.documentLayout().setPaintDevice(writer)
        doc.setPageSize(QSizeF(writer.width(), writer.height()))
        doc.setDocumentMargin(0)
        for name, png in report.images.items():
            doc.addResource(QTextDocument.ResourceType.ImageResource, QUrl(name),
                            QImage.fromData(png, "PNG"))
        doc.setHtml(report.html(embed=False))
        doc.print_(writer)
        del writer  # ends the PDF (the file is complete only when the writer is gone)
        if not Path(tmp).is_file() or Path(tmp).stat().st_size == 0:
            raise ExportError(f"The PDF could not be written to {path}.")


def install() -> None:
    """Make :func:`ml.evaluation.report.write_report` write PDFs too."""
    from ml.evaluation.report import set_pdf_writer

    set_pdf_writer(write_pdf)
