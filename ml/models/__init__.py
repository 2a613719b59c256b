"""Model specs, presets and the modules built from them."""

from .presets import PRESET_TITLES, build_spec, default_preset, suggest_settings
from .spec import (
                   InferenceModel,
                   ModelSpec,
                   ModelSummary,
                   TrainDeskNet,
                   build_model,
                   count_parameters,
                   summarize,
)

__all__ = ["PRESET_TITLES", "InferenceModel", "ModelSpec", "ModelSummary", "TrainDeskNet",
           "build_model", "build_spec", "count_parameters", "default_preset", "suggest_settings",
           "summarize"]
