"""The five wizard pages; each takes the shared :class:`~gui.state.ProjectState`."""

from .data_page import DataPage
from .evaluate_page import EvaluatePage
from .export_page import ExportPage
from .model_page import ModelPage
from .train_page import TrainPage

__all__ = ["DataPage", "EvaluatePage", "ExportPage", "ModelPage", "TrainPage"]
