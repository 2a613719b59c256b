"""Exporting trained models to files that run outside TrainDesk."""

from .exporters import FORMATS, ExportReport, export_run

__all__ = ["FORMATS", "ExportReport", "export_run"]
