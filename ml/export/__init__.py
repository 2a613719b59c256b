"""Exporting trained models to files that run outside TrainDesk."""

from .exporters import FORMATS, ExportReport, export_ensemble, export_run, inputs_for_check

__all__ = ["FORMATS", "ExportReport", "export_ensemble", "export_run", "inputs_for_check"]
