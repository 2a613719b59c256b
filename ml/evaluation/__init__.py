"""Metrics and evaluation of trained models."""

from .evaluate import Evaluation, evaluate_arrays, evaluate_run, load_split, predict_frame
from .metrics import classification_metrics, confusion_matrix, regression_metrics

__all__ = ["Evaluation", "classification_metrics", "confusion_matrix", "evaluate_arrays",
           "evaluate_run", "load_split", "predict_frame", "regression_metrics"]
