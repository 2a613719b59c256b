"""Reading, describing, splitting and encoding data."""

from .dataset import Dataset, DataSummary, PreparedData, load_dataset, prepare, resolve
from .preprocessing import Preprocessor
from .samples import SampleInfo, get_sample, list_samples

__all__ = ["Dataset", "DataSummary", "PreparedData", "Preprocessor", "SampleInfo", "get_sample",
           "list_samples", "load_dataset", "prepare", "resolve"]
