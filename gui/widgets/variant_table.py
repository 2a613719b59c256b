"""A table of model files measured side by side: what a smaller model trades."""

from __future__ import annotations

from PySide6.QtWidgets import QHeaderView, QTableWidget, QTableWidgetItem, QWidget

COLUMNS = ["Model", "Weights", "File size", "In a .zip", "Time per sample", "Test score"]


def score_text(metric_name: str, value: float) -> str:
    return f"{100 * value:.2f}% accuracy" if metric_name == "accuracy" else f"R² {value:.4f}"


class VariantTable(QTableWidget):
    """Rows of :class:`~ml.export.compress.Variant` (the first is the reference): sizes and
    speed relative to it, so the trade is read at a glance."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(0, len(COLUMNS), parent)
        self.setHorizontalHeaderLabels(COLUMNS)
        self.verticalHeader().hide()
        self.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.setTabKeyNavigation(False)  # Tab leaves the table; arrows move in it
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)

    def show_report(self, report, weights: list[str] | None = None) -> None:
        """Fill from a :class:`~ml.export.compress.CompressionReport`; *weights* describes
        each row's weights (e.g. "50,826 (20% non-zero)"); the column hides without it."""
        self.setRowCount(len(report.variants))
        base = report.variants[0]
        for r, v in enumerate(report.variants):
            size = f"{v.size_bytes / 1024:,.1f} KB"
            zipped = f"{v.zipped_bytes / 1024:,.1f} KB"
            speed = f"{v.latency_ms:.3f} ms"
            if r:
                size += f" ({v.size_bytes / base.size_bytes:.0%})"
                if base.zipped_bytes:
                    zipped += f" ({v.zipped_bytes / base.zipped_bytes:.0%})"
                if v.latency_ms and base.latency_ms:
                    ratio = base.latency_ms / v.latency_ms
                    speed += (" (about the same)" if 0.95 <= ratio <= 1.05 else
                              f" ({ratio:.1f}x faster)" if ratio > 1 else
                              f" ({1 / ratio:.1f}x slower)")
            texts = (v.name, weights[r] if weights else "", size, zipped, speed,
                     score_text(v.metric_name, v.metric))
            for c, text in enumerate(texts):
                item = QTableWidgetItem(text)
                item.setToolTip(str(v.path))
                self.setItem(r, c, item)
        self.setColumnHidden(1, not weights)
        # As tall as its rows: no empty grid under a two-row comparison.
        self.resizeRowsToContents()
        rows = sum(self.rowHeight(r) for r in range(self.rowCount()))
        self.setFixedHeight(self.horizontalHeader().height() + rows + 2 * self.frameWidth() + 2)
        self.show()

    def column_text(self, row: int, name: str) -> str:
        """The text in *row* under the column titled *name* (for tests and the report)."""
        return self.item(row, COLUMNS.index(name)).text()
