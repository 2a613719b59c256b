"""The training engine."""

from .callbacks import Callback, CallbackList, LambdaCallback
from .device import DeviceInfo, describe_device, select_device
from .trainer import FitResult, Trainer, predict_raw

__all__ = ["Callback", "CallbackList", "DeviceInfo", "FitResult", "LambdaCallback", "Trainer",
           "describe_device", "predict_raw", "select_device"]
