"""The training engine: the loop, its callbacks, schedules, data loading and distribution."""

from .callbacks import Callback, CallbackList, LambdaCallback
from .trainer import FitResult, Trainer, predict_raw

__all__ = ["Callback", "CallbackList", "FitResult", "LambdaCallback", "Trainer", "predict_raw"]
